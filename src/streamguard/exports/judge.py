"""`streamguard audit`: judge every row of a vendor search-log export against the owner's law.

Each row gets the codes the stream would have given the same search on the owner's network
(CONTRACT 3), minus `NOT_SHARED`: an export does not say what the owner's sharing settings were,
so only the law is judged, not access. Rows stream through one at a time and the summary keeps
bounded tables, so a multi-million-row export audits in constant memory.
"""

from __future__ import annotations

import argparse
import functools
import heapq
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from streamguard import serde
from streamguard.core import codes
from streamguard.core.classifier import classify
from streamguard.core.engine import purpose_text
from streamguard.core.models import Agency, OwnerSettings, Reason
from streamguard.core.policy import purpose_law_reasons, recipient_law_reasons
from streamguard.core.registry import load_agencies_csv
from streamguard.core.statutes import StateRule, StatuteBook, load_statutes
from streamguard.exceptions import InputFileError, StreamguardError
from streamguard.exports.layouts import (
    ExportFile,
    ExportRow,
    Layout,
    MalformedRow,
    Presence,
    is_redacted,
)
from streamguard.exports.orgs import OrgResolver, Resolution

__all__ = (
    "ACCESS_LOG_FIELDS",
    "BROAD_SEARCH",
    "INCOMPLETE_ACCESS_LOG",
    "AuditConfig",
    "AuditSummary",
    "Auditor",
    "RowVerdict",
    "access_reasons",
    "main_audit",
    "run_audit",
)

# Additive codes (CONTRACT: extra codes are fine). Documented in docs/audit.md.
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
# How bad a code is, for ranking the worst rows: 4 = data went where the law forbids or for a
# forbidden purpose, 3 = cannot be shown lawful, 2 = the record fails the law's bar,
# 1 = a heuristic (breadth), not a rule.
SEVERITY: Final = {
    codes.PROHIBITED_PURPOSE_IMMIGRATION: 4,
    codes.PROHIBITED_PURPOSE_HEALTH_CARE: 4,
    codes.PROTECTED_ACTIVITY: 4,
    codes.PROFILING: 4,
    codes.FEDERAL_RECIPIENT: 4,
    codes.OUT_OF_STATE_RECIPIENT: 4,
    codes.PRIVATE_RECIPIENT: 4,
    codes.INELIGIBLE_RECIPIENT: 3,
    codes.NO_DECLARATION_ON_FILE: 3,
    codes.UNKNOWN_REQUESTER: 3,
    codes.RETENTION_EXCEEDED: 3,
    codes.MISSING_PURPOSE: 2,
    codes.VAGUE_PURPOSE: 2,
    INCOMPLETE_ACCESS_LOG: 2,
    BROAD_SEARCH: 1,
    codes.SCHEMA_INVALID: 0,
}
_NO_SETTINGS: Final = OwnerSettings()


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
                book.missing_purpose.cited,
                "the search states no purpose (empty or placeholder reason)",
                owner_id,
            )
        )
    found.extend(purpose_law_reasons(rule, owner, cats))
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
        """The CONTRACT 5 line, plus `line`, the requester's state and how it was resolved."""
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
        }
        if self.problems:
            out["problems"] = list(self.problems)
        return out


@functools.lru_cache(maxsize=4096)
def _day_of(day_number: int) -> str:
    return datetime.fromtimestamp(day_number * _DAY, tz=UTC).strftime("%Y-%m-%d")


