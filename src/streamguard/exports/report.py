"""The audit summary for people: a plain-text report for the terminal and an offline HTML page.

Neither shows a plate, a user name or a free-text reason: only codes, counts, organization names,
row numbers and search ids, so a report can be passed around without redaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

from streamguard.exports.summary import OTHER, AuditSummary

__all__ = ("day_rows", "render_html", "render_text")

# Past this many days the per-day table becomes per-month: a year of days is not readable.
_MAX_DAYS_SHOWN: Final = 62
_UNRESOLVED_SHOWN: Final = 25
_MALFORMED_SHOWN: Final = 20


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "0.0%"


def day_rows(summary: AuditSummary) -> tuple[str, list[tuple[str, int, int]]]:
    """(`day` or `month`, [(period, rows, rows with findings)]) in date order."""
    days = sorted(summary.days.items())
    dated = [(d, c) for d, c in days if d[:1].isdigit()]
    undated = [(d, c) for d, c in days if not d[:1].isdigit()]
    if len(dated) <= _MAX_DAYS_SHOWN:
        return "day", [(d, c[0], c[1]) for d, c in dated + undated]
    months: dict[str, list[int]] = {}
    for day, (rows, findings) in dated:
        counts = months.setdefault(day[:7], [0, 0])
        counts[0] += rows
        counts[1] += findings
    return "month", [(m, c[0], c[1]) for m, c in sorted(months.items())] + [
        (d, c[0], c[1]) for d, c in undated
    ]


def _owner_line(summary: AuditSummary) -> str:
    owner = summary.owner
    return f"{owner.agency_id} ({owner.name}, {owner.state}); law: {summary.rule_name}"


def _not_judged(summary: AuditSummary) -> list[str]:
    notes = [
        "NOT_SHARED: an export does not show the owner's sharing settings, so access is not "
        "judged, only the law",
    ]
    if summary.unjudged_log_fields:
        fields = ", ".join(summary.unjudged_log_labels)
        notes.append(f"access-log fields this export has no column for: {fields}")
    if summary.retention_unjudged:
        notes.append(
            "RETENTION_EXCEEDED: the owner's law limits retention, but this export has no "
            "Time Frame column to compare with it"
        )
    if summary.redacted_org_rows:
        notes.append(
            f"organization withheld on {summary.redacted_org_rows:,} rows: recipient law not "
            "judged for them"
        )
    if summary.layout.org_implied:
        notes.append(
            "no organization column: every row is taken as a search by the owner's own users"
        )
    return notes


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ]
        return "  " + "  ".join(parts).rstrip()

    return [line(header), *(line(r) for r in rows)]


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_text(summary: AuditSummary) -> str:
    """The summary printed on stdout."""
    out: list[str] = [
        f"StreamGuard audit of {summary.export}",
        f"layout:  {summary.layout.title} ({summary.layout.width} columns)",
        f"owner:   {_owner_line(summary)}",
        f"rows:    {summary.rows:,}   with findings: {summary.rows_with_findings:,} "
        f"({_pct(summary.rows_with_findings, summary.rows)})   "
        f"malformed: {summary.malformed_rows:,}",
    ]
    out.append("not judged:")
    out.extend(f"  - {note}" for note in _not_judged(summary))

    out += ["", "Rows per code"]
    rows: list[tuple[str, ...]]
    if summary.code_counts:
        rows = [
            (code, f"{count:,}", _pct(count, summary.rows), summary.citations.get(code, ""))
            for code, count in summary.code_counts.most_common()
        ]
        out += _table(("code", "rows", "share", "citation"), rows, {1, 2})
    else:
        out.append("  (no findings)")

    via = summary.resolved_via
    if via:
        out += ["", "Requesters resolved: " + ", ".join(f"{k} {v:,}" for k, v in via.most_common())]

    top = summary.top_orgs(summary.config.top)
    if top:
        out += [
            "",
            f"Searching organizations (top {len(top)} by rows with findings, of "
            f"{len(summary.orgs):,})",
        ]
        rows = [
            (
                _short(name),
                stats.agency_id or "-",
                stats.via,
                f"{stats.rows:,}",
                f"{stats.findings:,}",
                ", ".join(c for c, _ in stats.codes.most_common(3)),
            )
            for name, stats in top
        ]
        out += _table(
            ("organization", "agency_id", "resolved", "rows", "findings", "top codes"), rows, {3, 4}
        )

    unit, periods = day_rows(summary)
    if periods:
        out += ["", f"Per {unit} (rows, rows with findings)"]
        peak = max(p[2] for p in periods) or 1
        rows = [(p, f"{r:,}", f"{f:,}", "#" * round(30 * f / peak)) for p, r, f in periods]
        out += _table((unit, "rows", "findings", ""), rows, {1, 2})

    worst = summary.worst_rows()
    if worst:
        out += ["", "Worst rows (most severe and most codes first)"]
        rows = [
            (f"{w.row:,}", f"{w.line:,}", w.id or "-", _short(w.org or "-", 36), " ".join(w.codes))
            for w in worst
        ]
        out += _table(("row", "line", "id", "organization", "codes"), rows, {0, 1})

    if summary.unresolved:
        total = sum(summary.unresolved.values())
        out += [
            "",
            f"Unresolved organization names: {len(summary.unresolved):,} on {total:,} rows "
            "(add them to the registry or its aliases)",
        ]
        rows = [
            (_short(name, 60), f"{count:,}")
            for name, count in summary.unresolved.most_common(_UNRESOLVED_SHOWN)
        ]
        out += _table(("name", "rows"), rows, {1})
        if len(summary.unresolved) > _UNRESOLVED_SHOWN:
            out.append(f"  ... {len(summary.unresolved) - _UNRESOLVED_SHOWN:,} more names")

    if summary.malformed_rows:
        out += [
            "",
            f"Malformed rows: {summary.malformed_rows:,} (judged on the cells that could be "
            "read; a row with the wrong column count is not judged)",
        ]
        out += [
            f"  line {line:,}: {detail}" for line, detail in summary.malformed[:_MALFORMED_SHOWN]
        ]
        if summary.malformed_rows > _MALFORMED_SHOWN:
            out.append(f"  ... {summary.malformed_rows - _MALFORMED_SHOWN:,} more")
    return "\n".join(out) + "\n"


# --- HTML -----------------------------------------------------------------------------------------

_CSS: Final = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 10px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
.k{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
svg text{font:11px system-ui,sans-serif;fill:#333}.muted{color:#666}
"""
_ROWS_COLOR: Final = "#c8d3e0"
_FIND_COLOR: Final = "#c0392b"


