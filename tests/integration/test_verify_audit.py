"""Audit chains across a graceful worker restart, and `verify-audit` on a real broker."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from streamguard.local.testing import Collected, Deployment, search_request, write_agencies
from streamguard.trail.chain import record_hash
from tests.helpers import Deploy, audited

AGENCIES = "agency_id,name,state,kind\nca-oxnard-pd,Oxnard PD,CA,local\n"


def _decide(deployment: Deployment, n: int) -> Collected:
    searches = [search_request("ca-oxnard-pd", networks=["ca-oxnard-pd"]) for _ in range(n)]
    deployment.send("searches", [("ca-oxnard-pd", s) for s in searches])
    ids = {s["search_id"] for s in searches}

    def done(c: Collected) -> bool:
        return ids <= audited(c["audit"])

    got = deployment.collect(["audit"], done, 90.0)
    assert done(got)
    return got


def test_chain_continues_across_restart_and_tampering_is_named(
    deploy: Deploy, tmp_path: Path
) -> None:
    """After a graceful restart the chain continues (seq +1, prev_hash linked) and verify-audit
    exits 0; a forged record appended to the topic makes it exit 1 naming chain and seq."""
    deployment = deploy("sgv", partitions=1)
    worker = deployment.add_worker(6131, agencies=write_agencies(tmp_path, AGENCIES))
    try:
        _decide(deployment, 5)
    finally:
        assert worker.stop() == 0, worker.log_text()[-3000:]
    worker.start()
    try:
        got = _decide(deployment, 5)
    finally:
        assert worker.stop() == 0, worker.log_text()[-3000:]

    chain = [v for _, v in got["audit"] if v["chain"] == "searches-0"]
    assert [r["seq"] for r in chain] == list(range(1, 11))
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(chain))

    result = deployment.verify_audit()
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
    deployment.send("audit", [("searches-0", forged)])
    result = deployment.verify_audit()
    assert result.returncode == 1
    assert "chain 'searches-0' breaks at seq 11" in result.stderr
    assert "altered" in result.stderr
