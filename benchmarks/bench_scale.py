"""Scale-out figures for StreamGuard workers on a real broker, in one run. Not a test.

    python benchmarks/bench_scale.py [--port 59094] [--n 30000] [--rate 5000]

Starts its own single-node Kafka broker (on --port, in a temporary directory) and stops it at
the end, then measures, each time on fresh topics and a fresh app id:

1. throughput: N events (benchmarks/workload.py traffic, 4 partitions) decided by one worker,
   alternated with a raw aiokafka consume-parse-produce of the same N messages (--pairs runs
   of each, at least 2, each printed with the load average; the best of each and their ratio,
   of rates and of CPU per event, are the figures), then by two workers in one consumer
   group. Workers are started and settled (assigned, tables recovered) and the owners' signed
   settings applied before the events are produced; the rate is from the first to the last
   decision (broker timestamps of their audit records), completion polled from the workers'
   /metrics once a second.
2. latency at a fixed offered load (--rate, events/s, for --seconds): time from each send to the
   arrival of its audit record (every decision writes one), p50/p99; plus the worker's own
   arrival-to-decision histogram. If one worker cannot keep up with --rate, lower rates are tried
   and the highest one it sustains is reported as well.
3. memory: worker RSS with --mem-agencies agencies in the registry (and their settings) after a
   day of event time of traffic (--mem-events events spread over 24 h of `ts`).

The machine's load average is printed before each measurement: other processes share the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from bench_worker import produce_all, raw_pipeline
from workload import Workload, agencies_csv, build, keys_json

from streamguard.core.timeutil import format_ts, parse_ts
from streamguard.local.broker import start_broker, stop_broker
from streamguard.local.testing import WorkerProcess, contract_topics, create_topics, worker_env

PARTITIONS = 4
WEB_PORTS = [6250, 6251]  # --web-port sets the first; the second is the next one
SETTLE_TIMEOUT = 180.0
DRAIN_TIMEOUT = 900.0
TICK = 0.005  # seconds between sends of the paced producer
Item = tuple[str, str, bytes]  # (topic role, key, value)


# --- worker metrics ---------------------------------------------------------------------------


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text: str = reply.read().decode()
            return text
    except OSError:
        return ""


def metric(text: str, name: str, where: str = "") -> float:
    """Sum of the series of `name` whose labels contain `where`."""
    total = 0.0
    for match in re.finditer(rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.e+-]+)$", text, re.M):
        if where in (match.group(1) or ""):
            total += float(match.group(2))
    return total


def decided(ports: Iterable[int]) -> int:
    """Input events decided (searches, reads, malformed) over the workers on `ports`."""
    total = 0.0
    for port in ports:
        text = scrape(port)
        for kind in ("search_request", "plate_read", "raw"):
            total += metric(text, "streamguard_events_total", f'kind="{kind}"')
    return int(total)


def histogram(text: str, name: str) -> dict[float, float]:
    """Cumulative bucket counts {le: count} of a histogram."""
    out: dict[float, float] = {}
    for match in re.finditer(
        rf'^{re.escape(name)}_bucket\{{le="([^"]+)"\}} ([0-9.e+-]+)$', text, re.M
    ):
        out[math.inf if match.group(1) == "+Inf" else float(match.group(1))] = float(match.group(2))
    return out


def histogram_quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """Prometheus-style quantile (linear within a bucket) of the observations in between."""
    buckets = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return math.nan
    rank, lower, below = q * total, 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = le, count
    return lower


def _settled(text: str) -> bool:
    # Assigned at least once and not in a rebalance (which includes table recovery) now.
    return (
        metric(text, "streamguard_rebalances_total") >= 1
        and metric(text, "streamguard_rebalance_in_progress") == 0
    )


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


async def audit_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """End offset of each partition of `topic` now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def audit_span(bootstrap: str, topic: str, marks: dict[int, int]) -> float:
    """Seconds from the earliest to the latest broker timestamp of the records written to
    `topic` after `marks` (end offsets per partition, from `audit_ends`)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        stamps: list[int] = []
        for tp in tps:
            for offset in {marks.get(tp.partition, 0), ends[tp] - 1}:
                if offset < marks.get(tp.partition, 0) or offset >= ends[tp]:
                    continue
                consumer.seek(tp, offset)
                batch = await consumer.getmany(tp, timeout_ms=5000, max_records=1)
                stamps.extend(m.timestamp for m in batch.get(tp, []))
        return (max(stamps) - min(stamps)) / 1000.0 if stamps else 0.0
    finally:
        await consumer.stop()


# --- a run: topics, workers, traffic ----------------------------------------------------------


def items_of(work: Workload, tag: str = "", day: bool = False) -> tuple[list[Item], list[Item]]:
    """(settings changes, traffic) as messages; `tag` makes ids unique, `day` spreads the events'
    time over 24 hours so every hourly window of a day holds counts."""
    setup = [("policy", c["agency_id"], orjson.dumps(c)) for c in work.setup]
    traffic: list[Item] = []
    first = (parse_ts(work.events[0]["ts"]) if work.events else None) or 0.0
    step = 86_400 / max(len(work.events), 1)
    for n, event in enumerate(work.events):
        copy = dict(event)
        if day:
            copy["ts"] = format_ts(first + n * step)
        if copy["type"] == "search_request":
            copy["search_id"] = tag + copy["search_id"]
            traffic.append(("searches", copy["requester"]["agency_id"], orjson.dumps(copy)))
        else:
            copy["read_id"] = tag + copy["read_id"]
            traffic.append(("reads", copy["agency_id"], orjson.dumps(copy)))
    return setup, traffic


@dataclass
class Run:
    """Fresh topics and app id, and the workers deciding them."""

    bootstrap: str
    workdir: Path
    agencies: Path
    keys: Path
    prefix: str = field(default_factory=lambda: f"bs{uuid.uuid4().hex[:8]}.")
    workers: list[tuple[int, WorkerProcess]] = field(default_factory=list)
    cpu_per_1k: float = math.nan  # worker CPU seconds per 1,000 decided events (last rate())
    busy: float = math.nan  # worker CPU seconds per wall second (cores in use, last rate())
    src: Path | None = None  # run the workers from this source tree (PYTHONPATH) instead
    env: dict[str, str] = field(default_factory=dict)  # extra worker settings (batch_size=...)

    def __post_init__(self) -> None:
        # The worker's internal attempts topic too: a worker that creates it itself can read
        # "0 partitions" from not-yet-refreshed metadata and stop (see docs/scaling.md).
        attempts = f"{self.prefix.rstrip('.')}-worker-owner-attempts"  # worker_env's app id
        names = [*contract_topics(self.prefix), self.prefix + "raw.out", attempts]
        asyncio.run(create_topics(self.bootstrap, names, PARTITIONS))

    @property
    def ports(self) -> list[int]:
        return [port for port, _ in self.workers]

    def start(self, count: int) -> None:
        for index in range(count):
            port = WEB_PORTS[index]
            env = worker_env(
                self.bootstrap,
                self.prefix,
                self.workdir / f"{self.prefix}{index}",
                agencies=self.agencies,
                keys=self.keys,
                web_port=port,
                partitions=PARTITIONS,
                rate_limit_per_minute="0",
                **self.env,
            )
            if self.src is not None:
                env["PYTHONPATH"] = str(self.src)
            worker = WorkerProcess(env, self.workdir / f"{self.prefix}{index}.log")
            worker.start()
            self.workers.append((port, worker))
        self.settle()

    def settle(self) -> None:
        """Every worker assigned, with its tables recovered (its rebalance metrics say so)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            texts = [scrape(port) for port in self.ports]
            if all(_settled(t) for t in texts):
                return
            time.sleep(0.2)
        raise RuntimeError("workers did not settle in time")

    def check_alive(self) -> None:
        for _, worker in self.workers:
            if not worker.alive():
                raise RuntimeError("worker died:\n" + worker.log_text()[-2000:])

    def apply_settings(self, setup: list[Item]) -> None:
        """Produce the owners' signed settings and wait until every change is decided."""
        asyncio.run(produce_all(self.bootstrap, self.prefix, setup))
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            done = sum(metric(scrape(p), "streamguard_policy_changes_total") for p in self.ports)
            if done >= len(setup):
                return
            time.sleep(0.5)
        raise RuntimeError("settings were not all decided in time")

    def cpu(self) -> float:
        return sum(cpu_seconds(w.proc.pid) for _, w in self.workers if w.proc is not None)

    def rate(self, traffic: list[Item]) -> float:
        """Produce `traffic`; decided events/s from the first decision to the last, timed by the
        broker timestamps of the audit records the traffic caused (one per decision, stamped
        when the worker sends it). Completion is polled from /metrics once a second: a scrape
        of a worker's /metrics costs it about 25 ms of CPU (thousands of series), and the
        10-per-second polling of earlier versions of this script took a quarter of the worker's
        time. Also keeps the workers' CPU seconds per 1,000 decided events in `cpu_per_1k`."""
        marks = asyncio.run(audit_ends(self.bootstrap, self.prefix + "audit"))
        start_cpu, start_count = self.cpu(), decided(self.ports)
        start = time.perf_counter()
        asyncio.run(produce_all(self.bootstrap, self.prefix, traffic))
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            count = decided(self.ports)
            if count - start_count >= len(traffic):
                wall = time.perf_counter() - start
                used = self.cpu() - start_cpu
                self.cpu_per_1k = 1000 * used / max(count - start_count, 1)
                span = asyncio.run(audit_span(self.bootstrap, self.prefix + "audit", marks))
                # Cores in use while deciding (the produce phase before the first decision
                # and the last poll's wait are idle time for the worker, so use the span).
                self.busy = used / max(span, 1e-9) if span > 0 else used / wall
                return (count - start_count) / max(span, 1e-9)
            self.check_alive()
            time.sleep(1.0)
        raise RuntimeError(f"decided {decided(self.ports)} of {len(traffic)} in time")

    def throughput(self, workers: int, setup: list[Item], traffic: list[Item]) -> float:
        """Decided events/s of `workers` settled workers with `setup` applied; stops them."""
        try:
            self.start(workers)
            self.apply_settings(setup)
            return self.rate(traffic)
        finally:
            self.stop()

    def bytes_on_disk(self, log_dir: Path) -> dict[str, int]:
        """Bytes of each of this run's topics in the broker's log segments (no replication,
        no compression): what one input event costs the broker in writes."""
        app_id = self.prefix.rstrip(".") + "-worker"
        sizes: dict[str, int] = {}
        for part in log_dir.iterdir():
            topic = part.name.rsplit("-", 1)[0]
            if part.is_dir() and (topic.startswith(self.prefix) or topic.startswith(app_id)):
                total = sum(f.stat().st_size for f in part.glob("*.log"))
                sizes[topic] = sizes.get(topic, 0) + total
        return sizes

    def stop(self) -> None:
        for _, worker in self.workers:
            worker.stop()
        self.workers.clear()


