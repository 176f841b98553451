"""Judging export rows against the owner's law: codes, citations, details, JSON lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamguard.core.statutes import load_statutes
from streamguard.exports.judge import (
    BROAD_SEARCH,
    INCOMPLETE_ACCESS_LOG,
    AuditConfig,
    RowVerdict,
    access_reasons,
    missing_purpose_citation,
)
from streamguard.exports.layouts import ExportFile
from tests.unit.exports.samples import (
    BY_ID,
    HEADER,
    PORTAL_CA,
    SEARCH_TIME,
    audit_rows,
    auditor_for,
    row,
    write_csv,
)


def judged(tmp_path: Path, owner: str = "ca-ventura-county-so", **cells: str) -> RowVerdict:
    path = write_csv(tmp_path / "one.csv", HEADER, [row(**cells)])
    with ExportFile(path) as export:
        return auditor_for(export.layout, owner).judge(next(iter(export)))


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


def test_malformed_rows_are_counted_and_the_audit_goes_on(tmp_path: Path) -> None:
    """Bad cells add SCHEMA_INVALID and a line; a short row is not judged; later rows are."""
    path = tmp_path / "export.csv"
    write_csv(path, HEADER, [row(ID="a"), row(ID="b", **{"Search Time": "someday"})])
    with path.open("a", encoding="utf-8") as handle:
        handle.write("c,too,short\n")
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.write(",".join(f'"{c}"' for c in row(ID="d", **{"Org Name": "Dallas TX PD"})) + "\n")
    with ExportFile(path) as export:
        auditor = auditor_for(export.layout)
        verdicts = [auditor.judge(r) for r in export]
    assert [v.id for v in verdicts] == ["a", "b", "c", "d"]
    assert verdicts[1].codes == ("SCHEMA_INVALID",)
    assert verdicts[1].problems == ("Search Time is not a date and time",)
    assert verdicts[2].malformed and verdicts[2].codes == ("SCHEMA_INVALID",)
    assert verdicts[3].codes == ("OUT_OF_STATE_RECIPIENT",)
    # Lines: header 1, row a 2-3, row b 4-5 (multi-line Time Frame), short row 6, row d 7.
    assert [v.line for v in verdicts] == [2, 4, 6, 7]


def test_jsonl_line_shape(tmp_path: Path) -> None:
    """The keys of docs/contract.md section 5 come first, in order, then the extra fields."""
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


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("CA", "Cal. Civ. Code § 1798.90.52(a)(4), (b)"),  # CA's own documented-purpose rule
        # its access log
        ("WA", "Wash. ESSB 6002, Laws of 2026 ch. 239: logs of all data access [unverified]"),
        # a justification for every search (SB 1516, 2026)
        (
            "OR",
            "Or. SB 1516 (2026), ALPR sections: every search recorded with its justification"
            " [unverified]",
        ),
        ("FL", "StreamGuard baseline: an access without a stated purpose cannot be audited"),
        # a statute on file, but no purpose rule in it
        ("GA", "StreamGuard baseline: an access without a stated purpose cannot be audited"),
    ],
)
def test_missing_purpose_cites_the_owners_own_state(state: str, expected: str) -> None:
    """MISSING_PURPOSE cites the owner's state's provision, else the baseline by name only."""
    book = load_statutes()
    assert missing_purpose_citation(book, book.rule_for(state)) == expected


def test_missing_purpose_reason_of_a_florida_owner_cites_no_california_code(
    tmp_path: Path,
) -> None:
    verdict = judged(tmp_path, "fl-okaloosa-county-so", Reason="", **{"Org Name": "Dallas TX PD"})
    cited = {r.code: r.citation for r in verdict.reasons}
    assert "Cal." not in cited["MISSING_PURPOSE"]
    assert cited["MISSING_PURPOSE"].startswith("StreamGuard baseline")


def test_owner_rows_resolve_as_owner_and_keep_search_time_and_counts(tmp_path: Path) -> None:
    verdict = judged(tmp_path)  # the default row is Ventura's own search
    assert verdict.resolution is not None and verdict.resolution.via == "owner"
    line = verdict.as_json()
    assert line["search_time"] == "2025-11-14T09:53:36Z"
    assert (line["networks"], line["devices"]) == (12, 300)
    assert verdict.user is None and verdict.purpose is None  # not asked for: not kept


def test_user_and_reason_are_kept_only_when_asked_and_never_in_json(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "one.csv", HEADER, [row(**{"Offense Type": "Theft"})])
    with ExportFile(path, keep_user=True) as export:
        auditor = auditor_for(export.layout, config=AuditConfig(show_reasons=True))
        verdict = auditor.judge(next(iter(export)))
    assert verdict.user == "Officer A"
    assert verdict.purpose == "Theft - burglary 459 PC"
    text = str(verdict.as_json())
    assert "Officer A" not in text and "burglary 459 PC" not in text
