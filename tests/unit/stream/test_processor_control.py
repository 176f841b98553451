"""The batch processor on control records (docs/contract.md section 2a), without a broker: what
it remembers for the replay tables, the alerts it raises, and ids of replays of their own."""

from __future__ import annotations

from typing import Any

from streamguard import serde
from streamguard.core.statutes import load_statutes
from streamguard.settings import WorkerSettings
from streamguard.stream.processor import BatchProcessor
from streamguard.stream.tables import TableReplayMemory, build_state
from streamguard.stream.types import BatchResult, InMessage
from tests.helpers import AGENCIES, KEYS, NOW, RecordingSink, change, registry_record, search


def _processor(tables: tuple[dict[str, Any], dict[str, Any]] | None = None) -> BatchProcessor:
    decided, applied = tables if tables is not None else ({}, {})
    return BatchProcessor(
        WorkerSettings(rate_limit_per_minute=0),
        build_state(load_statutes(), AGENCIES, (), (), 0),
        KEYS,
        b"salt-salt-salt-salt",
        RecordingSink(),
        lambda: NOW,
        replay=TableReplayMemory(decided, applied),
    )


def _msg(role: str, offset: int, value: dict[str, Any], partition: int = 0) -> InMessage:
    """A message keyed as the contract keys it: by the record's agency."""
    key = str(value["agency_id"]).encode()
    return InMessage(role, f"t.{role}", partition, offset, key, serde.dumps(value))


def _audit(result: BatchResult) -> list[dict[str, Any]]:
    return [serde.loads(record) for _, record in result.audit]


def _alerts(result: BatchResult, kind: str) -> list[dict[str, Any]]:
    return [m.value for m in result.messages if m.role == "alerts" and m.value["kind"] == kind]


def test_a_replay_in_the_same_batch_is_refused_and_named_apart() -> None:
    """The original applies; its copy in the same batch is REPLAYED_CHANGE with its own id."""
    proc = _processor()
    on = change("tx-houston-pd", "national_lookup", True)
    result = proc.process(
        [_msg("policy", 0, on), _msg("policy", 1, on)], now=NOW, counters={}, heads={}
    )
    first, second = _audit(result)
    assert (first["outcome"], second["outcome"]) == ("applied", "rejected")
    assert second["codes"] == ["REPLAYED_CHANGE"]
    assert first["decision_id"] != second["decision_id"]
    assert set(result.control_decided) == {f"change:{on['change_id']}"}
    partition, groups = result.control_applied["tx-houston-pd"]
    assert partition == 0 and set(groups) == {"national_lookup"}


def test_what_the_tables_hold_is_refused_in_a_later_batch_or_another_processor() -> None:
    """A new processor (after a restart, on another worker) reads the replay tables."""
    first = _processor()
    on = change("tx-houston-pd", "national_lookup", True)
    result = first.process([_msg("policy", 0, on)], now=NOW, counters={}, heads={})
    decided = {k: v for k, (_, v) in result.control_decided.items()}
    applied = {k: v for k, (_, v) in result.control_applied.items()}
    later = _processor((decided, applied))
    again = later.process([_msg("policy", 7, on, partition=1)], now=NOW, counters={}, heads={})
    [record] = _audit(again)
    assert (record["outcome"], record["codes"]) == ("rejected", ["REPLAYED_CHANGE"])
    # the same message redelivered (same partition and offset) is decided as before
    redelivered = _processor((decided, applied))
    same = redelivered.process([_msg("policy", 0, on)], now=NOW, counters={}, heads={})
    assert _audit(same)[0]["outcome"] == "applied"


