"""Scale-out on a real broker: two workers in one consumer group over 4-partition topics decide
exactly what one worker decides, while a worker joins and another leaves mid-stream.

The input is built so that the decisions depend on table state that has to move with the
partitions: searches per requester and minute pass the rate limit across the three phases (the
per-minute counter must be recovered from its changelog by whichever worker takes the partition
over), and a signed share_with applied before the traffic must be seen by a worker that joins
later (GlobalTable recovery).
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import murmur2

from streamguard.local.testing import (
    INPUT_ROLES,
    Collected,
    Deployment,
    PacedProducer,
    TestRegistry,
    WorkerProcess,
    metric_total,
    plate_read,
    policy_change,
    run,
    scrape,
    search_request,
    settled,
    wait_for,
)
from streamguard.trail.verify import verify_records
from tests.helpers import event_id

REGISTRY = TestRegistry(
    b"scale-secret-1",
    [
        "ca-ventura-county-so",
        "ca-oxnard-pd",
        "ca-simi-valley-pd",
        "ca-camarillo-pd",
        "tx-houston-pd",
        "tx-dallas-pd",
        "il-chicago-pd",
        "wa-seattle-pd",
        "us-ice-ero",
    ],
)
KEYS = REGISTRY.keys
AGENCY_IDS = REGISTRY.ids  # in registry order: the seeded traffic draws from it
PARTITIONS = 4
RATE_LIMIT = 4  # per requester and minute; ~6 searches per requester-minute cross it
PHASE = 80  # events per phase; three phases
WEB_PORTS = (6300, 6301, 6302)  # reference worker, first and second scaled worker
TIMEOUT = 120.0
PACE = 0.1  # seconds between events sent while a worker joins or leaves
REASONS = (
    "stolen vehicle 10851 VC case 25-000123",
    "ICE detainer request",
    "investigation",
    "robbery 211 PC",
    "",
)

Decisions = dict[str, tuple[str, tuple[str, ...], str]]


def _traffic() -> list[tuple[str, str, dict[str, Any]]]:
    """(role, key, event) for three phases, seeded; searches spread over four minutes."""
    rng = random.Random(20260110)
    out: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(3 * PHASE):
        # Same minutes in every phase: a requester's per-minute count spans the phases.
        ts = f"2026-01-10T10:0{i % 4}:{i % 60:02d}Z"
        event_id = str(uuid.UUID(int=rng.getrandbits(128)))
        if i % 10 == 0:
            # Shared only through CHANGE's share_with: read decisions depend on it too.
            partners = ["ca-oxnard-pd", "ca-camarillo-pd"]
            read = plate_read("ca-ventura-county-so", partners, ts=ts, read_id=event_id)
            out.append(("reads", "ca-ventura-county-so", read))
        elif rng.random() < 0.75:
            requester = rng.choice(AGENCY_IDS)
            # Its own network is always reachable: some searches are approved.
            networks = [requester] if rng.random() < 0.4 else rng.sample(AGENCY_IDS, 2)
            search = search_request(
                requester,
                networks=networks,
                reason=rng.choice(REASONS),
                ts=ts,
                search_id=event_id,
                user_id=f"u-{i % 7}",
            )
            out.append(("searches", requester, search))
        else:
            owner = rng.choice(AGENCY_IDS)
            read = plate_read(owner, rng.sample(AGENCY_IDS, 2), ts=ts, read_id=event_id)
            out.append(("reads", owner, read))
    return out


TRAFFIC = _traffic()
# Lets a CA requester in a partner network: decisions differ if a worker missed the change.
CHANGE = policy_change(
    "ca-ventura-county-so",
    "share_with",
    ["ca-oxnard-pd", "ca-camarillo-pd"],
    keys=KEYS,
    change_id="6d1f8a52-2a43-4c1e-9d7e-000000000001",
)


def _ids(items: list[tuple[str, str, dict[str, Any]]]) -> set[str]:
    return {str(event_id(event)) for _, _, event in items}


def _partition(key: str) -> int:
    # aiokafka's default partitioner (murmur2 of the key, like the Java client).
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS


def _decided(port: int) -> float:
    """Events the worker on `port` decided (0 while it does not answer)."""
    return metric_total(scrape(port), "streamguard_events_total")


def _wait_settled(port: int, rebalances: int, worker: WorkerProcess) -> None:
    """Bounded wait until the worker has started `rebalances` rebalances and finished them."""
    done = wait_for(
        lambda: settled(port, rebalances),
        TIMEOUT,
        until=lambda ok: ok or not worker.alive(),
        interval=0.2,
    )
    if done:
        return
    pytest.fail(
        f"worker on {port} did not settle after {rebalances} rebalance(s):\n"
        + worker.log_text()[-3000:]
    )


class Run:
    """One deployment (one topic prefix, so one app id and consumer group) with its workers."""

    def __init__(self, bootstrap: str, base: Path, name: str) -> None:
        self.deployment = Deployment.create(
            bootstrap, base / name, tag="sgs", partitions=PARTITIONS, registry=REGISTRY
        )

    @property
    def workers(self) -> list[WorkerProcess]:
        return self.deployment.workers

    def worker(self, index: int, port: int) -> WorkerProcess:
        # Same prefix, hence the same STREAMGUARD_APP_ID: one consumer group.
        return self.deployment.add_worker(
            port,
            name=f"worker-{index}",
            rate_limit_per_minute=str(RATE_LIMIT),
        )

    def send(self, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        for role in ("policy", "searches", "reads"):
            chunk = [(key, event) for r, key, event in items if r == role]
            if chunk:
                self.deployment.send(role, chunk)

    def first_phase(self, index: int, port: int) -> WorkerProcess:
        """Start a worker, apply CHANGE, then decide phase 1 (the start every run shares)."""
        worker = self.worker(index, port)
        self.send([("policy", "ca-ventura-county-so", CHANGE)])
        self.wait_decided({CHANGE["change_id"]})
        self.send(TRAFFIC[:PHASE])
        self.wait_decided(_ids(TRAFFIC[:PHASE]))
        return worker

    def send_paced(
        self, items: list[tuple[str, str, dict[str, Any]]], at: int, action: Callable[[], object]
    ) -> None:
        """Send one event every PACE seconds, in order, calling `action` after the `at`-th."""
        topics = [(self.deployment.topic(role), key, event) for role, key, event in items]
        run(PacedProducer(self.deployment.bootstrap, topics, PACE, before={at: action}).run())

    def wait_committed(self) -> None:
        """Bounded wait until the group has committed every input offset (a quiet point)."""
        behind = wait_for(
            lambda: self.deployment.uncommitted(INPUT_ROLES), TIMEOUT, until=lambda b: not b
        )
        assert behind == {}, f"offsets not committed in {TIMEOUT:.0f} s: {behind}"

    def wait_decided(self, ids: set[str]) -> Collected:
        def done(c: Collected) -> bool:
            # The outputs too: they can arrive after the audit record of the same batch.
            owed, routed = _owed(c), _routed(c)
            return ids <= owed["audit"] and all(owed[n] <= routed[n] for n in routed)

        roles = ("audit", "searches.approved", "reads.shared", "quarantine")
        got = self.deployment.collect(roles, done, TIMEOUT)
        if not done(got):
            logs = "\n".join(w.log_text()[-2000:] for w in self.workers)
            pytest.fail(
                f"{len(ids - _decisions(got).keys())} of {len(ids)} "
                f"events not decided in {TIMEOUT:.0f} s:\n{logs}"
            )
        return got

    def stop(self) -> None:
        codes = self.deployment.stop()
        assert codes == [0] * len(codes), [w.log_text()[-2000:] for w in self.workers]


def _decisions(got: Collected) -> Decisions:
    """event id -> (outcome, codes, decision_id) from the audit; a replayed decision must agree."""
    out: Decisions = {}
    for _, record in got["audit"]:
        if not isinstance(record, dict) or record.get("event_id") is None:
            continue
        decision = (record["outcome"], tuple(sorted(record["codes"])), record["decision_id"])
        previous = out.setdefault(record["event_id"], decision)
        assert previous == decision, (
            f"event {record['event_id']} decided twice differently: "
            + json.dumps(
                [
                    r
                    for _, r in got["audit"]
                    if isinstance(r, dict) and r.get("event_id") == record["event_id"]
                ]
            )
        )
    return out


def _owed(got: Collected) -> dict[str, set[str]]:
    """Event ids audited, and the output topics their outcomes must reach (docs/contract.md §3)."""
    routes = {
        ("search_request", "approved"): ("searches.approved",),
        ("search_request", "partial"): ("searches.approved", "quarantine"),
        ("plate_read", "shared"): ("reads.shared",),
        ("plate_read", "partial"): ("reads.shared", "quarantine"),
    }
    owed: dict[str, set[str]] = {
        "audit": set(),
        "searches.approved": set(),
        "reads.shared": set(),
        "quarantine": set(),
    }
    for _, record in got["audit"]:
        if not isinstance(record, dict) or record.get("event_id") is None:
            continue
        owed["audit"].add(record["event_id"])
        outcome = record["outcome"]
        default = ("quarantine",) if outcome in ("denied", "rejected") else ()
        for name in routes.get((record["kind"], outcome), default):
            owed[name].add(record["event_id"])
    return owed


def _routed(got: Collected) -> dict[str, set[str]]:
    """Which event ids reached each output topic (approved, shared, quarantine)."""
    fields = {"searches.approved": "search_id", "reads.shared": "read_id", "quarantine": "event_id"}
    return {
        name: {str(v.get(field)) for _, v in got[name] if isinstance(v, dict)}
        for name, field in fields.items()
    }


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scale")


@pytest.fixture(scope="module")
def reference(kafka_bootstrap: str, base: Path) -> Iterator[tuple[Decisions, dict[str, set[str]]]]:
    """Decisions of one worker over the whole input, policy change first."""
    one = Run(kafka_bootstrap, base, "one")
    try:
        one.first_phase(0, WEB_PORTS[0])
        one.send(TRAFFIC[PHASE:])
        got = one.wait_decided(_ids(TRAFFIC))
    finally:
        one.stop()
    yield _decisions(got), _routed(got)


def test_traffic_reaches_every_partition() -> None:
    """Every phase has searches in all 4 partitions, so a joining worker must take some over."""
    for phase in range(3):
        chunk = TRAFFIC[phase * PHASE : (phase + 1) * PHASE]
        assert {_partition(key) for role, key, _ in chunk if role == "searches"} == set(
            range(PARTITIONS)
        )


def test_reference_exercises_table_state(
    reference: tuple[Decisions, dict[str, set[str]]],
) -> None:
    """One worker's decisions include rate-limited searches and the applied share_with."""
    decisions, _ = reference
    assert decisions[CHANGE["change_id"]][0] == "applied"
    assert any("RATE_LIMIT_EXCEEDED" in codes for _, codes, _ in decisions.values())
    assert {outcome for outcome, _, _ in decisions.values()} >= {
        "approved",
        "partial",
        "denied",
        "shared",
    }


