"""Faults on a real broker: the broker restarted mid-stream, a flood of malformed and oversized
messages, and unreadable or missing keys and registry at start.

The broker-restart test runs its own broker (`start_broker` on a free port in 59093-59099) so
that stopping it cannot disturb other tests sharing the session broker.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streamguard import serde
from streamguard.exceptions import BrokerError
from streamguard.local.broker import start_broker, stop_broker
from streamguard.local.testing import (
    Collected,
    WorkerProcess,
    collect,
    contract_topics,
    create_topics,
    plate_read,
    policy_change,
    produce,
    run,
    search_request,
    worker_env,
)
from streamguard.stream.outputs import decision_id, raw_decision_id
from streamguard.trail.verify import read_audit

AGENCIES = """agency_id,name,state,kind
ca-oxnard-pd,Oxnard Police Department,CA,local
ca-simi-valley-pd,Simi Valley Police Department,CA,local
tx-houston-pd,Houston Police Department,TX,local
"""
KEYS = {"k1": b"faults-secret-1"}
OWN_BROKER_PORTS = range(59093, 59100)
WEB_PORTS = {"restart": 6310, "flood": 6311, "nokeys": 6312, "unreadable": 6313}
TIMEOUT = 120.0
OUTPUTS = ("searches.approved", "reads.shared", "quarantine", "audit")
ID_FIELDS = {"search_request": "search_id", "plate_read": "read_id", "policy_change": "change_id"}


def _files(base: Path) -> tuple[Path, Path]:
    (base / "agencies.csv").write_text(AGENCIES, encoding="utf-8")
    (base / "keys.json").write_text(
        json.dumps({k: v.decode() for k, v in KEYS.items()}), encoding="utf-8"
    )
    return base / "agencies.csv", base / "keys.json"


def _start_worker(bootstrap: str, base: Path, name: str) -> tuple[str, WorkerProcess]:
    """Topics on a fresh prefix and a worker on them with the test agencies and keys."""
    agencies, keys = _files(base)
    prefix = f"sgf{uuid.uuid4().hex[:8]}."
    run(create_topics(bootstrap, contract_topics(prefix), 2))
    env = worker_env(
        bootstrap, prefix, base / "data", agencies=agencies, keys=keys, web_port=WEB_PORTS[name]
    )
    worker = WorkerProcess(env, base / "worker.log")
    worker.start()
    return prefix, worker


def _audited(got: Collected, prefix: str) -> set[str]:
    return {
        v["event_id"] for _, v in got[prefix + "audit"] if isinstance(v, dict) and v.get("event_id")
    }


def _collect_outputs(bootstrap: str, prefix: str, done: Any) -> Collected:
    return run(collect(bootstrap, [prefix + n for n in OUTPUTS], done, TIMEOUT))  # type: ignore[no-any-return]


def _events(n: int, minute0: int = 0) -> list[tuple[str, str, dict[str, Any]]]:
    """Valid searches and reads, one requester-minute each so no rate limit is ever reached."""
    items: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(n):
        ts = (
            f"2026-01-{10 + (minute0 + i) // 1440:02d}T{(minute0 + i) // 60 % 24:02d}:"
            f"{(minute0 + i) % 60:02d}:00Z"
        )
        if i % 3 == 2:
            read = plate_read("ca-simi-valley-pd", ["ca-oxnard-pd"], ts=ts)
            items.append(("reads", "ca-simi-valley-pd", read))
        else:
            requester = ("ca-oxnard-pd", "tx-houston-pd")[i % 2]
            search = search_request(requester, networks=["ca-oxnard-pd"], ts=ts)
            items.append(("searches", requester, search))
    return items


def _event_id(event: dict[str, Any]) -> str:
    return str(event[ID_FIELDS[event["type"]]])


# --- (a) broker stopped and restarted mid-stream ---------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A broker of this test's own on a free port; stopped at the end whatever happens."""
    port = next((p for p in OWN_BROKER_PORTS if _port_free(p)), None)
    if port is None:
        pytest.fail(f"no free port in {OWN_BROKER_PORTS} for the test's own broker")
    data_dir = tmp_path / "broker"
    try:
        start_broker(port, data_dir, timeout=120.0)
    except BrokerError as exc:
        pytest.fail(f"own broker did not start: {exc}")
    try:
        yield port, data_dir
    finally:
        stop_broker(port)


