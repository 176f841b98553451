"""Counting is idempotent under replay: the counters table carries, per input partition, the last
offset whose counts it holds, and a replayed message at or below it is decided again but never
counted again (no second increment, no second alert, no second owner attempt)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streamguard import serde
from streamguard.core.statutes import load_statutes
from streamguard.settings import WorkerSettings
from streamguard.stream.processor import BatchProcessor, mark_key
from streamguard.stream.tables import build_state
from streamguard.stream.types import BatchResult, InMessage
from tests.helpers import AGENCIES, NOW, RecordingSink, search


def _processor(limit: int, sink: RecordingSink) -> BatchProcessor:
    state = build_state(load_statutes(), AGENCIES, (), (), 0)
    settings = WorkerSettings(rate_limit_per_minute=limit)
    return BatchProcessor(settings, state, {}, b"salt-salt-salt-salt", sink, lambda: NOW)


def _searches(n: int, *, partition: int = 0, first_offset: int = 0) -> list[InMessage]:
    """n searches by Houston PD on Ventura's network, in one event-time minute."""
    out = []
    for i in range(n):
        event = search(
            "tx-houston-pd",
            networks=["ca-ventura-county-so"],
            search_id=f"s-{first_offset + i}",
            ts=f"2025-03-01T11:59:{i:02d}Z",
        )
        out.append(
            InMessage(
                "searches",
                "t.searches",
                partition,
                first_offset + i,
                b"tx-houston-pd",
                serde.dumps(event),
            )
        )
    return out


def _run(
    proc: BatchProcessor, batch: Sequence[InMessage], table: dict[str, Any]
) -> tuple[BatchResult, list[tuple[str, tuple[str, ...]]]]:
    """Process `batch` against `table` (the counters store), then apply its writes to it."""
    result = proc.process(batch, now=NOW, counters=table, heads={})
    table.update(result.counters)
    for key in result.expired:
        table.pop(key, None)
    audit = [serde.loads(record) for _, record in result.audit]
    return result, [(a["event_id"], tuple(a["codes"])) for a in audit]


def _count_keys(counters: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counters.items() if not k.endswith("|decided-through")}


def test_the_mark_is_written_with_the_counts_of_each_partition() -> None:
    proc = _processor(0, RecordingSink())
    table: dict[str, Any] = {}
    batch = _searches(3, partition=0) + _searches(2, partition=2, first_offset=40)
    result, _ = _run(proc, batch, table)
    assert result.counters[mark_key(0)] == 2
    assert result.counters[mark_key(2)] == 41
    assert mark_key(1) not in result.counters


def test_a_replayed_batch_is_decided_again_but_not_counted_again() -> None:
    sink = RecordingSink()
    proc = _processor(0, sink)
    table: dict[str, Any] = {}
    batch = _searches(5)
    _, first = _run(proc, batch, table)
    counts = _count_keys(table)
    attempts = list(sink.attempts)
    assert counts and all(v == 5 for k, v in counts.items() if "|searches|" in k)

    result, again = _run(proc, batch, table)
    assert again == first  # same events, same decisions (no limit here)
    assert _count_keys(result.counters) == {}  # no count moved
    assert _count_keys(table) == counts
    assert sink.attempts == attempts  # no second out-of-state attempt
    assert [m.role for m in result.messages if m.role == "attempts"] == []


def test_only_messages_above_the_mark_are_counted() -> None:
    proc = _processor(0, RecordingSink())
    table: dict[str, Any] = {}
    _run(proc, _searches(3), table)
    minute = next(k for k in table if "|searches|1m|" in k)
    # A replay that starts inside the counted range and goes past it: offsets 1..5.
    result, _ = _run(proc, _searches(5, first_offset=1), table)
    assert table[minute] == 6  # offsets 0..5, each once
    assert result.counters[mark_key(0)] == 5


