"""The worker's transparency hook with a fake producer and fake topic readers: it signs after
delivery, resumes from the topic, refuses a trail shorter than what was signed, and halts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streamguard import serde
from streamguard.trail.checkpointer import CheckpointerError
from streamguard.trail.merkle import verify_consistency
from streamguard.worker.checkpoints import Transparency
from tests.unit.trail.tlog_samples import log_key, records, trail_with_checkpoints

CHAIN = "searches-0"


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(self, topic: str, key: bytes, value: bytes, *_: Any) -> Any:
        self.sent.append((topic, key, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class FakeTail:
    def __init__(self, last: dict[str, Any] | None = None, after: list[Any] | None = None) -> None:
        self.last, self.after = last, after or []

    async def last_record(self, chain: str, floor: int | None) -> dict[str, Any] | None:
        return None if self.last is None else {**self.last, "offset": 7}

    async def records_after(self, chain: str, after: int, before: int) -> list[Any]:
        return [r for r in self.after if after < r["seq"] < before]


def _transparency(producer: FakeProducer, fatal: list[str], now: list[float]) -> Transparency:
    return Transparency(
        log_key(),
        topic="p.checkpoints",
        audit_topic="p.audit",
        bootstrap="localhost:1",
        client_options={},
        every_records=4,
        every_seconds=5.0,
        producer=lambda: producer,
        on_fatal=fatal.append,
        clock=lambda: now[0],
    )


def _audit(trail: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    return [(r["chain"], serde.dumps(r)) for r in trail]


async def test_signs_after_delivery_and_on_the_timer() -> None:
    producer, fatal, now = FakeProducer(), [], [0.0]
    t = _transparency(producer, fatal, now)
    t._audit, t._checkpoints = FakeTail(), FakeTail()  # type: ignore[assignment]
    trail = records(CHAIN, 6)
    await t.delivered(_audit(trail[:5]))
    assert [serde.loads(v)["size"] for _, _, v in producer.sent] == [5]
    await t.delivered(_audit(trail[5:]))
    await t.tick()
    assert len(producer.sent) == 1  # one new record, the interval not over yet
    now[0] = 6.0
    await t.tick()
    sizes = [serde.loads(v) for _, _, v in producer.sent]
    assert [(e["size"], e["previous_size"]) for e in sizes] == [(5, 0), (6, 5)]
    assert {k for _, k, _ in producer.sent} == {CHAIN.encode()}
    assert [e["size"] for e in t.page()["checkpoints"]] == [5, 6]
    assert fatal == []


async def test_resumes_from_the_last_checkpoint_and_the_records_after_it() -> None:
    key = log_key()
    trail, entries = trail_with_checkpoints(key, CHAIN, 8, every=4)
    producer, fatal, now = FakeProducer(), [], [0.0]
    t = _transparency(producer, fatal, now)
    t.key = key
    t.checkpointer.key = key
    t._audit = FakeTail(after=trail)  # type: ignore[assignment]
    t._checkpoints = FakeTail(last=entries[0].as_dict())  # type: ignore[assignment]
    more = records(CHAIN, 12)[8:]
    await t.delivered(_audit(more))
    (entry,) = [serde.loads(v) for _, _, v in producer.sent]
    assert (entry["size"], entry["previous_size"]) == (12, 4)
    from streamguard.trail.proofs import CheckpointEntry

    signed = CheckpointEntry.from_dict(entry)
    verify_consistency(
        4, 12, entries[0].checkpoint.root, signed.checkpoint.root, signed.consistency
    )


async def test_a_trail_shorter_than_its_checkpoint_is_fatal_and_halt_stops_signing() -> None:
    key = log_key()
    _, entries = trail_with_checkpoints(key, CHAIN, 8, every=8)
    producer, fatal, now = FakeProducer(), [], [0.0]
    t = _transparency(producer, fatal, now)
    t.key = t.checkpointer.key = key
    t._audit, t._checkpoints = FakeTail(), FakeTail(last=entries[0].as_dict())  # type: ignore[assignment]
    with pytest.raises(CheckpointerError):
        await t.delivered(_audit(records(CHAIN, 6)[4:]))  # seq 5: below the signed size 8
    assert fatal and "lost records that were signed" in fatal[0]
    other = _transparency(producer, fatal, now)
    other._audit, other._checkpoints = FakeTail(), FakeTail()  # type: ignore[assignment]
    other.halt()
    await other.delivered(_audit(records(CHAIN, 4)))
    await other.tick()
    assert producer.sent == []
