"""The worker's per-batch work without Kafka or faust: `BatchProcessor.process`. Not a test.

    python benchmarks/bench_processor.py [--events 30000] [--agencies 1000] [--batch 1000]
        [--profile]
    python benchmarks/bench_processor.py --classes [--events 20000]
    python benchmarks/bench_processor.py --baseline-src /tmp/sg-base [--events 20000] [--runs 3]
    python benchmarks/bench_processor.py --check-src /path/to/other/checkout [--events 20000]
    python benchmarks/bench_processor.py --national 20000 [--pool 7000] [--searches 200]
        [--check-src /path/to/other/checkout] [--profile]

Same traffic as bench_scale.py (benchmarks/workload.py, seed 11): the owners' signed settings
are decided first (one batch), then the events in batches of --batch, on 4 partitions, with a
real metrics bundle and an in-memory counter table. Prints decided events/s (best of --runs)
and, with --profile, the top functions by cProfile own time. What it leaves out is what
bench_scale.py adds: faust's consumer and stream, the producer, the changelog store.

--classes: the same traffic (settings set directly), each class (networks-scoped, statewide
and national searches, reads) in batches of its own after a warm-up pass: CPU µs per event of
each class, output encoding included. --baseline-src runs that in fresh interpreters for the
checkout at the path and for this one, alternated, best of --runs, and prints the ratios.

With --national, a registry of that many agencies of which --pool open their network to national
lookup (settings set directly, not signed), and --searches national searches by requesters of
every class and state with the workload's purposes and windows: prints the processor (CPU) time
per national search from cold, warm (same requesters and purposes, new windows) and fully
repeated (the warm searches again: every cached verdict set hit), and the bytes of all its
outputs (messages and audit record) per network. --check-src runs the same batches through
another checkout and fails unless every encoded output and audit record is byte-identical;
--baseline-src gives the three figures of another checkout alternated with this one's, and
their ratios; --profile profiles the fully repeated batch.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import json
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import orjson

from streamguard.core.models import Agency, OwnerSettings
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import format_ts, parse_ts
from streamguard.settings import WorkerSettings
from streamguard.stream.processor import BatchProcessor
from streamguard.stream.tables import build_state
from streamguard.stream.types import BatchResult, InMessage
from streamguard.worker.metrics import StreamguardMetrics

PARTITIONS = 4
# The worker's cyclic-GC thresholds (streamguard.worker.app), set after a freeze like it does.
GC_THRESHOLDS = (50_000, 20, 20)


def freeze() -> None:
    """What the worker does once it is set up: freeze what lives for good, collect rarely."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


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
    from workload import keys

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


def _national_batches(
    agencies: list[Agency], pool: int, searches: int
) -> tuple[PolicyState, list[list[InMessage]], int]:
    """The national workload: (its snapshot, the three batches, the pool's size)."""
    from workload import REASONS  # here: an older checkout's child never imports it

    rng = random.Random(5)
    open_ = [a for a in agencies if not a.is_federal and not a.is_private]
    chosen = {a.agency_id for a in rng.sample(open_, min(pool, len(open_)))}
    settings = {
        a.agency_id: OwnerSettings(
            national_lookup=a.agency_id in chosen,
            statewide_lookup=True,
            retention_days=float(rng.choice((30, 60, 365))) if rng.random() < 0.2 else None,
        )
        for a in agencies
    }
    state = PolicyState.create(load_statutes(), agencies, settings)
    people = [(rng.choice(agencies), rng.choice(REASONS), rng.random()) for _ in range(searches)]
    events: list[dict[str, Any]] = []
    for n in range(2 * searches):
        requester, reason, case = people[n % searches]
        events.append(
            {
                "type": "search_request",
                "search_id": f"n-{n}",
                "ts": format_ts(NATIONAL_NOW - 60 + n * 0.01),
                "requester": {"agency_id": requester.agency_id, "user_id": f"u-{n % 50}"},
                "reason": reason.format(n=n),
                "case_number": f"25-{n:06d}" if case < 0.7 else None,
                "offense_type": None,
                "search_type": "lookup",
                "query": {
                    "plate": f"{rng.randrange(10**6):06d}X",
                    "to": format_ts(NATIONAL_NOW - 60),
                    "from": format_ts(NATIONAL_NOW - 86_400 * rng.randint(0, 40)),
                },
                "scope": "national",
                "networks": [],
            }
        )
    # The third batch repeats the second one's searches (same requesters, purposes and
    # windows; new ids, plates and times): every verdict set and what derives from it is a
    # memo hit.
    for n, warm in enumerate(events[searches : 2 * searches], 2 * searches):
        events.append(
            {
                **warm,
                "search_id": f"n-{n}",
                "ts": format_ts(NATIONAL_NOW - 60 + n * 0.01),
                "query": {**warm["query"], "plate": f"{rng.randrange(10**6):06d}X"},
            }
        )
    batch = [
        InMessage(
            "searches",
            "searches",
            0,
            n,
            e["requester"]["agency_id"].encode(),
            orjson.dumps(e),
        )
        for n, e in enumerate(events)
    ]
    return state, [batch[i : i + searches] for i in range(0, 3 * searches, searches)], len(chosen)


