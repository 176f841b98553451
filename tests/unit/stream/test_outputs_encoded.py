"""Outputs of statewide and national decisions written from a spread's encoded lists
(`orjson.Fragment`, spliced where the requester's own network differs) encode to the same
bytes as the outputs written from each decision's own verdicts, whole and split."""

from __future__ import annotations

import dataclasses
import random

import orjson
import pytest

from streamguard.core.engine import decide_search, fanned
from streamguard.core.models import SearchDecision
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import format_ts
from streamguard.stream import outputs
from streamguard.stream.outputs import audit_fields, route
from tests.unit.core.fanout_samples import NOW, wide_searches, world


def _encoded(event: dict, decision: SearchDecision, max_bytes: int) -> list[tuple[str, bytes]]:
    out = route(event, decision, "d-1", format_ts(NOW), fallback_key="k", max_bytes=max_bytes)
    fields = audit_fields(event, decision, "d-1", format_ts(NOW), None)
    return [(o.role + o.key, orjson.dumps(o.value)) for o in out] + [
        ("audit", orjson.dumps(fields, option=orjson.OPT_SORT_KEYS))
    ]


@pytest.mark.parametrize("max_bytes", [1_000_000, 3_000])
def test_encoded_lists_give_the_bytes_of_the_plain_outputs(
    monkeypatch: pytest.MonkeyPatch, max_bytes: int
) -> None:
    monkeypatch.setattr(outputs, "ENCODED_FROM", 0)  # every spread of this small world
    monkeypatch.setattr(outputs, "_MEASURED_FROM", 0)  # and every record measured
    for seed in (3, 8):
        agencies, settings = world(seed)
        state = PolicyState.create(load_statutes(), agencies, settings)
        encoded = spliced = 0
        for event in wide_searches(agencies, seed + 1):
            decision = decide_search(event, state, NOW)
            assert isinstance(decision, SearchDecision)
            how = fanned(decision)
            # The same decision, not made from a spread: its outputs come from its verdicts.
            plain = dataclasses.replace(decision, verdicts=tuple(list(decision.verdicts)))
            assert fanned(plain) is None
            got = _encoded(event, decision, max_bytes)
            assert got == _encoded(event, plain, max_bytes), event["search_id"]
            if how is not None:
                encoded += 1
                spliced += how.own_at is not None
        assert encoded > 150 and spliced > 20  # the spread path, own network inside, is tested


def test_values_hold_fragments_only_for_wide_spreads() -> None:
    agencies, settings = world(3)
    state = PolicyState.create(load_statutes(), agencies, settings)
    for event in wide_searches(agencies, 4)[:50]:
        decision = decide_search(event, state, NOW)
        assert isinstance(decision, SearchDecision)
        for out in route(event, decision, "d", format_ts(NOW), fallback_key="k"):
            assert not any(isinstance(v, orjson.Fragment) for v in out.value.values())


def test_encoded_ids_splice_at_the_offsets_of_their_encoding() -> None:
    """Offsets found from the ids' lengths (no escapes) or from each one's encoding (quotes,
    non-ASCII) give the list without the left-out id, with another put first."""
    rng = random.Random(1)
    for _ in range(300):
        ids = tuple(
            rng.choice(("a", "bb", 'q"x', "é", "o-12")) + str(i) for i in range(rng.randint(0, 30))
        )
        encoded = outputs._EncodedIds(ids)
        for drop in range(len(ids)):
            rest = [*ids[:drop], *ids[drop + 1 :]]
            assert encoded.spliced("f", drop) == orjson.dumps(["f", *rest])
            assert encoded.spliced(None, drop) == orjson.dumps(rest)
