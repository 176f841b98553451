"""The engine's cache of clock-free verdicts, for one policy snapshot at a time.

A search's verdicts depend on the snapshot, the requester's class and relation to each owner,
and the purpose, never on the clock (retention is applied after): the same inputs give the
same verdict, and busy owners are asked the same question thousands of times. Each table is
keyed by small typed keys that name exactly what its values depend on: a network's verdict is
found under its `AccessKey`, then its `Purpose`.

A cache belongs to one snapshot, by identity: `VerdictCaches.of` hands out the cache of the
snapshot it is asked about and starts an empty one for any other, so no verdict computed under
other settings or another registry is ever served. `PolicyState` itself stays a plain frozen
value.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple, TypeVar

from streamguard.core.models import NetworkVerdict, Reason
from streamguard.core.policy import PolicyState

__all__ = (
    "NETWORK_DECLARED",
    "NETWORK_LATE",
    "NETWORK_SELF",
    "NETWORK_SHARED",
    "SEARCH_LIMIT",
    "TABLE_LIMIT",
    "AccessKey",
    "DecisionLists",
    "Fanned",
    "Pool",
    "PoolKey",
    "PoolOwners",
    "Purpose",
    "Spread",
    "VerdictCache",
    "VerdictCaches",
    "decision_lists",
    "derived_lists",
    "derived_of",
    "remember",
    "remember_decided",
    "share",
    "spread_code_counts",
    "spread_codes_without",
    "spread_lists",
    "spread_position",
)

# The relation flags of a networks-scoped verdict (`VerdictCache.networks`).
NETWORK_SHARED: Final = 1
NETWORK_SELF: Final = 2
NETWORK_DECLARED: Final = 4
NETWORK_LATE: Final = 8

# A long-running worker with a stable policy would otherwise grow each table with every new
# (requester class, owner, purpose) combination; a table that reaches this size starts over.
TABLE_LIMIT: Final = 200_000


# Whole decisions kept per snapshot (`VerdictCache.searches`, `reads`), and verdict tuples
# whose derived values are kept (`derived_of`), at most this many of each. A kept search with
# what its outputs derive costs about 1.7 KB (24,000 took 42 MB in bench_processor): about
# 100 MB at worst. 50,000 is more than a day of a national network's searches (1.1 million a
# month), and all of a camera's reads share one entry.
SEARCH_LIMIT: Final = 50_000


class AccessKey(NamedTuple):
    """What access to one owner network and the recipient law of its state depend on."""

    owner_id: str
    scope: str
    requester_state: str
    requester_class: str  # federal | private | tribal | public (the kinds the law tells apart)
    in_share_list: bool
    is_self: bool
    holds_declaration: bool


class Purpose(NamedTuple):
    """What the law and the owners' settings read of a search's stated purpose."""

    categories: tuple[str, ...]  # the classifier's, in its fixed order
    has_case_number: bool


class PoolKey(NamedTuple):
    """What the verdicts of a statewide or national pool depend on."""

    requester_state: str
    requester_class: str
    scope: str
    purpose: Purpose


@dataclass(frozen=True, slots=True)
class Pool:
    """The verdicts of one statewide or national pool for a requester class, computed as for
    a requester that is none of the owners, in no share list and holds no declaration."""

    verdicts: tuple[NetworkVerdict, ...]  # sorted by owner id
    position: Mapping[str, int]  # owner id -> index in verdicts
    limited: tuple[int, ...]  # indices of owners with a retention limit to check
    allowed: int  # how many verdicts allow
    # The indices of `limited` ordered by their owner's limit (seconds), with those limits:
    # a window passes the limits of a prefix of them (`Spread` of a retention bucket).
    by_limit: tuple[int, ...]
    limit_seconds: tuple[float, ...]  # ascending, one per entry of by_limit
    # Index -> its verdict with the asked-for window's RETENTION_EXCEEDED added, made once.
    late: dict[int, NetworkVerdict]


@dataclass(frozen=True, slots=True)
class PoolOwners:
    """The owners of one statewide or national pool (sorted by id) and what their verdicts
    depend on among themselves, shared by every requester class and purpose of the pool: each
    owner's verdict is a clean one (no reasons) unless its access or its purpose reasons say
    otherwise, and whether they do is the same for every owner of a group."""

    owners: tuple[str, ...]
    position: Mapping[str, int]  # owner id -> index
    clean: tuple[NetworkVerdict, ...]  # a verdict without reasons per owner
    limited: tuple[int, ...]  # indices of owners with a retention limit
    by_limit: tuple[int, ...]  # `limited` ordered by the owner's limit (seconds)
    limit_seconds: tuple[float, ...]  # ascending, one per entry of by_limit
    # Indices by (owner state, federal_sharing): the access and recipient law of an owner
    # open to the scope read only these of the owner.
    access_groups: tuple[tuple[int, ...], ...]
    # Indices by (owner state, require_case_number): the purpose reasons read only these,
    # and the requester's relation where the state's law shields a purpose.
    purpose_groups: tuple[tuple[int, ...], ...]
    shield_categories: frozenset[str]  # the categories any owner's law shields


_K = TypeVar("_K")
_V = TypeVar("_V")


class Spread:
    """A pool's verdicts with retention applied for one retention bucket (which of the owners'
    limits the asked-for window passes), shared by every search of the pool's requester class
    in that bucket. What outputs derive from the verdicts (lists, grouped reasons, counts) is
    kept in `derived`, by the name of what derives it, so it is computed once per spread.

    A spread made from another (`base`) differs from it only at the indices `changed`
    (ascending): a retention bucket's spread from the root (the owners whose limit the window
    passes), a search-level tagged spread of a bucket from the tagged root. What is derived
    from it can then be derived from the base's in the size of `changed` (`spread_lists`,
    `spread_code_counts`)."""

    __slots__ = ("allowed", "base", "changed", "derived", "pool", "root", "verdicts")

    def __init__(
        self,
        pool: Pool,
        verdicts: tuple[NetworkVerdict, ...],
        allowed: int,
        root: Spread | None = None,
        base: Spread | None = None,
        changed: tuple[int, ...] = (),
    ) -> None:
        self.pool = pool
        self.verdicts = verdicts  # in pool order: pool.position indexes them
        self.allowed = allowed
        # The pool's spread without retention or search-level reasons (itself, if it is that
        # one): what only the access and recipient law decide is derived once, from it.
        self.root: Spread = self if root is None else root
        # Itself when it is made from no other spread (then `changed` is empty).
        self.base: Spread = self if base is None else base
        self.changed = changed if base is not None else ()
        self.derived: dict[object, object] = {}

    def memo(self, name: object, make: Callable[[], _V]) -> _V:
        """What `make` derives from this spread, computed once (callers name what they
        derive; one name, one kind of value)."""
        found = self.derived.get(name)
        if found is None:
            found = self.derived[name] = make()
        return found  # type: ignore[return-value]  # stored by `make` under this name only


@dataclass(frozen=True, slots=True)
class Fanned:
    """How a statewide or national decision's verdicts were made: `own` (the requester's own
    network, first), then `spread`'s verdicts without the one at `own_at` (the requester's own
    network in the pool, if it is one). Nothing else differs from the spread."""

    own: NetworkVerdict
    own_at: int | None
    spread: Spread


def remember(table: dict[_K, _V], key: _K, value: _V, limit: int | None = None) -> _V:
    """Store `value` under `key`, starting the table over when it holds `limit` entries
    (TABLE_LIMIT, read at the call); returns `value`."""
    if len(table) >= (TABLE_LIMIT if limit is None else limit):
        table.clear()
    table[key] = value
    return value


class VerdictCache:
    """The tables of one snapshot. Only `VerdictCaches.of` makes one.

    The tables keyed by owner or access key hold one small table per purpose: there are only
    as many purposes as the classifier can tell apart (a few hundred at most), so bounding the
    outer table bounds them too.
    """

    __slots__ = (
        "_declarations",
        "_limits",
        "_network_entries",
        "access",
        "networks",
        "pool_access",
        "pool_owners",
        "pool_purposes",
        "pools",
        "purposes",
        "reads",
        "recipients",
        "searches",
        "shielded",
        "snapshot",
        "spreads",
        "tagged",
        "verdicts",
    )

    def __init__(self, snapshot: PolicyState) -> None:
        self.snapshot = snapshot
        # Access key -> purpose -> the network's verdict.
        self.verdicts: dict[AccessKey, dict[Purpose, NetworkVerdict]] = {}
        # Access key -> the access reasons, shared by every purpose.
        self.access: dict[AccessKey, tuple[Reason, ...]] = {}
        # Owner id -> purpose -> what the owner's law and settings say about it; where the
        # owner's law bars a purpose for some requesters only (a shield law), keyed by
        # (owner id, the requester's relation to the owner) instead.
        self.purposes: dict[str | tuple[str, str], dict[Purpose, tuple[Reason, ...]]] = {}
        # Owner id -> whether its law has such a bar (bounded by the registry's size).
        self.shielded: dict[str, bool] = {}
        self.pools: dict[PoolKey, Pool] = {}
        # What pools are made from: the owners of (scope, requester state for statewide, or
        # ""); (scope, requester state, class) -> index -> the non-empty access reasons;
        # (scope, owners' state key, purpose, relation key) -> index -> the non-empty purpose
        # reasons. Bounded by the registry's states, classes and the purposes.
        self.pool_owners: dict[tuple[str, str], PoolOwners] = {}
        self.pool_access: dict[tuple[str, str, str], dict[int, tuple[Reason, ...]]] = {}
        self.pool_purposes: dict[tuple[str, str, Purpose, str], dict[int, tuple[Reason, ...]]] = {}
        # The networks-scoped path's shortcut to `verdicts`: (purpose, requester state,
        # requester class) -> (owner id, relation flags) -> the verdict, where the flags are
        # NETWORK_SHARED | NETWORK_SELF | NETWORK_DECLARED of the access key (NETWORK_LATE
        # marks the verdict with the asked-for window's RETENTION_EXCEEDED added). One lookup
        # per network, with no access key built. Bounded as a whole (`network_table_add`).
        self.networks: dict[
            tuple[Purpose | None, str, str], dict[tuple[str, int], NetworkVerdict]
        ] = {}
        self._network_entries = 0
        # (read owner id, recipient id) -> what the owner's settings and law say of sharing a
        # read with the recipient (retention aside).
        self.recipients: dict[tuple[str, str], tuple[Reason, ...]] = {}
        # Whole decisions' verdicts, for the requesters and owners that ask the same thing
        # again (an agency searches its usual networks, a camera shares with the same
        # recipients): (requester id, networks as named, purpose, retention bucket) -> the
        # networks-scoped verdicts and how many allow; (owner id, share_to as named) -> a
        # read's verdicts within retention and how many allow. Each verdicts tuple is
        # `shared`, so what outputs derive from it is computed once. Bounded by SEARCH_LIMIT.
        self.searches: dict[
            tuple[str, tuple[str, ...], Purpose, int], tuple[tuple[NetworkVerdict, ...], int]
        ] = {}
        self.reads: dict[tuple[str, tuple[str, ...]], tuple[tuple[NetworkVerdict, ...], int]] = {}
        # Search-level reasons -> network id -> a verdict without reasons of its own with
        # them restated on it (the networks of a search they deny).
        self.tagged: dict[tuple[Reason, ...], dict[str, NetworkVerdict]] = {}
        # (pool key, retention bucket) -> the pool's verdicts with retention applied.
        self.spreads: dict[tuple[PoolKey, int], Spread] = {}
        self._limits: tuple[float, ...] | None = None
        self._declarations: Mapping[str, frozenset[str]] | None = None

    def network_table(
        self, purpose: Purpose | None, requester_state: str, requester_class: str
    ) -> dict[tuple[str, int], NetworkVerdict]:
        """The networks-scoped verdicts of one purpose and requester class (see `networks`);
        purpose None: `network_access_table`'s."""
        key = (purpose, requester_state, requester_class)
        table = self.networks.get(key)
        if table is None:
            table = self.networks[key] = {}
        return table

    def network_access_table(
        self, requester_state: str, requester_class: str
    ) -> dict[tuple[str, int], NetworkVerdict]:
        """(owner id, relation flags) -> the verdict of the access reasons alone, for every
        purpose of a requester class (in `networks` under the purpose None)."""
        return self.network_table(None, requester_state, requester_class)

    def network_table_add(
        self,
        table: dict[tuple[str, int], NetworkVerdict],
        key: tuple[str, int],
        verdict: NetworkVerdict,
    ) -> NetworkVerdict:
        """Store a verdict in a table of `network_table`; every table starts over once they
        hold TABLE_LIMIT verdicts together."""
        if self._network_entries >= TABLE_LIMIT:
            for each in self.networks.values():
                each.clear()
            self.networks.clear()
            self._network_entries = 0
        self._network_entries += 1
        table[key] = verdict
        return verdict

    @property
    def declarations(self) -> Mapping[str, frozenset[str]]:
        """Recipient -> owners holding its written declaration, built once per snapshot."""
        if self._declarations is None:
            building: dict[str, set[str]] = {}
            for owner_id, settings in self.snapshot.settings.items():
                for recipient_id in settings.declaration_on_file:
                    building.setdefault(recipient_id, set()).add(owner_id)
            self._declarations = {k: frozenset(v) for k, v in building.items()}
        return self._declarations

    @property
    def limits(self) -> tuple[float, ...]:
        """The distinct retention limits of the snapshot's owners, in seconds, ascending."""
        if self._limits is None:
            self._limits = tuple(
                sorted({lim[0] for lim in self.snapshot.retention_limits.values()})
            )
        return self._limits


