"""The audit summary: counts per code, organization and day, the worst rows, bounded tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamguard.exports import summary as summary_module
from streamguard.exports.judge import INCOMPLETE_ACCESS_LOG
from tests.unit.exports.samples import audit_rows, row


def test_summary_counts_codes_orgs_days_and_worst_rows(tmp_path: Path) -> None:
    """The summary tallies rows, findings, codes, organizations, days and ranks the worst rows."""
    day2 = "11/15/2025, 01:00:00 AM UTC"
    rows = [
        row(ID="a"),
        row(ID="b", **{"Org Name": "Dallas TX PD"}),
        row(ID="c", **{"Org Name": "Dallas TX PD", "Reason": "ICE detainer", "Search Time": day2}),
        row(ID="d", **{"Org Name": "Task Force Nine", "Search Time": day2}),
        row(ID="e", **{"Org Name": "Task Force Nine", "Reason": ""}),
        row(ID="f", **{"Reason": "investigation"}),
    ]
    summary = audit_rows(tmp_path, rows)
    assert summary.rows == 6
    assert summary.rows_with_findings == 5
    assert summary.code_counts == {
        "OUT_OF_STATE_RECIPIENT": 2,
        "PROHIBITED_PURPOSE_IMMIGRATION": 1,
        "UNKNOWN_REQUESTER": 2,
        "MISSING_PURPOSE": 1,
        INCOMPLETE_ACCESS_LOG: 1,
        "VAGUE_PURPOSE": 1,
    }
    dallas = summary.orgs["Dallas TX PD"]
    assert (dallas.rows, dallas.findings, dallas.agency_id, dallas.via) == (2, 2, None, "state")
    assert summary.unresolved == {"Task Force Nine": 2}
    assert summary.days == {"2025-11-14": [4, 3], "2025-11-15": [2, 2]}
    worst = summary.worst_rows()
    # Most severe code first (c: immigration + out of state; b: out of state), then the number
    # of codes (e: unknown requester, missing purpose, incomplete log).
    assert [w.id for w in worst[:3]] == ["c", "b", "e"]
    assert worst[0].codes == ("OUT_OF_STATE_RECIPIENT", "PROHIBITED_PURPOSE_IMMIGRATION")
    top = summary.top_orgs(2)
    assert [name for name, _ in top] == ["Dallas TX PD", "Task Force Nine"]


def test_summary_tables_stay_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the table limits, new organizations, names and days pool under (other)."""
    monkeypatch.setattr(summary_module, "_ORG_LIMIT", 3)
    monkeypatch.setattr(summary_module, "_UNRESOLVED_LIMIT", 2)
    monkeypatch.setattr(summary_module, "_DAY_LIMIT", 1)
    rows = [
        row(
            ID=str(i),
            **{"Org Name": f"Unknown Unit {i}", "Search Time": f"11/{10 + i}/2025, 01:00 AM UTC"},
        )
        for i in range(6)
    ]
    summary = audit_rows(tmp_path, rows)
    assert len(summary.orgs) == 4 and summary.orgs["(other)"].rows == 3
    assert len(summary.unresolved) == 3 and summary.unresolved["(other)"] == 4
    assert summary.days == {"2025-11-10": [1, 1], "(other)": [5, 5]}
    assert summary.code_counts["UNKNOWN_REQUESTER"] == 6
