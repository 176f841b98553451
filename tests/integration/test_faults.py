"""Faults on a real broker: the broker restarted mid-stream, a flood of malformed and oversized
messages, and unreadable or missing keys and registry at start.

The broker-restart test runs its own broker (`start_broker` on a free port in 59093-59099) so
that stopping it cannot disturb other tests sharing the session broker.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streamguard import serde
from streamguard.exceptions import BrokerError
from streamguard.local.broker import start_broker, stop_broker
from streamguard.local.testing import (
    Collected,
    Deployment,
    PacedProducer,
    TestKeys,
    WorkerProcess,
    agency_ids,
    free_port,
    plate_read,
    policy_change,
    produce_to,
    run,
    search_request,
    write_agencies,
    write_keys,
)
from streamguard.stream.outputs import decision_id, raw_decision_id
from tests.helpers import Deploy, audited, decision_ids, event_id

AGENCIES = """agency_id,name,state,kind
ca-oxnard-pd,Oxnard Police Department,CA,local
ca-simi-valley-pd,Simi Valley Police Department,CA,local
tx-houston-pd,Houston Police Department,TX,local
"""
# One Ed25519 key per agency (and the registry's), derived from a seed.
KEYS = TestKeys(b"faults-secret-1", agency_ids(AGENCIES))
OWN_BROKER_PORTS = range(59093, 59100)
WEB_PORTS = {"restart": 6310, "flood": 6311, "nokeys": 6312, "unreadable": 6313}
TIMEOUT = 120.0
OUTPUTS = ("searches.approved", "reads.shared", "quarantine", "audit")
ID_FIELDS = {"search_request": "search_id", "plate_read": "read_id", "policy_change": "change_id"}


def _files(base: Path) -> tuple[Path, Path]:
    return write_agencies(base, AGENCIES), write_keys(base, KEYS)


def _start_worker(deployment: Deployment, base: Path, name: str) -> WorkerProcess:
    """A worker on `deployment` with the test agencies and keys."""
    agencies, keys = _files(base)
    return deployment.add_worker(WEB_PORTS[name], agencies=agencies, keys=keys)


def _collect_outputs(deployment: Deployment, done: Callable[[Collected], bool]) -> Collected:
    return deployment.collect(OUTPUTS, done, TIMEOUT)


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


# --- (a) broker stopped and restarted mid-stream ---------------------------------------------


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A broker of this test's own on a free port; stopped at the end whatever happens."""
    port = free_port(OWN_BROKER_PORTS)
    data_dir = tmp_path / "broker"
    try:
        start_broker(port, data_dir, timeout=120.0)
    except BrokerError as exc:
        pytest.fail(f"own broker did not start: {exc}")
    try:
        yield port, data_dir
    finally:
        stop_broker(port)


def test_broker_restart_mid_stream_loses_nothing(
    own_broker: tuple[int, Path], deploy: Deploy, tmp_path: Path
) -> None:
    """Broker restarted mid-stream: the worker recovers, decides every event, repeats agree."""
    port, data_dir = own_broker
    deployment = deploy("sgf", bootstrap=f"localhost:{port}")
    worker = _start_worker(deployment, tmp_path, "restart")
    items = _events(300)
    ids = {event_id(e) for _, _, e in items}
    # Long request timeout: aiokafka keeps retrying a batch through the outage.
    producer = PacedProducer(
        deployment.bootstrap,
        [(deployment.topic(role), key, event) for role, key, event in items],
        0.02,
        retry_for=TIMEOUT,
        request_timeout_ms=60_000,
        retry_backoff_ms=250,
    )
    try:
        producer.start()
        # Mid-stream: the first decisions are out and the producer is still sending.
        first = event_id(items[0][2])
        got = _collect_outputs(deployment, lambda c: first in audited(c["audit"]))
        assert first in audited(got["audit"]), worker.log_text()[-3000:]
        sent_before = producer.sent
        assert stop_broker(port)
        time.sleep(3.0)  # the broker stays down for a while; nothing is asserted on time
        assert worker.alive(), worker.log_text()[-3000:]
        start_broker(port, data_dir, timeout=120.0)
        producer.join(TIMEOUT)
        assert producer.error is None, repr(producer.error)
        assert sent_before < len(items)  # the outage did fall in the middle of the stream

        got = _collect_outputs(deployment, lambda c: ids <= audited(c["audit"]))
        assert worker.alive(), worker.log_text()[-3000:]
    finally:
        code = worker.stop()
    assert ids - audited(got["audit"]) == set(), worker.log_text()[-3000:]
    assert code == 0, worker.log_text()[-3000:]
    decisions: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
    for _, value in got["audit"]:
        decisions.setdefault(event_id(value), set()).add(
            (value["outcome"], tuple(sorted(value["codes"])))
        )
    kinds = {event_id(e): e["type"] for _, _, e in items}
    for eid, seen in decision_ids(got).items():
        assert {did for _, did in seen} == {decision_id(kinds[eid], eid)}, seen
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


def test_flood_of_malformed_and_oversized_is_quarantined(deploy: Deploy, tmp_path: Path) -> None:
    """Junk mixed into valid traffic is quarantined with its code; valid events decided right."""
    _check_flood(deploy, tmp_path, _flood())


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
    deploy: Deploy, tmp_path: Path, flood: Callable[[], list[tuple[str, bytes | None, str]]]
) -> None:
    """Junk whose quarantine copy cannot be written as is is still quarantined with its code."""
    _check_flood(deploy, tmp_path, flood())


