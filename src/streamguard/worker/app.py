"""Faust wiring: topics, tables and agents around `BatchProcessor`. Kept thin on purpose.

Design notes (see docs/streaming.md for the whole picture):

* Agents take raw bytes (`value_serializer="raw"`) and decode with orjson in the processor, so a
  message that is not JSON becomes a quarantine record instead of a deserialization crash.
* Batches come from `stream.take_events()`: events, not values, because a batch can mix
  partitions, and faust's tables and stores take "the partition" of every read and write from
  the current event (rocksdb keeps one database per partition, the changelog is partitioned
  like the input). Each partition's slice of a batch is therefore processed and recorded with
  one of its own events set as faust's current event (`_as_current`).
* Counters are plain tables keyed `partition|metric|window|start|agency`, not faust windowed
  tables: faust's windowed `current()` ignores event time, its expiry runs on the wall clock
  (a replay of old events closes every window at once), `relative_to_field` needs a faust Record
  (we have raw bytes) and a hopping window costs a changelog write per overlapping window. Our
  keys are aggregated per batch (one write per key per batch) and expired by event-time
  watermark (`streamguard.windows`).
* Registry, owner settings and their revision counters are GlobalTables: every worker sees every
  policy change, whichever worker verified it. Decision agents rebuild their immutable
  PolicyState only when the sum of the revision counters moves.
* concurrency=1 on every agent (faust #606: concurrency > 1 can commit past unprocessed
  offsets); throughput comes from partitions and batching.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

import faust
import faust.streams as faust_streams

from streamguard import serde
from streamguard.models import Agency
from streamguard.settings import WorkerSettings
from streamguard.statutes import StatuteBook
from streamguard.worker.processor import BatchProcessor, BatchResult, InMessage, MetricsSink
from streamguard.worker.state import build_state

__all__ = ("INPUT_ROLES", "OUTPUT_ROLES", "StreamguardWorker", "build_worker")

log = logging.getLogger("streamguard.worker")

INPUT_ROLES: Final = ("searches", "reads", "policy", "agencies")
OUTPUT_ROLES: Final = {
    "approved": "searches.approved", "shared": "reads.shared", "quarantine": "quarantine",
    "audit": "audit", "alerts": "alerts",
}  # fmt: skip
# EX_SOFTWARE: the worker stops without committing offsets it could not deliver results for.
_EXIT_UNDELIVERED: Final = 70
_CHANGELOG_BUFFER: Final = 20_000

# faust exposes only a getter for the current event; this sets its context variable directly.
# Importing it by name makes a faust upgrade that renames it fail at start, not silently.
_CURRENT_EVENT: ContextVar[Any] = faust_streams._current_event


@contextlib.contextmanager
def _as_current(event: Any) -> Iterator[None]:
    token = _CURRENT_EVENT.set(weakref.ref(event))
    try:
        yield
    finally:
        _CURRENT_EVENT.reset(token)


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
    keys: Mapping[str, bytes]
    salt: bytes
    metrics: MetricsSink
    clock: Callable[[], float] = time.time
    on_undeliverable: Callable[[str], None] = _fatal_exit
    topics: dict[str, str] = field(default_factory=dict)  # role -> topic name
    tables: dict[str, Any] = field(default_factory=dict)
    processors: dict[str, BatchProcessor] = field(default_factory=dict)
    _ready: bool = False
    _ready_lock: asyncio.Lock | None = None
    _built: set[str] = field(default_factory=set)  # processors with a snapshot from the tables
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def role_of(self, topic: str) -> str:
        for role, name in self.topics.items():
            if name == topic:
                return role
        return topic

    def processor(self, name: str) -> BatchProcessor:
        proc = self.processors.get(name)
        if proc is None:
            state = build_state(self.statutes, self.file_agencies, (), (), 0)
            proc = BatchProcessor(self.settings, state, self.keys, self.salt, self.metrics,
                                  self.clock)  # fmt: skip
            self.processors[name] = proc
        return proc

    def publish_gauges(self) -> None:
        """Publish gauge counts that the per-batch throttle held back (run by a 1 s timer)."""
        now = self.clock()
        for proc in self.processors.values():
            proc.publish_pending_gauges(now)

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
            self._ready = True

    def _check_partitions(self) -> None:
        consumer = self.app.consumer
        for role in (*INPUT_ROLES, "attempts"):
            found = consumer.topic_partitions(self.topics[role])
            if found is not None and found != self.settings.partitions:
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
            self.statutes, self.file_agencies, self.tables["registry"].items(),
            self.tables["owner_settings"].items(), total,
        )  # fmt: skip
        proc.set_revisions(revisions)
        self._built.add(name)
        return proc

    async def run_batch(
        self, name: str, events: Sequence[Any], counters: Any | None
    ) -> BatchResult:
        """Decide one batch of faust events, deliver the results, then record state."""
        await self._ensure_ready()
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:  # two agents (policy, agencies) share the "policy" processor
            return await self._run_locked(name, events, counters)

    async def _run_locked(
        self, name: str, events: Sequence[Any], counters: Any | None
    ) -> BatchResult:
        first = name not in self._built
        proc = self.refresh(name)
        if first and counters is not None:
            # Counters restored from the changelog must expire like the ones written now.
            proc.seed_counter_keys(list(counters.keys()))
        by_partition: dict[int, list[Any]] = {}
        for event in events:
            by_partition.setdefault(event.message.partition, []).append(event)
        now = self.clock()
        results: list[tuple[Any, BatchResult]] = []
        for group in by_partition.values():
            batch = [
                InMessage(self.role_of(e.message.topic), e.message.topic, e.message.partition,
                          e.message.offset, e.message.key, e.message.value)
                for e in group
            ]  # fmt: skip
            with _as_current(group[0]):
                result = proc.process(
                    batch, now=now, counters=counters if counters is not None else {},
                    heads=self.tables["audit_heads"],
                )  # fmt: skip
            results.append((group[0], result))
        await self._deliver([result for _, result in results])
        merged = BatchResult()
        for event, result in results:
            with _as_current(event):
                self._record(result, counters)
            merged.messages.extend(result.messages)
            merged.audit.extend(result.audit)
        return merged

    async def _deliver(self, results: Sequence[BatchResult]) -> None:
        producer = self.app.producer
        audit_topic = self.topics["audit"]
        pending = []
        for result in results:
            for out in result.messages:
                pending.append(await producer.send(
                    self.topics[out.role], out.key.encode(), serde.dumps(out.value),
                    None, None, None,
                ))  # fmt: skip
            for chain, record in result.audit:
                pending.append(await producer.send(
                    audit_topic, chain.encode(), record, None, None, None,
                ))  # fmt: skip
        # Wait for the broker's acknowledgement before the batch's offsets can be committed:
        # at-least-once means no offset moves past an event whose results are not stored.
        outcomes = await asyncio.gather(*pending, return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            self.on_undeliverable(f"{len(failed)} output message(s) not delivered: "
                                  f"{type(failed[0]).__name__}")  # fmt: skip

    def _record(self, result: BatchResult, counters: Any | None) -> None:
        # Runs with an event of the result's partition as faust's current event.
        if counters is not None:
            for key, value in result.counters.items():
                counters[key] = value
            for key in result.expired:
                if key in counters:
                    del counters[key]
        heads = self.tables["audit_heads"]
        for chain, (_, head) in result.heads.items():
            heads[chain] = head
        for name, writes in (("registry", result.registry), ("owner_settings", result.settings)):
            table = self.tables[name]
            for key, (_, entry) in writes.items():
                table[key] = entry
        meta = self.tables["policy_meta"]
        # Revisions last: a reader that sees the new revision also sees the values it counts.
        for key, (_, revision) in result.revisions.items():
            meta[key] = revision


def build_worker(
    settings: WorkerSettings,
    *,
    statutes: StatuteBook,
    file_agencies: Sequence[Agency],
    keys: Mapping[str, bytes],
    salt: bytes,
    metrics: MetricsSink,
    clock: Callable[[], float] = time.time,
    web_enabled: bool = True,
) -> StreamguardWorker:
    """Create the faust app with its topics, tables and agents for `settings`."""
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        store=settings.store,
        datadir=str(settings.data_dir),
        web_enabled=web_enabled,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
        # Tables are read on every batch; a standby replica would double changelog reads on a
        # one-worker deployment for no gain. Operators scaling out can raise it in code.
        table_standby_replicas=0,
    )
    worker = StreamguardWorker(
        settings=settings, app=app, statutes=statutes, file_agencies=tuple(file_agencies),
        keys=keys, salt=salt, metrics=metrics, clock=clock,
    )  # fmt: skip
    worker.topics = {role: settings.topic(role) for role in INPUT_ROLES}
    worker.topics |= {role: settings.topic(name) for role, name in OUTPUT_ROLES.items()}
    worker.topics["attempts"] = f"{settings.app_id}-owner-attempts"

    def raw_topic(role: str, *, compacting: bool = False) -> Any:
        # internal=True makes faust create a missing topic (with the table partition count)
        # before it subscribes, instead of waiting on a topic nobody created.
        return app.topic(
            worker.topics[role], key_type=bytes, value_type=bytes, key_serializer="raw",
            value_serializer="raw", internal=True, partitions=settings.partitions,
            compacting=compacting or None,
        )  # fmt: skip

    # The app's serializers are raw (agents decode themselves); table state is JSON.
    schema: Any = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")

    def table(name: str, default: Any, *, is_global: bool = False) -> Any:
        make = app.GlobalTable if is_global else app.Table
        return make(name, default=default, partitions=settings.partitions, schema=schema)

    worker.tables = {
        "counters": table("counters", int),
        "owner_counters": table("owner-counters", int),
        "audit_heads": table("audit-heads", None),
        "registry": table("registry", None, is_global=True),
        "owner_settings": table("owner-settings", None, is_global=True),
        "policy_meta": table("policy-meta", int, is_global=True),
    }
    size, within = settings.batch_size, settings.batch_window_ms / 1000.0

    def agent(role: str, processor: str, counters: str | None, compacting: bool = False) -> None:
        async def body(stream: Any) -> None:
            async for events in stream.take_events(size, within):
                await worker.run_batch(
                    processor, events, worker.tables[counters] if counters else None
                )

        body.__name__ = body.__qualname__ = f"streamguard_{role}"
        channel = raw_topic(role, compacting=compacting)
        app.agent(channel, name=f"streamguard.{role}", concurrency=1)(body)

    agent("searches", "searches", "counters")
    agent("reads", "reads", None)
    # Policy changes and registry upserts share one processor (and so one PolicyState):
    # a change is verified against the registry as this worker last saw it.
    agent("policy", "policy", None)
    agent("agencies", "policy", None, compacting=True)
    agent("attempts", "attempts", "owner_counters")

    # Batches publish the agency-search gauges at most once a second; without this timer the
    # last batch of a burst stayed unpublished until more traffic arrived.
    async def publish_gauges() -> None:
        worker.publish_gauges()

    app.timer(1.0, name="streamguard.gauges")(publish_gauges)

    return worker
