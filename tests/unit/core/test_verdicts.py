"""The engine's verdict cache: tied to one snapshot by identity, bounded, and never an answer of
its own (pools are computed for a requester class, never for the requester that asked first)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from streamguard.core import verdicts
from streamguard.core.engine import decide_search
from streamguard.core.models import SearchDecision
from streamguard.core.policy import PolicyState
from streamguard.core.verdicts import VerdictCaches, remember
from tests.helpers import KEYS, NOW, apply_change, change, search


def _decide(state: PolicyState, event: dict[str, Any]) -> SearchDecision:
    decision = decide_search(event, state, NOW)
    assert isinstance(decision, SearchDecision), decision
    return decision


def _with(state: PolicyState, owner: str, setting: str, value: Any) -> PolicyState:
    state, decision = apply_change(state, change(owner, setting, value), KEYS)
    assert decision.outcome == "applied", decision.reasons
    return state


def test_a_cache_belongs_to_one_snapshot_by_identity(state: PolicyState) -> None:
    """The same snapshot gets its cache back; any other snapshot, even an equal copy, starts
    with an empty one."""
    caches = VerdictCaches()
    cache = caches.of(state)
    cache.access[verdicts.AccessKey("o", "networks", "CA", "public", False, False, False)] = ()
    assert caches.of(state) is cache
    copy = dataclasses.replace(state)
    assert copy == state
    fresh = caches.of(copy)
    assert fresh is not cache and fresh.snapshot is copy and not fresh.access


def test_tables_start_over_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table never grows past its limit."""
    monkeypatch.setattr(verdicts, "TABLE_LIMIT", 3)
    table: dict[int, str] = {}
    for i in range(10):
        assert remember(table, i, str(i)) == str(i)
        assert len(table) <= 3 and table[i] == str(i)


def test_a_small_cache_decides_as_a_large_one(
    state: PolicyState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting tables over only costs work: decisions with a cache of 2 entries per table
    equal those with the default."""
    state = _with(state, "tx-dallas-pd", "national_lookup", True)
    state = _with(state, "ga-atlanta-pd", "national_lookup", True)
    state = _with(state, "tx-dallas-pd", "share_with", ["tx-houston-pd", "ca-oxnard-pd"])
    events = [
        search(requester, scope=scope, networks=networks, reason=reason, search_id=f"s-{i}")
        for i, (requester, scope, networks, reason) in enumerate(
            [
                ("tx-houston-pd", "networks", ["tx-dallas-pd", "ca-oxnard-pd"], "robbery"),
                ("ca-oxnard-pd", "national", [], "ICE warrant"),
                ("tx-houston-pd", "national", [], "investigation"),
                ("us-fbi", "national", [], "robbery"),
                ("tx-houston-pd", "networks", ["tx-dallas-pd", "ca-oxnard-pd"], "robbery"),
                ("ca-oxnard-pd", "statewide", [], "robbery"),
            ]
            * 3
        )
    ]
    expected = [_decide(state, e) for e in events]
    monkeypatch.setattr(verdicts, "TABLE_LIMIT", 2)
    small = dataclasses.replace(state)  # another snapshot: its cache starts empty
    assert [_decide(small, e) for e in events] == expected


@pytest.mark.parametrize("first", ["tx-houston-pd", "tx-dallas-pd"])
def test_a_pool_is_computed_for_the_class_not_for_who_asked_first(
    state: PolicyState, first: str
) -> None:
    """Houston's written declaration on file with Mount Prospect admits Houston to that network
    in a national search, and never Dallas (same state, same kind), whoever searches first."""
    state = _with(state, "il-mount-prospect-pd", "national_lookup", True)
    state = _with(state, "il-mount-prospect-pd", "declaration_on_file", ["tx-houston-pd"])
    order = [first, *({"tx-houston-pd", "tx-dallas-pd"} - {first})]
    decided = {r: _decide(state, search(r, scope="national")) for r in order}
    assert "il-mount-prospect-pd" in decided["tx-houston-pd"].allowed
    denied = {v.agency_id: v.codes for v in decided["tx-dallas-pd"].denied}
    assert denied["il-mount-prospect-pd"] == ("NO_DECLARATION_ON_FILE",)


def test_a_snapshot_holds_no_mutable_state(state: PolicyState) -> None:
    """PolicyState is a plain frozen value: deciding leaves it equal to a copy made before,
    and none of its fields is a mutable container."""
    before = dataclasses.replace(state)
    _decide(state, search("tx-houston-pd", scope="statewide"))
    assert state == before
    for f in dataclasses.fields(state):
        assert not isinstance(getattr(state, f.name), dict | list | set), f.name