def remember_decided(
    table: dict[_K, tuple[tuple[NetworkVerdict, ...], int]],
    key: _K,
    decided: tuple[tuple[NetworkVerdict, ...], int],
) -> tuple[tuple[NetworkVerdict, ...], int]:
    """Store a whole decision's (verdicts, allowed) in `searches` or `reads`, starting the
    table over at SEARCH_LIMIT entries, and share its verdicts (`derived_of`)."""
    share(decided[0])
    return remember(table, key, decided, SEARCH_LIMIT)


class VerdictCaches:
    """The cache of the snapshot decided last. Decisions run against one snapshot until the
    policy changes, so one cache is enough: asking for another snapshot drops it."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: VerdictCache | None = None

    def of(self, snapshot: PolicyState) -> VerdictCache:
        cache = self._last
        if cache is None or cache.snapshot is not snapshot:
            cache = self._last = VerdictCache(snapshot)
        return cache


@dataclass(frozen=True, slots=True)
class DecisionLists:
    """The lists every output of a per-network decision reads, computed once per decision:
    the allowed ids and the denied verdicts in decision order, and the codes (event-level
    first, then in order of first appearance), as the decision's own properties give them."""

    allowed: tuple[str, ...]
    denied: tuple[NetworkVerdict, ...]
    codes: tuple[str, ...]