class PacedProducer(threading.Thread):
    """Sends events one by one (PACE apart) and rides out a broker outage: a send that fails is
    retried until it is acknowledged, so every event reaches the topic at least once."""

    PACE = 0.02

    def __init__(self, bootstrap: str, prefix: str, items: list[tuple[str, str, Any]]) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.prefix, self.items = bootstrap, prefix, items
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._go())
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    async def _go(self) -> None:
        # Long request timeout: aiokafka keeps retrying a batch through the outage.
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, request_timeout_ms=60_000, retry_backoff_ms=250
        )
        await producer.start()
        deadline = time.monotonic() + TIMEOUT
        try:
            for role, key, event in self.items:
                while True:
                    try:
                        await producer.send_and_wait(
                            self.prefix + role, serde.dumps(event), key=key.encode()
                        )
                        break
                    except KafkaError:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.5)
                self.sent += 1
                await asyncio.sleep(self.PACE)
        finally:
            await producer.stop()


def test_broker_restart_mid_stream_loses_nothing(
    own_broker: tuple[int, Path], tmp_path: Path
) -> None:
    """Broker restarted mid-stream: the worker recovers, decides every event, repeats agree."""
    port, data_dir = own_broker
    bootstrap = f"localhost:{port}"
    prefix, worker = _start_worker(bootstrap, tmp_path, "restart")
    items = _events(300)
    ids = {_event_id(e) for _, _, e in items}
    producer = PacedProducer(bootstrap, prefix, items)
    try:
        producer.start()
        # Mid-stream: the first decisions are out and the producer is still sending.
        first = _event_id(items[0][2])
        got = _collect_outputs(bootstrap, prefix, lambda c: first in _audited(c, prefix))
        assert first in _audited(got, prefix), worker.log_text()[-3000:]
        sent_before = producer.sent
        assert stop_broker(port)
        time.sleep(3.0)  # the broker stays down for a while; nothing is asserted on time
        assert worker.alive(), worker.log_text()[-3000:]
        start_broker(port, data_dir, timeout=120.0)
        producer.join(TIMEOUT)
        assert producer.error is None, repr(producer.error)
        assert sent_before < len(items)  # the outage did fall in the middle of the stream

        got = _collect_outputs(bootstrap, prefix, lambda c: ids <= _audited(c, prefix))
        assert worker.alive(), worker.log_text()[-3000:]
    finally:
        code = worker.stop()
    assert ids - _audited(got, prefix) == set(), worker.log_text()[-3000:]
    assert code == 0, worker.log_text()[-3000:]
    by_id: dict[str, set[tuple[str, str]]] = {}
    decisions: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
    for name in OUTPUTS:
        for _, value in got[prefix + name]:
            event_id = value.get("event_id") or value.get("search_id") or value.get("read_id")
            by_id.setdefault(event_id, set()).add((name, value["decision_id"]))
            if name == "audit":
                decisions.setdefault(event_id, set()).add(
                    (value["outcome"], tuple(sorted(value["codes"])))
                )
    kinds = {_event_id(e): e["type"] for _, _, e in items}
    for event_id, seen in by_id.items():
        assert {did for _, did in seen} == {decision_id(kinds[event_id], event_id)}, seen
    assert {k: v for k, v in decisions.items() if len(v) != 1} == {}


# --- (b) a flood of malformed and oversized messages ----------------------------------------


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


BIG = 900 * 1024


