"""Whole decisions kept per snapshot (`VerdictCache.searches`, `reads`): networks-scoped searches
and reads decided against a warm cache, asked again and again by the same requesters and owners,
equal each one decided alone on a fresh snapshot, and so do the outputs derived from a kept
verdicts tuple (lists, grouped reasons, audit fields). A policy change is a new snapshot: what
was kept under the old one is never served."""

from __future__ import annotations

import dataclasses
import random
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamguard.core import engine, verdicts
from streamguard.core.engine import decide_read, decide_search
from streamguard.core.models import MalformedDecision, ReadDecision, SearchDecision
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import format_ts
from streamguard.core.verdicts import decision_lists, derived_of
from streamguard.local.testing import plate_read
from streamguard.stream import outputs
from streamguard.stream.outputs import audit_fields, grouped_reasons, lists_of, route
from tests.helpers import KEYS, apply_change, change, read, search
from tests.unit.core.fanout_samples import NOW, random_search, world

_STATE: dict[int, tuple[PolicyState, list[str]]] = {}


def _snapshot(seed: int) -> tuple[PolicyState, list[str]]:
    if seed not in _STATE:
        agencies, owner_settings = world(seed)
        state = PolicyState.create(load_statutes(), agencies, owner_settings)
        _STATE[seed] = (state, [a.agency_id for a in agencies])
    return _STATE[seed]


