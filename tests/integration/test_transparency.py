"""The transparency log on a real broker: the worker signs checkpoints, a witness cosigns them,
and every way of tampering with the trail (truncate, rewrite with every hash recomputed,
reorder, delete a record, delete the chain) is caught by `verify-audit --checkpoints`."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamguard import serde
from streamguard.local.testing import (
    Collected,
    Deployment,
    create_topics,
    produce,
    search_request,
    write_agencies,
)
from streamguard.trail.checkpoint import COSIGNATURE, generate_key
from streamguard.trail.merkle import verify_consistency
from streamguard.trail.proofs import CheckpointEntry
from tests.helpers import Deploy, audited
from tests.unit.trail.tlog_samples import rechain

AGENCIES = "agency_id,name,state,kind\nca-oxnard-pd,Oxnard PD,CA,local\n"
PORT = 6552
CHAIN = "searches-0"


def streamguard(deployment: Deployment, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")}
    env |= {
        "STREAMGUARD_BROKER": deployment.bootstrap,
        "STREAMGUARD_TOPIC_PREFIX": deployment.prefix,
    }
    return subprocess.run(
        [sys.executable, "-m", "streamguard", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _decide(deployment: Deployment, n: int) -> list[str]:
    searches = [search_request("ca-oxnard-pd", networks=["ca-oxnard-pd"]) for _ in range(n)]
    deployment.send("searches", [("ca-oxnard-pd", s) for s in searches])
    ids = {s["search_id"] for s in searches}
    got = deployment.collect(["audit"], lambda c: ids <= audited(c["audit"]), 90.0)
    assert ids <= audited(got["audit"])
    return [s["search_id"] for s in searches]


def _checkpoints(
    deployment: Deployment, done: Callable[[list[CheckpointEntry]], bool]
) -> list[CheckpointEntry]:
    def entries(c: Collected) -> list[CheckpointEntry]:
        return [CheckpointEntry.from_dict(v) for _, v in c.get("checkpoints", [])]

    got = deployment.collect(["checkpoints"], lambda c: done(entries(c)), 60.0)
    found = entries(got)
    assert done(found), [e.checkpoint.size for e in found]
    return found


def _largest(entries: list[CheckpointEntry]) -> int:
    return max((e.checkpoint.size for e in entries if e.chain == CHAIN), default=0)


def _forged_topic(deployment: Deployment, name: str, records: list[dict[str, Any]]) -> str:
    """A copy of the audit topic as an insider would leave it: `records`, in this order."""
    import asyncio

    topic = deployment.prefix + name
    asyncio.run(create_topics(deployment.bootstrap, [topic], deployment.partitions))
    if records:
        asyncio.run(produce(deployment.bootstrap, topic, [(r["chain"], r) for r in records]))
    return topic


def test_checkpoints_witness_proofs_and_every_tampering(deploy: Deploy, tmp_path: Path) -> None:
    key = generate_key("alpr.test.example/audit")
    key_file = tmp_path / "log.key"
    key_file.write_text(key.encode() + "\n", encoding="utf-8")
    pub = tmp_path / "log.pub"
    pub.write_text(key.verifier().encode() + "\n", encoding="utf-8")
    witness = generate_key("auditor.test.example/witness", COSIGNATURE)
    witness_file = tmp_path / "witness.key"
    witness_file.write_text(witness.encode() + "\n", encoding="utf-8")
    witness_pub = tmp_path / "witness.pub"
    witness_pub.write_text(witness.verifier().encode() + "\n", encoding="utf-8")
    state = tmp_path / "witness-state.jsonl"

    deployment = deploy("sgt", partitions=1)
    settings = {
        "checkpoint_key": str(key_file),
        "checkpoint_every_records": "4",
        "checkpoint_every_seconds": "1",
    }
    worker = deployment.add_worker(PORT, agencies=write_agencies(tmp_path, AGENCIES), **settings)
    try:
        first = _decide(deployment, 10)
        before = _checkpoints(deployment, lambda es: _largest(es) == 10)
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/tlog/key", timeout=10) as r:
            assert r.read().decode().strip() == key.verifier().encode()
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/tlog/checkpoints", timeout=10) as r:
            page = json.loads(r.read())
        assert max(e["size"] for e in page["checkpoints"] if e["chain"] == CHAIN) == 10
        polled = streamguard(
            deployment,
            "witness",
            "--url",
            f"http://127.0.0.1:{PORT}/tlog/checkpoints",
            "--log-key",
            pub,
            "--key",
            witness_file,
            "--state",
            state,
        )
        assert polled.returncode == 0, polled.stderr
        assert "chain 'searches-0': cosigned size 10" in polled.stdout
    finally:
        assert worker.stop() == 0, worker.log_text()[-3000:]

    # A restarted worker takes the tree up from its last checkpoint on the topic.
    worker.start()
    try:
        later = _decide(deployment, 3)
        purge = {
            "type": "retention_purge",
            "purge_id": "purge-2026-03-01",
            "ts": "2026-03-01T02:00:00Z",
            "agency_id": "ca-oxnard-pd",
            "store": "vendor-db",
            "deleted_before": "2026-02-01T02:00:00Z",
            "records_deleted": 42,
        }
        deployment.send("purges", [("ca-oxnard-pd", purge)])
        got = deployment.collect(
            ["audit"], lambda c: "purge-2026-03-01" in audited(c["audit"]), 90.0
        )
        (record,) = [v for _, v in got["audit"] if v.get("event_id") == "purge-2026-03-01"]
        assert (record["chain"], record["kind"], record["outcome"]) == (
            "purges-0",
            "retention_purge",
            "purged",
        )
        after = _checkpoints(
            deployment,
            lambda es: _largest(es) == 13 and any(e.chain == "purges-0" for e in es),
        )
        polled = streamguard(
            deployment,
            "witness",
            "--url",
            f"http://127.0.0.1:{PORT}/tlog/checkpoints",
            "--log-key",
            pub,
            "--key",
            witness_file,
            "--state",
            state,
        )
        assert polled.returncode == 0, polled.stderr + polled.stdout
        assert "chain 'searches-0': cosigned size 13" in polled.stdout
    finally:
        assert worker.stop() == 0, worker.log_text()[-3000:]
    ten = next(e for e in before if e.checkpoint.size == 10)
    thirteen = next(e for e in after if e.checkpoint.size == 13)
    assert thirteen.previous_size is not None
    previous = next(e for e in after if e.checkpoint.size == thirteen.previous_size)
    verify_consistency(
        previous.checkpoint.size,
        13,
        previous.checkpoint.root,
        thirteen.checkpoint.root,
        thirteen.consistency,
    )
    assert previous.checkpoint.size >= ten.checkpoint.size

    checkpoints = tmp_path / "checkpoints.jsonl"
    checkpoints.write_text("".join(serde.dumps(e.as_dict()).decode() + "\n" for e in after))

    ok = streamguard(deployment, "verify-audit", "--checkpoints", checkpoints, "--key", pub)
    assert ok.returncode == 0, ok.stderr
    assert "audit OK: 2 chains, 14 records" in ok.stdout and "checkpoints OK" in ok.stdout
    retention = streamguard(
        deployment,
        "verify-retention",
        "--owner",
        "ca-oxnard-pd",
        "--days",
        "30",
        "--from",
        "2026-03-01T03:00:00Z",
        "--to",
        "2026-03-02T00:00:00Z",
        "--checkpoints",
        checkpoints,
        "--key",
        pub,
    )
    assert retention.returncode == 0, retention.stderr
    assert "no data of ca-oxnard-pd in vendor-db was kept past 30 days" in retention.stdout
    cosigned = streamguard(
        deployment,
        "verify-audit",
        "--checkpoints",
        state,
        "--key",
        pub,
        "--witness-key",
        witness_pub,
    )
    assert cosigned.returncode == 0, cosigned.stderr
    assert "3 cosigned by a trusted witness" in cosigned.stdout  # 10, then 13 and the purge

    # An inclusion proof from the broker, checked offline with the public keys only.
    proof = tmp_path / "proof.json"
    proved = streamguard(deployment, "prove", first[4], "--checkpoints", state, "--out", proof)
    assert proved.returncode == 0, proved.stderr
    checked = streamguard(
        deployment, "verify-proof", proof, "--key", pub, "--witness-key", witness_pub
    )
    assert checked.returncode == 0, checked.stderr
    assert "proof OK: record seq 5 of chain 'searches-0'" in checked.stdout
    assert "cosigned by auditor.test.example/witness" in checked.stdout
    proved = streamguard(deployment, "prove", later[0])  # from the checkpoints topic
    assert proved.returncode == 0, proved.stderr
    assert json.loads(proved.stdout)["tree_size"] == 13

    # Every tampering, each on a copy of the audit topic as an insider would leave it.
    everything = [serde.loads(v) for _, _, v in deployment.audit_records()]
    trail = [r for r in everything if r["chain"] == CHAIN]
    others = [r for r in everything if r["chain"] != CHAIN]  # the purges chain, untouched
    assert [r["seq"] for r in trail] == list(range(1, 14))
    rewritten = copy.deepcopy(trail)
    rewritten[2]["outcome"] = "denied"  # an approved search made to look refused
    reordered = copy.deepcopy(trail)
    reordered[5], reordered[6] = reordered[6], reordered[5]
    tamperings: dict[str, tuple[list[dict[str, Any]], str]] = {
        "truncated": (trail[:8], "holds 8 records"),
        "rewritten": (rechain(rewritten), "not an extension"),
        "reordered": (rechain(reordered), "not an extension"),
        "record-deleted": (rechain(trail[:6] + trail[7:]), "checkpoint of size"),
        "chain-deleted": ([], "holds 0 records"),
    }
    for name, (records, expected) in tamperings.items():
        topic = _forged_topic(deployment, f"audit-{name}", records + others)
        if name in ("rewritten", "reordered", "record-deleted"):
            chain_only = streamguard(deployment, "verify-audit", "--topic", topic)
            assert chain_only.returncode == 0, (name, chain_only.stderr)  # the chain cannot tell
        caught = streamguard(
            deployment, "verify-audit", "--topic", topic, "--checkpoints", checkpoints, "--key", pub
        )
        assert caught.returncode == 1, (name, caught.stdout, caught.stderr)
        assert "CHECKPOINT MISFIT: chain 'searches-0'" in caught.stderr, (name, caught.stderr)
        assert expected in caught.stderr, (name, caught.stderr)
    # The rewrite is pinned to the records between the last checkpoint that fits and the first
    # that does not: record 3 sits in 1..4 when checkpoints come every 4 records.
    topic = deployment.prefix + "audit-rewritten"
    caught = streamguard(
        deployment, "verify-audit", "--topic", topic, "--checkpoints", checkpoints, "--key", pub
    )
    assert "the first record that does not fit is" in caught.stderr
