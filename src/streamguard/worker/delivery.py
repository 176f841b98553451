"""Deliver, then commit: the worker's at-least-once guarantee, step by step.

An input offset is committed only after every output, audit record and table write of its batch
is acknowledged by the broker. For one batch, `Delivery.deliver`:

1. sends the batch's outputs, its audit records and the changelog records of its counters in
   one burst (`send`), and waits for every acknowledgement. If anything is not acknowledged,
   `on_undeliverable` stops the process before faust can commit the batch's offsets, and the
   events are decided again after the restart;
2. remembers the batch's input offsets as delivered (`DeliveredOffsets`), so a copy faust hands
   over again right after a rebalance is not decided twice;
3. records the batch's state through the tables (`record`): chain heads, registry, owner
   settings, the replay memory of control records and revision counters. faust queues those
   changelog records in its producer and flushes it before every commit
   (`Consumer._commit_offsets`), so they too are stored before the offsets move;
4. writes the acknowledged counter records to the local stores with their changelog offsets
   (`apply`), as faust's recovery would have.

faust acknowledges the batch's events when the agent asks for the next batch, that is after all
of this; the commit that follows covers only delivered events. The idea is quixstreams'
`Checkpoint.commit` (produce changelogs, flush, commit offsets, then flush the stores).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from streamguard import serde
from streamguard.stream.types import BatchResult
from streamguard.worker.faust_fixes.context import as_current
from streamguard.worker.faust_fixes.producer import (
    aiokafka_producer,
    partitioner,
    wait_on_metadata,
)
from streamguard.worker.heads import ChainHeads
from streamguard.worker.stores import CachedStore

__all__ = (
    "DeliveredOffsets",
    "Delivery",
    "RecordBatches",
    "TableWrite",
    "counter_writes",
)

log = logging.getLogger("streamguard.worker")


@dataclass(slots=True)
class TableWrite:
    """One changelog record of a table, sent with the batch's outputs, applied after the ack."""

    store: CachedStore
    partition: int
    key: str
    value: Any
    offset: int | None = None  # in the changelog topic, once acknowledged
    topic: str = ""
    key_bytes: bytes = b""
    value_bytes: bytes | None = None

    def __post_init__(self) -> None:
        # The same bytes faust's json codec writes for these str keys and int/dict values
        # (tested), without its per-message serializer lookups; stores hold them as they are.
        self.topic = self.store.store.changelog_topic
        self.key_bytes = serde.dumps(self.key)
        if self.value is not None:
            self.value_bytes = serde.dumps(self.value)


def _counter_partition(key: str) -> int:
    return int(key.split("|", 1)[0])


def counter_writes(
    results: Sequence[BatchResult], counters: CachedStore | None
) -> list[TableWrite]:
    """The changelog records of the counters `results` changed or expired, in batch order."""
    writes: list[TableWrite] = []
    if counters is None:
        return writes
    for result in results:
        for key, value in result.counters.items():
            writes.append(TableWrite(counters, _counter_partition(key), key, value))
        for key in result.expired:
            writes.append(TableWrite(counters, _counter_partition(key), key, None))
    return writes


class DeliveredOffsets:
    """The highest input offset of each topic-partition this process decided and delivered.

    After a rebalance faust can resume fetching before it seeks the partitions back to their
    committed offsets (`Recovery.on_recovery_completed`, corrected by
    `streamguard.worker.faust_fixes.recovery`; `Recovery._resume_streams` is not), so a worker
    that keeps or regains a partition could be handed the same message twice within a few
    milliseconds. Its results are already acknowledged by the broker, so the second copy is
    only acked (faust does that for every event taken), never decided again. Offsets only grow
    within a topic's life: a topic deleted and created again under a running worker needs a
    worker restart.
    """

    __slots__ = ("_newest",)

    def __init__(self) -> None:
        self._newest: dict[tuple[str, int], int] = {}  # (topic, partition) -> offset

    def fresh(self, events: Sequence[Any]) -> list[Any]:
        """`events` without those already delivered (also a copy inside the same batch)."""
        newest = dict(self._newest)
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

    def mark(self, events: Iterable[Any]) -> None:
        """Remember `events` as delivered."""
        newest = self._newest
        for event in events:
            tp = (event.message.topic, event.message.partition)
            newest[tp] = max(newest.get(tp, -1), event.message.offset)


