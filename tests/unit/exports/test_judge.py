"""Judging export rows against the owner's law, and the bounded streaming summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamguard.core.models import Agency
from streamguard.core.statutes import load_statutes
from streamguard.exports import judge as audit_export
from streamguard.exports import summary as audit_summary
from streamguard.exports.cli import run_audit
from streamguard.exports.judge import (
    BROAD_SEARCH,
    INCOMPLETE_ACCESS_LOG,
    AuditConfig,
    Auditor,
    access_reasons,
)
from streamguard.exports.layouts import ExportFile
from streamguard.exports.orgs import OrgResolver
from streamguard.exports.summary import AuditSummary
from tests.unit.exports.test_layouts import NETWORK_2024, PORTAL_CA, write_csv

AGENCIES = (
    Agency("ca-ventura-county-so", "Ventura County CA SO", "CA", "county"),
    Agency("ca-oxnard-pd", "Oxnard Police Department", "CA", "local", ("Oxnard CA PD",)),
    Agency("ca-acme-security", "Acme Security LLC", "CA", "private"),
    Agency("ca-example-tribal-pd", "Example Band Tribal Police", "CA", "tribal"),
    Agency("tx-houston-pd", "Houston Police Department", "TX", "local"),
    Agency("us-ice", "U.S. Immigration and Customs Enforcement", "US", "federal"),
    Agency("il-mount-prospect-pd", "Mount Prospect IL PD", "IL", "local"),
    Agency("va-richmond-pd", "Richmond VA PD", "VA", "local"),
    Agency("wa-seattle-pd", "Seattle WA PD", "WA", "local"),
    Agency("fl-okaloosa-county-so", "Okaloosa County FL SO", "FL", "county"),
)
BY_ID = {a.agency_id: a for a in AGENCIES}
# Network audit with the 2025 Offense Type column appended: the widest schema, so one
# fixture can exercise every field.
HEADER = [*NETWORK_2024, "Offense Type"]
SEARCH_TIME = "11/14/2025, 09:53:36 AM UTC"


def row(**cells: str) -> list[str]:
    values = {
        "ID": "id-1",
        "Name": "Officer A",
        "Org Name": "Ventura County CA SO",
        "Total Networks Searched": "12",
        "Total Devices Searched": "300",
        "Time Frame": "11/13/2025, 09:53:36 AM UTC\n11/14/2025, 09:53:36 AM UTC",
        "License Plate": "TEST123",
        "Reason": "burglary 459 PC",
        "Case #": "25-000123",
        "Filters": "",
        "Search Time": SEARCH_TIME,
        "Search Type": "lookup",
        "Text Prompt": "",
        "Moderation": "",
        "Offense Type": "",
    }
    values.update(cells)
    return [values[h] for h in HEADER]


def audit_rows(
    tmp_path: Path,
    rows: list[list[str]],
    owner: str = "ca-ventura-county-so",
    header: list[str] | None = None,
    config: AuditConfig | None = None,
    enforce_unverified: bool = True,
) -> AuditSummary:
    path = write_csv(tmp_path / "export.csv", header or HEADER, rows)
    book = load_statutes(enforce_unverified=enforce_unverified)
    with ExportFile(path) as export:
        auditor = Auditor(
            book, BY_ID[owner], OrgResolver(AGENCIES), export.layout, config or AuditConfig()
        )
        return run_audit(export, auditor)


def judged(
    tmp_path: Path, owner: str = "ca-ventura-county-so", **cells: str
) -> audit_export.RowVerdict:
    path = write_csv(tmp_path / "one.csv", HEADER, [row(**cells)])
    with ExportFile(path) as export:
        auditor = Auditor(
            load_statutes(), BY_ID[owner], OrgResolver(AGENCIES), export.layout, AuditConfig()
        )
        return auditor.judge(next(iter(export)))


def frame(days_back: float) -> str:
    """A Time Frame cell starting `days_back` days before SEARCH_TIME (whole days only)."""
    start = {
        1: "11/13/2025",
        20: "10/25/2025",
        22: "10/23/2025",
        30: "10/15/2025",
        61: "09/14/2025",
    }[int(days_back)]
    return f"{start}, 09:53:36 AM UTC\n{SEARCH_TIME}"


@pytest.mark.parametrize(
    ("owner", "cells", "codes", "agency_id"),
    [
        # -- California owner (SB 34, Values Act, 1798.90.52 access log) --
        ("ca-ventura-county-so", {}, [], "ca-ventura-county-so"),  # own search, named crime
        ("ca-ventura-county-so", {"Org Name": "Oxnard CA PD"}, [], "ca-oxnard-pd"),
        ("ca-ventura-county-so", {"Org Name": "Dallas TX PD"}, ["OUT_OF_STATE_RECIPIENT"], None),
        (
            "ca-ventura-county-so",
            {"Org Name": "Houston Police Department"},
            ["OUT_OF_STATE_RECIPIENT"],
            "tx-houston-pd",
        ),
        # a Flock spelling of a registry name resolves to the registry entry
        (
            "ca-ventura-county-so",
            {"Org Name": "Houston TX PD"},
            ["OUT_OF_STATE_RECIPIENT"],
            "tx-houston-pd",
        ),
        (
            "ca-ventura-county-so",
            {"Org Name": "[Federal] US Border Patrol", "Reason": "ICE warrant"},
            ["FEDERAL_RECIPIENT", "PROHIBITED_PURPOSE_IMMIGRATION"],
            None,
        ),
        (
            "ca-ventura-county-so",
            {"Org Name": "Acme Security LLC"},
            ["PRIVATE_RECIPIENT"],
            "ca-acme-security",
        ),
        (
            "ca-ventura-county-so",
            {"Org Name": "Example Band Tribal Police"},
            ["INELIGIBLE_RECIPIENT"],
            "ca-example-tribal-pd",
        ),
        ("ca-ventura-county-so", {"Org Name": "Task Force Nine"}, ["UNKNOWN_REQUESTER"], None),
        (
            "ca-ventura-county-so",
            {"Org Name": ""},
            ["UNKNOWN_REQUESTER", INCOMPLETE_ACCESS_LOG],
            None,
        ),
        ("ca-ventura-county-so", {"Org Name": "***"}, [], None),  # withheld: not judged
        (
            "ca-ventura-county-so",
            {"Reason": ""},
            ["MISSING_PURPOSE", INCOMPLETE_ACCESS_LOG],
            "ca-ventura-county-so",
        ),
        ("ca-ventura-county-so", {"Reason": "n/a"}, ["MISSING_PURPOSE"], "ca-ventura-county-so"),
        (
            "ca-ventura-county-so",
            {"Reason": "investigation"},
            ["VAGUE_PURPOSE"],
            "ca-ventura-county-so",
        ),
        ("ca-ventura-county-so", {"Reason": "***"}, [], "ca-ventura-county-so"),
        ("ca-ventura-county-so", {"Reason": "REDACTED"}, [], "ca-ventura-county-so"),
        ("ca-ventura-county-so", {"Reason": "7923.600 GC"}, [], "ca-ventura-county-so"),
        # the redacted reason hides nothing from the dropdown value
        (
            "ca-ventura-county-so",
            {"Reason": "***", "Offense Type": "Immigration (criminal)"},
            ["PROHIBITED_PURPOSE_IMMIGRATION"],
            "ca-ventura-county-so",
        ),
        (
            "ca-ventura-county-so",
            {"Reason": "", "Offense Type": "Motor Vehicle Theft/Stolen"},
            [],
            "ca-ventura-county-so",
        ),
        (
            "ca-ventura-county-so",
            {"Reason": "ICE impersonation fraud case 25-1"},
            [],
            "ca-ventura-county-so",
        ),
        (
            "ca-ventura-county-so",
            {"License Plate": "", "Filters": ""},
            [INCOMPLETE_ACCESS_LOG],
            "ca-ventura-county-so",
        ),
        (
            "ca-ventura-county-so",
            {"License Plate": "", "Filters": "make=Toyota"},
            [],
            "ca-ventura-county-so",
        ),
        ("ca-ventura-county-so", {"License Plate": "***"}, [], "ca-ventura-county-so"),
        ("ca-ventura-county-so", {"Name": ""}, [INCOMPLETE_ACCESS_LOG], "ca-ventura-county-so"),
        ("ca-ventura-county-so", {"Name": "REDACTED"}, [], "ca-ventura-county-so"),
        (
            "ca-ventura-county-so",
            {"Search Time": ""},
            [INCOMPLETE_ACCESS_LOG],
            "ca-ventura-county-so",
        ),
        (
            "ca-ventura-county-so",
            {"Total Networks Searched": "3,494"},
            [BROAD_SEARCH],
            "ca-ventura-county-so",
        ),
        ("ca-ventura-county-so", {"Total Networks Searched": "999"}, [], "ca-ventura-county-so"),
        # -- Illinois owner: declarations, immigration and health-care purposes --
        ("il-mount-prospect-pd", {"Org Name": "Dallas TX PD"}, ["NO_DECLARATION_ON_FILE"], None),
        (
            "il-mount-prospect-pd",
            {"Org Name": "Mount Prospect IL PD", "Reason": "abortion clinic visit"},
            ["PROHIBITED_PURPOSE_HEALTH_CARE"],
            "il-mount-prospect-pd",
        ),
        (
            "il-mount-prospect-pd",
            {"Org Name": "Mount Prospect IL PD", "Reason": "investigation"},
            [],
            "il-mount-prospect-pd",
        ),  # Illinois has no documented-purpose rule on file
        # -- Washington owner: protected activity; Virginia owner: 21-day retention --
        (
            "wa-seattle-pd",
            {"Org Name": "Seattle WA PD", "Reason": "protest at city hall"},
            ["PROTECTED_ACTIVITY"],
            "wa-seattle-pd",
        ),
        (
            "va-richmond-pd",
            {"Org Name": "Richmond VA PD", "Time Frame": frame(22)},
            ["RETENTION_EXCEEDED"],
            "va-richmond-pd",
        ),
        (
            "va-richmond-pd",
            {"Org Name": "Richmond VA PD", "Time Frame": frame(20)},
            [],
            "va-richmond-pd",
        ),
        # -- Florida owner: no statute on file, only the baseline and the heuristics --
        (
            "fl-okaloosa-county-so",
            {"Org Name": "Dallas TX PD", "Reason": ""},
            ["MISSING_PURPOSE"],
            None,
        ),
    ],
)
def test_row_codes(
    tmp_path: Path, owner: str, cells: dict[str, str], codes: list[str], agency_id: str | None
) -> None:
    """Each row gets the codes the stream would give the same search on the owner's network."""
    verdict = judged(tmp_path, owner, **cells)
    assert list(verdict.codes) == codes
    assert verdict.agency_id == agency_id


