"""Batches of events taken straight from an agent's channel queue, acknowledged once per batch.

faust 0.15.3's `Stream.take_events` fills its buffer through the stream's per-event iterator: a
`sleep(0)`, a processor coroutine and four sensor calls per event, and after the batch an
`await self.ack(event)` per event, each taking faust's ack lock. `take_batches` does what that
iterator does for an event (`Stream._py_aiter`, the twin of faust's Cython iterator), with the
per-event steps that do not need to be per event done per batch:

* events are taken from the channel's queue (`aiter(stream.channel)`, the subscription the
  conductor fills), the first awaited, the rest with `get_nowait` while the batch has room and
  the `within` window is open (polled every `_POLL_S`, so an arriving event wakes nothing);
  with `close_early`, a batch also closes when its queue is empty after a poll and
  `close_early()` says so (the worker: when no other batch is waiting for its
  acknowledgements, so this one's outputs go out at once; while one is, they would only queue
  behind it). Never before its first poll: until the agent yields, faust's drain cannot put
  what has been fetched;
* an event is skipped, as faust skips it, when the flow is suspended (a rebalance) or it was
  fetched under an older consumer generation; it is never acknowledged, the next owner or the
  seek after the rebalance hands it over again;
* each taken message is tracked as unacknowledged at once (faust's `Consumer.track_message`,
  no await in between), so a rebalance waits for the batch (`Consumer.wait_empty`) and the
  worker's revoke commits exactly what was decided;
* the sensors see every event in and out, as with faust's iterator: per batch, one call per
  monitor when the app's only sensors are faust's `Monitor` and the worker's
  `StreamguardMonitor` (`monitor.record_batch_in` / `record_batch_out`: the same counts, each
  event's runtime from the drain round that took it), faust's four calls per event otherwise
  (another sensor, or stream processors, which see and may skip each event as it is taken);
* the iteration ends when faust ends the channel's (it throws `StopAsyncIteration` into the
  queue when the app stops);
* after the agent has finished with the batch (the generator is resumed; a batch whose agent
  raised is never acknowledged, so its offsets are not committed), every message is
  acknowledged as `Consumer.ack` does, under one hold of faust's `ack_lock`.

Guarded in `sources`: faust's iterator and `take_events` (what this replaces), `Consumer.ack`
and `track_message` (copied bookkeeping) and the consumer and conductor state they touch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from faust.exceptions import Skip
from faust.types.tuples import ack_lock
from mode.utils.futures import maybe_async, notify

from streamguard.worker.faust_fixes.monitor import (
    Round,
    batch_monitors,
    record_batch_in,
    record_batch_out,
)

__all__ = ("take_batches",)

# How often an open batch looks for more events in its queue. Small next to the batch window
# (STREAMGUARD_BATCH_WINDOW_MS, 50 ms by default); waking per arriving event instead would
# cost a task or a future per event.
_POLL_S: Final = 0.002


async def take_batches(
    stream: Any, max_: int, within: float, close_early: Callable[[], bool] | None = None
) -> AsyncIterator[list[Any]]:
    """Lists of up to `max_` events of `stream`'s channel, each within `within` s of its first;
    one that is not full closes before its window ends when its queue is empty after a poll
    and `close_early()` is true.

    For an agent body: `async for events in take_batches(stream, n, s): ...`.
    """
    await stream.maybe_start()
    taker = _Taker(stream)
    queue = taker.queue
    flow_is_active = stream.app.flow_control.is_active
    monotonic = time.monotonic
    events = taker.events
    ended = False  # the channel's iteration ended (faust throws StopAsyncIteration into it)
    while not (ended or stream.should_stop):
        taker.begin()
        try:
            await taker.take(await queue.get())
            taker.end_round()
            deadline = monotonic() + within
            napped = False
            while len(events) < max_ and flow_is_active() and not stream.should_stop:
                if taker.monitors is not None:  # the batched sensor calls: nothing to await
                    take = taker.take_batched
                    while len(events) < max_ and not queue.empty():
                        take(queue.get_nowait())
                while len(events) < max_ and not queue.empty():
                    await taker.take(queue.get_nowait())
                taker.end_round()
                remaining = deadline - monotonic()
                if len(events) >= max_ or remaining <= 0:
                    break
                # After a poll, not before: until the agent yields, faust's drain cannot put
                # what the consumer has fetched since the last batch.
                if napped and queue.empty() and close_early is not None and close_early():
                    break
                await taker.nap(min(_POLL_S, remaining))
                napped = True
        except StopAsyncIteration:
            ended = True  # what was taken is still handed over, as on a stop
        taker.end_round()
        if not events:
            continue
        batch = list(events)
        stream.events_total += len(batch)
        monitors = taker.monitors
        if monitors is not None:
            record_batch_in(monitors, stream, batch, taker.messages, taker.rounds)
        yield batch
        finished = _ack(taker.consumer, batch)
        if monitors is None:
            _sense_out(taker.sensors, stream, batch, taker.states, finished)
        else:
            record_batch_out(monitors, stream, batch, finished, taker.rounds)
        events.clear()


class _Taker:
    """What `take_batches` does per event taken, and its wait for more."""

    def __init__(self, stream: Any) -> None:
        app = self.app = stream.app
        self.stream = stream
        # Subscribes with the conductor, as faust's iterator does.
        self.queue = aiter(stream.channel).queue
        self.flow_is_active = app.flow_control.is_active
        self.consumer = app.consumer
        self.acking_topics = app.topics._acking_topics
        self.unacked = self.consumer._unacked_messages
        self.sensors = app.sensors
        # Stream processors (`Stream.add_processor`): the worker's agents have none, faust's
        # `agent.test_context()` adds one; when there are, they see each value as it is taken.
        self.processors = stream._processors
        # The stream's stop event: an open batch is handed over as soon as the stream stops,
        # as faust's `take_events` does. Each wait is one future, woken by the stop (mode's
        # `Event.set` resolves its waiters directly) or by a timer: no task, no hop via one.
        self.stopped_waiters = stream._stopped._waiters
        self.loop = asyncio.get_running_loop()
        self.events: list[Any] = []
        # Per-event sensor states (faust's path), or the batch's newly tracked messages and
        # drain rounds (the batched sensor calls).
        self.states: list[Any] = []
        self.monitors: tuple[Any, ...] | None = None
        self.messages: list[Any] = []
        self.rounds: list[Round] = []

    def begin(self) -> None:
        """A new batch: how its sensor calls are made (the app's sensors can change)."""
        self.states.clear()
        self.messages.clear()
        self.rounds.clear()
        self.monitors = None if self.processors else batch_monitors(self.sensors)

    def end_round(self) -> None:
        """What was taken since the last round was taken now (for the batched sensor calls)."""
        if self.monitors is not None and (
            not self.rounds or self.rounds[-1].events != len(self.events)
        ):
            self.rounds.append(Round(len(self.events), len(self.messages), time.monotonic()))

    def take_batched(self, event: Any) -> None:
        """`take` when the sensors are called per batch (`monitors` set): no await."""
        message = event.message
        if not self.flow_is_active() or message.generation_id != self.app.consumer_generation_id:
            return
        if message.topic in self.acking_topics and not message.tracked:
            message.tracked = True
            self.unacked.add(message)
            self.messages.append(message)
        self.events.append(event)

    async def take(self, event: Any) -> None:
        if self.monitors is not None:
            self.take_batched(event)
            return
        message = event.message
        if not self.flow_is_active() or message.generation_id != self.app.consumer_generation_id:
            return
        tp, offset = message.tp, message.offset
        if message.topic in self.acking_topics and not message.tracked:
            message.tracked = True
            self.unacked.add(message)
            self.sensors.on_message_in(tp, offset, message)
        self.states.append(self.sensors.on_stream_event_in(tp, offset, self.stream, event))
        self.events.append(event)
        if self.processors:
            await self._process(event)

    async def _process(self, event: Any) -> None:
        value = event.value
        try:
            for processor in self.processors:
                value = await maybe_async(processor(value))
        except Skip:  # filtered out: acknowledged at once, as faust does
            self.events.pop()
            finished = _ack(self.consumer, [event])
            _sense_out(self.sensors, self.stream, [event], [self.states.pop()], finished)

    async def nap(self, seconds: float) -> None:
        wake = self.loop.create_future()
        self.stopped_waiters.append(wake)
        timer = self.loop.call_later(seconds, _wake, wake)
        try:
            await wake
        finally:
            timer.cancel()
            self.stopped_waiters.remove(wake)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _ack(consumer: Any, events: list[Any]) -> list[Any]:
    """What faust's iterator and `Consumer.ack` do after each event, for a whole batch; the
    messages fully acknowledged (whose last reference this stream held)."""
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    committed_offset = consumer._committed_offset
    acked_index_of = consumer._acked_index
    acked_of = consumer._acked
    unacked = consumer._unacked_messages
    finished: list[Any] = []
    with ack_lock:
        try:
            for event in events:
                message = event.message
                if message.acked:
                    continue
                refcount = message.refcount = max(message.refcount - 1, 0)
                if refcount:
                    continue
                message.acked = True
                if not acks_enabled_for(message.topic):
                    continue
                tp, offset = message.tp, message.offset
                committed = committed_offset[tp]
                if committed is None or offset >= committed:
                    acked_index = acked_index_of[tp]
                    if offset not in acked_index:
                        unacked.discard(message)
                        acked_index.add(offset)
                        acked_of[tp].append(offset)
                        consumer._n_acked += 1
                        finished.append(message)
        finally:
            notify(consumer._waiting_for_ack)
    return finished


def _sense_out(
    sensors: Any, stream: Any, events: list[Any], states: list[Any], finished: list[Any]
) -> None:
    """faust's per-event sensor calls after the acks of `events`."""
    for event, state in zip(events, states, strict=True):
        message = event.message
        sensors.on_stream_event_out(message.tp, message.offset, stream, event, state)
    for message in finished:
        sensors.on_message_out(message.tp, message.offset, message)
