"""A reproducible synthetic workload: agencies across states, signed settings, a search/read mix.

Shared by the benchmarks so each one measures the same kind of traffic. Nothing here comes from
real records: names, plates and reasons are generated.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from streamguard.core.keys import HMAC_SHA256, Key, parse_keys
from streamguard.core.models import Agency
from streamguard.core.signer import SigningKey
from streamguard.core.timeutil import format_ts

SECRET = b"bench-secret"


def signer(agency_id: str) -> SigningKey:
    """The benchmark key of one agency: HMAC (cheap to sign and check), bound to it (v1.1)."""
    secret = hashlib.sha256(SECRET + agency_id.encode()).hexdigest().encode()
    return SigningKey(f"bench-{agency_id}", HMAC_SHA256, agency_id, secret)


def keys_json(agencies: Iterable[Agency]) -> dict[str, dict[str, str]]:
    """The KEYS.json of the workload's agencies."""
    return {s.key_id: s.keys_entry() for s in (signer(a.agency_id) for a in agencies)}


def keys(agencies: Iterable[Agency]) -> Mapping[str, Key]:
    return parse_keys(keys_json(agencies), "the benchmark keys")


# Weighted towards the states with statutes, so the law is exercised, plus many neutral ones.
STATE_WEIGHTS = {
    "CA": 20,
    "TX": 14,
    "IL": 8,
    "VA": 6,
    "WA": 5,
    "GA": 6,
    "FL": 8,
    "MN": 3,
    "NH": 1,
    "ME": 1,
    "MT": 1,
    "AR": 2,
    "NE": 2,
    "UT": 2,
    "VT": 1,
    "OH": 6,
    "NY": 6,
    "AZ": 4,
    "CO": 4,
}
REASONS = (
    "burglary 459 PC case 25-{n:06d}",
    "stolen vehicle 10851 VC",
    "homicide investigation {n}",
    "missing person - endangered",
    "robbery 211 PC",
    "hit and run",
    "investigation",
    "ICE warrant",
    "assist HSI",
    "protest",
    "n/a",
    "Other - Not Applicable",
    "amber alert",
    "carjacking {n}",
    "fraud",
    "suspect vehicle",
    "warrant service",
    "narcotics 11351 HS",
)


@dataclass(frozen=True)
class Workload:
    agencies: list[Agency]
    setup: list[dict[str, Any]]  # signed policy changes, applied before the traffic
    events: list[dict[str, Any]]


def _agencies(rng: random.Random, count: int) -> list[Agency]:
    states = list(STATE_WEIGHTS)
    weights = list(STATE_WEIGHTS.values())
    out: list[Agency] = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.02:
            out.append(Agency(f"us-fed-{i}", f"Federal Office {i}", "US", "federal"))
            continue
        state = rng.choices(states, weights)[0]
        kind = "private" if roll < 0.03 else rng.choice(("local", "local", "county", "state"))
        out.append(Agency(f"{state.lower()}-agency-{i}", f"Agency {i} {state}", state, kind))
    return out


def _change(agency_id: str, n: int, setting: str, value: Any, at: float) -> dict[str, Any]:
    key = signer(agency_id)
    event: dict[str, Any] = {
        "type": "policy_change",
        "change_id": f"bench-chg-{n}",
        # In order, within the replay window of the clock the benchmark decides them at.
        "ts": format_ts(at + n / 1000),
        "agency_id": agency_id,
        "setting": setting,
        "value": value,
        "actor": {"user_id": "admin", "agency_id": agency_id},
        "ticket": f"B-{n}",
        "key_id": key.key_id,
    }
    event["signature"] = key.signature("policy_change", event)
    return event