def decision_lists(top: tuple[Reason, ...], verdicts: tuple[NetworkVerdict, ...]) -> DecisionLists:
    """One pass over `verdicts` (the decision's `allowed`, `denied` and `codes` are one each)."""
    allowed: list[str] = []
    denied: list[NetworkVerdict] = []
    seen: dict[str, None] = {}
    for reason in top:
        seen[reason.code] = None
    for verdict in verdicts:
        reasons = verdict.reasons
        if reasons:
            denied.append(verdict)
            for reason in reasons:
                seen[reason.code] = None
        else:
            allowed.append(verdict.agency_id)
    return DecisionLists(tuple(allowed), tuple(denied), tuple(seen))


@dataclass(frozen=True, slots=True)
class _ListIndex:
    """Where a spread's lists come from: the pool index of each allowed id and each denied
    verdict (ascending), and each code's first appearance as (pool index, place among that
    verdict's reasons), which orders the codes."""

    allowed_at: tuple[int, ...]
    denied_at: tuple[int, ...]
    first: dict[str, tuple[int, int]]


def _full_index(verdicts: tuple[NetworkVerdict, ...]) -> tuple[DecisionLists, _ListIndex]:
    allowed: list[str] = []
    denied: list[NetworkVerdict] = []
    allowed_at: list[int] = []
    denied_at: list[int] = []
    first: dict[str, tuple[int, int]] = {}
    for i, verdict in enumerate(verdicts):
        reasons = verdict.reasons
        if reasons:
            denied.append(verdict)
            denied_at.append(i)
            for r, reason in enumerate(reasons):
                if reason.code not in first:
                    first[reason.code] = (i, r)
        else:
            allowed.append(verdict.agency_id)
            allowed_at.append(i)
    lists = DecisionLists(tuple(allowed), tuple(denied), tuple(first))
    return lists, _ListIndex(tuple(allowed_at), tuple(denied_at), first)