def test_unverified_retention_is_skipped_on_request(tmp_path: Path) -> None:
    """With enforce_unverified off, Virginia's unverified 21-day limit is not applied."""
    rows = [row(**{"Org Name": "Richmond VA PD", "Time Frame": frame(30)})]
    strict = audit_rows(tmp_path, rows, owner="va-richmond-pd")
    lenient = audit_rows(tmp_path, rows, owner="va-richmond-pd", enforce_unverified=False)
    assert strict.code_counts["RETENTION_EXCEEDED"] == 1
    assert lenient.code_counts["RETENTION_EXCEEDED"] == 0


def test_reasons_carry_citation_and_a_detail_without_plates(tmp_path: Path) -> None:
    """Every reason cites the owner's law; no detail repeats the plate or user."""
    verdict = judged(tmp_path, **{"Org Name": "Dallas TX PD", "Reason": "ICE warrant", "Name": ""})
    cites = {r.code: r.citation for r in verdict.reasons}
    assert "1798.90.55" in cites["OUT_OF_STATE_RECIPIENT"]
    assert "7284" in cites["PROHIBITED_PURPOSE_IMMIGRATION"]
    assert cites[INCOMPLETE_ACCESS_LOG] == "Cal. Civ. Code § 1798.90.52(a)"
    detail = next(r.detail for r in verdict.reasons if r.code == INCOMPLETE_ACCESS_LOG)
    assert detail == "the access log lacks user"
    assert all("TEST123" not in r.detail and "Officer" not in r.detail for r in verdict.reasons)


