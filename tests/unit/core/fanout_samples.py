"""A random registry and its owners' settings, and random searches over it, for the engine's
equivalence tests (test_engine_fanout, test_decided_cache): seeded, so a failure names its seed."""

from __future__ import annotations

import random
from typing import Any

from streamguard.core.models import Agency, OwnerSettings
from streamguard.core.timeutil import format_ts
from streamguard.local.testing import search_request

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


def world(seed: int) -> tuple[list[Agency], dict[str, OwnerSettings]]:
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


def random_search(
    rng: random.Random, n: int, requester: str, starts: tuple[float | None, ...], **scope: Any
) -> dict[str, Any]:
    """Search `n` by `requester` (`scope`: its scope fields), with a window starting a random
    number of `starts` days before NOW (None: open), a reason of REASONS (or none to speak of)
    and, mostly, a case number."""
    start = rng.choice(starts)
    window = (None if start is None else format_ts(NOW - 86_400 * start), format_ts(NOW))
    return search_request(
        requester,
        **scope,
        reason=rng.choice(REASONS) if rng.random() < 0.9 else "n/a",
        case_number=f"25-{n}" if rng.random() < 0.7 else None,
        ts=format_ts(NOW - 1),
        search_id=f"s-{n}",
        query_window=window,
    )


def wide_searches(agencies: list[Agency], seed: int) -> list[dict[str, Any]]:
    """300 national and statewide searches by agencies of `agencies` (and a few unknown ones)."""
    rng = random.Random(seed)
    out = []
    for n in range(300):
        requester = rng.choice(agencies).agency_id if rng.random() < 0.97 else "zz-unknown"
        scope = rng.choice(("national", "statewide", "national"))
        out.append(random_search(rng, n, requester, (None, 1, 10, 20, 40, 100, 400), scope=scope))
    return out