def _check_flood(
    deploy: Deploy, tmp_path: Path, flood: list[tuple[str, bytes | None, str]]
) -> None:
    """Send `flood` interleaved with valid events; assert each is quarantined or decided."""
    deployment = deploy("sgf")
    prefix = deployment.prefix
    worker = _start_worker(deployment, tmp_path, "flood")
    valid = _events(60)
    items: list[tuple[str, str, bytes | None]] = []
    for i, (role, key, event) in enumerate(valid):
        items.append((prefix + role, key, serde.dumps(event)))
        if i < len(flood):  # interleaved: junk and valid share batches
            junk_role, raw, _ = flood[i]
            items.append((prefix + junk_role, "junk", raw))
    placed = run(produce_to(deployment.bootstrap, items, max_request_size=2 * 1024 * 1024))
    expected: dict[str, str] = {}  # decision id -> code, for every junk message
    for (topic, key, raw), (partition, offset) in zip(items, placed, strict=True):
        if key != "junk":
            continue
        want = next(c for r, v, c in flood if v == raw and topic == prefix + r)
        expected[_junk_decision_id(topic, partition, offset, raw)] = want
    valid_ids = {event_id(e) for _, _, e in valid}

    def done(c: Collected) -> bool:
        quarantined = {v.get("decision_id") for _, v in c["quarantine"] if isinstance(v, dict)}
        # A crashed agent or worker will decide nothing more: stop waiting, assert below.
        crashed = not worker.alive() or "Traceback" in worker.log_text()
        return crashed or (valid_ids <= audited(c["audit"]) and expected.keys() <= quarantined)

    try:
        got = _collect_outputs(deployment, done)
        alive = worker.alive()
    finally:
        code = worker.stop()
    log = worker.log_text()[-3000:]
    assert alive, log
    assert code == 0, log
    assert "Traceback" not in log, log
    quarantine = {v["decision_id"]: v for _, v in got["quarantine"] if isinstance(v, dict)}
    missing = {did: c for did, c in expected.items() if did not in quarantine}
    assert missing == {}, log
    for did, want in expected.items():
        assert [r["code"] for r in quarantine[did]["reasons"]] == [want], quarantine[did]
    audit = {v["event_id"]: v for _, v in got["audit"] if isinstance(v, dict)}
    for role, _, event in valid:
        record = audit[event_id(event)]
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
    readable = value.get(ID_FIELDS[kind]) if isinstance(value, dict) else None
    if isinstance(readable, str) and readable:
        return decision_id(kind, readable)
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
    deploy: Deploy, tmp_path: Path, setting: str, make: Any
) -> None:
    """Unreadable keys or agencies file: one-line error, non-zero exit, nothing decided."""
    agencies, keys = _files(tmp_path)
    paths = {"agencies": agencies, "keys": keys} | {setting: make(tmp_path)}
    deployment = deploy("sgf")
    waiting = search_request("ca-oxnard-pd", networks=["ca-oxnard-pd"])
    deployment.send("searches", [("ca-oxnard-pd", waiting)])
    worker = deployment.add_worker(
        WEB_PORTS["unreadable"], agencies=paths["agencies"], keys=paths["keys"]
    )
    code = worker.wait(60)
    lines = [line for line in worker.log_text().splitlines() if line.strip()]
    assert code != 0
    assert len(lines) == 1, lines
    assert lines[0].startswith("streamguard worker: error:"), lines
    assert str(paths[setting]) in lines[0]
    assert deployment.audit_records(30.0) == []


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_without_keys_every_policy_change_is_rejected(deploy: Deploy, tmp_path: Path) -> None:
    """No STREAMGUARD_KEYS: the worker runs, says so, and rejects even a well-signed change."""
    agencies, _ = _files(tmp_path)
    deployment = deploy("sgf")
    worker = deployment.add_worker(WEB_PORTS["nokeys"], agencies=agencies)
    signed = policy_change("ca-simi-valley-pd", "share_with", ["ca-oxnard-pd"], keys=KEYS)
    unsigned = policy_change("ca-simi-valley-pd", "share_with", ["ca-oxnard-pd"])
    try:
        deployment.send("policy", [("ca-simi-valley-pd", signed), ("ca-simi-valley-pd", unsigned)])
        ids = {signed["change_id"], unsigned["change_id"]}
        got = _collect_outputs(deployment, lambda c: ids <= audited(c["audit"]))
        # Sent after both changes were decided: it shows whether either took effect.
        search = search_request("ca-oxnard-pd", networks=["ca-simi-valley-pd"])
        deployment.send("searches", [("ca-oxnard-pd", search)])
        after = _collect_outputs(deployment, lambda c: search["search_id"] in audited(c["audit"]))
        alive = worker.alive()
    finally:
        code = worker.stop()
    log = worker.log_text()
    assert alive and code == 0, log[-3000:]
    assert "every policy change will be rejected" in log
    audit = {v["event_id"]: v for _, v in got["audit"] + after["audit"]}
    assert audit[signed["change_id"]]["outcome"] == "rejected"
    assert "INVALID_SIGNATURE" in audit[signed["change_id"]]["codes"]
    assert audit[unsigned["change_id"]]["outcome"] == "rejected"
    assert "UNSIGNED_CHANGE" in audit[unsigned["change_id"]]["codes"]
    quarantined = {v["event_id"] for _, v in got["quarantine"]}
    assert ids <= quarantined
    assert audit[search["search_id"]]["outcome"] == "denied"
    assert "NOT_SHARED" in audit[search["search_id"]]["codes"]