def _day(epoch: float | None) -> str | None:
    """The UTC calendar day of a timestamp; formatting is cached per day, not per row."""
    if epoch is None:
        return None
    return _day_of(int(epoch // _DAY))


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
        return self.resolver.resolve(row.org or "")

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


# --- summary -------------------------------------------------------------------------------------

_ORG_LIMIT: Final = 10_000
_DAY_LIMIT: Final = 3_700
_UNRESOLVED_LIMIT: Final = 10_000
_MALFORMED_KEPT: Final = 50
OTHER: Final = "(other)"


@dataclass(slots=True)
class OrgStats:
    """Counts of one searching organization."""

    rows: int = 0
    findings: int = 0
    agency_id: str | None = None
    via: str = ""
    codes: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class WorstRow:
    row: int
    line: int
    id: str | None
    org: str | None
    codes: tuple[str, ...]

    @property
    def score(self) -> tuple[int, int, int]:
        severities = [SEVERITY.get(c, 1) for c in self.codes]
        return (max(severities, default=0), len(self.codes), sum(severities))


@dataclass(slots=True)
class AuditSummary:
    """Everything the report shows, in tables of bounded size.

    Organizations, days and unresolved names beyond their limits are pooled under `(other)`,
    so a hostile or huge export cannot make the summary grow without bound.
    """

    export: str
    layout: Layout
    owner: Agency
    rule_name: str
    unjudged_log_fields: tuple[str, ...]
    config: AuditConfig
    retention_unjudged: bool = False
    rows: int = 0
    rows_with_findings: int = 0
    malformed_rows: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)
    redacted_org_rows: int = 0
    code_counts: Counter[str] = field(default_factory=Counter)
    citations: dict[str, str] = field(default_factory=dict)
    orgs: dict[str, OrgStats] = field(default_factory=dict)
    days: dict[str, list[int]] = field(default_factory=dict)
    unresolved: Counter[str] = field(default_factory=Counter)
    resolved_via: Counter[str] = field(default_factory=Counter)
    worst: list[tuple[tuple[int, int, int], int, WorstRow]] = field(default_factory=list)

    def add(self, verdict: RowVerdict) -> None:
        self.rows += 1
        if verdict.problems:
            self.malformed_rows += 1
            if len(self.malformed) < _MALFORMED_KEPT:
                self.malformed.append((verdict.line, "; ".join(verdict.problems)))
        if verdict.malformed:
            return
        findings = verdict.findings
        has_findings = bool(findings)
        if has_findings:
            self.rows_with_findings += 1
        self.code_counts.update(verdict.codes)
        for reason in verdict.reasons:
            self.citations.setdefault(reason.code, reason.citation)
        resolution = verdict.resolution
        if resolution is None:
            self.redacted_org_rows += 1
            org_key = "(redacted)"
        else:
            self.resolved_via[resolution.via] += 1
            org_key = verdict.org if verdict.org is not None else resolution.name
            if not org_key.strip():
                org_key = "(empty)"
            if not resolution.resolved:
                key = (
                    org_key
                    if org_key in self.unresolved or len(self.unresolved) < _UNRESOLVED_LIMIT
                    else OTHER
                )
                self.unresolved[key] += 1
        self._count_org(org_key, resolution, findings)
        day = verdict.day or "(no date)"
        if day not in self.days and len(self.days) >= _DAY_LIMIT:
            day = OTHER
        counts = self.days.setdefault(day, [0, 0])
        counts[0] += 1
        counts[1] += int(has_findings)
        if has_findings:
            self._rank(verdict, findings)

    def _count_org(
        self, key: str, resolution: Resolution | None, findings: tuple[str, ...]
    ) -> None:
        stats = self.orgs.get(key)
        if stats is None:
            if len(self.orgs) >= _ORG_LIMIT:
                key = OTHER
                stats = self.orgs.setdefault(OTHER, OrgStats(via="(pooled)"))
            else:
                stats = OrgStats(
                    agency_id=resolution.agency_id if resolution is not None else None,
                    via=resolution.via if resolution is not None else "redacted",
                )
                self.orgs[key] = stats
        stats.rows += 1
        if findings:
            stats.findings += 1
            stats.codes.update(findings)

    def _rank(self, verdict: RowVerdict, findings: tuple[str, ...]) -> None:
        org = verdict.org
        if org is None and verdict.resolution is not None:
            org = verdict.resolution.name  # no organization column: the owner's own users
        entry = WorstRow(verdict.row, verdict.line, verdict.id, org, findings)
        # Earlier rows win ties: negating the row number makes them compare greater.
        item = (entry.score, -verdict.row, entry)
        if len(self.worst) < self.config.worst:
            heapq.heappush(self.worst, item)
        elif item[:2] > self.worst[0][:2]:
            heapq.heapreplace(self.worst, item)

    def worst_rows(self) -> list[WorstRow]:
        return [entry for _, _, entry in sorted(self.worst, key=lambda i: i[:2], reverse=True)]

    def top_orgs(self, n: int) -> list[tuple[str, OrgStats]]:
        return sorted(self.orgs.items(), key=lambda kv: (-kv[1].findings, -kv[1].rows, kv[0]))[:n]


def run_audit(
    export: ExportFile,
    auditor: Auditor,
    *,
    jsonl: IO[bytes] | None = None,
    warn: IO[str] | None = None,
    warn_limit: int = 100,
) -> AuditSummary:
    """Judge every row, write JSONL lines as they come, and return the summary."""
    summary = AuditSummary(
        export=str(export.path),
        layout=export.layout,
        owner=auditor.owner,
        rule_name=auditor.rule.name,
        unjudged_log_fields=auditor.unjudged_log_fields,
        config=auditor.config,
        retention_unjudged=auditor.retention_unjudged,
    )
    warned = 0
    for verdict in judge_rows(export, auditor):
        summary.add(verdict)
        if jsonl is not None:
            jsonl.write(serde.dumps(verdict.as_json()) + b"\n")
        if verdict.problems and warn is not None:
            warned += 1
            if warned <= warn_limit:
                print(
                    f"streamguard audit: {export.path} line {verdict.line} (row {verdict.row}): "
                    f"{'; '.join(verdict.problems)}",
                    file=warn,
                )
    if warn is not None and warned > warn_limit:
        print(f"streamguard audit: ... and {warned - warn_limit} more malformed rows", file=warn)
    return summary


def judge_rows(rows: Iterable[ExportRow | MalformedRow], auditor: Auditor) -> Iterator[RowVerdict]:
    for row in rows:
        yield auditor.judge(row)


# --- command line --------------------------------------------------------------------------------


def _positive(text: str) -> int:
    if not text.strip().isdigit():
        msg = f"not a whole number >= 0: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamguard audit",
        description="Audit a Flock search-log export (network/organization audit or "
        "transparency-portal search audit) against the owner's state ALPR law.",
    )
    parser.add_argument("export", type=Path, metavar="EXPORT.csv")
    parser.add_argument("--agencies", type=Path, required=True, metavar="AGENCIES.csv")
    parser.add_argument(
        "--owner",
        required=True,
        metavar="AGENCY_ID",
        help="agency_id of the agency whose data was searched (its law applies)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="FILE.jsonl", help="write one JSON line per input row"
    )
    parser.add_argument("--html", type=Path, metavar="FILE", help="write an offline HTML report")
    parser.add_argument(
        "--broad-networks",
        type=_positive,
        default=1000,
        metavar="N",
        help="flag searches covering N or more networks (0 turns it off; default 1000)",
    )
    parser.add_argument(
        "--broad-devices",
        type=_positive,
        default=0,
        metavar="N",
        help="flag searches covering N or more cameras (default 0: off)",
    )
    parser.add_argument(
        "--top",
        type=_positive,
        default=10,
        metavar="N",
        help="organizations and worst rows shown (default 10)",
    )
    parser.add_argument(
        "--no-unverified",
        dest="enforce_unverified",
        action="store_false",
        help="do not apply statute provisions whose text is marked unverified",
    )
    return parser


