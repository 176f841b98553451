"""Who receives the owner's networks, per a sharing list, and what the owner's law says of each.

Every organization whose `Networks I'm Sharing` cell is not empty is a recipient of the owner's
data. Its name is resolved like a searcher's in a search log (`orgs`), and the recipient is
judged with the core's recipient law (`core.policy.recipient_law_reasons`), the same function
the stream applies to every search and read: out of state, federal, private, ineligible kind,
declaration needed. Pure: reading the file is `sharelist`, comparing lists is `drift`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from streamguard.core import codes
from streamguard.core.models import Agency, OwnerSettings, Reason
from streamguard.core.policy import recipient_law_reasons
from streamguard.core.statutes import StatuteBook
from streamguard.exports.layouts import MalformedRow, is_redacted
from streamguard.exports.orgs import OrgResolver, Resolution, normalize_org_name
from streamguard.exports.sharelist import SharingRow

__all__ = (
    "Listed",
    "Recipient",
    "SharingJudge",
    "SharingList",
    "collect",
    "recipient_key",
)

_CONTRACT: Final = "StreamGuard wire contract v1"
_MALFORMED_KEPT: Final = 50
_EMPTY: Final = "(empty)"


def recipient_key(name: str) -> str:
    """The key one organization has in every export of the list, however it is spaced or cased.

    Keeps the `[Federal]` marker's word, so a federal entry never merges with a local namesake.
    """
    return normalize_org_name(name) or name.strip() or _EMPTY


@dataclass(frozen=True, slots=True)
class Listed:
    """One recipient as the list shows it, rows naming it twice merged (networks united)."""

    key: str
    org: str  # the first spelling
    row: int  # the first row naming it
    line: int
    rows: int
    networks: tuple[str, ...]  # the owner's networks it receives


@dataclass(slots=True)
class SharingList:
    """What one sharing list holds: recipients in the order first listed, and counts.

    Memory grows with the organizations listed, a few thousand at most in real lists: a
    recipient is compared as a whole with the baseline and the signed policy.
    """

    rows: int = 0
    inbound_only: int = 0  # organizations that share with the owner but receive nothing
    malformed_rows: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)
    listed: dict[str, Listed] = field(default_factory=dict)

    @property
    def recipients(self) -> list[Listed]:
        return list(self.listed.values())


def collect(
    rows: Iterable[SharingRow | MalformedRow],
    on_malformed: Callable[[MalformedRow], None] | None = None,
) -> SharingList:
    """Merge `rows` into a SharingList; `on_malformed` hears of each unreadable row at once."""
    found = SharingList()
    for row in rows:
        found.rows += 1
        if isinstance(row, MalformedRow):
            found.malformed_rows += 1
            if len(found.malformed) < _MALFORMED_KEPT:
                found.malformed.append((row.line, row.detail))
            if on_malformed is not None:
                on_malformed(row)
            continue
        if not row.outbound:
            found.inbound_only += 1
            continue
        key = recipient_key(row.org)
        before = found.listed.get(key)
        if before is None:
            found.listed[key] = Listed(key, row.org, row.row, row.line, 1, row.outbound)
        else:
            merged = tuple(dict.fromkeys((*before.networks, *row.outbound)))
            found.listed[key] = Listed(
                key, before.org, before.row, before.line, before.rows + 1, merged
            )
    return found


@dataclass(frozen=True, slots=True)
class Recipient:
    """A listed recipient with who it is and the owner's law on sharing with it."""

    listed: Listed
    resolution: Resolution | None  # None: the name was withheld, so not judged
    reasons: tuple[Reason, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.code for r in self.reasons))

    @property
    def agency(self) -> Agency | None:
        return self.resolution.agency if self.resolution is not None else None

    @property
    def agency_id(self) -> str | None:
        return self.resolution.agency_id if self.resolution is not None else None

    @property
    def via(self) -> str:
        return self.resolution.via if self.resolution is not None else "redacted"


class SharingJudge:
    """Judges recipients of one owner's networks under the owner's law. Holds no per-row state.

    `settings` are the owner's signed settings when known (a written declaration on file then
    answers `NO_DECLARATION_ON_FILE`); by default none are assumed, as for a search log.
    """

    def __init__(
        self,
        book: StatuteBook,
        owner: Agency,
        resolver: OrgResolver,
        settings: OwnerSettings | None = None,
    ) -> None:
        self.book = book
        self.owner = owner
        self.rule = book.rule_for(owner.state)
        self.resolver = resolver
        self.settings = settings or OwnerSettings()

    def resolve(self, org: str) -> Resolution | None:
        if org and is_redacted(org):
            return None
        found = self.resolver.resolve(org)
        if found.agency is not None and found.agency.agency_id == self.owner.agency_id:
            return Resolution(org, "owner", self.owner)
        return found

    def judge(self, listed: Listed) -> Recipient:
        resolution = self.resolve(listed.org)
        if resolution is None:
            return Recipient(listed, None, ())
        if resolution.agency is None:
            reason = Reason(
                codes.UNKNOWN_REQUESTER,
                f"{_CONTRACT}, section 3",
                "the receiving organization is not in the registry and its name gives no state; "
                "the owner's law cannot be applied to it",
                self.owner.agency_id,
            )
            return Recipient(listed, resolution, (reason,))
        found = recipient_law_reasons(self.rule, self.owner, resolution.agency, self.settings)
        return Recipient(listed, resolution, tuple(found))
