"""The sharing audit as one value: recipients with their codes, drift, counts and JSON lines.

Nothing here holds a plate, a user or a reason: a sharing list has none. Organization and
network names are what the report is about.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Final

from streamguard.core.models import Agency, Reason
from streamguard.core.statutes import StateRule
from streamguard.exports.drift import (
    UNSIGNED_SHARING,
    BaselineDrift,
    PolicyDrift,
    unsigned_reason,
)
from streamguard.exports.sharelist import SharingLayout
from streamguard.exports.sharing import Recipient, SharingList
from streamguard.exports.summary import SEVERITY

__all__ = ("SHARING_SEVERITY", "SharingAudit")

# A sharing that no signed change explains is as bad as a forbidden recipient: data flows where
# nobody with the authority to decide it decided so.
SHARING_SEVERITY: Final = {**SEVERITY, UNSIGNED_SHARING: 4}


@dataclass(slots=True)
class SharingAudit:
    """Everything the sharing reports show; built once by `of`, read by the renderers."""

    export: str
    layout: SharingLayout
    owner: Agency
    rule: StateRule
    listing: SharingList
    recipients: tuple[Recipient, ...]
    baseline: BaselineDrift | None = None
    policy: PolicyDrift | None = None
    top: int = 25
    reasons: dict[str, tuple[Reason, ...]] = field(default_factory=dict)
    code_counts: Counter[str] = field(default_factory=Counter)
    citations: dict[str, str] = field(default_factory=dict)
    resolved_via: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    networks: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(
        cls,
        export: str,
        layout: SharingLayout,
        owner: Agency,
        rule: StateRule,
        listing: SharingList,
        recipients: Sequence[Recipient],
        *,
        baseline: BaselineDrift | None = None,
        policy: PolicyDrift | None = None,
        top: int = 25,
    ) -> SharingAudit:
        audit = cls(export, layout, owner, rule, listing, tuple(recipients), baseline, policy, top)
        unsigned = (unsigned_reason(owner),)
        for recipient in audit.recipients:
            key = recipient.listed.key
            found = recipient.reasons
            if policy is not None and policy.unsigned(key):
                found = found + unsigned
            audit.reasons[key] = found
            audit.code_counts.update(set(r.code for r in found))
            for reason in found:
                audit.citations.setdefault(reason.code, reason.citation)
            audit.resolved_via[recipient.via] += 1
            agency = recipient.agency
            audit.states[agency.state if agency is not None else "?"] += 1
            audit.networks.update(recipient.listed.networks)
        return audit

    @property
    def export_name(self) -> str:
        return PurePath(self.export).name or self.export

    def codes_of(self, recipient: Recipient) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.code for r in self.reasons[recipient.listed.key]))

    def severity(self, recipient: Recipient) -> int:
        return max((SHARING_SEVERITY.get(c, 1) for c in self.codes_of(recipient)), default=0)

    @property
    def with_findings(self) -> list[Recipient]:
        """Recipients with any code, most severe first, then most codes, then list order."""
        found = [r for r in self.recipients if self.reasons[r.listed.key]]
        return sorted(
            found, key=lambda r: (-self.severity(r), -len(self.codes_of(r)), r.listed.row)
        )

    @property
    def unresolved(self) -> list[Recipient]:
        return [
            r for r in self.recipients if r.resolution is not None and not r.resolution.resolved
        ]

    @property
    def redacted(self) -> int:
        return self.resolved_via["redacted"]

    @property
    def findings(self) -> int:
        """Recipients with a finding: what --fail-on-findings pages on."""
        return sum(1 for r in self.recipients if self.reasons[r.listed.key])

    @property
    def drift(self) -> int:
        """Changes since the baseline plus mismatches with the signed policy either way."""
        total = self.baseline.changes if self.baseline is not None else 0
        if self.policy is not None:
            total += self.policy.unsigned_count + len(self.policy.absent)
        return total

    def not_judged(self) -> list[str]:
        notes = [
            "a sharing list shows who can search the owner's networks now, not who did: "
            "searches are judged by `streamguard audit` on a search log",
        ]
        declares = any(
            r is not None and r.rule == "declaration"
            for r in (self.rule.out_of_state, self.rule.federal)
        )
        if declares and self.policy is None:
            notes.append(
                "NO_DECLARATION_ON_FILE: written declarations are not in a sharing list; with "
                "--policy-log the signed declaration_on_file setting answers it"
            )
        if self.redacted:
            notes.append(f"{self.redacted:,} recipient names withheld: not judged")
        if self.baseline is None:
            notes.append("changes since the last list: not compared (no --baseline)")
        if self.policy is None:
            notes.append(
                "sharing against StreamGuard's signed policy: not compared (no --policy-log)"
            )
        return notes

    def json_lines(self) -> Iterator[dict[str, Any]]:
        """One object per listed recipient in list order, then removed, then signed-absent."""
        for recipient in self.recipients:
            listed = recipient.listed
            agency = recipient.agency
            yield {
                "org": listed.org,
                "listed": True,
                "row": listed.row,
                "line": listed.line,
                "rows": listed.rows,
                "agency_id": recipient.agency_id,
                "resolved_via": recipient.resolution.via if recipient.resolution else None,
                "state": agency.state if agency is not None else None,
                "kind": agency.kind if agency is not None else None,
                "networks": list(listed.networks),
                "codes": list(self.codes_of(recipient)),
                "reasons": [r.as_dict() for r in self.reasons[listed.key]],
                "since_baseline": self.baseline.status(listed.key) if self.baseline else None,
                "signed": self.policy.reach.get(listed.key) if self.policy else None,
            }
        if self.baseline is not None:
            for gone in self.baseline.removed:
                yield _unlisted(gone.org, list(gone.networks), since_baseline="removed")
        if self.policy is not None:
            for agency in self.policy.absent:
                yield _unlisted(agency.name, [], agency=agency, signed="share_with")


def _unlisted(
    org: str,
    networks: list[str],
    *,
    agency: Agency | None = None,
    since_baseline: str | None = None,
    signed: str | None = None,
) -> dict[str, Any]:
    return {
        "org": org,
        "listed": False,
        "row": None,
        "line": None,
        "rows": 0,
        "agency_id": agency.agency_id if agency is not None else None,
        "resolved_via": "registry" if agency is not None else None,
        "state": agency.state if agency is not None else None,
        "kind": agency.kind if agency is not None else None,
        "networks": networks,
        "codes": [],
        "reasons": [],
        "since_baseline": since_baseline,
        "signed": signed,
    }
