"""The drain fix (`streamguard.worker.faust_fixes.drain`) on the worker's real faust consumer.

A message is handed to the conductor with a direct step while the flow is open, and through
faust's own race with `suspend_flow` when the flow is suspended or the hand-over would wait: a
callback blocked when a rebalance suspends the flow is abandoned, as faust's `wait_first` does.
No broker: `tests/integration/test_worker_crash.py`, `test_faults.py` and `test_scale.py` run
the same consumer against Kafka.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streamguard.worker.faust_fixes.drain import DirectDrainConsumer, hand_over
from tests.functional.faust_apps import unstarted_app


class Spy:
    """Counts the consumer's `wait_first` calls (faust's slow path) and passes them on."""

    def __init__(self, consumer: Any) -> None:
        self.calls = 0
        self._wait_first = consumer.wait_first
        consumer.wait_first = self

    async def __call__(self, *coros: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self._wait_first(*coros, **kwargs)


@pytest.fixture
async def consumer() -> Any:
    consumer = unstarted_app("drain").consumer
    assert isinstance(consumer, DirectDrainConsumer)
    assert consumer.loop is asyncio.get_running_loop()
    consumer.resume_flow()
    return consumer


async def test_a_callback_that_does_not_wait_is_handed_over_without_a_task(consumer: Any) -> None:
    spy = Spy(consumer)
    delivered: list[int] = []
    tasks_before = len(asyncio.all_tasks())

    async def callback(n: int) -> None:
        delivered.append(n)

    for n in range(3):
        await hand_over(consumer, callback(n))
    assert delivered == [0, 1, 2]
    assert spy.calls == 0
    assert len(asyncio.all_tasks()) == tasks_before


async def test_a_callback_that_waits_finishes_through_faust_race(consumer: Any) -> None:
    spy = Spy(consumer)
    room = asyncio.Event()
    delivered: list[str] = []

    async def callback() -> None:
        await room.wait()  # a full agent queue
        delivered.append("late")

    handing = asyncio.ensure_future(hand_over(consumer, callback()))
    await asyncio.sleep(0.01)
    assert not handing.done() and delivered == []
    room.set()
    await asyncio.wait_for(handing, 1)
    assert delivered == ["late"]
    assert spy.calls == 1


async def test_a_blocked_callback_yields_to_a_suspended_flow(consumer: Any) -> None:
    """A rebalance suspends the flow while the hand-over waits: the callback is abandoned
    (cancelled where it waits) and the drain loop moves on, as with faust's own loop."""
    room = asyncio.Event()
    seen: list[str] = []

    async def callback() -> None:
        try:
            await room.wait()
            seen.append("delivered")
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    handing = asyncio.ensure_future(hand_over(consumer, callback()))
    await asyncio.sleep(0.01)
    consumer.stop_flow()  # what faust does when partitions are revoked
    await asyncio.wait_for(handing, 1)
    room.set()
    await asyncio.sleep(0.01)
    assert seen == ["cancelled"]


async def test_a_suspended_flow_takes_faust_path_from_the_start(consumer: Any) -> None:
    spy = Spy(consumer)
    consumer.stop_flow()
    started: list[str] = []

    async def callback() -> None:
        started.append("ran")
        await asyncio.Event().wait()  # e.g. waiting for flow control to resume

    await asyncio.wait_for(hand_over(consumer, callback()), 1)
    assert spy.calls == 1
    consumer.resume_flow()


async def test_an_error_in_the_callback_reaches_the_drain_loop(consumer: Any) -> None:
    class Boom(Exception):
        pass

    async def at_once() -> None:
        raise Boom

    async def after_a_wait() -> None:
        await asyncio.sleep(0)
        raise Boom

    with pytest.raises(Boom):
        await hand_over(consumer, at_once())
    with pytest.raises(Boom):
        await hand_over(consumer, after_a_wait())
