"""The sharing audit for people: terminal text and an offline HTML page in `audit`'s look.

The HTML reuses report.py's styles, tables and bar charts, so both audits read alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

from streamguard.exports.drift import PolicyDrift
from streamguard.exports.report import (
    FIND_COLOR,
    ROWS_COLOR,
    html_notes,
    html_page,
    html_table,
    pct,
    short,
    svg_hbars,
    text_table,
)
from streamguard.exports.sharing import Recipient
from streamguard.exports.sharing_summary import SharingAudit

__all__ = ("render_sharing_html", "render_sharing_text")

_HTML_ROWS: Final = 5_000  # per table; real lists hold a few hundred recipients
_STATES_SHOWN: Final = 12


def _owner_line(audit: SharingAudit) -> str:
    owner = audit.owner
    return f"{owner.agency_id} ({owner.name}, {owner.state}); law: {audit.rule.name}"


def _counts_line(audit: SharingAudit) -> str:
    listing = audit.listing
    return (
        f"{listing.rows:,}   recipients of the owner's networks: {len(audit.recipients):,}   "
        f"sharing with the owner only: {listing.inbound_only:,}   "
        f"malformed: {listing.malformed_rows:,}"
    )


def _states(audit: SharingAudit) -> str:
    shown = audit.states.most_common(_STATES_SHOWN)
    text = ", ".join(f"{state} {n:,}" for state, n in shown)
    rest = len(audit.states) - len(shown)
    return text + (f", and {rest:,} more" if rest > 0 else "")


def _recipient_cells(audit: SharingAudit, r: Recipient) -> list[str]:
    agency = r.agency
    return [
        r.listed.org or "(empty)",
        agency.state if agency is not None else "-",
        agency.kind if agency is not None else "-",
        r.via,
        f"{len(r.listed.networks):,}",
        " ".join(audit.codes_of(r)),
    ]


_RECIPIENT_HEADER: Final = ("organization", "state", "kind", "resolved", "networks", "codes")


def _policy_lines(drift: PolicyDrift) -> list[str]:
    policy = drift.policy
    settings = policy.settings
    rejected = ", ".join(f"{c} {n:,}" for c, n in policy.rejected_codes)
    flags = ", ".join(
        f"{name} {'on' if value else 'off'}"
        for name, value in (
            ("statewide_lookup", settings.statewide_lookup),
            ("national_lookup", settings.national_lookup),
            ("federal_sharing", settings.federal_sharing),
        )
    )
    out = [
        f"  the owner's signed changes: {policy.owner_applied:,} applied, "
        f"{policy.owner_rejected:,} rejected{f' ({rejected})' if rejected else ''}; "
        f"{policy.other_changes:,} records of other owners, {policy.ignored:,} events skipped, "
        f"{policy.malformed:,} malformed lines"
        + (f", {policy.after_as_of:,} changes after --as-of" if policy.after_as_of else ""),
        f"  signed settings: share_with {len(settings.share_with):,} agencies; {flags}; "
        f"declarations on file {len(settings.declaration_on_file):,}",
    ]
    return out


def _more(shown: int, total: int) -> list[str]:
    return [f"  ... {total - shown:,} more (all in --out and --html)"] if total > shown else []


def render_sharing_text(audit: SharingAudit) -> str:
    """The summary printed on stdout."""
    findings = audit.with_findings
    total = len(audit.recipients)
    out = [
        f"StreamGuard sharing audit of {audit.export}",
        f"layout:  {audit.layout.title}",
        f"owner:   {_owner_line(audit)}",
        f"rows:    {_counts_line(audit)}",
        f"recipients with findings: {len(findings):,} ({pct(len(findings), total)})",
        "not judged:",
        *(f"  - {note}" for note in audit.not_judged()),
        "",
        "Recipients per code",
    ]
    if audit.code_counts:
        out += text_table(
            ("code", "recipients", "share", "citation"),
            [
                (code, f"{n:,}", pct(n, total), audit.citations.get(code, ""))
                for code, n in audit.code_counts.most_common()
            ],
            {1, 2},
        )
    else:
        out.append("  (no findings)")
    if audit.resolved_via:
        out += [
            "",
            "Recipients resolved: "
            + ", ".join(f"{k} {v:,}" for k, v in audit.resolved_via.most_common()),
            f"Recipients by state: {_states(audit)}",
        ]
    if audit.networks:
        out += ["", "The owner's networks shared (network, recipients)"]
        out += text_table(
            ("network", "recipients"),
            [(short(n, 60), f"{c:,}") for n, c in audit.networks.most_common()],
            {1},
        )
    if findings:
        shown = findings[: audit.top]
        out += ["", f"Recipients with findings ({len(findings):,}; most severe first)"]
        out += text_table(
            _RECIPIENT_HEADER,
            [[short(c, 48) for c in _recipient_cells(audit, r)] for r in shown],
            {4},
        )
        out += _more(len(shown), len(findings))
    if audit.baseline is not None:
        out += _baseline_text(audit)
    if audit.policy is not None:
        out += _policy_text(audit, audit.policy)
    unresolved = audit.unresolved
    if unresolved:
        out += [
            "",
            f"Unresolved recipient names: {len(unresolved):,} (add them to a registry or its "
            "aliases; docs/audit.md, Building a registry)",
        ]
        out += [f"  {r.listed.org or '(empty)'}" for r in unresolved[: audit.top]]
        out += _more(min(len(unresolved), audit.top), len(unresolved))
    if audit.listing.malformed_rows:
        out += ["", f"Malformed rows: {audit.listing.malformed_rows:,} (not judged)"]
        out += [f"  line {line:,}: {detail}" for line, detail in audit.listing.malformed[:20]]
    return "\n".join(out) + "\n"


def _baseline_text(audit: SharingAudit) -> list[str]:
    drift = audit.baseline
    assert drift is not None
    by_key = {r.listed.key: r for r in audit.recipients}
    out = [
        "",
        f"Since baseline {drift.baseline}: {len(drift.added):,} added, {len(drift.removed):,} "
        f"removed, {len(drift.changed):,} with other networks",
    ]
    lines = [
        f"  + {by_key[k].listed.org}  {' '.join(audit.codes_of(by_key[k]))}".rstrip()
        for k in drift.added
    ]
    lines += [f"  - {gone.org}" for gone in drift.removed]
    lines += [
        f"  ~ {by_key[k].listed.org}: "
        + ", ".join([*(f"+{n}" for n in gained), *(f"-{n}" for n in lost)])
        for k, (gained, lost) in drift.changed.items()
    ]
    shown = lines[: audit.top * 2]
    return out + shown + _more(len(shown), len(lines))


def _policy_text(audit: SharingAudit, drift: PolicyDrift) -> list[str]:
    out = ["", f"Against the signed policy {drift.policy.log}", *_policy_lines(drift)]
    unsigned = [r for r in audit.recipients if drift.unsigned(r.listed.key)]
    out.append(
        f"  UNSIGNED_SHARING: {len(unsigned):,} recipients no applied signed change explains"
    )
    out += [f"    {r.listed.org or '(empty)'}" for r in unsigned[: audit.top]]
    out += _more(min(len(unsigned), audit.top), len(unsigned))
    out.append(f"  signed share_with but not listed: {len(drift.absent):,}")
    out += [f"    {a.agency_id} ({a.name})" for a in drift.absent[: audit.top]]
    return out


# --- HTML -----------------------------------------------------------------------------------------


def _recipient_rows(audit: SharingAudit, recipients: Sequence[Recipient]) -> list[list[str]]:
    rows = []
    for r in recipients[:_HTML_ROWS]:
        details = "\n".join(f"{x.code}: {x.detail}" for x in audit.reasons[r.listed.key])
        rows.append(
            [
                *_recipient_cells(audit, r)[:5],
                ", ".join(r.listed.networks),
                details or "-",
                f"{r.listed.line:,}",
            ]
        )
    return rows


def render_sharing_html(audit: SharingAudit) -> str:
    """A self-contained page: inline CSS and SVG, no script, nothing fetched."""
    total = len(audit.recipients)
    findings = audit.with_findings
    facts = [
        ("export", audit.export_name),
        ("layout", audit.layout.title),
        ("owner", _owner_line(audit)),
        ("rows", f"{audit.listing.rows:,}"),
        ("recipients of the owner's networks", f"{total:,}"),
        ("sharing with the owner only", f"{audit.listing.inbound_only:,}"),
        ("recipients with findings", f"{len(findings):,} ({pct(len(findings), total)})"),
        ("malformed rows", f"{audit.listing.malformed_rows:,}"),
    ]
    legend = (
        f'<span class="k" style="background:{ROWS_COLOR}"></span>recipients'
        f'<span class="k" style="background:{FIND_COLOR}"></span>with the code'
    )
    header = [*_RECIPIENT_HEADER[:5], "the owner's networks", "codes and details", "line"]
    sections = [
        f"<h1>StreamGuard sharing audit of {escape(audit.export_name)}</h1>",
        html_table(("", ""), facts, set()),
        html_notes("Not judged", audit.not_judged()),
        f"<h2>Recipients per code</h2><p>{legend}</p>",
        svg_hbars([(c, total, n) for c, n in audit.code_counts.most_common()])
        if audit.code_counts
        else "<p>No findings.</p>",
        html_table(
            ("code", "recipients", "citation"),
            [(c, f"{n:,}", audit.citations.get(c, "")) for c, n in audit.code_counts.most_common()],
            {1},
        ),
        "<h2>Recipients resolved</h2>",
        html_table(
            ("resolved", "recipients"),
            [(k, f"{v:,}") for k, v in audit.resolved_via.most_common()],
            {1},
        ),
        f"<p>By state: {escape(_states(audit))}</p>",
        "<h2>The owner's networks shared</h2>",
        html_table(
            ("network", "recipients"),
            [(n, f"{c:,}") for n, c in audit.networks.most_common()],
            {1},
        ),
        f"<h2>Recipients with findings ({len(findings):,})</h2>",
        html_table(header, _recipient_rows(audit, findings), {4, 7}, {5, 6})
        if findings
        else "<p>None.</p>",
    ]
    if audit.baseline is not None:
        sections += _baseline_html(audit)
    if audit.policy is not None:
        sections += _policy_html(audit, audit.policy)
    if audit.listing.malformed_rows:
        sections += [
            f"<h2>Malformed rows ({audit.listing.malformed_rows:,})</h2>",
            html_table(
                ("line", "problem"),
                [(f"{line:,}", d) for line, d in audit.listing.malformed],
                {0},
            ),
        ]
    sections += [
        f"<h2>All recipients ({total:,})</h2>",
        html_table(header, _recipient_rows(audit, audit.recipients), {4, 7}, {5, 6}),
    ]
    return html_page(f"StreamGuard sharing audit of {audit.export_name}", sections)


def _baseline_html(audit: SharingAudit) -> list[str]:
    drift = audit.baseline
    assert drift is not None
    by_key = {r.listed.key: r for r in audit.recipients}
    rows = [
        ["added", by_key[k].listed.org, " ".join(audit.codes_of(by_key[k])) or "-"]
        for k in drift.added
    ]
    rows += [["removed", gone.org, "-"] for gone in drift.removed]
    rows += [
        [
            "other networks",
            by_key[k].listed.org,
            "\n".join([*(f"+ {n}" for n in gained), *(f"- {n}" for n in lost)]),
        ]
        for k, (gained, lost) in drift.changed.items()
    ]
    return [
        f"<h2>Since baseline {escape(drift.baseline)}</h2>",
        f"<p>{len(drift.added):,} added, {len(drift.removed):,} removed, "
        f"{len(drift.changed):,} with other networks.</p>",
        html_table(("change", "organization", "codes or networks"), rows[:_HTML_ROWS], set(), {2})
        if rows
        else "<p>No change.</p>",
    ]


def _policy_html(audit: SharingAudit, drift: PolicyDrift) -> list[str]:
    unsigned = [r for r in audit.recipients if drift.unsigned(r.listed.key)]
    return [
        f"<h2>Against the signed policy {escape(drift.policy.log)}</h2>",
        "<ul>" + "".join(f"<li>{escape(t.strip())}</li>" for t in _policy_lines(drift)) + "</ul>",
        f"<h3>UNSIGNED_SHARING: {len(unsigned):,} recipients no applied signed change "
        "explains</h3>",
        html_table(
            ("organization", "agency_id", "state", "resolved"),
            [
                [
                    r.listed.org or "(empty)",
                    r.agency_id or "-",
                    r.agency.state if r.agency is not None else "-",
                    r.via,
                ]
                for r in unsigned[:_HTML_ROWS]
            ],
            set(),
        )
        if unsigned
        else "<p>None.</p>",
        f"<h3>Signed share_with but not listed: {len(drift.absent):,}</h3>",
        html_table(
            ("agency_id", "name", "state"),
            [[a.agency_id, a.name, a.state] for a in drift.absent[:_HTML_ROWS]],
            set(),
        )
        if drift.absent
        else "<p>None.</p>",
    ]
