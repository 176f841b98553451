"""StreamGuard run against a real broker, for its own integration tests and benchmarks: contract
events, produce and collect with deadlines, a deployment (a topic prefix and its workers), a
worker's /metrics, its input files, free ports and bounded waits. Never used by the product.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from streamguard import serde
from streamguard.core.keys import ED25519
from streamguard.core.signer import SigningKey
from streamguard.core.timeutil import format_ts
from streamguard.local.broker import port_in_use
from streamguard.local.child import WorkerProcess, app_id, worker_env
from streamguard.worker.topics import contract_topics, create_topics

__all__ = (
    "INPUT_ROLES",
    "TEST_AGENCIES",
    "Collected",
    "Deployment",
    "PacedProducer",
    "TestKeys",
    "TestRegistry",
    "WorkerProcess",
    "agency_ids",
    "agency_record",
    "agency_searches",
    "collect",
    "contract_topics",
    "create_topics",
    "decided_events",
    "free_port",
    "fresh_ts",
    "metric_total",
    "new_prefix",
    "plate_read",
    "policy_change",
    "port_is_free",
    "produce",
    "produce_to",
    "run",
    "scrape",
    "search_request",
    "settled",
    "signed",
    "uncommitted",
    "verify_audit",
    "wait_for",
    "worker_env",
    "write_agencies",
    "write_keys",
)

# Records read per topic: (key, value), the value JSON-decoded when it can be.
Collected = dict[str, list[tuple[bytes | None, Any]]]
Key = bytes | str | None
T = TypeVar("T")
INPUT_ROLES = ("searches", "reads", "policy")


# --- contract events --------------------------------------------------------------------------


def search_request(
    requester: str,
    *,
    scope: str = "networks",
    networks: Iterable[str] = (),
    reason: str | None = "stolen vehicle 25-000123",
    ts: str = "2026-01-10T18:03:11Z",
    plate: str = "8ABC123",
    user_id: str = "u-1",
    case_number: str | None = "25-000123",
    search_id: str | None = None,
    query_window: tuple[str | None, str | None] = (None, None),
) -> dict[str, Any]:
    return {
        "type": "search_request",
        "search_id": search_id or str(uuid.uuid4()),
        "ts": ts,
        "requester": {"agency_id": requester, "user_id": user_id},
        "reason": reason,
        "case_number": case_number,
        "offense_type": None,
        "search_type": "lookup",
        "query": {"plate": plate, "from": query_window[0], "to": query_window[1]},
        "scope": scope,
        "networks": list(networks),
    }


def plate_read(
    owner: str,
    share_to: Iterable[str],
    *,
    ts: str = "2026-01-10T18:03:11Z",
    plate: str = "8ABC123",
    read_id: str | None = None,
) -> dict[str, Any]:
    return {
        "type": "plate_read",
        "read_id": read_id or str(uuid.uuid4()),
        "ts": ts,
        "agency_id": owner,
        "camera_id": "cam-1",
        "plate": plate,
        "plate_state": "CA",
        "confidence": 0.9,
        "location": {"lat": 34.2, "lon": -119.2},
        "hotlist_hit": False,
        "share_to": list(share_to),
    }


class TestKeys:
    """Ed25519 signing keys derived from `seed`: `k-<agency>` bound to each agency of
    `agencies`, and `k-registry` for agency records. The same seed gives the same keys, so a
    test and the worker it starts agree without sharing files beyond KEYS.json."""

    __test__ = False  # a helper, not a test class

    def __init__(self, seed: bytes, agencies: Iterable[str]) -> None:
        self.seed = seed
        self.signers: dict[str, SigningKey] = {}
        for agency_id in agencies:
            self.signers[f"k-{agency_id}"] = self._derive(f"k-{agency_id}", agency_id)
        self.signers["k-registry"] = self._derive("k-registry", None)

    def _derive(self, key_id: str, agency_id: str | None) -> SigningKey:
        material = hashlib.sha256(self.seed + b"/" + key_id.encode()).digest()
        return SigningKey(key_id, ED25519, agency_id, material)

    def for_agency(self, agency_id: str) -> SigningKey:
        """The agency's key, derived on first use for an agency not named at the start."""
        key_id = f"k-{agency_id}"
        if key_id not in self.signers:
            self.signers[key_id] = self._derive(key_id, agency_id)
        return self.signers[key_id]

    @property
    def registry(self) -> SigningKey:
        return self.signers["k-registry"]

    def keys_json(self) -> dict[str, dict[str, str]]:
        """The KEYS.json a worker verifies these keys with (public keys only)."""
        return {key_id: signer.keys_entry() for key_id, signer in self.signers.items()}