NATIONAL_NOW = 1_740_830_400.0 + 3600


def national_run(
    agencies: list[Agency], pool: int, searches: int, digest: Any = None
) -> tuple[tuple[float, float, float], float, int, int]:
    """((CPU seconds per national search from cold, warm, fully repeated), output bytes per
    network, networks per search, the largest message).

    `searches` national searches on a fresh snapshot (cold caches); then `searches` more by the
    same requesters with the same purposes (new ids, plates and windows: what a search costs
    once its requester class has searched with that purpose under the current policy, though
    its window may land in a new retention bucket); then the second batch's searches again with
    the same windows (every memo hit). `digest`: a hash object fed every encoded output."""
    state, batches, networks = _national_batches(agencies, pool, searches)
    metrics = StreamguardMetrics.create()
    metrics.register_owners(a.agency_id for a in agencies)
    proc = BatchProcessor(
        WorkerSettings(rate_limit_per_minute=0, partitions=PARTITIONS),
        state,
        {},
        b"salt-0123456789abcdef",
        metrics,
        time.time,
    )
    cpu: list[float] = []
    sizes: list[int] = []
    for half in batches:
        start = time.process_time()
        result = proc.process(half, now=NATIONAL_NOW, counters={}, heads={})
        encoded = [orjson.dumps(out.value) for out in result.messages]
        cpu.append(time.process_time() - start)  # the encoding is part of the worker's cost
        if digest is not None:
            for out, data in zip(result.messages, encoded, strict=True):
                digest.update(f"{out.role}|{out.key}|".encode() + data + b"\n")
            for chain, record in result.audit:
                digest.update(chain.encode() + b"|" + record + b"\n")
        sizes = [len(data) for data in encoded]
    sizes += [len(record) for _, record in result.audit]
    cold, warm, repeated = (c / searches for c in cpu)
    return (cold, warm, repeated), sum(sizes) / searches / networks, networks, max(sizes)


# --- per-class cost, against another checkout ------------------------------------------------

CLASSES = ("networks", "statewide", "national", "read")


def class_spec(events: int, agency_count: int) -> dict[str, Any]:
    """The workload's agencies, the settings its signed setup would give, and its traffic, as
    JSON any checkout's processor can be fed (settings are set directly: the signing API of an
    older checkout differs)."""
    from workload import build

    work = build(events, agency_count, seed=11)
    settings: dict[str, dict[str, Any]] = {}
    for change in work.setup:
        settings.setdefault(change["agency_id"], {})[change["setting"]] = change["value"]
    return {
        "agencies": [[a.agency_id, a.name, a.state, a.kind] for a in work.agencies],
        "settings": settings,
        "events": work.events,
    }


def _class_of(event: dict[str, Any]) -> str:
    return "read" if event["type"] == "plate_read" else str(event["scope"])


