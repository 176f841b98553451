"""Replay rules: a signed control record is decided once, in order, and only near its own time."""

from __future__ import annotations

import pytest

from streamguard.core.replay import (
    FUTURE_SKEW,
    MAX_CHANGE_AGE,
    ControlRecord,
    Decided,
    ReplayLedger,
    replay_entry,
    replay_reasons,
    setting_group,
)

NOW = 1_740_830_400.0  # 2025-03-01T12:00:00Z
VENTURA = "ca-ventura-county-so"


def _codes(ledger: ReplayLedger, record: ControlRecord, now: float = NOW) -> list[str]:
    return [r.code for r in replay_reasons(ledger, record, now)]


def _decide(ledger: ReplayLedger, record: ControlRecord, *, applied: bool) -> None:
    ledger.remember(replay_entry(record, applied=applied, now=NOW))


def test_a_fresh_change_passes() -> None:
    """Nothing decided before, dated a minute ago: no replay code."""
    record = ControlRecord.of_change("chg-1", VENTURA, "national_lookup", NOW - 60)
    assert _codes(ReplayLedger(), record) == []


@pytest.mark.parametrize("applied", [True, False])
def test_an_exact_replay_is_rejected_whether_the_original_applied_or_not(applied: bool) -> None:
    """The same change_id decided once (applied or rejected) is REPLAYED_CHANGE."""
    ledger = ReplayLedger()
    record = ControlRecord.of_change("chg-1", VENTURA, "national_lookup", NOW - 60)
    _decide(ledger, record, applied=applied)
    reasons = replay_reasons(ledger, record, NOW)
    assert reasons[0].code == "REPLAYED_CHANGE"
    assert ("applied" if applied else "rejected") in reasons[0].detail


def test_the_ventura_reactivation_replay_is_stale_after_the_owner_turned_it_off() -> None:
    """national_lookup on (t1), off (t2): a re-sent t1 change is older than the last applied."""
    ledger = ReplayLedger()
    on = ControlRecord.of_change("chg-on", VENTURA, "national_lookup", NOW - 600)
    off = ControlRecord.of_change("chg-off", VENTURA, "national_lookup", NOW - 300)
    _decide(ledger, on, applied=True)
    _decide(ledger, off, applied=True)
    # a new id (so not an exact replay) but the old date: still stale
    renamed = ControlRecord.of_change("chg-on-2", VENTURA, "national_lookup", NOW - 600)
    assert _codes(ledger, renamed) == ["REPLAYED_CHANGE"]
    assert _codes(ledger, on) == ["REPLAYED_CHANGE", "REPLAYED_CHANGE"]
    # the same instant as the last applied change is not later than it either
    same = ControlRecord.of_change("chg-x", VENTURA, "national_lookup", NOW - 300)
    assert _codes(ledger, same) == ["REPLAYED_CHANGE"]
    later = ControlRecord.of_change("chg-y", VENTURA, "national_lookup", NOW - 1)
    assert _codes(ledger, later) == []


def test_share_with_and_unshare_with_are_one_setting_and_others_are_apart() -> None:
    """An old share_with cannot slip in after a newer unshare_with; other settings don't block."""
    ledger = ReplayLedger()
    _decide(ledger, ControlRecord.of_change("u", VENTURA, "unshare_with", NOW - 100), applied=True)
    assert setting_group("unshare_with") == "share_with"
    old_share = ControlRecord.of_change("s", VENTURA, "share_with", NOW - 200)
    assert _codes(ledger, old_share) == ["REPLAYED_CHANGE"]
    other_setting = ControlRecord.of_change("n", VENTURA, "national_lookup", NOW - 200)
    other_owner = ControlRecord.of_change("o", "ca-oxnard-pd", "share_with", NOW - 200)
    assert _codes(ledger, other_setting) == [] and _codes(ledger, other_owner) == []


def test_a_rejected_change_does_not_move_the_last_applied_ts() -> None:
    """Only applied changes set the bar; a rejected newer one leaves older lawful ones possible."""
    ledger = ReplayLedger()
    _decide(
        ledger, ControlRecord.of_change("r", VENTURA, "retention_days", NOW - 10), applied=False
    )
    assert ledger.last_applied(VENTURA, "retention_days") is None
    assert _codes(ledger, ControlRecord.of_change("a", VENTURA, "retention_days", NOW - 20)) == []


