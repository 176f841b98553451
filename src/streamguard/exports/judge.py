"""Judging one export row against the owner's law: codes, citations and details, nothing else.

Each row gets the codes the stream would have given the same search on the owner's network
(docs/contract.md section 3), minus `NOT_SHARED`: an export does not say what the owner's
sharing settings were, so only the law is judged, not access. Pure: an `Auditor` holds no
per-row state and does no I/O; reading rows is `layouts`, counting them is `summary`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from streamguard.core import codes
from streamguard.core.classifier import classify
from streamguard.core.engine import purpose_text
from streamguard.core.models import Agency, OwnerSettings, Reason
from streamguard.core.policy import (
    purpose_law_reasons,
    recipient_law_reasons,
    requester_relation,
)
from streamguard.core.statutes import StateRule, StatuteBook
from streamguard.exports.layouts import ExportRow, Layout, MalformedRow, Presence, is_redacted
from streamguard.exports.orgs import OrgResolver, Resolution

__all__ = (
    "ACCESS_LOG_FIELDS",
    "BROAD_SEARCH",
    "INCOMPLETE_ACCESS_LOG",
    "AuditConfig",
    "Auditor",
    "RowVerdict",
    "access_reasons",
    "missing_purpose_citation",
)

# Additive codes (docs/contract.md allows extra codes). Documented in docs/audit.md.
INCOMPLETE_ACCESS_LOG: Final = "INCOMPLETE_ACCESS_LOG"
BROAD_SEARCH: Final = "BROAD_SEARCH"

_CONTRACT: Final = "StreamGuard wire contract v1"
_DAY: Final = 86_400.0
# The statute's access-log elements (statutes.json `access_log.fields`) and how a person reads them.
ACCESS_LOG_FIELDS: Final = {
    "date_time": "date and time",
    "query": "query data (plate or filters)",
    "user": "user",
    "organization": "organization",
    "purpose": "purpose",
}
_NO_SETTINGS: Final = OwnerSettings()
# The packaged baseline citation ends with a "cf." pointer to the California code that inspired
# it; for an owner elsewhere that pointer reads as if California law applied to it.
_CF_NOTE: Final = re.compile(r"\s*\(cf\.[^()]*(?:\([^()]*\)[^()]*)*\)\s*$")


def missing_purpose_citation(book: StatuteBook, rule: StateRule) -> str:
    """What `MISSING_PURPOSE` cites for an owner under `rule`.

    The owner's own state's provision when it has one (a documented purpose, else an access log
    that must hold the purpose); otherwise the StreamGuard baseline rule by name, without the
    pointer to another state's code.
    """
    if rule.documented_purpose is not None:
        return rule.documented_purpose.cited
    log = rule.access_log
    if log is not None and "purpose" in log.fields:
        return log.provision.cited
    baseline = book.missing_purpose
    return _CF_NOTE.sub("", baseline.citation) + ("" if baseline.verified else " [unverified]")


def access_reasons(
    book: StatuteBook,
    rule: StateRule,
    owner: Agency,
    requester: Agency | None,
    categories: tuple[str, ...] | None,
    asked_from: float | None,
    at: float | None,
    settings: OwnerSettings = _NO_SETTINGS,
) -> list[Reason]:
    """The law-and-purpose codes of one access to `owner`'s data, without the access check.

    The same rules as `engine._network_reasons` plus retention, for one (owner, requester,
    purpose categories, asked-for window start, time of access). `requester` None is an unknown
    requester; `categories` None means the purpose was redacted and is not judged. Candidate for
    the core: the engine could build its per-network verdicts on it.
    """
    owner_id = owner.agency_id
    found: list[Reason] = []
    if requester is None:
        found.append(
            Reason(
                codes.UNKNOWN_REQUESTER,
                f"{_CONTRACT}, section 3",
                "the searching organization is not in the registry and its name gives no state; "
                "the owner's law cannot be applied to it",
                owner_id,
            )
        )
    else:
        found.extend(recipient_law_reasons(rule, owner, requester, settings))
    cats = categories or ()
    if "missing" in cats:
        found.append(
            Reason(
                codes.MISSING_PURPOSE,
                missing_purpose_citation(book, rule),
                "the search states no purpose (empty or placeholder reason)",
                owner_id,
            )
        )
    found.extend(purpose_law_reasons(rule, owner, cats, requester_relation(owner, requester)))
    retention = rule.retention
    if (
        retention is not None
        and asked_from is not None
        and at is not None
        and asked_from < at - retention.days * _DAY
    ):
        found.append(
            Reason(
                codes.RETENTION_EXCEEDED,
                retention.provision.cited,
                f"the asked-for window starts {(at - asked_from) / _DAY:.1f} days before the "
                f"search; {rule.name} allows keeping ALPR data {retention.text} (the window "
                "is what was asked for, not proof that older reads were returned)",
                owner_id,
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """Knobs of one audit run."""

    broad_networks: int | None = 1000
    broad_devices: int | None = None
    top: int = 10
    worst: int = 10
    # Reports show each worst row's user and stated reason only when asked: free-text reasons
    # can hold plates and names, and a report is otherwise safe to pass around.
    show_reasons: bool = False


@dataclass(frozen=True, slots=True)
class RowVerdict:
    """The audit of one export row."""

    row: int
    line: int
    id: str | None
    org: str | None
    resolution: Resolution | None
    day: str | None
    reasons: tuple[Reason, ...]
    problems: tuple[str, ...] = ()
    malformed: bool = False
    search_time: float | None = None
    networks: int | None = None
    devices: int | None = None
    # Filled only with AuditConfig.show_reasons, for the report; never in the JSON lines.
    user: str | None = None
    purpose: str | None = None

    @property
    def agency_id(self) -> str | None:
        return self.resolution.agency_id if self.resolution is not None else None

    @property
    def codes(self) -> tuple[str, ...]:
        found = dict.fromkeys(r.code for r in self.reasons)
        if self.problems:
            found[codes.SCHEMA_INVALID] = None
        return tuple(found)

    @property
    def findings(self) -> tuple[str, ...]:
        """Codes that say something about the search, not about the export's formatting."""
        return tuple(c for c in self.codes if c != codes.SCHEMA_INVALID)

    def as_json(self) -> dict[str, Any]:
        """The docs/contract.md section 5 line, plus `line`, requester state and resolution."""
        resolution = self.resolution
        requester = resolution.agency if resolution is not None else None
        out: dict[str, Any] = {
            "row": self.row,
            "id": self.id,
            "org": self.org,
            "agency_id": self.agency_id,
            "codes": list(self.codes),
            "line": self.line,
            "resolved_via": resolution.via if resolution is not None else None,
            "requester_state": requester.state if requester is not None else None,
            "reasons": [r.as_dict() for r in self.reasons],
            "search_time": _iso(self.search_time),
            "networks": self.networks,
            "devices": self.devices,
        }
        if self.problems:
            out["problems"] = list(self.problems)
        return out


