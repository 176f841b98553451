"""Decide events: may this agency see this owner's ALPR data, for this purpose, now?

Pure functions of (event, policy snapshot, now). Access is decided first (the owner's settings),
then the law of the owner's state is applied on top and can only deny more. Every applicable
code is reported, so an audit counts attempts, not just leaks. Clock-free verdicts are cached
per snapshot (`streamguard.core.verdicts`): the cache saves work, never changes an answer.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeGuard

from streamguard.core import codes
from streamguard.core.classifier import classify
from streamguard.core.control import apply_agency_record, apply_change
from streamguard.core.keys import Key
from streamguard.core.models import (
    FEDERAL_STATE,
    Agency,
    Decision,
    Event,
    MalformedDecision,
    NetworkVerdict,
    ReadDecision,
    Reason,
    SearchDecision,
)
from streamguard.core.policy import (
    PolicyState,
    Relation,
    RetentionLimit,
    own_retention_limit,
    purpose_law_reasons,
    recipient_class_law_reasons,
    recipient_law_reasons,
    requester_relation,
)
from streamguard.core.replay import ReplayMemory
from streamguard.core.timeutil import format_ts, parse_ts
from streamguard.core.verdicts import (
    NETWORK_DECLARED,
    NETWORK_LATE,
    NETWORK_SELF,
    NETWORK_SHARED,
    AccessKey,
    Fanned,
    Pool,
    PoolKey,
    PoolOwners,
    Purpose,
    Spread,
    VerdictCache,
    VerdictCaches,
    remember,
    remember_decided,
)

__all__ = (
    "decide_event",
    "decide_read",
    "decide_search",
    "fanned",
    "normalize_plate",
    "purpose_text",
)

_CONTRACT: Final = "StreamGuard wire contract v1"
_SCOPES: Final = frozenset(("national", "statewide", "networks"))
# How far ahead of the deciding clock an event may be dated: producers' clocks drift, but a read
# or search from the future would dodge retention and land in windows not yet counted. The same
# 5 minutes as the contract's FUTURE_DATED for policy changes (docs/contract.md, section 2a).
FUTURE_TOLERANCE: Final = 300.0
# Case numbers that name no case: what officers type to get past a required field.
_NO_CASE: Final = frozenset(
    ("n/a", "na", "n.a.", "none", "null", "nil", "unknown", "unk", "tbd", "tba", "x", "xx")
)
_NO_CASE_CHARS: Final = "-_0./*?# "  # a case number of only these is a placeholder
_PLATE_JUNK: Final = str.maketrans("", "", " -\t")
# Verdicts of the snapshot decided last (see streamguard.core.verdicts).
_CACHES: Final = VerdictCaches()
# Reads' own: a worker may decide reads against another snapshot object than searches (each
# processor applies the policy changes it reads), and one cache of each never evicts the other.
_READ_CACHES: Final = VerdictCaches()


def normalize_plate(plate: str) -> str:
    """Upper-case and strip spaces and dashes (docs/contract.md section 1), before any
    comparison or hash."""
    return plate.translate(_PLATE_JUNK).upper()


def _text_id(event: Mapping[str, Any], field: str) -> str | None:
    value = event.get(field)
    return value if isinstance(value, str) and value else None


def _malformed(
    state: PolicyState, event_id: str | None, kind: str, detail: str
) -> MalformedDecision:
    return MalformedDecision(
        event_id,
        kind,
        Reason(codes.SCHEMA_INVALID, f"{_CONTRACT}, section 2", detail),
        state.version,
    )


def _dated_error(event: Mapping[str, Any], ts: float | None, now: float) -> str:
    """What is wrong with an event's `ts` (parsed as `ts`): not a timestamp, or too far after
    the clock."""
    if ts is None:
        return "field 'ts' must be an ISO-8601 timestamp"
    return (
        f"field 'ts' is {event['ts']}, {ts - now:,.0f} s after the deciding clock "
        f"({format_ts(now)}); an event may be dated at most 5 minutes ahead"
    )


def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    # A dict is checked without the ABC machinery: almost every event is a plain dict.
    return type(value) is dict or isinstance(value, Mapping)


def _search_schema_error(event: Mapping[str, Any], now: float) -> tuple[str | None, float | None]:
    """What is wrong with a search_request, or None and the start of the asked-for window
    (None when open), parsed once as it is checked."""
    get = event.get
    search_id = get("search_id")
    if not isinstance(search_id, str) or not search_id:
        return "field 'search_id' must be a non-empty string", None
    ts = parse_ts(get("ts"))
    if ts is None or ts > now + FUTURE_TOLERANCE:
        return _dated_error(event, ts, now), None
    requester = get("requester")
    if not _is_mapping(requester):
        return "field 'requester' must be an object with a non-empty string 'agency_id'", None
    agency_id = requester.get("agency_id")
    if not isinstance(agency_id, str) or not agency_id:
        return "field 'requester' must be an object with a non-empty string 'agency_id'", None
    user_id = requester.get("user_id")
    if not isinstance(user_id, str) or not user_id.strip():
        # Cal. Civ. Code § 1798.90.52(a) logs the username of every access: a search by no
        # one cannot be logged as the law requires.
        return "field 'requester.user_id' must be a non-empty string (the user is logged)", None
    scope = get("scope")
    if not isinstance(scope, str) or scope not in _SCOPES:
        return "field 'scope' must be one of national, statewide, networks", None
    networks = get("networks", [])
    # A list comprehension, not a generator: all() resuming a generator per id costs more than
    # the whole check on the hot path.
    if not isinstance(networks, list) or not all([isinstance(n, str) for n in networks]):
        return "field 'networks' must be a list of agency ids", None
    if scope == "networks" and not networks:
        return "scope 'networks' needs a non-empty 'networks' list", None
    query = get("query")
    if not _is_mapping(query):
        return "field 'query' must be an object", None
    text_from = query.get("from")
    asked_from = None if text_from is None else parse_ts(text_from)
    if text_from is not None and asked_from is None:
        return "field 'query.from' must be an ISO-8601 timestamp or null", None
    text_to = query.get("to")
    asked_to = None if text_to is None else parse_ts(text_to)
    if text_to is not None and asked_to is None:
        return "field 'query.to' must be an ISO-8601 timestamp or null", None
    if asked_from is not None and asked_to is not None and asked_from > asked_to:
        return (
            f"field 'query.from' ({text_from}) is after 'query.to' ({text_to}): "
            "the window asks for nothing"
        ), None
    plate = query.get("plate")
    if plate is not None and not isinstance(plate, str):
        return "field 'query.plate' must be a string or null", None
    for name in _SEARCH_TEXTS:
        value = get(name)
        if value is not None and not isinstance(value, str):
            return f"field {name!r} must be a string or null", None
    return None, asked_from


_SEARCH_TEXTS: Final = ("reason", "case_number", "offense_type", "search_type")


def names_a_case(case_number: object) -> bool:
    """Whether `case_number` names a case: a placeholder ("n/a", "-", "none", "0", "unknown")
    only fills the field."""
    if not isinstance(case_number, str):
        return False
    text = case_number.strip().lower()
    return bool(text.strip(_NO_CASE_CHARS)) and text not in _NO_CASE


def purpose_text(event: Mapping[str, Any]) -> str:
    """The purpose as logged: the reason, with the offense type when both are given."""
    reason = event.get("reason") or ""
    offense = event.get("offense_type") or ""
    if reason and offense:
        return f"{offense} - {reason}"
    return str(reason or offense)


# Kinds the law tells apart; local, county, state and campus agencies are all public agencies
# under every statute on file, so they share cache entries.
_KIND_CLASSES: Final = {"federal": "federal", "private": "private", "tribal": "tribal"}


def _key(
    state: PolicyState, requester: Agency, requester_class: str, scope: str, owner_id: str
) -> AccessKey:
    """The access key of `owner_id`'s network for this requester, with its real relation."""
    settings = state.settings.get(owner_id)
    requester_id = requester.agency_id
    return AccessKey(
        owner_id,
        scope,
        requester.state,
        requester_class,
        settings is not None and requester_id in settings.share_with,
        requester_id == owner_id,
        settings is not None and requester_id in settings.declaration_on_file,
    )


