"""The transparency commands end to end as processes: keys, verify-audit --checkpoints on a
tampered export, prove, verify-proof offline with the public key only, and the witness."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from streamguard.trail.checkpoint import COSIGNATURE, SignerKey
from tests.unit.exports.samples import run_streamguard
from tests.unit.trail.tlog_samples import fork, rechain, trail_with_checkpoints

CHAIN = "searches-0"


def run(command: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_streamguard(command, *args)


def _jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


def _keys(tmp_path: Path) -> tuple[SignerKey, Path, Path, Path]:
    log = run("checkpoint-key", "alpr.county.example/audit", "--out", tmp_path / "log.key")
    assert log.returncode == 0, log.stderr
    assert log.stdout.startswith("alpr.county.example/audit+")
    assert (tmp_path / "log.key").stat().st_mode & 0o077 == 0
    witness = run(
        "checkpoint-key", "auditor.example/w", "--witness", "--out", tmp_path / "witness.key"
    )
    assert witness.returncode == 0, witness.stderr
    again = run("checkpoint-key", "x.example/y", "--out", tmp_path / "log.key")
    assert again.returncode == 2 and "never overwritten" in again.stderr
    assert again.stderr.startswith(f"streamguard checkpoint-key: error: {tmp_path / 'log.key'} ")
    key = SignerKey.parse((tmp_path / "log.key").read_text())
    return key, tmp_path / "log.key.pub", tmp_path / "witness.key", tmp_path / "witness.key.pub"


def test_checkpoint_key_writes_neither_file_when_one_is_in_the_way(tmp_path: Path) -> None:
    """A stale .pub is refused before the secret key is created (else the published key would
    not be the one the worker signs with); a missing directory is one line naming the file."""
    out = tmp_path / "log.key"
    Path(f"{out}.pub").write_text("an old public key\n", encoding="utf-8")
    stale = run("checkpoint-key", "alpr.county.example/audit", "--out", out)
    assert stale.returncode == 2
    assert stale.stderr == (
        f"streamguard checkpoint-key: error: {out}.pub exists; a key file is never "
        "overwritten (choose another --out)\n"
    )
    assert not out.exists()
    assert Path(f"{out}.pub").read_text(encoding="utf-8") == "an old public key\n"

    nowhere = tmp_path / "missing" / "log.key"
    missing = run("checkpoint-key", "alpr.county.example/audit", "--out", nowhere)
    assert missing.returncode == 2
    assert missing.stderr == (
        f"streamguard checkpoint-key: error: cannot write key file {nowhere}: the directory "
        f"{nowhere.parent} does not exist\n"
    )


def test_verify_audit_checkpoints_catches_a_recomputed_rewrite(tmp_path: Path) -> None:
    key, pub, _, _ = _keys(tmp_path)
    trail, entries = trail_with_checkpoints(key, CHAIN, 30, every=10)
    cps = _jsonl(tmp_path / "checkpoints.jsonl", [e.as_dict() for e in entries])
    good = _jsonl(tmp_path / "trail.jsonl", trail)
    ok = run("verify-audit", "--trail", good, "--checkpoints", cps, "--key", pub)
    assert ok.returncode == 0, ok.stderr
    assert "audit OK: 1 chains, 30 records" in ok.stdout
    assert "checkpoints OK: 3 signed checkpoints of 1 chains" in ok.stdout

    forged = copy.deepcopy(trail)
    forged[16]["outcome"] = "approved"  # seq 17, then every hash recomputed
    bad = _jsonl(tmp_path / "forged.jsonl", rechain(forged))
    chain_only = run("verify-audit", "--trail", bad)
    assert chain_only.returncode == 0  # the hash chain alone cannot see it
    caught = run("verify-audit", "--trail", bad, "--checkpoints", cps, "--key", pub)
    assert caught.returncode == 1
    assert "CHECKPOINT MISFIT: chain 'searches-0', checkpoint of size 20" in caught.stderr
    assert "seq 17..20" in caught.stderr or "seq 17" in caught.stderr

    truncated = _jsonl(tmp_path / "short.jsonl", trail[:25])
    cut = run("verify-audit", "--trail", truncated, "--checkpoints", cps, "--key", pub)
    assert cut.returncode == 1 and "holds 25 records" in cut.stderr

    missing = run("verify-audit", "--trail", good, "--checkpoints", cps)
    assert missing.returncode == 2 and "--key" in missing.stderr
    (tmp_path / "junk.jsonl").write_text('{"chain": "x"}\n', encoding="utf-8")
    junk = run(
        "verify-audit", "--trail", good, "--checkpoints", tmp_path / "junk.jsonl", "--key", pub
    )
    assert junk.returncode == 2 and "junk.jsonl:1" in junk.stderr


def test_prove_and_verify_proof_offline(tmp_path: Path) -> None:
    key, pub, witness_key, witness_pub = _keys(tmp_path)
    trail, entries = trail_with_checkpoints(key, CHAIN, 30, every=10)
    cps = _jsonl(tmp_path / "checkpoints.jsonl", [e.as_dict() for e in entries])
    good = _jsonl(tmp_path / "trail.jsonl", trail)

    # The witness cosigns; its file is what the auditor keeps.
    state = tmp_path / "witness-state.jsonl"
    w = run("witness", "--from", cps, "--log-key", pub, "--key", witness_key, "--state", state)
    assert w.returncode == 0, w.stderr
    assert "chain 'searches-0': cosigned size 30" in w.stdout

    event = trail[11]["event_id"]
    proof_path = tmp_path / "proof.json"
    proved = run("prove", event, "--trail", good, "--checkpoints", cps, "--out", proof_path)
    assert proved.returncode == 0, proved.stderr
    doc = json.loads(proof_path.read_text())
    assert doc["tree_size"] == 20 and doc["leaf_index"] == 11  # the first checkpoint covering it

    checked = run("verify-proof", proof_path, "--key", pub)
    assert checked.returncode == 0, checked.stderr
    assert "proof OK: record seq 12 of chain 'searches-0'" in checked.stdout
    assert f"event_id={event}" in checked.stdout

    # Against the witness's cosigned checkpoint: the cosignature's time is the "no later than".
    cosigned = tmp_path / "cosigned.json"
    proved = run("prove", event, "--trail", good, "--checkpoints", state, "--out", cosigned)
    assert proved.returncode == 0, proved.stderr
    checked = run("verify-proof", cosigned, "--key", pub, "--witness-key", witness_pub)
    assert checked.returncode == 0, checked.stderr
    assert "cosigned by auditor.example/w at" in checked.stdout

    doc["record"]["outcome"] = "approved"
    proof_path.write_text(json.dumps(doc))
    forged = run("verify-proof", proof_path, "--key", pub)
    assert forged.returncode == 1 and "FAILED" in forged.stderr and "altered" in forged.stderr
    unknown = run("prove", "no-such-event", "--trail", good, "--checkpoints", cps)
    assert unknown.returncode == 2 and "no audit record" in unknown.stderr


def test_the_witness_refuses_a_rewritten_log_and_keeps_evidence(tmp_path: Path) -> None:
    key, pub, witness_key, _ = _keys(tmp_path)
    trail, entries = trail_with_checkpoints(key, CHAIN, 20, every=10)
    state = tmp_path / "state.jsonl"
    first = _jsonl(tmp_path / "first.jsonl", [entries[0].as_dict()])
    assert (
        run(
            "witness", "--from", first, "--log-key", pub, "--key", witness_key, "--state", state
        ).returncode
        == 0
    )
    forged = copy.deepcopy(trail)
    forged[3]["outcome"] = "approved"
    split = [fork(key, rechain(forged)[:10])]
    offered = _jsonl(tmp_path / "fork.jsonl", [e.as_dict() for e in split])
    w = run("witness", "--from", offered, "--log-key", pub, "--key", witness_key, "--state", state)
    assert w.returncode == 1 and "ALARM" in w.stdout
    evidence = [json.loads(x) for x in (tmp_path / "state.jsonl.alarms").read_text().splitlines()]
    assert evidence[0]["type"] == "witness_alarm" and evidence[0]["held"]["size"] == 10
    lines = state.read_text().splitlines()
    assert len(lines) == 1  # nothing cosigned after the alarm
    wrong_key = run(
        "witness",
        "--from",
        offered,
        "--log-key",
        pub,
        "--key",
        tmp_path / "log.key",
        "--state",
        state,
    )
    assert wrong_key.returncode == 2 and "cosigning" in wrong_key.stderr
    assert COSIGNATURE == 4


def test_verify_retention_and_a_purge_proof(tmp_path: Path) -> None:
    from streamguard.trail.chain import build_record, genesis
    from streamguard.trail.checkpointer import Checkpointer

    key, pub, _, _ = _keys(tmp_path)
    head = genesis("policy-0")
    trail = []
    for day in range(1, 11):
        record, head = build_record(
            head,
            {
                "event_id": f"purge-{day}",
                "kind": "retention_purge",
                "outcome": "purged",
                "owner": "ca-ventura-pd",
                "store": "vendor-db",
                "purged_at": f"2026-03-{day:02d}T02:00:00Z",
                "deleted_before": f"2026-02-{day:02d}T02:00:00Z",
                "kept_days": 28.0,
                "limit_days": 30.0,
            },
        )
        trail.append(record)
    signer = Checkpointer(key, 100, 3600.0)
    signer.resume("policy-0", None, trail, now=0.0)
    cps = _jsonl(tmp_path / "cps.jsonl", [e.as_dict() for e in signer.due(0.0, force=True)])
    good = _jsonl(tmp_path / "trail.jsonl", trail)
    window = ("--owner", "ca-ventura-pd", "--days", "30", "--trail", good)
    march = ("--from", "2026-03-01T03:00:00Z", "--to", "2026-03-10T12:00:00Z")
    ok = run("verify-retention", *window, *march, "--checkpoints", cps, "--key", pub)
    assert ok.returncode == 0, ok.stderr
    assert "retention OK: no data of ca-ventura-pd in vendor-db was kept past 30 days" in ok.stdout
    tight = run("verify-retention", *window[:3], "20", *window[4:], *march)
    assert tight.returncode == 1 and "GAP" in tight.stderr
    late = run("verify-retention", *window, *march[:3], "2026-04-30T00:00:00Z")
    assert late.returncode == 1 and "no purge since" in late.stderr
    # An insider drops one purge record: the checkpoints show the trail was changed.
    forged = _jsonl(tmp_path / "forged.jsonl", rechain(trail[:4] + trail[5:]))
    hidden = run(
        "verify-retention",
        *window[:4],
        "--trail",
        forged,
        *march,
        "--checkpoints",
        cps,
        "--key",
        pub,
    )
    assert hidden.returncode == 1 and "CHECKPOINT MISFIT" in hidden.stderr

    proof = tmp_path / "purge-proof.json"
    assert (
        run("prove", "purge-3", "--trail", good, "--checkpoints", cps, "--out", proof).returncode
        == 0
    )
    shown = run("verify-proof", proof, "--key", pub)
    assert shown.returncode == 0, shown.stderr
    assert (
        "retention purge: vendor-db data of ca-ventura-pd older than 2026-02-03T02:00:00Z"
        in shown.stdout
    )


def test_the_worker_refuses_an_unusable_checkpoint_key(tmp_path: Path) -> None:
    import os

    witness_only = tmp_path / "w.key"
    assert run("checkpoint-key", "w.example/x", "--witness", "--out", witness_only).returncode == 0
    base = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")}
    base |= {
        "STREAMGUARD_DATA_DIR": str(tmp_path / "data"),
        "STREAMGUARD_PLATE_SALT": "test-salt-0123456789abcdef",
        "STREAMGUARD_BROKER": "kafka://127.0.0.1:1",
    }
    for key, why in ((tmp_path / "missing.key", "cannot read"), (witness_only, "log signing")):
        result = subprocess.run(
            [sys.executable, "-m", "streamguard", "worker"],
            env=base | {"STREAMGUARD_CHECKPOINT_KEY": str(key)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, result.stderr[-2000:]
        assert "STREAMGUARD_CHECKPOINT_KEY" in result.stderr and why in result.stderr
