"""The demo scenario: reproducible, complete, and decided by the pure engine as the story says."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from streamguard import serde
from streamguard.core.keys import parse_keys
from streamguard.core.models import ChangeDecision, Decision, ReadDecision, SearchDecision
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import parse_ts
from streamguard.local.scenario import (
    MIN_EVENTS,
    Message,
    Scenario,
    build_scenario,
    decide_scenario,
)
from tests.helpers import NOW as _NOW

assert _NOW is not None
NOW: float = _NOW
EVENTS = 1500


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(NOW, EVENTS, seed=7)


@pytest.fixture(scope="module")
def decided(scenario: Scenario) -> list[tuple[Message, Decision]]:
    return list(decide_scenario(scenario, load_statutes()))


def _objects(messages: tuple[Message, ...]) -> Iterator[dict[str, Any]]:
    for message in messages:
        try:
            value = serde.loads(message.value)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value


def _decision(decided: list[tuple[Message, Decision]], event_id: str) -> Decision:
    [decision] = [d for m, d in decided if m.event_id == event_id]
    return decision


def test_same_seed_and_time_same_scenario_else_other_events() -> None:
    one = build_scenario(NOW, 200, seed=3)
    assert build_scenario(NOW, 200, seed=3) == one
    other = build_scenario(NOW, 200, seed=4)
    assert other.stream != one.stream
    assert other.agencies == one.agencies  # the registry is the story, not the dice
    later = build_scenario(NOW + 60, 200, seed=3)
    # a rerun is not a replay (the relabel act names its agency, as every agency record does)
    ids = {m.event_id for m in one.stream} - {None, one.relabel_id}
    assert ids.isdisjoint(m.event_id for m in later.stream)


def test_stream_has_the_asked_size_and_unique_event_ids(scenario: Scenario) -> None:
    assert len(scenario.stream) == EVENTS
    ids = Counter(m.event_id for m in scenario.messages if m.event_id is not None)
    # Only the two acts repeat an id: the replayed change and the relabel of a registered agency.
    assert {i for i, n in ids.items() if n > 1} == {scenario.replay_id, scenario.relabel_id}
    assert ids[scenario.replay_id] == ids[scenario.relabel_id] == 2
    with pytest.raises(ValueError, match="at least"):
        build_scenario(NOW, MIN_EVENTS - 1)


def test_every_contract_event_kind_is_on_its_topic(scenario: Scenario) -> None:
    """Agencies, policy changes, searches and reads each on their topic, plus broken bytes."""
    kinds: dict[str, set[str]] = {}
    for message in scenario.messages:
        try:
            value = serde.loads(message.value)
        except ValueError:
            kinds.setdefault(message.topic, set()).add("not json")
            continue
        kind = value.get("type", "agency") if isinstance(value, dict) else "not an object"
        kinds.setdefault(message.topic, set()).add(kind)
    assert kinds["agencies"] == {"agency"}
    assert kinds["policy"] == {"policy_change"}
    assert {"search_request", "not json", "not an object"} <= kinds["searches"]
    assert {"plate_read", "not json", "not an object"} <= kinds["reads"]


def test_registry_spans_the_parties_of_the_story(scenario: Scenario) -> None:
    by_state = Counter(a["state"] for a in scenario.agencies)
    ids = {a["agency_id"] for a in scenario.agencies}
    assert {
        "ca-ventura-county-so",
        "ca-oxnard-pd",
        "il-mount-prospect-pd",
        "us-ice-ero",
        "us-hsi",
        "us-cbp-usbp",
        "us-fbi",
        "us-atf",
    } <= ids
    assert by_state["CA"] >= 10 and by_state["US"] >= 5
    assert {"TX", "FL", "GA", "AZ", "IL", "VA", "WA"} <= by_state.keys()
    assert any(a["kind"] == "private" for a in scenario.agencies)
    assert [m.key for m in scenario.registry] == [a["agency_id"] for a in scenario.agencies]


def test_the_ventura_flip_is_unsigned_and_reenables_national_lookup(scenario: Scenario) -> None:
    [flip] = [c for c in _objects(scenario.stream) if c.get("change_id") == scenario.flip_id]
    assert (flip["agency_id"], flip["setting"], flip["value"]) == (
        "ca-ventura-county-so",
        "national_lookup",
        True,
    )
    assert "signature" not in flip and "key_id" not in flip


def test_lawful_changes_verify_and_the_forged_one_does_not(scenario: Scenario) -> None:
    keys = parse_keys(scenario.keys, "the demo keys")
    setup = list(_objects(scenario.policy))
    assert setup and all(keys[c["key_id"]].verifies("policy_change", c) for c in setup)
    assert all(keys[c["key_id"]].agency_id == c["agency_id"] for c in setup)
    registry = list(_objects(scenario.registry))
    assert all(
        keys[r["key_id"]].is_registry and keys[r["key_id"]].verifies("agency", r) for r in registry
    )
    [forged] = [c for c in _objects(scenario.stream) if c.get("change_id") == scenario.forged_id]
    assert forged["key_id"] in keys
    assert not keys[forged["key_id"]].verifies("policy_change", forged)


def test_searches_are_recent_and_in_time_order(scenario: Scenario) -> None:
    """The worker's event-time windows close behind the newest event: the stream must not
    jump back, and must be recent so that its windows are still open at `now`."""
    stamps = [
        parse_ts(e["ts"])
        for e in _objects(scenario.stream)
        if e.get("type") == "search_request" and e.get("requester")
    ]
    assert all(s is not None for s in stamps)
    times = [s for s in stamps if s is not None]
    assert times == sorted(times)
    assert times[0] > NOW - 2 * 3600 and times[-1] < NOW


def test_no_requester_passes_the_worker_rate_limit(scenario: Scenario) -> None:
    """The worker adds RATE_LIMIT_EXCEEDED past 120 searches a minute; the pure engine cannot,
    so the scenario stays below it and the two stay comparable."""
    per_minute = Counter(
        (e["requester"]["agency_id"], int((parse_ts(e["ts"]) or 0) // 60))
        for e in _objects(scenario.stream)
        if e.get("type") == "search_request" and e.get("requester")
    )
    assert max(per_minute.values()) < 60


def test_about_one_percent_immigration_with_an_hourly_cluster(
    decided: list[tuple[Message, Decision]],
) -> None:
    immigration = [
        d for _, d in decided if isinstance(d, SearchDecision) and "immigration" in d.categories
    ]
    searches = [d for _, d in decided if isinstance(d, SearchDecision)]
    assert 0.005 * len(searches) <= len(immigration) <= 0.03 * len(searches)
    events = {
        e["search_id"]: e
        for e in _objects(tuple(m for m, _ in decided))
        if e.get("type") == "search_request"
    }
    per_hour = Counter(
        (
            events[d.event_id]["requester"]["agency_id"],
            int((parse_ts(events[d.event_id]["ts"]) or 0) // 3600),
        )
        for d in immigration
    )
    assert max(per_hour.values()) > 5  # the worker's default prohibited-purpose threshold


def test_engine_outcome_mix(decided: list[tuple[Message, Decision]]) -> None:
    """Run through the pure engine, the scenario shows every outcome and every code it is for."""
    outcomes = Counter((type(d).__name__, d.outcome) for _, d in decided)
    for kind, outcome in (
        ("SearchDecision", "approved"),
        ("SearchDecision", "partial"),
        ("SearchDecision", "denied"),
        ("ReadDecision", "shared"),
        ("ReadDecision", "partial"),
        ("ReadDecision", "denied"),
        ("ChangeDecision", "applied"),
        ("ChangeDecision", "rejected"),
        ("MalformedDecision", "malformed"),
        ("UpsertDecision", "upserted"),
    ):
        assert outcomes[(kind, outcome)] > 0, (kind, outcome)
    searches = outcomes["SearchDecision", "approved"] + outcomes["SearchDecision", "partial"]
    assert searches > outcomes["SearchDecision", "denied"]  # mostly lawful traffic
    codes = {c for _, d in decided for c in d.codes}
    assert {
        "OUT_OF_STATE_RECIPIENT",
        "FEDERAL_RECIPIENT",
        "PROHIBITED_PURPOSE_IMMIGRATION",
        "NO_DECLARATION_ON_FILE",
        "RETENTION_EXCEEDED",
        "MALFORMED_EVENT",
        "SCHEMA_INVALID",
        "UNSIGNED_CHANGE",
        "INVALID_SIGNATURE",
        "STATUTE_FORBIDS_SETTING",
        "VAGUE_PURPOSE",
        "MISSING_PURPOSE",
        "NOT_SHARED",
        "PRIVATE_RECIPIENT",
    } <= codes


def test_setup_applies_and_the_flip_is_rejected(
    scenario: Scenario, decided: list[tuple[Message, Decision]]
) -> None:
    start = len(scenario.registry)
    assert all(d.outcome == "upserted" for _, d in decided[:start])
    setup = decided[start : start + len(scenario.policy)]
    assert setup and all(d.outcome == "applied" for _, d in setup)
    flip = _decision(decided, scenario.flip_id)
    assert isinstance(flip, ChangeDecision) and not flip.applied
    assert set(flip.codes) == {"UNSIGNED_CHANGE", "STATUTE_FORBIDS_SETTING"}
    assert _decision(decided, scenario.forged_id).codes == ("INVALID_SIGNATURE",)
    # the acts: the exact replay of a revoked signed change, a relabel signed by Houston's key
    stream = decided[start + len(scenario.policy) :]
    [replay] = [d for m, d in stream if m.event_id == scenario.replay_id]
    assert (replay.outcome, replay.codes) == ("rejected", ("REPLAYED_CHANGE",))
    [relabel] = [d for m, d in stream if m.event_id == scenario.relabel_id]
    assert (relabel.outcome, relabel.codes) == ("rejected", ("KEY_NOT_AUTHORIZED",))


def test_no_out_of_state_or_federal_search_reaches_california_data(
    scenario: Scenario, decided: list[tuple[Message, Decision]]
) -> None:
    """After the flip, Ventura County data still goes to Californian agencies only."""
    state = {a["agency_id"]: a["state"] for a in scenario.agencies}
    events = {
        e.get("search_id") or e.get("read_id"): e for e in _objects(tuple(m for m, _ in decided))
    }
    attempts = 0
    for _, d in decided:
        if isinstance(d, SearchDecision):
            party = events[d.event_id]["requester"]["agency_id"]
            reached = [o for o in d.allowed if state.get(o) == "CA"]
            if state.get(party) != "CA" and any(v.agency_id.startswith("ca-") for v in d.verdicts):
                attempts += 1
            assert state.get(party) == "CA" or not reached
        elif isinstance(d, ReadDecision) and state.get(events[d.event_id]["agency_id"]) == "CA":
            assert all(state.get(r) == "CA" for r in d.allowed)
    assert attempts > 0.1 * len(scenario.stream)