def _access_reasons(
    state: PolicyState, requester: Agency, owner: Agency, key: AccessKey
) -> tuple[Reason, ...]:
    """Access (the owner's settings) and the recipient law of the owner's state.

    Read from the key and the requester's state and kind, never its id: one tuple serves
    every requester of the class (reason texts name the owner only).
    """
    owner_id = owner.agency_id
    settings = state.settings_for(owner_id)
    found: list[Reason] = []
    if not key.is_self:
        reachable = (
            key.in_share_list
            or (
                key.scope == "statewide"
                and settings.statewide_lookup
                and requester.state == owner.state
            )
            or (key.scope == "national" and settings.national_lookup)
        )
        if reachable and requester.is_federal and not settings.federal_sharing:
            reachable = False
        if not reachable:
            found.append(
                Reason(
                    codes.NOT_SHARED,
                    f"{_CONTRACT}, section 2 (access)",
                    f"{owner_id} does not share its network with the requester "
                    f"for a {key.scope} search",
                    owner_id,
                )
            )
        found.extend(
            recipient_class_law_reasons(
                state.rule_for(owner), owner, requester, declared=key.holds_declaration
            )
        )
    return tuple(found)


def _owner_purpose_reasons(
    state: PolicyState, owner: Agency, purpose: Purpose, relation: Relation
) -> tuple[Reason, ...]:
    """What the owner's state law and settings say about the stated purpose of a requester
    with this relation to the owner."""
    owner_id = owner.agency_id
    found = purpose_law_reasons(state.rule_for(owner), owner, purpose.categories, relation)
    if state.settings_for(owner_id).require_case_number and not purpose.has_case_number:
        found.append(
            Reason(
                codes.MISSING_CASE_NUMBER,
                f"owner setting require_case_number of {owner_id}",
                f"{owner_id} requires a case number for every search (a placeholder such as "
                "'n/a' names no case)",
                owner_id,
            )
        )
    return tuple(found)


def _purpose_reasons(
    state: PolicyState, cache: VerdictCache, owner_id: str, requester: Agency, purpose: Purpose
) -> tuple[Reason, ...]:
    """`_owner_purpose_reasons`, cached per owner, and per the requester's relation to it only
    where the owner's law bars a purpose for some requesters (most owners' answers hold for
    every requester, and their table stays one per owner)."""
    shielded = cache.shielded.get(owner_id)
    if shielded is None:
        known = state.agencies.get(owner_id)
        shielded = known is not None and bool(state.rule_for(known).shielded_purposes)
        cache.shielded[owner_id] = shielded
    relation: Relation = "same_state"  # read only where the owner's law has a shield
    table: str | tuple[str, str] = owner_id
    if shielded:
        relation = requester_relation(state.agencies[owner_id], requester)
        table = (owner_id, relation)
    by_purpose = cache.purposes.get(table)
    if by_purpose is None:
        by_purpose = remember(cache.purposes, table, {})
    else:
        cached = by_purpose.get(purpose)
        if cached is not None:
            return cached
    owner = state.agencies.get(owner_id)
    reasons = by_purpose[purpose] = (
        () if owner is None else _owner_purpose_reasons(state, owner, purpose, relation)
    )
    return reasons


