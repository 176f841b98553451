"""The batch processor's inputs: every message through the front door, a bad one quarantined
with a reason, an engine failure quarantined as DECISION_ERROR, and the partition goes on."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from streamguard import serde
from streamguard.core.statutes import load_statutes
from streamguard.settings import WorkerSettings
from streamguard.stream import processor as processor_module
from streamguard.stream.processor import DECISION_ERROR, BatchProcessor
from streamguard.stream.tables import DELETED, build_state
from streamguard.stream.types import BatchResult, InMessage
from tests.helpers import AGENCIES, KEYS, NOW, RecordingSink, read, registry_record, search


def _processor() -> BatchProcessor:
    state = build_state(load_statutes(), AGENCIES, (), (), 0)
    return BatchProcessor(
        WorkerSettings(rate_limit_per_minute=0),
        state,
        KEYS,
        b"salt-salt-salt-salt",
        RecordingSink(),
        lambda: NOW,
    )


def _msg(role: str, offset: int, value: bytes | None, key: bytes | None = b"k") -> InMessage:
    return InMessage(role, f"t.{role}", 0, offset, key, value)


def _quarantined(result: BatchResult) -> list[dict[str, Any]]:
    return [m.value for m in result.messages if m.role == "quarantine"]


def _audited(result: BatchResult) -> list[dict[str, Any]]:
    return [serde.loads(record) for _, record in result.audit]


def test_unreadable_and_misplaced_messages_are_quarantined_with_their_reason() -> None:
    proc = _processor()
    batch = [
        _msg("searches", 0, b"{trunc"),
        _msg("searches", 1, serde.dumps(read("tx-houston-pd", []))),
        _msg("searches", 2, serde.dumps(search("tx-houston-pd", networks=["tx-houston-pd"]))),
    ]
    result = proc.process(batch, now=NOW, counters={}, heads={})
    quarantined = _quarantined(result)
    assert [q["kind"] for q in quarantined] == ["raw", "plate_read"]
    assert [q["reasons"][0]["code"] for q in quarantined] == ["MALFORMED_EVENT", "SCHEMA_INVALID"]
    assert quarantined[0]["original"] == {"raw_base64": base64.b64encode(b"{trunc").decode()}
    assert [a["outcome"] for a in _audited(result)] == ["malformed", "malformed", "approved"]


def test_agency_records_and_tombstones_change_the_registry() -> None:
    proc = _processor()
    reno = registry_record(
        {"agency_id": "nv-reno-pd", "name": "Reno PD", "state": "NV", "kind": "local"}
    )
    batch = [
        _msg("agencies", 0, serde.dumps(reno), b"nv-reno-pd"),
        _msg("agencies", 1, None, b"tx-dallas-pd"),
        _msg("agencies", 2, serde.dumps(reno), b"nv-sparks-pd"),
    ]
    result = proc.process(batch, now=NOW, counters={}, heads={})
    assert "nv-reno-pd" in proc.state.agencies and "tx-dallas-pd" not in proc.state.agencies
    assert result.registry["tx-dallas-pd"] == (0, DELETED)
    assert result.registry["nv-reno-pd"][1]["state"] == "NV"
    assert [a["outcome"] for a in _audited(result)] == ["upserted", "deleted", "malformed"]
    assert result.revisions == {"agencies-0": (0, 2)}


def test_an_engine_failure_quarantines_that_event_only(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """DECISION_ERROR, no event id trusted, the bytes kept, a log line without the message
    text; the next event is decided."""
    real = processor_module.decide_event

    def failing(event: Any, *args: Any, **kwargs: Any) -> Any:
        if event.event_id == "boom":
            raise RuntimeError("8ABC123 in a message that must not be logged")
        return real(event, *args, **kwargs)

    monkeypatch.setattr(processor_module, "decide_event", failing)
    proc = _processor()
    bad = serde.dumps(search("tx-houston-pd", networks=["tx-houston-pd"], search_id="boom"))
    good = serde.dumps(search("tx-houston-pd", networks=["tx-houston-pd"], search_id="fine"))
    result = proc.process(
        [_msg("searches", 0, bad), _msg("searches", 1, good)], now=NOW, counters={}, heads={}
    )
    [quarantined] = _quarantined(result)
    assert quarantined["kind"] == "search_request" and quarantined["event_id"] is None
    assert [r["code"] for r in quarantined["reasons"]] == [DECISION_ERROR]
    assert quarantined["original"] == {"raw_base64": base64.b64encode(bad).decode()}
    audited = _audited(result)
    assert [(a["event_id"], a["outcome"]) for a in audited] == [
        (None, "malformed"),
        ("fine", "approved"),
    ]
    assert "RuntimeError" in caplog.text and "8ABC123" not in caplog.text
