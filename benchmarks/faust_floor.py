"""faust's own ceiling on this machine: a bare faust app consuming the bench's input topics.

    python benchmarks/faust_floor.py --broker localhost:49092 --prefix bs1234abcd. --n 30000 \\
        --mode noop|send|batch --result out.json

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
from streamguard.worker.faust_fixes.producer import aiokafka_producer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--mode", choices=("noop", "send", "batch"), required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--datadir", default=f"/tmp/faust-floor-{uuid.uuid4().hex[:8]}")
    args = parser.parse_args()

    app = faust.App(
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
                {"mode": args.mode, "n": state["seen"], "events_per_s": state["seen"] / elapsed},
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
            async for events in stream.take_events(args.batch_size, 0.05):
                if state["start"] is None:
                    state["start"] = time.perf_counter()
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