def _compare(run_: Run, got: Collected, reference: tuple[Decisions, dict[str, set[str]]]) -> None:
    expected, expected_routes = reference
    decisions = _decisions(got)
    differing = {k: (v, decisions.get(k)) for k, v in expected.items() if decisions.get(k) != v}
    assert differing == {}
    assert _routed(got) == expected_routes
    report = verify_records(run_.deployment.audit_records(60.0))
    assert report.broken is None, report.broken


def test_handover_at_quiet_points_decides_like_one(
    kafka_bootstrap: str,
    base: Path,
    reference: tuple[Decisions, dict[str, set[str]]],
) -> None:
    """B joins, then A leaves, at quiet points: every decision equals one worker's."""
    two = Run(kafka_bootstrap, base, "quiet")
    try:
        first = two.first_phase(1, WEB_PORTS[1])
        two.wait_committed()

        second = two.worker(2, WEB_PORTS[2])
        _wait_settled(WEB_PORTS[2], 1, second)  # B assigned and its tables recovered
        _wait_settled(WEB_PORTS[1], 2, first)  # A gave partitions up and settled again
        two.send(TRAFFIC[PHASE : 2 * PHASE])
        two.wait_decided(_ids(TRAFFIC[: 2 * PHASE]))
        decided_by_second = _decided(WEB_PORTS[2])
        assert decided_by_second > 0, "the joining worker decided nothing"
        two.wait_committed()

        assert first.stop() == 0, first.log_text()[-3000:]
        two.workers.remove(first)
        _wait_settled(WEB_PORTS[2], 2, second)  # B took A's partitions over
        two.send(TRAFFIC[2 * PHASE :])
        got = two.wait_decided(_ids(TRAFFIC))
        assert _decided(WEB_PORTS[2]) > decided_by_second
    finally:
        two.stop()
    _compare(two, got, reference)