def agency_ids(csv_text: str) -> list[str]:
    """The agency ids of a registry CSV's text."""
    return [row["agency_id"] for row in csv.DictReader(io.StringIO(csv_text))]


# The agencies the integration tests draw their registries from: id -> (name, state, kind).
TEST_AGENCIES: Final[Mapping[str, tuple[str, str, str]]] = {
    "ca-ventura-county-so": ("Ventura County Sheriff's Office", "CA", "county"),
    "ca-oxnard-pd": ("Oxnard Police Department", "CA", "local"),
    "ca-simi-valley-pd": ("Simi Valley Police Department", "CA", "local"),
    "ca-camarillo-pd": ("Camarillo Police Department", "CA", "local"),
    "fl-tampa-pd": ("Tampa Police Department", "FL", "local"),
    "tx-houston-pd": ("Houston Police Department", "TX", "local"),
    "tx-dallas-pd": ("Dallas Police Department", "TX", "local"),
    "az-yuma-pd": ("Yuma Police Department", "AZ", "local"),
    "il-chicago-pd": ("Chicago Police Department", "IL", "local"),
    "wa-seattle-pd": ("Seattle Police Department", "WA", "local"),
    "us-ice-ero": ("U.S. Immigration and Customs Enforcement ERO", "US", "federal"),
}


class TestRegistry:
    """A test deployment's agencies, `ids` of TEST_AGENCIES in the order given, and a signing
    key for each (`TestKeys` of `seed`): the registry CSV its workers load and the keys whose
    public half they verify with. `Deployment.create(registry=...)` writes both files."""

    __test__ = False  # a helper, not a test class

    def __init__(self, seed: bytes, ids: Iterable[str]) -> None:
        self.ids = list(ids)
        unknown = [agency_id for agency_id in self.ids if agency_id not in TEST_AGENCIES]
        if unknown:
            raise ValueError(f"not in TEST_AGENCIES: {', '.join(unknown)}")
        text = io.StringIO()
        rows = csv.writer(text, lineterminator="\n")
        rows.writerow(("agency_id", "name", "state", "kind"))
        rows.writerows((agency_id, *TEST_AGENCIES[agency_id]) for agency_id in self.ids)
        self.csv_text = text.getvalue()
        self.keys = TestKeys(seed, self.ids)


_last_ts = 0.0


def fresh_ts() -> str:
    """Now, strictly later than the last call: successive changes of one setting stay in order."""
    global _last_ts  # noqa: PLW0603  # one clock for the whole test process
    _last_ts = max(time.time(), _last_ts + 0.001)
    return format_ts(_last_ts)


def policy_change(
    owner: str,
    setting: str,
    value: Any,
    *,
    keys: TestKeys | None = None,
    signer: SigningKey | None = None,
    ts: str | None = None,
    change_id: str | None = None,
    reason: str = "test",
) -> dict[str, Any]:
    """A policy_change dated now (or `ts`), signed with `signer`, else with the owner's key
    of `keys` when given, else unsigned."""
    change: dict[str, Any] = {
        "type": "policy_change",
        "change_id": change_id or str(uuid.uuid4()),
        "ts": ts or fresh_ts(),
        "agency_id": owner,
        "setting": setting,
        "value": value,
        "actor": {"user_id": "admin-1", "agency_id": owner},
        "reason": reason,
        "ticket": "CHG-1",
    }
    if signer is None and keys is not None:
        signer = keys.for_agency(owner)
    return change if signer is None else signed(change, signer)


def agency_record(
    agency_id: str,
    name: str,
    state: str,
    kind: str,
    *,
    signer: SigningKey | None = None,
    ts: str | None = None,
) -> dict[str, Any]:
    """An agency record of the agencies topic, dated now (or `ts`), signed when given a key."""
    record = {"agency_id": agency_id, "name": name, "state": state, "kind": kind}
    record["ts"] = ts or fresh_ts()
    return record if signer is None else signed(record, signer)


def signed(record: dict[str, Any], signer: SigningKey) -> dict[str, Any]:
    """`record` (a policy_change or an agency record) with `key_id` and `signer`'s signature.

    Refuses nothing the key may not sign: tests sign with the wrong key on purpose.
    """
    kind = "policy_change" if record.get("type") == "policy_change" else "agency"
    out = {**record, "key_id": signer.key_id}
    out.pop("signature", None)
    out["signature"] = signer.signature(kind, out)
    return out


