"""A statewide or national decision made from a retention bucket's spread (or any spread made
from a base) has its grouped reasons, encoded lists and counts derived from the base's: its
outputs must be byte for byte the outputs made from the decision's own verdicts, for any
change of the base, many owners changed at once, reasons tied in one verdict, and the
requester's own network anywhere in the pool."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamguard.core.engine import _compose, _remember_fanned, fanned
from streamguard.core.models import NetworkVerdict, Reason, SearchDecision
from streamguard.core.verdicts import Fanned, Pool, Spread
from streamguard.stream import outputs
from streamguard.stream.outputs import _grouping, _spread_grouping, audit_fields, route

CODES = ("NOT_SHARED", "OUT_OF_STATE_RECIPIENT", "VAGUE_PURPOSE", "RETENTION_EXCEEDED")
CITATIONS = ("Cal. Civ. Code 1798.90.55(b)", "Va. Code 2.2-5517")


def _reason(rng: random.Random, owner: str, irregular: bool) -> Reason:
    """A network's reason naming its owner in its detail (or not), from few codes and
    citations so that groups span owners and tie within one verdict."""
    code, citation = rng.choice(CODES), rng.choice(CITATIONS)
    detail = rng.choice((f"{owner} does not share", f"older than {owner} keeps", "no case"))
    agency_id: str | None = owner
    if irregular and rng.random() < 0.05:
        agency_id = rng.choice((None, "o-000"))  # a reason of no network, or of another one
    return Reason(code, citation, detail, agency_id)


def _reasons(rng: random.Random, owner: str, irregular: bool) -> tuple[Reason, ...]:
    n = rng.choice((0, 0, 1, 1, 2, 3))
    return tuple(_reason(rng, owner, irregular) for _ in range(n))


def _pool(verdicts: tuple[NetworkVerdict, ...]) -> Pool:
    allowed = sum(1 for v in verdicts if not v.reasons)
    return Pool(verdicts, {v.agency_id: i for i, v in enumerate(verdicts)}, (), allowed, (), (), {})


def _made_from(rng: random.Random, base: Spread, share: float, how: str, irregular: bool) -> Spread:
    """A spread differing from `base` at a random `share` of its indices: each changed verdict
    gains one reason (a retention bucket), several, or has its reasons replaced."""
    size = len(base.verdicts)
    changed = tuple(sorted(rng.sample(range(size), int(size * share))))
    current = list(base.verdicts)
    for i in changed:
        before = current[i]
        owner = before.agency_id
        if how == "bucket":
            added: tuple[Reason, ...] = (_reason(rng, owner, irregular),)
            current[i] = NetworkVerdict(owner, (*before.reasons, *added))
        elif how == "extend":
            current[i] = NetworkVerdict(owner, (*before.reasons, *_reasons(rng, owner, irregular)))
        else:
            current[i] = NetworkVerdict(owner, _reasons(rng, owner, irregular))
    allowed = sum(1 for v in current if not v.reasons)
    return Spread(base.pool, tuple(current), allowed, base.root, base, changed)


def _event(requester: str) -> dict[str, Any]:
    return {
        "type": "search_request",
        "search_id": "s-1",
        "requester": {"agency_id": requester, "user_id": "u"},
        "reason": "burglary",
        "scope": "national",
        "query": {"plate": "ABC", "from": None, "to": None},
        "networks": [],
    }


def _decision(how: Fanned, top: tuple[Reason, ...]) -> SearchDecision:
    verdicts = _compose(how)
    _remember_fanned(verdicts, how)
    denied = sum(1 for v in verdicts if v.reasons)
    outcome = "approved" if not denied else "denied" if denied == len(verdicts) else "partial"
    if top:
        outcome = "denied"
    return SearchDecision("s-1", outcome, top, verdicts, "v1")


def _encoded(event: dict[str, Any], decision: SearchDecision) -> list[tuple[str, bytes]]:
    out = route(event, decision, "d-1", "2025-03-01T00:00:00Z", fallback_key="k")
    fields = audit_fields(event, decision, "d-1", "2025-03-01T00:00:00Z", None)
    return [(o.role + o.key, orjson.dumps(o.value)) for o in out] + [
        ("audit", orjson.dumps(fields, option=orjson.OPT_SORT_KEYS))
    ]


def _check_decisions(rng: random.Random, spread: Spread, irregular: bool) -> None:
    size = len(spread.verdicts)
    for _ in range(4):
        own_at = rng.randrange(size) if size and rng.random() < 0.8 else None
        own_id = "own-1" if own_at is None else spread.verdicts[own_at].agency_id
        own = NetworkVerdict(own_id, _reasons(rng, own_id, irregular))
        top = () if rng.random() < 0.8 else (Reason("VAGUE_PURPOSE", "c", "search-level"),)
        decision = _decision(Fanned(own, own_at, spread), top)
        assert fanned(decision) is not None
        plain = dataclasses.replace(decision, verdicts=tuple(list(decision.verdicts)))
        assert fanned(plain) is None
        event = _event(own_id)
        assert _encoded(event, decision) == _encoded(event, plain)


@pytest.mark.parametrize("encoded_from", [0, 10**9])  # encoded (wide) and plain-value paths
@settings(max_examples=120, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    size=st.integers(1, 160),
    share=st.sampled_from((0.05, 0.3, 0.9, 1.0)),
    hows=st.lists(st.sampled_from(("bucket", "extend", "replace")), min_size=1, max_size=3),
    irregular=st.booleans(),
)
def test_decisions_from_derived_spreads_write_the_bytes_of_their_verdicts(
    encoded_from: int,
    seed: int,
    size: int,
    share: float,
    hows: list[str],
    irregular: bool,
) -> None:
    rng = random.Random(seed)
    owners = [f"o-{i:03d}" for i in range(size)]
    verdicts = tuple(NetworkVerdict(o, _reasons(rng, o, irregular)) for o in owners)
    pool = _pool(verdicts)
    spread = Spread(pool, verdicts, pool.allowed)
    chain = [spread]
    for how in hows:
        chain.append(_made_from(rng, chain[-1], share, how, irregular))
    old = outputs.ENCODED_FROM
    outputs.ENCODED_FROM = encoded_from  # hypothesis reruns the body: no monkeypatch fixture
    try:
        # Bases grouped (and encoded) first or only when a spread made from them asks.
        for made in chain if rng.random() < 0.5 else reversed(chain):
            _check_decisions(rng, made, irregular)
            full = _grouping(made.verdicts)
            derived = _spread_grouping(made)
            assert list(derived.groups.items()) == list(full.groups.items())
            assert derived.loose == full.loose
    finally:
        outputs.ENCODED_FROM = old


def test_a_bucket_of_many_changed_owners_is_derived_not_regrouped() -> None:
    """A retention bucket of 3,000 owners, 1,200 of them late, is grouped from the root's
    groups (only the groups it changes are new lists) and written as its verdicts give."""
    rng = random.Random(1)
    owners = [f"o-{i:04d}" for i in range(3_000)]
    verdicts = tuple(NetworkVerdict(o, _reasons(rng, o, False)) for o in owners)
    pool = _pool(verdicts)
    root = Spread(pool, verdicts, pool.allowed)
    bucket = _made_from(rng, root, 0.4, "bucket", False)
    base_groups = _spread_grouping(root)
    grouping = _spread_grouping(bucket)
    assert grouping.touched is not None  # derived, not computed in full
    assert list(grouping.groups.items()) == list(_grouping(bucket.verdicts).groups.items())
    for key, ids in grouping.groups.items():
        if key not in grouping.touched:
            assert ids is base_groups.groups[key]
    outputs_from = outputs.ENCODED_FROM
    assert len(bucket.verdicts) >= outputs_from  # the encoded path
    _check_decisions(rng, bucket, False)
