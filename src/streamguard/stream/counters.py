"""The worker's event-time counters: one batch's view of the counters table, the replay marks
that make counting idempotent, and the live keys of each partition with their expiry. Pure.

Counter keys are `windows.counter_key`s; the table itself (a faust table, or a dict in tests) is
read through `BatchCounts` and written by the agent from `BatchResult.counters`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Final

from streamguard.stream.windows import (
    DAY,
    TUMBLING_HOUR,
    TUMBLING_MINUTE,
    counter_key,
    current_start,
    expired_buckets,
)

__all__ = ("KEEP", "BatchCounts", "WindowCounters", "mark_key")

# Hourly buckets feed the 24 h hopping windows, so they live a day past their end.
KEEP: Final = {TUMBLING_HOUR.name: DAY}


def mark_key(partition: int) -> str:
    """Counters-table key of the last input offset of `partition` whose counts are stored.

    Kept in the counters table itself, so that it lands in the same changelog partition and
    batch as the counts it describes: whichever worker restores the partition (after a crash or
    a rebalance) restores both together, and skips counting messages at or below the mark
    when they are replayed. Counting is then idempotent; deciding and auditing are not skipped
    (their outputs may not have been delivered before the crash, and replays carry the same
    decision ids).
    """
    return f"{partition}|decided-through"


class BatchCounts:
    """One batch's reads and writes of the counters table: reads see the batch's own writes
    first, and the value of each key before the batch's first write is kept (for alerts)."""

    __slots__ = ("_counted", "_marks", "before", "stored", "writes")

    def __init__(self, stored: Mapping[str, Any], writes: dict[str, int]) -> None:
        self.stored = stored
        self.writes = writes  # counter key -> new total (the batch result's counters)
        self.before: dict[str, int] = {}
        self._counted: dict[int, int] = {}  # partition -> last offset counted
        # partition -> its stored mark (None: none), read once per batch: the table is written
        # after the batch.
        self._marks: dict[int, int | None] = {}

    def replayed(self, partition: int, offset: int) -> bool:
        """Whether the stored counters already include this message (see `mark_key`)."""
        if partition in self._marks:
            mark = self._marks[partition]
        else:
            stored = self.stored.get(mark_key(partition))
            mark = self._marks[partition] = stored if isinstance(stored, int) else None
        return mark is not None and offset <= mark

    def counted_through(self, partition: int, offset: int) -> None:
        self._counted[partition] = max(self._counted.get(partition, -1), offset)

    def write_marks(self) -> None:
        for partition, offset in self._counted.items():
            # Written with the counters, in the same changelog partition and batch; never
            # lowered, or the rest of a replay that spans batches would be counted again.
            stored = self.stored.get(mark_key(partition))
            if not isinstance(stored, int) or offset > stored:
                self.writes[mark_key(partition)] = offset

    def count(self, key: str) -> int:
        pending = self.writes.get(key)
        if pending is not None:
            return pending
        value = self.stored.get(key, 0)
        return int(value) if isinstance(value, int) else 0

    def add(self, key: str, n: int) -> int:
        """Add `n` to the counter `key`; returns its new total."""
        current = self.writes.get(key)
        if current is None:
            current = self.first_write(key)
        self.writes[key] = total = current + n
        return total

    def first_write(self, key: str) -> int:
        """The stored value of `key`, which the batch is about to write for the first time
        (kept as its value before the batch)."""
        value = self.stored.get(key, 0)
        current = int(value) if isinstance(value, int) else 0
        self.before.setdefault(key, current)
        return current


class WindowCounters:
    """Across batches, per input partition: the event-time watermark and the live counter keys
    by bucket, so that keys expire with their bucket."""

    __slots__ = ("_cleaned", "_live", "watermarks")

    def __init__(self) -> None:
        self.watermarks: dict[int, float] = {}  # partition -> newest event ts counted
        # partition -> (window, bucket start) -> live counter keys: expiry looks at buckets,
        # not at every key (a day of hourly counters is tens of thousands of keys).
        self._live: dict[int, dict[tuple[str, int], set[str]]] = defaultdict(dict)
        self._cleaned: dict[int, int] = {}  # partition -> minute of the last expiry pass

    def forget_keys(self) -> None:
        """Drop every live key (the partitions this worker owns are about to be re-seeded)."""
        self._live.clear()

    def remember(self, partition: int, window: str, start: int, key: str) -> None:
        """Note a live counter key, so that it expires with its bucket."""
        live = self._live[partition]
        keys = live.get((window, start))
        if keys is None:
            keys = live[(window, start)] = set()
        keys.add(key)

    def advance(self, partition: int, ts: float) -> float:
        """Move the partition's watermark to `ts` if it is newer; returns the watermark."""
        watermark = max(self.watermarks.get(partition, ts), ts)
        self.watermarks[partition] = watermark
        return watermark

    def count(
        self,
        counts: BatchCounts,
        partition: int,
        metric: str,
        agency_id: str,
        window: str,
        start: int,
        n: int,
    ) -> int:
        """Add `n` to one bucket counter; returns its new total."""
        key = counter_key(partition, metric, agency_id, window, start)
        writes = counts.writes
        current = writes.get(key)
        if current is None:  # remembered at the batch's first write of the key
            current = counts.first_write(key)
            self.remember(partition, window, start, key)
        writes[key] = total = current + n
        return total

    def expire(self, partition: int) -> list[str]:
        """The live keys of `partition` whose bucket is past its grace, now forgotten."""
        watermark = self.watermarks.get(partition)
        if watermark is None:
            return []
        minute = current_start(watermark, TUMBLING_MINUTE)
        if self._cleaned.get(partition) == minute:
            return []  # nothing can have expired since the last pass in this minute
        self._cleaned[partition] = minute
        live = self._live[partition]
        return [
            key for bucket in expired_buckets(live, watermark, KEEP) for key in live.pop(bucket)
        ]
