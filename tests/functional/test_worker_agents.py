"""Worker agents under `agent.test_context()`: no broker, memory store, outputs captured.

Follows docs/faust-fixes.md ("Testing without a broker"): session-scoped loop (pyproject), the
worker built inside the running loop, delivery's send step replaced by a capture (a real
producer would try to bootstrap from Kafka).
"""

from __future__ import annotations

import asyncio
import base64
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from faust.transport.producer import Producer
from faust.types import TP, RecordMetadata
from prometheus_client import CollectorRegistry

from streamguard import serde
from streamguard.core.models import Agency
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import format_ts
from streamguard.local.testing import plate_read, policy_change, search_request
from streamguard.settings import WorkerSettings
from streamguard.stream.types import BatchResult
from streamguard.worker.app import StreamguardWorker, build_worker
from streamguard.worker.metrics import StreamguardMetrics
from tests.helpers import RecordingSink

AGENCIES = (
    Agency("ca-ventura-county-so", "Ventura County SO", "CA", "county"),
    Agency("ca-oxnard-pd", "Oxnard PD", "CA", "local"),
    Agency("tx-houston-pd", "Houston PD", "TX", "local"),
)


class MemoryProducer(Producer):
    """Accepts every send at once: table changelogs need a producer (docs/faust-fixes.md)."""

    def __init__(self, transport: Any) -> None:
        super().__init__(transport)
        self.sent: dict[str, int] = {}

    async def send(
        self,
        topic: str,
        key: Any,
        value: Any,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        **_: Any,
    ) -> asyncio.Future[Any]:
        offset = self.sent.get(topic, 0)
        self.sent[topic] = offset + 1
        part = partition or 0
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(RecordMetadata(topic, part, TP(topic, part), offset, timestamp, 0))
        return future

    async def send_and_wait(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self.send(*args, **kwargs))

    def key_partition(self, topic: str, key: bytes) -> TP:
        return TP(topic, 0)

    async def create_topic(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def flush(self) -> None:
        return None


class Captured:
    def __init__(self) -> None:
        self.results: list[BatchResult] = []

    def by_role(self, role: str) -> list[dict[str, Any]]:
        return [o.value for r in self.results for o in r.messages if o.role == role]

    def audit(self) -> list[dict[str, Any]]:
        return [serde.loads(raw) for r in self.results for _, raw in r.audit]


@pytest.fixture
async def worker(tmp_path: Path) -> tuple[StreamguardWorker, Captured]:
    """A worker app with a memory store whose deliveries are captured, built in the loop."""
    settings = WorkerSettings(
        app_id=f"ft-{tmp_path.name}",
        store="memory://",
        data_dir=tmp_path,
        partitions=1,
        batch_window_ms=10,
        rate_limit_per_minute=2,
    )
    built = build_worker(
        settings,
        statutes=load_statutes(),
        file_agencies=AGENCIES,
        keys={"k1": b"s"},
        salt=b"functional-test-salt",
        metrics=StreamguardMetrics.create(CollectorRegistry()),
        web_enabled=False,
    )
    captured = Captured()

    async def deliver(results: Sequence[BatchResult], writes: Sequence[Any]) -> dict[str, int]:
        captured.results.extend(results)
        return {}

    async def ready() -> None:
        return None

    built.delivery.send = deliver  # type: ignore[method-assign]
    built._ensure_ready = ready  # type: ignore[method-assign]
    built.app.producer = MemoryProducer(built.app.transport)
    await built.app.producer.maybe_start()  # started inside the running loop
    return built, captured


def _agent(worker: StreamguardWorker, role: str) -> Any:
    return worker.app.agents[f"streamguard.{role}"]


async def test_search_agent_routes_and_audits(worker: tuple[StreamguardWorker, Captured]) -> None:
    """Raw bytes in: an approved search goes to the approved role and gets audit seq 1."""
    app, captured = worker
    search = search_request("ca-oxnard-pd", networks=["ca-oxnard-pd"])
    async with _agent(app, "searches").test_context() as agent:
        await agent.put(serde.dumps(search), key=b"ca-oxnard-pd")
    [approved] = captured.by_role("approved")
    assert approved["search_id"] == search["search_id"]
    [record] = captured.audit()
    assert (record["seq"], record["outcome"], record["chain"]) == (1, "approved", "searches-0")


async def test_a_message_redelivered_to_the_same_worker_is_not_decided_again(
    worker: tuple[StreamguardWorker, Captured],
) -> None:
    """faust can hand a worker the same offset twice right after a rebalance (it resumes
    fetching before it seeks to the committed offsets): the copy is skipped, the next offset
    is decided."""
    app, captured = worker
    first, second = (search_request("ca-oxnard-pd", networks=["ca-oxnard-pd"]) for _ in "ab")
    async with _agent(app, "searches").test_context() as agent:
        await agent.put(serde.dumps(first), key=b"ca-oxnard-pd")
        agent.sent_offset -= 1  # the same message again, at the same offset
        await agent.put(serde.dumps(first), key=b"ca-oxnard-pd")
        await agent.put(serde.dumps(second), key=b"ca-oxnard-pd")
    audited = [r["event_id"] for r in captured.audit()]
    assert audited == [first["search_id"], second["search_id"]]
    assert [a["search_id"] for a in captured.by_role("approved")] == audited


async def test_a_batch_counts_as_sending_until_its_acknowledgements(
    worker: tuple[StreamguardWorker, Captured],
) -> None:
    """Other agents keep filling their batches while one waits for its acknowledgements
    (`Delivery.sending`): counted from its send to its end, also when the send fails."""
    delivery = worker[0].delivery
    seen: list[int] = []

    async def send(results: Sequence[BatchResult], writes: Sequence[Any]) -> dict[str, int]:
        seen.append(delivery.sending)
        if len(seen) == 2:
            raise RuntimeError("not acknowledged")
        return {}

    delivery.send = send  # type: ignore[method-assign]
    await delivery.deliver([], [], None)
    assert (seen, delivery.sending) == ([1], 0)
    with pytest.raises(RuntimeError):
        await delivery.deliver([], [], None)
    assert (seen, delivery.sending) == ([1, 1], 0)


async def test_garbage_is_quarantined_not_crashing(
    worker: tuple[StreamguardWorker, Captured],
) -> None:
    """Non-JSON bytes become a MALFORMED_EVENT quarantine record; the next event is decided."""
    app, captured = worker
    good = search_request("ca-oxnard-pd", networks=["ca-oxnard-pd"])
    async with _agent(app, "searches").test_context() as agent:
        await agent.put(b"\x00\xff garbage", key=b"k")
        await agent.put(serde.dumps(good), key=b"ca-oxnard-pd")
    [q] = captured.by_role("quarantine")
    assert q["reasons"][0]["code"] == "MALFORMED_EVENT"
    assert base64.b64decode(q["original"]["raw_base64"]) == b"\x00\xff garbage"
    assert [a["outcome"] for a in captured.audit()] == ["malformed", "approved"]
    assert [a["seq"] for a in captured.audit()] == [1, 2]


async def test_rejected_change_is_alerted_and_never_applied(
    worker: tuple[StreamguardWorker, Captured],
) -> None:
    """An unsigned change is quarantined and alerted; reads stay unshared afterwards."""
    app, captured = worker
    change = policy_change("ca-ventura-county-so", "share_with", ["ca-oxnard-pd"])
    async with _agent(app, "policy").test_context() as agent:
        await agent.put(serde.dumps(change), key=b"ca-ventura-county-so")
    [alert] = captured.by_role("alerts")
    assert (alert["kind"], alert["agency_id"]) == ("policy_rejected", "ca-ventura-county-so")
    read = plate_read("ca-ventura-county-so", ["ca-oxnard-pd"])
    async with _agent(app, "reads").test_context() as agent:
        await agent.put(serde.dumps(read), key=b"ca-ventura-county-so")
    assert captured.by_role("shared") == []
    assert captured.audit()[-1]["outcome"] == "denied"


async def test_rate_limit_uses_event_time(worker: tuple[StreamguardWorker, Captured]) -> None:
    """With a limit of 2 per minute, the 3rd search in one event-time minute is rate limited,
    while a search in the next minute is not."""
    app, captured = worker
    ts = "2026-02-01T10:00:{:02d}Z"
    searches = [
        search_request("tx-houston-pd", networks=["tx-houston-pd"], ts=ts.format(i))
        for i in range(3)
    ]
    searches.append(
        search_request("tx-houston-pd", networks=["tx-houston-pd"], ts="2026-02-01T10:01:00Z")
    )
    async with _agent(app, "searches").test_context() as agent:
        for search in searches:
            await agent.put(serde.dumps(search), key=b"tx-houston-pd")
    outcomes = {a["event_id"]: a for a in captured.audit()}
    decided = [outcomes[s["search_id"]] for s in searches]
    assert [d["outcome"] for d in decided] == ["approved", "approved", "denied", "approved"]
    assert "RATE_LIMIT_EXCEEDED" in decided[2]["codes"]
    assert [a["kind"] for a in captured.by_role("alerts")] == ["search_rate"]


def test_last_batch_of_a_burst_reaches_the_gauge() -> None:
    """The per-batch gauge throttle holds a batch back; the pending publish (the app's 1 s
    timer) then shows it without any further traffic."""
    from streamguard.stream.processor import BatchProcessor
    from streamguard.stream.tables import build_state
    from streamguard.stream.types import InMessage

    sink = RecordingSink()
    clock = [1000.0]
    proc = BatchProcessor(
        WorkerSettings(rate_limit_per_minute=0),
        build_state(load_statutes(), AGENCIES, (), (), 0),
        {},
        b"salt-salt-salt-salt",
        sink,
        lambda: clock[0],
    )
    counters: dict[str, int] = {}
    heads: dict[str, Any] = {}
    for offset in range(3):  # three batches within the same second
        # Dated at the worker's clock: a search from the future is SCHEMA_INVALID.
        search = search_request("tx-houston-pd", networks=["tx-houston-pd"], ts=format_ts(clock[0]))
        message = InMessage("searches", "s", 0, offset, b"tx-houston-pd", serde.dumps(search))
        result = proc.process([message], now=clock[0], counters=counters, heads=heads)
        counters.update(result.counters)
    assert sink.gauges["1h"] == {"tx-houston-pd": 1}  # later batches throttled
    clock[0] += 1.0
    assert proc.publish_pending_gauges(clock[0]) is True
    assert sink.gauges["1h"] == {"tx-houston-pd": 3}
    assert proc.publish_pending_gauges(clock[0] + 1.0) is False  # nothing new: no republish


async def test_direct_changelog_writes_use_faust_encoding(
    worker: tuple[StreamguardWorker, Captured],
) -> None:
    """Counter and head changelog records the worker sends itself are byte-identical to what
    faust's table would send, so faust's recovery restores them."""
    from streamguard.worker.delivery import TableWrite
    from streamguard.worker.faust_fixes.stores import table_store
    from streamguard.worker.stores import CachedStore

    app, _ = worker
    for table, key, value in (
        (app.tables["counters"], "0|searches|1m|1700000000|tx-houston-pd", 7),
        (
            app.tables["audit_heads"],
            "searches-0",
            {"chain": "searches-0", "seq": 3, "hash": "ab" * 32, "offset": 12},
        ),
    ):
        write = TableWrite(CachedStore(table_store(table)), 0, key, value)
        topic = table.changelog_topic
        assert write.topic == topic.get_topic_name()
        assert write.key_bytes == topic.prepare_key(key, None)[0]
        assert write.value_bytes == topic.prepare_value(value, None)[0]


class _Event:
    """What faust's stores read of the current event."""

    def __init__(self, partition: int) -> None:
        self.message = types.SimpleNamespace(partition=partition)


async def test_acknowledged_counter_records_are_what_faust_reads_from_rocksdb(
    tmp_path: Path,
) -> None:
    """The worker writes its acknowledged counter records into faust's rocksdb store itself
    (`faust_fixes.stores`): faust's own reads see them, a delete removes the key, and the last
    changelog offset is what recovery resumes after."""
    from streamguard.worker.delivery import TableWrite
    from streamguard.worker.faust_fixes.context import as_current

    built = build_worker(
        WorkerSettings(app_id=f"fr-{tmp_path.name}", store="rocksdb://", data_dir=tmp_path),
        statutes=load_statutes(),
        file_agencies=AGENCIES,
        keys={},
        salt=b"functional-test-salt",
        metrics=StreamguardMetrics.create(CollectorRegistry()),
        web_enabled=False,
    )
    store = built.counters["counters"]
    kept, gone = "3|searches|1m|1700000000|tx-houston-pd", "3|searches|1m|1699999940|tx-houston-pd"
    writes = [TableWrite(store, 3, gone, 4), TableWrite(store, 3, kept, 7)]
    writes.append(TableWrite(store, 3, gone, None))
    for offset, write in enumerate(writes, start=40):
        write.offset = offset
    built.delivery.apply(writes, {3: _Event(3)})
    data = built.tables["counters"].data
    assert type(data).__module__ == "faust.stores.rocksdb"
    with as_current(_Event(3)):
        assert data.get(kept) == 7
        assert data.get(gone) is None
    assert data.persisted_offset(TP(store.store.changelog_topic, 3)) == 42
    assert (store.get(kept), store.get(gone)) == (7, None)  # the worker's cache agrees