def _verdict(
    state: PolicyState, cache: VerdictCache, requester: Agency, key: AccessKey, purpose: Purpose
) -> NetworkVerdict:
    """The clock-free verdict on one network, shared by every search with the same keys.

    The requester enters only through its state, class and relation to this owner, so busy
    owners hit the cache even when every requester is new.
    """
    by_purpose = cache.verdicts.get(key)
    if by_purpose is not None:
        verdict = by_purpose.get(purpose)
        if verdict is not None:
            return verdict
    owner_id = key.owner_id
    reasons = cache.access.get(key)
    if reasons is None:
        owner = state.agencies.get(owner_id)
        if owner is None:
            return NetworkVerdict(owner_id, (_unknown_owner(owner_id),))
        reasons = remember(cache.access, key, _access_reasons(state, requester, owner, key))
    if by_purpose is None:
        by_purpose = remember(cache.verdicts, key, {})
    # A shield reads the requester's relation to the owner: its state and class, which are the
    # key's, so the verdict may be cached under the key.
    verdict = NetworkVerdict(
        owner_id, reasons + _purpose_reasons(state, cache, owner_id, requester, purpose)
    )
    by_purpose[purpose] = verdict
    return verdict


def _networks_decided(
    state: PolicyState,
    requester: Agency,
    purpose: Purpose,
    networks: list[str],
    asked_from: float | None,
    now: float,
) -> tuple[tuple[NetworkVerdict, ...], int]:
    """`_networks_verdicts`, kept per requester, networks as named, purpose and retention
    bucket: searches in one bucket pass the same owners' limits (`_bucket`), so they get the
    same verdicts; an open window passes none, as bucket 0 does."""
    cache = _CACHES.of(state)
    bucket = 0 if asked_from is None else _bucket(cache.limits, asked_from, now)
    key = (requester.agency_id, tuple(networks), purpose, bucket)
    found = cache.searches.get(key)
    if found is None:
        found = remember_decided(
            cache.searches,
            key,
            _networks_verdicts(state, requester, purpose, networks, asked_from, now),
        )
    return found


def _networks_verdicts(
    state: PolicyState,
    requester: Agency,
    purpose: Purpose,
    networks: list[str],
    asked_from: float | None,
    now: float,
) -> tuple[tuple[NetworkVerdict, ...], int]:
    """The verdicts of a networks-scoped search, in the order named (each network once), with
    retention applied to the asked-for window, and how many allow: `_verdict` of each
    network's `_key`, looked up by owner and relation flags in one table per purpose and
    requester class."""
    cache = _CACHES.of(state)
    requester_id = requester.agency_id
    requester_class = _KIND_CLASSES.get(requester.kind, "public")
    table = cache.network_table(purpose, requester.state, requester_class)
    access = cache.network_access_table(requester.state, requester_class)
    settings_of = state.settings.get
    limits = state.retention_limits if asked_from is not None else None
    oldest = 0.0 if asked_from is None else asked_from
    found: list[NetworkVerdict] = []
    allowed = 0
    for owner_id in dict.fromkeys(networks):
        settings = settings_of(owner_id)
        flags = NETWORK_SELF if owner_id == requester_id else 0
        if settings is not None:
            if requester_id in settings.share_with:
                flags |= NETWORK_SHARED
            if requester_id in settings.declaration_on_file:
                flags |= NETWORK_DECLARED
        verdict = table.get((owner_id, flags))
        if verdict is None:
            verdict = cache.network_table_add(
                table,
                (owner_id, flags),
                _network_verdict(
                    state, cache, access, requester, requester_class, purpose, owner_id, flags
                ),
            )
        if limits:
            limit = limits.get(owner_id)
            if limit is not None and oldest < now - limit[0]:
                late = table.get((owner_id, flags | NETWORK_LATE))
                if late is None:
                    late = cache.network_table_add(
                        table, (owner_id, flags | NETWORK_LATE), _late(state, verdict, _WINDOW)
                    )
                verdict = late
        if not verdict.reasons:
            allowed += 1
        found.append(verdict)
    return tuple(found), allowed


def _network_verdict(
    state: PolicyState,
    cache: VerdictCache,
    access: dict[tuple[str, int], NetworkVerdict],
    requester: Agency,
    requester_class: str,
    purpose: Purpose,
    owner_id: str,
    flags: int,
) -> NetworkVerdict:
    """`_verdict` of a networks-scoped key: the access reasons (a verdict of them alone, kept
    per requester class, owner and flags for every purpose) then the purpose reasons (cached
    per owner), as `_verdict` joins them; most purposes add nothing, and the access verdict
    serves as it is."""
    alone = access.get((owner_id, flags))
    if alone is None:
        owner = state.agencies.get(owner_id)
        if owner is None:
            alone = NetworkVerdict(owner_id, (_unknown_owner(owner_id),))
        else:
            key = _key(state, requester, requester_class, "networks", owner_id)
            reasons = cache.access.get(key)
            if reasons is None:
                reasons = remember(cache.access, key, _access_reasons(state, requester, owner, key))
            alone = NetworkVerdict(owner_id, reasons)
        cache.network_table_add(access, (owner_id, flags), alone)
    more = _purpose_reasons(  # none for an unknown owner: it has no law or settings to read
        state, cache, owner_id, requester, purpose
    )
    return NetworkVerdict(owner_id, alone.reasons + more) if more else alone


def _unknown_owner(owner_id: str) -> Reason:
    return Reason(
        codes.UNKNOWN_OWNER,
        f"{_CONTRACT}, section 3",
        f"owner network {owner_id} is not in the registry; nothing is shared with an unknown owner",
        owner_id,
    )


