"""National scale, in process: a day of traffic over a national registry. Not a test.

    python benchmarks/bench_national.py [--agencies 20000] [--national-pool 7000]
        [--reads 20000] [--searches 10000] [--batch 1000] [--runs 3]

The workload (`workload.build_day`): --agencies agencies, --national-pool of the owners open to
national lookup, about half of each state's owners open to statewide lookup, a day of event time
with --searches searches (2 % national, 8 % statewide, the rest networks-scoped) and --reads
plate reads. The owners' signed settings are decided first, then:

1. per class (reads, networks, statewide and national searches), that class's events alone,
   best of --runs, in CPU time of this process (the machine may be shared): decisions/s and
   µs per event of `BatchProcessor.process`, with the owner attempts a search writes fed back
   through an attempts processor as the worker does and every output serialized as the
   worker's delivery does; messages and bytes (key + value, before
   compression and replication) per event per topic; next to an orjson read-and-write loop
   over the same input messages (the same-run ratio);
2. the day: every event in `ts` order, in batches of --batch split by role and partition, as one
   worker sees them: decisions/s, bytes per event per topic;
3. memory: the day again under tracemalloc (registry, policy state, window counters, chains)
   and this process's RSS (which also holds the generated workload);
4. the real network's mix (--reads-month, --searches-month) weighted from the per-class figures,
   and a sizing from it with the assumptions printed as they are used (docs/scaling.md).

No Kafka and no faust here: their cost per consumed message is an assumption (--floor-us, from
`benchmarks/faust_floor.py`), added in the sizing only. Plates are never printed.
"""

from __future__ import annotations

import argparse
import gc
import io
import math
import os
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from workload import Day, build_day, keys

from streamguard import serde
from streamguard.core.models import OwnerSettings
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import parse_ts
from streamguard.settings import WorkerSettings
from streamguard.stream.processor import BatchProcessor
from streamguard.stream.tables import build_state, settings_to_value
from streamguard.stream.types import BatchResult, InMessage
from streamguard.worker.metrics import StreamguardMetrics

SALT = b"salt-0123456789abcdef"
CLASSES = ("read", "networks", "statewide", "national")
MONTH = 30 * 86_400  # seconds in the 30-day month the sizing uses
# Contract names of the topics an event's work lands on (the worker prefixes them).
OUT_TOPICS = {
    "approved": "searches.approved",
    "shared": "reads.shared",
    "quarantine": "quarantine",
    "alerts": "alerts",
    "attempts": "owner-attempts",
}
# Partition counts the sizing picks from: divisible by many worker counts.
PARTITION_CHOICES = (12, 24, 48, 96, 144, 192, 240, 288, 384, 480, 576, 720, 960, 1440)


def partition_of(key: str, partitions: int) -> int:
    """Stable across runs (`hash` of a str is not)."""
    return zlib.crc32(key.encode()) % partitions


def class_of(event: dict[str, Any]) -> str:
    return "read" if event["type"] == "plate_read" else str(event["scope"])


def input_message(event: dict[str, Any], partitions: int, offsets: list[int]) -> InMessage:
    if event["type"] == "search_request":
        role, key = "searches", event["requester"]["agency_id"]
    else:
        role, key = "reads", event["agency_id"]
    partition = partition_of(key, partitions)
    offset = offsets[partition]
    offsets[partition] += 1
    return InMessage(role, role, partition, offset, key.encode(), orjson.dumps(event))


# --- what an event writes -----------------------------------------------------------------