class RecordBatches:
    """A batch's messages grouped into aiokafka record batches, one per topic-partition (more
    when one fills up), kept in the order they were added.

    One record batch per topic-partition (aiokafka's batch API) instead of one `send` per
    message: the same records in the same order per partition, partitioned by the producer's
    own partitioner, for a fraction of the per-message cost.
    """

    __slots__ = ("_builders", "_kafka", "_keyed", "_open", "_partitioner", "_partitions")

    def __init__(self, kafka: AIOKafkaProducer) -> None:
        self._kafka = kafka
        self._partitioner = partitioner(kafka)
        self._builders: list[tuple[str, int, Any]] = []  # (topic, partition, BatchBuilder)
        self._open: dict[tuple[str, int], int] = {}  # (topic, partition) -> builder index
        self._partitions: dict[str, tuple[list[int], list[int]]] = {}  # topic -> all, available
        self._keyed: dict[tuple[str, bytes], int] = {}  # (topic, key) -> partition, this batch

    async def prepare(self, topics: Iterable[str]) -> None:
        """Wait for the metadata of `topics` (what `send` waits for, per message)."""
        kafka = self._kafka
        for topic in topics:
            if topic not in self._partitions:
                await wait_on_metadata(kafka, topic)
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
        known = self._partitions[topic]
        if partition is None:
            # The producer's own partitioner, as `send` applies it to a keyed message; a key
            # repeats within a batch (audit chains, requesters), so it is hashed once.
            found = self._keyed.get((topic, key))
            if found is None:
                found = self._keyed[(topic, key)] = self._partitioner(key, *known)
            partition = found
        elif partition not in known[0]:
            raise ValueError(f"topic {topic} has no partition {partition}")
        index = self._open.get((topic, partition))
        if index is not None:
            meta = self._builders[index][2].append(timestamp=None, key=key, value=value)
            if meta is not None:
                return index, meta.offset
        builder = self._kafka.create_batch()
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


