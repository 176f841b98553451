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
  watermark (`streamguard.stream.windows`).
* Registry, owner settings and their revision counters are GlobalTables: every worker sees every
  policy change, whichever worker verified it. Decision agents rebuild their immutable
  PolicyState only when the sum of the revision counters moves.
* concurrency=1 on every agent (faust #606: concurrency > 1 can commit past unprocessed
  offsets); throughput comes from partitions and batching.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final, cast

import faust
import faust.streams as faust_streams
import rocksdict
from aiokafka import AIOKafkaProducer
from faust.types import TP

from streamguard import serde
from streamguard.core.models import Agency
from streamguard.core.statutes import StatuteBook
from streamguard.settings import WorkerSettings
from streamguard.stream.processor import BatchProcessor
from streamguard.stream.tables import build_state
from streamguard.stream.types import BatchResult, InMessage, MetricsSink
from streamguard.trail.chain import genesis
from streamguard.trail.tail import AuditTail
from streamguard.worker.faust_fixes.consumer import use_commit_on_revoke
from streamguard.worker.faust_fixes.recovery import install as install_recovery_fix
from streamguard.worker.keys import KeyRing

__all__ = ("INPUT_ROLES", "OUTPUT_ROLES", "StreamguardWorker", "build_worker")

log = logging.getLogger("streamguard.worker")