def test_join_and_leave_mid_stream_decide_like_one(
    kafka_bootstrap: str,
    base: Path,
    reference: tuple[Decisions, dict[str, set[str]]],
) -> None:
    """B joins, then A leaves, while events arrive: every decision equals one worker's, and
    no event is decided twice."""
    two = Run(kafka_bootstrap, base, "stream")
    try:
        first = two.first_phase(1, WEB_PORTS[1])

        # B starts after the 10th event of phase 2 and joins while the rest keeps arriving.
        joined: list[WorkerProcess] = []
        two.send_paced(
            TRAFFIC[PHASE : 2 * PHASE], 10, lambda: joined.append(two.worker(2, WEB_PORTS[2]))
        )
        _wait_settled(WEB_PORTS[2], 1, joined[0])
        two.wait_decided(_ids(TRAFFIC[: 2 * PHASE]))

        # A is stopped (gracefully) after the 10th event of phase 3, the rest still arriving.
        stopping = threading.Thread(target=first.stop)
        two.send_paced(TRAFFIC[2 * PHASE :], 10, stopping.start)
        stopping.join(90)
        two.workers.remove(first)
        got = two.wait_decided(_ids(TRAFFIC))
        assert _decided(WEB_PORTS[2]) > 0
    finally:
        two.stop()
    _compare(two, got, reference)
    # A graceful join or leave replays nothing: the decided offsets of revoked partitions are
    # committed before they move (streamguard.worker.faust_fixes.consumer), and a message
    # faust hands the same worker twice is decided once.
    copies = Counter(
        r.get("event_id")
        for _, r in got["audit"]
        if isinstance(r, dict) and r.get("event_id") is not None
    )
    assert [e for e, n in copies.items() if n > 1] == []
