"""A worker that takes partitions over (restart or rebalance) takes their counters over too:
the restored keys expire like its own, and the agency-search gauges show the restored counts."""

from __future__ import annotations

from typing import Any

from streamguard import serde
from streamguard.core.statutes import load_statutes
from streamguard.settings import WorkerSettings
from streamguard.stream.processor import BatchProcessor
from streamguard.stream.tables import build_state
from streamguard.stream.types import InMessage
from tests.helpers import AGENCIES, NOW, RecordingSink, search


def _processor(sink: RecordingSink) -> BatchProcessor:
    state = build_state(load_statutes(), AGENCIES, (), (), 0)
    return BatchProcessor(
        WorkerSettings(rate_limit_per_minute=0), state, {}, b"salt-salt-salt", sink, lambda: NOW
    )


def _search(offset: int, ts: str, requester: str = "tx-houston-pd") -> InMessage:
    event = search(requester, networks=[requester], search_id=f"s-{offset}", ts=ts)
    return InMessage("searches", "t.searches", 0, offset, requester.encode(), serde.dumps(event))


def _decide(proc: BatchProcessor, msgs: list[InMessage], table: dict[str, Any]) -> list[str]:
    result = proc.process(msgs, now=NOW, counters=table, heads={})
    table.update(result.counters)
    for key in result.expired:
        table.pop(key, None)
    return result.expired


def test_restored_counts_reach_the_gauges() -> None:
    table: dict[str, Any] = {}
    searches = [_search(i, "2025-03-01T11:59:00Z") for i in range(4)]
    _decide(_processor(RecordingSink()), searches, table)

    sink = RecordingSink()
    successor = _processor(sink)
    successor.seed_counters(table.items())
    assert successor.publish_pending_gauges(NOW) is True
    assert sink.gauges["1m"] == {"tx-houston-pd": 4}
    assert sink.gauges["1h"] == {"tx-houston-pd": 4}
    assert sink.gauges["24h"] == {"tx-houston-pd": 4}


def test_restored_keys_expire_like_the_workers_own() -> None:
    table: dict[str, Any] = {}
    _decide(_processor(RecordingSink()), [_search(0, "2025-03-01T09:10:00Z")], table)
    minute_keys = [k for k in table if "|1m|" in k]
    assert minute_keys

    successor = _processor(RecordingSink())
    successor.seed_counters(table.items())
    # Two hours of event time later the old minute bucket is past its grace.
    expired = _decide(successor, [_search(1, "2025-03-01T11:10:00Z")], table)
    assert set(minute_keys) <= set(expired)


def test_a_new_assignment_replaces_what_the_worker_held_before() -> None:
    """After a rebalance the gauges show only the partitions the worker still owns."""
    sink = RecordingSink()
    proc = _processor(sink)
    table: dict[str, Any] = {}
    _decide(proc, [_search(0, "2025-03-01T11:59:00Z", "tx-dallas-pd")], table)
    proc.seed_counters([])  # every partition moved away
    proc.seed_counters([("0|searches|1h|1740826800|tx-houston-pd", 2), ("0|decided-through", 9)])
    proc.publish_pending_gauges(NOW)
    assert sink.gauges["1h"] == {"tx-houston-pd": 2}
