"""Event-time window maths: ranges, hopping sums, expiry, threshold crossing, counter keys."""

from __future__ import annotations

import pytest

from streamguard.stream.windows import (
    DAY,
    HOPPING_DAY,
    HOUR,
    TUMBLING_HOUR,
    TUMBLING_MINUTE,
    WindowSpec,
    bucket_start,
    counter_key,
    crossed,
    current_start,
    expired,
    expired_buckets,
    hopping_totals,
    parse_counter_key,
    window_starts,
)

T0 = 1_739_210_400  # 2025-02-10T18:00:00Z, an hour boundary


@pytest.mark.parametrize(
    ("ts", "step", "start"),
    [
        (T0, 60, T0),  # exactly on a boundary: the bucket starts there
        (T0 + 59.999, 60, T0),  # last instant of the bucket
        (T0 + 60, 60, T0 + 60),  # the end is exclusive
        (T0 - 0.5, HOUR, T0 - HOUR),  # just before the hour belongs to the previous hour
        (-1.0, 60, -60),  # before the epoch still floors, not truncates toward zero
    ],
)
def test_bucket_start(ts: float, step: int, start: int) -> None:
    """A bucket is [start, start + step), aligned to the epoch."""
    assert start == bucket_start(ts, step)


def test_tumbling_window_has_one_start() -> None:
    """A tumbling window family gives exactly one window per timestamp."""
    assert window_starts(T0 + 30, TUMBLING_MINUTE) == (T0,)
    assert window_starts(T0 + HOUR - 1, TUMBLING_HOUR) == (T0,)


def test_hopping_windows_all_contain_the_timestamp() -> None:
    """24 h by 1 h: 24 windows contain a ts, newest first, each [start, start + 24 h)."""
    ts = T0 + 1800
    starts = window_starts(ts, HOPPING_DAY)
    assert len(starts) == 24
    assert starts[0] == T0
    assert starts[-1] == T0 - 23 * HOUR
    assert all(start <= ts < start + HOPPING_DAY.size for start in starts)
    assert current_start(ts, HOPPING_DAY) == T0


def test_hopping_totals_sum_their_buckets() -> None:
    """A 24 h window's value, per key, is the sum of the 24 hourly buckets inside it, none
    outside."""
    buckets = {T0 - i * HOUR: {"a": 1} for i in range(30)}  # 30 hours with one event each
    buckets[T0 - 2 * HOUR] = {"a": 1, "b": 5}
    buckets[T0 + HOUR] = {"c": 9}  # after the window

    def bucket(start: int) -> dict[str, int]:
        return buckets.get(start, {})

    assert hopping_totals(T0 - 23 * HOUR, HOPPING_DAY, bucket) == {"a": 24, "b": 5}
    # [T0-30h, T0-6h) holds buckets T0-30h .. T0-7h; T0-30h itself is empty.
    assert hopping_totals(T0 - 30 * HOUR, HOPPING_DAY, bucket) == {"a": 23}
    assert hopping_totals(T0 + 2 * HOUR, HOPPING_DAY, bucket) == {}


def test_window_spec_rejects_uneven_hops() -> None:
    """A size that is not a multiple of the step cannot be summed from buckets."""
    with pytest.raises(ValueError, match="multiple"):
        WindowSpec("bad", 100, 30, grace=0)


@pytest.mark.parametrize(
    ("watermark", "keep", "result"),
    [
        (T0 + 60 + 299, 0, False),  # inside the 5 min grace after the minute ends
        (T0 + 60 + 300, 0, True),  # grace over
        (T0 + 60 + 300, DAY, False),  # a bucket longer windows still need is kept
    ],
)
def test_expiry_follows_event_time(watermark: float, keep: int, result: bool) -> None:
    """Expiry depends on the event-time watermark and grace, never on the wall clock."""
    assert result is expired(T0, TUMBLING_MINUTE, watermark, keep=keep)


@pytest.mark.parametrize(
    ("before", "after", "threshold", "result"),
    [
        (0, 3, 3, False),  # reaching the threshold is not passing it
        (3, 4, 3, True),  # one above: the crossing
        (2, 10, 3, True),  # a batch may jump over it
        (4, 9, 3, False),  # already above: no second alert in the same window
        (0, 1, 0, True),  # threshold 0: the first event alerts
    ],
)
def test_crossed_fires_once(before: int, after: int, threshold: int, result: bool) -> None:
    """Passing a threshold is detected in exactly one update per window."""
    assert result is crossed(before, after, threshold)


def test_counter_key_round_trip() -> None:
    """Keys carry the partition and survive agency ids with odd characters."""
    key = counter_key(3, "searches", "tx-houston|pd", "1h", T0)
    assert parse_counter_key(key) == (3, "searches", "1h", T0, "tx-houston|pd")
    assert parse_counter_key("not a key") is None
    assert parse_counter_key("x|m|1h|start|a") is None


def test_expired_buckets_follow_their_window_and_keep() -> None:
    """Expiry picks the buckets past grace; kept windows live longer, unknown ones forever."""
    minute_old, minute_fresh = ("1m", T0), ("1m", T0 + 600)
    hourly, unknown = ("1h", T0), ("7d", T0 - 9 * DAY)
    buckets = [minute_old, minute_fresh, hourly, unknown]
    assert expired_buckets(buckets, T0 + 700, {"1h": DAY}) == [minute_old]
    assert expired_buckets(buckets, T0 + HOUR + DAY + HOUR, {"1h": DAY}) == [
        minute_old,
        minute_fresh,
        hourly,
    ]
    assert expired_buckets(buckets, T0 + 2 * HOUR + 1, {}) == [minute_old, minute_fresh, hourly]
