"""The audit summary for people: a plain-text report for the terminal and an offline HTML page.

Neither shows a plate, a user name or a free-text reason: only codes, counts, organization names,
row numbers and search ids, so a report can be passed around without redaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Final

from streamguard.exports.summary import OTHER, AuditSummary

__all__ = (
    "CSS",
    "FIND_COLOR",
    "ROWS_COLOR",
    "day_rows",
    "html_notes",
    "html_page",
    "html_table",
    "pct",
    "render_html",
    "render_text",
    "short",
    "svg_hbars",
    "text_table",
    "utc_time",
)

# Past this many days the per-day table becomes per-month: a year of days is not readable.
_MAX_DAYS_SHOWN: Final = 62
_UNRESOLVED_SHOWN: Final = 25
_MALFORMED_SHOWN: Final = 20


def pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "0.0%"


def utc_time(epoch: float | None) -> str:
    """A timestamp as a reader compares it with the export (UTC, to the second); `-` if none."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


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
    if summary.portal is not None:
        notes.append(
            f"{summary.other_portal_rows:,} rows of the archive's other "
            f"{summary.portals_in_file - 1:,} portals (only portal {summary.portal} is audited)"
        )
    return notes


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
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


def short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _count_text(count: int | None) -> str:
    return "-" if count is None else f"{count:,}"


def render_text(summary: AuditSummary) -> str:
    """The summary printed on stdout."""
    out: list[str] = [
        f"StreamGuard audit of {summary.export}",
        f"layout:  {summary.layout.title} ({summary.layout.width} columns)",
        f"owner:   {_owner_line(summary)}",
        *([f"portal:  {summary.portal}"] if summary.portal is not None else []),
        f"rows:    {summary.rows:,}   with findings: {summary.rows_with_findings:,} "
        f"({pct(summary.rows_with_findings, summary.rows)})   "
        f"malformed: {summary.malformed_rows:,}",
    ]
    out.append("not judged:")
    out.extend(f"  - {note}" for note in _not_judged(summary))

    out += ["", "Rows per code"]
    rows: list[tuple[str, ...]]
    if summary.code_counts:
        rows = [
            (code, f"{count:,}", pct(count, summary.rows), summary.citations.get(code, ""))
            for code, count in summary.code_counts.most_common()
        ]
        out += text_table(("code", "rows", "share", "citation"), rows, {1, 2})
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
                short(name),
                stats.agency_id or "-",
                stats.via,
                f"{stats.rows:,}",
                f"{stats.findings:,}",
                ", ".join(c for c, _ in stats.codes.most_common(3)),
            )
            for name, stats in top
        ]
        out += text_table(
            ("organization", "agency_id", "resolved", "rows", "findings", "top codes"), rows, {3, 4}
        )

    unit, periods = day_rows(summary)
    if periods:
        out += ["", f"Per {unit} (rows, rows with findings)"]
        peak = max(p[2] for p in periods) or 1
        rows = [(p, f"{r:,}", f"{f:,}", "#" * round(30 * f / peak)) for p, r, f in periods]
        out += text_table((unit, "rows", "findings", ""), rows, {1, 2})

    worst = summary.worst_rows()
    if worst:
        out += ["", "Worst rows (most severe and most codes first; details in --html and --out)"]
        rows = [
            (
                f"{w.row:,}",
                f"{w.line:,}",
                w.id or "-",
                utc_time(w.search_time),
                short(w.org or "-", 36),
                _count_text(w.networks),
                " ".join(w.codes),
            )
            for w in worst
        ]
        out += text_table(
            ("row", "line", "id", "search time (UTC)", "organization", "networks", "codes"),
            rows,
            {0, 1, 5},
        )
        if summary.config.show_reasons:
            out += ["", "Worst rows: user and stated reason (--show-reasons)"]
            out += [f"  row {w.row:,}: {w.user or '-'}: {w.purpose or '-'}" for w in worst]

    if summary.unresolved:
        total = sum(summary.unresolved.values())
        out += [
            "",
            f"Unresolved organization names: {len(summary.unresolved):,} on {total:,} rows "
            "(add them to the registry or its aliases)",
        ]
        rows = [
            (short(name, 60), f"{count:,}")
            for name, count in summary.unresolved.most_common(_UNRESOLVED_SHOWN)
        ]
        out += text_table(("name", "rows"), rows, {1})
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