def _pool_key_access(owner_id: str, key: PoolKey) -> AccessKey:
    # As for a requester that is none of the owners and has no relation to any.
    return AccessKey(
        owner_id,
        key.scope,
        key.requester_state,
        key.requester_class,
        in_share_list=False,
        is_self=False,
        holds_declaration=False,
    )


def _pool_owners(state: PolicyState, cache: VerdictCache, key: PoolKey) -> PoolOwners:
    """The owners of the pool of `key` and their groups, once per scope (and requester state
    for a statewide pool)."""
    where = "" if key.scope == "national" else key.requester_state
    found = cache.pool_owners.get((key.scope, where))
    if found is not None:
        return found
    owners = tuple(
        sorted(
            state.national_owners
            if key.scope == "national"
            else state.statewide_owners.get(where, frozenset())
        )
    )
    limits = state.retention_limits
    limited = tuple([i for i, o in enumerate(owners) if o in limits])
    by_limit = tuple(sorted(limited, key=lambda i: limits[owners[i]][0]))
    access: dict[tuple[str, bool], list[int]] = {}
    purposes: dict[tuple[str, bool], list[int]] = {}
    shielded: set[str] = set()
    for i, owner_id in enumerate(owners):
        owner = state.agencies[owner_id]
        settings = state.settings_for(owner_id)
        access.setdefault((owner.state, settings.federal_sharing), []).append(i)
        purposes.setdefault((owner.state, settings.require_case_number), []).append(i)
        shielded.update(s.category for s in state.rule_for(owner).shielded_purposes)
    found = PoolOwners(
        owners,
        {o: i for i, o in enumerate(owners)},
        tuple([NetworkVerdict(o) for o in owners]),
        limited,
        by_limit,
        tuple([limits[owners[i]][0] for i in by_limit]),
        tuple([tuple(group) for group in access.values()]),
        tuple([tuple(group) for group in purposes.values()]),
        frozenset(shielded),
    )
    cache.pool_owners[(key.scope, where)] = found
    return found


def _reasons_by_group(
    groups: tuple[tuple[int, ...], ...], reasons_of: Callable[[int], tuple[Reason, ...]]
) -> dict[int, tuple[Reason, ...]]:
    """Index -> `reasons_of(index)` for the indices that have some. Owners are grouped so that
    a group's first owner having none means none of the group has any: the rest of such a
    group is never asked."""
    found: dict[int, tuple[Reason, ...]] = {}
    for group in groups:
        first = reasons_of(group[0])
        if not first:
            continue
        found[group[0]] = first
        for i in group[1:]:
            reasons = reasons_of(i)
            if reasons:
                found[i] = reasons
    return found


def _pool_access(
    state: PolicyState, cache: VerdictCache, requester: Agency, key: PoolKey, base: PoolOwners
) -> dict[int, tuple[Reason, ...]]:
    """Index -> the access reasons of each owner that has some, for the requester class: an
    owner's group says whether it has any, so one owner of each group is asked first."""
    table = (key.scope, key.requester_state, key.requester_class)
    found = cache.pool_access.get(table)
    if found is not None:
        return found
    owners, agencies = base.owners, state.agencies

    def reasons_of(i: int) -> tuple[Reason, ...]:
        owner_id = owners[i]
        access = _pool_key_access(owner_id, key)
        reasons = cache.access.get(access)
        if reasons is None:
            reasons = remember(
                cache.access, access, _access_reasons(state, requester, agencies[owner_id], access)
            )
        return reasons

    found = _reasons_by_group(base.access_groups, reasons_of)
    cache.pool_access[table] = found
    return found


def _pool_purposes(
    state: PolicyState, cache: VerdictCache, key: PoolKey, base: PoolOwners
) -> dict[int, tuple[Reason, ...]]:
    """Index -> the purpose reasons of each owner that has some: as `_purpose_reasons` gives
    them, one owner of each group asked first. The requester's relation matters only where an
    owner's law shields one of the purpose's categories."""
    purpose = key.purpose
    relation_key = ""
    if base.shield_categories.intersection(purpose.categories):
        federal = key.requester_class == "federal" or key.requester_state == FEDERAL_STATE
        relation_key = "federal" if federal else key.requester_state
    where = "" if key.scope == "national" else key.requester_state
    table = (key.scope, where, purpose, relation_key)
    found = cache.pool_purposes.get(table)
    if found is not None:
        return found
    owners, agencies = base.owners, state.agencies

    def reasons_of(i: int) -> tuple[Reason, ...]:
        owner = agencies[owners[i]]
        relation: Relation = "same_state"  # read only where the owner's law has a shield
        if relation_key and state.rule_for(owner).shielded_purposes:
            if relation_key == "federal":
                relation = "federal"
            elif owner.state != relation_key:
                relation = "out_of_state"
        return _owner_purpose_reasons(state, owner, purpose, relation)

    found = _reasons_by_group(base.purpose_groups, reasons_of)
    cache.pool_purposes[table] = found
    return found