def class_run(spec: dict[str, Any], batch: int, digest: Any = None) -> dict[str, float]:
    """CPU µs per event of each class, processed in batches of one class (outputs encoded as
    the worker's delivery does), on 4 partitions, event-time `now`."""
    agencies = [Agency(*a) for a in spec["agencies"]]
    settings = {
        owner: OwnerSettings(
            share_with=frozenset(values.get("share_with", ())),
            statewide_lookup=bool(values.get("statewide_lookup", False)),
            national_lookup=bool(values.get("national_lookup", False)),
        )
        for owner, values in spec["settings"].items()
    }
    state = PolicyState.create(load_statutes(), agencies, settings)
    metrics = StreamguardMetrics.create()
    metrics.register_owners(a.agency_id for a in agencies)
    by_class: dict[str, list[tuple[float, InMessage]]] = {c: [] for c in CLASSES}
    offsets: dict[tuple[str, int], int] = {}
    for event in spec["events"]:
        if event["type"] == "search_request":
            role, key = "searches", event["requester"]["agency_id"]
        else:
            role, key = "reads", event["agency_id"]
        partition = zlib.crc32(key.encode()) % PARTITIONS
        offset = offsets[(role, partition)] = offsets.get((role, partition), -1) + 1
        message = InMessage(role, role, partition, offset, key.encode(), orjson.dumps(event))
        by_class[_class_of(event)].append((parse_ts(event["ts"]) or 0.0, message))
    worker = WorkerSettings(rate_limit_per_minute=0, partitions=PARTITIONS)
    out: dict[str, float] = {}
    # A first pass warms the engine's caches of this snapshot, as a running worker has them;
    # the second, with fresh processors and counters, is measured.
    for _ in range(2):
        procs = {
            role: BatchProcessor(worker, state, {}, b"salt-0123456789abcdef", metrics, time.time)
            for role in ("searches", "reads")
        }
        out = _class_pass(procs, by_class, batch, digest)
    if digest is not None:
        digest.update(_metric_samples(metrics))
    return out


_CLOCKED = frozenset(
    ("streamguard_decision_seconds", "streamguard_agency_searches", "streamguard_rebalance_seconds")
)


def _metric_samples(metrics: StreamguardMetrics) -> bytes:
    """Every sample of the decision metrics, encoded. What reads the wall clock is left out:
    the decision latencies, creation times, the agency-search gauges (published at most once
    a second) and the process's own metrics."""
    found = []
    for family in metrics.registry.collect():
        if family.name in _CLOCKED or family.name.startswith(("process_", "python_")):
            continue
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                found.append((sample.name, sorted(sample.labels.items()), sample.value))
    return orjson.dumps(sorted(found))


def _class_pass(
    procs: dict[str, BatchProcessor],
    by_class: dict[str, list[tuple[float, InMessage]]],
    batch: int,
    digest: Any = None,
) -> dict[str, float]:
    """`digest`: a hash object fed every output, audit record, counter write and expiry."""
    out: dict[str, float] = {}
    counters: dict[str, int] = {}
    for name, items in by_class.items():
        spent = 0.0
        for i in range(0, len(items), batch):
            chunk = items[i : i + batch]
            now = chunk[-1][0] + 0.5
            groups: dict[tuple[str, int], list[InMessage]] = {}
            for _, msg in chunk:
                groups.setdefault((msg.role, msg.partition), []).append(msg)
            start = time.process_time()
            for (role, _), group in groups.items():
                result = procs[role].process(group, now=now, counters=counters, heads={})
                counters.update(result.counters)
                for key in result.expired:
                    counters.pop(key, None)
                for message in result.messages:
                    orjson.dumps(message.value)
                if digest is not None:
                    _digest_result(digest, result)
            spent += time.process_time() - start
        out[name] = spent / max(len(items), 1) * 1e6
    return out


def _digest_result(digest: Any, result: BatchResult) -> None:
    for message in result.messages:
        digest.update(f"{message.role}|{message.key}|".encode() + orjson.dumps(message.value))
    for chain, record in result.audit:
        digest.update(chain.encode() + b"|" + record + b"\n")
    digest.update(orjson.dumps(sorted(result.counters.items())))
    digest.update(orjson.dumps(sorted(result.expired)))


def class_digest(spec: dict[str, Any], batch: int) -> str:
    """sha256 of everything `class_run`'s two passes write (the second one on warm caches)."""
    digest = hashlib.sha256()
    class_run(spec, batch, digest)
    return digest.hexdigest()


