"""The worker's per-batch work without Kafka or faust: `BatchProcessor.process`. Not a test.

    python benchmarks/bench_processor.py [--events 30000] [--agencies 1000] [--batch 1000]
        [--profile]

Same traffic as bench_scale.py (benchmarks/workload.py, seed 11): the owners' signed settings
are decided first (one batch), then the events in batches of --batch, on 4 partitions, with a
real metrics bundle and an in-memory counter table. Prints decided events/s (best of --runs)
and, with --profile, the top functions by cProfile own time. What it leaves out is what
bench_scale.py adds: faust's consumer and stream, the producer, the changelog store.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import time
from typing import Any

import orjson
from workload import build, keys

from streamguard.core.statutes import load_statutes
from streamguard.settings import WorkerSettings
from streamguard.stream.processor import BatchProcessor
from streamguard.stream.tables import build_state
from streamguard.stream.types import BatchResult, InMessage
from streamguard.worker.metrics import StreamguardMetrics

PARTITIONS = 4


def messages(work: Any) -> tuple[list[InMessage], list[InMessage]]:
    setup = [
        InMessage("policy", "policy", 0, i, c["agency_id"].encode(), orjson.dumps(c))
        for i, c in enumerate(work.setup)
    ]
    traffic: list[InMessage] = []
    offsets = [0] * PARTITIONS
    for event in work.events:
        if event["type"] == "search_request":
            role, key = "searches", event["requester"]["agency_id"]
        else:
            role, key = "reads", event["agency_id"]
        partition = hash(key) % PARTITIONS
        traffic.append(
            InMessage(role, role, partition, offsets[partition], key.encode(), orjson.dumps(event))
        )
        offsets[partition] += 1
    return setup, traffic


def run(work: Any, setup: list[InMessage], traffic: list[InMessage], batch: int) -> float:
    settings = WorkerSettings(rate_limit_per_minute=0, partitions=PARTITIONS)
    state = build_state(load_statutes(), work.agencies, (), (), 0)
    metrics = StreamguardMetrics.create()
    metrics.register_owners(a.agency_id for a in work.agencies)
    clock = time.time
    policy = BatchProcessor(
        settings, state, keys(work.agencies), b"salt-0123456789abcdef", metrics, clock
    )
    policy.process(setup, now=clock(), counters={}, heads={})
    procs = {
        role: BatchProcessor(
            settings, policy.state, keys(work.agencies), b"salt-0123456789abcdef", metrics, clock
        )
        for role in ("searches", "reads")
    }
    counters: dict[str, int] = {}
    start = time.perf_counter()
    for i in range(0, len(traffic), batch):
        chunk = traffic[i : i + batch]
        by_role: dict[tuple[str, int], list[InMessage]] = {}
        for msg in chunk:
            by_role.setdefault((msg.role, msg.partition), []).append(msg)
        for (role, _), group in by_role.items():
            result: BatchResult = procs[role].process(
                group, now=clock(), counters=counters, heads={}
            )
            counters.update(result.counters)
            for key in result.expired:
                counters.pop(key, None)
            for out in result.messages:
                orjson.dumps(out.value)  # what _deliver does with every output
    return len(traffic) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--agencies", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    work = build(args.events, args.agencies, seed=11)
    setup, traffic = messages(work)
    gc.freeze()
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        rate = run(work, setup, traffic, args.batch)
        profiler.disable()
        print(f"{rate:,.0f} events/s under cProfile")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    best = max(run(work, setup, traffic, args.batch) for _ in range(args.runs))
    print(
        f"BatchProcessor.process: {best:,.0f} events/s (best of {args.runs}, batches of "
        f"{args.batch}, {args.agencies} agencies)"
    )


if __name__ == "__main__":
    main()
