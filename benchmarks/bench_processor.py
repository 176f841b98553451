"""The worker's per-batch work without Kafka or faust: `BatchProcessor.process`. Not a test.

    python benchmarks/bench_processor.py [--events 30000] [--agencies 1000] [--batch 1000]
        [--profile]
    python benchmarks/bench_processor.py --national 20000 [--pool 7000] [--searches 200]

Same traffic as bench_scale.py (benchmarks/workload.py, seed 11): the owners' signed settings
are decided first (one batch), then the events in batches of --batch, on 4 partitions, with a
real metrics bundle and an in-memory counter table. Prints decided events/s (best of --runs)
and, with --profile, the top functions by cProfile own time. What it leaves out is what
bench_scale.py adds: faust's consumer and stream, the producer, the changelog store.

With --national, a registry of that many agencies of which --pool open their network to national
lookup (settings set directly, not signed), and --searches national searches by requesters of
every class and state with the workload's purposes and windows: prints the processor (CPU) time
per national search, and the bytes of all its outputs (messages and audit record) per network.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import time
from typing import Any

import orjson
from workload import REASONS, build, keys

from streamguard.core.models import OwnerSettings
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import format_ts
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


def national_run(work: Any, pool: int, searches: int) -> tuple[float, float, float, int, int]:
    """(CPU seconds per national search with warm caches, and from cold, output bytes per
    network, networks per search, the largest message): `searches` national searches on a fresh
    snapshot (cold caches), then `searches` more by the same requesters with the same purposes
    (new ids, plates and windows): what a search costs once its requester class has searched
    with that purpose under the current policy."""
    rng = random.Random(5)
    open_ = [a for a in work.agencies if not a.is_federal and not a.is_private]
    chosen = {a.agency_id for a in rng.sample(open_, min(pool, len(open_)))}
    settings = {
        a.agency_id: OwnerSettings(
            national_lookup=a.agency_id in chosen,
            statewide_lookup=True,
            retention_days=float(rng.choice((30, 60, 365))) if rng.random() < 0.2 else None,
        )
        for a in work.agencies
    }
    state = PolicyState.create(load_statutes(), work.agencies, settings)
    metrics = StreamguardMetrics.create()
    metrics.register_owners(a.agency_id for a in work.agencies)
    proc = BatchProcessor(
        WorkerSettings(rate_limit_per_minute=0, partitions=PARTITIONS),
        state,
        keys(()),
        b"salt-0123456789abcdef",
        metrics,
        time.time,
    )
    now = 1_740_830_400.0 + 3600
    batch = []
    people = [
        (rng.choice(work.agencies), rng.choice(REASONS), rng.random()) for _ in range(searches)
    ]
    for n in range(2 * searches):
        requester, reason, case = people[n % searches]
        event = {
            "type": "search_request",
            "search_id": f"n-{n}",
            "ts": format_ts(now - 60 + n * 0.01),
            "requester": {"agency_id": requester.agency_id, "user_id": f"u-{n % 50}"},
            "reason": reason.format(n=n),
            "case_number": f"25-{n:06d}" if case < 0.7 else None,
            "offense_type": None,
            "search_type": "lookup",
            "query": {
                "plate": f"{rng.randrange(10**6):06d}X",
                "to": format_ts(now - 60),
                "from": format_ts(now - 86_400 * rng.randint(0, 40)),
            },
            "scope": "national",
            "networks": [],
        }
        batch.append(
            InMessage(
                "searches", "searches", 0, n, requester.agency_id.encode(), orjson.dumps(event)
            )
        )
    cpu: list[float] = []
    for half in (batch[:searches], batch[searches:]):
        start = time.process_time()
        result = proc.process(half, now=now, counters={}, heads={})
        sizes = [len(orjson.dumps(out.value)) for out in result.messages]
        cpu.append(time.process_time() - start)  # the encoding is part of the worker's cost
    sizes += [len(record) for _, record in result.audit]
    networks = len(chosen)
    cold, warm = cpu
    return warm / searches, cold / searches, sum(sizes) / searches / networks, networks, max(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--agencies", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--national", type=int, default=0, help="registry size (national mode)")
    parser.add_argument("--pool", type=int, default=7_000)
    parser.add_argument("--searches", type=int, default=200)
    args = parser.parse_args()
    if args.national:
        work = build(0, args.national, seed=11)
        gc.freeze()
        runs = [national_run(work, args.pool, args.searches) for _ in range(args.runs)]
        warm, cold, per_network, networks, largest = min(runs)
        print(
            f"national search: {warm * 1000:.2f} ms CPU per search, cached class and purpose "
            f"({cold * 1000:.2f} ms from cold; best of {args.runs}, {args.searches} searches, "
            f"{args.national} agencies, pool {networks}); outputs {per_network:.1f} bytes per "
            f"network; largest message {largest:,} bytes"
        )
        return
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