def _search(
    rng: random.Random, n: int, ts: float, requester: str, scope: str, networks: list[str]
) -> dict[str, Any]:
    """Search number `n`: reason, case number and the asked-for window drawn from `rng`."""
    return {
        "type": "search_request",
        "search_id": f"s-{n}",
        "ts": format_ts(ts),
        "requester": {"agency_id": requester, "user_id": f"u-{n % 500}"},
        "reason": rng.choice(REASONS).format(n=n),
        "case_number": f"25-{n:06d}" if rng.random() < 0.7 else None,
        "offense_type": None,
        "search_type": "lookup",
        "query": {
            "plate": f"{rng.randrange(10**6):06d}X",
            "to": format_ts(ts),
            "from": format_ts(ts - 86_400 * rng.randint(0, 40)),
        },
        "scope": scope,
        "networks": networks,
    }


def build(
    events: int = 100_000,
    agency_count: int = 2_000,
    seed: int = 7,
    *,
    changes_at: float | None = None,
) -> Workload:
    """`changes_at`: when the setup changes are dated (default an hour ago: a worker deciding
    them on its own clock must find them recent, docs/contract.md section 2a)."""
    at = time.time() - 3600 if changes_at is None else changes_at
    rng = random.Random(seed)
    agencies = _agencies(rng, agency_count)
    by_state: dict[str, list[Agency]] = {}
    for agency in agencies:
        by_state.setdefault(agency.state, []).append(agency)
    setup: list[dict[str, Any]] = []
    shares: dict[str, list[str]] = {}
    for agency in agencies:
        if agency.is_federal or agency.is_private:
            continue
        peers = [
            a.agency_id
            for a in rng.sample(by_state[agency.state], min(8, len(by_state[agency.state])))
        ]
        shares[agency.agency_id] = peers
        setup.append(_change(agency.agency_id, len(setup), "share_with", peers, at))
        if rng.random() < 0.5:
            setup.append(_change(agency.agency_id, len(setup), "statewide_lookup", True, at))
        if agency.state not in ("CA", "VA", "WA") and rng.random() < 0.3:
            setup.append(_change(agency.agency_id, len(setup), "national_lookup", True, at))
    base = 1_740_830_400.0  # 2025-03-01T12:00:00Z
    traffic: list[dict[str, Any]] = []
    owners = [a.agency_id for a in agencies if a.agency_id in shares]
    for n in range(events):
        requester = rng.choice(agencies)
        ts = base + n * 0.01
        if rng.random() < 0.1:
            traffic.append(
                {
                    "type": "plate_read",
                    "read_id": f"r-{n}",
                    "ts": format_ts(ts),
                    "agency_id": rng.choice(owners),
                    "camera_id": f"cam-{n % 97}",
                    "plate": f"{rng.randrange(10**6):06d}X",
                    "plate_state": "CA",
                    "confidence": 0.9,
                    "location": {"lat": 34.2, "lon": -119.2},
                    "hotlist_hit": False,
                    "share_to": rng.sample(owners, 3),
                }
            )
            continue
        roll = rng.random()
        if roll < 0.90:
            scope = "networks"
            candidates = [o for o in owners if requester.agency_id in shares.get(o, ())]
            picks = rng.sample(candidates, min(len(candidates), rng.randint(1, 5)))
            networks = picks + rng.sample(owners, rng.randint(0, 2))
        elif roll < 0.98:
            scope, networks = "statewide", []
        else:
            scope, networks = "national", []
        networks = networks or ([requester.agency_id] if scope == "networks" else [])
        traffic.append(_search(rng, n, ts, requester.agency_id, scope, networks))
    return Workload(agencies, setup, traffic)


def agencies_csv(agencies: list[Agency]) -> Iterator[str]:
    yield "agency_id,name,state,kind\n"
    for a in agencies:
        yield f"{a.agency_id},{a.name},{a.state},{a.kind}\n"


# --- a national day (benchmarks/bench_national.py) --------------------------------------------

DAY = 86_400.0
# States whose law forbids national lookup (out-of-state or federal sharing): their owners
# cannot join the national pool, the change would be refused (STATUTE_FORBIDS_SETTING).
NO_NATIONAL = frozenset({"CA", "VA", "WA", "OR"})