def _extends(before: NetworkVerdict, after: NetworkVerdict) -> bool:
    """Whether `after`'s reasons are `before`'s with more after them (codes keep their order)."""
    kept = before.reasons
    return after.reasons[: len(kept)] == kept


def _gained_first(
    first: dict[str, tuple[int, int]],
    verdicts: tuple[NetworkVerdict, ...],
    changed: tuple[int, ...],
) -> dict[str, tuple[int, int]]:
    """Each code's first place when every changed verdict kept its base reasons first: a code
    only gains appearances, so its first place is the earlier of the base's and the new ones."""
    found = dict(first)
    for i in changed:
        for r, reason in enumerate(verdicts[i].reasons):
            place = found.get(reason.code)
            if place is None or (i, r) < place:
                found[reason.code] = (i, r)
    return found


def derived_lists(
    base: tuple[NetworkVerdict, ...],
    base_lists: DecisionLists,
    base_index: _ListIndex,
    verdicts: tuple[NetworkVerdict, ...],
    changed: tuple[int, ...],
) -> tuple[DecisionLists, _ListIndex]:
    """`decision_lists((), verdicts)` (and its index) for `verdicts` that differ from `base`
    only at the ascending indices `changed`, from `base`'s lists and index: the lists are
    spliced in C-level slices, so the cost follows `changed`, not the pool."""
    allowed_out: list[str] = []
    allowed_at: list[int] = []
    denied_out: list[NetworkVerdict] = []
    denied_at: list[int] = []
    b_allowed, b_allowed_at = base_lists.allowed, base_index.allowed_at
    b_denied, b_denied_at = base_lists.denied, base_index.denied_at
    a_from = d_from = 0  # how far the base's lists are copied
    keeps_order = True
    for i in changed:
        before, after = base[i], verdicts[i]
        if before.reasons:
            at = bisect_left(b_denied_at, i, d_from)
            denied_out += b_denied[d_from:at]
            denied_at += b_denied_at[d_from:at]
            d_from = at + 1  # the base's entry for i is dropped (replaced or gone)
        else:
            at = bisect_left(b_allowed_at, i, a_from)
            allowed_out += b_allowed[a_from:at]
            allowed_at += b_allowed_at[a_from:at]
            a_from = at + 1
        if after.reasons:
            d_at = bisect_left(b_denied_at, i, d_from)
            denied_out += b_denied[d_from:d_at]
            denied_at += b_denied_at[d_from:d_at]
            d_from = d_at
            denied_out.append(after)
            denied_at.append(i)
            keeps_order = keeps_order and _extends(before, after)
        else:
            a_at = bisect_left(b_allowed_at, i, a_from)
            allowed_out += b_allowed[a_from:a_at]
            allowed_at += b_allowed_at[a_from:a_at]
            a_from = a_at
            allowed_out.append(after.agency_id)
            allowed_at.append(i)
            keeps_order = keeps_order and not before.reasons
    allowed_out += b_allowed[a_from:]
    allowed_at += b_allowed_at[a_from:]
    denied_out += b_denied[d_from:]
    denied_at += b_denied_at[d_from:]
    denied = tuple(denied_out)
    if keeps_order:
        first = _gained_first(base_index.first, verdicts, changed)
        codes = tuple(sorted(first, key=first.__getitem__))
    else:
        first = _full_index(denied)[1].first  # places within `denied`: the order is the same
        codes = tuple(first)
        first = {code: (denied_at[i], r) for code, (i, r) in first.items()}
    lists = DecisionLists(tuple(allowed_out), denied, codes)
    return lists, _ListIndex(tuple(allowed_at), tuple(denied_at), first)


