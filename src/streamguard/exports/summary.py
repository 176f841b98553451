"""The audit summary: per-code, per-organization and per-day counts and the worst rows.

Rows are added one verdict at a time and every table has a bound, so a multi-million-row export
is summarised in constant memory. What the summary holds is what the report shows: codes,
counts, organization names, row numbers and search ids, never a plate, a user or a reason.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Final

from streamguard.core import codes
from streamguard.core.models import Agency
from streamguard.exports.judge import (
    ACCESS_LOG_FIELDS,
    BROAD_SEARCH,
    INCOMPLETE_ACCESS_LOG,
    AuditConfig,
    Auditor,
    RowVerdict,
)
from streamguard.exports.layouts import Layout
from streamguard.exports.orgs import Resolution

__all__ = ("OTHER", "SEVERITY", "AuditSummary", "OrgStats", "WorstRow")

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

# Table bounds: past them new keys pool under OTHER (organizations, days, unresolved names) or
# are only counted (malformed rows), so memory does not grow with the export.
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
    """One of the worst rows, with what a reader needs to judge it without the JSON lines.

    `user` and `purpose` are set only when the audit was asked to show them
    (AuditConfig.show_reasons).
    """

    row: int
    line: int
    id: str | None
    org: str | None
    codes: tuple[str, ...]
    search_time: float | None = None
    networks: int | None = None
    devices: int | None = None
    details: tuple[str, ...] = ()
    user: str | None = None
    purpose: str | None = None

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
    portal: str | None = None  # the one portal audited of a multi-portal archive
    other_portal_rows: int = 0
    portals_in_file: int = 0

    @property
    def export_name(self) -> str:
        """The export's file name: what a report is titled with (a full path says where the
        auditor keeps files, which is nobody else's business)."""
        return PurePath(self.export).name or self.export

    @classmethod
    def of(cls, export: str, auditor: Auditor) -> AuditSummary:
        """An empty summary of `export` as `auditor` judges it (its owner, law and layout)."""
        return cls(
            export=export,
            layout=auditor.layout,
            owner=auditor.owner,
            rule_name=auditor.rule.name,
            unjudged_log_fields=auditor.unjudged_log_fields,
            config=auditor.config,
            retention_unjudged=auditor.retention_unjudged,
        )

    @property
    def unjudged_log_labels(self) -> tuple[str, ...]:
        """`unjudged_log_fields` as a person reads them (`query data (plate or filters)`)."""
        return tuple(ACCESS_LOG_FIELDS.get(f, f) for f in self.unjudged_log_fields)

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
        entry = WorstRow(
            verdict.row,
            verdict.line,
            verdict.id,
            org,
            findings,
            search_time=verdict.search_time,
            networks=verdict.networks,
            devices=verdict.devices,
            details=tuple(f"{r.code}: {r.detail}" for r in verdict.reasons),
            user=verdict.user,
            purpose=verdict.purpose,
        )
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
