"""Event-time window maths for the worker's counters. Pure: every time is an argument.

Windows are aligned to the epoch on the event's own `ts`, never the clock or the Kafka
timestamp, so a replay of last week's events counts exactly as the live run did.

A hopping window of `size` by `step` is the sum of the `size // step` tumbling buckets of
`step` it covers. The worker therefore stores only tumbling buckets and sums them on read:
one counter write per event instead of one per overlapping window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = (
    "DAY",
    "HOPPING_DAY",
    "HOUR",
    "MINUTE",
    "TUMBLING_HOUR",
    "TUMBLING_MINUTE",
    "WINDOWS",
    "Bucket",
    "WindowSpec",
    "bucket_start",
    "counter_key",
    "crossed",
    "current_start",
    "expired",
    "expired_buckets",
    "hopping_totals",
    "parse_counter_key",
    "window_starts",
)

Bucket = tuple[str, int]  # (window name, bucket start): what a counter's expiry depends on
MINUTE: Final = 60
HOUR: Final = 3600
DAY: Final = 86_400


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A window family: `size` seconds long, a new one every `step` seconds (tumbling: equal)."""

    name: str
    size: int
    step: int
    # How long after its end a window still accepts late events; after that it is dropped.
    grace: int

    def __post_init__(self) -> None:
        if self.step <= 0 or self.size <= 0 or self.size % self.step:
            msg = f"window {self.name}: size must be a positive multiple of step"
            raise ValueError(msg)

    @property
    def buckets(self) -> int:
        """How many `step` buckets one window spans."""
        return self.size // self.step


TUMBLING_MINUTE: Final = WindowSpec("1m", MINUTE, MINUTE, grace=5 * MINUTE)
TUMBLING_HOUR: Final = WindowSpec("1h", HOUR, HOUR, grace=HOUR)
HOPPING_DAY: Final = WindowSpec("24h", DAY, HOUR, grace=HOUR)
WINDOWS: Final = {spec.name: spec for spec in (TUMBLING_MINUTE, TUMBLING_HOUR, HOPPING_DAY)}


def bucket_start(ts: float, step: int) -> int:
    """Start of the `step`-aligned bucket holding `ts` (a bucket is [start, start + step))."""
    return math.floor(ts / step) * step


def window_starts(ts: float, spec: WindowSpec) -> tuple[int, ...]:
    """Starts of every window of `spec` that contains `ts`, newest first."""
    newest = bucket_start(ts, spec.step)
    return tuple(newest - i * spec.step for i in range(spec.buckets))


def current_start(ts: float, spec: WindowSpec) -> int:
    """Start of the newest window containing `ts`: the one a dashboard calls 'current'."""
    return bucket_start(ts, spec.step)


def hopping_totals(
    start: int, spec: WindowSpec, bucket: Callable[[int], Mapping[str, int]]
) -> dict[str, int]:
    """Per key, the value of the window starting at `start`: the sum of its `step` buckets.

    `bucket(s)` gives the counts (key -> count) of the bucket starting at `s`.
    """
    totals: dict[str, int] = {}
    for i in range(spec.buckets):
        for key, count in bucket(start + i * spec.step).items():
            totals[key] = totals.get(key, 0) + count
    return totals


def expired(start: int, spec: WindowSpec, watermark: float, *, keep: int = 0) -> bool:
    """Whether the bucket starting at `start` can be dropped once event time reached `watermark`.

    `keep` extends the life of a bucket that longer windows are summed from (a 1 h bucket must
    live as long as the 24 h windows that include it).
    """
    return start + spec.step + max(spec.grace, keep) <= watermark


def crossed(before: int, after: int, threshold: int) -> bool:
    """True exactly once per window: when a count first goes above `threshold`.

    Counts only grow inside a window, so the step that moves it from <= threshold to
    > threshold happens once; any later batch starts above the threshold and stays silent.
    """
    return before <= threshold < after


def counter_key(partition: int, metric: str, agency_id: str, window: str, start: int) -> str:
    """Table key of one bucket counter.

    The input partition is part of the key so that a restarted or rebalanced worker can tell,
    from the key alone, which of the counters it restored belong to partitions it now owns and
    may expire.
    """
    return f"{partition}|{metric}|{window}|{start}|{agency_id}"


def parse_counter_key(key: str) -> tuple[int, str, str, int, str] | None:
    """Inverse of `counter_key`; None for a key of another shape."""
    parts = key.split("|", 4)
    if len(parts) != 5:
        return None
    partition, metric, window, start, agency_id = parts
    try:
        return int(partition), metric, window, int(start), agency_id
    except ValueError:
        return None


def expired_buckets(
    buckets: Iterable[Bucket], watermark: float, keep: Mapping[str, int]
) -> list[Bucket]:
    """The buckets past their grace (and past `keep[window]`) once event time reached
    `watermark`; a bucket of a window name not in `WINDOWS` never expires."""
    out: list[Bucket] = []
    for bucket in buckets:
        window, start = bucket
        spec = WINDOWS.get(window)
        if spec is not None and expired(start, spec, watermark, keep=keep.get(window, 0)):
            out.append(bucket)
    return out
