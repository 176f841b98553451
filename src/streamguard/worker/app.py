"""Faust wiring: topics, tables and agents around `BatchProcessor`.

The agents hand each batch to `StreamguardWorker.run_batch`, which decides it with the
processor and hands the results to `streamguard.worker.delivery` (deliver, then commit). Chain
heads are `streamguard.worker.heads`, store access `streamguard.worker.stores`, and every use
of faust's private API `streamguard.worker.faust_fixes`.

Design notes (see docs/streaming.md for the whole picture):

* Agents take raw bytes (`value_serializer="raw"`) and decode with orjson in the processor, so a
  message that is not JSON becomes a quarantine record instead of a deserialization crash.
* Batches come from `faust_fixes.batches.take_batches` (faust's `take_events` without its
  per-event coroutine, sleep and ack; one ack per batch): events, not values, because a batch
  can mix partitions, and faust's tables and stores take "the partition" of every read and
  write from the current event (rocksdb keeps one database per partition, the changelog is
  partitioned like the input). Each partition's slice of a batch is therefore processed and
  recorded with one of its own events set as faust's current event
  (`faust_fixes.context.as_current`).
* Counters are plain tables keyed `partition|metric|window|start|agency`, not faust windowed
  tables: faust's windowed `current()` ignores event time, its expiry runs on the wall clock
  (a replay of old events closes every window at once), `relative_to_field` needs a faust Record
  (we have raw bytes) and a hopping window costs a changelog write per overlapping window. Our
  keys are aggregated per batch (one write per key per batch) and expired by event-time
  watermark (`streamguard.stream.windows`).
* Registry, owner settings and their revision counters are GlobalTables: every worker sees every
  policy change, whichever worker verified it. So is the replay memory of control records
  (`control-decided`, `control-applied`). Decision agents rebuild their immutable
  PolicyState only when the sum of the revision counters moves.
* concurrency=1 on every agent (faust #606: concurrency > 1 can commit past unprocessed
  offsets); throughput comes from partitions and batching.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import faust

from streamguard.core.keys import Key
from streamguard.core.models import Agency
from streamguard.core.statutes import StatuteBook
from streamguard.settings import WorkerSettings
from streamguard.stream.processor import BatchProcessor
from streamguard.stream.tables import TableReplayMemory, build_state
from streamguard.stream.types import BatchResult, InMessage, MetricsSink
from streamguard.trail.tail import AuditTail
from streamguard.worker.checkpoints import Transparency, install_transparency
from streamguard.worker.delivery import Delivery
from streamguard.worker.faust_fixes import create_app
from streamguard.worker.faust_fixes.batches import take_batches
from streamguard.worker.faust_fixes.context import as_current
from streamguard.worker.faust_fixes.stores import table_store
from streamguard.worker.heads import ChainHeads
from streamguard.worker.keys import KeyRing
from streamguard.worker.purges import install_purges
from streamguard.worker.stores import CachedStore

__all__ = ("INPUT_ROLES", "OUTPUT_ROLES", "StreamguardWorker", "build_worker")

log = logging.getLogger("streamguard.worker")

INPUT_ROLES: Final = ("searches", "reads", "policy", "agencies", "purges")
OUTPUT_ROLES: Final = {
    "approved": "searches.approved",
    "shared": "reads.shared",
    "quarantine": "quarantine",
    "audit": "audit",
    "alerts": "alerts",
    "checkpoints": "checkpoints",
}
# Tables whose counters the processor reads and the worker writes through its own changelog
# records (`streamguard.worker.delivery`).
COUNTER_TABLES: Final = ("counters", "owner_counters")
# EX_SOFTWARE: the worker stops without committing offsets it could not deliver results for.
_EXIT_UNDELIVERED: Final = 70
_CHANGELOG_BUFFER: Final = 20_000
_GC_THRESHOLDS: Final = (50_000, 20, 20)


def _fatal_exit(message: str) -> None:
    log.critical("%s; stopping without committing so that the events are decided again", message)
    logging.shutdown()
    os._exit(_EXIT_UNDELIVERED)


@dataclass
class StreamguardWorker:
    """The faust app plus what its agents share. Build with `build_worker`."""

    settings: WorkerSettings
    app: faust.App
    statutes: StatuteBook
    file_agencies: tuple[Agency, ...]
    keys: Mapping[str, Key]
    salt: bytes
    metrics: MetricsSink
    topics: dict[str, str]  # role -> topic name
    tables: dict[str, Any]  # name -> faust table
    clock: Callable[[], float] = time.time
    on_undeliverable: Callable[[str], None] = _fatal_exit
    processors: dict[str, BatchProcessor] = field(default_factory=dict)
    counters: dict[str, CachedStore] = field(init=False)  # COUNTER_TABLES -> their stores
    heads: ChainHeads = field(init=False)
    delivery: Delivery = field(init=False)
    transparency: Transparency | None = None  # checkpoints of the audit chains (if keyed)
    _ready: bool = False
    _ready_lock: asyncio.Lock | None = None
    _built: set[str] = field(default_factory=set)  # processors with a snapshot from the tables
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _seeded: set[str] = field(default_factory=set)  # processors that saw this assignment's counters
    _roles: dict[str, str] = field(default_factory=dict)  # topic -> role, see `role_of`

    def __post_init__(self) -> None:
        self.counters = {
            name: CachedStore(table_store(self.tables[name])) for name in COUNTER_TABLES
        }
        self.heads = ChainHeads(table_store(self.tables["audit_heads"]), self._undeliverable)
        self.delivery = Delivery(
            lambda: self.app.producer, self.topics, self.tables, self.heads, self._undeliverable
        )

    def _undeliverable(self, message: str) -> None:
        # Looked up when called: `on_undeliverable` may be replaced after the worker is built.
        if self.transparency is not None:
            self.transparency.halt()  # never sign over records that may not be stored
        self.on_undeliverable(message)

    def role_of(self, topic: str) -> str:
        # Called a few times per event: the role found last time, if `topics` still says so.
        role = self._roles.get(topic)
        if role is not None and self.topics.get(role) == topic:
            return role
        for role, name in self.topics.items():
            if name == topic:
                self._roles[topic] = role
                return role
        return topic

    def processor(self, name: str) -> BatchProcessor:
        proc = self.processors.get(name)
        if proc is None:
            state = build_state(self.statutes, self.file_agencies, (), (), 0)
            proc = BatchProcessor(
                self.settings,
                state,
                self.keys,
                self.salt,
                self.metrics,
                self.clock,
                replay=TableReplayMemory(
                    self.tables["control_decided"], self.tables["control_applied"]
                ),
            )
            self.processors[name] = proc
        return proc

    def publish_gauges(self) -> None:
        """Publish gauge counts that the per-batch throttle held back (run by a 1 s timer)."""
        now = self.clock()
        for proc in self.processors.values():
            proc.publish_pending_gauges(now)

    def forget_assignment(self) -> None:
        """After any rebalance: the partitions (and so chains and counters) this worker owns
        may have changed, and another worker may have appended to a chain this one knew."""
        self.heads.forget()
        if self.transparency is not None:
            self.transparency.forget()
        for store in self.counters.values():
            store.forget()
        self._seeded.clear()

    # --- batch plumbing ----------------------------------------------------------------------

    async def _ensure_ready(self) -> None:
        if self._ready:
            return
        if self._ready_lock is None:
            self._ready_lock = asyncio.Lock()
        async with self._ready_lock:
            if self._ready:  # another agent got here first while we waited for the lock
                return  # type: ignore[unreachable]  # mypy does not see the await in between
            # Table changelog writes queue here; faust's default of 100 throttles every batch
            # (faust #173). Set inside the running loop: the producer binds to it.
            self.app.producer.buffer.max_messages = _CHANGELOG_BUFFER
            for role in OUTPUT_ROLES:
                await self.app.topic(self.topics[role]).maybe_declare()
            self._check_partitions()
            if self.heads.audit_tail is None:
                self.heads.audit_tail = AuditTail(
                    self.settings.bootstrap_servers,
                    self.topics["audit"],
                    self.settings.kafka_client_options(),
                )
            # Everything built so far (modules, app, tables, statutes) lives as long as the
            # process: keep the cyclic GC from walking it again on every collection.
            gc.collect()
            gc.freeze()
            # A batch allocates hundreds of thousands of short-lived containers (parsed events,
            # output dicts, futures) that reference counting frees; at the default threshold of
            # 700 the cyclic GC ran ~100 young collections a second for little, and took 15 % of
            # the worker's CPU under a backlog (measured with gc.callbacks). Real cycles are
            # still collected, just in larger, rarer passes.
            gc.set_threshold(*_GC_THRESHOLDS)
            self._ready = True

    def _check_partitions(self) -> None:
        consumer = self.app.consumer
        for role in (*INPUT_ROLES, "attempts"):
            found = consumer.topic_partitions(self.topics[role])
            # 0 means aiokafka has no metadata for the topic yet (just created), not a mismatch.
            if found and found != self.settings.partitions:
                # Tables are partitioned like the inputs; a mismatch would file state under
                # partitions no worker restores, so refuse to decide anything.
                self.on_undeliverable(
                    f"topic {self.topics[role]} has {found} partitions but "
                    f"STREAMGUARD_PARTITIONS is {self.settings.partitions}"
                )

    def refresh(self, name: str) -> BatchProcessor:
        """The processor `name`, its PolicyState rebuilt if any revision counter moved."""
        proc = self.processor(name)
        revisions = {str(k): int(v) for k, v in self.tables["policy_meta"].items()}
        total = sum(revisions.values())
        if name in self._built and total == proc.state.revision:
            return proc
        proc.state = build_state(
            self.statutes,
            self.file_agencies,
            self.tables["registry"].items(),
            self.tables["owner_settings"].items(),
            total,
        )
        proc.set_revisions(revisions)
        self._built.add(name)
        return proc

    async def run_batch(
        self, name: str, events: Sequence[Any], counters: str | None
    ) -> BatchResult:
        """Decide one batch of faust events, deliver the results, then record state.

        `counters`: the counter table (`COUNTER_TABLES`) the processor `name` counts in.
        """
        await self._ensure_ready()
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:  # two agents (policy, agencies) share the "policy" processor
            return await self._run_locked(name, events, counters)

    async def _run_locked(
        self, name: str, events: Sequence[Any], counters: str | None
    ) -> BatchResult:
        events = self.delivery.delivered.fresh(events)
        if not events:
            return BatchResult()
        proc = self.refresh(name)
        store = self.counters[counters] if counters is not None else None
        if store is not None and name not in self._seeded:
            # Once per assignment: the partitions (and so the counters) this worker owns change.
            proc.seed_counters(list(store.store.items()))
            self._seeded.add(name)
        by_partition: dict[int, list[Any]] = {}
        for event in events:
            by_partition.setdefault(event.message.partition, []).append(event)
        heads = await self.heads.for_batch(
            {
                f"{self.role_of(e.message.topic)}-{e.message.partition}": e
                for e in events
                if self.role_of(e.message.topic) != "attempts"
            }
        )
        now = self.clock()
        # The store, not the table: reads need no changelog bookkeeping, and the processor
        # reads each counter key at most once per batch.
        reads: Mapping[str, Any] = store if store is not None else {}
        results: list[tuple[Any, BatchResult]] = []
        for group in by_partition.values():
            batch = [
                InMessage(
                    self.role_of(e.message.topic),
                    e.message.topic,
                    e.message.partition,
                    e.message.offset,
                    e.message.key,
                    e.message.value,
                )
                for e in group
            ]
            with as_current(group[0]):
                result = proc.process(batch, now=now, counters=reads, heads=heads)
            results.append((group[0], result))
        await self.delivery.deliver(events, results, store)
        if self.transparency is not None:
            await self.transparency.delivered(a for _, r in results for a in r.audit)
        merged = BatchResult()
        for _, result in results:
            merged.messages.extend(result.messages)
            merged.audit.extend(result.audit)
        return merged


def _app_options(settings: WorkerSettings, web_enabled: bool) -> dict[str, Any]:
    return {
        "broker": settings.broker,
        "broker_credentials": settings.faust_credentials(),
        "store": settings.store,
        "datadir": str(settings.data_dir),
        "web_enabled": web_enabled,
        "web_port": settings.web_port,
        "web_bind": settings.web_bind,
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication,
        "processing_guarantee": "at_least_once",
        "broker_commit_interval": settings.commit_interval_ms / 1000.0,
        # A third of the session timeout at most, as Kafka advises, so two missed heartbeats
        # are not yet a lost member; faust's defaults are 60 s and 3 s.
        "broker_session_timeout": float(settings.session_timeout_seconds),
        "broker_heartbeat_interval": min(3.0, settings.session_timeout_seconds / 3),
        "consumer_auto_offset_reset": "earliest",
        "key_serializer": "raw",
        "value_serializer": "raw",
        "autodiscover": False,
        # Tables are read on every batch; a standby replica would double changelog reads on a
        # one-worker deployment for no gain. Operators scaling out can raise it in code.
        "table_standby_replicas": 0,
        # Outputs go out in bursts of a whole batch: larger produce batches mean fewer
        # requests per batch (the default of 16 KiB held about 15 of our messages).
        "producer_max_batch_size": 1024 * 1024,
        "producer_max_request_size": 4 * 1024 * 1024,
        # Enough buffered input to fill a batch while the last one is decided.
        "stream_buffer_maxsize": max(4096, 4 * settings.batch_size),
    }


def _tables(app: faust.App, partitions: int) -> dict[str, Any]:
    # The app's serializers are raw (agents decode themselves); table state is JSON.
    schema: Any = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")

    def table(name: str, default: Any, *, is_global: bool = False) -> Any:
        make = app.GlobalTable if is_global else app.Table
        return make(name, default=default, partitions=partitions, schema=schema)

    return {
        "counters": table("counters", int),
        "owner_counters": table("owner-counters", int),
        "audit_heads": table("audit-heads", None),
        "registry": table("registry", None, is_global=True),
        "owner_settings": table("owner-settings", None, is_global=True),
        "policy_meta": table("policy-meta", int, is_global=True),
        # The replay memory of control records (docs/contract.md section 2a): global, so every
        # worker refuses a replay whichever partition it arrives on, and changelogged, so a
        # restart or a new worker refuses it too.
        "control_decided": table("control-decided", None, is_global=True),
        "control_applied": table("control-applied", None, is_global=True),
    }


def build_worker(
    settings: WorkerSettings,
    *,
    statutes: StatuteBook,
    file_agencies: Sequence[Agency],
    keys: Mapping[str, Key],
    salt: bytes,
    metrics: MetricsSink,
    clock: Callable[[], float] = time.time,
    web_enabled: bool = True,
) -> StreamguardWorker:
    """Create the faust app with its topics, tables and agents for `settings`.

    Raises `streamguard.worker.faust_fixes.FaustChangedError` when the installed faust or
    aiokafka is not the one the faust fixes were written for.
    """
    app = create_app(settings.app_id, **_app_options(settings, web_enabled))
    topics = {role: settings.topic(role) for role in INPUT_ROLES}
    topics |= {role: settings.topic(name) for role, name in OUTPUT_ROLES.items()}
    topics["attempts"] = f"{settings.app_id}-owner-attempts"
    worker = StreamguardWorker(
        settings=settings,
        app=app,
        statutes=statutes,
        file_agencies=tuple(file_agencies),
        keys=keys,
        salt=salt,
        metrics=metrics,
        topics=topics,
        tables=_tables(app, settings.partitions),
        clock=clock,
    )

    def raw_topic(role: str, *, compacting: bool = False) -> Any:
        # internal=True makes faust create a missing topic (with the table partition count)
        # before it subscribes, instead of waiting on a topic nobody created.
        return app.topic(
            topics[role],
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            internal=True,
            partitions=settings.partitions,
            compacting=compacting or None,
        )

    size, within = settings.batch_size, settings.batch_window_ms / 1000.0

    def idle() -> bool:
        # A batch not full closes once its queue is empty unless another agent's batch is
        # waiting for its acknowledgements: then its outputs would only queue behind that
        # produce request, and it keeps filling (up to the window) to go out with the next.
        return worker.delivery.sending == 0

    early = idle if settings.batch_close_early else None

    def agent(role: str, processor: str, counters: str | None, compacting: bool = False) -> None:
        async def body(stream: Any) -> None:
            async for events in take_batches(stream, size, within, early):
                await worker.run_batch(processor, events, counters)

        body.__name__ = body.__qualname__ = f"streamguard_{role}"
        channel = raw_topic(role, compacting=compacting)
        app.agent(channel, name=f"streamguard.{role}", concurrency=1)(body)

    worker.transparency = install_transparency(worker)
    install_purges(worker)
    agent("searches", "searches", "counters")
    agent("reads", "reads", None)
    # Policy changes and registry upserts share one processor (and so one PolicyState):
    # a change is verified against the registry as this worker last saw it.
    agent("policy", "policy", None)
    agent("agencies", "policy", None, compacting=True)
    agent("attempts", "attempts", "owner_counters")
    agent("purges", "purges", None)  # retention purges of downstream stores (worker.purges)

    # Batches publish the agency-search gauges at most once a second; without this timer the
    # last batch of a burst stayed unpublished until more traffic arrived.
    async def publish_gauges() -> None:
        worker.publish_gauges()

    app.timer(1.0, name="streamguard.gauges")(publish_gauges)

    if isinstance(keys, KeyRing):
        keyring = keys

        async def reload_keys() -> None:
            keyring.reload_if_changed()

        app.timer(2.0, name="streamguard.keys")(reload_keys)

    async def forget_assignment(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        worker.forget_assignment()

    for signal in (app.on_partitions_revoked, app.on_partitions_assigned):
        signal.connect(cast(Any, forget_assignment))

    return worker
