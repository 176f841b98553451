"""Export layouts: detection from the header, row parsing, redactions, drift and broken rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamguard.core.timeutil import parse_ts
from streamguard.exceptions import InputFileError
from streamguard.exports.layouts import (
    FLOCK_AUDIT,
    PORTAL_SEARCH_AUDIT,
    ExportFile,
    ExportRow,
    Layout,
    MalformedRow,
    Presence,
    detect_layout,
    is_redacted,
    parse_export_time,
)
from tests.unit.exports.samples import (
    FEDERAL_SEARCHES,
    NETWORK_2024,
    NETWORK_2026,
    ORG_BLOG,
    ORG_UNDERSCORE,
    PORTAL_CA,
    PORTAL_EUGENE,
    write_csv,
)


def read_all(path: Path) -> tuple[Layout, list[ExportRow | MalformedRow]]:
    with ExportFile(path) as export:
        return export.layout, list(export)


def ok(row: ExportRow | MalformedRow) -> ExportRow:
    assert isinstance(row, ExportRow), row
    return row


@pytest.mark.parametrize(
    ("header", "kind", "has_org_column"),
    [
        (NETWORK_2024, FLOCK_AUDIT, True),  # 14 columns, 2024-2025 era
        (NETWORK_2026, FLOCK_AUDIT, True),  # Moderation, Text Prompt, Devices dropped
        (FEDERAL_SEARCHES, FLOCK_AUDIT, True),  # no Time Frame at all
        (ORG_UNDERSCORE, FLOCK_AUDIT, True),  # underscores, split Time Frame
        (ORG_BLOG, FLOCK_AUDIT, False),  # organization audit without Org Name or ID
        ([h.upper() for h in NETWORK_2026], FLOCK_AUDIT, True),  # shouting header
        (PORTAL_EUGENE, PORTAL_SEARCH_AUDIT, False),
        (PORTAL_CA, PORTAL_SEARCH_AUDIT, False),  # extra archive columns are ignored
        (
            ["\ufeffid", "userId", "searchDate", "networkCount", "reason"],
            PORTAL_SEARCH_AUDIT,
            False,
        ),
    ],
)
def test_known_layouts_are_told_apart_by_header(
    header: list[str], kind: str, has_org_column: bool
) -> None:
    """Every real header variant maps to its family, with or without an organization column."""
    layout = detect_layout(header)
    assert isinstance(layout, Layout), layout
    assert layout.kind == kind
    assert layout.org_implied is not has_org_column


@pytest.mark.parametrize(
    "header",
    [
        ["agency_id", "name", "state", "kind"],  # an agencies file given by mistake
        ["Timestamp", "User", "Event Type", "Entity Type", "Entity Details"],  # Flock event log
        ["Organization Name", "Networks Shared With Me", "Networks I'm Sharing"],  # sharing list
        ["ID", "Name", "Total Networks Searched"],  # Flock-like but no search time
        ["id", "searchDate", "networkCount", "Total Networks Searched", "Search Time"],  # mixed
    ],
)
def test_unknown_headers_are_refused_with_a_reason(header: list[str]) -> None:
    """A header of no known layout is refused with a sentence, never guessed."""
    assert isinstance(detect_layout(header), str)


@pytest.mark.parametrize(
    ("cell", "redacted"),
    [
        ("***", True),
        ("*****", True),
        ("REDACTED", True),
        ("[redacted]", True),
        ("###", True),
        ("7923.600 GC", True),
        ("Exempt - 7923.600 GC", True),
        ("Gov Code 7923.600(a)", True),
        ("", False),
        ("n/a", False),  # a placeholder reason, judged as missing, not as redacted
        ("-", False),
        ("burglary 459 PC", False),
        ("stolen vehicle", False),
        ("#1 suspect", False),
    ],
)
def test_redaction_markers(cell: str, redacted: bool) -> None:
    """Redaction markers of docs/law.md count as redacted; placeholders and real text do not."""
    assert is_redacted(cell) is redacted


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("11/14/2025, 09:53:36 AM UTC", "2025-11-14T09:53:36Z"),
        ("11/14/2025, 12:00:14 AM UTC", "2025-11-14T00:00:14Z"),  # 12 AM is midnight
        ("11/14/2025, 12:00:14 PM UTC", "2025-11-14T12:00:14Z"),
        ("4/10/2026, 5:01:33 PM UTC", "2026-04-10T17:01:33Z"),
        ("04/10/2026 17:01", "2026-04-10T17:01:00Z"),
        ("2026-03-20T00:06:23.972Z", "2026-03-20T00:06:23.972Z"),
        ("2025-06-18 00:02:04.789", "2025-06-18T00:02:04.789Z"),  # Eugene: space, no zone
    ],
)
def test_export_timestamps(text: str, iso: str) -> None:
    """Flock and portal timestamp spellings all read as UTC."""
    assert parse_export_time(text) == parse_ts(iso)


@pytest.mark.parametrize(
    "text", ["13/40/2025, 10:00:00 AM UTC", "yesterday", "11/14/2025, 13:00 PM"]
)
def test_bad_timestamps_are_none(text: str) -> None:
    """Impossible dates are rejected rather than rolled over."""
    assert parse_export_time(text) is None


def network_row(**cells: str) -> list[str]:
    values = {
        "ID": "5f0c-1",
        "Name": "Officer A",
        "Org Name": "Houston TX PD",
        "Total Networks Searched": "1,103",
        "Total Devices Searched": "15737",
        "Time Frame": "11/13/2025, 10:00:17 PM UTC\n11/14/2025, 10:00:17 AM UTC",
        "License Plate": "TEST123",
        "Reason": "burglary 459 PC",
        "Case #": "25-000123",
        "Filters": "",
        "Search Time": "11/14/2025, 09:53:36 AM UTC",
        "Search Type": "lookup",
        "Text Prompt": "",
        "Moderation": "",
    }
    values.update(cells)
    return [values[h] for h in NETWORK_2024]


def test_network_audit_row_with_multiline_time_frame(tmp_path: Path) -> None:
    """A 2024 network audit row: counts with separators, a two-line Time Frame, line numbers."""
    path = write_csv(tmp_path / "a.csv", NETWORK_2024, [network_row(), network_row(ID="5f0c-2")])
    layout, rows = read_all(path)
    assert layout.kind == FLOCK_AUDIT
    first, second = ok(rows[0]), ok(rows[1])
    assert first.id == "5f0c-1" and first.org == "Houston TX PD"
    assert first.networks == 1103 and first.devices == 15737
    assert first.frame_start == parse_ts("2025-11-13T22:00:17Z")
    assert first.frame_end == parse_ts("2025-11-14T10:00:17Z")
    assert first.search_time == parse_ts("2025-11-14T09:53:36Z")
    assert (first.row, first.line) == (1, 2)
    # The multi-line cell of row 1 spans lines 2-3, so row 2 starts on line 4.
    assert (second.row, second.line) == (2, 4)
    assert first.query is Presence.PRESENT and first.user is Presence.PRESENT
    assert first.problems == ()


def test_row_keeps_no_plate(tmp_path: Path) -> None:
    """Plate, filters, prompt and user name are reduced to presence; their text is not kept."""
    path = write_csv(tmp_path / "a.csv", NETWORK_2024, [network_row()])
    _, rows = read_all(path)
    assert "TEST123" not in repr(rows[0])
    assert "Officer A" not in repr(rows[0])


@pytest.mark.parametrize(
    ("cells", "field", "presence"),
    [
        ({"License Plate": "", "Filters": ""}, "query", Presence.EMPTY),
        ({"License Plate": "", "Filters": "make=Toyota"}, "query", Presence.PRESENT),
        ({"License Plate": "", "Text Prompt": "red pickup"}, "query", Presence.PRESENT),
        ({"License Plate": "***", "Filters": ""}, "query", Presence.REDACTED),
        ({"Name": ""}, "user", Presence.EMPTY),
        ({"Name": "REDACTED"}, "user", Presence.REDACTED),
        ({"Org Name": ""}, "organization", Presence.EMPTY),
        ({"Reason": ""}, "purpose", Presence.EMPTY),
        ({"Reason": "###"}, "purpose", Presence.REDACTED),
        ({"Search Time": ""}, "date_time", Presence.EMPTY),
        ({"Case #": "7923.600 GC"}, "case_number", Presence.REDACTED),
    ],
)
def test_presence_of_access_log_fields(
    tmp_path: Path, cells: dict[str, str], field: str, presence: Presence
) -> None:
    """Blank cells are empty, marker cells are redacted, anything else is present."""
    path = write_csv(tmp_path / "a.csv", NETWORK_2024, [network_row(**cells)])
    _, rows = read_all(path)
    assert getattr(ok(rows[0]), field) is presence


def test_dropped_columns_are_absent_not_empty(tmp_path: Path) -> None:
    """The okaloosa-style org audit has no Name or plate column: absent, not missing."""
    row = [
        "id-1",
        "Okaloosa County FL SO",
        "840",
        "17652",
        "11/13/2025, 10:00:17 PM UTC",
        "11/14/2025, 10:00:17 AM UTC",
        "bolo",
        "11/14/2025, 09:53:36 AM UTC",
        "lookup",
        "",
    ]
    _, rows = read_all(write_csv(tmp_path / "o.csv", ORG_UNDERSCORE, [row]))
    parsed = ok(rows[0])
    assert parsed.user is Presence.ABSENT and parsed.query is Presence.ABSENT
    assert parsed.frame_start == parse_ts("2025-11-13T22:00:17Z")
    assert parsed.reason == "bolo"


def test_portal_layouts_with_bom_crlf_and_quotes(tmp_path: Path) -> None:
    """Eugene-style quoted rows and CA-archive CRLF rows with a BOM both parse."""
    eugene = write_csv(
        tmp_path / "e.csv",
        PORTAL_EUGENE,
        [["a1", "u-1", "2025-06-18 00:02:04.789", "2510", "investigation"]],
        quote_all=True,
    )
    layout, rows = read_all(eugene)
    assert layout.kind == PORTAL_SEARCH_AUDIT
    row = ok(rows[0])
    assert row.devices == 2510 and row.networks is None
    assert row.search_time == parse_ts("2025-06-18T00:02:04.789Z")
    assert row.organization is Presence.PRESENT  # implied: the portal owner's own users

    ca = write_csv(
        tmp_path / "c.csv",
        PORTAL_CA,
        [
            [
                "x-ca-pd",
                "2026-04-19",
                "b1",
                "***",
                "2026-03-20T10:40:35.868Z",
                "304",
                "",
                "Motor Vehicle Theft/Stolen",
                "",
            ]
        ],
        bom=True,
        crlf=True,
    )
    layout, rows = read_all(ca)
    row = ok(rows[0])
    assert layout.header[0] == "portal_slug"
    assert row.networks == 304 and row.user is Presence.REDACTED
    assert row.offense_type == "Motor Vehicle Theft/Stolen" and row.purpose is Presence.PRESENT
    assert (row.row, row.line) == (1, 2)


@pytest.mark.parametrize(
    ("cells", "problem"),
    [
        ({"Search Time": "31/31/2025, 10:00:00 AM UTC"}, "Search Time is not a date and time"),
        ({"Total Networks Searched": "many"}, "network count is not a whole number"),
        ({"Total Devices Searched": "-4"}, "device count is not a whole number"),
        ({"Time Frame": "last week"}, "Time Frame does not hold a start and an end time"),
    ],
)
def test_bad_cells_are_problems_and_the_row_is_still_read(
    tmp_path: Path, cells: dict[str, str], problem: str
) -> None:
    """A bad date or number is reported on the row; the other cells are still parsed."""
    path = write_csv(tmp_path / "a.csv", NETWORK_2024, [network_row(**cells)])
    _, rows = read_all(path)
    row = ok(rows[0])
    assert row.problems == (problem,)
    assert row.org == "Houston TX PD"


def test_wrong_column_count_is_malformed_and_reading_goes_on(tmp_path: Path) -> None:
    """A short row is malformed with its line; blank lines and trailing blank cells are fine."""
    path = tmp_path / "a.csv"
    path.write_text(
        "id,userId,searchDate,networkCount,reason\n"
        "a1,u,2026-03-20T00:00:00Z,3,theft\n"
        "\n"
        "a2,u,2026-03-20T00:00:00Z\n"
        "a3,u,2026-03-20T00:00:00Z,3,theft,,\n"
        "a4,u,2026-03-20T00:00:00Z,3,theft,extra\n",
        encoding="utf-8",
    )
    _, rows = read_all(path)
    assert [type(r).__name__ for r in rows] == [
        "ExportRow",
        "MalformedRow",
        "ExportRow",
        "MalformedRow",
    ]
    assert [(r.row, r.line) for r in rows] == [(1, 2), (2, 4), (3, 5), (4, 6)]
    bad = rows[1]
    assert isinstance(bad, MalformedRow)
    assert bad.id == "a2" and bad.detail == "has 3 columns, the header has 5"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b"agency_id,name,state,kind\nx,y,CA,local\n", "is not a Flock audit export"),
        (b"PK\x03\x04\x14\x00binary xlsx", "is not a Flock audit export"),
    ],
)
def test_unusable_files_raise_one_line_errors(tmp_path: Path, content: bytes, message: str) -> None:
    """Empty, foreign or binary files are refused with one line naming the file."""
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(InputFileError) as caught:
        ExportFile(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    """A path that does not exist is an InputFileError, not a traceback."""
    with pytest.raises(InputFileError, match="cannot read export"):
        ExportFile(tmp_path / "nope.csv")


def portal_row(slug: str, rid: str) -> list[str]:
    return [slug, "2026-04-19", rid, "***", "2026-03-20T00:06:23.972Z", "3", "theft", "", ""]


def test_a_sharing_list_is_refused_with_the_command_that_reads_it() -> None:
    found = detect_layout(
        ["Page", "Organization Name", "Networks Shared With Me", "Networks I'm Sharing"]
    )
    assert isinstance(found, str)
    assert "sharing list" in found and "streamguard audit-sharing" in found


def test_a_multi_portal_archive_is_refused_naming_its_portals(tmp_path: Path) -> None:
    rows = [portal_row(f"city{i}-ca-pd", f"r{i}") for i in range(7)]
    path = write_csv(tmp_path / "archive.csv", PORTAL_CA, rows)
    with pytest.raises(InputFileError) as caught:
        ExportFile(path)
    message = str(caught.value)
    assert "archive of 7 portals" in message and "--portal SLUG" in message
    assert "city0-ca-pd, city1-ca-pd, city2-ca-pd, city3-ca-pd, city4-ca-pd and 2 more" in message
    assert "\n" not in message


def test_one_portal_of_an_archive_keeps_the_files_row_numbers(tmp_path: Path) -> None:
    rows = [portal_row("a-ca-pd", "a1"), portal_row("b-ca-pd", "b1"), portal_row("a-ca-pd", "a2")]
    path = write_csv(tmp_path / "archive.csv", PORTAL_CA, rows)
    with ExportFile(path, portal="a-ca-pd") as export:
        read = [ok(r) for r in export]
        assert export.skipped == 1 and export.portals == {"a-ca-pd": 2, "b-ca-pd": 1}
    assert [(r.id, r.row, r.line, r.portal) for r in read] == [
        ("a1", 1, 2, "a-ca-pd"),
        ("a2", 3, 4, "a-ca-pd"),
    ]


def test_a_single_portal_archive_needs_no_portal_option(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "one.csv", PORTAL_CA, [portal_row("a-ca-pd", "a1")])
    _, rows = read_all(path)
    assert [ok(r).portal for r in rows] == ["a-ca-pd"]


@pytest.mark.parametrize(
    ("header", "portal", "fragment"),
    [
        (PORTAL_CA, "nowhere-ca-pd", "has no rows of portal 'nowhere-ca-pd'; it holds a-ca-pd"),
        (PORTAL_EUGENE, "a-ca-pd", "has no portal_slug column; --portal does not apply"),
    ],
)
def test_a_portal_that_is_not_there_is_an_error(
    tmp_path: Path, header: list[str], portal: str, fragment: str
) -> None:
    cells = (
        portal_row("a-ca-pd", "a1") if header is PORTAL_CA else ["e1", "u", "2025-06-18", "3", "x"]
    )
    path = write_csv(tmp_path / "x.csv", header, [cells])
    with pytest.raises(InputFileError, match=re.escape(fragment)):
        ExportFile(path, portal=portal)


def test_the_user_cell_is_kept_only_on_request(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "n.csv", NETWORK_2024, [network_row()])
    with ExportFile(path) as export:
        assert ok(next(iter(export))).user_name is None
    with ExportFile(path, keep_user=True) as export:
        assert ok(next(iter(export))).user_name == "Officer A"
