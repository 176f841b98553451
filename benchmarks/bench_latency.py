"""Where the produce->audit latency of one worker goes, event by event. Not a test.

    python benchmarks/bench_latency.py --broker localhost:29092 [--rates 300,900] \
        [--env batch_window_ms=10] [--env ""]

Needs a running broker. For each --env (STREAMGUARD_* settings of the worker, comma-separated
`name=value`; "" is the defaults) it starts one worker on fresh topics (bench_scale's `Run`),
applies the owners' settings, warms up, then offers each rate for --seconds and splits every
event's time from send to the arrival of its audit record into:

* send -> input append: the bench producer (linger 2 ms) and the broker;
* input append -> decided: the worker's fetch, faust's queues and the batch wait
  (`take_batches`), up to the batch's decision time (`decided_at` in the audit record, the
  worker's clock at the start of the batch's decisions);
* decided -> audit append: deciding the rest of the batch, building and producing its outputs;
* audit append -> arrival: the broker and the bench consumer.

"send -> audit append" is produce -> decision (the decision stored, #14's latency goal), without
the bench consumer's own delay; "total" is send -> arrival.

The input and audit topics are switched to `message.timestamp.type=LogAppendTime`, so their
record timestamps are the broker's append times, not the producers' clocks. All processes share
the machine's clock. Prints p50/p99 of each part.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import bench_scale as bs
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from workload import Workload, build

from streamguard.core.timeutil import parse_ts

PARTS = (
    "send->input append",
    "input append->decided",
    "decided->audit append",
    "audit append->arrival",
    "send->audit append",
    "total",
)


async def log_append_time(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    prefix + role,
                    configs={"message.timestamp.type": "LogAppendTime"},
                )
                for role in ("searches", "reads", "audit")
            ]
        )
    finally:
        await admin.close()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def slowest(parts: dict[str, list[float]], by: str, share: float) -> dict[str, float]:
    """Each part's mean over the `share` of events slowest by part `by`: where a p99 event's
    time went (the parts' own p99s come from different events)."""
    order = sorted(range(len(parts[by])), key=parts[by].__getitem__, reverse=True)
    chosen = order[: max(1, int(share * len(order)))] if order else []
    return {
        name: sum(values[i] for i in chosen) / len(chosen) if chosen else float("nan")
        for name, values in parts.items()
    }


async def paced(
    bootstrap: str, prefix: str, traffic: list[bs.Item], rate: float
) -> dict[str, list[float]]:
    """bench_scale's `_paced`, keeping the four timestamps of every event (seconds)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    tps = [TopicPartition(prefix + "audit", p) for p in range(bs.PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await producer.start()
    ids = [
        orjson.loads(v).get("search_id") or orjson.loads(v).get("read_id") for _, _, v in traffic
    ]
    sent: dict[str, float] = {}
    pending: list[tuple[str, asyncio.Future[object]]] = []
    seen: dict[str, tuple[float, float, float]] = {}  # id -> (decided, audit append, arrival)

    async def send() -> None:
        start, n = time.perf_counter(), 0
        while n < len(traffic):
            due = min(len(traffic), int((time.perf_counter() - start) * rate) + 1)
            for role, key, value in traffic[n:due]:
                sent[ids[n]] = time.time()
                pending.append(
                    (ids[n], await producer.send(prefix + role, value, key=key.encode()))
                )
                n += 1
            await asyncio.sleep(bs.TICK)
        await producer.flush()

    async def receive() -> None:
        deadline = time.monotonic() + bs.DRAIN_TIMEOUT
        while len(seen) < len(traffic) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for messages in batch.values():
                for message in messages:
                    record = orjson.loads(message.value or b"{}")
                    event_id = record.get("event_id")
                    decided = parse_ts(record.get("decided_at"))
                    if event_id in sent and event_id not in seen and decided is not None:
                        seen[event_id] = (decided, message.timestamp / 1000, now)

    try:
        await asyncio.gather(send(), receive())
        appended = {
            event_id: (await future).timestamp / 1000  # type: ignore[attr-defined]
            for event_id, future in pending
        }
    finally:
        await producer.stop()
        await consumer.stop()
    parts: dict[str, list[float]] = {name: [] for name in PARTS}
    for event_id, (decided, audit, arrival) in seen.items():
        start, append = sent[event_id], appended[event_id]
        for name, value in zip(
            PARTS,
            (
                append - start,
                decided - append,
                audit - decided,
                arrival - audit,
                audit - start,
                arrival - start,
            ),
            strict=True,
        ):
            parts[name].append(value)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", default="localhost:29092")
    parser.add_argument("--rates", default="300,900", help="offered loads, events/s")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of a trial")
    parser.add_argument("--env", action="append", help="worker settings of one run, repeatable")
    parser.add_argument("--web-port", type=int, default=bs.WEB_PORTS[0])
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="also run each --env with the worker from this `src` directory (an older "
        "checkout), before this checkout's, on the same traffic",
    )
    args = parser.parse_args()
    bs.WEB_PORTS[:] = [args.web_port, args.web_port + 1]
    rates = [float(r) for r in args.rates.split(",")]
    work = build(3000, 1000, seed=11)
    setup, _ = bs.items_of(work)
    print(f"bench_latency {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}; {bs.load()}")
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        workdir = Path(tmp)
        agencies, keys = bs.write_inputs(workdir, work)
        sources = [None] if args.baseline_src is None else [args.baseline_src.resolve(), None]
        for spec, src in [(spec, src) for spec in args.env or [""] for src in sources]:
            env = dict(item.split("=", 1) for item in spec.split(",")) if spec else {}
            if src is not None:
                print(f"baseline worker from {src}:", flush=True)
                run = bs.Run(args.broker, workdir, agencies, keys, env=env, src=src)
            else:
                run = bs.Run(args.broker, workdir, agencies, keys, env=env)
            asyncio.run(log_append_time(args.broker, run.prefix))
            try:
                run.start(1)
                run.apply_settings(setup)
                _, warm = bs.items_of(Workload(work.agencies, [], work.events[:500]), tag="w-")
                run.rate(warm)
                for trial, rate in enumerate(rates):
                    events = build(int(rate * args.seconds), 1000, seed=11).events
                    _, traffic = bs.items_of(Workload(work.agencies, [], events), tag=f"t{trial}-")
                    parts = asyncio.run(paced(args.broker, run.prefix, traffic, rate))
                    print(
                        f"{env or 'defaults'}, {rate:,.0f} ev/s, {len(parts['total']):,} "
                        f"events; {bs.load()}",
                        flush=True,
                    )
                    worst = slowest(parts, "send->audit append", 0.01)
                    for name in PARTS:
                        print(
                            f"  {name:24} p50 {1000 * quantile(parts[name], 0.5):8.1f} ms  "
                            f"p99 {1000 * quantile(parts[name], 0.99):8.1f} ms  "
                            f"slowest 1% mean {1000 * worst[name]:8.1f} ms",
                            flush=True,
                        )
            finally:
                run.stop()


if __name__ == "__main__":
    main()
