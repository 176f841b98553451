"""Owner attempts of statewide and national searches, noted once per shared spread and spread
over the owners at the end of the batch, equal the attempts counted verdict by verdict."""

from __future__ import annotations

from collections import Counter

from streamguard import serde
from streamguard.core.engine import decide_search
from streamguard.core.models import SearchDecision
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from streamguard.settings import WorkerSettings
from streamguard.stream.attempts import attempt_kind
from streamguard.stream.processor import BatchProcessor
from streamguard.stream.types import InMessage
from streamguard.stream.windows import TUMBLING_HOUR, current_start
from tests.helpers import RecordingSink
from tests.unit.core.fanout_samples import NOW, wide_searches, world


def test_grouped_attempts_equal_the_attempts_counted_per_verdict() -> None:
    agencies, settings = world(5)
    statutes = load_statutes()
    events = wide_searches(agencies, 6)
    sink = RecordingSink()
    proc = BatchProcessor(
        WorkerSettings(rate_limit_per_minute=0),
        PolicyState.create(statutes, agencies, settings),
        {},
        b"salt-salt-salt-salt",
        sink,
        lambda: NOW,
    )
    batch = [
        InMessage("searches", "t.searches", 0, i, b"k", serde.dumps(e))
        for i, e in enumerate(events)
    ]
    result = proc.process(batch, now=NOW, counters={}, heads={})

    expected: Counter[tuple[str, str]] = Counter()
    per_hour: Counter[tuple[str, int]] = Counter()
    registry = {a.agency_id for a in agencies}
    for event in events:
        alone = decide_search(event, PolicyState.create(statutes, agencies, settings), NOW)
        assert isinstance(alone, SearchDecision)
        if event["requester"]["agency_id"] not in registry:
            continue
        hour = current_start(NOW - 1, TUMBLING_HOUR)
        for verdict in alone.denied:
            kind = attempt_kind(verdict)
            if kind is not None and verdict.agency_id in registry:
                expected[(verdict.agency_id, kind)] += 1
                per_hour[(verdict.agency_id, hour)] += 1
    assert sum(expected.values()) > 500  # plenty of attempts, most of them grouped
    assert Counter(sink.attempts) == expected
    sent = Counter(
        {
            (m.value["owner"], m.value["start"]): m.value["n"]
            for m in result.messages
            if m.role == "attempts"
        }
    )
    assert sent == per_hour


def test_the_worker_setting_bounds_every_output_the_processor_writes() -> None:
    """STREAMGUARD_MAX_MESSAGE_BYTES reaches the processor: with a small limit the wide
    searches' records come out in parts that each fit it, and with the default none is split."""
    agencies, settings = world(5)
    state = PolicyState.create(load_statutes(), agencies, settings)
    batch = [
        InMessage("searches", "t.searches", 0, i, b"k", serde.dumps(e))
        for i, e in enumerate(wide_searches(agencies, 6))
    ]

    def outputs(limit: int | None) -> list[bytes]:
        proc = BatchProcessor(
            WorkerSettings(
                rate_limit_per_minute=0, **({} if limit is None else {"max_message_bytes": limit})
            ),
            state,
            {},
            b"salt-salt-salt-salt",
            RecordingSink(),
            lambda: NOW,
        )
        result = proc.process(batch, now=NOW, counters={}, heads={})
        return [
            serde.dumps(m.value) for m in result.messages if m.role in ("approved", "quarantine")
        ]

    whole, parted = outputs(None), outputs(16_000)
    assert max(len(v) for v in whole) > 16_000
    assert not any(b'"parts"' in v for v in whole)
    assert len(parted) > len(whole) and all(len(v) <= 16_000 for v in parted)