def _child(src: Path, mode: str, spec_file: Path, *extra: str) -> Any:
    """Run this script's `mode` in a fresh interpreter importing the checkout at `src`."""
    if not (src / "src" / "streamguard" / "__init__.py").is_file():
        # Without this the child would import the editable install instead, and a "baseline"
        # would silently be this tree measured against itself.
        raise SystemExit(
            f"bench_processor: error: {src} is not a checkout (no src/streamguard in it); "
            "give the checkout's root, not its src/"
        )
    env = {**os.environ, "PYTHONPATH": str(src / "src"), "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [sys.executable, __file__, mode, str(spec_file), *extra],
        env=env,
        capture_output=True,
        check=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_classes(baseline: Path, events: int, agency_count: int, batch: int, runs: int) -> None:
    """Same workload through the baseline checkout and this one, alternated in fresh
    interpreters; best of `runs` per class and checkout; prints µs per event and ratios."""
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_bytes(orjson.dumps(class_spec(events, agency_count)))
        best: dict[str, dict[str, float]] = {"baseline": {}, "this": {}}
        for _ in range(runs):
            for name, src in (("baseline", baseline), ("this", here)):
                got = _child(src, "--class-child", spec_file, str(batch))
                for cls, us in got.items():
                    best[name][cls] = min(us, best[name].get(cls, us))
    print(
        f"per-event CPU µs by class (best of {runs}, alternated; {events} events, "
        f"{agency_count} agencies, batches of {batch}):"
    )
    for cls in CLASSES:
        old, new = best["baseline"][cls], best["this"][cls]
        print(f"  {cls:9s} baseline {old:8.1f}  this {new:8.1f}  ratio {new / old:.2f}")


def check_classes(other: Path, events: int, agency_count: int, batch: int) -> None:
    """The per-class workload through the checkout at `other` and this one: every output,
    audit record, counter write and expiry of both passes, and the metrics, must be
    byte-identical."""
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_bytes(orjson.dumps(class_spec(events, agency_count)))
        theirs = _child(other, "--class-digest-child", spec_file, str(batch))
        mine = _child(here, "--class-digest-child", spec_file, str(batch))
    same = "identical" if theirs == mine else "DIFFERENT"
    print(
        f"per-class workload ({events} events, {agency_count} agencies, cold and warm pass), "
        f"outputs, audit records and counters against {other}: {same} (sha256 {mine[:16]})"
    )
    if theirs != mine:
        raise SystemExit(1)


def _national_spec(agencies: list[Agency], pool: int, searches: int) -> bytes:
    return orjson.dumps(
        {
            "agencies": [[a.agency_id, a.name, a.state, a.kind] for a in agencies],
            "args": [pool, searches],
        }
    )


def compare_national(
    baseline: Path, agencies: list[Agency], pool: int, searches: int, runs: int
) -> None:
    """The national figures of the checkout at `baseline` and of this one, alternated in
    fresh interpreters, best of `runs` each, with their ratios."""
    here = Path(__file__).resolve().parent.parent
    best: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_bytes(_national_spec(agencies, pool, searches))
        for _ in range(runs):
            for name, src in (("baseline", baseline), ("this", here)):
                got = _child(src, "--national-child", spec_file)
                best[name] = [min(a, b) for a, b in zip(best.get(name, got), got, strict=True)]
    print(f"national search, ms CPU per search (best of {runs}, alternated, pool {pool}):")
    for i, figure in enumerate(("cold", "warm (new windows)", "fully repeated (same windows)")):
        old, new = best["baseline"][i] * 1000, best["this"][i] * 1000
        print(f"  {figure:30s} baseline {old:7.2f}  this {new:7.2f}  ratio {new / old:.2f}")


def national(args: argparse.Namespace) -> None:
    """The --national figures, with an optional byte-for-byte check against another tree."""
    from workload import build

    agencies = build(0, args.national, seed=11).agencies
    freeze()
    if args.profile:
        profiler = cProfile.Profile()
        state, batches, _ = _national_batches(agencies, args.pool, args.searches)
        proc = BatchProcessor(
            WorkerSettings(rate_limit_per_minute=0, partitions=PARTITIONS),
            state,
            {},
            b"salt-0123456789abcdef",
            StreamguardMetrics.create(),
            time.time,
        )
        for n, half in enumerate(batches):
            if n == int(os.environ.get("PROFILE_PASS", "2")):  # 0 cold, 1 warm, 2 repeated
                profiler.enable()
            result = proc.process(half, now=NATIONAL_NOW, counters={}, heads={})
            for out in result.messages:
                orjson.dumps(out.value)
            profiler.disable()
        print("fully repeated national searches under cProfile:")
        pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(25)
        return
    if args.baseline_src:
        compare_national(args.baseline_src, agencies, args.pool, args.searches, args.runs)
        return
    runs = [national_run(agencies, args.pool, args.searches) for _ in range(args.runs)]
    cold, warm, repeated = (min(r[0][i] for r in runs) for i in range(3))
    _, per_network, networks, largest = runs[0]
    print(
        f"national search, ms CPU per search (best of {args.runs}, {args.searches} searches, "
        f"{args.national} agencies, pool {networks}):\n"
        f"  cold {cold * 1000:.2f}  warm (new windows) {warm * 1000:.2f}  "
        f"fully repeated (same windows) {repeated * 1000:.2f}\n"
        f"  outputs {per_network:.1f} bytes per network; largest message {largest:,} bytes"
    )
    if args.check_src:
        with tempfile.TemporaryDirectory() as tmp:
            spec_file = Path(tmp) / "spec.json"
            spec_file.write_bytes(_national_spec(agencies, args.pool, args.searches))
            here = Path(__file__).resolve().parent.parent
            theirs = _child(args.check_src, "--digest-child", spec_file)
            mine = _child(here, "--digest-child", spec_file)
        same = "identical" if theirs == mine else "DIFFERENT"
        print(f"  encoded outputs against {args.check_src}: {same} (sha256 {mine[:16]})")
        if theirs != mine:
            raise SystemExit(1)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--class-child":
        spec = orjson.loads(Path(sys.argv[2]).read_bytes())
        freeze()
        print(json.dumps(class_run(spec, int(sys.argv[3]))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--class-digest-child":
        spec = orjson.loads(Path(sys.argv[2]).read_bytes())
        print(json.dumps(class_digest(spec, int(sys.argv[3]))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--national-child":
        spec = orjson.loads(Path(sys.argv[2]).read_bytes())
        freeze()
        cpu, *_ = national_run([Agency(*a) for a in spec["agencies"]], *spec["args"])
        print(json.dumps(cpu))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--digest-child":
        spec = orjson.loads(Path(sys.argv[2]).read_bytes())
        digest = hashlib.sha256()
        national_run([Agency(*a) for a in spec["agencies"]], *spec["args"], digest=digest)
        print(json.dumps(digest.hexdigest()))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--agencies", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--national", type=int, default=0, help="registry size (national mode)")
    parser.add_argument("--pool", type=int, default=7_000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="a checkout to compare per-class (or, with --national, national) costs with "
        "(same workload, child interpreters, alternated)",
    )
    parser.add_argument("--classes", action="store_true", help="per-class cost of this tree")
    parser.add_argument(
        "--check-src",
        type=Path,
        help="a checkout whose encoded outputs must be byte-identical (with --national: the "
        "national batches; else the per-class workload, counters and expiries included)",
    )
    args = parser.parse_args()
    if args.national:
        national(args)
        return
    if args.check_src:
        check_classes(args.check_src, args.events, args.agencies, args.batch)
        return
    if args.baseline_src:
        compare_classes(args.baseline_src, args.events, args.agencies, args.batch, args.runs)
        return
    if args.classes:
        spec = class_spec(args.events, args.agencies)
        best: dict[str, float] = {}
        for _ in range(args.runs):
            for cls, us in class_run(spec, args.batch).items():
                best[cls] = min(us, best.get(cls, us))
        print(f"per-event CPU µs by class (best of {args.runs}):")
        for cls in CLASSES:
            print(f"  {cls:9s} {best[cls]:8.1f}")
        return
    from workload import build

    work = build(args.events, args.agencies, seed=11)
    setup, traffic = messages(work)
    freeze()
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
