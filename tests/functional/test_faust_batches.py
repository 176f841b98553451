"""`streamguard.worker.faust_fixes.batches.take_batches` on a real faust app's stream and channel.

Events are put into the channel queue the conductor fills; the batch is acknowledged once the
agent has finished with it, events of an older consumer generation are skipped and never
acknowledged, and the iteration ends when faust ends the channel's. No broker: the integration
tests (`test_worker.py`, `test_worker_crash.py`, `test_faults.py`) run it against Kafka.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.events import Event
from faust.types import TP, ConsumerMessage

from streamguard.worker.faust_fixes.batches import take_batches
from tests.functional.faust_apps import unstarted_app

TOPIC = "sg.searches"


@pytest.fixture
async def stream() -> Any:
    app = unstarted_app("batches")
    app.flow_control.resume()
    app.topics._acking_topics.add(TOPIC)
    return app.stream(app.topic(TOPIC, key_type=bytes, value_type=bytes))


async def _open(stream: Any, max_: int, within: float) -> tuple[Any, Any, Any]:
    """`take_batches` started and waiting for its first batch; the channel it reads."""
    batches = take_batches(stream, max_, within)
    first = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0)  # subscribed: the conductor knows its channel now
    return batches, first, next(iter(stream.app.topics))


def _event(stream: Any, offset: int, generation: int = 0) -> Event:
    tp = TP(TOPIC, 0)
    # A consumer message, as the consumer builds them (tracked for acks: `use_tracking`).
    message = ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None, tp=tp)
    message.generation_id = generation
    message.refcount = 1
    return Event(stream.app, b"k", b"v", {}, message)


async def test_a_batch_is_acked_once_the_agent_is_done_with_it(stream: Any) -> None:
    consumer = stream.app.consumer
    batches, first, channel = await _open(stream, 3, 0.05)
    events = [_event(stream, n) for n in range(4)]
    for event in events:
        channel.queue.put_nowait(event)
    batch = await asyncio.wait_for(first, 1)
    assert [e.message.offset for e in batch] == [0, 1, 2]  # at most max_ per batch
    assert {m.offset for m in consumer._unacked_messages} == {0, 1, 2}  # tracked, not acked
    assert consumer._acked[TP(TOPIC, 0)] == []
    second = await asyncio.wait_for(anext(batches), 1)  # the agent is done with the first
    assert sorted(consumer._acked[TP(TOPIC, 0)]) == [0, 1, 2]
    assert [e.message.offset for e in second] == [3]
    assert all(e.message.acked for e in batch) and not second[0].message.acked
    await batches.aclose()


async def test_an_older_generation_is_skipped_and_never_acked(stream: Any) -> None:
    consumer = stream.app.consumer
    batches, first, channel = await _open(stream, 10, 0.01)
    stale, fresh = _event(stream, 0, generation=-1), _event(stream, 1)
    channel.queue.put_nowait(stale)
    channel.queue.put_nowait(fresh)
    batch = await asyncio.wait_for(first, 1)
    assert batch == [fresh]
    assert stale.message not in consumer._unacked_messages and not stale.message.acked
    await batches.aclose()


async def test_the_iteration_ends_when_faust_ends_the_channel(stream: Any) -> None:
    batches, first, channel = await _open(stream, 10, 5.0)
    channel.queue.put_nowait(_event(stream, 0))
    await asyncio.sleep(0.01)
    await channel.queue.throw(StopAsyncIteration())  # what faust does when the app stops
    batch = await asyncio.wait_for(first, 1)  # the open batch is handed over at once
    assert [e.message.offset for e in batch] == [0]
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(batches), 1)