def _svg_days(periods: list[tuple[str, int, int]]) -> str:
    """Vertical bars per period: all rows behind, rows with findings in front."""
    # The bottom margin fits a rotated YYYY-MM-DD label; at most ~20 labels keep them apart.
    width, height, left, bottom = 1000, 240, 50, 95
    peak = max((p[1] for p in periods), default=1) or 1
    slot = (width - left - 10) / max(len(periods), 1)
    bar = max(slot * 0.8, 1.0)
    parts = [
        f'<svg role="img" aria-label="rows and findings per period" viewBox="0 0 {width} '
        f'{height + bottom}" width="100%" style="overflow:visible">'
    ]
    for tick in (0, 0.5, 1):
        y = 10 + height * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{round(peak * tick):,}</text>'
        )
    every = max(1, -(-len(periods) // 20))
    for i, (label, rows, findings) in enumerate(periods):
        x = left + i * slot + (slot - bar) / 2
        for value, color in ((rows, _ROWS_COLOR), (findings, _FIND_COLOR)):
            h = height * value / peak
            parts.append(
                f'<rect x="{x:.1f}" y="{10 + height - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{escape(label)}: {rows:,} rows, {findings:,} with '
                f"findings</title></rect>"
            )
        if i % every == 0:
            tx, ty = x + bar / 2, 10 + height + 8
            parts.append(
                f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="12" transform="rotate(60 {tx:.1f} '
                f'{ty:.1f})">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _svg_hbars(items: list[tuple[str, int, int]]) -> str:
    """Horizontal bars: total behind, part in front, one line per item."""
    width, label_w, line_h = 1000, 330, 22
    peak = max((i[1] for i in items), default=1) or 1
    height = line_h * len(items) + 10
    parts = [f'<svg role="img" aria-label="bar chart" viewBox="0 0 {width} {height}" width="100%">']
    span = width - label_w - 90
    for n, (label, total, part) in enumerate(items):
        y = 5 + n * line_h
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(_short(label, 52))}</text>"
        )
        for value, color in ((total, _ROWS_COLOR), (part, _FIND_COLOR)):
            w = span * value / peak
            parts.append(
                f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{line_h - 6}" '
                f'fill="{color}"/>'
            )
        parts.append(
            f'<text x="{label_w + span * total / peak + 6:.1f}" y="{y + 15}">'
            f"{part:,} / {total:,}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{escape(c)}</td>' if i in right else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(summary: AuditSummary) -> str:
    """A self-contained page: inline CSS and SVG, no script, nothing fetched."""
    legend = (
        f'<span class="k" style="background:{_ROWS_COLOR}"></span>rows'
        f'<span class="k" style="background:{_FIND_COLOR}"></span>rows with findings'
    )
    unit, periods = day_rows(summary)
    top = summary.top_orgs(summary.config.top)
    sections = [
        f"<h1>StreamGuard audit of {escape(summary.export)}</h1>",
        _html_table(
            ("", ""),
            [
                ("layout", f"{summary.layout.title} ({summary.layout.width} columns)"),
                ("owner", _owner_line(summary)),
                ("rows", f"{summary.rows:,}"),
                (
                    "rows with findings",
                    f"{summary.rows_with_findings:,} "
                    f"({_pct(summary.rows_with_findings, summary.rows)})",
                ),
                ("malformed rows", f"{summary.malformed_rows:,}"),
            ],
            set(),
        ),
        "<p class=muted>Not judged: " + "; ".join(escape(n) for n in _not_judged(summary)) + "</p>",
        "<h2>Rows per code</h2>",
        _svg_hbars([(c, summary.rows, n) for c, n in summary.code_counts.most_common()])
        if summary.code_counts
        else "<p>No findings.</p>",
        _html_table(
            ("code", "rows", "citation"),
            [
                (c, f"{n:,}", summary.citations.get(c, ""))
                for c, n in summary.code_counts.most_common()
            ],
            {1},
        ),
        f"<h2>Findings per {unit}</h2><p>{legend}</p>",
        _svg_days(periods),
        f"<h2>Top searching organizations</h2><p>{legend}</p>",
        _svg_hbars([(name, s.rows, s.findings) for name, s in top]),
        _html_table(
            ("organization", "agency_id", "resolved", "rows", "findings", "codes"),
            [
                (
                    name,
                    s.agency_id or "-",
                    s.via,
                    f"{s.rows:,}",
                    f"{s.findings:,}",
                    ", ".join(f"{c} {k:,}" for c, k in s.codes.most_common()),
                )
                for name, s in top
            ],
            {3, 4},
        ),
        "<h2>Worst rows</h2>",
        _html_table(
            ("row", "line", "id", "organization", "codes"),
            [
                (f"{w.row:,}", f"{w.line:,}", w.id or "-", w.org or "-", " ".join(w.codes))
                for w in summary.worst_rows()
            ],
            {0, 1},
        ),
    ]
    if summary.unresolved:
        sections += [
            "<h2>Unresolved organization names</h2>",
            _html_table(
                ("name", "rows"),
                [(n, f"{c:,}") for n, c in summary.unresolved.most_common(200)],
                {1},
            ),
        ]
    if summary.malformed_rows:
        sections += [
            f"<h2>Malformed rows ({summary.malformed_rows:,})</h2>",
            _html_table(
                ("line", "problem"),
                [(f"{line:,}", detail) for line, detail in summary.malformed],
                {0},
            ),
        ]
    if OTHER in summary.orgs or OTHER in summary.days:
        sections.append(
            "<p class=muted>(other) pools organizations or days beyond the report's table "
            "limits.</p>"
        )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>StreamGuard audit: {escape(summary.owner.agency_id)}</title>"
        f"<style>{_CSS}</style></head><body>" + "\n".join(sections) + "</body></html>\n"
    )
