"""Test support for the worker: a real worker subprocess, Kafka produce/collect helpers with
deadlines, signed policy changes. Used by StreamGuard's own integration tests and benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamguard import serde
from streamguard.signing import sign_change

__all__ = (
    "Collected",
    "WorkerProcess",
    "collect",
    "contract_topics",
    "create_topics",
    "decided_events",
    "plate_read",
    "policy_change",
    "produce",
    "search_request",
    "verify_audit",
    "worker_env",
)

Collected = dict[str, list[tuple[bytes | None, Any]]]


def worker_env(
    bootstrap: str,
    prefix: str,
    data_dir: Path,
    *,
    agencies: Path | None = None,
    keys: Path | None = None,
    web_port: int = 6100,
    partitions: int = 2,
    **extra: str,
) -> dict[str, str]:
    """Environment for `streamguard worker` on `bootstrap` with its own prefix and app id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")}
    env |= {
        "STREAMGUARD_BROKER": f"kafka://{bootstrap}",
        "STREAMGUARD_TOPIC_PREFIX": prefix,
        "STREAMGUARD_APP_ID": f"{prefix.rstrip('.')}-worker",
        "STREAMGUARD_DATA_DIR": str(data_dir),
        "STREAMGUARD_WEB_PORT": str(web_port),
        "STREAMGUARD_WEB_BIND": "127.0.0.1",
        "STREAMGUARD_PARTITIONS": str(partitions),
        "STREAMGUARD_PLATE_SALT": "test-salt-0123456789abcdef",
        "STREAMGUARD_LOG_LEVEL": "warning",
    }
    if agencies is not None:
        env["STREAMGUARD_AGENCIES"] = str(agencies)
    if keys is not None:
        env["STREAMGUARD_KEYS"] = str(keys)
    env |= {f"STREAMGUARD_{k.upper()}": v for k, v in extra.items()}
    return env


@dataclass
class WorkerProcess:
    """`python -m streamguard.worker` as a child process, stopped gracefully (SIGTERM)."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamguard.worker"], env=self.env,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait: a graceful stop commits offsets and flushes table changelogs."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self.proc = None
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    """Create topics that do not exist yet (a broker would auto-create them with its default
    partition count, which the worker refuses when it differs from STREAMGUARD_PARTITIONS)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


def contract_topics(prefix: str) -> list[str]:
    """Every topic the worker reads or writes under `prefix`."""
    names = ("searches", "reads", "policy", "agencies", "searches.approved", "reads.shared",
             "quarantine", "audit", "alerts")  # fmt: skip
    return [prefix + n for n in names]


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
        *names, bootstrap_servers=bootstrap, group_id=f"sg-collect-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False, metadata_max_age_ms=1000,
    )  # fmt: skip
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
    for match in re.finditer(r'^streamguard_events_total\{kind="([^"]*)"[^}]*\} ([0-9.e+]+)$',
                             text, re.MULTILINE):  # fmt: skip
        if wanted is None or match.group(1) in wanted:
            total += float(match.group(2))
    return int(total)


def verify_audit(bootstrap: str, prefix: str) -> subprocess.CompletedProcess[str]:
    """`streamguard verify-audit` on `prefix`'s audit topic, in a child process."""
    code = (
        "import sys; from streamguard.verify_audit import main_verify_audit as m; sys.exit(m([]))"
    )
    env = {"STREAMGUARD_BROKER": bootstrap, "STREAMGUARD_TOPIC_PREFIX": prefix, "PATH": ""}
    return subprocess.run(  # noqa: S603 - fixed argv: this interpreter and a constant
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def run(coro: Any) -> Any:
    """Run a coroutine from synchronous test code."""
    return asyncio.run(coro)


def search_request(
    requester: str, *, scope: str = "networks", networks: Iterable[str] = (),
    reason: str = "stolen vehicle 25-000123", ts: str = "2026-01-10T18:03:11Z",
    plate: str = "8ABC123", user_id: str = "u-1", case_number: str | None = "25-000123",
    search_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "type": "search_request", "search_id": search_id or str(uuid.uuid4()), "ts": ts,
        "requester": {"agency_id": requester, "user_id": user_id}, "reason": reason,
        "case_number": case_number, "offense_type": None, "search_type": "lookup",
        "query": {"plate": plate, "from": None, "to": None}, "scope": scope,
        "networks": list(networks),
    }  # fmt: skip


def plate_read(
    owner: str, share_to: Iterable[str], *, ts: str = "2026-01-10T18:03:11Z",
    plate: str = "8ABC123", read_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "type": "plate_read", "read_id": read_id or str(uuid.uuid4()), "ts": ts,
        "agency_id": owner, "camera_id": "cam-1", "plate": plate, "plate_state": "CA",
        "confidence": 0.9, "location": {"lat": 34.2, "lon": -119.2}, "hotlist_hit": False,
        "share_to": list(share_to),
    }  # fmt: skip


def policy_change(
    owner: str, setting: str, value: Any, *, keys: Mapping[str, bytes] | None = None,
    key_id: str = "k1", ts: str = "2026-01-10T18:00:00Z", change_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A policy_change, signed with `keys[key_id]` when keys are given, else unsigned."""
    change: dict[str, Any] = {
        "type": "policy_change", "change_id": change_id or str(uuid.uuid4()), "ts": ts,
        "agency_id": owner, "setting": setting, "value": value,
        "actor": {"user_id": "admin-1", "agency_id": owner}, "reason": "test", "ticket": "CHG-1",
    }  # fmt: skip
    if keys is not None:
        change["key_id"] = key_id
        change["signature"] = sign_change(change, keys[key_id])
    return change