def _pool(state: PolicyState, cache: VerdictCache, requester: Agency, key: PoolKey) -> Pool:
    # Every owner in the pool opened its network to the scope, so its verdict depends on the
    # requester only through state and class (relations aside): one computation per class.
    # A verdict is access reasons then purpose reasons, as `_verdict` makes it; most owners
    # have neither, and whether one has is decided per group of owners, so a pool costs its
    # groups and the owners with reasons, not one `_verdict` per owner.
    cached = cache.pools.get(key)
    if cached is not None:
        return cached
    base = _pool_owners(state, cache, key)
    access = _pool_access(state, cache, requester, key, base)
    purposes = _pool_purposes(state, cache, key, base)
    verdicts = list(base.clean)
    owners = base.owners
    touched = access.keys() | purposes.keys()
    for i in touched:
        verdicts[i] = NetworkVerdict(owners[i], access.get(i, ()) + purposes.get(i, ()))
    pool = Pool(
        tuple(verdicts),
        base.position,
        base.limited,
        len(owners) - len(touched),
        base.by_limit,
        base.limit_seconds,
        {},
    )
    return remember(cache.pools, key, pool)


_WINDOW: Final = "the asked-for window"


def _bucket(limits: tuple[float, ...], asked_from: float | None, now: float) -> int:
    """How many of the snapshot's distinct retention limits (ascending) a window starting at
    `asked_from` passes, by the comparison `_past_retention` makes: searches in one bucket get
    the same verdicts from every owner."""
    passed = 0
    if asked_from is not None:
        for seconds in limits:
            if asked_from >= now - seconds:
                break
            passed += 1
    return passed


def _spread(
    state: PolicyState,
    cache: VerdictCache,
    pool: Pool,
    key: PoolKey,
    asked_from: float | None,
    now: float,
) -> Spread:
    """The pool's verdicts with retention applied for the bucket of `asked_from`."""
    bucket = _bucket(cache.limits, asked_from, now)
    found = cache.spreads.get((key, bucket))
    if found is not None:
        return found
    root = cache.spreads.get((key, 0))
    if root is None:
        root = remember(cache.spreads, (key, 0), Spread(pool, pool.verdicts, pool.allowed))
    if bucket == 0 or asked_from is None:
        return root
    # The window passes exactly the limits up to the bucket's: those owners' verdicts gain a
    # RETENTION_EXCEEDED (as `_past_retention` would add it), every other verdict is the root's.
    passed = bisect_right(pool.limit_seconds, cache.limits[bucket - 1])
    changed = tuple(sorted(pool.by_limit[:passed]))
    verdicts = list(pool.verdicts)
    allowed = pool.allowed
    late = pool.late
    for i in changed:
        before = verdicts[i]
        after = late.get(i)
        if after is None:
            after = late[i] = _late(state, before, _WINDOW)
        if not before.reasons:
            allowed -= 1
        verdicts[i] = after
    spread = Spread(pool, tuple(verdicts), allowed, root, root, changed)
    return remember(cache.spreads, (key, bucket), spread)


def _fan_out(
    state: PolicyState,
    cache: VerdictCache,
    requester: Agency,
    asked: PoolKey,
    asked_from: float | None,
    now: float,
) -> tuple[tuple[NetworkVerdict, ...], tuple[int, ...] | None, int, Fanned | None]:
    """Verdicts of a statewide or national search (own network first, then the pool), with
    retention applied to the asked-for window; the indices that have a retention limit (for an
    open window only, else None); how many verdicts allow; and how they were made from a shared
    spread (None when the requester's declarations changed some)."""
    purpose = asked.purpose
    pool = _pool(state, cache, requester, asked)
    spread = _spread(state, cache, pool, asked, asked_from, now)

    def verdict_as_itself(owner_id: str) -> NetworkVerdict:
        key = _key(state, requester, asked.requester_class, asked.scope, owner_id)
        verdict = _verdict(state, cache, requester, key, purpose)
        if asked_from is None:
            return verdict
        return _past_retention(state, verdict, asked_from, now, _WINDOW)

    requester_id = requester.agency_id
    own = verdict_as_itself(requester_id)
    own_at = pool.position.get(requester_id)
    pooled = spread.verdicts
    allowed = spread.allowed + (0 if own.reasons else 1)
    if own_at is None:
        verdicts = (own, *pooled)
    else:
        verdicts = (own, *pooled[:own_at], *pooled[own_at + 1 :])
        allowed -= 0 if pooled[own_at].reasons else 1
    fanned: Fanned | None = Fanned(own, own_at, spread)
    personal = cache.declarations.get(requester_id)
    if personal:
        # The owners holding this requester's declaration judge it as itself, not its class.
        changed = list(verdicts)
        touched = False
        for owner_id in personal:
            i = pool.position.get(owner_id)
            if i is None or i == own_at:
                continue
            at = i + 1 if own_at is None or i < own_at else i
            before = changed[at]
            changed[at] = verdict_as_itself(owner_id)
            allowed += (0 if changed[at].reasons else 1) - (0 if before.reasons else 1)
            touched = touched or changed[at] is not before
        if touched:
            verdicts, fanned = tuple(changed), None
    limited: tuple[int, ...] | None = None
    if asked_from is None:
        if own_at is None:
            limited = tuple(i + 1 for i in pool.limited)
        else:
            limited = tuple(i + 1 if i < own_at else i for i in pool.limited if i != own_at)
        if requester_id in state.retention_limits:
            limited = (0, *limited)
    return verdicts, limited, allowed, fanned


def _compose(how: Fanned) -> tuple[NetworkVerdict, ...]:
    """(own, *the spread's verdicts without the one at own_at)."""
    pooled, at = how.spread.verdicts, how.own_at
    if at is None:
        return (how.own, *pooled)
    return (how.own, *pooled[:at], *pooled[at + 1 :])


def _tag(verdict: NetworkVerdict, search_reasons: tuple[Reason, ...]) -> NetworkVerdict:
    if verdict.reasons:
        return verdict
    return NetworkVerdict(verdict.agency_id, _tagged(list(search_reasons), verdict.agency_id))


