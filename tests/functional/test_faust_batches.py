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
from faust import Sensor
from faust.events import Event
from faust.types import TP, ConsumerMessage
from prometheus_client.parser import text_string_to_metric_families

from streamguard.worker.faust_fixes.batches import take_batches
from streamguard.worker.metrics import FAUST_PREFIX, StreamguardMetrics
from tests.functional.faust_apps import unstarted_app

TOPIC = "sg.searches"


@pytest.fixture
async def stream() -> Any:
    app = unstarted_app("batches")
    app.flow_control.resume()
    app.topics._acking_topics.add(TOPIC)
    return app.stream(app.topic(TOPIC, key_type=bytes, value_type=bytes))


async def _open(
    stream: Any, max_: int, within: float, close_early: Any = None
) -> tuple[Any, Any, Any]:
    """`take_batches` started and waiting for its first batch; the channel it reads."""
    batches = take_batches(stream, max_, within, close_early)
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


async def test_a_batch_closes_early_once_its_queue_is_empty_if_allowed(stream: Any) -> None:
    allowed = False
    batches, first, channel = await _open(stream, 10, 5.0, lambda: allowed)
    channel.queue.put_nowait(_event(stream, 0))
    await asyncio.sleep(0.02)  # several polls: not allowed to close, the batch keeps filling
    assert not first.done()
    channel.queue.put_nowait(_event(stream, 1))
    await asyncio.sleep(0.02)
    allowed = True  # handed over at the next poll, long before its 5 s window ends
    batch = await asyncio.wait_for(first, 1)
    assert [e.message.offset for e in batch] == [0, 1]
    channel.queue.put_nowait(_event(stream, 2))
    channel.queue.put_nowait(_event(stream, 3))
    second = await asyncio.wait_for(anext(batches), 1)  # what was queued, at once
    assert [e.message.offset for e in second] == [2, 3]
    await batches.aclose()


async def _monitored(prefix: str, *, other_sensor: bool) -> tuple[Any, StreamguardMetrics]:
    """A stream of an app whose sensors are the worker's monitor (and another, which makes
    `take_batches` call faust's per-event sensor hooks), and its metrics."""
    app = unstarted_app(prefix)
    app.flow_control.resume()
    app.topics._acking_topics.add(TOPIC)
    metrics = StreamguardMetrics.create()
    metrics.install_faust_sensors(app)
    app.sensors.add(app.monitor)  # what the app does when it starts
    if other_sensor:
        app.sensors.add(Sensor(loop=asyncio.get_running_loop()))
    return app.stream(app.topic(TOPIC, key_type=bytes, value_type=bytes)), metrics


def _stream_event(stream: Any, partition: int, offset: int, generation: int = 0) -> Event:
    tp = TP(TOPIC, partition)
    message = ConsumerMessage(TOPIC, partition, offset, 0.0, 0, None, b"k", b"v", None, tp=tp)
    message.generation_id = generation
    message.refcount = 1
    return Event(stream.app, b"k", b"v", {}, message)


