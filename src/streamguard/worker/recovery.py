"""A fix for faust's end of table recovery, which can drop input messages it already fetched.

The fault (faust-streaming 0.15.3, `faust/tables/recovery.py`, `Recovery.on_recovery_completed`)
-----------------------------------------------------------------------------------------------
When a rebalance leaves changelog records to replay (after a SIGKILL, the local store is
behind its changelog), `Recovery._restart_recovery` resumes the flow and starts the Fetcher to
read the changelogs (`app.flow_control.resume()`, `consumer.resume_flow()`,
`_fetcher.maybe_start()`, lines 449-453). The input partitions stay paused. Once the tables
are restored, `on_recovery_completed` runs, in this order:

1. `consumer.resume_partitions(<input partitions>)` (line 649),
2. `await consumer.perform_seek()` (line 655): an OffsetFetch round trip to the broker,
3. `self.app.flow_control.resume()` (line 659).

The Fetcher is already running with the flow open, so during the await in step 2 it fetches
input records and the Conductor puts them in the agents' queues. Step 3 then empties those
queues: `FlowControlEvent.resume()` ends with `self.clear()` (mode `utils/queues.py` line 101),
and every channel and stream queue is made with `clear_on_resume=True` (faust `channels.py`
line 145, `streams.py` line 180). The messages are gone, but the consumer has moved past them:
aiokafka's position is after them, and so is faust's `_read_offset` (`_drain_messages` sets it
once a message is queued, `transport/consumer.py` line 1223), so they are not fetched again in
this process. Never processed, they are never acked: the partition's committed offset stops at
the hole, and they are decided only after the next restart, together with everything after the
hole, which is decided a second time.

The clear itself is wanted: it discards what was fetched before the seek, from a position the
seek is about to move (faust #216). What is wrong is resuming the input partitions before the
seek, and awaiting between that resume and the clear.

The fix
-------
The same method with steps 1 and 2 swapped: seek while the input partitions are still paused
(so nothing of theirs can reach a queue), then resume them, clear the queues and open the flow
with no await in between. The Fetcher and the Conductor run on this event loop, so no input
message can be queued between the resume and the clear: the clear drops nothing that was
fetched for the new assignment, and every input message fetched after the seek reaches its
agent. Nothing else changes: what faust did before and after is kept line for line.

`install(app)` replaces the method on the app's Recovery service only. It refuses to run
against any other version of faust's method (compared by a hash of its source), so an upgrade
of faust makes the worker fail at start instead of silently replacing faust's newer code with
this copy of the old one: whoever upgrades must check whether faust fixed this, then drop this
module or refresh the copy and the hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import types
from typing import Any, Final, cast

import faust
from faust.tables.recovery import Recovery

__all__ = ("FAUST_SOURCE_SHA256", "FaustChangedError", "install", "on_recovery_completed")

# sha256 of `inspect.getsource(Recovery.on_recovery_completed)` in faust-streaming 0.15.3.
FAUST_SOURCE_SHA256: Final = "6ef567acf072e46da3fccbccc6d662371f634f622c3d510972d5df81f70ae3ac"


class FaustChangedError(RuntimeError):
    """faust's `Recovery.on_recovery_completed` is not the one this module corrects."""


def faust_source_sha256() -> str:
    """Hash of the installed faust's `Recovery.on_recovery_completed` source."""
    try:
        source = inspect.getsource(Recovery.on_recovery_completed)
    except (OSError, TypeError) as exc:
        msg = f"cannot read faust's Recovery.on_recovery_completed to check it: {exc}"
        raise FaustChangedError(msg) from exc
    return hashlib.sha256(source.encode()).hexdigest()


def install(app: faust.App) -> None:
    """Make `app`'s table recovery seek its input partitions before it resumes them."""
    found = faust_source_sha256()
    if found != FAUST_SOURCE_SHA256:
        msg = (
            f"faust {faust.__version__} changed Recovery.on_recovery_completed (sha256 {found}); "
            "streamguard.worker.recovery replaces it with a corrected copy of the faust 0.15.3 "
            "version: check whether faust fixed the dropped messages, then remove or refresh it"
        )
        raise FaustChangedError(msg)
    recovery: Any = cast(Any, app.tables).recovery  # TableManagerT does not declare it
    # On the instance, not the class: only this app's Recovery service changes.
    recovery.on_recovery_completed = types.MethodType(on_recovery_completed, recovery)


async def on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """faust 0.15.3's `Recovery.on_recovery_completed`, input partitions resumed after the seek.

    `self` is the app's `faust.tables.recovery.Recovery`. The only change from faust is the
    order of `resume_partitions` and `perform_seek` (see the module docstring); the rest is
    faust's code as it is.
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