def _tagged_spread(spread: Spread, search_reasons: tuple[Reason, ...]) -> Spread:
    """`spread` with the search-level reasons restated on every verdict without reasons, made
    once per spread and reasons; a spread made from a base is tagged from the tagged base,
    changed only where the spread differs from its base."""
    found = spread.derived.get(("tagged", search_reasons))
    if isinstance(found, Spread):
        return found
    base = spread.base
    if base is spread:
        made = Spread(
            spread.pool, tuple([_tag(v, search_reasons) for v in spread.verdicts]), 0, spread.root
        )
    else:
        tagged_base = _tagged_spread(base, search_reasons)
        verdicts = list(tagged_base.verdicts)
        for i in spread.changed:
            verdicts[i] = _tag(spread.verdicts[i], search_reasons)
        made = Spread(spread.pool, tuple(verdicts), 0, spread.root, tagged_base, spread.changed)
    spread.derived[("tagged", search_reasons)] = made
    return made


def _tagged_fan(how: Fanned, search_reasons: tuple[Reason, ...]) -> Fanned:
    """`how` with the search-level reasons restated on every network that has none of its own
    (as `decide_search` does), from a tagged spread made once per spread and reasons."""
    return Fanned(
        _tag(how.own, search_reasons), how.own_at, _tagged_spread(how.spread, search_reasons)
    )


# The decisions made from a spread lately, by the identity of their verdicts tuple: outputs
# read their lists from the spread (`fanned`) instead of walking thousands of verdicts.
_FANNED: Final[dict[int, tuple[tuple[NetworkVerdict, ...], Fanned]]] = {}
_FANNED_LIMIT: Final = 256


def fanned(decision: SearchDecision) -> Fanned | None:
    """How a statewide or national decision's verdicts were made from a shared spread, if the
    engine made it lately and nothing but its own network differs from the spread."""
    entry = _FANNED.get(id(decision.verdicts))
    if entry is None or entry[0] is not decision.verdicts:
        return None
    return entry[1]


def _remember_fanned(verdicts: tuple[NetworkVerdict, ...], how: Fanned) -> None:
    if len(_FANNED) >= _FANNED_LIMIT:
        _FANNED.clear()
    _FANNED[id(verdicts)] = (verdicts, how)


def _past_retention(
    state: PolicyState, verdict: NetworkVerdict, oldest: float, now: float, what: str
) -> NetworkVerdict:
    """The verdict with RETENTION_EXCEEDED added when `oldest` is past the owner's limit."""
    limit = state.retention_limits.get(verdict.agency_id)
    if limit is None or oldest >= now - limit[0]:
        return verdict
    return _late(state, verdict, what)


def _late(state: PolicyState, verdict: NetworkVerdict, what: str) -> NetworkVerdict:
    """The verdict with RETENTION_EXCEEDED added for the owner's limit (which it must have)."""
    _seconds, citation, text = state.retention_limits[verdict.agency_id]
    late = Reason(
        codes.RETENTION_EXCEEDED,
        citation,
        f"{what} is older than the {text} {verdict.agency_id} may keep ALPR data",
        verdict.agency_id,
    )
    return NetworkVerdict(verdict.agency_id, (*verdict.reasons, late))


def _tagged(reasons: list[Reason], agency_id: str) -> tuple[Reason, ...]:
    """Search-level reasons restated on one network."""
    return tuple([Reason(r.code, r.citation, r.detail, agency_id) for r in reasons])


def _tagged_verdict(
    made: dict[str, NetworkVerdict], verdict: NetworkVerdict, top: tuple[Reason, ...]
) -> NetworkVerdict:
    found = made.get(verdict.agency_id)
    if found is None:
        found = remember(made, verdict.agency_id, _tag(verdict, top))
    return found


def _search_level_reasons(
    requester_id: str,
    known: bool,
    categories: tuple[str, ...],
    state: PolicyState,
    rate_limited: bool,
) -> list[Reason]:
    found: list[Reason] = []
    if not known:
        found.append(
            Reason(
                codes.UNKNOWN_REQUESTER,
                f"{_CONTRACT}, section 3",
                f"requester {requester_id} is not in the registry; nothing is shared with an "
                "unknown agency",
            )
        )
    if "missing" in categories:
        found.append(
            Reason(
                codes.MISSING_PURPOSE,
                state.statutes.missing_purpose.cited,
                "the search states no purpose (empty or placeholder reason)",
            )
        )
    if rate_limited:
        found.append(
            Reason(
                codes.RATE_LIMIT_EXCEEDED,
                f"{_CONTRACT}, section 3",
                f"{requester_id} passed its search rate limit",
            )
        )
    return found


