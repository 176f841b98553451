"""faust's drain loop handing fetched messages to the agents' queues without a task or a
coroutine per message.

faust 0.15.3 (`faust.transport.consumer.Consumer._drain_messages`) takes each fetched message
from `Consumer.getmany` (an async generator: per message a round-robin step over the fetched
partitions, the partition's high-water mark read and reported to the monitor, a
`ConsumerMessage` and a generator step) and hands it to the conductor under
`Service.wait_first(callback(message), suspend_flow.wait())`: four tasks, an `asyncio.wait` and
three cancels per message, about 48 µs against 0.1 µs for a plain `await`, 60 % of faust's
floor per message. The race exists for one case: a callback that blocks (flow control
suspended for a rebalance, a full agent queue, a full producer buffer) must be abandoned when
the consumer suspends its flow, or the message would reach an agent queue after the rebalance
cleared it.

`DirectDrainConsumer._drain_messages` is faust's loop with `getmany` inlined
(`_hand_over_fetched`) and three differences:

* a message of a partition the conductor has a `DirectHandler` for (one raw-bytes topic,
  `faust_fixes.conductor`) is put on its agent's queue by `DirectHandler.put`, a plain call,
  when faust's callback would not wait; nothing that can change the flow runs in between;
* any other message goes through `hand_over`: while the flow is not suspended it runs the
  callback's coroutine one step directly, and a callback that finishes without waiting costs
  no task; a callback that would wait continues under faust's own `wait_first` with the
  suspension event, and with the flow suspended the whole call goes through `wait_first` as
  before, so rebalances and stop abandon it as faust does;
* the fetched records are handed over partition by partition, not round-robin across topics
  (the round-robin kept one topic's slow per-message hand-over from starving the others; a
  hand-over is now a queue put, and a full queue still blocks as it did), and the high-water
  mark is reported once per partition and fetch instead of once per message.

The checks of faust's `getmany` stay per message: the flow still active, the consumer
generation unchanged (otherwise the rest of the fetch is dropped, as faust drops it), the
partition active or buffered. Guarded in `sources`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service, ServiceT

from streamguard.worker.faust_fixes.conductor import direct_handler

__all__ = ("DirectDrainConsumer", "hand_over")


class _Resumed(Awaitable[Any]):
    """The rest of a coroutine that already ran its first step and yielded `pending`.

    Awaiting this (in a task, as `wait_first` does) yields what the coroutine yielded and
    forwards every result, exception and cancellation to it: the coroutine continues exactly
    as if it had been awaited from its start.
    """

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self._coro, self._pending
        self._pending = None
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # cancellation included: the coroutine decides
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def hand_over(consumer: Any, coro: Awaitable[Any]) -> None:
    """Run `coro` (the conductor's callback for one message) as faust's drain loop would.

    Not suspended: one direct step; if it finished, that is all. Otherwise faust's race with
    `consumer.suspend_flow`, on the whole coroutine or on the rest of it.
    """
    suspend_flow = consumer.suspend_flow
    if suspend_flow.is_set() or not isinstance(coro, Coroutine):
        await consumer.wait_first(coro, suspend_flow.wait())
        return
    try:
        pending = coro.send(None)
    except StopIteration:
        return
    await consumer.wait_first(_Resumed(coro, pending), suspend_flow.wait())


class DirectDrainConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer whose drain loop hands messages over without a coroutine
    where faust's callback would not wait (`DirectHandler.put`), else with `hand_over`."""

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        # faust 0.15.3's `Consumer._drain_messages` with its `getmany` generator inlined (see
        # the module docstring for the three differences); everything else as upstream has it.
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                # Sleeping because sometimes getmany is called in a loop
                # never releasing to the event loop
                await self.sleep(0)
                if not self.should_stop:
                    await self._hand_over_fetched(timeout=1.0)
                unset_flag(CONSUMER_FETCHING)

        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                # we're already stopping so ignore
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                # we're already stopping so ignore
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    async def _hand_over_fetched(self, timeout: float) -> None:  # noqa: PLR0915 (upstream's)
        # faust's `Consumer.getmany` and the body of its drain loop's `async for`, fused.
        records, active_partitions = await self._wait_next_records(timeout)
        app = self.app
        generation_id = app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            self.log.dev("getmany called while flow not active. Seek back to committed offsets.")
            try:
                await self.perform_seek()
            except Exception as ex:
                self.log.warning(f"exception performing seek when flow not active {ex}")
            return
        callback = self.callback
        conductor = app.topics
        to_message = self._to_message
        read_offset = self._read_offset
        buffered_partitions = self._buffered_partitions
        commit_every = self._commit_every
        acks_enabled_for = app.topics.acks_enabled_for
        track_tp_end_offset = app.monitor.track_tp_end_offset
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        # Read again before every record: an await below (a full queue, a gap, a commit, the
        # yield) can stop the flow. `Any`, so that mypy does not narrow it to True.
        flow: Any = self
        for tp, tp_records in records.items():
            tracked_end = False
            for record in tp_records:
                if not flow.flow_active:
                    return
                new_generation_id = app.consumer_generation_id
                if new_generation_id != generation_id:
                    self.log.dev(
                        "Generation id changed from %r to %r. Cancelling getmany.",
                        generation_id,
                        new_generation_id,
                    )
                    return
                if not (
                    active_partitions is None
                    or tp in active_partitions
                    or tp in buffered_partitions
                ):
                    continue
                if not tracked_end:  # once per partition and fetch (faust: per message)
                    track_tp_end_offset(tp, self.highwater(tp))
                    tracked_end = True
                num_since_yield += 1
                if num_since_yield > yield_every:
                    await sleep(0)
                    num_since_yield = 0
                    if not flow.flow_active or app.consumer_generation_id != generation_id:
                        return
                message = to_message(tp, record)
                offset = message.offset
                r_offset = read_offset[tp]
                if r_offset is None or offset >= r_offset:
                    gap = offset - (r_offset or 0)
                    # We have a gap in income messages
                    if gap > 1 and r_offset:
                        acks_enabled = acks_enabled_for(message.topic)
                        if acks_enabled:
                            await self._add_gap(tp, r_offset + 1, offset)
                    if commit_every is not None:  # noqa: SIM102 (upstream's)
                        if self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                    handler = direct_handler(conductor, tp)
                    if handler is None or not handler.put(message):
                        await hand_over(self, callback(message))
                    read_offset[tp] = offset
                else:
                    self.log.dev(
                        "DROPPED MESSAGE ROFF %r: k=%r v=%r",
                        offset,
                        message.key,
                        message.value,
                    )
