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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple, TypeVar

from streamguard.core.models import NetworkVerdict, Reason
from streamguard.core.policy import PolicyState

__all__ = (
    "TABLE_LIMIT",
    "AccessKey",
    "DecisionLists",
    "Fanned",
    "Pool",
    "PoolKey",
    "Purpose",
    "Spread",
    "VerdictCache",
    "VerdictCaches",
    "decision_lists",
    "remember",
)

# A long-running worker with a stable policy would otherwise grow each table with every new
# (requester class, owner, purpose) combination; a table that reaches this size starts over.
TABLE_LIMIT: Final = 200_000


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


_K = TypeVar("_K")
_V = TypeVar("_V")


class Spread:
    """A pool's verdicts with retention applied for one retention bucket (which of the owners'
    limits the asked-for window passes), shared by every search of the pool's requester class
    in that bucket. What outputs derive from the verdicts (lists, grouped reasons, counts) is
    kept in `derived`, by the name of what derives it, so it is computed once per spread."""

    __slots__ = ("allowed", "derived", "pool", "root", "verdicts")

    def __init__(
        self,
        pool: Pool,
        verdicts: tuple[NetworkVerdict, ...],
        allowed: int,
        root: Spread | None = None,
    ) -> None:
        self.pool = pool
        self.verdicts = verdicts  # in pool order: pool.position indexes them
        self.allowed = allowed
        # The pool's spread without retention or search-level reasons (itself, if it is that
        # one): what only the access and recipient law decide is derived once, from it.
        self.root: Spread = self if root is None else root
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


def remember(table: dict[_K, _V], key: _K, value: _V) -> _V:
    """Store `value` under `key`, starting the table over when it is full; returns `value`."""
    if len(table) >= TABLE_LIMIT:
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
        "access",
        "pools",
        "purposes",
        "shielded",
        "snapshot",
        "spreads",
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
        # (pool key, retention bucket) -> the pool's verdicts with retention applied.
        self.spreads: dict[tuple[PoolKey, int], Spread] = {}
        self._limits: tuple[float, ...] | None = None
        self._declarations: Mapping[str, frozenset[str]] | None = None

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