def test_portal_rows_are_the_owners_own_searches(tmp_path: Path) -> None:
    """A portal audit has no org column: requester is the owner, so only purpose is judged."""
    rows = [
        [
            "x-ca-pd",
            "2026-04-19",
            "p1",
            "***",
            "2026-03-20T10:40:35.868Z",
            "304",
            "ICE hold",
            "",
            "",
        ],
        ["x-ca-pd", "2026-04-19", "p2", "***", "2026-03-20T10:41:35.868Z", "2", "", "", ""],
        [
            "x-ca-pd",
            "2026-04-19",
            "p3",
            "",
            "2026-03-21T10:41:35.868Z",
            "2",
            "theft 484 PC",
            "",
            "",
        ],
    ]
    summary = audit_rows(tmp_path, rows, header=PORTAL_CA)
    assert summary.code_counts == {
        "PROHIBITED_PURPOSE_IMMIGRATION": 1,
        "MISSING_PURPOSE": 1,
        INCOMPLETE_ACCESS_LOG: 2,  # p2 lacks a purpose, p3 a user; "***" is not missing
    }
    assert summary.resolved_via == {"owner": 3}
    # The portal has no plate or filter column: not judged per row, said once.
    assert summary.unjudged_log_fields == ("query",)
    assert summary.orgs["Ventura County CA SO"].agency_id == "ca-ventura-county-so"


def test_breadth_thresholds_are_configurable(tmp_path: Path) -> None:
    """--broad-networks moves the bar; devices are flagged only when asked."""
    rows = [row(**{"Total Networks Searched": "600", "Total Devices Searched": "20000"})]
    assert audit_rows(tmp_path, rows).code_counts[BROAD_SEARCH] == 0
    assert (
        audit_rows(tmp_path, rows, config=AuditConfig(broad_networks=500)).code_counts[BROAD_SEARCH]
        == 1
    )
    assert (
        audit_rows(tmp_path, rows, config=AuditConfig(broad_devices=15000)).code_counts[
            BROAD_SEARCH
        ]
        == 1
    )
    assert (
        audit_rows(tmp_path, rows, config=AuditConfig(broad_networks=None)).code_counts[
            BROAD_SEARCH
        ]
        == 0
    )


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


