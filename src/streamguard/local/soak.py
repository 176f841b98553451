"""The chaos soak: two workers under a steady producer while workers are killed and the broker
restarts, then every promise of at-least-once delivery checked against what was produced.

The soak starts a broker of its own (it restarts it), a deployment on a fresh prefix and two
workers in one consumer group. A producer sends searches, reads and signed policy changes at a
steady rate; every 20 to 40 s a random worker gets SIGKILL or SIGTERM (a run with room for one
kill only gets a SIGKILL) and is started again at once, as a supervisor would, and once,
mid-run, the broker is stopped and started again. Then the producer stops, the workers drain
the input and stop gracefully, and the soak checks:

* every input message was decided (audited), every copy of a decision carries the same
  `decision_id`, and every outcome reached the output topics the contract routes it to;
  at-least-once means copies are allowed: consumers drop them by `decision_id`
  (docs/contract.md section 3), so copies are counted, never refused;
* no search was counted twice: the search counters of the worker's changelog (1 h buckets, and
  the 1 min buckets not yet expired) and the agency-search gauges of the two live workers
  equal what the input holds, message by message, and a search is rate limited where the
  input's count passes the limit (a replay may add a limit, never drop one: it sees the
  minute's stored total, not the count the search had);
* every audit chain verifies (`streamguard verify-audit`);
* the policy state equals a single-worker replay: the policy topic decided in order by the
  engine with one replay memory, as `streamguard evaluate` decides a file, decides every change
  as the workers did, and ends with the owner settings of the workers' changelog.

`python -m streamguard.local.soak --seconds 600` runs a longer one by hand (it needs Java, like
`streamguard kafka start`); tests/integration/test_soak.py runs a short one in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from streamguard import serde
from streamguard.core.control import replay_entry_for
from streamguard.core.engine import decide_event
from streamguard.core.keys import parse_keys
from streamguard.core.models import OwnerSettings
from streamguard.core.policy import PolicyState
from streamguard.core.registry import load_agencies_csv
from streamguard.core.replay import ReplayLedger
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import format_ts
from streamguard.local.broker import start_broker, stop_broker
from streamguard.local.testing import (
    Deployment,
    TestKeys,
    WorkerProcess,
    agency_ids,
    agency_searches,
    free_port,
    plate_read,
    policy_change,
    search_request,
    settled,
    wait_for,
    write_agencies,
    write_keys,
)
from streamguard.stream.intake import Unreadable, decode
from streamguard.stream.tables import settings_from_value
from streamguard.stream.windows import parse_counter_key

__all__ = ("Soak", "SoakOptions", "main", "run_soak")

AGENCIES: Final = """agency_id,name,state,kind
ca-ventura-county-so,Ventura County Sheriff's Office,CA,county
ca-oxnard-pd,Oxnard Police Department,CA,local
ca-santa-paula-pd,Santa Paula Police Department,CA,local
ca-port-hueneme-pd,Port Hueneme Police Department,CA,local
tx-austin-pd,Austin Police Department,TX,local
tx-el-paso-pd,El Paso Police Department,TX,local
wa-spokane-pd,Spokane Police Department,WA,local
"""
AGENCY_IDS: Final = tuple(agency_ids(AGENCIES))
OWNERS: Final = ("ca-ventura-county-so", "ca-oxnard-pd", "tx-austin-pd", "wa-spokane-pd")
SEARCH_REASONS: Final = ("stolen vehicle 10851 VC case 25-000123", "robbery 211 PC", "", "ICE")
# Web ports of the two workers and ports the soak's own broker may take (issue #13's range).
WEB_PORTS: Final = range(29600, 29690)
BROKER_PORTS: Final = range(29690, 29700)
PARTITIONS: Final = 4
# Event time: 0.1 s per event from EPOCH, so one 1 h bucket holds 36 000 events and a
# requester-minute about 90 searches: RATE_LIMIT cuts the busiest minutes.
EPOCH: Final = 1_768_039_200.0  # 2026-01-10T10:00:00Z
EVENT_STEP: Final = 0.1
RATE_LIMIT: Final = 80
SESSION_TIMEOUT_SECONDS: Final = 10
# Seconds of chaos below which a run has room for one worker kill only (and the broker restart).
SHORT_RUN: Final = 120.0
OUTPUT_ROLES: Final = ("audit", "searches.approved", "reads.shared", "quarantine")
INPUT_ROLES: Final = ("searches", "reads", "policy")
ROUTES: Final = {
    ("search_request", "approved"): ("searches.approved",),
    ("search_request", "partial"): ("searches.approved", "quarantine"),
    ("plate_read", "shared"): ("reads.shared",),
    ("plate_read", "partial"): ("reads.shared", "quarantine"),
}
ROUTED_ID: Final = {"searches.approved": "search_id", "reads.shared": "read_id"}


@dataclass(frozen=True, slots=True)
class SoakOptions:
    """How long and how hard: `seconds` of chaos at `rate` events per second."""

    seconds: float = 150.0
    rate: float = 20.0
    seed: int | None = None  # None: a new one, printed, so that a failure can be run again
    fault_every: tuple[float, float] = (20.0, 40.0)
    # Time left for the last input to be decided after the producer stops (a SIGKILLed
    # worker's partitions wait for its session to time out, faust's default is 60 s).
    drain_timeout: float = 120.0


@dataclass
class Fault:
    """One fault the soak made and what it cost."""

    at: float  # seconds since the chaos started
    kind: str  # "SIGKILL", "SIGTERM" or "broker restart"
    target: str
    exit_code: int | None = None
    # Broker: stopped until it served again. Worker: started again until it settled (None when
    # it was hit again before it settled).
    down: float | None = None
    drained: float | None = None  # until every event acknowledged before the fault was decided


@dataclass
class Figures:
    """What the soak measured; `lines()` is what it prints."""

    seed: int = 0
    seconds: float = 0.0
    broker_start: float = 0.0
    setup: float = 0.0  # the deployment created and both workers settled
    wrap_up: float = 0.0  # the drain, the graceful stops and the checks
    produced: Counter[str] = field(default_factory=Counter)
    input_copies: int = 0  # input messages whose event id an earlier message already had
    decided: int = 0
    audit_records: int = 0
    audit_copies: int = 0
    events_with_copies: int = 0
    output_copies: Counter[str] = field(default_factory=Counter)
    faults: list[Fault] = field(default_factory=list)
    unexpected_exits: list[str] = field(default_factory=list)
    hung_stops: int = 0  # SIGTERMs the worker did not finish within 60 s (then SIGKILLed)
    lag_max: float = 0.0
    lag_p50: float = 0.0
    lag_p99: float = 0.0
    drain_after_stop: float = 0.0
    policy_applied: int = 0
    policy_rejected: int = 0
    rate_limited: int = 0
    limited_on_replay: int = 0  # limited only because a replay sees the minute's total
    counter_buckets: int = 0
    chains: str = ""

    def lines(self) -> list[str]:
        kills = Counter(f.kind for f in self.faults)
        out = [
            f"soak (seed {self.seed}): {self.seconds:.0f} s of chaos; "
            f"broker started in {self.broker_start:.1f} s, "
            f"workers settled in {self.setup:.1f} s, drain, stops and checks took "
            f"{self.wrap_up:.1f} s",
            "produced: "
            + ", ".join(f"{n} {k}" for k, n in sorted(self.produced.items()))
            + f" ({sum(self.produced.values())} events, {self.input_copies} input copies)",
            f"decided: {self.decided} events, {self.audit_records} audit records, "
            f"{self.audit_copies} duplicate copies on {self.events_with_copies} events; "
            "output copies: "
            + (", ".join(f"{n} {k}" for k, n in sorted(self.output_copies.items())) or "none"),
            "faults: "
            + ", ".join(f"{n} {k}" for k, n in sorted(kills.items()))
            + f"; unexpected worker exits: {len(self.unexpected_exits)}; "
            f"graceful stops that hung past 60 s: {self.hung_stops}",
        ]
        for fault in self.faults:
            drained = "-" if fault.drained is None else f"{fault.drained:.1f} s"
            if fault.kind == "broker restart":
                cost = f"down {fault.down or 0.0:.1f} s"
            elif fault.down is None:
                cost = "hit again before it settled"
            else:
                cost = f"settled again {fault.down:.1f} s after"
            out.append(
                f"  t+{fault.at:5.1f} s {fault.kind:<14} {fault.target:<8} "
                f"exit {fault.exit_code!s:<4} {cost}; all sent before it decided "
                f"{drained} after"
            )
        out += [
            f"decision lag: max {self.lag_max:.1f} s, p99 {self.lag_p99:.2f} s, "
            f"p50 {self.lag_p50:.2f} s; last input decided {self.drain_after_stop:.1f} s "
            "after the producer stopped",
            f"windows: {self.counter_buckets} counter buckets equal the input's counts, "
            f"{self.rate_limited} searches rate limited as the input predicts "
            f"(and {self.limited_on_replay} more on replay, fail closed)",
            f"policy: {self.policy_applied} changes applied, {self.policy_rejected} rejected, "
            "final settings equal a single-worker replay",
            f"audit: {self.chains}",
        ]
        return out


# --- the input ---------------------------------------------------------------------------------


class Traffic:
    """The i-th event of the soak, the same for the same seed (ids, kinds, agencies); a policy
    change is dated and signed when it is made, just before it is sent."""

    def __init__(self, seed: int, keys: TestKeys) -> None:
        self.rng = random.Random(seed)  # noqa: S311  # reproducible traffic, not secrets
        self.keys = keys

    def item(self, i: int) -> tuple[str, str, dict[str, Any]]:
        rng = self.rng
        ts = format_ts(EPOCH + i * EVENT_STEP)
        event_id = str(uuid.UUID(int=rng.getrandbits(128)))
        roll = rng.random()
        if roll < 0.05:
            return "policy", *self._change(event_id)
        if roll < 0.25:
            owner = rng.choice(AGENCY_IDS)
            shared = rng.sample(AGENCY_IDS, 2)
            return "reads", owner, plate_read(owner, shared, ts=ts, read_id=event_id)
        # Few requesters, so their minutes reach the rate limit.
        requester = rng.choice(AGENCY_IDS[:4] + AGENCY_IDS[4:5])
        nets = [requester] if rng.random() < 0.3 else rng.sample(AGENCY_IDS, 2)
        why = rng.choice(SEARCH_REASONS)
        event = search_request(requester, networks=nets, reason=why, ts=ts, search_id=event_id)
        return "searches", requester, event

    def _change(self, change_id: str) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        owner = rng.choice(OWNERS)
        setting = rng.choice(("share_with", "unshare_with", "statewide_lookup", "national_lookup"))
        value: Any = rng.random() < 0.5
        if setting in ("share_with", "unshare_with"):
            value = rng.sample([a for a in AGENCY_IDS if a != owner], 2)
        # Some unsigned: rejected, never applied, whatever the order around them.
        signer = None if rng.random() < 0.1 else self.keys.for_agency(owner)
        change = policy_change(owner, setting, value, signer=signer, change_id=change_id)
        return owner, change


class Producer:
    """Sends the traffic at a steady rate from a thread, each message acknowledged before the
    next; a send that fails (the broker is down) is retried until it is acknowledged. Keeps
    the wall time each event id was acknowledged at."""

    def __init__(self, deployment: Deployment, traffic: Traffic, rate: float) -> None:
        self.deployment, self.traffic, self.rate = deployment, traffic, rate
        self.acked: dict[str, float] = {}
        self.kinds: Counter[str] = Counter()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._target, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 120.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _target(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported through `error`, not lost in the thread
            self.error = exc

    async def _run(self) -> None:
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        # Idempotent, with a long request timeout: the client retries through a broker restart
        # without writing a message twice.
        producer = AIOKafkaProducer(
            bootstrap_servers=self.deployment.bootstrap,
            enable_idempotence=True,
            request_timeout_ms=60_000,
            retry_backoff_ms=250,
        )
        await producer.start()
        try:
            due = time.monotonic()
            i = 0
            while not self._stop.is_set():
                role, key, event = self.traffic.item(i)
                event_id = event.get("search_id") or event.get("read_id") or event["change_id"]
                while True:
                    try:
                        await producer.send_and_wait(
                            self.deployment.topic(role), serde.dumps(event), key=key.encode()
                        )
                        break
                    except KafkaError:
                        await asyncio.sleep(0.5)
                self.acked[event_id] = time.time()
                self.kinds[event["type"]] += 1
                i += 1
                # Steady, never catching up in a burst after an outage.
                due = max(due + 1.0 / self.rate, time.monotonic())
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        finally:
            await producer.stop()


class Watcher:
    """Reads the output topics from a thread while the soak runs, keeping every record and the
    wall time each event's first audit record was seen."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.records: dict[str, list[dict[str, Any]]] = {role: [] for role in OUTPUT_ROLES}
        self.first_seen: dict[str, float] = {}
        self.read: Counter[str] = Counter()  # messages read per role, whatever they hold
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._target, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _target(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            self.error = exc

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        roles = {self.deployment.topic(r): r for r in OUTPUT_ROLES}
        tps = [TopicPartition(t, p) for t in roles for p in range(self.deployment.partitions)]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.deployment.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                now = time.time()
                for tp, messages in batch.items():
                    role = roles[tp.topic]
                    self.read[role] += len(messages)
                    for message in messages:
                        value = serde.loads(message.value) if message.value else None
                        if not isinstance(value, dict):
                            continue
                        self.records[role].append(value)
                        if role == "audit" and value.get("event_id"):
                            self.first_seen.setdefault(value["event_id"], now)
        finally:
            await consumer.stop()


async def _read_topic(
    bootstrap: str, topic: str, partitions: int, timeout: float = 60.0
) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """(partition, offset, key, value) of every record of `topic` (of `partitions`, as every
    topic of the deployment and every changelog has), to its end when called."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[int, int, bytes | None, bytes | None]] = []
        deadline = time.monotonic() + timeout
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} took more than {timeout:g} s")
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                out += [
                    (tp.partition, m.offset, m.key, m.value)
                    for m in messages
                    if m.offset < ends[tp]
                ]
        return out
    finally:
        await consumer.stop()


async def _ends(deployment: Deployment, roles: Iterable[str]) -> dict[str, int]:
    """How many messages each role's topic holds (its partitions' end offsets, summed)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tps = [TopicPartition(deployment.topic(r), p) for r in roles for p in range(PARTITIONS)]
    consumer = AIOKafkaConsumer(bootstrap_servers=deployment.bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    out: Counter[str] = Counter()
    for tp, end in ends.items():
        out[tp.topic.removeprefix(deployment.prefix)] += end
    return {role: n for role, n in out.items() if n}


def read_topic(
    deployment: Deployment, topic: str
) -> list[tuple[int, int, bytes | None, bytes | None]]:
    return asyncio.run(_read_topic(deployment.bootstrap, topic, deployment.partitions))


def latest_values(records: Iterable[tuple[int, int, bytes | None, bytes | None]]) -> dict[str, Any]:
    """A compacted view of a faust table's changelog: each key's last value (deleted: absent)."""
    table: dict[str, Any] = {}
    for _, _, key, value in sorted(records, key=lambda r: (r[0], r[1])):
        if key is None:
            continue
        name = serde.loads(key)
        if value is None:
            table.pop(name, None)
        else:
            table[name] = serde.loads(value)
    return table


# --- the run -----------------------------------------------------------------------------------


class Soak:
    """One soak in `workdir`: its broker, deployment, workers, producer and watcher."""

    def __init__(self, options: SoakOptions, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        seed = random.SystemRandom().randrange(1_000_000) if options.seed is None else options.seed
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311  # reproducible chaos
        self.keys = TestKeys(f"soak-{seed}".encode(), AGENCY_IDS)
        self.agencies = write_agencies(workdir, AGENCIES)
        self.keys_path = write_keys(workdir, self.keys)
        self.figures = Figures(seed=seed)
        self.failures: list[str] = []
        self.port = 0
        self.web_ports = (0, 0)
        self.deployment: Deployment | None = None
        self.workers: list[WorkerProcess] = []
        self._t0 = 0.0
        self._fault_wall: list[float] = []
        # Workers started again after a fault and not settled yet: index -> (fault, began).
        self._recovering: dict[int, tuple[Fault, float]] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    def run(self) -> tuple[Figures, list[str]]:
        self.port = free_port(BROKER_PORTS)
        started = time.monotonic()
        start_broker(self.port, self.workdir / "broker", timeout=120.0)
        self.figures.broker_start = time.monotonic() - started
        try:
            self._run()
        finally:
            for worker in self.workers:
                worker.stop(30)
            stop_broker(self.port)
        return self.figures, self.failures

    def _run(self) -> None:
        options = self.options
        began = time.monotonic()
        deployment = Deployment.create(
            f"localhost:{self.port}",
            self.workdir / "deployment",
            tag="sgsoak",
            partitions=PARTITIONS,
        )
        self.deployment = deployment
        first = free_port(WEB_PORTS)
        self.web_ports = (first, free_port(range(first + 1, WEB_PORTS.stop)))
        for index, port in enumerate(self.web_ports):
            self.workers.append(
                deployment.add_worker(
                    port,
                    name=f"worker-{index}",
                    agencies=self.agencies,
                    keys=self.keys_path,
                    rate_limit_per_minute=str(RATE_LIMIT),
                    log_level="info",  # the logs say what a failure was doing
                    # A killed worker's partitions move after 10 s, not faust's 60: with a fault
                    # every 20-40 s the group would otherwise seldom settle.
                    session_timeout_seconds=str(SESSION_TIMEOUT_SECONDS),
                )
            )
        for index, port in enumerate(self.web_ports):
            self._wait_settled(index, port)
        watcher = Watcher(deployment)
        producer = Producer(deployment, Traffic(self.seed, self.keys), options.rate)
        watcher.start()
        producer.start()
        self._t0 = time.monotonic()
        self.figures.setup = self._t0 - began
        try:
            self._chaos(producer)
            self.figures.seconds = self._elapsed()
            producer.stop()
            stopped = time.time()
            if producer.error is not None:
                self.failures.append(f"the producer failed: {producer.error!r}")
            acked = dict(producer.acked)
            deadline = time.monotonic() + options.drain_timeout
            while time.monotonic() < deadline and (
                self._recovering or acked.keys() - watcher.first_seen.keys()
            ):
                self._tend()
                time.sleep(0.2)
            last = max((watcher.first_seen.get(e, 0.0) for e in acked), default=stopped)
            self.figures.drain_after_stop = max(0.0, last - stopped)
            self._check_gauges(deployment)
            self._stop_workers(deployment)
            ends = asyncio.run(_ends(deployment, OUTPUT_ROLES))
            wait_for(lambda: dict(watcher.read), 60.0, until=lambda n: n == ends)
        finally:
            watcher.stop()
        if watcher.error is not None:
            self.failures.append(f"the output reader failed: {watcher.error!r}")
        self.figures.produced = producer.kinds
        self._lags(acked, watcher.first_seen)
        self.check(deployment, watcher)
        self.figures.wrap_up = time.monotonic() - self._t0 - self.figures.seconds

    def _chaos(self, producer: Producer) -> None:
        """A fault every 20-40 s (counted from the last one, whether or not the workers have
        recovered) until `seconds` have passed, none in the last 15 s. The broker restart is
        the first fault past the middle once a worker has been killed, or comes 15 s before the
        end if no fault fell there: a restart takes up to a minute, and a short run that began
        with it would end before any worker was killed."""
        options = self.options
        low, high = options.fault_every
        last_start = options.seconds - 15
        next_fault = self.rng.uniform(low, high)
        broker_done = False
        while (now := self._elapsed()) < options.seconds:
            if producer.error is not None:
                return
            self._tend()
            due = now >= next_fault and now < last_start
            killed = any(fault.kind != "broker restart" for fault in self.figures.faults)
            past_middle = due and killed and now >= options.seconds / 2
            if not broker_done and (now >= last_start or past_middle):
                self._restart_broker()
                broker_done = True
                next_fault = now + self.rng.uniform(low, high)
            elif due:
                self._kill_one()
                next_fault = now + self.rng.uniform(low, high)
            time.sleep(0.2)

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0

    def _kill_one(self) -> None:
        index = self.rng.randrange(len(self.workers))
        worker = self.workers[index]
        # Random, but a run with two kills or more has one of each, and a run too short for two
        # starts with the SIGKILL: the fault that makes the workers replay.
        used = {fault.kind for fault in self.figures.faults}
        fresh = [sig for sig in (signal.SIGKILL, signal.SIGTERM) if sig.name not in used]
        if self.options.seconds < SHORT_RUN and len(fresh) == 2:
            fresh = [signal.SIGKILL]
        how = self.rng.choice(fresh or [signal.SIGKILL, signal.SIGTERM])
        fault = Fault(self._elapsed(), how.name, f"worker-{index}")
        self._fault_wall.append(time.time())
        began = time.monotonic()
        fault.exit_code = worker.kill() if how is signal.SIGKILL else worker.stop(60)
        # A SIGTERM before the worker installed its handlers (it was still starting) ends it
        # with -15: nothing had started, so nothing is lost. A stop that hangs (seen while the
        # group coordinator was still coming back after the broker restart) is SIGKILLed after
        # 60 s: counted, and the checks show what it cost.
        if how is signal.SIGTERM and fault.exit_code == -signal.SIGKILL:
            self.figures.hung_stops += 1
        elif how is signal.SIGTERM and fault.exit_code not in (0, -signal.SIGTERM):
            self.failures.append(
                f"worker-{index} exited {fault.exit_code} on SIGTERM:\n{worker.log_text()[-2000:]}"
            )
        worker.start()  # at once, as a supervisor would
        self.figures.faults.append(fault)
        self._recovering[index] = (fault, began)

    def _restart_broker(self) -> None:
        fault = Fault(self._elapsed(), "broker restart", f":{self.port}")
        self._fault_wall.append(time.time())
        began = time.monotonic()
        if not stop_broker(self.port):
            self.failures.append("the soak's broker did not stop")
        time.sleep(self.rng.uniform(3.0, 8.0))
        start_broker(self.port, self.workdir / "broker", timeout=120.0)
        fault.down = time.monotonic() - began
        self.figures.faults.append(fault)

    def _tend(self) -> None:
        """Note the workers that settled after a fault; start again a worker that died without
        being told to (a finding: it is reported)."""
        for index, (fault, began) in list(self._recovering.items()):
            if settled(self.web_ports[index]):
                fault.down = time.monotonic() - began
                del self._recovering[index]
        for index, worker in enumerate(self.workers):
            if worker.proc is not None and not worker.alive():
                code = worker.proc.returncode
                self.figures.unexpected_exits.append(f"worker-{index} exit {code}")
                self.failures.append(
                    f"worker-{index} exited by itself ({code}):\n{worker.log_text()[-3000:]}"
                )
                worker.proc = None
                worker.start()

    def _wait_settled(self, index: int, port: int) -> None:
        worker = self.workers[index]
        ok = wait_for(
            lambda: settled(port), 120.0, until=lambda s: s or not worker.alive(), interval=0.2
        )
        if not ok:
            self.failures.append(f"worker-{index} did not settle:\n{worker.log_text()[-3000:]}")

    def _stop_workers(self, deployment: Deployment) -> None:
        for index, worker in enumerate(self.workers):
            code = worker.stop(60)
            if code != 0:
                self.failures.append(
                    f"worker-{index} exited {code} on its last, graceful stop:\n"
                    + worker.log_text()[-2000:]
                )
        behind = deployment.uncommitted(INPUT_ROLES)
        if behind:
            self.failures.append(f"input not committed after the graceful stops: {behind}")

    def _lags(self, acked: dict[str, float], seen: dict[str, float]) -> None:
        lags = sorted(seen[e] - t for e, t in acked.items() if e in seen)
        if lags:
            self.figures.lag_max = lags[-1]
            self.figures.lag_p50 = lags[len(lags) // 2]
            self.figures.lag_p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        for fault, wall in zip(self.figures.faults, self._fault_wall, strict=True):
            before = [seen.get(e) for e, t in acked.items() if t < wall]
            if before and None not in before:
                fault.drained = max(0.0, max(t for t in before if t is not None) - wall)

    # --- the checks ----------------------------------------------------------------------------

    def check(self, deployment: Deployment, watcher: Watcher) -> None:
        inputs = {role: read_topic(deployment, deployment.topic(role)) for role in INPUT_ROLES}
        events = {
            role: [(p, o, serde.loads(v)) for p, o, _, v in records if v is not None]
            for role, records in inputs.items()
        }
        self._check_decided(events, watcher)
        self._check_windows(deployment, events["searches"], watcher)
        self._check_policy(deployment, inputs["policy"], watcher)
        result = deployment.verify_audit()
        self.figures.chains = (result.stdout.strip().splitlines() or [""])[-1]
        if result.returncode != 0:
            self.failures.append(f"verify-audit failed: {result.stdout}{result.stderr}")

    def _check_decided(
        self, events: dict[str, list[tuple[int, int, Any]]], watcher: Watcher
    ) -> None:
        figures = self.figures
        ids = [_event_id(e) for role in INPUT_ROLES for _, _, e in events[role]]
        figures.input_copies = len(ids) - len(set(ids))
        audit = watcher.records["audit"]
        copies: dict[str, set[str]] = defaultdict(set)
        for record in audit:
            copies[record["event_id"]].add(record["decision_id"])
        missing = set(ids) - copies.keys()
        if missing:
            self.failures.append(
                f"{len(missing)} input events never decided: {sorted(missing)[:5]}"
            )
        changed = {e: d for e, d in copies.items() if len(d) != 1}
        if changed:
            self.failures.append(f"{len(changed)} events decided under several decision ids")
        count = Counter(r["event_id"] for r in audit)
        figures.decided = len(copies)
        figures.audit_records = len(audit)
        figures.audit_copies = len(audit) - len(copies)
        figures.events_with_copies = sum(1 for n in count.values() if n > 1)
        # Routing: every outcome reached its output topics (a copy may go anywhere its own
        # decision sent it; the first copy's outcome is what is owed at least).
        owed: dict[str, set[str]] = defaultdict(set)
        for record in audit:
            outcome = record["outcome"]
            default = ("quarantine",) if outcome in ("denied", "rejected") else ()
            for role in ROUTES.get((record["kind"], outcome), default):
                owed[role].add(record["event_id"])
        for role in OUTPUT_ROLES[1:]:
            field_name = ROUTED_ID.get(role, "event_id")
            got = [r.get(field_name) for r in watcher.records[role]]
            figures.output_copies[role] = len(got) - len(set(got))
            lost = owed[role] - set(got)
            if lost:
                self.failures.append(f"{len(lost)} decisions never reached {role}")

    def _check_windows(
        self, deployment: Deployment, searches: list[tuple[int, int, Any]], watcher: Watcher
    ) -> None:
        """The counters of the changelog and the rate-limited searches against the input."""
        expected: Counter[tuple[str, int, str]] = Counter()
        limited_expected: set[str] = set()
        minute_of: dict[str, tuple[str, int, str]] = {}
        for _, _, event in sorted(searches, key=lambda s: (s[0], s[1])):
            requester = event["requester"]["agency_id"]
            ts = EPOCH + _index_of(event["ts"]) * EVENT_STEP
            minute, hour = int(ts // 60 * 60), int(ts // 3600 * 3600)
            minute_of[event["search_id"]] = ("1m", minute, requester)
            expected["1m", minute, requester] += 1
            expected["1h", hour, requester] += 1
            if expected["1m", minute, requester] > RATE_LIMIT:
                limited_expected.add(event["search_id"])
        changelog = latest_values(read_topic(deployment, f"{deployment.group}-counters-changelog"))
        stored: Counter[tuple[str, int, str]] = Counter()
        for key, value in changelog.items():
            parsed = parse_counter_key(key)
            if parsed is not None and parsed[1] == "searches" and isinstance(value, int):
                _, _, window, start, agency_id = parsed
                stored[window, start, agency_id] += value
        wrong = {
            bucket: (n, expected[bucket]) for bucket, n in stored.items() if n != expected[bucket]
        }
        hours = {b for b in expected if b[0] == "1h"}
        lost_hours = hours - stored.keys()
        if wrong or lost_hours:
            self.failures.append(
                f"search counters differ from the input: {len(wrong)} buckets "
                f"(stored, expected): {dict(list(wrong.items())[:6])}; 1 h buckets missing: "
                f"{sorted(lost_hours)[:6]}"
            )
        self.figures.counter_buckets = len(stored) - len(wrong)
        self._check_limits(watcher, limited_expected, minute_of, expected)

    def _check_limits(
        self,
        watcher: Watcher,
        limited_expected: set[str],
        minute_of: dict[str, tuple[str, int, str]],
        expected: Counter[tuple[str, int, str]],
    ) -> None:
        """Rate limits decided as the input's counts say. A replayed search is decided against
        its minute's stored total, not the count it had (which is not stored): it may be
        limited where the original was not, never the other way (fail closed, see
        tests/unit/stream/test_replay_counting.py), and only in a minute past the limit."""
        copies: dict[str, list[bool]] = defaultdict(list)  # limited or not, copy by copy
        for record in watcher.records["audit"]:
            if record["kind"] == "search_request":
                copies[record["event_id"]].append("RATE_LIMIT_EXCEEDED" in record["codes"])
        permissive = [e for e in limited_expected if not all(copies.get(e) or [False])]
        extra = [e for e, seen in copies.items() if e not in limited_expected and any(seen)]
        unexplained = [e for e in extra if expected[minute_of[e]] <= RATE_LIMIT]
        self.figures.rate_limited = len(limited_expected) - len(permissive)
        self.figures.limited_on_replay = len(extra)
        if permissive:
            self.failures.append(
                f"{len(permissive)} searches past the limit by the input's counts were decided "
                f"without RATE_LIMIT_EXCEEDED (in some copy): {permissive[:5]}"
            )
        if unexplained:
            self.failures.append(
                f"{len(unexplained)} searches rate limited in a minute the input never takes "
                f"past the limit: {unexplained[:5]}"
            )

    def _check_gauges(self, deployment: Deployment) -> None:
        """The 24 h gauges of the two live workers, summed, hold each search once."""
        searches = read_topic(deployment, deployment.topic("searches"))
        expected = Counter(serde.loads(v)["requester"]["agency_id"] for _, _, _, v in searches if v)

        def shown() -> Counter[str]:
            total: Counter[str] = Counter()
            for port in self.web_ports:
                total.update(agency_searches(port, "24h"))
            return total

        seen = wait_for(shown, 20.0, until=lambda c: c == expected)
        if seen != expected:
            self.failures.append(
                f"the live workers' 24 h gauges {dict(seen)} differ from the input {dict(expected)}"
            )

    def _check_policy(
        self,
        deployment: Deployment,
        records: Sequence[tuple[int, int, bytes | None, bytes | None]],
        watcher: Watcher,
    ) -> None:
        """Policy decisions and final settings against one in-order replay of the policy topic."""
        lines = [v for _, _, _, v in sorted(records, key=lambda r: (r[0], r[1])) if v is not None]
        statutes = load_statutes()
        state = PolicyState.create(statutes, load_agencies_csv(self.agencies))
        keys = parse_keys(self.keys.keys_json(), "soak")
        now = time.time()
        replayed: dict[str, tuple[str, list[str]]] = {}
        memory = ReplayLedger()  # one worker's replay memory, as `evaluate` keeps it
        for line in lines:
            event = decode(line, state.version)
            if isinstance(event, Unreadable):  # the soak sends none; the audit says so too
                continue
            state, decision = decide_event(event, state, now, keys, memory=memory)
            if (entry := replay_entry_for(event, decision, now)) is not None:
                memory.remember(entry)
            replayed[str(decision.event_id)] = (decision.outcome, sorted(decision.codes))
        decided: dict[str, set[tuple[str, tuple[str, ...]]]] = defaultdict(set)
        for record in watcher.records["audit"]:
            if record["kind"] == "policy_change":
                decided[record["event_id"]].add((record["outcome"], tuple(sorted(record["codes"]))))
        differ = [
            (cid, sorted(decided.get(cid, set())), want)
            for cid, want in replayed.items()
            if decided.get(cid) != {(want[0], tuple(want[1]))}
        ]
        if differ:
            self.failures.append(
                f"{len(differ)} policy changes decided unlike the replay: {differ[:4]}"
            )
        outcomes = Counter(outcome for outcome, _ in replayed.values())
        self.figures.policy_applied = outcomes["applied"]
        self.figures.policy_rejected = sum(outcomes.values()) - outcomes["applied"]
        changelog = latest_values(
            read_topic(deployment, f"{deployment.group}-owner-settings-changelog")
        )
        for owner in AGENCY_IDS:
            want = state.settings_for(owner)
            value = changelog.get(owner)
            got = OwnerSettings() if value is None else settings_from_value(value)
            if got != want:
                self.failures.append(f"{owner}'s settings: worker {got}, replay {want}")


DEFAULTS: Final = SoakOptions()


def _event_id(event: dict[str, Any]) -> str:
    return str(event.get("search_id") or event.get("read_id") or event.get("change_id"))


def _index_of(ts: str) -> int:
    from streamguard.core.timeutil import parse_ts

    when = parse_ts(ts)
    assert when is not None
    return round((when - EPOCH) / EVENT_STEP)


def run_soak(options: SoakOptions, workdir: Path | None = None) -> tuple[Figures, list[str]]:
    """Run one soak (in `workdir`, else a temporary directory removed after); its figures and
    its failures (empty when every check passed)."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        return Soak(options, workdir).run()
    base = Path(tempfile.mkdtemp(prefix="streamguard-soak-"))
    try:
        return Soak(options, base).run()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streamguard.local.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=DEFAULTS.seconds)
    parser.add_argument("--rate", type=float, default=DEFAULTS.rate, help="events per second")
    parser.add_argument("--seed", type=int, help="repeat a run's traffic and faults")
    parser.add_argument(
        "--workdir", type=Path, help="keep logs and data here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    # The soak's own producer and reader: their reconnect noise during the broker restart says
    # nothing the figures do not (the workers' logs are in the work directory).
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    figures, failures = run_soak(
        SoakOptions(seconds=args.seconds, rate=args.rate, seed=args.seed), args.workdir
    )
    print("\n".join(figures.lines()))
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
