"""What faust's sensors cost the worker per event: per-event calls against batched ones. Not a test.

    python benchmarks/sensor_cost.py [--events 40000] [--rounds 3]

No broker: an unstarted worker app (`faust_fixes.create_app`) with the worker's sensor
(`StreamguardMetrics.install_faust_sensors`: the `StreamguardMonitor`, faust's Prometheus
monitor minus its broken metrics) takes --events events put straight on its channel queue
through `take_batches` (batches of 500 within 50 ms, as the worker's agents take them), once
with each way of calling the sensors:

* per event: faust's four calls per event, what `take_batches` does when the app has a sensor
  it cannot batch for (here forced by making `batch_monitors` find none);
* batched: `record_batch_in` / `record_batch_out`, one call per monitor and batch (the worker's
  path).

Prints, for each, the process CPU time per event in microseconds, best of --rounds (the two
alternate, so a slower stretch of the machine falls on both):

    per-event sensor calls: <us> CPU-us/event (best of 3)
    batched sensor calls:   <us> CPU-us/event (best of 3)

The difference is the per-event cost of faust's sensor calls that the batched path saves. Both
include the queue puts and the rest of take_batches' work per event (taking, tracking,
acknowledging).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from typing import Any
from unittest import mock

from faust.events import Event
from faust.types import TP, ConsumerMessage

from streamguard.worker.faust_fixes import batches, create_app
from streamguard.worker.metrics import StreamguardMetrics

TOPIC = "sg.searches"
PARTITIONS = 4
BATCH = 500
WITHIN_S = 0.05


def _app() -> Any:
    """The worker's faust app with its sensors, bound to the running loop, never started."""
    app = create_app(
        f"sensor-cost-{uuid.uuid4().hex[:8]}",
        broker="kafka://localhost:1",  # nothing connects: no broker is needed
        loop=asyncio.get_running_loop(),
    )
    app.flow_control.resume()  # as after a rebalance: events are taken, not skipped
    app.topics.acking_topics.add(TOPIC)  # tracked and acknowledged like an input topic's
    StreamguardMetrics.create().install_faust_sensors(app)
    app.sensors.add(app.monitor)  # what starting the app would do
    return app


def _events(app: Any, n: int) -> list[Any]:
    out = []
    for offset in range(n):
        tp = TP(TOPIC, offset % PARTITIONS)
        message = ConsumerMessage(
            TOPIC, tp.partition, offset, 0.0, 0, None, b"k", b"v", None, tp=tp
        )
        message.generation_id = app.consumer_generation_id
        message.refcount = 1
        out.append(Event(app, b"k", b"v", {}, message))
    return out


async def cpu_us_per_event(n: int) -> float:
    """Process CPU time per event of `take_batches` taking `n` events off a channel queue,
    each batch acknowledged and its sensors called."""
    app = _app()
    stream = app.stream(app.topic(TOPIC, key_type=bytes, value_type=bytes))
    taken = batches.take_batches(stream, BATCH, WITHIN_S)
    # The first batch awaited subscribes the stream's channel with the app's conductor.
    first = asyncio.ensure_future(anext(taken))
    await asyncio.sleep(0)
    channel = next(iter(app.topics))
    events = _events(app, n)

    async def feed() -> None:
        for event in events:
            await channel.queue.put(event)

    started = time.process_time()
    feeder = asyncio.ensure_future(feed())
    seen = len(await first)
    while seen < n:
        seen += len(await anext(taken))
    await feeder
    # Ends the iteration as stopping the app does; the last batch is acknowledged on the way.
    await channel.queue.throw(StopAsyncIteration())
    async for _ in taken:
        pass
    spent = time.process_time() - started
    counted = (app.monitor.events_total, app.monitor.messages_received_total)
    if counted != (n, n):
        msg = f"the sensors counted {counted} (events, messages) of {n}: the calls were not made"
        raise SystemExit(msg)
    return spent * 1e6 / n


def _sensor_calls(per_event: bool) -> contextlib.AbstractContextManager[object]:
    """Per event: `batch_monitors` finds no monitor it can batch for, as when the app has
    another sensor, and take_batches calls the sensors faust's way."""
    if per_event:
        return mock.patch.object(batches, "batch_monitors", lambda sensors: None)
    return contextlib.nullcontext()


async def measure(n: int, rounds: int) -> dict[bool, float]:
    """Best CPU-us/event of `rounds` alternated runs, by per-event (True) or batched (False)."""
    best = {True: float("inf"), False: float("inf")}
    for _ in range(rounds):
        for per_event in (True, False):
            with _sensor_calls(per_event):
                best[per_event] = min(best[per_event], await cpu_us_per_event(n))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000, help="events per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each way (best is kept)")
    args = parser.parse_args()
    best = asyncio.run(measure(args.events, args.rounds))
    print(f"per-event sensor calls: {best[True]:.1f} CPU-us/event (best of {args.rounds})")
    print(f"batched sensor calls:   {best[False]:.1f} CPU-us/event (best of {args.rounds})")


if __name__ == "__main__":
    main()