def faust_floor(
    bootstrap: str, prefix: str, n: int, mode: str, workdir: Path, app: str = "faust"
) -> float:
    """Events/s of a bare faust app on `prefix`'s N input messages (benchmarks/faust_floor.py,
    a child process): `noop`, `send` (one faust producer.send each) or `batch`; `app`
    "streamguard" runs it with the worker's faust fixes (drain and batches)."""
    result = workdir / f"{prefix}floor-{mode}-{app}.json"
    with (workdir / f"{prefix}floor-{mode}.log").open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).parent / "faust_floor.py"),
                "--broker",
                bootstrap,
                "--prefix",
                prefix,
                "--n",
                str(n),
                "--mode",
                mode,
                "--app",
                app,
                "--result",
                str(result),
                "--datadir",
                str(workdir / f"{prefix}floor-{mode}-{app}"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        proc.wait(DRAIN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    if not result.exists():
        return math.nan
    rate: float = json.loads(result.read_text())["events_per_s"]
    return rate


def raw_rate(bootstrap: str, prefix: str, n: int) -> tuple[float, float]:
    """(events/s, CPU-s per 1,000 events) of the raw aiokafka consume-parse-produce loop over
    `prefix`'s N input messages (benchmarks/bench_worker.py `raw_pipeline`, in this process:
    its CPU is this process's while it runs)."""
    cpu = time.process_time()
    rate = asyncio.run(raw_pipeline(bootstrap, prefix, n))
    return rate, 1000 * (time.process_time() - cpu) / n


# --- latency at a fixed offered load ------------------------------------------------------


@dataclass
class Latency:
    offered: float
    achieved: float  # events/s actually sent
    decided_rate: float  # events/s decided over the send window and the drain
    p50_ms: float
    p99_ms: float
    max_ms: float
    worker_p50_ms: float
    worker_p99_ms: float
    sustained: bool


async def _paced(bootstrap: str, prefix: str, traffic: list[Item], rate: float) -> Latency:
    audit = prefix + "audit"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    tps = [TopicPartition(audit, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:  # resolve the end offsets now, before the first send
        await consumer.position(tp)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await producer.start()
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    ids = [
        orjson.loads(v).get("search_id") or orjson.loads(v).get("read_id") for _, _, v in traffic
    ]

    async def send() -> float:
        # Every TICK, send what is due by then, then sleep: the receiver shares this loop, and
        # a sender that never sleeps would delay every arrival it measures.
        start = time.perf_counter()
        n = 0
        while n < len(traffic):
            due = min(len(traffic), int((time.perf_counter() - start) * rate) + 1)
            for role, key, value in traffic[n:due]:
                sent_at[ids[n]] = time.perf_counter()
                await producer.send(prefix + role, value, key=key.encode())
                n += 1
            await asyncio.sleep(TICK)
        await producer.flush()
        return len(traffic) / (time.perf_counter() - start)

    async def receive() -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while len(latencies) < len(traffic) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for messages in batch.values():
                for message in messages:
                    event_id = orjson.loads(message.value or b"{}").get("event_id")
                    sent = sent_at.pop(event_id, None)  # a repeat is not measured twice
                    if sent is not None:
                        latencies.append(now - sent)

    try:
        begin = time.perf_counter()
        achieved, _ = await asyncio.gather(send(), receive())
        elapsed = time.perf_counter() - begin
    finally:
        await producer.stop()
        await consumer.stop()
    latencies.sort()

    def pct(q: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return Latency(
        rate,
        achieved,
        len(latencies) / elapsed,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        math.nan,
        math.nan,
        False,
    )


def write_inputs(workdir: Path, work: Workload) -> tuple[Path, Path]:
    """The worker's agencies CSV and signing keys for `work`, written in `workdir`."""
    agencies = workdir / "agencies.csv"
    agencies.write_text("".join(agencies_csv(work.agencies)), encoding="utf-8")
    keys = workdir / "keys.json"
    keys.write_text(json.dumps(keys_json(work.agencies)), encoding="utf-8")
    return agencies, keys


def latency_at(run: Run, traffic: list[Item], rate: float) -> Latency:
    before = histogram(scrape(run.ports[0]), "streamguard_decision_seconds")
    result = asyncio.run(_paced(run.bootstrap, run.prefix, traffic, rate))
    after = histogram(scrape(run.ports[0]), "streamguard_decision_seconds")
    result.worker_p50_ms = 1000 * histogram_quantile(0.5, before, after)
    result.worker_p99_ms = 1000 * histogram_quantile(0.99, before, after)
    # Kept up: sent at (nearly) the offered rate and no backlog built: the slowest event was
    # decided within a second of its send.
    result.sustained = result.achieved >= 0.95 * rate and result.max_ms < 1000
    return result


def show_latency(label: str, r: Latency) -> None:
    print(
        f"  {label}: offered {r.offered:,.0f} ev/s, sent {r.achieved:,.0f} ev/s, "
        f"decided {r.decided_rate:,.0f} ev/s; produce->audit p50 {r.p50_ms:,.1f} ms, "
        f"p99 {r.p99_ms:,.1f} ms, max {r.max_ms:,.1f} ms; worker arrival->decision "
        f"p50 {r.worker_p50_ms:,.1f} ms, p99 {r.worker_p99_ms:,.1f} ms; "
        f"{'sustained' if r.sustained else 'NOT sustained (backlog grew)'}",
        flush=True,
    )


# --- main -------------------------------------------------------------------------------------


def _revision() -> str:
    # The worker runs from this checkout: say which code (and whether edited) was measured.
    try:
        found = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=False,
            timeout=10,
        )
    except OSError:
        return "unknown revision"
    return found.stdout.strip() or "unknown revision"


def _round(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=59094, help="broker port (started here)")
    parser.add_argument(
        "--web-port",
        type=int,
        default=WEB_PORTS[0],
        help="first worker web port (/metrics); the second worker uses the next",
    )
    parser.add_argument("--n", type=int, default=30_000, help="events for the throughput runs")
    parser.add_argument("--agencies", type=int, default=1_000, help="registry size for 1 and 2")
    parser.add_argument("--rate", type=float, default=5_000.0, help="offered load, events/s")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of a latency trial")
    parser.add_argument("--mem-agencies", type=int, default=5_000)
    parser.add_argument("--mem-events", type=int, default=50_000)
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="also measure one worker run from this `src` directory (an older "
        "checkout), alternating with this one, on the same traffic",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with --baseline-src: measurements of each, alternated",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=2,
        help="one-worker runs and raw-loop runs, alternated (at least 2 of each)",
    )
    parser.add_argument("--skip-floor", action="store_true", help="leave out the bare faust agents")
    parser.add_argument("--skip-two", action="store_true", help="leave out the two-worker run")
    parser.add_argument(
        "--only-throughput", action="store_true", help="stop after the throughput figures"
    )
    args = parser.parse_args()
    WEB_PORTS[:] = [args.web_port, args.web_port + 1]
    if not _free(args.port):
        sys.exit(f"port {args.port} is in use; pick another --port")

    print(
        f"bench_scale {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} at {_revision()}; "
        f"{load()}"
    )
    work = build(args.n, args.agencies, seed=11)
    setup, traffic = items_of(work)
    results: dict[str, Any] = {"n": args.n, "partitions": PARTITIONS}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        workdir = Path(tmp)
        agencies, keys = write_inputs(workdir, work)
        t0 = time.perf_counter()
        handle = start_broker(args.port, workdir / "broker", timeout=120.0)
        print(f"broker {handle.bootstrap} up in {time.perf_counter() - t0:.1f} s")
        bootstrap = handle.bootstrap
        try:
            # 1. throughput: one worker, raw aiokafka on the same messages, two workers.
            print(
                f"\n[throughput] {args.n:,} events, {len(setup):,} settings changes, "
                f"{args.agencies:,} agencies; {load()}",
                flush=True,
            )
            # One worker and the raw loop alternated (--pairs of each), so that a change in
            # the machine's load falls on both; the best of each is compared.
            ones: list[tuple[float, float]] = []  # (decided events/s, CPU-s per 1,000)
            raws: list[tuple[float, float]] = []  # (events/s, CPU-s per 1,000)
            one: Run | None = None
            for round_ in range(max(2, args.pairs)):
                run = Run(bootstrap, workdir, agencies, keys)
                ones.append((run.throughput(1, setup, traffic), run.cpu_per_1k))
                print(
                    f"  round {round_ + 1} one worker: {ones[-1][0]:,.0f} decided events/s, "
                    f"{run.cpu_per_1k:.2f} CPU-s per 1,000 events, {run.busy:.2f} cores busy; "
                    f"{load()}",
                    flush=True,
                )
                if one is None:
                    one = run  # its topics hold the N input messages the raw loop reads
                raws.append(raw_rate(bootstrap, one.prefix, args.n))
                print(
                    f"  round {round_ + 1} raw aiokafka consume+parse+produce (1 process): "
                    f"{raws[-1][0]:,.0f} events/s, {raws[-1][1]:.2f} CPU-s per 1,000; {load()}",
                    flush=True,
                )
            assert one is not None
            best_one, best_raw = max(ones), max(raws)
            results["one_worker"], results["one_worker_cpu_s_per_1k"] = best_one
            results["raw"], results["raw_cpu_s_per_1k"] = best_raw
            results["one_worker_runs"], results["raw_runs"] = ones, raws
            print(
                f"  best one worker {best_one[0]:,.0f} ev/s, best raw {best_raw[0]:,.0f} ev/s: "
                f"one/raw = {best_one[0] / best_raw[0]:.3f} (goal >= 0.35, aim 0.5); "
                f"CPU per event raw/one = "
                f"{min(c for _, c in raws) / min(c for _, c in ones):.3f}",
                flush=True,
            )
            sizes = one.bytes_on_disk(workdir / "broker" / "kraft")
            inputs = sum(v for k, v in sizes.items() if k.endswith((".searches", ".reads")))
            per_event = {
                k.replace(one.prefix, "").replace(one.prefix.rstrip(".") + "-", ""): round(
                    v / args.n
                )
                for k, v in sorted(sizes.items())
                if v
            }
            results["bytes_per_event"] = per_event
            results["write_amplification"] = sum(sizes.values()) / max(inputs, 1)
            print(
                f"  broker log bytes per input event, by topic: {per_event}; all topics / "
                f"input topics = {results['write_amplification']:.1f}",
                flush=True,
            )
            if args.skip_floor:
                mode_list: tuple[tuple[str, str, str], ...] = ()
            else:
                mode_list = (
                    ("noop", "faust", "take_events, nothing else"),
                    ("noop", "streamguard", "worker's faust fixes: direct drain, take_batches"),
                    ("send", "faust", "+ 1 message/event via faust producer.send"),
                    ("batch", "faust", "+ 1 message/event via aiokafka record batches"),
                )
            for mode, app, what in mode_list:
                rate = faust_floor(bootstrap, one.prefix, args.n, mode, workdir, app)
                key = f"faust_{mode}" if app == "faust" else f"faust_{mode}_{app}"
                results[key] = rate
                print(f"  bare faust agent ({what}): {rate:,.0f} events/s", flush=True)
            if mode_list:
                print(f"  ({load()})", flush=True)
                results["one_vs_faust_noop"] = results["one_worker"] / results["faust_noop"]
                print(
                    f"  one/bare faust (noop) = {results['one_vs_faust_noop']:.3f}; "
                    f"bare faust (noop)/raw = {results['faust_noop'] / results['raw']:.3f}",
                    flush=True,
                )
            results["one_vs_raw"] = results["one_worker"] / results["raw"]
            if not args.skip_two:
                two = Run(bootstrap, workdir, agencies, keys)
                results["two_workers"] = two.throughput(2, setup, traffic)
                results["two_workers_cpu_s_per_1k"] = two.cpu_per_1k
                results["two_vs_one"] = results["two_workers"] / results["one_worker"]
                print(
                    f"  two workers: {results['two_workers']:,.0f} decided events/s, "
                    f"{two.cpu_per_1k:.2f} CPU-s per 1,000 events, {two.busy:.2f} cores busy; "
                    f"two/one = {results['two_vs_one']:.2f} (goal >= 1.6); {load()}",
                    flush=True,
                )

            if args.baseline_src is not None:
                # Same traffic and broker, alternated, so that the machine's load falls on both.
                print(
                    f"\n[A/B] one worker, baseline from {args.baseline_src} vs this checkout; "
                    f"{load()}",
                    flush=True,
                )
                pairs: list[tuple[float, float]] = []
                for round_ in range(args.rounds):
                    base = Run(bootstrap, workdir, agencies, keys, src=args.baseline_src.resolve())
                    base_rate = base.throughput(1, setup, traffic)
                    this = Run(bootstrap, workdir, agencies, keys)
                    this_rate = this.throughput(1, setup, traffic)
                    pairs.append((base_rate, this_rate))
                    print(
                        f"  round {round_ + 1}: baseline {base_rate:,.0f} ev/s "
                        f"({base.cpu_per_1k:.2f} CPU-s/1k), this {this_rate:,.0f} ev/s "
                        f"({this.cpu_per_1k:.2f} CPU-s/1k), this/baseline "
                        f"{this_rate / base_rate:.2f}; {load()}",
                        flush=True,
                    )
                results["ab"] = pairs
            if args.only_throughput:
                print(f"\n{load()}")
                print(json.dumps(results, default=_round))
                return

            # 2. latency at a fixed offered load, one worker.
            print(f"\n[latency] one worker, {args.seconds:.0f} s per trial; {load()}", flush=True)
            lat = Run(bootstrap, workdir, agencies, keys)
            trials: list[Latency] = []
            try:
                lat.start(1)
                lat.apply_settings(setup)
                # Warm-up: the first batch after the settings rebuilds the policy snapshot.
                _, warm = items_of(Workload(work.agencies, [], work.events[:500]), tag="w-")
                lat.rate(warm)
                rates = [args.rate]
                if results["one_worker"] < args.rate:
                    # It cannot keep up with the goal's load: also find the highest rate it does.
                    factors = (0.8, 0.6, 0.4, 0.25, 0.1)
                    rates += [round(results["one_worker"] * f, -1) for f in factors]
                for trial, rate in enumerate(rates):
                    count = int(rate * args.seconds)
                    # Same seed: the same agencies as the registry, new ids through the tag.
                    batch = build(count, args.agencies, seed=11).events
                    _, paced = items_of(Workload(work.agencies, [], batch), tag=f"t{trial}-")
                    result = latency_at(lat, paced, rate)
                    trials.append(result)
                    show_latency(f"trial {trial + 1}", result)
                    if result.sustained and rate < args.rate:
                        break
            finally:
                lat.stop()
            results["latency"] = [vars(t) for t in trials]

            # 3. memory with a large registry and a day of windows.
            print(
                f"\n[memory] {args.mem_agencies:,} agencies, {args.mem_events:,} events over "
                f"24 h of event time; {load()}",
                flush=True,
            )
            big = build(args.mem_events, args.mem_agencies, seed=13)
            big_setup, big_traffic = items_of(big, day=True)
            big_csv = workdir / "agencies-big.csv"
            big_csv.write_text("".join(agencies_csv(big.agencies)), encoding="utf-8")
            mem = Run(bootstrap, workdir, big_csv, keys)
            try:
                mem.start(1)
                pid = mem.workers[0][1].proc.pid  # type: ignore[union-attr]
                idle = rss_mib(pid)
                mem.apply_settings(big_setup)
                settled = rss_mib(pid)
                results["day_rate"] = mem.rate(big_traffic)
                time.sleep(2.0)  # let the last table writes and gauges land before reading
                loaded = rss_mib(pid)
            finally:
                mem.stop()
            results["rss_mib"] = {
                "started": idle[0],
                "settings_applied": settled[0],
                "after_day": loaded[0],
                "peak": loaded[1],
            }
            print(
                f"  RSS at start {idle[0]:.0f} MiB; after {len(big_setup):,} settings "
                f"{settled[0]:.0f} MiB; after the day's traffic {loaded[0]:.0f} MiB "
                f"(peak {loaded[1]:.0f} MiB); decided {results['day_rate']:,.0f} events/s, "
                f"{mem.cpu_per_1k:.2f} CPU-s per 1,000",
                flush=True,
            )
        finally:
            stop_broker(args.port)
    print(f"\n{load()}")
    print(json.dumps(results, default=_round))


if __name__ == "__main__":
    main()