def _indexed(spread: Spread) -> tuple[DecisionLists, _ListIndex]:
    found = spread.derived.get("lists_index")
    if found is None:
        base = spread.base
        if base is spread:
            found = _full_index(spread.verdicts)
        else:
            base_lists, base_index = _indexed(base)
            found = derived_lists(
                base.verdicts, base_lists, base_index, spread.verdicts, spread.changed
            )
        spread.derived["lists_index"] = found
        spread.derived.setdefault("lists", found[0])
    return found  # type: ignore[return-value]  # stored here only


def spread_lists(spread: Spread) -> DecisionLists:
    """`decision_lists((), spread.verdicts)`, computed once per spread (memo name "lists"),
    and for a spread made from a base, from the base's lists in the size of `changed`."""
    found = spread.derived.get("lists")
    if found is None:
        found = _indexed(spread)[0]
    return found  # type: ignore[return-value]  # only DecisionLists are stored as "lists"


def spread_position(spread: Spread, index: int) -> int:
    """Where the verdict at pool `index` sits in `spread_lists(spread)`: its place in
    `denied` if it has reasons, else in `allowed`."""
    found = _indexed(spread)[1]
    at = found.denied_at if spread.verdicts[index].reasons else found.allowed_at
    return bisect_left(at, index)


def spread_code_counts(spread: Spread) -> dict[str, int]:
    """Code -> how many of the spread's verdicts carry it, in code order; computed once per
    spread, and for a spread made from a base, from the base's counts and `changed`.
    Read-only: callers copy it to change it."""
    found = spread.derived.get("code_counts")
    if found is not None:
        return found  # type: ignore[return-value]  # stored here only
    counts: dict[str, int] = {}
    base = spread.base
    if base is spread:
        for verdict in spread.verdicts:
            if verdict.reasons:
                for code in verdict.codes:
                    counts[code] = counts.get(code, 0) + 1
    else:
        counts = dict(spread_code_counts(base))
        for i in spread.changed:
            for code in base.verdicts[i].codes:
                counts[code] -= 1
            for code in spread.verdicts[i].codes:
                counts[code] = counts.get(code, 0) + 1
        counts = {code: n for code, n in counts.items() if n}
    counts = dict(sorted(counts.items()))
    spread.derived["code_counts"] = counts
    return counts