@pytest.mark.parametrize(
    ("offset", "codes"),
    [
        (FUTURE_SKEW, []),  # exactly at the tolerance
        (FUTURE_SKEW + 1, ["FUTURE_DATED"]),
        (2_326_000_000.0, ["FUTURE_DATED"]),  # dated 2099
        (-MAX_CHANGE_AGE, []),
        (-MAX_CHANGE_AGE - 1, ["REPLAYED_CHANGE"]),
        (-NOW, ["REPLAYED_CHANGE"]),  # dated 1970
    ],
)
def test_changes_dated_far_from_the_deciding_clock_are_rejected(
    offset: float, codes: list[str]
) -> None:
    """FUTURE_DATED beyond 5 minutes ahead; older than the policy topic keeps counts as a replay."""
    record = ControlRecord.of_change("chg-1", VENTURA, "national_lookup", NOW + offset)
    assert _codes(ReplayLedger(), record) == codes


def test_agency_records_have_no_age_limit_but_are_ordered_and_decided_once() -> None:
    """The compacted agencies topic keeps old records; replays and older records are refused."""
    ledger = ReplayLedger()
    old = ControlRecord.of_agency("tx-houston-pd", NOW - 400 * 86_400)
    assert _codes(ledger, old) == []
    _decide(ledger, old, applied=True)
    assert _codes(ledger, old) == ["REPLAYED_CHANGE", "REPLAYED_CHANGE"]
    older = ControlRecord.of_agency("tx-houston-pd", NOW - 500 * 86_400)
    assert _codes(ledger, older) == ["REPLAYED_CHANGE"]
    future = ControlRecord.of_agency("tx-houston-pd", NOW + 3600)
    assert _codes(ledger, future) == ["FUTURE_DATED"]
    # the same instant written differently is the same record
    assert old.key == ControlRecord.of_agency("tx-houston-pd", old.ts).key


def test_a_redelivered_message_is_not_a_replay_of_itself() -> None:
    """After a crash the same message (same partition and offset) is decided again as before."""
    ledger = ReplayLedger()
    record = ControlRecord.of_change("chg-1", VENTURA, "national_lookup", NOW - 60, "policy-0@7")
    _decide(ledger, record, applied=True)
    assert _codes(ledger, record) == []
    copy = ControlRecord.of_change("chg-1", VENTURA, "national_lookup", NOW - 60, "policy-1@3")
    assert _codes(ledger, copy) == ["REPLAYED_CHANGE", "REPLAYED_CHANGE"]


def test_a_ledger_over_a_base_reads_through_and_writes_only_itself() -> None:
    """A batch's ledger sees the tables' decisions and collects only its own writes."""
    base = ReplayLedger()
    first = ControlRecord.of_change("chg-1", VENTURA, "national_lookup", NOW - 60)
    _decide(base, first, applied=True)
    batch = ReplayLedger(base)
    assert _codes(batch, first)[0] == "REPLAYED_CHANGE"
    second = ControlRecord.of_change("chg-2", VENTURA, "national_lookup", NOW - 30)
    _decide(batch, second, applied=True)
    assert set(batch.decided_writes) == {"change:chg-2"}
    assert batch.applied_writes == {(VENTURA, "national_lookup"): NOW - 30}
    assert batch.applied_writes_of(VENTURA) == {"national_lookup": NOW - 30}
    assert batch.applied_writes_of("tx-houston-pd") == {}
    assert base.decided("change:chg-2") is None


def test_decided_values_round_trip_and_unreadable_ones_are_none() -> None:
    """Table values are plain JSON; a value that is not one reads as None."""
    decided = Decided(True, NOW, "policy-0@1")
    assert Decided.from_value(decided.to_value()) == decided
    for bad in (
        None,
        "x",
        {"applied": "yes", "decided_at": 1},
        {"applied": True, "decided_at": True},
    ):
        assert Decided.from_value(bad) is None