def test_a_crash_after_two_changes_of_one_setting_redelivers_both_as_decided() -> None:
    """Two changes of one setting decided and written to the tables, their offsets never
    committed: the restarted worker gets both again. Each keeps its outcome and decision id, and
    the later change stays in force (the soak found the earlier one refused as its own replay
    under a second decision id, seed 916796)."""
    on = change("tx-houston-pd", "national_lookup", True)
    off = change("tx-houston-pd", "national_lookup", False)
    batch = [_msg("policy", 0, on), _msg("policy", 1, off)]
    first = _processor().process(batch, now=NOW, counters={}, heads={})
    decided = {k: v for k, (_, v) in first.control_decided.items()}
    applied = {k: v for k, (_, v) in first.control_applied.items()}
    settings = [(k, v) for k, (_, v) in first.settings.items()]
    restarted = BatchProcessor(
        WorkerSettings(rate_limit_per_minute=0),
        build_state(load_statutes(), AGENCIES, (), settings, 0),
        KEYS,
        b"salt-salt-salt-salt",
        RecordingSink(),
        lambda: NOW,
        replay=TableReplayMemory(decided, applied),
    )
    again = restarted.process(batch, now=NOW + 30, counters={}, heads={})

    def seen(result: BatchResult) -> list[tuple[str, str, list[str]]]:
        return [(r["decision_id"], r["outcome"], r["codes"]) for r in _audit(result)]

    assert seen(again) == seen(first)
    assert [o for _, o, _ in seen(first)] == ["applied", "applied"]
    assert restarted.state.settings_for("tx-houston-pd").national_lookup is False
    assert again.settings["tx-houston-pd"][1]["national_lookup"] is False


def test_widening_changes_alert_their_owner_and_narrowing_ones_do_not() -> None:
    """policy_widened for a lookup turned on; nothing for turning it off again."""
    proc = _processor()
    result = proc.process(
        [
            _msg("policy", 0, change("tx-houston-pd", "national_lookup", True)),
            _msg("policy", 1, change("tx-houston-pd", "national_lookup", False)),
        ],
        now=NOW,
        counters={},
        heads={},
    )
    [alert] = _alerts(result, "policy_widened")
    assert alert["agency_id"] == "tx-houston-pd" and "national_lookup turned on" in alert["detail"]


def test_a_rejected_agency_record_is_quarantined_and_changes_nothing() -> None:
    """Unsigned relabel: quarantined (kind agency), audited rejected, no registry write."""
    proc = _processor()
    relabel = {"agency_id": "tx-houston-pd", "name": "Houston", "state": "CA", "kind": "local"}
    result = proc.process([_msg("agencies", 0, relabel)], now=NOW, counters={}, heads={})
    [record] = _audit(result)
    assert (record["kind"], record["outcome"], record["codes"]) == (
        "agency",
        "rejected",
        ["UNSIGNED_CHANGE"],
    )
    [quarantined] = [m.value for m in result.messages if m.role == "quarantine"]
    assert quarantined["kind"] == "agency" and quarantined["original"] == relabel
    assert result.registry == {} and result.revisions == {}
    assert proc.state.agencies["tx-houston-pd"].state == "TX"


def test_a_registry_signed_move_alerts_the_agency() -> None:
    """registry_changed when an existing agency moves state; none for a new agency."""
    proc = _processor()
    moved = registry_record(
        {"agency_id": "tx-houston-pd", "name": "Houston", "state": "NM", "kind": "local"}
    )
    new = registry_record(
        {"agency_id": "nv-reno-pd", "name": "Reno", "state": "NV", "kind": "local"}
    )
    result = proc.process(
        [_msg("agencies", 0, moved), _msg("agencies", 1, new)], now=NOW, counters={}, heads={}
    )
    [alert] = _alerts(result, "registry_changed")
    assert alert["agency_id"] == "tx-houston-pd" and "TX -> NM" in alert["detail"]
    assert result.registry["tx-houston-pd"][1]["state"] == "NM"


def test_a_policy_change_between_two_searches_of_one_batch_holds_for_the_second() -> None:
    """Cached verdicts belong to one snapshot: a change between two national searches of a
    batch (an owner opening its network) takes effect for the second one."""
    proc = _processor()
    first = search("il-mount-prospect-pd", scope="national", search_id="s-a")
    second = search("il-mount-prospect-pd", scope="national", search_id="s-b")
    key = b"il-mount-prospect-pd"
    batch = [
        InMessage("searches", "t.searches", 0, 0, key, serde.dumps(first)),
        _msg("policy", 1, change("tx-houston-pd", "national_lookup", True)),
        InMessage("searches", "t.searches", 0, 2, key, serde.dumps(second)),
    ]
    a, _, b = _audit(proc.process(batch, now=NOW, counters={}, heads={}))
    assert "tx-houston-pd" not in a["allowed"] and "tx-houston-pd" in b["allowed"]
