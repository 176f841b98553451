"""Test support for the worker: Kafka produce/collect helpers with deadlines, event builders,
signed policy changes; re-exports the worker child process and topic helpers the tests use.
Used by StreamGuard's own integration tests and benchmarks, never by the product itself.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from streamguard import serde
from streamguard.core.signing import sign_change
from streamguard.local.child import WorkerProcess, worker_env
from streamguard.worker.topics import contract_topics, create_topics

__all__ = (
    "Collected",
    "WorkerProcess",
    "agency_searches",
    "collect",
    "contract_topics",
    "create_topics",
    "decided_events",
    "plate_read",
    "policy_change",
    "produce",
    "search_request",
    "uncommitted",
    "verify_audit",
    "worker_env",
)

Collected = dict[str, list[tuple[bytes | None, Any]]]


async def produce(
    bootstrap: str, topic: str, items: Iterable[tuple[bytes | str | None, Any]]
) -> None:
    """Send (key, value) pairs in order; a dict/list value is JSON-encoded, bytes sent as is."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for key, value in items:
            raw_key = key.encode() if isinstance(key, str) else key
            raw = value if isinstance(value, bytes) or value is None else serde.dumps(value)
            await producer.send(topic, raw, key=raw_key)
        await producer.flush()
    finally:
        await producer.stop()


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


def decided_events(port: int, kinds: Iterable[str] | None = None) -> int:
    """Sum of `streamguard_events_total` on a worker's /metrics (0 while it does not answer)."""
    import re
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return 0
    wanted = None if kinds is None else set(kinds)
    total = 0.0
    for match in re.finditer(
        r'^streamguard_events_total\{kind="([^"]*)"[^}]*\} ([0-9.e+]+)$', text, re.MULTILINE
    ):
        if wanted is None or match.group(1) in wanted:
            total += float(match.group(2))
    return int(total)


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


def agency_searches(port: int, window: str) -> dict[str, int]:
    """`streamguard_agency_searches` of one window on a worker's /metrics, by agency ({} while
    it does not answer)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    return {
        sample.labels["agency_id"]: int(sample.value)
        for family in text_string_to_metric_families(text)
        if family.name == "streamguard_agency_searches"
        for sample in family.samples
        if sample.labels.get("window") == window
    }


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
    """Run a coroutine from synchronous test code."""
    return asyncio.run(coro)


def search_request(
    requester: str,
    *,
    scope: str = "networks",
    networks: Iterable[str] = (),
    reason: str = "stolen vehicle 25-000123",
    ts: str = "2026-01-10T18:03:11Z",
    plate: str = "8ABC123",
    user_id: str = "u-1",
    case_number: str | None = "25-000123",
    search_id: str | None = None,
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
        "query": {"plate": plate, "from": None, "to": None},
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


def policy_change(
    owner: str,
    setting: str,
    value: Any,
    *,
    keys: Mapping[str, bytes] | None = None,
    key_id: str = "k1",
    ts: str = "2026-01-10T18:00:00Z",
    change_id: str | None = None,
) -> dict[str, Any]:
    """A policy_change, signed with `keys[key_id]` when keys are given, else unsigned."""
    change: dict[str, Any] = {
        "type": "policy_change",
        "change_id": change_id or str(uuid.uuid4()),
        "ts": ts,
        "agency_id": owner,
        "setting": setting,
        "value": value,
        "actor": {"user_id": "admin-1", "agency_id": owner},
        "reason": "test",
        "ticket": "CHG-1",
    }
    if keys is not None:
        change["key_id"] = key_id
        change["signature"] = sign_change(change, keys[key_id])
    return change