@dataclass(frozen=True)
class Day:
    agencies: list[Agency]
    setup: list[dict[str, Any]]  # signed policy changes, dated before the day
    events: list[dict[str, Any]]  # the day's reads and searches, in `ts` order
    start: float  # epoch seconds of the day's first instant
    scopes: dict[str, int]  # search scope -> searches of that scope in `events`


def build_day(
    reads: int,
    searches: int,
    agency_count: int = 20_000,
    national_pool: int = 7_000,
    *,
    national_share: float = 0.02,
    statewide_share: float = 0.08,
    seed: int = 14,
    start: float = 1_740_787_200.0,  # 2025-03-01T00:00:00Z
) -> Day:
    """A day of event time over a large registry: `national_pool` owners open to national
    lookup (drawn from states whose law allows it), about half of every state's owners open to
    statewide lookup, every owner sharing with up to 8 peers of its state. Searches are
    `national_share` national, `statewide_share` statewide, the rest networks-scoped; reads
    come from the owners' cameras and are forwarded to 0-3 of the owner's peers."""
    rng = random.Random(seed)
    agencies = _agencies(rng, agency_count)
    owners = [a for a in agencies if not (a.is_federal or a.is_private)]
    by_state: dict[str, list[Agency]] = {}  # owners only: sharing with private firms is refused
    for agency in owners:
        by_state.setdefault(agency.state, []).append(agency)
    eligible = [a.agency_id for a in owners if a.state not in NO_NATIONAL]
    national = set(rng.sample(eligible, min(national_pool, len(eligible))))
    at = start - 3600
    setup: list[dict[str, Any]] = []
    shares: dict[str, list[str]] = {}
    for agency in owners:
        state_peers = by_state[agency.state]
        peers = [a.agency_id for a in rng.sample(state_peers, min(8, len(state_peers)))]
        shares[agency.agency_id] = peers
        setup.append(_change(agency.agency_id, len(setup), "share_with", peers, at))
        if rng.random() < 0.5:
            setup.append(_change(agency.agency_id, len(setup), "statewide_lookup", True, at))
        if agency.agency_id in national:
            setup.append(_change(agency.agency_id, len(setup), "national_lookup", True, at))
    shared_with: dict[str, list[str]] = {}
    for owner, peers in shares.items():
        for peer in peers:
            shared_with.setdefault(peer, []).append(owner)
    owner_ids = list(shares)
    times = sorted(start + rng.random() * DAY for _ in range(reads + searches))
    kinds = ["read"] * reads + ["search"] * searches
    rng.shuffle(kinds)
    events: list[dict[str, Any]] = []
    scopes = {"networks": 0, "statewide": 0, "national": 0}
    for n, (kind, ts) in enumerate(zip(kinds, times, strict=True)):
        if kind == "read":
            owner = rng.choice(owner_ids)
            peers = shares[owner]
            events.append(
                {
                    "type": "plate_read",
                    "read_id": f"r-{n}",
                    "ts": format_ts(ts),
                    "agency_id": owner,
                    "camera_id": f"cam-{owner}-{n % 13}",
                    "plate": f"{rng.randrange(10**6):06d}X",
                    "plate_state": "CA",
                    "confidence": 0.9,
                    "location": {"lat": 34.2, "lon": -119.2},
                    "hotlist_hit": rng.random() < 0.001,
                    "share_to": rng.sample(peers, min(len(peers), rng.randint(0, 3))),
                }
            )
            continue
        requester = rng.choice(agencies)
        roll = rng.random()
        networks: list[str] = []
        if roll < national_share:
            scope = "national"
        elif roll < national_share + statewide_share:
            scope = "statewide"
        else:
            scope = "networks"
            candidates = shared_with.get(requester.agency_id, [])
            networks = rng.sample(candidates, min(len(candidates), rng.randint(1, 5)))
            networks += rng.sample(owner_ids, rng.randint(0, 2))
            networks = networks or [requester.agency_id]
        scopes[scope] += 1
        events.append(_search(rng, n, ts, requester.agency_id, scope, networks))
    return Day(agencies, setup, events, start, scopes)