def decide_search(
    event: Mapping[str, Any], state: PolicyState, now: float, *, rate_limited: bool = False
) -> SearchDecision | MalformedDecision:
    """Decide a search_request per owner network in its scope."""
    problem, asked_from = _search_schema_error(event, now)
    if problem is not None:
        return _malformed(state, _text_id(event, "search_id"), "search_request", problem)
    requester_id: str = event["requester"]["agency_id"]
    requester = state.agencies.get(requester_id)
    categories = classify(purpose_text(event))
    purpose = Purpose(categories, names_a_case(event.get("case_number")))
    scope: str = event["scope"]
    search_reasons = (
        _search_level_reasons(requester_id, requester is not None, categories, state, rate_limited)
        if requester is None or rate_limited or "missing" in categories
        else []
    )

    verdicts: tuple[NetworkVerdict, ...]
    limited: tuple[int, ...] | None = None  # indices with a retention limit; None: look all up
    how: Fanned | None = None
    if requester is None:
        verdicts = _unknown_requester_verdicts(event, state, scope, purpose, search_reasons)
        if asked_from is not None and state.retention_limits:
            verdicts = tuple(
                _past_retention(state, v, asked_from, now, "the asked-for window") for v in verdicts
            )
        allowed = 0
    elif scope == "networks":
        verdicts, allowed = _networks_decided(
            state, requester, purpose, event["networks"], asked_from, now
        )
    else:
        asked = PoolKey(
            requester.state, _KIND_CLASSES.get(requester.kind, "public"), scope, purpose
        )
        verdicts, limited, allowed, how = _fan_out(
            state, _CACHES.of(state), requester, asked, asked_from, now
        )

    clamped: tuple[tuple[str, float], ...] = ()
    if search_reasons and how is not None:
        how = _tagged_fan(how, tuple(search_reasons))
        verdicts = _compose(how)
        outcome = "denied"
    elif search_reasons:
        if requester is not None:
            # A search-level violation denies every network; say which one on each (made once
            # per snapshot, reasons and network).
            tagged = _CACHES.of(state).tagged
            top = tuple(search_reasons)
            made = tagged.get(top)
            if made is None:
                made = remember(tagged, top, {})
            verdicts = tuple([v if v.reasons else _tagged_verdict(made, v, top) for v in verdicts])
        outcome = "denied"
    elif allowed == 0:
        outcome = "denied"
    else:
        outcome = "approved" if allowed == len(verdicts) else "partial"
        if asked_from is None and state.retention_limits:
            clamped = _clamps(state, verdicts, limited, now)
    if how is not None:
        _remember_fanned(verdicts, how)
    return SearchDecision(
        event_id=event["search_id"],
        outcome=outcome,
        search_reasons=tuple(search_reasons),
        verdicts=verdicts,
        policy_version=state.version,
        categories=categories,
        clamped=clamped,
    )


def _clamps(
    state: PolicyState,
    verdicts: tuple[NetworkVerdict, ...],
    limited: tuple[int, ...] | None,
    now: float,
) -> tuple[tuple[str, float], ...]:
    """(owner, earliest read time) of each allowed owner whose retention limit bounds an open
    window. A limit reaching back before 1970 bounds nothing an ALPR holds, and is written as
    the epoch so that it stays a timestamp."""
    indices = range(len(verdicts)) if limited is None else limited
    found: list[tuple[str, float]] = []
    for i in indices:
        verdict = verdicts[i]
        limit = state.retention_limits.get(verdict.agency_id)
        if limit is not None and not verdict.reasons:
            found.append((verdict.agency_id, max(0.0, now - limit[0])))
    return tuple(found)


def _unknown_requester_verdicts(
    event: Mapping[str, Any],
    state: PolicyState,
    scope: str,
    purpose: Purpose,
    search_reasons: list[Reason],
) -> tuple[NetworkVerdict, ...]:
    """The networks of a search by an agency outside the registry, each with every code that
    applies without knowing the requester's state and kind: the search-level ones, an unknown
    owner, and what each owner's law and settings say of the purpose (a prohibition for some
    requesters only applies too: the requester could be any of them). Recipient rules need the
    requester's state and kind and are not guessed. Without a home state there is no
    statewide pool and no own network."""
    if scope == "networks":
        owners = list(dict.fromkeys(event["networks"]))
    elif scope == "national":
        owners = sorted(state.national_owners)
    else:
        owners = []
    verdicts: list[NetworkVerdict] = []
    for owner_id in owners:
        reasons = _tagged(search_reasons, owner_id)
        owner = state.agencies.get(owner_id)
        if owner is None:
            reasons += (_unknown_owner(owner_id),)
        else:
            reasons += _owner_purpose_reasons(state, owner, purpose, "unknown")
        verdicts.append(NetworkVerdict(owner_id, reasons))
    return tuple(verdicts)


def _read_schema_error(event: Mapping[str, Any], now: float) -> tuple[str | None, float]:
    """What is wrong with a plate_read, or None and its `ts`, parsed once as it is checked."""
    get = event.get
    for name in _READ_IDS:
        value = get(name)
        if not isinstance(value, str) or not value:
            return f"field {name!r} must be a non-empty string", 0.0
    ts = parse_ts(get("ts"))
    if ts is None or ts > now + FUTURE_TOLERANCE:
        return _dated_error(event, ts, now), 0.0
    share_to = get("share_to", [])
    if not isinstance(share_to, list) or not all([isinstance(a, str) for a in share_to]):
        return "field 'share_to' must be a list of agency ids", 0.0
    confidence = get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool) or not isinstance(confidence, int | float)
    ):
        return "field 'confidence' must be a number", 0.0
    hotlist_hit = get("hotlist_hit")
    if hotlist_hit is not None and not isinstance(hotlist_hit, bool):
        return "field 'hotlist_hit' must be true, false or null", 0.0
    for name in _READ_TEXTS:
        value = get(name)
        if value is not None and not isinstance(value, str):
            return f"field {name!r} must be a string or null", 0.0
    location = get("location")
    if location is not None and not _is_mapping(location):
        return "field 'location' must be an object or null", 0.0
    return None, ts


_READ_IDS: Final = ("read_id", "agency_id", "plate")
_READ_TEXTS: Final = ("camera_id", "plate_state")


def _read_retention(
    state: PolicyState, event: Mapping[str, Any], owner: Agency
) -> RetentionLimit | None:
    """The retention limit a read of `owner` is held to. A hotlist hit that the statute exempts
    from its purge is held to the owner's own `retention_days` only."""
    limit = state.retention_limits.get(owner.agency_id)
    if limit is not None and event.get("hotlist_hit") is True:
        retention = state.rule_for(owner).retention
        if retention is not None and retention.hotlist_exempt:
            return own_retention_limit(owner, state.settings_for(owner.agency_id))
    return limit


