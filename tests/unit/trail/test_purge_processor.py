"""The purges topic's processor: one retention_purge audit record per event, judged by the
owner's retention limit; anything else quarantined and audited as malformed."""

from __future__ import annotations

from typing import Any

from streamguard import serde
from streamguard.core.statutes import load_statutes
from streamguard.settings import WorkerSettings
from streamguard.stream.tables import build_state
from streamguard.stream.types import InMessage
from streamguard.trail.chain import verify_chains
from streamguard.worker.purges import PurgeProcessor
from tests.helpers import AGENCIES, NOW, RecordingSink


def _processor() -> PurgeProcessor:
    state = build_state(load_statutes(), AGENCIES, (), (), 0)
    return PurgeProcessor(
        WorkerSettings(), state, {}, b"salt-salt-salt-salt", RecordingSink(), lambda: NOW
    )


def _purge(**change: Any) -> bytes:
    event = {
        "type": "retention_purge",
        "purge_id": "p-1",
        "ts": "2025-03-01T02:00:00Z",
        "agency_id": "va-richmond-pd",  # Virginia: 21 days
        "store": "vendor-db",
        "deleted_before": "2025-02-10T02:00:00Z",
        "records_deleted": 10,
    }
    return serde.dumps(event | change)


def test_purges_are_audited_in_their_own_chain_and_judged() -> None:
    batch = [
        InMessage("purges", "t.purges", 1, 0, b"va-richmond-pd", _purge()),
        InMessage(
            "purges",
            "t.purges",
            1,
            1,
            b"va-richmond-pd",
            _purge(purge_id="p-2", deleted_before="2025-01-01T00:00:00Z"),
        ),
        InMessage("purges", "t.purges", 1, 2, None, b"not json"),
        InMessage("purges", "t.purges", 1, 3, None, _purge(purge_id="p-4", store="")),
    ]
    result = _processor().process(batch, now=NOW, counters={}, heads={})
    audited = [serde.loads(v) for _, v in result.audit]
    assert {c for c, _ in result.audit} == {"purges-1"}
    assert verify_chains(audited).broken is None
    first, late, junk, bad = audited
    assert (first["kind"], first["outcome"], first["codes"]) == ("retention_purge", "purged", [])
    assert (
        first["kept_days"] == 19.0 and first["limit_days"] == 21.0 and first["store"] == "vendor-db"
    )
    assert (late["outcome"], late["codes"]) == ("purged_late", ["RETENTION_EXCEEDED"])
    assert (junk["outcome"], junk["codes"]) == ("malformed", ["MALFORMED_EVENT"])
    assert (bad["outcome"], bad["codes"], bad["event_id"]) == (
        "malformed",
        ["SCHEMA_INVALID"],
        "p-4",
    )
    quarantined = [m.value for m in result.messages if m.role == "quarantine"]
    assert len(quarantined) == 2 and "store" in quarantined[1]["reasons"][0]["detail"]
    assert result.heads["purges-1"][1]["seq"] == 4
