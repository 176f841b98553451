"""The worker's faust consumer: a short fetch wait, and revoked partitions committed before
their acked offsets are forgotten (`streamguard.worker.faust_fixes.consumer`)."""

from __future__ import annotations

import types
from collections import defaultdict
from collections.abc import Set
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from faust.transport.consumer import Consumer
from faust.types import TP
from prometheus_client import CollectorRegistry

from streamguard.core.models import Agency
from streamguard.core.statutes import load_statutes
from streamguard.settings import WorkerSettings
from streamguard.worker.app import StreamguardWorker, build_worker
from streamguard.worker.faust_fixes.consumer import FETCH_MAX_WAIT_MS, CommitOnRevokeConsumer
from streamguard.worker.faust_fixes.sources import FaustChangedError
from streamguard.worker.metrics import StreamguardMetrics

KEPT, REVOKED = TP("sg.searches", 0), TP("sg.searches", 1)


def _build(tmp_path: Path) -> StreamguardWorker:
    settings = WorkerSettings(
        app_id=f"fc-{tmp_path.name}", store="memory://", data_dir=tmp_path, partitions=1
    )
    return build_worker(
        settings,
        statutes=load_statutes(),
        file_agencies=(Agency("a", "A", "CA", "local"),),
        keys={"k1": b"s"},
        salt=b"salt",
        metrics=StreamguardMetrics.create(CollectorRegistry()),
        web_enabled=False,
    )


async def test_the_aiokafka_consumer_waits_briefly_for_fetches(tmp_path: Path) -> None:
    built = _build(tmp_path)
    consumer = built.app.consumer
    assert isinstance(consumer, CommitOnRevokeConsumer)
    # What faust's consumer thread starts (not started here: no broker is contacted).
    kafka = consumer._thread._create_worker_consumer(built.app.transport)
    assert isinstance(kafka, AIOKafkaConsumer)
    assert kafka._fetch_max_wait_ms == FETCH_MAX_WAIT_MS < 1500
    await kafka.stop()


class Revoking:
    """What `on_partitions_revoked` uses of faust's consumer: per-partition offsets, the app's
    revoke callback (which drains the agents, acking what they decided) and the commit."""

    def __init__(self, *, stopping: bool = False) -> None:
        self.diag = types.SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda f: None)
        self.app = types.SimpleNamespace(should_stop=stopping)
        self._active_partitions = {KEPT, REVOKED}
        self._paused_partitions = {REVOKED}
        self._acked: defaultdict[TP, list[int]] = defaultdict(list, {KEPT: [3], REVOKED: [7]})
        self._acked_index = {KEPT: {3}, REVOKED: {7}}
        self._gap = {KEPT: [], REVOKED: []}
        self._read_offset = {KEPT: 3, REVOKED: 8}
        self._committed_offset = {KEPT: 2, REVOKED: 5}
        self.steps: list[tuple[str, Any]] = []

    async def _on_partitions_revoked(self, revoked: Set[TP]) -> None:
        self.steps.append(("draining", {tp: list(self._acked.get(tp, [])) for tp in revoked}))
        self._acked[REVOKED].append(8)  # the agent's last batch, acked while it drains

    async def maybe_wait_for_commit_to_finish(self) -> bool:
        self.steps.append(("waited", None))
        return False

    async def force_commit(self, tps: Set[TP]) -> bool:
        self.steps.append(("committed", {tp: list(self._acked[tp]) for tp in tps}))
        return True

    _commit_revoked = CommitOnRevokeConsumer._commit_revoked


async def test_revoked_partitions_are_committed_with_what_the_agents_acked_then_forgotten() -> None:
    consumer = Revoking()
    await CommitOnRevokeConsumer.on_partitions_revoked(consumer, {REVOKED})  # type: ignore[arg-type]
    assert consumer.steps == [
        ("draining", {REVOKED: [7]}),
        ("waited", None),
        ("committed", {REVOKED: [7, 8]}),
    ]
    assert consumer._active_partitions == {KEPT} and consumer._paused_partitions == set()
    for state in (consumer._acked, consumer._acked_index, consumer._gap):
        assert set(state) == {KEPT}
    assert consumer._read_offset == {KEPT: 3} and consumer._committed_offset == {KEPT: 2}


async def test_a_stopping_worker_revokes_without_committing() -> None:
    consumer = Revoking(stopping=True)
    await CommitOnRevokeConsumer.on_partitions_revoked(consumer, {REVOKED})  # type: ignore[arg-type]
    assert consumer.steps == [("draining", {REVOKED: [7]})]
    assert REVOKED not in consumer._acked


async def test_faust_forgets_the_acks_before_the_agents_finish() -> None:
    """The fault the rewrite is for, shown with faust's own method: offset 7, decided and
    acked but not yet committed, is forgotten before the agents drain, so the next owner
    decides it again."""
    consumer = Revoking()
    consumer.app._start_span_from_rebalancing = lambda name: _NoSpan()
    await Consumer.on_partitions_revoked(consumer, {REVOKED})  # type: ignore[arg-type]
    assert consumer.steps == [("draining", {REVOKED: []})], "faust keeps the acks now"


class _NoSpan:
    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_the_revoke_rewrite_stops_the_worker_when_faust_changes_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The rewrite replaces faust's method: a faust whose revoke changed is refused at start."""

    async def on_partitions_revoked(self: Any, revoked: Set[TP]) -> None:
        await self._on_partitions_revoked(revoked)  # "upstream's new version"

    monkeypatch.setattr(Consumer, "on_partitions_revoked", on_partitions_revoked)
    with pytest.raises(FaustChangedError) as caught:
        _build(tmp_path)
    assert "faust.transport.drivers.aiokafka:Consumer.on_partitions_revoked (consumer)" in str(
        caught.value
    )