class Delivery:
    """Deliver-then-commit for one worker's batches (module docstring)."""

    def __init__(
        self,
        producer: Callable[[], Any],
        topics: Mapping[str, str],
        tables: Mapping[str, Any],
        heads: ChainHeads,
        on_undeliverable: Callable[[str], None],
    ) -> None:
        """`producer` returns the app's faust producer (looked up per batch: tests swap it)."""
        self._producer = producer
        self._topics = topics  # role -> topic name
        self._tables = tables
        self._heads = heads
        self._on_undeliverable = on_undeliverable
        self.delivered = DeliveredOffsets()
        # Batches between their first produce and their last acknowledgement: while one is,
        # another batch's outputs would only queue behind its request (aiokafka keeps one
        # produce request in flight per broker), so agents keep filling theirs.
        self.sending = 0

    async def deliver(
        self,
        events: Sequence[Any],
        results: Sequence[tuple[Any, BatchResult]],
        counters: CachedStore | None,
    ) -> None:
        """Steps 1 to 4 (module docstring) for the batch `events`, decided as `results`: (an
        event of the result's partition, the result for that partition's slice)."""
        writes = counter_writes([result for _, result in results], counters)
        self.sending += 1
        try:
            offsets = await self.send([result for _, result in results], writes)
        finally:
            self.sending -= 1
        if offsets is not None:
            self.delivered.mark(events)
        offsets = offsets or {}
        for event, result in results:
            with as_current(event):
                self.record(result, offsets)
        self.apply(writes, {e.message.partition: e for e, _ in results})

    async def send(
        self, results: Sequence[BatchResult], writes: Sequence[TableWrite]
    ) -> dict[str, int] | None:
        """Send outputs, audit records and changelog records; wait for every acknowledgement.

        Returns the audit offset of each chain's last record in this batch; None if anything
        was not delivered (after `on_undeliverable`, which normally ends the process).
        """
        kafka = aiokafka_producer(self._producer())
        if kafka is None:
            return await self._send_each(results, writes)
        out = RecordBatches(kafka)
        topics = self._topics
        audit_topic = topics["audit"]
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
            self._on_undeliverable(f"output message(s) not delivered: {type(exc).__name__}")
            return None
        for write, place in zip(writes, places, strict=True):
            write.offset = out.offset(bases, place)
        return {chain: out.offset(bases, place) for chain, place in chains.items()}

    async def _send_each(
        self, results: Sequence[BatchResult], writes: Sequence[TableWrite]
    ) -> dict[str, int] | None:
        """`send` through the faust producer's `send`, one message at a time (a producer that
        is not aiokafka's, as in tests)."""
        producer = self._producer()
        topics = self._topics
        audit_topic = topics["audit"]
        pending = []
        chains: list[tuple[str, int]] = []  # (chain, index in pending) of each chain's last
        for result in results:
            for out in result.messages:
                pending.append(
                    await producer.send(
                        topics[out.role], out.key.encode(), serde.dumps(out.value), None, None, None
                    )
                )
            for chain, record in result.audit:
                pending.append(
                    await producer.send(audit_topic, chain.encode(), record, None, None, None)
                )
                chains.append((chain, len(pending) - 1))
        for write in writes:
            pending.append(
                await producer.send(
                    write.topic, write.key_bytes, write.value_bytes, write.partition, None, None
                )
            )
        # Wait for the broker's acknowledgement before the batch's offsets can be committed:
        # at-least-once means no offset moves past an event whose results are not stored.
        outcomes = await asyncio.gather(*pending, return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            self._on_undeliverable(
                f"{len(failed)} output message(s) not delivered: {type(failed[0]).__name__}"
            )
            return None
        metas: list[Any] = outcomes
        base = len(pending) - len(writes)
        for write, meta in zip(writes, metas[base:], strict=True):
            write.offset = meta.offset
        return {chain: metas[i].offset for chain, i in chains}

    def record(self, result: BatchResult, offsets: Mapping[str, int]) -> None:
        """Step 3: the batch's heads, registry, settings and revisions, through the tables.

        Runs with an event of the result's partition as faust's current event.
        """
        tables = self._tables
        heads = tables["audit_heads"]
        for chain, (_, head) in result.heads.items():
            entry = head | {"offset": offsets.get(chain)}
            self._heads.advance(chain, entry)
            # Only a floor for the next recovery (`ChainHeads.recover`): the audit topic is the
            # truth.
            heads[chain] = entry
        for name, writes in (
            ("registry", result.registry),
            ("owner_settings", result.settings),
            ("control_decided", result.control_decided),
            ("control_applied", result.control_applied),
        ):
            table = tables[name]
            for key, (_, entry) in writes.items():
                table[key] = entry
        meta = tables["policy_meta"]
        # Revisions last: a reader that sees the new revision also sees the values it counts.
        for key, (_, revision) in result.revisions.items():
            meta[key] = revision

    def apply(self, writes: Sequence[TableWrite], events: Mapping[int, Any]) -> None:
        """Step 4: write acknowledged changelog records to the local stores, then their
        offsets. `events`: partition -> an event of that partition (faust's current event)."""
        persisted: dict[tuple[int, int], tuple[TableWrite, int]] = {}
        # Grouped by partition, then store, each group in batch order (a key lives in one
        # partition), so faust's current event is set once per partition rather than once per
        # write, and each store gets one write per partition.
        by_partition: dict[int, dict[int, list[TableWrite]]] = {}
        for write in writes:
            stores = by_partition.setdefault(write.partition, {})
            stores.setdefault(id(write.store), []).append(write)
        for partition, stores in by_partition.items():
            with as_current(events.get(partition)):
                for group in stores.values():
                    group[0].store.write(partition, group)
                    for write in group:
                        if write.offset is not None:
                            persisted[(id(write.store), partition)] = (write, write.offset)
        for write, offset in persisted.values():
            # What faust's own changelog callback records: recovery resumes after this offset.
            write.store.store.set_changelog_offset(write.partition, offset)
