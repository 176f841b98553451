"""Find where an audit chain really ends, from the tail of the audit topic.

The audit topic, not a table, is the truth about a chain: after a hard crash (kill -9) the audit
records of the last batches can be on the topic while the `audit-heads` table never heard of
them, and the replayed events would be audited again at seqs the chain already holds. So before
a worker appends to a chain for the first time after (re)assignment, it reads the chain's last
record back from the topic.

A chain's records are keyed by the chain name, so they all sit in the one audit partition the
default (murmur2) partitioner picks for that key. The chain's last record is found by reading
that partition backwards in growing chunks, never below `floor`: the offset of a head the worker
stored earlier (a record of that chain known to exist), or the beginning for a chain it never
stored. Only the keys are compared; one record is decoded.

The same reader serves the checkpoints topic (keyed by chain too: a chain's last checkpoint)
and, for the transparency log, the records of a chain after its last checkpoint
(`records_after`), read backwards the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Final

from streamguard import serde
from streamguard.exceptions import StreamguardError

__all__ = ("AuditTail", "audit_partition")

_FIRST_CHUNK: Final = 2000


def audit_partition(chain: str, partitions: int) -> int:
    """The audit partition of `chain`: what the producer's default partitioner picks for it."""
    from aiokafka.partitioner import murmur2

    index: int = murmur2(chain.encode()) & 0x7FFFFFFF
    return index % partitions


class AuditTail:
    """Reads chain heads back from the audit topic with its own group-less consumer."""

    def __init__(
        self, bootstrap: str, topic: str, client_options: Mapping[str, Any], timeout: float = 60.0
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.client_options = dict(client_options)
        self.timeout = timeout
        self._consumer: Any = None
        self._partitions: int | None = None
        self._lock: asyncio.Lock | None = None  # one reader: agents share the consumer

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        # Subscribing by name makes the client fetch the topic's metadata at start; partitions
        # are then assigned by hand (no group, nothing committed).
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self.client_options,
        )
        await asyncio.wait_for(consumer.start(), self.timeout)
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            await consumer.stop()
            msg = f"audit topic {self.topic} has no partitions"
            raise StreamguardError(msg)
        consumer.unsubscribe()
        self._consumer = consumer
        self._partitions = len(partitions)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def last_record(self, chain: str, floor: int | None) -> dict[str, Any] | None:
        """The chain's last audit record with its `offset`, at or above `floor`; None if none."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await self._last_record(chain, floor)

    async def _last_record(self, chain: str, floor: int | None) -> dict[str, Any] | None:
        consumer, tp, low, high = await self._partition_of(chain)
        floor = low if floor is None else min(max(low, floor), high)
        key = chain.encode()
        deadline = time.monotonic() + self.timeout
        chunk = _FIRST_CHUNK
        while high > floor:
            start = max(floor, high - chunk)
            found = await self._keyed_in(consumer, tp, start, high, key, deadline, last_only=True)
            if found:
                offset, raw = found[-1]
                record = serde.loads(raw)
                if isinstance(record, dict):
                    return record | {"offset": offset}
                return None
            high, chunk = start, chunk * 4
        return None

    async def records_after(self, chain: str, after: int, before: int) -> list[dict[str, Any]]:
        """The chain's records with `after` < seq < `before`, in topic order.

        Read backwards until the record of seq `after` + 1 is in hand (or the partition's
        start): after a checkpoint of size `after`, these are the leaves to continue from.
        """
        if before <= after + 1:
            return []
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            consumer, tp, low, high = await self._partition_of(chain)
            key = chain.encode()
            deadline = time.monotonic() + self.timeout
            chunk = _FIRST_CHUNK
            found: list[dict[str, Any]] = []
            while high > low:
                start = max(low, high - chunk)
                older: list[dict[str, Any]] = []
                for _, raw in await self._keyed_in(consumer, tp, start, high, key, deadline):
                    record = serde.loads(raw)
                    seq = record.get("seq") if isinstance(record, dict) else None
                    if isinstance(seq, int) and after < seq < before:
                        older.append(record)
                found = older + found
                if any(r["seq"] == after + 1 for r in older):
                    break
                high, chunk = start, chunk * 4
            return found

    async def _partition_of(self, chain: str) -> tuple[Any, Any, int, int]:
        from aiokafka import TopicPartition

        if self._consumer is None or self._partitions is None:
            await self.start()
        consumer = self._consumer
        assert self._partitions is not None
        tp = TopicPartition(self.topic, audit_partition(chain, self._partitions))
        consumer.assign([tp])
        low = (await consumer.beginning_offsets([tp]))[tp]
        high = (await consumer.end_offsets([tp]))[tp]
        return consumer, tp, low, high

    async def _keyed_in(
        self,
        consumer: Any,
        tp: Any,
        start: int,
        end: int,
        key: bytes,
        deadline: float,
        *,
        last_only: bool = False,
    ) -> list[tuple[int, bytes]]:
        """(offset, value) of every message keyed `key` in [start, end), in offset order
        (`last_only`: just the last, so a long scan holds one message)."""
        consumer.seek(tp, start)
        found: list[tuple[int, bytes]] = []
        while True:
            if time.monotonic() > deadline:
                msg = f"timed out reading the tail of {self.topic}"
                raise StreamguardError(msg)
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=10_000)
            for message in batch.get(tp, ()):
                if message.offset >= end:
                    return found
                if message.key == key and message.value is not None:
                    if last_only:
                        found.clear()
                    found.append((message.offset, message.value))
            if await consumer.position(tp) >= end:
                return found