INPUT_ROLES: Final = ("searches", "reads", "policy", "agencies")
OUTPUT_ROLES: Final = {
    "approved": "searches.approved",
    "shared": "reads.shared",
    "quarantine": "quarantine",
    "audit": "audit",
    "alerts": "alerts",
}
# EX_SOFTWARE: the worker stops without committing offsets it could not deliver results for.
_EXIT_UNDELIVERED: Final = 70
_CHANGELOG_BUFFER: Final = 20_000
_GC_THRESHOLDS: Final = (50_000, 20, 20)

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
    # chain -> {chain, seq, hash, offset}: verified heads; emptied on every rebalance.
    heads: dict[str, dict[str, Any]] = field(default_factory=dict)
    audit_tail: AuditTail | None = None
    # id(table) -> counter values this worker read or wrote. Only the partition's owner writes
    # its counters, so the cache stays true until a rebalance, which empties it.
    _cache: dict[int, dict[str, Any]] = field(default_factory=dict)
    # (topic, partition) -> highest input offset decided and delivered by this process.
    _decided: dict[tuple[str, int], int] = field(default_factory=dict)
    _seeded: set[str] = field(default_factory=set)  # processors that saw this assignment's counters
    _roles: dict[str, str] = field(default_factory=dict)  # topic -> role, see `role_of`

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
                self.settings, state, self.keys, self.salt, self.metrics, self.clock
            )
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
            if self.audit_tail is None:
                self.audit_tail = AuditTail(
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
        events = self._not_yet_decided(events)
        if not events:
            return BatchResult()
        proc = self.refresh(name)
        if counters is not None and name not in self._seeded:
            # Once per assignment: the partitions (and so the counters) this worker owns change.
            proc.seed_counters(list(counters.items()))
            self._seeded.add(name)
        by_partition: dict[int, list[Any]] = {}
        for event in events:
            by_partition.setdefault(event.message.partition, []).append(event)
        heads = await self._ensure_heads(events)
        now = self.clock()
        # The store, not the table: reads need no changelog bookkeeping, and the processor
        # reads each counter key at most once per batch.
        store: Mapping[str, Any] = (
            _Cached(self._cache.setdefault(id(counters), {}), counters.data)
            if counters is not None
            else {}
        )
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
            with _as_current(group[0]):
                result = proc.process(batch, now=now, counters=store, heads=heads)
            results.append((group[0], result))
        writes = self._table_writes([r for _, r in results], counters)
        offsets = await self._deliver([result for _, result in results], writes)
        if offsets is not None:
            for event in events:
                tp = (event.message.topic, event.message.partition)
                self._decided[tp] = max(self._decided.get(tp, -1), event.message.offset)
        offsets = offsets or {}
        merged = BatchResult()
        for event, result in results:
            with _as_current(event):
                self._record(result, offsets)
            merged.messages.extend(result.messages)
            merged.audit.extend(result.audit)
        self._apply(writes, {e.message.partition: e for e, _ in results})
        return merged

    def _not_yet_decided(self, events: Sequence[Any]) -> Sequence[Any]:
        """`events` without those this process has already decided and delivered.

        After a rebalance faust can resume fetching before it seeks the partitions back to
        their committed offsets (`Recovery.on_recovery_completed`, corrected by
        `streamguard.worker.faust_fixes.recovery`; `Recovery._resume_streams` is not), so a
        worker that
        keeps or regains a partition could be handed the same message twice within a few
        milliseconds. Its results are already acknowledged by the broker, so the second copy
        is only acked (faust does that for every event taken), never decided again. Offsets
        only grow within a topic's life: a topic deleted and created again under a running
        worker needs a worker restart.
        """
        newest = dict(self._decided)  # also drops a copy inside the same batch
        fresh = []
        for event in events:
            tp = (event.message.topic, event.message.partition)
            if event.message.offset > newest.get(tp, -1):
                newest[tp] = event.message.offset
                fresh.append(event)
        if len(fresh) < len(events):
            log.info(
                "skipped %d message(s) this worker had already decided (redelivered "
                "after a rebalance)",
                len(events) - len(fresh),
            )
        return fresh

    async def _ensure_heads(self, events: Sequence[Any]) -> dict[str, dict[str, Any]]:
        """The true head of every chain this batch appends to (see `audit_tail`).

        Returned for this batch rather than read from `self.heads` later: a rebalance while
        this awaits empties `self.heads`, and a missing head must never mean "start at seq 1".
        """
        chains = {
            f"{self.role_of(e.message.topic)}-{e.message.partition}": e
            for e in events
            if self.role_of(e.message.topic) != "attempts"
        }
        heads: dict[str, dict[str, Any]] = {}
        for chain, event in chains.items():
            head = self.heads.get(chain)
            if head is None:
                with _as_current(event):
                    stored = self.tables["audit_heads"].data.get(chain)
                stored = stored if isinstance(stored, Mapping) else None
                head = self.heads[chain] = await self.recover_head(chain, stored)
            heads[chain] = head
        return heads

    async def recover_head(self, chain: str, stored: Mapping[str, Any] | None) -> dict[str, Any]:
        """The chain's head: its last record on the audit topic, else what the table stored."""
        floor = stored.get("offset") if stored is not None else None
        floor = floor if isinstance(floor, int) else None
        if self.audit_tail is not None:
            try:
                record = await self.audit_tail.last_record(chain, floor)
            except Exception as exc:  # any failure: do not guess a head
                self.on_undeliverable(
                    f"cannot read the head of audit chain {chain}: {type(exc).__name__}"
                )
                raise
            if record is not None:
                head = {
                    "chain": chain,
                    "seq": record.get("seq"),
                    "hash": record.get("hash"),
                    "offset": record["offset"],
                }
                if stored is None or head != dict(stored):
                    log.info(
                        "audit chain %s continues at seq %s (from the audit topic)",
                        chain,
                        head["seq"],
                    )
                return head
        return dict(stored) if stored is not None else genesis(chain).as_dict()

    def _table_writes(self, results: Sequence[BatchResult], counters: Any | None) -> list[_Write]:
        writes: list[_Write] = []
        for result in results:
            if counters is not None:
                for key, value in result.counters.items():
                    writes.append(_Write(counters, _counter_partition(key), key, value))
                for key in result.expired:
                    writes.append(_Write(counters, _counter_partition(key), key, None))
        return writes

    async def _deliver(
        self, results: Sequence[BatchResult], writes: Sequence[_Write]
    ) -> dict[str, int] | None:
        """Send outputs, audit records and changelog records; wait for every acknowledgement.

        Returns the audit offset of each chain's last record in this batch; None if anything
        was not delivered (after `on_undeliverable`, which normally ends the process).
        """
        kafka = getattr(self.app.producer, "_producer", None)
        if not isinstance(kafka, AIOKafkaProducer):
            return await self._deliver_each(results, writes)
        # One record batch per topic-partition (aiokafka's batch API) instead of one
        # `send` per message: the same records in the same order per partition, partitioned
        # by the producer's own partitioner, for a fraction of the per-message cost.
        out = _RecordBatches(kafka)
        audit_topic = self.topics["audit"]
        topics = self.topics
        chains: dict[str, tuple[int, int]] = {}  # chain -> its last record's place
        try:
            await out.prepare(
                {
                    audit_topic,
                    *(w.topic for w in writes),
                    *(topics[m.role] for result in results for m in result.messages),
                }
            )
            add = out.add
            dumps = serde.dumps
            for result in results:
                for message in result.messages:
                    add(topics[message.role], message.key.encode(), dumps(message.value), None)
                for chain, record in result.audit:
                    chains[chain] = add(audit_topic, chain.encode(), record, None)
            places = [add(w.topic, w.key_bytes, w.value_bytes, w.partition) for w in writes]
            bases = await out.send()
        except Exception as exc:  # not queued or not acknowledged: nothing may be committed
            self.on_undeliverable(f"output message(s) not delivered: {type(exc).__name__}")
            return None
        for write, place in zip(writes, places, strict=True):
            write.offset = out.offset(bases, place)
        return {chain: out.offset(bases, place) for chain, place in chains.items()}

    async def _deliver_each(
        self, results: Sequence[BatchResult], writes: Sequence[_Write]
    ) -> dict[str, int] | None:
        """`_deliver` through the faust producer's `send`, one message at a time (a producer
        that is not aiokafka's, as in tests)."""
        producer = self.app.producer
        audit_topic = self.topics["audit"]
        pending = []
        chains: list[tuple[str, int]] = []  # (chain, index in pending) of each chain's last
        for result in results:
            for out in result.messages:
                pending.append(
                    await producer.send(
                        self.topics[out.role],
                        out.key.encode(),
                        serde.dumps(out.value),
                        None,
                        None,
                        None,
                    )
                )
            for chain, record in result.audit:
                pending.append(
                    await producer.send(
                        audit_topic,
                        chain.encode(),
                        record,
                        None,
                        None,
                        None,
                    )
                )
                chains.append((chain, len(pending) - 1))
        for write in writes:
            pending.append(
                await producer.send(
                    write.topic,
                    write.key_bytes,
                    write.value_bytes,
                    write.partition,
                    None,
                    None,
                )
            )
        # Wait for the broker's acknowledgement before the batch's offsets can be committed:
        # at-least-once means no offset moves past an event whose results are not stored.
        outcomes = await asyncio.gather(*pending, return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            self.on_undeliverable(
                f"{len(failed)} output message(s) not delivered: {type(failed[0]).__name__}"
            )
            return None
        metas: list[Any] = outcomes
        base = len(pending) - len(writes)
        for write, meta in zip(writes, metas[base:], strict=True):
            write.offset = meta.offset
        return {chain: metas[i].offset for chain, i in chains}

    def _apply(self, writes: Sequence[_Write], events: Mapping[int, Any]) -> None:
        """Write acknowledged changelog records to the local store, and their offsets."""
        persisted: dict[tuple[int, int], tuple[Any, int]] = {}
        # Grouped by partition, each group in batch order (a key lives in one partition), so
        # faust's current event is set once per partition rather than once per write.
        by_partition: dict[int, list[_Write]] = {}
        for write in writes:
            by_partition.setdefault(write.partition, []).append(write)
        for partition, group in by_partition.items():
            event = events.get(partition)
            # rocksdb puts and deletes of this partition, per store, written as one WriteBatch
            # (one WAL append, applied in order) instead of one call each.
            pending: dict[int, tuple[Any, Any]] = {}
            with _as_current(event) if event is not None else contextlib.nullcontext():
                for write in group:
                    store = write.table.data
                    cache = self._cache.setdefault(id(write.table), {})
                    if hasattr(store, "_set") and getattr(store, "use_rocksdict", False):
                        # rocksdb: store the changelog bytes, as faust's recovery does. A
                        # counter key lives in its own partition's database only (written
                        # there, and restored there from its changelog partition).
                        entry = pending.get(id(store))
                        if entry is None:
                            entry = pending[id(store)] = (
                                store,
                                rocksdict.WriteBatch(raw_mode=True),
                            )
                        if write.value_bytes is None:
                            entry[1].delete(write.key_bytes)
                        else:
                            entry[1].put(write.key_bytes, write.value_bytes)
                            store._key_index[write.key_bytes] = partition  # as `_set` does
                    elif hasattr(store, "_set"):
                        if write.value_bytes is None:
                            store._del(write.key_bytes)
                        else:
                            store._set(write.key_bytes, write.value_bytes)
                    elif write.value is None:
                        store.pop(write.key, None)
                    else:
                        store[write.key] = write.value
                    if write.value is None:
                        cache.pop(write.key, None)
                    else:
                        cache[write.key] = write.value
                    if write.offset is not None:
                        persisted[(id(write.table), write.partition)] = (write, write.offset)
                for entry in pending.values():
                    _write_pending(entry, partition)
        for write, offset in persisted.values():
            # What faust's own changelog callback records: recovery resumes after this offset.
            write.table.data.set_persisted_offset(TP(write.topic, write.partition), offset)

    def _record(self, result: BatchResult, offsets: Mapping[str, int]) -> None:
        # Runs with an event of the result's partition as faust's current event.
        heads = self.tables["audit_heads"]
        for chain, (_, head) in result.heads.items():
            entry = head | {"offset": offsets.get(chain)}
            self.heads[chain] = entry
            # Only a floor for the next recovery (`recover_head`): the audit topic is the truth.
            heads[chain] = entry
        for name, writes in (("registry", result.registry), ("owner_settings", result.settings)):
            table = self.tables[name]
            for key, (_, entry) in writes.items():
                table[key] = entry
        meta = self.tables["policy_meta"]
        # Revisions last: a reader that sees the new revision also sees the values it counts.
        for key, (_, revision) in result.revisions.items():
            meta[key] = revision


@dataclass(slots=True)
class _Write:
    """One changelog record of a table, sent with the batch's outputs, applied after the ack."""

    table: Any
    partition: int
    key: str
    value: Any
    offset: int | None = None
    topic: str = ""
    key_bytes: bytes = b""
    value_bytes: bytes | None = None

    def __post_init__(self) -> None:
        # The same bytes faust's json codec writes for these str keys and int/dict values
        # (tested), without its per-message serializer lookups; stores hold them as they are.
        self.topic = self.table.changelog_topic.get_topic_name()
        self.key_bytes = serde.dumps(self.key)
        if self.value is not None:
            self.value_bytes = serde.dumps(self.value)


class _RecordBatches:
    """A batch's messages grouped into aiokafka record batches, one per topic-partition (more
    when one fills up), kept in the order they were added."""

    __slots__ = ("_builders", "_kafka", "_keyed", "_open", "_partitions")

    def __init__(self, kafka: AIOKafkaProducer) -> None:
        self._kafka = kafka
        self._builders: list[tuple[str, int, Any]] = []  # (topic, partition, BatchBuilder)
        self._open: dict[tuple[str, int], int] = {}  # (topic, partition) -> builder index
        self._partitions: dict[str, tuple[list[int], list[int]]] = {}  # topic -> all, available
        self._keyed: dict[tuple[str, bytes], int] = {}  # (topic, key) -> partition, this batch

    async def prepare(self, topics: Iterable[str]) -> None:
        """Wait for the metadata of `topics` (what `send` waits for, per message)."""
        kafka = self._kafka
        for topic in topics:
            if topic not in self._partitions:
                await kafka.client._wait_on_metadata(topic)
                metadata = kafka.client.cluster
                self._partitions[topic] = (
                    list(metadata.partitions_for_topic(topic)),
                    list(metadata.available_partitions_for_topic(topic)),
                )

    def add(
        self, topic: str, key: bytes, value: bytes | None, partition: int | None
    ) -> tuple[int, int]:
        """Queue one message of a `prepare`d topic; returns (builder index, offset in its
        batch) for `offset`."""
        kafka = self._kafka
        known = self._partitions[topic]
        if partition is None:
            # The producer's own partitioner, as `send` applies it to a keyed message; a key
            # repeats within a batch (audit chains, requesters), so it is hashed once.
            found = self._keyed.get((topic, key))
            if found is None:
                found = self._keyed[(topic, key)] = kafka._partitioner(key, *known)
            partition = found
        elif partition not in known[0]:
            raise ValueError(f"topic {topic} has no partition {partition}")
        index = self._open.get((topic, partition))
        if index is not None:
            meta = self._builders[index][2].append(timestamp=None, key=key, value=value)
            if meta is not None:
                return index, meta.offset
        builder = kafka.create_batch()
        meta = builder.append(timestamp=None, key=key, value=value)
        if meta is None:
            raise ValueError(f"a message of {len(value or b''):,} bytes fits no record batch")
        index = self._open[(topic, partition)] = len(self._builders)
        self._builders.append((topic, partition, builder))
        return index, meta.offset

    async def send(self) -> list[int]:
        """Queue every batch, in order, and wait for all acknowledgements: base offsets."""
        futures = [
            await self._kafka.send_batch(builder, topic, partition=partition)
            for topic, partition, builder in self._builders
        ]
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        bases: list[int] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            bases.append(outcome.offset)
        return bases

    @staticmethod
    def offset(bases: Sequence[int], place: tuple[int, int]) -> int:
        return bases[place[0]] + place[1]


class _Cached(Mapping[str, Any]):
    """Counter reads: the worker's cache first, then the table's store (filling the cache)."""

    __slots__ = ("_cache", "_store")

    def __init__(self, cache: dict[str, Any], store: Any) -> None:
        self._cache = cache
        self._store = store

    def get(self, key: str, default: Any = None) -> Any:
        try:
            value = self._cache[key]
        except KeyError:
            value = self._cache[key] = self._store.get(key)
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._store)

    def __len__(self) -> int:
        return len(self._store)


class _App(faust.App):
    """faust.App whose consumer commits decided offsets before a rebalance and fetches with a
    short wait (`streamguard.worker.faust_fixes.consumer`)."""

    def _new_transport(self) -> Any:
        return use_commit_on_revoke(super()._new_transport())


def _write_pending(entry: tuple[Any, Any] | None, partition: int) -> None:
    """Write a (rocksdb store, WriteBatch) of `_apply` to the store's database of `partition`."""
    if entry is not None:
        store, batch = entry
        store._db_for_partition(partition).write(batch)


def _counter_partition(key: str) -> int:
    return int(key.split("|", 1)[0])


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
    app = _App(
        settings.app_id,
        broker=settings.broker,
        broker_credentials=settings.faust_credentials(),
        store=settings.store,
        datadir=str(settings.data_dir),
        web_enabled=web_enabled,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        processing_guarantee="at_least_once",
        broker_commit_interval=settings.commit_interval_ms / 1000.0,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
        # Tables are read on every batch; a standby replica would double changelog reads on a
        # one-worker deployment for no gain. Operators scaling out can raise it in code.
        table_standby_replicas=0,
        # Outputs go out in bursts of a whole batch: larger produce batches mean fewer
        # requests per batch (the default of 16 KiB held about 15 of our messages).
        producer_max_batch_size=1024 * 1024,
        producer_max_request_size=4 * 1024 * 1024,
        # Enough buffered input to fill a batch while the last one is decided.
        stream_buffer_maxsize=max(4096, 4 * settings.batch_size),
    )
    install_recovery_fix(app)  # faust drops fetched input at the end of table recovery
    worker = StreamguardWorker(
        settings=settings,
        app=app,
        statutes=statutes,
        file_agencies=tuple(file_agencies),
        keys=keys,
        salt=salt,
        metrics=metrics,
        clock=clock,
    )
    worker.topics = {role: settings.topic(role) for role in INPUT_ROLES}
    worker.topics |= {role: settings.topic(name) for role, name in OUTPUT_ROLES.items()}
    worker.topics["attempts"] = f"{settings.app_id}-owner-attempts"

    def raw_topic(role: str, *, compacting: bool = False) -> Any:
        # internal=True makes faust create a missing topic (with the table partition count)
        # before it subscribes, instead of waiting on a topic nobody created.
        return app.topic(
            worker.topics[role],
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            internal=True,
            partitions=settings.partitions,
            compacting=compacting or None,
        )

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

    if isinstance(keys, KeyRing):
        keyring = keys

        async def reload_keys() -> None:
            keyring.reload_if_changed()

        app.timer(2.0, name="streamguard.keys")(reload_keys)

    async def forget_heads(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # After any rebalance another worker may have appended to a chain we knew: read every
        # head back from the audit topic before appending again.
        worker.heads.clear()
        worker._cache.clear()
        worker._seeded.clear()

    for signal in (app.on_partitions_revoked, app.on_partitions_assigned):
        signal.connect(cast(Any, forget_heads))

    return worker
