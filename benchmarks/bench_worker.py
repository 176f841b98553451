"""Throughput of one StreamGuard worker against a raw aiokafka consume-and-produce, same run.

Not a test. Needs a broker:

    streamguard kafka start --port 29092
    python benchmarks/bench_worker.py --broker localhost:29092 --n 100000

Produces N mixed searches and plate reads to fresh topics, then measures:
  * raw: one aiokafka consumer that parses every message with orjson and produces one output
    record per input (the floor any Kafka pipeline in Python pays);
  * worker: `python -m streamguard.worker` (a subprocess) deciding the same messages with
    routing, windowed counters, audit chain and quarantine. Completion is polled from its
    /metrics (`streamguard_events_total`) once a second; the rate is timed from the broker
    timestamps of the first and the last audit record (one per decision), so start-up, table
    recovery and the polling itself are not counted. (Scraping /metrics every 0.2 s, as an
    earlier version did, cost the worker about a fifth of its time.)
Prints events/s of both and worker/raw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamguard.core.timeutil import format_ts
from streamguard.local.testing import (
    WorkerProcess,
    contract_topics,
    create_topics,
    decided_events,
    worker_env,
)

STATES = ("CA", "TX", "IL", "VA", "WA", "GA", "FL", "NY", "OH", "AZ")
KINDS = ("local", "county", "state")
REASONS = (
    "burglary 459 PC case 25-{n:06d}",
    "stolen vehicle 10851 VC",
    "robbery 211 PC",
    "missing person - endangered",
    "ICE warrant",
    "investigation",
    "carjacking {n}",
)
WEB_PORT = 6151


def agencies_csv(n: int, rng: random.Random) -> tuple[str, list[str]]:
    ids = []
    lines = ["agency_id,name,state,kind"]
    for i in range(n):
        state = rng.choice(STATES)
        agency_id = f"{state.lower()}-agency-{i}"
        ids.append(agency_id)
        lines.append(f"{agency_id},Agency {i},{state},{rng.choice(KINDS)}")
    lines.append("us-fed-0,Federal Agency,US,federal")
    return "\n".join(lines) + "\n", [*ids, "us-fed-0"]


def events(n: int, ids: list[str], rng: random.Random) -> list[tuple[str, str, bytes]]:
    """(topic role, key, value) with ~70 % searches, ~30 % reads, event times over two hours."""
    base = time.time() - 7200
    out = []
    for i in range(n):
        ts = format_ts(base + i * 7200 / n)
        if rng.random() < 0.7:
            requester = rng.choice(ids)
            scope = rng.choice(("networks", "statewide", "national"))
            value: dict[str, Any] = {
                "type": "search_request",
                "search_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "ts": ts,
                "requester": {"agency_id": requester, "user_id": f"u-{i % 50}"},
                "reason": rng.choice(REASONS).format(n=i),
                "case_number": f"25-{i:06d}",
                "offense_type": None,
                "search_type": "lookup",
                "query": {"plate": f"{i % 9}ABC{i % 1000:03d}", "from": None, "to": None},
                "scope": scope,
                "networks": rng.sample(ids, 3) if scope == "networks" else [],
            }
            out.append(("searches", requester, orjson.dumps(value)))
        else:
            owner = rng.choice(ids)
            read: dict[str, Any] = {
                "type": "plate_read",
                "read_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "ts": ts,
                "agency_id": owner,
                "camera_id": "cam-1",
                "plate": f"{i % 9}XYZ{i % 1000:03d}",
                "plate_state": "CA",
                "confidence": 0.9,
                "location": {"lat": 34.0, "lon": -119.0},
                "hotlist_hit": False,
                "share_to": rng.sample(ids, 2),
            }
            out.append(("reads", owner, orjson.dumps(read)))
    return out


async def produce_all(bootstrap: str, prefix: str, items: list[tuple[str, str, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        for role, key, value in items:
            await producer.send(prefix + role, value, key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def raw_pipeline(bootstrap: str, prefix: str, n: int) -> float:
    """Consume N messages, parse each, produce one record each; events/s (first to last)."""
    consumer = AIOKafkaConsumer(
        prefix + "searches",
        prefix + "reads",
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        max_poll_records=2000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    seen = 0
    started: float | None = None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for messages in batch.values():
                for message in messages:
                    if started is None:
                        started = time.perf_counter()
                    value: dict[str, Any] = orjson.loads(message.value or b"{}")
                    value["decision_id"] = "x"
                    await producer.send(prefix + "raw.out", orjson.dumps(value), key=message.key)
                    seen += 1
            await producer.flush()
            await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()
    assert started is not None
    return n / (time.perf_counter() - started)


def decided(port: int) -> int:
    return decided_events(port, ("search_request", "plate_read", "raw"))


async def audit_span(bootstrap: str, topic: str) -> tuple[int, float]:
    """(records, seconds between the first and the last record's timestamp) of `topic`."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.unsubscribe()
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        stamps: list[int] = []
        for tp in tps:
            for offset in {starts[tp], ends[tp] - 1}:
                if offset < starts[tp]:
                    continue
                consumer.seek(tp, offset)
                batch = await consumer.getmany(tp, timeout_ms=5000, max_records=1)
                stamps.extend(m.timestamp for m in batch.get(tp, []))
        total = sum(ends[tp] - starts[tp] for tp in tps)
        return total, (max(stamps) - min(stamps)) / 1000.0
    finally:
        await consumer.stop()


def worker_rate(bootstrap: str, prefix: str, n: int, workdir: Path, agencies: Path) -> float:
    env = worker_env(
        bootstrap,
        prefix,
        workdir / "data",
        agencies=agencies,
        web_port=WEB_PORT,
        partitions=2,
        rate_limit_per_minute="0",
        batch_window_ms=os.environ.get("BENCH_WINDOW_MS", "50"),
    )
    worker = WorkerProcess(env, workdir / "worker.log")
    worker.start()
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if decided(WEB_PORT) >= n:
                records, seconds = asyncio.run(audit_span(bootstrap, prefix + "audit"))
                return records / seconds
            if not worker.alive():
                raise RuntimeError("worker died:\n" + worker.log_text()[-2000:])
            time.sleep(1.0)
        raise RuntimeError(f"worker decided only {decided(WEB_PORT)} of {n} in time")
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", default="localhost:29092")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--agencies", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(7)
    csv, ids = agencies_csv(args.agencies, rng)
    items = events(args.n, ids, rng)
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "agencies.csv").write_text(csv, encoding="utf-8")
        asyncio.run(create_topics(args.broker, [*contract_topics(prefix), prefix + "raw.out"], 2))
        t0 = time.perf_counter()
        asyncio.run(produce_all(args.broker, prefix, items))
        print(f"produced {args.n} messages in {time.perf_counter() - t0:.1f} s")
        raw = asyncio.run(raw_pipeline(args.broker, prefix, args.n))
        print(f"raw aiokafka consume+parse+produce: {raw:,.0f} events/s")
        worker = worker_rate(args.broker, prefix, args.n, workdir, workdir / "agencies.csv")
        print(f"streamguard worker (decide, route, count, audit): {worker:,.0f} events/s")
        print(
            json.dumps(
                {
                    "n": args.n,
                    "raw_events_per_s": round(raw),
                    "worker_events_per_s": round(worker),
                    "ratio": round(worker / raw, 3),
                }
            )
        )


if __name__ == "__main__":
    main()
