"""Audit chains across a graceful worker restart, and `verify-audit` on a real broker."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

from streamguard.local.testing import (
    Collected,
    WorkerProcess,
    collect,
    contract_topics,
    create_topics,
    produce,
    run,
    search_request,
    verify_audit,
    worker_env,
)
from streamguard.trail.chain import record_hash

AGENCIES = "agency_id,name,state,kind\nca-oxnard-pd,Oxnard PD,CA,local\n"


def _decide(bootstrap: str, prefix: str, n: int) -> Collected:
    searches = [search_request("ca-oxnard-pd", networks=["ca-oxnard-pd"]) for _ in range(n)]
    run(produce(bootstrap, prefix + "searches", [("ca-oxnard-pd", s) for s in searches]))
    ids = {s["search_id"] for s in searches}

    def done(c: Collected) -> bool:
        return ids <= {v.get("event_id") for _, v in c[prefix + "audit"]}

    got: Collected = run(collect(bootstrap, [prefix + "audit"], done, 90.0))
    assert done(got)
    return got


def test_chain_continues_across_restart_and_tampering_is_named(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """After a graceful restart the chain continues (seq +1, prev_hash linked) and verify-audit
    exits 0; a forged record appended to the topic makes it exit 1 naming chain and seq."""
    prefix = f"sgv{uuid.uuid4().hex[:8]}."
    (tmp_path / "agencies.csv").write_text(AGENCIES, encoding="utf-8")
    run(create_topics(kafka_bootstrap, contract_topics(prefix), 1))
    env = worker_env(
        kafka_bootstrap,
        prefix,
        tmp_path / "data",
        agencies=tmp_path / "agencies.csv",
        web_port=6131,
        partitions=1,
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        _decide(kafka_bootstrap, prefix, 5)
    finally:
        assert worker.stop() == 0, worker.log_text()[-3000:]
    worker.start()
    try:
        got = _decide(kafka_bootstrap, prefix, 5)
    finally:
        assert worker.stop() == 0, worker.log_text()[-3000:]

    chain = [v for _, v in got[prefix + "audit"] if v["chain"] == "searches-0"]
    assert [r["seq"] for r in chain] == list(range(1, 11))
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(chain))

    result = verify_audit(kafka_bootstrap, prefix)
    assert result.returncode == 0, result.stderr
    assert "1 chains, 10 records" in result.stdout

    forged: dict[str, Any] = {
        **chain[-1],
        "seq": 11,
        "prev_hash": chain[-1]["hash"],
        "outcome": "approved",
        "event_id": "forged",
    }
    forged["hash"] = record_hash({**forged, "outcome": "denied"})  # hash of other contents
    run(produce(kafka_bootstrap, prefix + "audit", [("searches-0", forged)]))
    result = verify_audit(kafka_bootstrap, prefix)
    assert result.returncode == 1
    assert "chain 'searches-0' breaks at seq 11" in result.stderr
    assert "altered" in result.stderr