# Colours meet WCAG 2.1 AA for text: #222 on white is 15.9:1, #4a4a4a (muted) 8.9:1, and the
# notes' #222 on #f4f1e8 14.0:1; chart bars carry no text of their own.
CSS: Final = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 10px;border-bottom:1px solid #e2e2e2;
text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
td.d{font-size:.92em;max-width:34em}
.k{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
svg text{font:11px system-ui,sans-serif;fill:#222}.muted{color:#4a4a4a}
.notes{background:#f4f1e8;border-left:4px solid #8a6d00;color:#222;padding:.4em 1em .4em 2em;
margin:1em 0}.notes li{margin:.15em 0}
.warn{background:#fde8e6;border-left:4px solid #a61b0f;color:#222;padding:.5em 1em}
"""
ROWS_COLOR: Final = "#c8d3e0"
FIND_COLOR: Final = "#c0392b"


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
        for value, color in ((rows, ROWS_COLOR), (findings, FIND_COLOR)):
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


# Width of one character of the 11px chart font, generously: the count labels right of the bars
# are sized from it, so the longest one still fits inside the drawing.
_CHAR_W: Final = 7.0


def svg_hbars(items: list[tuple[str, int, int]]) -> str:
    """Horizontal bars: total behind, part in front, one line per item, `part / total` after."""
    width, label_w, line_h = 1000, 330, 22
    peak = max((i[1] for i in items), default=1) or 1
    height = line_h * len(items) + 10
    counts = [f"{part:,} / {total:,}" for _, total, part in items]
    reserve = max((len(c) for c in counts), default=0) * _CHAR_W + 16
    span = width - label_w - reserve
    parts = [f'<svg role="img" aria-label="bar chart" viewBox="0 0 {width} {height}" width="100%">']
    for n, ((label, total, part), count) in enumerate(zip(items, counts, strict=True)):
        y = 5 + n * line_h
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(short(label, 52))}</text>"
        )
        for value, color in ((total, ROWS_COLOR), (part, FIND_COLOR)):
            w = span * value / peak
            parts.append(
                f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{line_h - 6}" '
                f'fill="{color}"/>'
            )
        parts.append(
            f'<text x="{label_w + span * total / peak + 6:.1f}" y="{y + 15}">{count}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: set[int],
    detail: set[int] | frozenset[int] = frozenset(),
) -> str:
    """A table; `right` columns are numbers, `detail` columns smaller text. A newline in a cell
    starts a new line in the page."""

    def cell(i: int, text: str) -> str:
        body = escape(text).replace("\n", "<br>")
        if i in right:
            return f'<td class="n">{body}</td>'
        if i in detail:
            return f'<td class="d">{body}</td>'
        return f"<td>{body}</td>"

    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(cell(i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def html_notes(title: str, notes: Sequence[str]) -> str:
    """Caveats as a list in a box: read before the figures, so not in faint small print."""
    items = "".join(f"<li>{escape(n)}</li>" for n in notes)
    return f'<div class="notes"><strong>{escape(title)}</strong><ul>{items}</ul></div>'


def html_page(title: str, sections: Sequence[str]) -> str:
    """A self-contained page: inline CSS and SVG, no script, nothing fetched."""
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title>"
        f"<style>{CSS}</style></head><body>" + "\n".join(sections) + "</body></html>\n"
    )


def _legend() -> str:
    return (
        f'<span class="k" style="background:{ROWS_COLOR}"></span>rows'
        f'<span class="k" style="background:{FIND_COLOR}"></span>rows with findings'
    )


def _worst_table(summary: AuditSummary) -> str:
    with_reasons = summary.config.show_reasons
    header = ["row", "line", "id", "search time (UTC)", "organization", "networks"]
    if with_reasons:
        header += ["user", "stated reason"]
    header += ["codes and details"]
    rows: list[list[str]] = []
    for w in summary.worst_rows():
        networks = _count_text(w.networks)
        if w.devices is not None:
            networks += f"\n{w.devices:,} cameras"
        cells = [
            f"{w.row:,}",
            f"{w.line:,}",
            w.id or "-",
            utc_time(w.search_time),
            w.org or "-",
            networks,
        ]
        if with_reasons:
            cells += [w.user or "-", w.purpose or "-"]
        cells.append("\n".join(w.details) or " ".join(w.codes))
        rows.append(cells)
    return html_table(header, rows, {0, 1, 5}, {len(header) - 1})


def render_html(summary: AuditSummary) -> str:
    """A self-contained page: inline CSS and SVG, no script, nothing fetched."""
    legend = _legend()
    unit, periods = day_rows(summary)
    top = summary.top_orgs(summary.config.top)
    facts = [
        ("export", summary.export_name),
        ("layout", f"{summary.layout.title} ({summary.layout.width} columns)"),
        ("owner", _owner_line(summary)),
    ]
    if summary.portal is not None:
        facts.append(("portal", summary.portal))
    facts += [
        ("rows", f"{summary.rows:,}"),
        (
            "rows with findings",
            f"{summary.rows_with_findings:,} ({pct(summary.rows_with_findings, summary.rows)})",
        ),
        ("malformed rows", f"{summary.malformed_rows:,}"),
    ]
    sections = [
        f"<h1>StreamGuard audit of {escape(summary.export_name)}</h1>",
        html_table(("", ""), facts, set()),
        html_notes("Not judged", _not_judged(summary)),
    ]
    if summary.config.show_reasons:
        sections.append(
            '<p class="warn">This report shows users and stated reasons as the export holds them '
            "(--show-reasons). Free-text reasons can contain plates and names: do not publish "
            "it.</p>"
        )
    sections += [
        "<h2>Rows per code</h2>",
        svg_hbars([(c, summary.rows, n) for c, n in summary.code_counts.most_common()])
        if summary.code_counts
        else "<p>No findings.</p>",
        html_table(
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
        svg_hbars([(name, s.rows, s.findings) for name, s in top]),
        html_table(
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
        _worst_table(summary),
    ]
    if summary.unresolved:
        sections += [
            "<h2>Unresolved organization names</h2>",
            html_table(
                ("name", "rows"),
                [(n, f"{c:,}") for n, c in summary.unresolved.most_common(200)],
                {1},
            ),
        ]
    if summary.malformed_rows:
        sections += [
            f"<h2>Malformed rows ({summary.malformed_rows:,})</h2>",
            html_table(
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
    return html_page(f"StreamGuard audit of {summary.export_name}", sections)