# --- Kafka ------------------------------------------------------------------------------------


def _encoded(key: Key, value: Any) -> tuple[bytes | None, bytes | None]:
    """A dict/list value JSON-encoded, bytes (and None, a tombstone) sent as they are."""
    raw_key = key.encode() if isinstance(key, str) else key
    raw = value if isinstance(value, bytes) or value is None else serde.dumps(value)
    return raw_key, raw


async def produce_to(
    bootstrap: str, items: Iterable[tuple[str, Key, Any]], **producer_options: Any
) -> list[tuple[int, int]]:
    """Send (topic, key, value) items in order; the (partition, offset) each was written at."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **producer_options)
    await producer.start()
    try:
        futures = []
        for topic, key, value in items:
            raw_key, raw = _encoded(key, value)
            futures.append(await producer.send(topic, raw, key=raw_key))
        return [(meta.partition, meta.offset) for meta in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


async def produce(
    bootstrap: str, topic: str, items: Iterable[tuple[Key, Any]], **producer_options: Any
) -> list[tuple[int, int]]:
    """Send (key, value) pairs to one topic in order (values encoded as `produce_to` does)."""
    return await produce_to(
        bootstrap, ((topic, key, value) for key, value in items), **producer_options
    )


class PacedProducer:
    """Sends (topic, key, value) items one at a time, `pace` seconds apart, each acknowledged
    before the next. A failed send is retried until `retry_for` seconds after the start, so a
    broker outage shorter than that loses nothing; `before[i]` is called just before the i-th
    item is sent (to start or stop a worker mid-stream)."""

    def __init__(
        self,
        bootstrap: str,
        items: Sequence[tuple[str, Key, Any]],
        pace: float,
        *,
        retry_for: float = 0.0,
        before: Mapping[int, Callable[[], object]] | None = None,
        **producer_options: Any,
    ) -> None:
        self.bootstrap, self.items, self.pace = bootstrap, items, pace
        self.retry_for = retry_for
        self.before = dict(before or {})
        self.producer_options = producer_options
        self.sent = 0
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    async def run(self) -> None:
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, **self.producer_options)
        await producer.start()
        deadline = time.monotonic() + self.retry_for
        try:
            for index, (topic, key, value) in enumerate(self.items):
                if index in self.before:
                    self.before[index]()
                raw_key, raw = _encoded(key, value)
                while True:
                    try:
                        await producer.send_and_wait(topic, raw, key=raw_key)
                        break
                    except KafkaError:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.5)
                self.sent += 1
                await asyncio.sleep(self.pace)
        finally:
            await producer.stop()

    def start(self) -> None:
        """Send from a background thread: `join` waits for it, `error` holds what stopped it."""

        def target() -> None:
            try:
                asyncio.run(self.run())
            except BaseException as exc:  # reported through `error`, not lost in the thread
                self.error = exc

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


async def collect(
    bootstrap: str,
    topics: Iterable[str],
    until: Callable[[Collected], bool],
    timeout: float = 60.0,
) -> Collected:
    """Read `topics` from the beginning until `until(collected)` holds or `timeout` passes.

    Values are JSON-decoded when they can be. Returns what was collected either way: the caller
    asserts on it, so a timeout shows what did arrive.
    """
    from aiokafka import AIOKafkaConsumer

    names = list(topics)
    consumer = AIOKafkaConsumer(
        *names,
        bootstrap_servers=bootstrap,
        group_id=f"sg-collect-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    got: Collected = {name: [] for name in names}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(got):
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for message in messages:
                    try:
                        value: Any = serde.loads(message.value) if message.value else None
                    except ValueError:
                        value = message.value
                    got[tp.topic].append((message.key, value))
    finally:
        await consumer.stop()
    return got


def uncommitted(
    bootstrap: str, group: str, partitions: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], tuple[int | None, int]]:
    """Input partitions whose committed offset in `group` is short of their end:
    {(topic, partition): (committed or None, end)}."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    tps = [TopicPartition(topic, partition) for topic, partition in partitions]

    async def go() -> dict[tuple[str, int], tuple[int | None, int]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await admin.start()
        await consumer.start()
        try:
            committed = await admin.list_consumer_group_offsets(group)
            ends = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
            await admin.close()
        done = {tp: meta.offset for tp, meta in committed.items()}
        return {
            (tp.topic, tp.partition): (done.get(tp), ends[tp])
            for tp in tps
            if (done.get(tp) or 0) < ends[tp]
        }

    return asyncio.run(go())


def verify_audit(bootstrap: str, prefix: str) -> subprocess.CompletedProcess[str]:
    """`streamguard verify-audit` on `prefix`'s audit topic, in a child process."""
    code = (
        "import sys; from streamguard.trail.verify import main_verify_audit as m; sys.exit(m([]))"
    )
    env = {"STREAMGUARD_BROKER": bootstrap, "STREAMGUARD_TOPIC_PREFIX": prefix, "PATH": ""}
    return subprocess.run(  # noqa: S603 - fixed argv: this interpreter and a constant
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run(coro: Any) -> Any:
    """Run a coroutine from synchronous code."""
    return asyncio.run(coro)


# --- a deployment: one topic prefix and its workers -------------------------------------------


def new_prefix(tag: str) -> str:
    """A topic prefix no other run on the same broker uses (so a fresh app id and group too)."""
    return f"{tag}{uuid.uuid4().hex[:8]}."


@dataclass
class Deployment:
    """A topic prefix on a broker with its contract topics created, and the workers started on
    it. They share one app id, hence one consumer group. Topics are named by role ("searches",
    "audit", ...), and what `collect` returns is keyed by role."""

    bootstrap: str
    prefix: str
    workdir: Path
    partitions: int = 2
    workers: list[WorkerProcess] = field(default_factory=list)
    # The registry CSV and KEYS.json every worker is given unless `add_worker` names others.
    agencies: Path | None = None
    keys: Path | None = None

    @classmethod
    def create(
        cls,
        bootstrap: str,
        workdir: Path,
        *,
        tag: str,
        partitions: int = 2,
        registry: TestRegistry | None = None,
    ) -> Deployment:
        """Topics on a fresh prefix, created before any worker starts: a worker subscribed to a
        missing topic notices it only at its next metadata refresh, minutes later. With a
        `registry`, its agencies.csv and keys.json are written in `workdir` once, for every
        worker (a file rewritten under a running worker would be reloaded half-written)."""
        prefix = new_prefix(tag)
        asyncio.run(create_topics(bootstrap, contract_topics(prefix), partitions))
        workdir.mkdir(parents=True, exist_ok=True)
        if registry is None:
            return cls(bootstrap, prefix, workdir, partitions)
        agencies = write_agencies(workdir, registry.csv_text)
        keys = write_keys(workdir, registry.keys)
        return cls(bootstrap, prefix, workdir, partitions, agencies=agencies, keys=keys)

    @property
    def group(self) -> str:
        return app_id(self.prefix)

    def topic(self, role: str) -> str:
        return self.prefix + role

    def add_worker(
        self,
        web_port: int,
        *,
        name: str = "worker",
        agencies: Path | None = None,
        keys: Path | None = None,
        start: bool = True,
        **settings: str,
    ) -> WorkerProcess:
        """A worker on this prefix (its data in `<name>-data`, its log in `<name>.log`),
        started unless told otherwise; `agencies` and `keys` default to the deployment's;
        `settings` are further STREAMGUARD_* values."""
        env = worker_env(
            self.bootstrap,
            self.prefix,
            self.workdir / f"{name}-data",
            agencies=self.agencies if agencies is None else agencies,
            keys=self.keys if keys is None else keys,
            web_port=web_port,
            partitions=self.partitions,
            **settings,
        )
        worker = WorkerProcess(env, self.workdir / f"{name}.log")
        self.workers.append(worker)
        if start:
            worker.start()
        return worker

    def stop(self) -> list[int]:
        """Stop every worker listed (gracefully); their exit codes, in order."""
        return [worker.stop() for worker in self.workers]

    def send(
        self, role: str, items: Iterable[tuple[Key, Any]], **producer_options: Any
    ) -> list[tuple[int, int]]:
        result: list[tuple[int, int]] = asyncio.run(
            produce(self.bootstrap, self.topic(role), items, **producer_options)
        )
        return result

    def send_mixed(
        self, items: Iterable[tuple[str, Key, Any]], **producer_options: Any
    ) -> list[tuple[int, int]]:
        """Send (role, key, value) items in order, whatever their topics."""
        topics = ((self.topic(role), key, value) for role, key, value in items)
        result: list[tuple[int, int]] = asyncio.run(
            produce_to(self.bootstrap, topics, **producer_options)
        )
        return result

    def collect(
        self, roles: Iterable[str], until: Callable[[Collected], bool], timeout: float = 60.0
    ) -> Collected:
        """`collect` on the topics of `roles`, keyed by role (for `until` too)."""

        def by_role(got: Collected) -> Collected:
            return {topic.removeprefix(self.prefix): records for topic, records in got.items()}

        topics = [self.topic(role) for role in roles]
        got = asyncio.run(collect(self.bootstrap, topics, lambda c: until(by_role(c)), timeout))
        return by_role(got)

    def uncommitted(
        self, roles: Iterable[str] = INPUT_ROLES
    ) -> dict[tuple[str, int], tuple[int | None, int]]:
        """`uncommitted` for the workers' group on every partition of the `roles` topics."""
        partitions = [(self.topic(r), p) for r in roles for p in range(self.partitions)]
        return uncommitted(self.bootstrap, self.group, partitions)

    def verify_audit(self) -> subprocess.CompletedProcess[str]:
        return verify_audit(self.bootstrap, self.prefix)

    def audit_records(self, timeout: float = 60.0) -> list[tuple[int, int, bytes]]:
        """(partition, offset, value) of every audit record, as `verify-audit` reads them."""
        from streamguard.trail.verify import read_audit

        return asyncio.run(read_audit(self.bootstrap, self.topic("audit"), timeout))


# --- a worker's input files and ports ---------------------------------------------------------


def write_agencies(directory: Path, csv_text: str) -> Path:
    """The registry CSV (STREAMGUARD_AGENCIES) with `csv_text`, as `agencies.csv`."""
    path = directory / "agencies.csv"
    path.write_text(csv_text, encoding="utf-8")
    return path


def write_keys(directory: Path, keys: TestKeys) -> Path:
    """The signing keys file (STREAMGUARD_KEYS), `keys.json`: the public keys of `keys`."""
    path = directory / "keys.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(keys.keys_json(), handle)
    return path


def port_is_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:`port` now (as the local broker checks)."""
    return not port_in_use(port)


def free_port(candidates: Iterable[int] | None = None) -> int:
    """The first free port of `candidates`, or one the system picks when none are given."""
    if candidates is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
            return port
    ports = list(candidates)
    found = next((port for port in ports if port_is_free(port)), None)
    if found is None:
        raise RuntimeError(f"no free port in {ports[0]}-{ports[-1]}" if ports else "no ports")
    return found


# --- a worker's /metrics ----------------------------------------------------------------------


def scrape(port: int) -> str:
    """The text of a worker's /metrics on `port` ("" while it does not answer)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text: str = reply.read().decode()
            return text
    except OSError:
        return ""


def _samples(page: str, name: str) -> Iterable[tuple[dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == name:
                yield sample.labels, sample.value


def metric_total(page: str, name: str, **labels: str) -> float:
    """Sum of the samples called `name` on a /metrics page that carry every label given."""
    return sum(
        value
        for found, value in _samples(page, name)
        if all(found.get(k) == v for k, v in labels.items())
    )


def decided_events(port: int, kinds: Iterable[str] | None = None) -> int:
    """Sum of `streamguard_events_total` (of `kinds`, else all) on a worker's /metrics; 0 while
    it does not answer."""
    wanted = None if kinds is None else set(kinds)
    total = sum(
        value
        for labels, value in _samples(scrape(port), "streamguard_events_total")
        if wanted is None or labels.get("kind") in wanted
    )
    return int(total)


def agency_searches(port: int, window: str) -> dict[str, int]:
    """`streamguard_agency_searches` of one window on a worker's /metrics, by agency ({} while
    it does not answer)."""
    return {
        labels["agency_id"]: int(value)
        for labels, value in _samples(scrape(port), "streamguard_agency_searches")
        if labels.get("window") == window
    }


def settled(port: int, rebalances: int = 1) -> bool:
    """The worker on `port` has started `rebalances` rebalances and is in none now (a rebalance
    includes its table recovery)."""
    page = scrape(port)
    return (
        metric_total(page, "streamguard_rebalances_total") >= rebalances
        and metric_total(page, "streamguard_rebalance_in_progress") == 0
    )


# --- bounded waits ----------------------------------------------------------------------------


def wait_for(
    probe: Callable[[], T],
    timeout: float,
    *,
    until: Callable[[T], object] = bool,
    interval: float = 0.5,
) -> T:
    """Call `probe` every `interval` seconds until `until(value)` holds or `timeout` passes.

    Returns the last value either way: the caller asserts on it, so a timeout shows what was
    last seen. A deadline on polling, never a claim about speed.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value) or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