def test_malformed_rows_are_counted_and_the_audit_goes_on(tmp_path: Path) -> None:
    """Bad cells add SCHEMA_INVALID and a line; a short row is not judged; later rows are."""
    path = tmp_path / "export.csv"
    write_csv(path, HEADER, [row(ID="a"), row(ID="b", **{"Search Time": "someday"})])
    with path.open("a", encoding="utf-8") as handle:
        handle.write("c,too,short\n")
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.write(",".join(f'"{c}"' for c in row(ID="d", **{"Org Name": "Dallas TX PD"})) + "\n")
    with ExportFile(path) as export:
        auditor = Auditor(
            load_statutes(),
            BY_ID["ca-ventura-county-so"],
            OrgResolver(AGENCIES),
            export.layout,
            AuditConfig(),
        )
        verdicts = [auditor.judge(r) for r in export]
    assert [v.id for v in verdicts] == ["a", "b", "c", "d"]
    assert verdicts[1].codes == ("SCHEMA_INVALID",)
    assert verdicts[1].problems == ("Search Time is not a date and time",)
    assert verdicts[2].malformed and verdicts[2].codes == ("SCHEMA_INVALID",)
    assert verdicts[3].codes == ("OUT_OF_STATE_RECIPIENT",)
    # Lines: header 1, row a 2-3, row b 4-5 (multi-line Time Frame), short row 6, row d 7.
    assert [v.line for v in verdicts] == [2, 4, 6, 7]


def test_summary_tables_stay_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the table limits, new organizations, names and days pool under (other)."""
    monkeypatch.setattr(audit_summary, "_ORG_LIMIT", 3)
    monkeypatch.setattr(audit_summary, "_UNRESOLVED_LIMIT", 2)
    monkeypatch.setattr(audit_summary, "_DAY_LIMIT", 1)
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


def test_jsonl_line_shape(tmp_path: Path) -> None:
    """The CONTRACT 5 keys come first, in order, with the extra fields after them."""
    verdict = judged(tmp_path, **{"Org Name": "Dallas TX PD"})
    line = verdict.as_json()
    assert list(line)[:5] == ["row", "id", "org", "agency_id", "codes"]
    assert line["row"] == 1 and line["id"] == "id-1" and line["org"] == "Dallas TX PD"
    assert line["agency_id"] is None and line["codes"] == ["OUT_OF_STATE_RECIPIENT"]
    assert line["requester_state"] == "TX" and line["resolved_via"] == "state"


@pytest.mark.parametrize(
    ("requester", "categories", "asked_days", "expected"),
    [
        (None, (), None, ["UNKNOWN_REQUESTER"]),
        ("tx-houston-pd", ("missing",), None, ["OUT_OF_STATE_RECIPIENT", "MISSING_PURPOSE"]),
        (
            "ca-oxnard-pd",
            ("immigration", "vague"),
            None,
            ["PROHIBITED_PURPOSE_IMMIGRATION", "VAGUE_PURPOSE"],
        ),
        ("ca-oxnard-pd", None, None, []),  # purpose withheld: not judged
        ("ca-oxnard-pd", ("health_care",), None, []),  # California has no health-care rule on file
    ],
)
def test_access_reasons_helper(
    requester: str | None,
    categories: tuple[str, ...] | None,
    asked_days: float | None,
    expected: list[str],
) -> None:
    """The shared helper: recipient law, purpose codes and retention for one access."""
    book = load_statutes()
    owner = BY_ID["ca-ventura-county-so"]
    found = access_reasons(
        book,
        book.rule_for("CA"),
        owner,
        BY_ID[requester] if requester else None,
        categories,
        None,
        None,
    )
    assert [r.code for r in found] == expected
    assert all(r.agency_id == owner.agency_id for r in found)


def test_access_reasons_retention_boundary() -> None:
    """Exactly at the limit is lawful; one second further back is not."""
    book = load_statutes()
    owner = BY_ID["va-richmond-pd"]
    rule = book.rule_for("VA")
    at = 1_000_000_000.0
    limit = 21 * 86_400.0
    assert access_reasons(book, rule, owner, owner, (), at - limit, at) == []
    late = access_reasons(book, rule, owner, owner, (), at - limit - 1, at)
    assert [r.code for r in late] == ["RETENTION_EXCEEDED"]
    assert "not proof" in late[0].detail
