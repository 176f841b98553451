"""Plain, frozen values the policy engine reads and returns. No I/O, no Kafka."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = (
    "AGENCY_KINDS",
    "FEDERAL_STATE",
    "Agency",
    "ChangeDecision",
    "Decision",
    "Event",
    "MalformedDecision",
    "NetworkVerdict",
    "OwnerSettings",
    "ReadDecision",
    "Reason",
    "SearchDecision",
    "UpsertDecision",
)

AGENCY_KINDS: Final[frozenset[str]] = frozenset(
    ("local", "county", "state", "federal", "tribal", "campus", "private")
)
FEDERAL_STATE: Final = "US"


@dataclass(frozen=True, slots=True)
class Agency:
    """One registry entry: who an agency is and where it answers to."""

    agency_id: str
    name: str
    state: str
    kind: str
    aliases: tuple[str, ...] = ()

    @property
    def is_federal(self) -> bool:
        # Either marker is enough: registries in the wild set one and forget the other.
        return self.kind == "federal" or self.state == FEDERAL_STATE

    @property
    def is_private(self) -> bool:
        return self.kind == "private"


@dataclass(frozen=True, slots=True)
class Event:
    """One input event, decoded and of a known kind (docs/contract.md section 2).

    Built by `streamguard.stream.intake`, the one front door for input, and decided by
    `streamguard.core.engine.decide_event`.
    """

    kind: str  # search_request | plate_read | policy_change | agency
    event_id: str | None  # the kind's id field, when it is a non-empty string
    body: Mapping[str, Any]  # the JSON object as received (over-deep nesting clipped)
    deleted: bool = False  # an agency tombstone: `body` is {"agency_id": <message key>}


@dataclass(frozen=True, slots=True)
class OwnerSettings:
    """An owner's sharing settings. The default shares nothing beyond the owner itself."""

    national_lookup: bool = False
    statewide_lookup: bool = False
    federal_sharing: bool = False
    share_with: frozenset[str] = frozenset()
    declaration_on_file: frozenset[str] = frozenset()
    retention_days: float | None = None
    require_case_number: bool = False


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason code with the law behind it and a sentence a person can act on."""

    code: str
    citation: str
    detail: str
    agency_id: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"code": self.code, "citation": self.citation, "detail": self.detail}
        if self.agency_id is not None:
            out["agency_id"] = self.agency_id
        return out


@dataclass(frozen=True, slots=True)
class NetworkVerdict:
    """The decision on one owner network (searches) or one recipient (reads)."""

    agency_id: str
    reasons: tuple[Reason, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.reasons

    @property
    def codes(self) -> tuple[str, ...]:
        reasons = self.reasons
        # Most denied networks carry one reason: outputs ask each for its codes.
        if len(reasons) == 1:
            return (reasons[0].code,)
        return tuple(dict.fromkeys([r.code for r in reasons]))


def _unique_codes(
    reasons: tuple[Reason, ...], verdicts: tuple[NetworkVerdict, ...]
) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for reason in reasons:
        seen[reason.code] = None
    for verdict in verdicts:
        for reason in verdict.reasons:
            seen[reason.code] = None
    return tuple(seen)


class _PerNetwork:
    """Views shared by decisions made one owner network (or recipient) at a time."""

    __slots__ = ()

    # A method, not a declared `verdicts` attribute: compiled by mypyc, a declaration here
    # becomes a class attribute the subclasses' dataclass fields take for a default value.
    def _verdicts(self) -> tuple[NetworkVerdict, ...]:
        raise NotImplementedError

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(v.agency_id for v in self._verdicts() if v.allowed)

    @property
    def denied(self) -> tuple[NetworkVerdict, ...]:
        return tuple(v for v in self._verdicts() if not v.allowed)

    def _codes(self, top: tuple[Reason, ...]) -> tuple[str, ...]:
        return _unique_codes(top, self._verdicts())

    def _reasons(self, top: tuple[Reason, ...]) -> tuple[Reason, ...]:
        """Every reason, event-level first, then each network's."""
        return top + tuple(r for v in self._verdicts() for r in v.reasons)


@dataclass(frozen=True, slots=True)
class SearchDecision(_PerNetwork):
    """A search_request decided per owner network."""

    event_id: str
    outcome: str  # approved | partial | denied
    search_reasons: tuple[Reason, ...]
    verdicts: tuple[NetworkVerdict, ...]
    policy_version: str
    categories: tuple[str, ...] = ()
    # A search that names no window start asks for everything: on each allowed owner with a
    # retention limit the window is clamped to the limit. (owner id, earliest read time).
    clamped: tuple[tuple[str, float], ...] = ()

    def _verdicts(self) -> tuple[NetworkVerdict, ...]:
        return self.verdicts

    @property
    def codes(self) -> tuple[str, ...]:
        return self._codes(self.search_reasons)

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return self._reasons(self.search_reasons)


@dataclass(frozen=True, slots=True)
class ReadDecision(_PerNetwork):
    """A plate_read decided per recipient."""

    event_id: str
    outcome: str  # shared | partial | denied
    read_reasons: tuple[Reason, ...]
    verdicts: tuple[NetworkVerdict, ...]
    policy_version: str

    def _verdicts(self) -> tuple[NetworkVerdict, ...]:
        return self.verdicts

    @property
    def codes(self) -> tuple[str, ...]:
        return self._codes(self.read_reasons)

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return self._reasons(self.read_reasons)


@dataclass(frozen=True, slots=True)
class ChangeDecision:
    """A policy_change either applied or rejected, never half of either."""

    event_id: str | None
    agency_id: str | None
    setting: str | None
    applied: bool
    reasons: tuple[Reason, ...] = field(default=())
    policy_version: str = ""

    @property
    def outcome(self) -> str:
        return "applied" if self.applied else "rejected"

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.code for r in self.reasons))


@dataclass(frozen=True, slots=True)
class MalformedDecision:
    """An input that could not be decided because it is not a valid event."""

    event_id: str | None
    kind: str  # search_request | plate_read | policy_change | agency | raw
    reason: Reason
    policy_version: str = ""

    @property
    def outcome(self) -> str:
        return "malformed"

    @property
    def codes(self) -> tuple[str, ...]:
        return (self.reason.code,)

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return (self.reason,)


@dataclass(frozen=True, slots=True)
class UpsertDecision:
    """A registry entry added, replaced or deleted, or an agency record rejected (`reasons`)."""

    event_id: str
    deleted: bool = False
    policy_version: str = ""
    reasons: tuple[Reason, ...] = field(default=())

    @property
    def applied(self) -> bool:
        return not self.reasons

    @property
    def outcome(self) -> str:
        return "rejected" if self.reasons else "upserted"

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.code for r in self.reasons))


Decision = SearchDecision | ReadDecision | ChangeDecision | MalformedDecision | UpsertDecision
