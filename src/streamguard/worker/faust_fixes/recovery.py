"""Fixes for two ways faust loses input it has fetched when a worker (re)starts its partitions.

Both showed in the SIGKILL crash test (`tests/integration/test_worker_crash.py`): after the
restart, the consumer's position reached the end of every input partition, yet some messages
never reached an agent. Undecided, they were never acknowledged, so their partition's commit
stopped at the first of them; they were decided only after the next restart, together with
everything after them, which was decided a second time.

Fault 1: faust clears the agents' queues after input is flowing again
---------------------------------------------------------------------
faust-streaming 0.15.3, `faust/tables/recovery.py`. When a rebalance leaves changelog records
to replay (after a SIGKILL the local store is behind its changelog), `Recovery._restart_recovery`
opens the flow and starts the Fetcher to read the changelogs (`app.flow_control.resume()`,
`consumer.resume_flow()`, `_fetcher.maybe_start()`, lines 449-453), input partitions paused.
Once the tables are restored, `Recovery.on_recovery_completed`:

1. resumes the input partitions (`consumer.resume_partitions`, line 649),
2. awaits `consumer.perform_seek()` (line 655), a round trip to the broker,
3. calls `self.app.flow_control.resume()` (line 659).

The Fetcher is running with the flow open, so during the await it queues input records for the
agents. Step 3 empties those queues: `FlowControlEvent.resume()` ends with `self.clear()` (mode
`utils/queues.py` line 101) and every channel and stream queue is `clear_on_resume=True` (faust
`channels.py` line 145, `streams.py` line 180). aiokafka's position and faust's `_read_offset`
(set once a message is queued, `transport/consumer.py` line 1223) are past what was cleared, so
it is not fetched again. (A start with no changelog to replay takes faust's other branch, where
the Fetcher starts only after the clear; in a later rebalance the Fetcher is already running.)

The clear itself is wanted: it drops what was fetched before the seek, from a position the seek
moves (faust #216). Fix: the same method with steps 1 and 2 swapped. It seeks while the input
partitions are paused, then resumes them, clears and opens the flow with no await in between.
The Fetcher and the Conductor run on this event loop, so the clear can no longer meet a message
fetched after the seek.

Fault 2: an emptied set of active partitions means "all partitions" to aiokafka
-------------------------------------------------------------------------------
faust hands its live set of active (not paused) partitions to the consumer thread
(`Consumer._wait_next_records`, `transport/drivers/aiokafka.py` `_fetch_records`, line 1102),
which waits up to a second in aiokafka's `Fetcher.fetched_records`. That method filters with
`if partitions and tp not in partitions` (`aiokafka/consumer/fetcher.py` line 1221): when faust
pauses its last active partitions while the call waits (recovery pauses the changelogs once
they are read, and input partitions stay paused until the seek), the set turns empty, the filter
lets every partition through, and the records aiokafka had prefetched for the paused input
partitions are handed over and its position moves to their end. faust's `getmany` then drops
them (`tp in active_partitions`, `transport/consumer.py` line 760). The seek brings back those
of partitions with a committed offset; a partition with none (never committed, e.g. new) is not
sought (aiokafka `seek_to_committed` seeks only offsets > 0), so its records are lost for this
process. Seen with fix 1 alone, which keeps the set empty for the length of the seek: 2 of 3
crash-test runs left three never-committed partitions with aiokafka positions at their ends and
not one of their messages delivered. Fix: the consumer thread gets a view of the same live set
that is never falsy, so an emptied set lets nothing through.

Installing
----------
`install(app)` patches the app's Recovery service (fault 1, this app only) and faust's
`AIOKafkaConsumerThread._fetch_records` (fault 2, a class shared by every app in the process;
the view changes nothing while the set is not empty). The three functions it replaces or relies
on are guarded in `sources` (checked before the app is built, `faust_fixes.create_app`): an
upgrade of faust or aiokafka stops the worker at start instead of silently mixing these copies
with new code. Whoever upgrades must check whether upstream fixed these, then drop or refresh
this module (docs/faust-fixes.md).
"""

from __future__ import annotations

import asyncio
import functools
import types
from collections.abc import Container
from typing import Any, Final, cast

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

__all__ = ("LiveActivePartitions", "install", "on_recovery_completed")

_FAUST_FETCH_RECORDS: Final = AIOKafkaConsumerThread._fetch_records


def install(app: faust.App) -> None:
    """Fix both faults (see the module docstring) for `app`."""
    recovery: Any = cast(Any, app.tables).recovery  # TableManagerT does not declare it
    # On the instance, not the class: only this app's Recovery service changes.
    recovery.on_recovery_completed = types.MethodType(on_recovery_completed, recovery)
    # The consumer thread is created with the app's consumer, when the worker starts: patch
    # its class (once; the wrapper calls faust's method).
    AIOKafkaConsumerThread._fetch_records = _fetch_records  # type: ignore[method-assign]


class LiveActivePartitions:
    """faust's live set of active partitions, as aiokafka's `fetched_records` reads it.

    Membership follows the set as faust pauses and resumes partitions (set operations are
    atomic across threads); the view is never falsy, so an emptied set selects no partition
    instead of all of them.
    """

    __slots__ = ("tps",)

    def __init__(self, tps: Container[Any]) -> None:
        self.tps = tps

    def __contains__(self, tp: object) -> bool:
        return tp in self.tps

    def __bool__(self) -> bool:
        return True


async def _fetch_records(
    self: Any,
    consumer: Any,
    active_partitions: Any,
    timeout: float | None = None,
    max_records: int | None = None,
) -> Any:
    """faust's `AIOKafkaConsumerThread._fetch_records`, given a never-falsy live view."""
    if active_partitions is not None:  # None: a client-only app, every partition
        active_partitions = LiveActivePartitions(active_partitions)
    return await _FAUST_FETCH_RECORDS(
        self, consumer, active_partitions, timeout=timeout, max_records=max_records
    )


# Declares faust's method as the one this wraps: the source check hashes faust's, not this.
functools.update_wrapper(_fetch_records, _FAUST_FETCH_RECORDS, assigned=(), updated=())


async def on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """faust 0.15.3's `Recovery.on_recovery_completed`, input partitions resumed after the seek.

    `self` is the app's `faust.tables.recovery.Recovery`. The only change from faust is the
    order of `resume_partitions` and `perform_seek` (fault 1 in the module docstring); the rest
    is faust's code as it is.
    """
    consumer = self.app.consumer
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    # This needs to happen if all goes well
    callback_coros = [
        asyncio.ensure_future(
            table.on_recovery_completed(
                self.actives_for_table[table],
                self.standbys_for_table[table],
            )
        )
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning(
            f"Recovery rebalancing again app id "
            f"{self.app.consumer_generation_id} param {generation_id}"
        )
        return
    if assignment:
        # Changed: seek first, while the input partitions are still paused, so the Fetcher
        # (already running when changelogs were replayed) cannot queue any of their messages
        # during this await.
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
    # No await from here to `flow_control.resume()`: its clear of the agents' queues must not
    # find any message fetched for the resumed partitions.
    consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    self.completed.set()
    self.log.dev("Resume stream partitions")
    self.app.flow_control.resume()
    consumer.resume_flow()
    # finally make sure the fetcher is running.
    await self.app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")