def _oversized_raw() -> list[tuple[str, bytes | None, str]]:
    """900 KB values that are not JSON objects: their quarantine copy (base64) exceeds 1 MB."""
    return [
        ("searches", bytes(range(256)) * (BIG // 256), "MALFORMED_EVENT"),  # binary junk
        ("reads", b"\xff\xfe" + b"\x00" * BIG, "MALFORMED_EVENT"),  # not UTF-8
        ("searches", serde.dumps("x" * BIG), "MALFORMED_EVENT"),  # JSON, a string
    ]


def _flood() -> list[tuple[str, bytes | None, str]]:
    """(role, raw value, expected code) of every other kind of bad input the contract names."""
    padding = "x" * BIG
    malformed: list[tuple[str, bytes | None]] = [
        ("searches", _nested(100_000)),  # deeper than any parser allows
        ("reads", b'{"type": "plate_read", "read_id": "\xff"}'),  # invalid UTF-8 in JSON
        ("searches", b"42"),
        ("searches", b"null"),
        ("reads", b"[1, 2, 3]"),
        ("searches", b'"search"'),
        ("policy", b"true"),
        ("searches", b""),
        ("reads", None),
        ("searches", b"{not json"),
        ("policy", b"\x00\x01\x02"),
    ]
    invalid: list[tuple[str, dict[str, Any]]] = [
        # 900 KB JSON objects with a readable id but missing required fields.
        (
            "searches",
            {"type": "search_request", "search_id": f"big-{uuid.uuid4()}", "padding": padding},
        ),
        ("reads", {"type": "plate_read", "read_id": f"big-{uuid.uuid4()}", "padding": padding}),
        # Nested 200 deep (parsable) in an event that is missing fields.
        (
            "searches",
            {
                "type": "search_request",
                "search_id": f"deep-{uuid.uuid4()}",
                "extra": json.loads(_nested(200)),
            },
        ),
        ("searches", {"type": "search_request", "search_id": 123}),  # ill-typed id
        ("searches", plate_read("ca-oxnard-pd", [])),  # a read on the searches topic
        ("searches", {**search_request("ca-oxnard-pd"), "scope": "galactic"}),
        ("policy", {"type": "policy_change", "change_id": f"pc-{uuid.uuid4()}"}),
    ]
    out: list[tuple[str, bytes | None, str]] = [(r, v, "MALFORMED_EVENT") for r, v in malformed]
    out += [(r, serde.dumps(v), "SCHEMA_INVALID") for r, v in invalid]
    return out


async def _produce_tracked(
    bootstrap: str, items: list[tuple[str, str, bytes | None]]
) -> list[tuple[int, int]]:
    """Send (topic, key, value) in order; (partition, offset) of each."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_request_size=2 * 1024 * 1024
    )
    await producer.start()
    try:
        futures = [await producer.send(t, v, key=k.encode()) for t, k, v in items]
        return [(m.partition, m.offset) for m in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


def test_flood_of_malformed_and_oversized_is_quarantined(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Junk mixed into valid traffic is quarantined with its code; valid events decided right."""
    _check_flood(kafka_bootstrap, tmp_path, _flood())


def _deeper_than_output() -> list[tuple[str, bytes | None, str]]:
    """Events nested 300 deep: orjson reads up to 1024 levels but writes only 254."""
    # Written by hand: the test's own serializer cannot write it either.
    deep = b'{"type": "search_request", "search_id": "deep-%s", "extra": %s}' % (
        uuid.uuid4().hex.encode(),
        _nested(300),
    )
    return [("searches", deep, "SCHEMA_INVALID")]


@pytest.mark.parametrize(
    "flood",
    [
        pytest.param(_oversized_raw, id="oversized-raw"),
        pytest.param(_deeper_than_output, id="nested-300"),
    ],
)
def test_unwritable_junk_is_quarantined(
    kafka_bootstrap: str, tmp_path: Path, flood: Callable[[], list[tuple[str, bytes | None, str]]]
) -> None:
    """Junk whose quarantine copy cannot be written as is is still quarantined with its code."""
    _check_flood(kafka_bootstrap, tmp_path, flood())


def _check_flood(
    kafka_bootstrap: str, tmp_path: Path, flood: list[tuple[str, bytes | None, str]]
) -> None:
    """Send `flood` interleaved with valid events; assert each is quarantined or decided."""
    prefix, worker = _start_worker(kafka_bootstrap, tmp_path, "flood")
    valid = _events(60)
    items: list[tuple[str, str, bytes | None]] = []
    for i, (role, key, event) in enumerate(valid):
        items.append((prefix + role, key, serde.dumps(event)))
        if i < len(flood):  # interleaved: junk and valid share batches
            junk_role, raw, _ = flood[i]
            items.append((prefix + junk_role, "junk", raw))
    placed = run(_produce_tracked(kafka_bootstrap, items))
    expected: dict[str, str] = {}  # decision id -> code, for every junk message
    for (topic, key, raw), (partition, offset) in zip(items, placed, strict=True):
        if key != "junk":
            continue
        want = next(c for r, v, c in flood if v == raw and topic == prefix + r)
        expected[_junk_decision_id(topic, partition, offset, raw)] = want
    valid_ids = {_event_id(e) for _, _, e in valid}

    def done(c: Collected) -> bool:
        quarantined = {
            v.get("decision_id") for _, v in c[prefix + "quarantine"] if isinstance(v, dict)
        }
        # A crashed agent or worker will decide nothing more: stop waiting, assert below.
        crashed = not worker.alive() or "Traceback" in worker.log_text()
        return crashed or (valid_ids <= _audited(c, prefix) and expected.keys() <= quarantined)

    try:
        got = _collect_outputs(kafka_bootstrap, prefix, done)
        alive = worker.alive()
    finally:
        code = worker.stop()
    log = worker.log_text()[-3000:]
    assert alive, log
    assert code == 0, log
    assert "Traceback" not in log, log
    quarantine = {v["decision_id"]: v for _, v in got[prefix + "quarantine"] if isinstance(v, dict)}
    missing = {did: c for did, c in expected.items() if did not in quarantine}
    assert missing == {}, log
    for did, want in expected.items():
        assert [r["code"] for r in quarantine[did]["reasons"]] == [want], quarantine[did]
    audit = {v["event_id"]: v for _, v in got[prefix + "audit"] if isinstance(v, dict)}
    for role, _, event in valid:
        record = audit[_event_id(event)]
        if role == "reads":
            assert record["outcome"] == "denied"  # simi valley shares with nobody
        elif event["requester"]["agency_id"] == "ca-oxnard-pd":
            assert (record["outcome"], record["codes"]) == ("approved", [])
        else:
            assert record["outcome"] == "denied"
            assert {"NOT_SHARED", "OUT_OF_STATE_RECIPIENT"} <= set(record["codes"])


def _junk_decision_id(topic: str, partition: int, offset: int, raw: bytes | None) -> str:
    """The decision id the contract gives: from the id field of the topic's event type when it
    is readable (a read sent to the searches topic has none), else from the position."""
    try:
        value = serde.loads(raw or b"")
    except ValueError:
        value = None
    kind = {"searches": "search_request", "reads": "plate_read", "policy": "policy_change"}[
        topic.rsplit(".", 1)[1]
    ]
    event_id = value.get(ID_FIELDS[kind]) if isinstance(value, dict) else None
    if isinstance(event_id, str) and event_id:
        return decision_id(kind, event_id)
    return raw_decision_id(topic, partition, offset)


# --- (c) keys or registry unavailable at start ----------------------------------------------


@pytest.mark.parametrize(
    ("setting", "make"),
    [
        pytest.param("keys", lambda base: base / "missing-keys.json", id="keys-missing"),
        pytest.param("keys", lambda base: base, id="keys-directory"),
        pytest.param("agencies", lambda base: base / "missing.csv", id="agencies-missing"),
        pytest.param(
            "agencies",
            lambda base: _write(base / "junk.csv", b"\x00\xff\xfe junk\n"),
            id="agencies-binary",
        ),
    ],
)
def test_unreadable_keys_or_registry_stop_the_worker_first(
    kafka_bootstrap: str, tmp_path: Path, setting: str, make: Any
) -> None:
    """Unreadable keys or agencies file: one-line error, non-zero exit, nothing decided."""
    agencies, keys = _files(tmp_path)
    paths = {"agencies": agencies, "keys": keys} | {setting: make(tmp_path)}
    prefix = f"sgf{uuid.uuid4().hex[:8]}."
    run(create_topics(kafka_bootstrap, contract_topics(prefix), 2))
    waiting = search_request("ca-oxnard-pd", networks=["ca-oxnard-pd"])
    run(produce(kafka_bootstrap, prefix + "searches", [("ca-oxnard-pd", waiting)]))
    env = worker_env(
        kafka_bootstrap,
        prefix,
        tmp_path / "data",
        agencies=paths["agencies"],
        keys=paths["keys"],
        web_port=WEB_PORTS["unreadable"],
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    assert worker.proc is not None
    code = worker.proc.wait(60)
    lines = [line for line in worker.log_text().splitlines() if line.strip()]
    assert code != 0
    assert len(lines) == 1, lines
    assert lines[0].startswith("streamguard worker: error:"), lines
    assert str(paths[setting]) in lines[0]
    assert run(read_audit(kafka_bootstrap, prefix + "audit", 30.0)) == []


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_without_keys_every_policy_change_is_rejected(kafka_bootstrap: str, tmp_path: Path) -> None:
    """No STREAMGUARD_KEYS: the worker runs, says so, and rejects even a well-signed change."""
    agencies, _ = _files(tmp_path)
    prefix = f"sgf{uuid.uuid4().hex[:8]}."
    run(create_topics(kafka_bootstrap, contract_topics(prefix), 2))
    env = worker_env(
        kafka_bootstrap, prefix, tmp_path / "data", agencies=agencies, web_port=WEB_PORTS["nokeys"]
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    signed = policy_change("ca-simi-valley-pd", "share_with", ["ca-oxnard-pd"], keys=KEYS)
    unsigned = policy_change("ca-simi-valley-pd", "share_with", ["ca-oxnard-pd"])
    try:
        run(
            produce(
                kafka_bootstrap,
                prefix + "policy",
                [("ca-simi-valley-pd", signed), ("ca-simi-valley-pd", unsigned)],
            )
        )
        ids = {signed["change_id"], unsigned["change_id"]}
        got = _collect_outputs(kafka_bootstrap, prefix, lambda c: ids <= _audited(c, prefix))
        # Sent after both changes were decided: it shows whether either took effect.
        search = search_request("ca-oxnard-pd", networks=["ca-simi-valley-pd"])
        run(produce(kafka_bootstrap, prefix + "searches", [("ca-oxnard-pd", search)]))
        after = _collect_outputs(
            kafka_bootstrap, prefix, lambda c: search["search_id"] in _audited(c, prefix)
        )
        alive = worker.alive()
    finally:
        code = worker.stop()
    log = worker.log_text()
    assert alive and code == 0, log[-3000:]
    assert "every policy change will be rejected" in log
    audit = {v["event_id"]: v for _, v in got[prefix + "audit"] + after[prefix + "audit"]}
    assert audit[signed["change_id"]]["outcome"] == "rejected"
    assert "INVALID_SIGNATURE" in audit[signed["change_id"]]["codes"]
    assert audit[unsigned["change_id"]]["outcome"] == "rejected"
    assert "UNSIGNED_CHANGE" in audit[unsigned["change_id"]]["codes"]
    quarantined = {v["event_id"] for _, v in got[prefix + "quarantine"]}
    assert ids <= quarantined
    assert audit[search["search_id"]]["outcome"] == "denied"
    assert "NOT_SHARED" in audit[search["search_id"]]["codes"]
