"""The audit reports: what the HTML page shows, that it fits, and that its text is readable."""

from __future__ import annotations

import re
from pathlib import Path

from streamguard.exports.cli import run_audit
from streamguard.exports.judge import AuditConfig
from streamguard.exports.layouts import ExportFile
from streamguard.exports.report import CSS, render_html, render_text, svg_hbars
from tests.unit.exports.samples import HEADER, audit_rows, auditor_for, row, write_csv


def contrast(foreground: str, background: str) -> float:
    """WCAG 2.1 contrast ratio of two #rgb or #rrggbb colours."""

    def luminance(colour: str) -> float:
        digits = colour.lstrip("#")
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def declared(selector: str, prop: str) -> str:
    """The value of `prop` in the CSS rule for `selector`."""
    match = re.search(re.escape(selector) + r"\{[^}]*?\b" + prop + r":(#[0-9a-f]+)", CSS)
    assert match is not None, (selector, prop)
    return match.group(1)


def test_contrast_helper_matches_known_ratios() -> None:
    assert round(contrast("#000", "#fff"), 1) == 21.0
    assert round(contrast("#767676", "#ffffff"), 2) == 4.54  # the AA boundary grey


def test_text_colours_meet_wcag_aa() -> None:
    """Body text, muted text, caveats and chart labels all reach 4.5:1 on their backgrounds."""
    pairs = [
        (declared("body", "color"), "#fff"),
        (declared(".muted", "color"), "#fff"),
        (declared(".notes", "color"), declared(".notes", "background")),
        (declared(".warn", "color"), declared(".warn", "background")),
        (declared("svg text", "fill"), "#fff"),
    ]
    for foreground, background in pairs:
        assert contrast(foreground, background) >= 4.5, (foreground, background)


def test_bar_counts_fit_inside_the_chart() -> None:
    """The `part / total` label after the longest bar ends inside the drawing, not past it."""
    svg = svg_hbars([("MISSING_PURPOSE", 1_554_977, 1_515_136), ("VAGUE_PURPOSE", 1_554_977, 3)])
    view = re.search(r'viewBox="0 0 (\d+)', svg)
    assert view is not None
    width = float(view.group(1))
    for x, text in re.findall(r'<text x="([\d.]+)" y="[\d.]+">([\d,]+ / [\d,]+)</text>', svg):
        # 6.5 px per character is what an 11 px sans-serif digit needs at least.
        assert float(x) + 6.5 * len(text) <= width, (x, text)


def test_html_is_titled_with_the_file_name_and_lists_caveats(tmp_path: Path) -> None:
    summary = audit_rows(tmp_path, [row(**{"Org Name": "Dallas TX PD"})])
    page = render_html(summary)
    assert "<title>StreamGuard audit of export.csv</title>" in page
    assert "<h1>StreamGuard audit of export.csv</h1>" in page
    assert str(tmp_path) not in page  # where the auditor keeps files is nobody's business
    assert '<div class="notes"><strong>Not judged</strong><ul><li>NOT_SHARED' in page


def test_worst_rows_show_time_networks_and_details_but_no_user_or_reason(tmp_path: Path) -> None:
    summary = audit_rows(
        tmp_path,
        [row(ID="w1", Reason="ICE detainer", **{"Org Name": "Dallas TX PD"})],
    )
    page = render_html(summary)
    worst = page[page.index("<h2>Worst rows</h2>") :]
    assert "<th>search time (UTC)</th>" in worst and "<th>networks</th>" in worst
    assert "2025-11-14 09:53:36" in worst
    assert '<td class="n">12<br>300 cameras</td>' in worst
    assert "OUT_OF_STATE_RECIPIENT: the recipient is in TX" in worst
    assert "PROHIBITED_PURPOSE_IMMIGRATION: the stated purpose is immigration" in worst
    assert "ICE detainer" not in page and "Officer A" not in page
    assert "do not publish" not in page
    text = render_text(summary)
    assert "2025-11-14 09:53:36" in text and "ICE detainer" not in text


def test_show_reasons_adds_user_and_reason_with_a_warning(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", HEADER, [row(ID="w1", Reason="ICE detainer")])
    with ExportFile(path, keep_user=True) as export:
        config = AuditConfig(show_reasons=True)
        summary = run_audit(export, auditor_for(export.layout, config=config))
    page = render_html(summary)
    assert "<th>user</th><th>stated reason</th>" in page
    assert "<td>Officer A</td><td>ICE detainer</td>" in page
    assert "do not publish" in page
    assert "row 1: Officer A: ICE detainer" in render_text(summary)
