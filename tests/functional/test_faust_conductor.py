"""The direct hand-over of fetched messages (`faust_fixes.conductor`, `faust_fixes.drain`) on the
worker's real faust app: the conductor's index, faust's own callbacks and queues, the drain
loop's fetch step with a fetch result given in place of the consumer thread's.

No broker: `tests/integration/test_worker.py`, `test_worker_crash.py`, `test_faults.py` and
`test_scale.py` run the same consumer and conductor against Kafka.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streamguard.worker.faust_fixes.conductor import DirectConductor, DirectHandler
from tests.functional.faust_apps import unstarted_app
from tests.functional.test_faust_drain import Spy

RAW, JSON = "sg.searches", "sg.policy"


def _raw_topic(app: Any, name: str = RAW) -> Any:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )


def _record(tp: TP, offset: int, headers: Any = ()) -> ConsumerRecord[bytes, bytes]:
    value = b'{"n": %d}' % offset
    key = b"k%d" % offset
    return ConsumerRecord(
        tp.topic,
        tp.partition,
        offset,
        1_700_000_000_000 + offset,
        0,
        key,
        value,
        None,
        len(key),
        len(value),
        headers,
    )


class Fetch:
    """Stands in for the consumer thread: `_wait_next_records` returns `records` once."""

    def __init__(self, consumer: Any, records: dict[TP, list[Any]], active: Any = None) -> None:
        self.records, self.active = records, active
        consumer._wait_next_records = self
        consumer.highwater = lambda tp: 1_000  # the consumer thread's aiokafka consumer

    async def __call__(self, timeout: float) -> tuple[Any, Any]:
        records, self.records = self.records, {}
        return records, self.active


QUEUE_SIZE = 4  # each agent queue's room (faust's stream_buffer_maxsize)


@pytest.fixture
async def app() -> Any:
    app = unstarted_app("conductor", stream_buffer_maxsize=QUEUE_SIZE)
    app.flow_control.resume()
    app.consumer.resume_flow()
    return app


async def _subscribe(app: Any, *topics: Any, partitions: int = 2) -> list[Any]:
    """Iterator channels of `topics` subscribed with the conductor, `partitions` assigned."""
    channels = [aiter(topic) for topic in topics]
    names = {name for topic in topics for name in topic.topics}
    await app.topics.on_partitions_assigned({TP(n, p) for n in names for p in range(partitions)})
    return channels


def _drain(channel: Any) -> list[Any]:
    events = []
    while not channel.queue.empty():
        events.append(channel.queue.get_nowait())
    return events


async def test_a_partition_of_one_raw_topic_gets_a_direct_handler(app: Any) -> None:
    assert isinstance(app.topics, DirectConductor)
    json_topic = app.topic(JSON, value_type=bytes, value_serializer="json")
    await _subscribe(app, _raw_topic(app), json_topic)
    callbacks = app.topics._tp_to_callback
    assert isinstance(callbacks[TP(RAW, 0)], DirectHandler)
    assert isinstance(callbacks[TP(RAW, 1)], DirectHandler)
    assert not isinstance(callbacks[TP(JSON, 0)], DirectHandler)  # its decode is not the identity


async def test_two_subscribers_of_a_partition_keep_faust_callback(app: Any) -> None:
    await _subscribe(app, _raw_topic(app), _raw_topic(app))
    assert not isinstance(app.topics._tp_to_callback[TP(RAW, 0)], DirectHandler)


async def test_a_direct_put_delivers_what_faust_callback_delivers(app: Any) -> None:
    (channel,) = await _subscribe(app, _raw_topic(app))
    tp = TP(RAW, 0)
    handler = app.topics._tp_to_callback[tp]
    headers = [("trace", b"1")]
    via_faust = app.consumer._to_message(tp, _record(tp, 7, headers))
    direct = app.consumer._to_message(tp, _record(tp, 7, headers))
    await handler(via_faust)  # faust's compiled callback
    assert handler.put(direct) is True
    first, second = _drain(channel)
    assert first.message is via_faust and second.message is direct
    for event in (first, second):
        assert type(event) is faust.Event
        assert (event.key, event.value, event.headers) == (b"k7", b'{"n": 7}', {"trace": b"1"})
        assert event.message.refcount == 1


async def test_a_tombstone_without_a_key_is_delivered_as_faust_delivers_it(app: Any) -> None:
    (channel,) = await _subscribe(app, _raw_topic(app))
    tp = TP(RAW, 1)
    handler = app.topics._tp_to_callback[tp]
    record = dataclasses.replace(_record(tp, 3), key=None, value=None)
    via_faust = app.consumer._to_message(tp, record)
    direct = app.consumer._to_message(tp, record)
    await handler(via_faust)
    assert handler.put(direct)
    first, second = _drain(channel)
    assert (first.key, first.value, first.headers) == (None, None, {})
    assert (second.key, second.value, second.headers) == (None, None, {})


async def test_a_direct_put_that_would_wait_does_nothing(app: Any) -> None:
    (channel,) = await _subscribe(app, _raw_topic(app))
    tp = TP(RAW, 0)
    handler = app.topics._tp_to_callback[tp]

    def refused() -> bool:
        message = app.consumer._to_message(tp, _record(tp, 1))
        before = channel.queue.qsize()
        put = handler.put(message)
        assert message.refcount == 0 and channel.queue.qsize() == before
        return not put

    app.flow_control.suspend()  # a rebalance: faust's callback waits for the flow
    assert refused()
    app.flow_control.resume()
    buffer = app.producer.buffer
    buffer.max_messages, limit = -1, buffer.max_messages  # over the producer buffer's limit
    assert refused()
    buffer.max_messages = limit
    for offset in range(QUEUE_SIZE):
        assert handler.put(app.consumer._to_message(tp, _record(tp, offset)))
    assert refused()  # the queue is full


async def test_the_drain_puts_fetched_records_on_their_queues_without_a_task(app: Any) -> None:
    raw, other = await _subscribe(app, _raw_topic(app), app.topic(JSON, value_serializer="json"))
    consumer = app.consumer
    spy = Spy(consumer)
    tps = TP(RAW, 0), TP(RAW, 1), TP(JSON, 0)
    Fetch(consumer, {tp: [_record(tp, n) for n in range(2)] for tp in tps})  # room for all
    tasks_before = len(asyncio.all_tasks())
    await consumer._hand_over_fetched(timeout=1.0)
    got = [(e.message.partition, e.message.offset) for e in _drain(raw)]
    assert got == [(0, 0), (0, 1), (1, 0), (1, 1)]
    # The JSON topic went through faust's callback (one direct step, as before).
    assert [(e.message.offset, e.value) for e in _drain(other)] == [(0, {"n": 0}), (1, {"n": 1})]
    assert spy.calls == 0 and len(asyncio.all_tasks()) == tasks_before
    assert {tp: consumer._read_offset[tp] for tp in tps} == dict.fromkeys(tps, 1)


async def test_a_full_queue_waits_in_faust_race_and_keeps_the_order(app: Any) -> None:
    (channel,) = await _subscribe(app, _raw_topic(app))
    consumer = app.consumer
    spy = Spy(consumer)
    tp = TP(RAW, 0)
    Fetch(consumer, {tp: [_record(tp, n) for n in range(2 * QUEUE_SIZE)]})
    draining = asyncio.ensure_future(consumer._hand_over_fetched(timeout=1.0))
    taken: list[int] = []
    while not draining.done() or not channel.queue.empty():
        event = await asyncio.wait_for(channel.queue.get(), 1)
        taken.append(event.message.offset)
    await draining
    assert taken == list(range(2 * QUEUE_SIZE))
    assert spy.calls >= 1  # the puts that found the queue full waited in faust's race


async def test_a_rebalance_during_the_fetch_drops_the_rest_of_it(app: Any) -> None:
    """faust's `getmany` stops handing over a fetch once the consumer generation moved (a
    rebalance began): what is left is fetched again by the next owner or after the seek."""
    (channel,) = await _subscribe(app, _raw_topic(app))
    consumer = app.consumer
    first, second = TP(RAW, 0), TP(RAW, 1)
    Fetch(consumer, {tp: [_record(tp, n) for n in range(2)] for tp in (first, second)})

    def highwater(tp: TP) -> int:
        # Read once per partition, after its first record passed the generation check, as
        # faust's `getmany` reads it: the rebalance lands while that record is handed over.
        app.consumer_generation_id += 1
        return 1_000

    consumer.highwater = highwater
    await consumer._hand_over_fetched(timeout=1.0)
    assert [(e.message.partition, e.message.offset) for e in _drain(channel)] == [(0, 0)]
    assert consumer._read_offset[second] is None


async def test_records_of_a_partition_no_longer_active_are_not_handed_over(app: Any) -> None:
    (channel,) = await _subscribe(app, _raw_topic(app))
    consumer = app.consumer
    active, paused = TP(RAW, 0), TP(RAW, 1)
    Fetch(consumer, {tp: [_record(tp, 0)] for tp in (active, paused)}, active={active})
    await consumer._hand_over_fetched(timeout=1.0)
    assert [e.message.tp for e in _drain(channel)] == [active]


async def test_a_stopped_flow_seeks_back_instead_of_handing_over(app: Any) -> None:
    (channel,) = await _subscribe(app, _raw_topic(app))
    consumer = app.consumer
    tp = TP(RAW, 0)
    Fetch(consumer, {tp: [_record(tp, 0)]})
    seeks: list[str] = []

    async def perform_seek() -> None:
        seeks.append("seek")

    consumer.perform_seek = perform_seek
    consumer.stop_flow()
    await consumer._hand_over_fetched(timeout=1.0)
    assert seeks == ["seek"] and _drain(channel) == []