@functools.lru_cache(maxsize=4096)
def _day_of(day_number: int) -> str:
    return datetime.fromtimestamp(day_number * _DAY, tz=UTC).strftime("%Y-%m-%d")


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(epoch: float | None) -> str | None:
    """The UTC calendar day of a timestamp; formatting is cached per day, not per row."""
    if epoch is None:
        return None
    return _day_of(int(epoch // _DAY))


def _stated_purpose(row: ExportRow) -> str | None:
    """The purpose as the row states it (`<offense> - <reason>` when both), for the report."""
    parts = [c for c in (row.offense_type, row.reason) if c]
    return " - ".join(parts) if parts else None


class Auditor:
    """Judges rows of one export layout for one owner. Holds no per-row state."""

    def __init__(
        self,
        book: StatuteBook,
        owner: Agency,
        resolver: OrgResolver,
        layout: Layout,
        config: AuditConfig,
    ) -> None:
        self.book = book
        self.owner = owner
        self.rule = book.rule_for(owner.state)
        self.resolver = resolver
        self.layout = layout
        self.config = config
        self._own = Resolution(owner.name, "owner", owner)
        log = self.rule.access_log
        self._log_fields = tuple(log.fields) if log is not None else ()

    @property
    def unjudged_log_fields(self) -> tuple[str, ...]:
        """Access-log elements the owner's law needs that this layout has no column for."""
        columns = {
            "date_time": ("search_time",),
            "query": ("plate", "filters", "text_prompt"),
            "user": ("user",),
            "organization": () if self.layout.org_implied else ("org",),
            "purpose": ("reason", "offense_type"),
        }
        return tuple(
            f
            for f in self._log_fields
            if columns.get(f) and not any(self.layout.has(c) for c in columns[f])
        )

    @property
    def retention_unjudged(self) -> bool:
        """The owner's law limits retention but the layout has no Time Frame to compare."""
        return self.rule.retention is not None and not (
            self.layout.has("time_frame") or self.layout.has("frame_start")
        )

    def resolve(self, row: ExportRow) -> Resolution | None:
        """The requester of a row; None when its organization cell is redacted."""
        if self.layout.org_implied:
            return self._own
        if row.organization is Presence.REDACTED:
            return None
        found = self.resolver.resolve(row.org or "")
        if found.agency is not None and found.agency.agency_id == self.owner.agency_id:
            return self._own  # the owner's own users, under whatever spelling of its name
        return found

    def categories(self, row: ExportRow) -> tuple[str, ...] | None:
        """Purpose categories from Reason and Offense Type, None when nothing can be judged."""
        cells = [c for c in (row.reason, row.offense_type) if c is not None]
        if not cells:
            return None  # the layout has no purpose column at all
        redacted = any(is_redacted(c) for c in cells)
        reason, offense = (
            c if c is not None and not is_redacted(c) else ""
            for c in (row.reason, row.offense_type)
        )
        if redacted and not (reason or offense):
            return None
        found = classify(purpose_text({"reason": reason, "offense_type": offense}))
        if redacted:
            # Part of the purpose was withheld: what is left may look vague or empty only
            # because of the redaction, so only the prohibited categories still count.
            found = tuple(c for c in found if c not in ("missing", "vague"))
        return found

    def judge(self, row: ExportRow | MalformedRow) -> RowVerdict:
        if isinstance(row, MalformedRow):
            return RowVerdict(row.row, row.line, row.id, None, None, None, (), (row.detail,), True)
        resolution = self.resolve(row)
        # A withheld organization is not judged: with the owner itself as the requester no
        # recipient rule applies, while purpose and retention still are.
        requester = resolution.agency if resolution is not None else self.owner
        reasons = access_reasons(
            self.book,
            self.rule,
            self.owner,
            requester,
            self.categories(row),
            row.frame_start,
            row.search_time,
        )
        reasons.extend(self._log_reasons(row))
        reasons.extend(self._breadth_reasons(row))
        return RowVerdict(
            row=row.row,
            line=row.line,
            id=row.id,
            org=row.org,
            resolution=resolution,
            day=_day(row.search_time),
            reasons=tuple(reasons),
            problems=row.problems,
            search_time=row.search_time,
            networks=row.networks,
            devices=row.devices,
            user=row.user_name if self.config.show_reasons else None,
            purpose=_stated_purpose(row) if self.config.show_reasons else None,
        )

    def _log_reasons(self, row: ExportRow) -> list[Reason]:
        log = self.rule.access_log
        if log is None:
            return []
        missing = [
            f for f in self._log_fields if getattr(row, f, Presence.ABSENT) is Presence.EMPTY
        ]
        if not missing:
            return []
        return [
            Reason(
                INCOMPLETE_ACCESS_LOG,
                log.provision.cited,
                "the access log lacks " + ", ".join(ACCESS_LOG_FIELDS.get(f, f) for f in missing),
                self.owner.agency_id,
            )
        ]

    def _breadth_reasons(self, row: ExportRow) -> list[Reason]:
        found: list[Reason] = []
        for count, limit, what, option in (
            (row.networks, self.config.broad_networks, "networks", "--broad-networks"),
            (row.devices, self.config.broad_devices, "cameras", "--broad-devices"),
        ):
            if count is not None and limit is not None and count >= limit:
                found.append(
                    Reason(
                        BROAD_SEARCH,
                        f"StreamGuard audit heuristic ({option} {limit})",
                        f"one search covered {count:,} {what} (threshold {limit:,}): "
                        "a national-scale "
                        "query, check that the purpose justified it",
                        self.owner.agency_id,
                    )
                )
                break
        return found
