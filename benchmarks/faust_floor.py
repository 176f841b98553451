"""faust's own ceiling on this machine: a bare faust app consuming the bench's input topics.

    python benchmarks/faust_floor.py --broker localhost:49092 --prefix bs1234abcd. --n 30000 \\
        --mode noop|send|batch [--app faust|streamguard] --result out.json
    python benchmarks/faust_floor.py --compare --broker localhost:19092 --prefix mine. --n 60000

`--app faust` (the default) is faust as installed: `take_events` on a plain `faust.App`.
`--app streamguard` is the worker's faust: the app from `faust_fixes.create_app` (its drain
loop putting fetched messages straight on the agents' queues) and
`faust_fixes.batches.take_batches` (one ack per batch).
`--compare` writes N small messages to `<prefix>searches` / `<prefix>reads` (created here) and
runs `noop` with both apps, alternated, best of --rounds, printing the floor per message of
each and their ratio (same run, same input).

Run by bench_scale.py as a reference line (a child process per mode). The app is configured
like the worker (raw bytes, `take_events` batches of STREAMGUARD_BATCH_SIZE within 50 ms,
concurrency 1 per agent, at-least-once, one agent per input topic, no tables, web server off):

* noop:  take the events, do nothing with them (faust's per-message machinery only);
* send:  produce one message per event (the input bytes, to `<prefix>raw.out`) with faust's
  `app.producer.send`, then wait for every acknowledgement of the batch;
* batch: the same, through aiokafka's batch API, with the worker's own record-batch producer
  (`streamguard.worker.delivery.RecordBatches`, what the worker's delivery sends with).

The rate is events/s from the first event an agent sees to the N-th one done; it is written as
JSON to --result and the process exits at once (nothing to commit or flush).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import uuid
from typing import Any

import faust

from streamguard.worker.delivery import RecordBatches
from streamguard.worker.faust_fixes import create_app
from streamguard.worker.faust_fixes.batches import take_batches
from streamguard.worker.faust_fixes.producer import aiokafka_producer

ROLES = ("searches", "reads")


async def _fill(broker: str, prefix: str, n: int) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(prefix + r, 4, 1) for r in ROLES])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=5, max_batch_size=1 << 20)
    await producer.start()
    try:
        value = b'{"search_id":"00000000-0000-0000-0000-000000000000","agency_id":"ca-x"}'
        for i in range(n):
            await producer.send(prefix + ROLES[i % 2], value, key=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()


def _child(args: argparse.Namespace, app_kind: str, result: str) -> tuple[float, float]:
    import subprocess

    command = [sys.executable, __file__, "--broker", args.broker, "--prefix", args.prefix]
    command += ["--n", str(args.n), "--mode", "noop", "--app", app_kind, "--result", result]
    subprocess.run(command, check=False, timeout=600)
    try:
        with open(result, encoding="utf-8") as handle:
            got = json.load(handle)
    except OSError:
        return float("nan"), float("nan")
    return float(got["events_per_s"]), float(got["cpu_us_per_event"])


def compare(args: argparse.Namespace) -> None:
    asyncio.run(_fill(args.broker, args.prefix, args.n))
    best: dict[str, float] = {}  # app -> least CPU µs per message
    for round_ in range(args.rounds):
        for app_kind in ("faust", "streamguard"):
            result = f"/tmp/faust-floor-{uuid.uuid4().hex[:8]}.json"
            rate, cpu_us = _child(args, app_kind, result)
            best[app_kind] = min(best.get(app_kind, float("inf")), cpu_us)
            print(
                f"round {round_ + 1} {app_kind:11s}: {rate:9,.0f} events/s wall, "
                f"{cpu_us:6.1f} CPU-us/message",
                flush=True,
            )
    for app_kind, cpu_us in best.items():
        print(f"floor {app_kind:11s}: {cpu_us:6.1f} CPU-us/message (best of {args.rounds})")
    print(f"streamguard/faust floor = {best['streamguard'] / best['faust']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--mode", choices=("noop", "send", "batch"), default="noop")
    parser.add_argument("--app", choices=("faust", "streamguard"), default="faust")
    parser.add_argument("--result", default="")
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--datadir", default=f"/tmp/faust-floor-{uuid.uuid4().hex[:8]}")
    args = parser.parse_args()
    if args.compare:
        compare(args)
        return

    make_app = create_app if args.app == "streamguard" else faust.App
    app = make_app(
        f"{args.prefix.rstrip('.')}-floor-{args.mode}-{uuid.uuid4().hex[:6]}",
        broker=f"kafka://{args.broker}",
        store="memory://",
        datadir=args.datadir,
        web_enabled=False,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
        producer_max_batch_size=1024 * 1024,
        producer_max_request_size=4 * 1024 * 1024,
        stream_buffer_maxsize=max(4096, 4 * args.batch_size),
    )
    out_topic = args.prefix + "raw.out"
    state: dict[str, Any] = {"seen": 0, "start": None}

    def finish() -> None:
        elapsed = time.perf_counter() - state["start"]
        with open(args.result, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "mode": args.mode,
                    "app": args.app,
                    "n": state["seen"],
                    "events_per_s": state["seen"] / elapsed,
                    # CPU of the whole process (event loop and faust's consumer thread) per
                    # event: the floor, whatever the fetches waited for.
                    "cpu_us_per_event": (time.process_time() - state["cpu"]) * 1e6 / state["seen"],
                },
                handle,
            )
        logging.shutdown()
        os._exit(0)

    async def deliver(events: list[Any]) -> None:
        if args.mode == "send":
            producer = app.producer
            pending = [
                await producer.send(out_topic, e.message.key, e.message.value, None, None, None)
                for e in events
            ]
            await asyncio.gather(*pending)
        elif args.mode == "batch":
            kafka = aiokafka_producer(app.producer)
            if kafka is None:
                raise RuntimeError("faust's producer has no started aiokafka producer")
            out = RecordBatches(kafka)
            await out.prepare([out_topic])
            for e in events:
                out.add(out_topic, e.message.key, e.message.value, None)
            await out.send()

    def agent(role: str) -> None:
        topic = app.topic(
            args.prefix + role,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

        async def body(stream: Any) -> None:
            if args.app == "streamguard":
                batches = take_batches(stream, args.batch_size, 0.05)
            else:
                batches = stream.take_events(args.batch_size, 0.05)
            async for events in batches:
                if state["start"] is None:
                    state["start"] = time.perf_counter()
                    state["cpu"] = time.process_time()
                await deliver(events)
                state["seen"] += len(events)
                if state["seen"] >= args.n:
                    finish()

        body.__name__ = body.__qualname__ = f"floor_{role}"
        app.agent(topic, name=f"floor.{role}", concurrency=1)(body)

    agent("searches")
    agent("reads")
    sys.argv = [sys.argv[0]]
    faust.Worker(app, loglevel="warning").execute_from_commandline()


if __name__ == "__main__":
    main()
