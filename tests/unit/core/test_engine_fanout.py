"""Equivalence of the shared-spread path: statewide and national searches decided against a warm
verdict cache (pools and spreads reused across requesters, retention buckets and purposes) give
the same decisions as each search decided alone on a fresh snapshot, and the outputs read from
the spread (lists, grouped reasons, counts) equal the ones computed from the verdicts."""

from __future__ import annotations

import random
from typing import Any

from streamguard.core.engine import decide_search, fanned
from streamguard.core.models import Agency, OwnerSettings, SearchDecision
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import format_ts
from streamguard.core.verdicts import decision_lists
from streamguard.local.testing import search_request
from streamguard.stream.outputs import audit_fields, grouped_reasons, lists_of

NOW = 1_740_830_400.0
STATES = ("CA", "TX", "IL", "GA", "VA", "WA", "NY", "FL", "MN", "NH")
REASONS = (
    "burglary 459 PC",
    "stolen vehicle",
    "ICE warrant",
    "protest",
    "missing person",
    "immigration enforcement",
    "abortion investigation",
    "homicide",
)


def _world(seed: int) -> tuple[list[Agency], dict[str, OwnerSettings]]:
    rng = random.Random(seed)
    agencies: list[Agency] = []
    for i in range(240):
        roll = rng.random()
        if roll < 0.05:
            agencies.append(Agency(f"us-fed-{i}", f"Fed {i}", "US", "federal"))
            continue
        state = rng.choice(STATES)
        kind = rng.choice(("local", "county", "state", "campus", "private", "tribal", "local"))
        agencies.append(Agency(f"{state.lower()}-a-{i}", f"A {i}", state, kind))
    ids = [a.agency_id for a in agencies]
    settings = {
        a.agency_id: OwnerSettings(
            national_lookup=rng.random() < 0.6,
            statewide_lookup=rng.random() < 0.6,
            federal_sharing=rng.random() < 0.3,
            share_with=frozenset(rng.sample(ids, 3)),
            declaration_on_file=frozenset(rng.sample(ids, 2))
            if rng.random() < 0.2
            else frozenset(),
            retention_days=rng.choice((None, None, 7.0, 30.0, 90.0)),
            require_case_number=rng.random() < 0.2,
        )
        for a in agencies
        if a.kind not in ("federal", "private")
    }
    return agencies, settings


def _searches(agencies: list[Agency], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for n in range(300):
        requester = rng.choice(agencies).agency_id if rng.random() < 0.97 else "zz-unknown"
        start = rng.choice((None, 1, 10, 20, 40, 100, 400))
        window = (None if start is None else format_ts(NOW - 86_400 * start), format_ts(NOW))
        out.append(
            search_request(
                requester,
                scope=rng.choice(("national", "statewide", "national")),
                reason=rng.choice(REASONS) if rng.random() < 0.9 else "n/a",
                case_number=f"25-{n}" if rng.random() < 0.7 else None,
                ts=format_ts(NOW - 1),
                search_id=f"s-{n}",
                query_window=window,
            )
        )
    return out


def _outputs(event: dict[str, Any], decision: SearchDecision, *, reference: bool) -> Any:
    """What outputs read of a decision: from the spread, or (reference) from the verdicts."""
    if reference:
        lists = decision_lists(decision.search_reasons, decision.verdicts)
        reasons = grouped_reasons(decision.search_reasons, lists.denied)
        counts: dict[str, int] = {}
        for verdict in lists.denied:
            for code in verdict.codes:
                counts[code] = counts.get(code, 0) + 1
        return lists, reasons, dict(sorted(counts.items()))
    lists = lists_of(decision)
    how = fanned(decision)
    reasons = grouped_reasons(decision.search_reasons, lists.denied, how)
    fields = audit_fields(event, decision, "d", format_ts(NOW), None, lists)
    counts = fields.get("denied_codes")
    if counts is None:  # a narrow decision lists its networks instead
        assert fields["denied"] == [v.agency_id for v in lists.denied]
        counts = _outputs(event, decision, reference=True)[2]
    return lists, reasons, counts


def test_warm_cache_decisions_and_outputs_equal_each_search_decided_alone() -> None:
    agencies, settings = _world(3)
    statutes = load_statutes()
    state = PolicyState.create(statutes, agencies, settings)
    events = _searches(agencies, 4)
    warm = []
    shared = 0
    for event in events:
        decision = decide_search(event, state, NOW)
        assert isinstance(decision, SearchDecision)
        shared += fanned(decision) is not None
        warm.append((decision, _outputs(event, decision, reference=False)))
    assert shared > 150  # most searches took the shared path, so it is what is compared
    for event, (decision, outputs) in zip(events, warm, strict=True):
        alone = decide_search(event, PolicyState.create(statutes, agencies, settings), NOW)
        assert isinstance(alone, SearchDecision)
        assert decision == alone, event["search_id"]
        assert outputs == _outputs(event, alone, reference=True), event["search_id"]