async def _run_through(stream: Any, n: int) -> tuple[int, list[int]]:
    """`n` events over two partitions (and one stale event) through `take_batches` in batches
    of up to 7, each acknowledged; the calls faust's per-event hooks got, the batch sizes."""
    monitor = stream.app.monitor
    per_event_calls = 0
    hook = monitor.on_stream_event_in

    def counted(*args: Any) -> Any:
        nonlocal per_event_calls
        per_event_calls += 1
        return hook(*args)

    monitor.on_stream_event_in = counted
    batches, first, channel = await _open(stream, 7, 0.01)
    for i in range(n):
        channel.queue.put_nowait(_stream_event(stream, i % 2, i // 2))
        if i == n // 2:
            channel.queue.put_nowait(_stream_event(stream, 0, 10_000, generation=-1))
    sizes = [len(await asyncio.wait_for(first, 1))]
    while sum(sizes) < n:
        sizes.append(len(await asyncio.wait_for(anext(batches), 1)))
    await channel.queue.throw(StopAsyncIteration())  # ends the iteration after the last ack
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(batches), 1)
    return per_event_calls, sizes


def _faust_samples(metrics: StreamguardMetrics) -> dict[tuple[str, frozenset[Any]], float]:
    """faust's sensor samples, minus the runtime histogram's timings (its count is kept)."""
    out = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            name = sample.name
            timing = name.startswith(f"{FAUST_PREFIX}_events_runtime_ms") and not (
                name.endswith("_count")
            )
            if name.startswith(FAUST_PREFIX) and not name.endswith("_created") and not timing:
                out[(name, frozenset(sample.labels.items()))] = sample.value
    return out


def _monitor_state(monitor: Any) -> dict[str, Any]:
    return {
        "messages_received_total": monitor.messages_received_total,
        "messages_active": monitor.messages_active,
        "messages_received_by_topic": dict(monitor.messages_received_by_topic),
        "tp_read_offsets": dict(monitor.tp_read_offsets),
        "events_total": monitor.events_total,
        "events_active": monitor.events_active,
        "events_by_stream": sorted(monitor.events_by_stream.values()),
        "events_by_task": sorted(monitor.events_by_task.values()),
        "events_runtime": len(monitor.events_runtime),
        "stream_inbound_time": set(monitor.stream_inbound_time),
    }


async def test_batched_sensor_calls_record_what_faust_per_event_calls_record() -> None:
    n = 45
    per_event, per_event_metrics = await _monitored("sensors-a", other_sensor=True)
    batched, batched_metrics = await _monitored("sensors-b", other_sensor=False)
    calls_a, sizes_a = await _run_through(per_event, n)
    calls_b, sizes_b = await _run_through(batched, n)
    assert (calls_a, calls_b) == (n, 0)  # each path was the one under test
    assert sum(sizes_a) == sum(sizes_b) == n and max(sizes_b) == 7

    samples = _faust_samples(batched_metrics)
    assert samples == _faust_samples(per_event_metrics)
    received = f"{FAUST_PREFIX}_messages_received_total"
    assert samples[(received, frozenset())] == n  # the stale event is neither in nor out
    assert samples[(f"{FAUST_PREFIX}_total_events_total", frozenset())] == n
    assert samples[(f"{FAUST_PREFIX}_events_runtime_ms_count", frozenset())] == n
    assert samples[(f"{FAUST_PREFIX}_active_messages", frozenset())] == 0
    assert samples[(f"{FAUST_PREFIX}_total_active_events", frozenset())] == 0
    offsets = {
        labels: v
        for (name, labels), v in samples.items()
        if name == f"{FAUST_PREFIX}_messages_received_per_topics_partition"
    }
    assert sorted(offsets.values()) == [21, 22]  # the last offset read per partition

    state = _monitor_state(batched.app.monitor)
    assert state == _monitor_state(per_event.app.monitor)
    assert state["messages_received_total"] == state["events_total"] == n
    assert state["messages_active"] == state["events_active"] == 0


async def test_batched_runtimes_run_from_the_take_to_the_ack() -> None:
    stream, metrics = await _monitored("sensors-runtime", other_sensor=False)
    batches, first, channel = await _open(stream, 10, 0.05)
    channel.queue.put_nowait(_stream_event(stream, 0, 0))
    await asyncio.sleep(0.02)  # the first event waits in the open batch for the second
    channel.queue.put_nowait(_stream_event(stream, 0, 1))
    batch = await asyncio.wait_for(first, 1)
    assert len(batch) == 2
    active = f"{FAUST_PREFIX}_total_active_events"
    assert _faust_samples(metrics)[(active, frozenset())] == 2  # handed to the agent
    await asyncio.sleep(0.03)  # the agent's work on the batch
    await channel.queue.throw(StopAsyncIteration())
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(batches), 1)
    runtimes = sorted(stream.app.monitor.events_runtime)
    assert len(runtimes) == 2
    assert 0.03 <= runtimes[0] < runtimes[1] - 0.015  # the first waited ~20 ms longer
    assert _faust_samples(metrics)[(active, frozenset())] == 0