def spread_codes_without(spread: Spread, index: int) -> tuple[str, ...]:
    """`decision_lists((), verdicts).codes` of the spread's verdicts without the one at pool
    `index` (a statewide or national decision leaves out the requester's own network), from
    the spread's lists: a code first seen at `index` moves to its next appearance, found by a
    walk over the denied verdicts after it that stops once every such code is placed.
    Computed once per spread and index."""
    name = ("codes_without", index)
    found = spread.derived.get(name)
    if found is not None:
        return found  # type: ignore[return-value]  # stored here only
    lists, where = _indexed(spread)
    codes = lists.codes
    gone = spread.verdicts[index]
    first = where.first
    moving = {code for code in gone.codes if first[code][0] == index}
    if moving:
        places = {code: place for code, place in first.items() if code not in moving}
        denied, denied_at = lists.denied, where.denied_at
        for k in range(bisect_left(denied_at, index) + 1, len(denied)):
            for r, reason in enumerate(denied[k].reasons):
                code = reason.code
                if code in moving:
                    moving.discard(code)
                    places[code] = (denied_at[k], r)
            if not moving:
                break
        codes = tuple(sorted(places, key=places.__getitem__))  # codes never seen again: gone
    spread.derived[name] = codes
    return codes


# Verdict tuples the engine hands out for many decisions (`remember_decided`), by identity,
# each with what outputs derive from it. An entry holds its tuple, so the id is not reused
# while the entry lives. What is derived reads only the tuple's contents, so it holds under
# any snapshot.
_SHARED: Final[dict[int, tuple[tuple[NetworkVerdict, ...], dict[str, object]]]] = {}


def share(verdicts: tuple[NetworkVerdict, ...]) -> None:
    """Keep derived values of `verdicts` from now on (`derived_of`)."""
    remember(_SHARED, id(verdicts), (verdicts, {}), SEARCH_LIMIT)


def derived_of(verdicts: tuple[NetworkVerdict, ...]) -> dict[str, object] | None:
    """Where values derived from this very tuple are kept, by the name of what derives them
    (one name, one kind of value), if it is `share`d; else None."""
    entry = _SHARED.get(id(verdicts))
    if entry is None or entry[0] is not verdicts:
        return None
    return entry[1]