def decide_read(
    event: Mapping[str, Any], state: PolicyState, now: float
) -> ReadDecision | MalformedDecision:
    """Decide a plate_read per recipient in its `share_to` list.

    A read past its owner's retention limit may be neither kept nor forwarded: it is denied as
    a whole (a read-level RETENTION_EXCEEDED), with or without recipients, and each recipient
    says so too.
    """
    problem, read_ts = _read_schema_error(event, now)
    if problem is not None:
        return _malformed(state, _text_id(event, "read_id"), "plate_read", problem)
    owner_id: str = event["agency_id"]
    owner = state.agencies.get(owner_id)
    late: Reason | None = None
    if owner is not None:
        limit = _read_retention(state, event, owner)
        if limit is not None and read_ts < now - limit[0]:
            late = Reason(
                codes.RETENTION_EXCEEDED,
                limit[1],
                f"the read is older than the {limit[2]} {owner_id} may keep ALPR data",
                owner_id,
            )
    share_to: list[str] = event.get("share_to", [])
    if late is None:
        # Within retention, a read's verdicts depend on its owner and recipients only.
        cache = _READ_CACHES.of(state)
        key = (owner_id, tuple(share_to))
        found = cache.reads.get(key)
        if found is None:
            found = remember_decided(
                cache.reads, key, _read_verdicts(state, owner, owner_id, share_to, None)
            )
        verdicts, allowed = found
    else:
        verdicts, allowed = _read_verdicts(state, owner, owner_id, share_to, late)
    if late is not None or (verdicts and allowed == 0):
        outcome = "denied"
    elif allowed == len(verdicts):
        outcome = "shared"  # includes a read with no recipients: nothing leaves the owner
    else:
        outcome = "partial"
    read_reasons = (late,) if late is not None else ()
    return ReadDecision(event["read_id"], outcome, read_reasons, verdicts, state.version)


def _read_verdicts(
    state: PolicyState,
    owner: Agency | None,
    owner_id: str,
    share_to: list[str],
    late: Reason | None,
) -> tuple[tuple[NetworkVerdict, ...], int]:
    """The verdict of each recipient of a read of `owner_id` (each once, in the order named),
    with the read-level `late` restated on each, and how many allow."""
    verdicts: list[NetworkVerdict] = []
    allowed = 0
    recipients = _READ_CACHES.of(state).recipients
    for recipient_id in dict.fromkeys(share_to):
        # What the owner's settings and law say of a recipient holds for every read of the
        # snapshot; only retention is the read's own.
        reasons = recipients.get((owner_id, recipient_id))
        if reasons is None:
            reasons = remember(
                recipients,
                (owner_id, recipient_id),
                _recipient_reasons(state, owner, owner_id, recipient_id),
            )
        if late is not None:
            reasons = (*reasons, Reason(late.code, late.citation, late.detail, recipient_id))
        elif not reasons:
            allowed += 1
        verdicts.append(NetworkVerdict(recipient_id, reasons))
    return tuple(verdicts), allowed


def _recipient_reasons(
    state: PolicyState,
    owner: Agency | None,
    owner_id: str,
    recipient_id: str,
) -> tuple[Reason, ...]:
    if owner is None:
        return (
            Reason(
                codes.UNKNOWN_OWNER,
                f"{_CONTRACT}, section 3",
                f"the read's owner {owner_id} is not in the registry; nothing is shared",
                recipient_id,
            ),
        )
    recipient = state.agencies.get(recipient_id)
    if recipient is None:
        found = [
            Reason(
                codes.UNKNOWN_REQUESTER,
                f"{_CONTRACT}, section 3",
                f"recipient {recipient_id} is not in the registry; nothing is shared with an "
                "unknown agency",
                recipient_id,
            )
        ]
    else:
        settings = state.settings_for(owner_id)
        found = []
        if recipient_id != owner_id:
            reachable = recipient_id in settings.share_with and (
                not recipient.is_federal or settings.federal_sharing
            )
            if not reachable:
                found.append(
                    Reason(
                        codes.NOT_SHARED,
                        f"{_CONTRACT}, section 2 (access)",
                        f"{owner_id} does not share its reads with {recipient_id}",
                        recipient_id,
                    )
                )
        found.extend(
            Reason(r.code, r.citation, r.detail, recipient_id)
            for r in recipient_law_reasons(state.rule_for(owner), owner, recipient, settings)
        )
    return tuple(found)


def decide_event(
    event: Event,
    state: PolicyState,
    now: float,
    keys: Mapping[str, Key],
    *,
    memory: ReplayMemory,
    rate_limited: bool = False,
    source: str | None = None,
) -> tuple[PolicyState, Decision]:
    """Decide one decoded input event (`streamguard.stream.intake` decodes them).

    Policy changes and agency records are control records (`streamguard.core.control`):
    verified against `keys` and the replay `memory`, they return the next snapshot; the caller
    remembers them (`control.replay_entry_for`). Everything else returns `state` itself.
    `rate_limited` says the requester of a search is past its rate limit (the worker counts
    searches; evaluate does not). `source` is where a control record was read, for telling a
    redelivery from a replay.
    """
    body = event.body
    if event.kind == "search_request":
        return state, decide_search(body, state, now, rate_limited=rate_limited)
    if event.kind == "plate_read":
        return state, decide_read(body, state, now)
    if event.kind == "policy_change":
        return apply_change(state, body, keys, memory, now, source=source)
    if event.kind == "agency":
        return apply_agency_record(state, event, keys, memory, now, source=source)
    msg = f"not an event kind: {event.kind!r}"
    raise ValueError(msg)
