"""The end-of-recovery fix (`streamguard.worker.recovery`): nothing fetched after the seek is lost.

faust's real `Recovery` service runs `on_recovery_completed` (faust's own, then the fixed one)
against a consumer that stands in for faust's: while the flow is open, it delivers the next record of
each resumed input partition into an agent queue every millisecond, as faust's
`Consumer._drain_messages` and Conductor do, and `perform_seek` takes two broker round trips.
The queue is faust's own `FlowControlQueue(clear_on_resume=True)`, the kind agents read from.
No broker: the crash test (`tests/integration/test_worker_crash.py`) runs the fix against Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import faust
import pytest
from faust.tables.recovery import Recovery
from faust.types import TP

from streamguard.worker import recovery

INPUT = TP("sg.searches", 0)
COMMITTED = 10  # the group's committed offset: where the seek puts the fetch position
STALE = 50  # where the fetch position was before the seek (a partition kept across a rebalance)


class Fetching:
    """The consumer as `on_recovery_completed` uses it, with the Fetcher's deliveries."""

    def __init__(self, app: faust.App, queue: Any) -> None:
        self.app = app
        self.queue = queue
        self.paused = {INPUT}
        self.position = STALE
        self.fetched_after_seek: list[int] = []
        self.seeked = False

    def assignment(self) -> set[TP]:
        return {INPUT}

    def resume_partitions(self, tps: Any) -> None:
        self.paused -= set(tps)

    def resume_flow(self) -> None:
        return None

    async def perform_seek(self) -> None:
        await asyncio.sleep(0.01)  # OffsetFetch to the broker (from the consumer thread)
        self.position, self.seeked = COMMITTED, True
        await asyncio.sleep(0.01)  # the answer's way back to the event loop

    async def run(self) -> None:
        """Deliver a record every millisecond while the partition and the flow are open."""
        while True:
            await asyncio.sleep(0.001)
            if INPUT not in self.paused and self.app.flow_control.is_active():
                self.queue.put_nowait(self.position)
                if self.seeked:
                    self.fetched_after_seek.append(self.position)
                self.position += 1


class Fetcher:
    async def maybe_start(self) -> None:
        await asyncio.sleep(0)


async def complete_recovery(app: faust.App) -> tuple[list[int], list[int]]:
    """Run the app's `on_recovery_completed` as after a changelog replay.

    Returns (records fetched after the seek, records in the agent's queue).
    """
    queue = app.FlowControlQueue(maxsize=10_000, clear_on_resume=True)
    consumer = Fetching(app, queue)
    app.consumer = consumer
    app.__dict__["_fetcher"] = Fetcher()  # faust's cached_property keeps its value here
    # As `Recovery._restart_recovery` leaves it after replaying changelogs: flow open, Fetcher
    # running, input partitions paused.
    app.flow_control.resume()
    fetching = asyncio.ensure_future(consumer.run())
    try:
        await app.tables.recovery.on_recovery_completed(0)
        await asyncio.sleep(0.01)  # a few more deliveries after the worker is ready
    finally:
        fetching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetching
    queued = []
    while not queue.empty():
        queued.append(queue.get_nowait())
    return consumer.fetched_after_seek, queued


def app_named(name: str) -> faust.App:
    return faust.App(name, broker="kafka://localhost:1", store="memory://")


async def test_faust_drops_what_it_fetched_during_the_seek() -> None:
    """The fault the fix is for, shown with faust's own method: fetched records are cleared."""
    fetched, queued = await complete_recovery(app_named("sg-recovery-faust"))
    assert fetched[0] == COMMITTED
    assert set(fetched) - set(queued), "faust's method no longer drops fetched records"


async def test_fixed_recovery_hands_every_record_fetched_after_the_seek_to_the_agents() -> None:
    """In order, from the committed offset, nothing cleared and nothing from before the seek."""
    app = app_named("sg-recovery-fixed")
    recovery.install(app)
    fetched, queued = await complete_recovery(app)
    assert fetched
    assert queued == fetched == list(range(COMMITTED, COMMITTED + len(fetched)))


def test_install_changes_only_the_given_apps_recovery() -> None:
    fixed, other = app_named("sg-recovery-one"), app_named("sg-recovery-two")
    recovery.install(fixed)
    method = fixed.tables.recovery.on_recovery_completed
    assert method.__func__ is recovery.on_recovery_completed
    assert method.__self__ is fixed.tables.recovery
    assert other.tables.recovery.on_recovery_completed.__func__ is Recovery.on_recovery_completed


def test_installed_faust_is_the_version_the_fix_was_made_for() -> None:
    assert recovery.faust_source_sha256() == recovery.FAUST_SOURCE_SHA256


def test_install_refuses_a_changed_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    """A faust upgrade that changes the method stops the worker at start, naming this module."""
    monkeypatch.setattr(recovery, "FAUST_SOURCE_SHA256", "0" * 64)
    app = app_named("sg-recovery-changed")
    with pytest.raises(recovery.FaustChangedError, match="streamguard.worker.recovery"):
        recovery.install(app)
    assert app.tables.recovery.on_recovery_completed.__func__ is Recovery.on_recovery_completed