def _searches(ids: list[str], rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Networks-scoped searches by a few requesters, each with a few usual network lists (and
    unknown and repeated ids), purposes and windows: many ask exactly what one asked before."""
    people = []
    for _ in range(rng.randint(1, 6)):
        requester = rng.choice(ids) if rng.random() < 0.95 else "zz-unknown"
        lists = [
            rng.sample(ids, rng.randint(1, 6)) + (["zz-gone"] if rng.random() < 0.1 else [])
            for _ in range(rng.randint(1, 3))
        ]
        people.append((requester, lists))
    out = []
    for n in range(count):
        requester, lists = rng.choice(people)
        networks = rng.choice(lists)
        if rng.random() < 0.1:
            networks = networks + networks[:1]  # a network named twice is decided once
        starts = (None, 0.5, 1, 10, 20, 40, 100, 400)
        out.append(random_search(rng, n, requester, starts, scope="networks", networks=networks))
    return out


def _reads(ids: list[str], rng: random.Random, count: int) -> list[dict[str, Any]]:
    cameras = [
        (
            rng.choice(ids) if rng.random() < 0.95 else "zz-unknown",
            rng.sample(ids, rng.randint(0, 4)),
        )
        for _ in range(rng.randint(1, 6))
    ]
    out = []
    for n in range(count):
        owner, share_to = rng.choice(cameras)
        event = plate_read(
            owner,
            share_to + (["zz-gone"] if rng.random() < 0.05 else []),
            ts=format_ts(NOW - 86_400 * rng.choice((0.01, 1, 10, 40, 100, 400))),
            read_id=f"r-{n}",
        )
        event["hotlist_hit"] = rng.random() < 0.2
        out.append(event)
    return out


def _written(event: dict[str, Any], decision: SearchDecision | ReadDecision) -> list[Any]:
    """Every output record and the audit fields of `decision`, encoded."""
    lists = lists_of(decision)
    outs = route(event, decision, "d", format_ts(NOW), fallback_key="d", lists=lists)
    fields = audit_fields(event, decision, "d", format_ts(NOW), None, lists)
    return [(o.role, o.key, orjson.dumps(o.value)) for o in outs] + [orjson.dumps(fields)]


def _reference_outputs(
    event: dict[str, Any], decision: SearchDecision | ReadDecision
) -> tuple[Any, ...]:
    """The lists, grouped reasons and written records computed from the verdicts, with
    nothing kept for any verdicts tuple."""
    top = decision.search_reasons if isinstance(decision, SearchDecision) else decision.read_reasons
    lists = decision_lists(top, decision.verdicts)
    with mock.patch.object(outputs, "derived_of", lambda verdicts: None):
        written = _written(event, decision)
    return lists, grouped_reasons(top, lists.denied), written


def _outputs(event: dict[str, Any], decision: SearchDecision | ReadDecision) -> tuple[Any, ...]:
    lists = lists_of(decision)
    top = decision.search_reasons if isinstance(decision, SearchDecision) else decision.read_reasons
    return lists, grouped_reasons(top, lists.denied), _written(event, decision)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), world=st.integers(0, 2))
def test_kept_searches_and_reads_decide_as_each_decided_alone(seed: int, world: int) -> None:
    state, ids = _snapshot(world)
    rng = random.Random(seed)
    warm = dataclasses.replace(state)  # its own snapshot: a cache that starts empty
    events: list[dict[str, Any]] = _searches(ids, rng, 40) + _reads(ids, rng, 40)
    rng.shuffle(events)
    # Each decided alone first: the engine keeps one snapshot's cache at a time, so deciding
    # them in between would empty the warm one.
    expected = [_decide(event, dataclasses.replace(state)) for event in events]
    expected_outputs = [_reference_outputs(e, d) for e, d in zip(events, expected, strict=True)]
    for _ in range(2):  # the second round finds every decision kept
        for event, alone, written in zip(events, expected, expected_outputs, strict=True):
            got = _decide(event, warm)
            assert got == alone
            assert _outputs(event, got) == written


def _decide(event: dict[str, Any], state: PolicyState) -> SearchDecision | ReadDecision:
    if event["type"] == "search_request":
        decision = decide_search(event, state, NOW)
    else:
        decision = decide_read(event, state, NOW)
    assert not isinstance(decision, MalformedDecision), decision
    return decision


def test_a_repeated_search_reuses_its_verdicts_and_their_lists(state: PolicyState) -> None:
    """The same requester, networks, purpose and retention bucket: the same verdicts tuple,
    whose lists are derived once; another bucket or purpose is decided on its own."""
    event = search("ca-oxnard-pd", networks=["ca-oxnard-pd", "ca-ventura-county-so"])
    first = decide_search(event, state, NOW)
    again = decide_search({**event, "search_id": "b"}, state, NOW)
    assert isinstance(first, SearchDecision) and isinstance(again, SearchDecision)
    assert again.verdicts is first.verdicts
    assert derived_of(first.verdicts) is not None
    assert lists_of(again) is lists_of(first)
    other = decide_search({**event, "reason": "ICE warrant"}, state, NOW)
    assert isinstance(other, SearchDecision) and other.verdicts is not first.verdicts


def test_kept_decisions_are_bounded(state: PolicyState, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each table of kept decisions, and the shared tuples, start over at SEARCH_LIMIT."""
    monkeypatch.setattr(verdicts, "SEARCH_LIMIT", 3)
    snapshot = dataclasses.replace(state)
    for n in range(10):
        event = search("ca-oxnard-pd", networks=["ca-ventura-county-so"])
        decide_search({**event, "reason": f"burglary {n}"}, snapshot, NOW)
        decide_read(read("ca-oxnard-pd", ["tx-dallas-pd"] * (n + 1)), snapshot, NOW)
        assert len(engine._CACHES.of(snapshot).searches) <= 3
        assert len(engine._READ_CACHES.of(snapshot).reads) <= 3
        assert len(verdicts._SHARED) <= 3


def test_a_policy_change_is_never_answered_from_kept_decisions(state: PolicyState) -> None:
    """The same search and read before and after the owner shares: the new snapshot decides
    them afresh."""
    event = search("ca-oxnard-pd", networks=["ca-ventura-county-so"])
    seen = read("ca-ventura-county-so", ["ca-oxnard-pd"])
    before = [decide_search(event, state, NOW), decide_read(seen, state, NOW)]
    assert [d.outcome for d in before] == ["denied", "denied"]
    shared, decision = apply_change(
        state, change("ca-ventura-county-so", "share_with", ["ca-oxnard-pd"]), KEYS
    )
    assert decision.outcome == "applied", decision
    after = [decide_search(event, shared, NOW), decide_read(seen, shared, NOW)]
    assert [d.outcome for d in after] == ["approved", "shared"]
    assert [decide_search(event, state, NOW), decide_read(seen, state, NOW)] == before
