"""The agency-search gauges: each agency's searches in the current 1 min, 1 h and 24 h windows.

Fed with the totals of the 1 min and 1 h search counters as they move (and as they are restored
after a rebalance); published at most once a second, from the newest bucket seen.
"""

from __future__ import annotations

from typing import Final

from streamguard.stream.types import MetricsSink
from streamguard.stream.windows import (
    HOPPING_DAY,
    TUMBLING_HOUR,
    TUMBLING_MINUTE,
    current_start,
    hopping_totals,
    window_starts,
)

__all__ = ("SearchGauges",)

_WINDOWS: Final = (TUMBLING_MINUTE.name, TUMBLING_HOUR.name)
# Once a second is plenty for a scraped gauge; per batch it cost more than deciding.
_EVERY: Final = 1.0


class SearchGauges:
    """Search counts per (window, bucket start) and agency, and their publication."""

    __slots__ = ("_counts", "_metrics", "_newest", "_pending", "_published")

    def __init__(self, metrics: MetricsSink) -> None:
        self._metrics = metrics
        self._counts: dict[tuple[str, int], dict[str, int]] = {}
        self._newest = 0.0  # start of the newest bucket counted
        self._published = 0.0  # clock of the last publication
        self._pending = False  # counts changed since the last publication

    def clear(self) -> None:
        self._counts.clear()

    def set(self, window: str, start: int, agency_id: str, count: int) -> None:
        """The search counter of `agency_id` in the bucket (`window`, `start`) is `count`."""
        if window not in _WINDOWS:
            return
        bucket = self._counts.get((window, start))
        if bucket is None:
            bucket = self._counts[(window, start)] = {}
        bucket[agency_id] = count
        self._newest = max(self._newest, start)
        self._pending = True

    def publish_due(self, now: float) -> None:
        """Publish if the last publication is a second old. Counts held back here are
        published by `publish_pending` (the app's timer), so the last batch of a burst shows
        even when no traffic follows it."""
        if now - self._published >= _EVERY:
            self.publish_pending(now)

    def publish_pending(self, now: float) -> bool:
        """Publish the gauges if any count changed since the last publication; returns whether
        it published."""
        if not self._pending or not self._counts:
            return False
        self._pending = False
        self._published = now
        newest = self._newest
        minute = current_start(newest, TUMBLING_MINUTE)
        hour = current_start(newest, TUMBLING_HOUR)
        self._metrics.set_agency_searches("1m", self._counts.get(("1m", minute), {}))
        self._metrics.set_agency_searches("1h", self._counts.get(("1h", hour), {}))
        # The 24 h gauge is the trailing day: of the hopping windows holding the newest bucket,
        # the oldest, which ends with that bucket's hour.
        day = window_starts(newest, HOPPING_DAY)[-1]
        self._metrics.set_agency_searches(
            "24h", hopping_totals(day, HOPPING_DAY, lambda s: self._counts.get(("1h", s), {}))
        )
        for bucket in [b for b in self._counts if b[1] < day - TUMBLING_HOUR.step]:
            del self._counts[bucket]
        return True
