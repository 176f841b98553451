"""Equivalence of the shared-spread path: statewide and national searches decided against a warm
verdict cache (pools and spreads reused across requesters, retention buckets and purposes) give
the same decisions as each search decided alone on a fresh snapshot, and the outputs read from
the spread (lists, grouped reasons, counts) equal the ones computed from the verdicts."""

from __future__ import annotations

from typing import Any

from streamguard.core.engine import decide_search, fanned
from streamguard.core.models import SearchDecision
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import format_ts
from streamguard.core.verdicts import decision_lists
from streamguard.stream.outputs import audit_fields, grouped_reasons, lists_of
from tests.unit.core.fanout_samples import NOW, wide_searches, world


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
    agencies, settings = world(3)
    statutes = load_statutes()
    state = PolicyState.create(statutes, agencies, settings)
    events = wide_searches(agencies, 4)
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
