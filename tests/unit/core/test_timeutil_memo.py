"""`parse_ts` keeps what it parsed lately: a kept answer equals the parse itself for any text,
the first time and every time after, and the memo is bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamguard.core import timeutil
from streamguard.core.timeutil import format_ts, parse_ts

_FORMS = st.sampled_from(
    (
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S.%fZ",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%dT%H:%M",
        " %Y-%m-%dT%H:%M:%Sz ",
        "%Y-%m-%d",
    )
)


@st.composite
def _timestamps(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)))
    offset = draw(st.integers(-14 * 60, 14 * 60))
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset)))
    return aware.strftime(draw(_FORMS))


@settings(max_examples=500, deadline=None)
@given(values=st.lists(st.one_of(_timestamps(), st.text(max_size=30)), max_size=8))
def test_a_kept_timestamp_equals_its_parse(values: list[str]) -> None:
    for value in values * 2:  # the second time, each parsed value is kept
        assert parse_ts(value) == timeutil._parse(value)


def test_the_contract_form_round_trips_through_the_memo() -> None:
    for seconds in (0.0, 1_740_830_400.0, 1_740_830_400.25, 4_102_444_800.5):
        text = format_ts(seconds)
        assert parse_ts(text) == seconds and parse_ts(text) == seconds
    assert parse_ts("2025-03-01T12:00:00Z") == datetime(2025, 3, 1, 12, tzinfo=UTC).timestamp()


def test_what_is_not_a_timestamp_is_never_kept() -> None:
    for value in ("", "yesterday", "2025-13-01T00:00:00Z", None, 12, b"2025-03-01"):
        assert parse_ts(value) is None and parse_ts(value) is None
        assert value not in timeutil._PARSED if isinstance(value, str) else True


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeutil, "PARSED_LIMIT", 5)
    timeutil._PARSED.clear()
    for n in range(50):
        text = format_ts(1_740_830_400.0 + n)
        assert parse_ts(text) == 1_740_830_400.0 + n
        assert len(timeutil._PARSED) <= 5
