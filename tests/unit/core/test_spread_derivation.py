"""A spread made from a base (a retention bucket's from the root, a tagged bucket's from the
tagged root) derives its lists and code counts from the base's and the changed indices: they
must equal the full computation over its verdicts, in the same order, for any change."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from streamguard.core.engine import decide_search, fanned
from streamguard.core.models import NetworkVerdict, Reason, SearchDecision
from streamguard.core.policy import PolicyState
from streamguard.core.timeutil import format_ts
from streamguard.core.verdicts import (
    Pool,
    Spread,
    decision_lists,
    spread_code_counts,
    spread_codes_without,
    spread_lists,
    spread_position,
)
from tests.unit.core.fanout_samples import NOW, wide_searches, world

CODES = ("NOT_SHARED", "OUT_OF_STATE_RECIPIENT", "VAGUE_PURPOSE", "RETENTION_EXCEEDED", "X")


def _reasons(rng: random.Random, owner: str) -> tuple[Reason, ...]:
    return tuple(
        Reason(rng.choice(CODES), "c", "d", owner) for _ in range(rng.choice((0, 0, 1, 1, 2, 3)))
    )


def _pool(verdicts: tuple[NetworkVerdict, ...]) -> Pool:
    return Pool(
        verdicts,
        {v.agency_id: i for i, v in enumerate(verdicts)},
        (),
        sum(1 for v in verdicts if not v.reasons),
        (),
        (),
        {},
    )


def _counts(verdicts: tuple[NetworkVerdict, ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for verdict in verdicts:
        for code in verdict.codes:
            counts[code] = counts.get(code, 0) + 1
    return dict(sorted(counts.items()))


def _check(spread: Spread) -> None:
    lists = spread_lists(spread)
    assert lists == decision_lists((), spread.verdicts)
    assert list(spread_code_counts(spread).items()) == list(_counts(spread.verdicts).items())
    for i, verdict in enumerate(spread.verdicts):
        at = spread_position(spread, i)
        if verdict.reasons:
            assert lists.denied[at] is verdict
        else:
            assert lists.allowed[at] == verdict.agency_id
        without = spread.verdicts[:i] + spread.verdicts[i + 1 :]
        assert spread_codes_without(spread, i) == decision_lists((), without).codes


@settings(max_examples=400, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    size=st.integers(0, 60),
    extend_only=st.booleans(),
    depth=st.integers(1, 3),
)
def test_derived_lists_equal_the_full_computation(
    seed: int, size: int, extend_only: bool, depth: int
) -> None:
    """Changes that only add reasons (retention) and arbitrary ones (a tagged spread's base
    replaced), over chains of bases."""
    rng = random.Random(seed)
    verdicts = tuple(NetworkVerdict(f"o-{i:03d}", _reasons(rng, f"o-{i:03d}")) for i in range(size))
    pool = _pool(verdicts)
    spread = Spread(pool, verdicts, pool.allowed)
    if rng.random() < 0.5:
        spread_lists(spread)  # the base's lists computed before or only when derived from
    for _ in range(depth):
        changed = tuple(sorted(rng.sample(range(size), rng.randint(0, size))))
        current = list(spread.verdicts)
        for i in changed:
            before = current[i]
            extra = _reasons(rng, before.agency_id)
            if extend_only:
                current[i] = NetworkVerdict(before.agency_id, (*before.reasons, *extra))
            else:
                current[i] = NetworkVerdict(before.agency_id, extra)
        spread = Spread(pool, tuple(current), 0, spread.root, spread, changed)
        _check(spread)
    _check(spread.root)


def test_bucket_and_tagged_spreads_of_real_searches_derive_as_computed() -> None:
    """Every spread the engine makes for the fan-out workload (buckets, tagged roots and tagged
    buckets) has the lists and counts of its verdicts, and a bucket differs from its root
    exactly at its changed indices."""
    from streamguard.core.statutes import load_statutes

    agencies, owner_settings = world(5)
    state = PolicyState.create(load_statutes(), agencies, owner_settings)
    seen: dict[int, Spread] = {}
    for event in wide_searches(agencies, 6):
        decision = decide_search(event, state, NOW)
        assert isinstance(decision, SearchDecision)
        how = fanned(decision)
        if how is not None:
            seen[id(how.spread)] = how.spread
            seen[id(how.spread.base)] = how.spread.base
    derived = [s for s in seen.values() if s.base is not s]
    assert len(derived) > 10
    assert any(s.root is not s.base for s in derived)  # tagged buckets among them
    for spread in seen.values():
        base = spread.base
        differs = tuple(
            i for i, (a, b) in enumerate(zip(base.verdicts, spread.verdicts, strict=True)) if a != b
        )
        assert differs == spread.changed
        _check(spread)


def test_a_bucket_spread_holds_what_retention_gives_each_verdict() -> None:
    """A bucket's verdicts are the root's with retention applied owner by owner, as a search
    on a fresh snapshot decides them."""
    from streamguard.core.statutes import load_statutes

    agencies, owner_settings = world(7)
    statutes = load_statutes()
    state = PolicyState.create(statutes, agencies, owner_settings)
    requester = next(a for a in agencies if a.kind == "local").agency_id
    for days in (1, 8, 31, 91, 400, 10_000):
        event = {
            "type": "search_request",
            "search_id": f"s-{days}",
            "ts": format_ts(NOW - 1),
            "requester": {"agency_id": requester, "user_id": "u"},
            "reason": "burglary 459 PC",
            "case_number": "25-1",
            "scope": "national",
            "networks": [],
            "query": {"plate": "ABC", "from": format_ts(NOW - 86_400 * days), "to": None},
        }
        warm = decide_search(event, state, NOW)
        alone = decide_search(event, PolicyState.create(statutes, agencies, owner_settings), NOW)
        assert warm == alone


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_a_pool_holds_each_owners_verdict_as_decided_alone(seed: int) -> None:
    """A pool made from its owners' groups (access and purpose reasons asked of one owner per
    group) holds, for every requester class, state and purpose, the verdict `_verdict` gives
    each owner on a fresh cache."""
    from streamguard.core import engine
    from streamguard.core.statutes import load_statutes
    from streamguard.core.verdicts import AccessKey, PoolKey, Purpose, VerdictCaches

    agencies, owner_settings = world(seed % 1000)
    state = PolicyState.create(load_statutes(), agencies, owner_settings)
    rng = random.Random(seed)
    shared = VerdictCaches().of(state)
    for _ in range(12):
        requester = rng.choice(agencies)
        requester_class = engine._KIND_CLASSES.get(requester.kind, "public")
        categories = engine.classify(rng.choice(("burglary", "ICE warrant", "protest", "n/a")))
        purpose = Purpose(categories, rng.random() < 0.5)
        scope = rng.choice(("national", "statewide"))
        key = PoolKey(requester.state, requester_class, scope, purpose)
        pool = engine._pool(state, shared, requester, key)
        alone = VerdictCaches().of(state)
        owners = sorted(
            state.national_owners
            if scope == "national"
            else state.statewide_owners.get(requester.state, frozenset())
        )
        expected = tuple(
            engine._verdict(
                state,
                alone,
                requester,
                AccessKey(owner, scope, requester.state, requester_class, False, False, False),
                purpose,
            )
            for owner in owners
        )
        assert pool.verdicts == expected
        assert pool.allowed == sum(1 for v in expected if not v.reasons)
        assert pool.position == {o: i for i, o in enumerate(owners)}


def test_evaluate_lines_from_a_spread_equal_the_ones_computed_per_verdict() -> None:
    """`streamguard evaluate` encodes the denied entries of a spread once: each decision's line
    is byte for byte the line made from its own verdicts."""
    from streamguard import serde
    from streamguard.core.statutes import load_statutes
    from streamguard.stream.evaluate import _Entries, decision_summary

    agencies, owner_settings = world(9)
    state = PolicyState.create(load_statutes(), agencies, owner_settings)
    entries = _Entries()
    shared = 0
    for event in wide_searches(agencies, 10):
        decision = decide_search(event, state, NOW)
        shared += isinstance(decision, SearchDecision) and fanned(decision) is not None
        line = serde.dumps(decision_summary(decision, entries))
        assert line == serde.dumps(decision_summary(decision)), event["search_id"]
    assert shared > 150