@dataclass
class Traffic:
    """Messages and bytes (key + value) written per topic."""

    messages: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def add(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.messages[topic] = self.messages.get(topic, 0) + 1
        self.sizes[topic] = self.sizes.get(topic, 0) + len(key or b"") + len(value or b"")

    def per_event(self, events: int) -> dict[str, tuple[float, float]]:
        """topic -> (messages, bytes) per input event."""
        return {t: (self.messages[t] / events, self.sizes[t] / events) for t in sorted(self.sizes)}


def encoded(value: Any) -> bytes:
    """An output value as the worker's delivery sends it (already bytes, or serialized)."""
    return value if isinstance(value, bytes) else serde.dumps(value)


# --- one worker's processors --------------------------------------------------------------


class Worker:
    """The processors of one worker (searches, reads, attempts), its counter tables and what it
    wrote, without Kafka: outputs are serialized as `worker.delivery` does, owner attempts are
    fed back to the attempts processor."""

    def __init__(self, proto: BatchProcessor, day: Day) -> None:
        settings = proto.settings
        self.partitions = settings.partitions
        agency_keys = keys(day.agencies)
        self.procs = {
            role: BatchProcessor(settings, proto.state, agency_keys, SALT, proto.metrics, time.time)
            for role in ("searches", "reads", "attempts")
        }
        self.counters: dict[str, dict[str, int]] = {"searches": {}, "reads": {}, "attempts": {}}
        self.heads: dict[str, Any] = {}
        self.attempt_offsets = [0] * self.partitions
        self.traffic = Traffic()

    def run(self, batch: Sequence[InMessage], now: float) -> None:
        groups: dict[tuple[str, int], list[InMessage]] = {}
        for msg in batch:
            groups.setdefault((msg.role, msg.partition), []).append(msg)
        attempts: list[InMessage] = []
        for (role, _), group in groups.items():
            attempts.extend(self._process(role, group, now))
        by_partition: dict[int, list[InMessage]] = {}
        for msg in attempts:
            by_partition.setdefault(msg.partition, []).append(msg)
        for group in by_partition.values():
            self._process("attempts", group, now)

    def _process(self, role: str, group: list[InMessage], now: float) -> list[InMessage]:
        counters = self.counters[role]
        result: BatchResult = self.procs[role].process(
            group, now=now, counters=counters, heads=self.heads
        )
        counters.update(result.counters)
        for key in result.expired:
            counters.pop(key, None)
        return self._written(role, result)

    def _written(self, role: str, result: BatchResult) -> list[InMessage]:
        """Count what the batch writes; the owner attempts it writes, as the attempts agent
        would consume them."""
        add = self.traffic.add
        again: list[InMessage] = []
        for out in result.messages:
            value = encoded(out.value)
            key = out.key.encode()
            add(OUT_TOPICS[out.role], key, value)
            if out.role == "attempts":
                partition = partition_of(out.key, self.partitions)
                offset = self.attempt_offsets[partition]
                self.attempt_offsets[partition] += 1
                again.append(InMessage("attempts", "attempts", partition, offset, key, value))
        for chain, record in result.audit:
            add("audit", chain.encode(), record)
        changelog = "owner-counters-changelog" if role == "attempts" else "counters-changelog"
        for counter, total in result.counters.items():
            add(changelog, serde.dumps(counter), serde.dumps(total))
        for counter in result.expired:
            add(changelog, serde.dumps(counter), None)
        for chain, (_, head) in result.heads.items():
            self.heads[chain] = head
            add("audit-heads-changelog", serde.dumps(chain), serde.dumps(head))
        return again


def settled(day: Day, partitions: int, chunk: int = 1_000) -> tuple[BatchProcessor, dict[str, Any]]:
    """A processor whose policy state has the day's signed settings applied, decided as the
    policy agent decides them, and the owner-settings table values that left.

    In batches of `chunk`, each by a fresh processor on the state so far: one processor's
    replay ledger only grows, and writing a batch's replay marks scans all of it per subject
    (`stream.tables.replay_writes`), so tens of thousands of changes through one processor
    cost minutes. A worker sees settings arrive over months, not in one go.
    """
    settings = WorkerSettings(partitions=partitions)
    state = build_state(load_statutes(), day.agencies, (), (), 0)
    metrics = StreamguardMetrics.create()
    metrics.register_owners(a.agency_id for a in day.agencies)
    agency_keys = keys(day.agencies)
    setup = [
        InMessage("policy", "policy", 0, i, c["agency_id"].encode(), orjson.dumps(c))
        for i, c in enumerate(day.setup)
    ]
    values: dict[str, Any] = {}
    refused = 0
    proc = BatchProcessor(settings, state, agency_keys, SALT, metrics, time.time)
    for i in range(0, len(setup), chunk):
        proc = BatchProcessor(settings, proc.state, agency_keys, SALT, metrics, time.time)
        result = proc.process(setup[i : i + chunk], now=day.start, counters={}, heads={})
        refused += sum(1 for _, r in result.audit if b'"outcome":"applied"' not in r)
        values.update((owner, value) for owner, (_, value) in result.settings.items())
    if refused:
        print(f"  warning: {refused} of {len(setup)} settings changes not applied")
    return proc, values


def table_values(day: Day) -> dict[str, Any]:
    """The owner-settings table values the day's signed changes leave, folded directly (no
    signatures, no law checks): what `settled` returns, in a fraction of the time."""
    fields: dict[str, dict[str, Any]] = {}
    for change in day.setup:
        value = change["value"]
        fields.setdefault(change["agency_id"], {})[change["setting"]] = (
            frozenset(value) if isinstance(value, list) else value
        )
    return {owner: settings_to_value(OwnerSettings(**f)) for owner, f in fields.items()}


def from_tables(day: Day, partitions: int, values: dict[str, Any]) -> BatchProcessor:
    """A processor on the state a starting worker builds from its tables (registry file plus
    the owner-settings table)."""
    state = build_state(load_statutes(), day.agencies, (), values.items(), 0)
    metrics = StreamguardMetrics.create()
    metrics.register_owners(a.agency_id for a in day.agencies)
    settings = WorkerSettings(partitions=partitions)
    return BatchProcessor(settings, state, keys(day.agencies), SALT, metrics, time.time)


def event_time(msg: InMessage) -> float:
    ts = parse_ts(orjson.loads(msg.value or b"{}")["ts"])
    return ts if ts is not None else 0.0


def run_stream(
    proto: BatchProcessor,
    day: Day,
    stream: Sequence[InMessage],
    clocks: Sequence[float],
    batch: int,
) -> tuple[float, Worker]:
    """CPU seconds of this process to decide `stream` in batches of `batch` (the deciding clock
    of a batch is its last event's time plus one second), and the worker that did it."""
    worker = Worker(proto, day)
    gc.collect()
    start = time.process_time()
    for i in range(0, len(stream), batch):
        worker.run(stream[i : i + batch], clocks[min(i + batch, len(stream)) - 1] + 1.0)
    return time.process_time() - start, worker


def orjson_loop(stream: Sequence[InMessage]) -> float:
    """CPU seconds to parse and re-serialize every input message: the floor of any JSON worker."""
    loads, dumps = orjson.loads, orjson.dumps
    start = time.process_time()
    for msg in stream:
        dumps(loads(msg.value or b"{}"))
    return time.process_time() - start


# --- printing -----------------------------------------------------------------------------


def traffic_line(per_event: dict[str, tuple[float, float]]) -> str:
    total = sum(b for _, b in per_event.values())
    parts = ", ".join(f"{t} {m:.2f} msg {b:,.0f} B" for t, (m, b) in per_event.items())
    return f"{parts}; all {total:,.0f} B"


def rss_mib() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MiB; (nan, nan) where /proc is not there."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return math.nan, math.nan
    values = {
        k: int(v.split()[0]) / 1024
        for k, _, v in (ln.partition(":") for ln in lines)
        if k in ("VmRSS", "VmHWM")
    }
    return values.get("VmRSS", math.nan), values.get("VmHWM", math.nan)


def describe() -> str:
    try:
        head = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = "unknown"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"at {head}; load average {load} on {os.cpu_count()} CPUs"


@dataclass(frozen=True)
class ClassFigures:
    events: int
    seconds: float  # best of the runs
    baseline: float  # orjson loop over the same messages, best of the runs
    traffic: dict[str, tuple[float, float]]  # topic -> (messages, bytes) per event

    @property
    def us(self) -> float:
        return self.seconds / self.events * 1e6


def sizing(args: argparse.Namespace, figures: dict[str, ClassFigures]) -> None:
    """Workers, partitions and broker figures for the month of --reads-month reads and
    --searches-month searches, from the per-class figures of this run."""
    reads = args.reads_month / MONTH
    searches = args.searches_month / MONTH
    shares = {
        "read": reads,
        "networks": searches * (1 - args.national_share - args.statewide_share),
        "statewide": searches * args.statewide_share,
        "national": searches * args.national_share,
    }
    peak = {
        c: rate * (args.read_peak if c == "read" else args.search_peak)
        for c, rate in shares.items()
    }
    average_rate, peak_rate = sum(shares.values()), sum(peak.values())
    print(
        f"[real network] {args.reads_month:,.0f} reads and {args.searches_month:,.0f} searches a "
        f"month (30 days): {reads:,.0f} reads/s and {searches:.2f} searches/s on average; peak "
        f"x{args.read_peak} reads, x{args.search_peak} searches = {peak_rate:,.0f} events/s"
    )
    # Messages a worker consumes per input event: the input, plus the owner attempts it wrote.
    consumed = {c: 1 + f.traffic.get("owner-attempts", (0.0, 0.0))[0] for c, f in figures.items()}
    us_in = sum(peak[c] * figures[c].us for c in CLASSES) / peak_rate
    us_floor = sum(peak[c] * consumed[c] * args.floor_us for c in CLASSES) / peak_rate
    per_core = 1e6 / (us_in + us_floor)
    print(
        f"  mix at peak: {us_in:,.1f} µs/event in process ({1e6 / us_in:,.0f} decisions/s), "
        f"+ {us_floor:,.1f} µs faust floor (assumed {args.floor_us:g} µs per consumed message) "
        f"= {per_core:,.0f} events/s per worker core at backlog"
    )
    per_worker = per_core * args.utilisation
    workers = math.ceil(peak_rate / per_worker)
    cores_busy = peak_rate / per_core
    partitions = next((p for p in PARTITION_CHOICES if p >= args.scale_out * workers), None)
    if partitions is None:
        partitions = math.ceil(args.scale_out * workers / 48) * 48
    print(
        f"  workers: peak {peak_rate:,.0f} ev/s needs {cores_busy:.1f} cores fully busy; at "
        f"{args.utilisation:g} of a worker's backlog rate ({per_worker:,.0f} ev/s, for latency) "
        f"= {workers} workers; partitions {partitions} (>= {args.scale_out:g} x workers, "
        f"{partitions / workers:.1f} per worker); catch-up after a 1 h outage at the average "
        f"rate: {average_rate * 3600 / (workers * per_core - average_rate) / 60:.1f} min"
    )
    search_peak = sum(peak[c] for c in CLASSES if c != "read")
    search_cores = (
        sum(peak[c] * (figures[c].us + consumed[c] * args.floor_us) for c in CLASSES if c != "read")
        / 1e6
    )
    print(
        f"  searches alone (if reads are not streamed): peak {search_peak:.2f} searches/s, "
        f"{search_cores:.3f} of a core; a national search holds its partition "
        f"{figures['national'].us / 1000:,.1f} ms"
    )
    # Bytes per second by topic at average and peak, inputs included.
    topics: dict[str, list[float]] = {}
    for c in CLASSES:
        for topic, (_, per) in figures[c].traffic.items():
            rates = topics.setdefault(topic, [0.0, 0.0])
            rates[0] += shares[c] * per
            rates[1] += peak[c] * per
    avg_bps = sum(r[0] for r in topics.values())
    peak_bps = sum(r[1] for r in topics.values())
    rf = args.replication
    print(
        f"  broker writes (key + value, uncompressed): {avg_bps / 1e6:,.1f} MB/s average, "
        f"{peak_bps / 1e6:,.1f} MB/s peak; x{rf} replication = {peak_bps * rf / 1e6:,.1f} MB/s "
        f"of disk writes at peak"
    )
    day_tb = {t: r[0] * 86_400 / 1e12 for t, r in topics.items()}
    order = sorted(day_tb, key=lambda t: -day_tb[t])
    shown = [t for t in order if day_tb[t] >= 0.005]
    rest = sum(day_tb[t] for t in order if t not in shown)
    print(
        "  per day (TB, before replication): "
        + ", ".join(f"{t} {day_tb[t]:.2f}" for t in shown)
        + f", the {len(order) - len(shown)} others {rest:.3f}; all {sum(day_tb.values()):.2f}"
    )
    kept = sum(v for t, v in day_tb.items() if t != "audit") * args.retention_days
    audit_year = day_tb.get("audit", 0.0) * 365
    print(
        f"  stored: {kept * rf:,.1f} TB for {args.retention_days:g} days of every topic but "
        f"audit, x{rf}; audit (unlimited retention) grows {audit_year * rf:,.0f} TB a year x{rf}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agencies", type=int, default=20_000)
    parser.add_argument("--national-pool", type=int, default=7_000)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--searches", type=int, default=10_000)
    parser.add_argument("--national-share", type=float, default=0.02)
    parser.add_argument("--statewide-share", type=float, default=0.08)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    parser.add_argument(
        "--settle",
        choices=("signed", "tables"),
        default="signed",
        help="decide the signed settings changes (checks each is lawful; minutes at 20,000 "
        "agencies) or load the table values they leave",
    )
    sizing_args = parser.add_argument_group("sizing assumptions")
    sizing_args.add_argument("--reads-month", type=float, default=20e9)
    sizing_args.add_argument("--searches-month", type=float, default=1.1e6)
    sizing_args.add_argument("--read-peak", type=float, default=2.5, help="peak / average reads")
    sizing_args.add_argument("--search-peak", type=float, default=4.0)
    sizing_args.add_argument(
        "--floor-us", type=float, default=78.0, help="faust's cost per consumed message"
    )
    sizing_args.add_argument(
        "--utilisation", type=float, default=0.4, help="peak load / a worker's backlog rate"
    )
    sizing_args.add_argument("--scale-out", type=float, default=3.0, help="partitions / workers")
    sizing_args.add_argument("--replication", type=int, default=3)
    sizing_args.add_argument("--retention-days", type=float, default=7.0)
    args = parser.parse_args()
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows when redirected to a file

    print(f"bench_national {describe()}")
    started = time.perf_counter()
    day = build_day(
        args.reads,
        args.searches,
        args.agencies,
        args.national_pool,
        national_share=args.national_share,
        statewide_share=args.statewide_share,
    )
    offsets = [0] * args.partitions
    stream = [input_message(e, args.partitions, offsets) for e in day.events]
    clocks = [event_time(m) for m in stream]
    kinds = [class_of(e) for e in day.events]
    settle_start = time.process_time()
    if args.settle == "signed":
        proto, values = settled(day, args.partitions)
        how = "decided"
    else:
        values = table_values(day)
        proto = from_tables(day, args.partitions, values)
        how = "loaded from table values"
    settle_cpu = time.process_time() - settle_start
    state = proto.state
    pools = sorted((len(v) for v in state.statewide_owners.values()), reverse=True)
    print(
        f"[workload] {len(day.agencies):,} agencies, {len(day.setup):,} settings changes; "
        f"national pool {len(state.national_owners):,} owners; statewide pools: largest "
        f"{pools[0] if pools else 0:,}, mean {sum(pools) / max(len(pools), 1):,.0f} over "
        f"{len(pools)} states; the day: {args.reads:,} reads, {args.searches:,} searches "
        f"({day.scopes['networks']:,} networks, {day.scopes['statewide']:,} statewide, "
        f"{day.scopes['national']:,} national); settings {how} in {settle_cpu:.1f} CPU-s; "
        f"built and settled in {time.perf_counter() - started:.1f} s"
    )
    del day.events[:]  # the messages hold what the processors need
    gc.freeze()

    print(
        f"[per class] best of {args.runs}, batches of {args.batch}, {args.partitions} "
        f"partitions; bytes are key + value per input event, before compression"
    )
    figures: dict[str, ClassFigures] = {}
    for name in CLASSES:
        picked = [i for i, k in enumerate(kinds) if k == name]
        if not picked:
            continue
        sub = [stream[i] for i in picked]
        sub_clocks = [clocks[i] for i in picked]
        runs = [run_stream(proto, day, sub, sub_clocks, args.batch) for _ in range(args.runs)]
        seconds = min(r[0] for r in runs)
        traffic = runs[-1][1].traffic
        del runs
        baseline = min(orjson_loop(sub) for _ in range(args.runs))
        for msg in sub:
            traffic.add(msg.role, msg.key, msg.value)
        figures[name] = ClassFigures(len(sub), seconds, baseline, traffic.per_event(len(sub)))
        f = figures[name]
        print(
            f"  {name}: {len(sub):,} events, {f.events / f.seconds:,.0f} decisions/s, "
            f"{f.us:,.1f} µs/event; orjson loop {f.events / f.baseline:,.0f}/s, "
            f"ratio {f.baseline / f.seconds:.3g}"
        )
        print(f"    {traffic_line(f.traffic)}")

    seconds, worker = run_stream(proto, day, stream, clocks, args.batch)
    baseline = orjson_loop(stream)
    for msg in stream:
        worker.traffic.add(msg.role, msg.key, msg.value)
    print(
        f"[day] {len(stream):,} events in ts order: {len(stream) / seconds:,.0f} decisions/s, "
        f"{seconds / len(stream) * 1e6:,.1f} µs/event; orjson loop "
        f"{len(stream) / baseline:,.0f}/s, ratio {baseline / seconds:.3g}"
    )
    print(f"  {traffic_line(worker.traffic.per_event(len(stream)))}")
    counters = sum(len(c) for c in worker.counters.values())
    print(f"  live counter keys at the end of the day: {counters:,}")
    del worker

    rss, hwm = rss_mib()
    if not args.no_memory:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        proto_m = from_tables(day, args.partitions, values)
        after_setup = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.reset_peak()
        _, worker_m = run_stream(proto_m, day, stream, clocks, args.batch)
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"[memory] tracemalloc: registry + policy state built from the tables "
            f"{after_setup / 2**20:,.1f} MiB; after the day (with counters, windows, chains) "
            f"{(current - base) / 2**20:,.1f} MiB, "
            f"peak {(peak - base) / 2**20:,.1f} MiB; process RSS {rss:,.0f} MiB "
            f"(peak {hwm:,.0f} MiB, includes the generated workload)"
        )
        del worker_m
    else:
        print(f"[memory] process RSS {rss:,.0f} MiB (peak {hwm:,.0f} MiB)")

    if all(c in figures for c in CLASSES):
        sizing(args, figures)
    print(f"total {time.perf_counter() - started:.0f} s; {describe()}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