def _open_output(path: Path, what: str) -> IO[bytes]:
    try:
        return path.open("wb")
    except OSError as exc:
        msg = f"cannot write {what} {path}: {exc.strerror or exc}"
        raise InputFileError(msg) from exc


def _audit(args: argparse.Namespace) -> int:
    # Imported here: audit_report reads this module's constants at import time.
    from streamguard.exports.report import render_html, render_text

    agencies = load_agencies_csv(args.agencies)
    owner = next((a for a in agencies if a.agency_id == args.owner), None)
    if owner is None:
        msg = f"owner {args.owner!r} is not in agencies file {args.agencies}"
        raise InputFileError(msg)
    config = AuditConfig(
        broad_networks=args.broad_networks or None,
        broad_devices=args.broad_devices or None,
        top=max(args.top, 1),
        worst=max(args.top, 1),
    )
    book = load_statutes(enforce_unverified=args.enforce_unverified)
    with ExportFile(args.export) as export:
        auditor = Auditor(book, owner, OrgResolver(agencies), export.layout, config)
        jsonl = _open_output(args.out, "JSONL output") if args.out is not None else None
        try:
            summary = run_audit(export, auditor, jsonl=jsonl, warn=sys.stderr)
        finally:
            if jsonl is not None:
                jsonl.close()
    if args.html is not None:
        html = _open_output(args.html, "HTML report")
        with html:
            html.write(render_html(summary).encode("utf-8"))
    sys.stdout.write(render_text(summary))
    sys.stdout.flush()
    return 0


def main_audit(argv: list[str]) -> int:
    """`streamguard audit ...`: exit 0 after a completed audit, 2 with one line on bad input."""
    args = build_parser().parse_args(argv)
    try:
        return _audit(args)
    except StreamguardError as exc:
        print(f"streamguard: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0  # `streamguard audit ... | head` is normal use
    except OSError as exc:
        print(f"streamguard: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main_audit(sys.argv[1:]))