def test_a_replay_spanning_several_batches_is_never_counted() -> None:
    """The mark never moves back: a replay of offsets 0..9 in two batches counts nothing."""
    proc = _processor(0, RecordingSink())
    table: dict[str, Any] = {}
    batch = _searches(10)
    _run(proc, batch, table)
    counts = _count_keys(table)
    for part in (batch[:5], batch[5:]):
        result, _ = _run(proc, part, table)
        assert _count_keys(result.counters) == {}
        assert table[mark_key(0)] == 9
    assert _count_keys(table) == counts


def test_replayed_searches_over_the_limit_stay_limited_and_raise_no_second_alert() -> None:
    sink = RecordingSink()
    proc = _processor(2, sink)
    table: dict[str, Any] = {}
    batch = _searches(3)
    _, first = _run(proc, batch, table)
    limited = ["RATE_LIMIT_EXCEEDED" in c for _, c in first]
    assert limited == [False, False, True]
    assert sink.alerts == ["search_rate"]

    # Replay of the last message only (the first two were committed): same decision.
    _, again = _run(proc, batch[2:], table)
    assert again == first[2:]
    assert sink.alerts == ["search_rate"]
    # A new search in the same minute is counted and limited as one worker would.
    _, new = _run(proc, _searches(1, first_offset=3), table)
    assert "RATE_LIMIT_EXCEEDED" in new[0][1]
    assert next(v for k, v in table.items() if "|searches|1m|" in k) == 4


def test_a_replay_never_decides_more_permissively_than_the_original() -> None:
    """The count before each replayed search is not stored, only the total: a replayed search
    is limited whenever the total already passes the limit (fail closed)."""
    proc = _processor(2, RecordingSink())
    table: dict[str, Any] = {}
    batch = _searches(3)
    _, first = _run(proc, batch, table)
    _, again = _run(proc, batch, table)
    for (_, before), (_, after) in zip(first, again, strict=True):
        assert "RATE_LIMIT_EXCEEDED" not in before or "RATE_LIMIT_EXCEEDED" in after


def test_replayed_owner_attempts_are_not_counted_again() -> None:
    proc = _processor(0, RecordingSink())
    table: dict[str, Any] = {}
    record = {"owner": "ca-ventura-county-so", "start": 1740826800, "n": 3, "ts": 1740826900.0}
    msg = InMessage("attempts", "t.attempts", 1, 7, b"ca-ventura-county-so", serde.dumps(record))
    _run(proc, [msg], table)
    _run(proc, [msg], table)
    attempts = [v for k, v in table.items() if "|attempts|" in k]
    assert attempts == [3]
    assert table[mark_key(1)] == 7


def test_reads_carry_no_mark() -> None:
    proc = _processor(0, RecordingSink())
    msg = InMessage("reads", "t.reads", 0, 3, b"x", serde.dumps({"type": "plate_read"}))
    result = proc.process([msg], now=NOW, counters={}, heads={})
    assert result.counters == {}


def test_only_attempts_the_owners_law_forbids_are_counted() -> None:
    """Issue #13: an out-of-state search on a TX, IL or GA owner (whose law allows out-of-state
    recipients) is no attempt; on a CA owner it is (OUT_OF_STATE_RECIPIENT), as a federal one
    is on CA (FEDERAL_RECIPIENT)."""
    sink = RecordingSink()
    proc = _processor(0, sink)
    owners = ["ca-ventura-county-so", "tx-dallas-pd", "il-mount-prospect-pd", "ga-atlanta-pd"]
    batch = []
    for i, requester in enumerate(("wa-seattle-pd", "us-fbi")):
        event = search(requester, networks=owners, search_id=f"o-{i}", ts=f"2025-03-01T11:59:0{i}Z")
        batch.append(
            InMessage("searches", "t.searches", 0, i, requester.encode(), serde.dumps(event))
        )
    result, audit = _run(proc, batch, {})
    assert "OUT_OF_STATE_RECIPIENT" in audit[0][1] and "FEDERAL_RECIPIENT" in audit[1][1]
    assert sorted(sink.attempts) == [
        ("ca-ventura-county-so", "federal"),
        ("ca-ventura-county-so", "out_of_state"),
    ]
    sent = [m.value for m in result.messages if m.role == "attempts"]
    assert [(m["owner"], m["n"]) for m in sent] == [("ca-ventura-county-so", 2)]
