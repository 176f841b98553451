"""`streamguard audit` end to end: synthetic exports and registries in tmp files, real process."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streamguard.exports.cli import main_audit
from tests.unit.exports.samples import (
    NETWORK_2026,
    ORG_UNDERSCORE,
    PORTAL_CA,
    PORTAL_EUGENE,
    run_streamguard,
    write_csv,
)

PLATE = "ZZTEST9"
AGENCIES_CSV = (
    "agency_id,name,state,kind,aliases\n"
    "ca-ventura-county-so,Ventura County Sheriff's Office,CA,county,Ventura County CA SO\n"
    "ca-oxnard-pd,Oxnard Police Department,CA,local,\n"
    "or-eugene-pd,Eugene Police Department,OR,local,Eugene OR PD\n"
    "fl-okaloosa-county-so,Okaloosa County FL SO,FL,county,\n"
)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_streamguard("audit", *args)


def network_row(
    rid: str, org: str, reason: str, when: str = "11/14/2025, 09:53:36 AM UTC", networks: str = "12"
) -> list[str]:
    frame = "11/13/2025, 09:53:36 AM UTC\n11/14/2025, 09:53:36 AM UTC"
    return [rid, "Officer A", org, networks, frame, PLATE, reason, "25-1", "", when, "lookup"]


@pytest.fixture
def agencies(tmp_path: Path) -> Path:
    path = tmp_path / "agencies.csv"
    path.write_text(AGENCIES_CSV, encoding="utf-8")
    return path


@pytest.fixture
def network_export(tmp_path: Path) -> Path:
    """A CA owner's network audit: own, in-state, out-of-state, federal, unknown, broad, bad."""
    rows = [
        network_row("r1", "Ventura County CA SO", "burglary 459 PC"),
        network_row("r2", "Oxnard Police Department", "investigation"),
        network_row("r3", "Dallas TX PD", "stolen vehicle"),
        network_row(
            "r4", "[Federal] HSI Field Office", "ICE removal", "11/15/2025, 01:00:00 PM UTC"
        ),
        network_row("r5", "Regional Unit 7", ""),
        network_row("r6", "Regional Unit 7", "***", networks="3,494"),
        network_row("r7", "Dallas TX PD", "theft", "13/45/2025, 01:00:00 PM UTC"),
    ]
    return write_csv(tmp_path / "network.csv", NETWORK_2026, rows, bom=True, crlf=True)


def test_summary_on_stdout(network_export: Path, agencies: Path) -> None:
    """The summary counts rows, findings, codes, orgs, days, worst rows and unresolved names."""
    result = run(network_export, "--agencies", agencies, "--owner", "ca-ventura-county-so")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "rows:    7   with findings: 6 (85.7%)   malformed: 1" in out
    for code in (
        "OUT_OF_STATE_RECIPIENT",
        "FEDERAL_RECIPIENT",
        "PROHIBITED_PURPOSE_IMMIGRATION",
        "UNKNOWN_REQUESTER",
        "MISSING_PURPOSE",
        "VAGUE_PURPOSE",
        "BROAD_SEARCH",
        "INCOMPLETE_ACCESS_LOG",
        "SCHEMA_INVALID",
    ):
        assert code in out
    assert "Unresolved organization names: 1 on 2 rows" in out
    assert re.search(r"^  Regional Unit 7 +2$", out, re.MULTILINE)  # the name with its rows
    assert "2025-11-14" in out and "2025-11-15" in out
    assert "Worst rows" in out and "r4" in out
    assert "line 14: Search Time is not a date and time" in out
    assert PLATE not in out and "Officer A" not in out
    # The malformed row is also reported on stderr with its line, and the audit went on.
    assert "line 14 (row 7): Search Time is not a date and time" in result.stderr


def test_jsonl_one_line_per_row(network_export: Path, agencies: Path, tmp_path: Path) -> None:
    """--out writes one JSON object per input row with the keys of docs/contract.md section 5."""
    out = tmp_path / "rows.jsonl"
    result = run(
        network_export, "--agencies", agencies, "--owner", "ca-ventura-county-so", "--out", out
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [line["row"] for line in lines] == [1, 2, 3, 4, 5, 6, 7]
    assert [line["id"] for line in lines] == ["r1", "r2", "r3", "r4", "r5", "r6", "r7"]
    by_id = {line["id"]: line for line in lines}
    assert by_id["r1"]["codes"] == [] and by_id["r1"]["agency_id"] == "ca-ventura-county-so"
    assert by_id["r2"] == by_id["r2"] | {"agency_id": "ca-oxnard-pd", "codes": ["VAGUE_PURPOSE"]}
    assert by_id["r3"]["agency_id"] is None and by_id["r3"]["codes"] == ["OUT_OF_STATE_RECIPIENT"]
    assert by_id["r4"]["codes"] == ["FEDERAL_RECIPIENT", "PROHIBITED_PURPOSE_IMMIGRATION"]
    assert by_id["r5"]["codes"] == ["UNKNOWN_REQUESTER", "MISSING_PURPOSE", "INCOMPLETE_ACCESS_LOG"]
    assert by_id["r6"]["codes"] == ["UNKNOWN_REQUESTER", "BROAD_SEARCH"]  # "***" is not missing
    assert by_id["r7"]["codes"] == ["OUT_OF_STATE_RECIPIENT", "SCHEMA_INVALID"]
    assert by_id["r7"]["line"] == 14
    assert PLATE not in out.read_text("utf-8")


def test_html_report_is_offline(network_export: Path, agencies: Path, tmp_path: Path) -> None:
    """--html writes one self-contained page with inline SVG charts and no script or URL."""
    html = tmp_path / "report.html"
    result = run(
        network_export, "--agencies", agencies, "--owner", "ca-ventura-county-so", "--html", html
    )
    assert result.returncode == 0, result.stderr
    page = html.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") >= 3
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "Dallas TX PD" in page and "PROHIBITED_PURPOSE_IMMIGRATION" in page
    assert "[Federal] HSI Field Office" in page
    assert PLATE not in page


def test_org_audit_and_portal_layouts(agencies: Path, tmp_path: Path) -> None:
    """An underscore org audit and a quoted portal audit both run; rows are the owner's own."""
    org = write_csv(
        tmp_path / "org.csv",
        ORG_UNDERSCORE,
        [
            [
                "o1",
                "Okaloosa County FL SO",
                "840",
                "17652",
                "11/13/2025, 10:00:17 PM UTC",
                "11/14/2025, 10:00:17 AM UTC",
                "bolo",
                "11/14/2025, 09:53:36 AM UTC",
                "lookup",
                "",
            ],
            [
                "o2",
                "Okaloosa County FL SO",
                "6601",
                "96316",
                "11/07/2025, 12:30:37 PM UTC",
                "11/14/2025, 12:30:37 PM UTC",
                "",
                "11/14/2025, 12:13:45 PM UTC",
                "lookup",
                "allow",
            ],
        ],
    )
    result = run(org, "--agencies", agencies, "--owner", "fl-okaloosa-county-so")
    assert result.returncode == 0, result.stderr
    assert "rows:    2   with findings: 1 (50.0%)" in result.stdout
    assert "MISSING_PURPOSE" in result.stdout and "BROAD_SEARCH" in result.stdout

    portal = write_csv(
        tmp_path / "portal.csv",
        PORTAL_EUGENE,
        [
            ["e1", "u-1", "2025-06-18 00:02:04.789", "2510", "investigation"],
            ["e2", "u-2", "2025-06-18 00:09:13.397", "94", ""],
        ],
        quote_all=True,
    )
    out = tmp_path / "p.jsonl"
    result = run(
        portal,
        "--agencies",
        agencies,
        "--owner",
        "or-eugene-pd",
        "--out",
        out,
        "--broad-devices",
        "2000",
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [line["agency_id"] for line in lines] == ["or-eugene-pd", "or-eugene-pd"]
    assert [line["org"] for line in lines] == [None, None]
    # Oregon SB 1516 (2026) wants a justification for every search: "investigation" is none.
    assert lines[0]["codes"] == ["VAGUE_PURPOSE", "BROAD_SEARCH"]
    assert lines[1]["codes"] == ["MISSING_PURPOSE"]
    assert "no organization column" in result.stdout
    # Oregon limits retention, but a portal audit has no Time Frame: said, not guessed.
    assert "RETENTION_EXCEEDED: the owner's law limits retention" in result.stdout


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("agency_id,name,state,kind\nx,y,CA,local\n", "is not a Flock audit export"),
        ("", "is empty"),
    ],
)
def test_unknown_layout_is_a_one_line_error(
    agencies: Path, tmp_path: Path, content: str, fragment: str
) -> None:
    """A file of no known layout exits non-zero with exactly one line on stderr."""
    export = tmp_path / "x.csv"
    export.write_text(content, encoding="utf-8")
    result = run(export, "--agencies", agencies, "--owner", "ca-ventura-county-so")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and fragment in result.stderr
    assert result.stderr.startswith("streamguard audit: error: ")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("agencies_text", "owner", "fragment"),
    [
        ("agency_id,name\nx,y\n", "x", "lacks column(s) state, kind"),
        ("agency_id,name,state,kind\nx,y,ZZ,local\n", "x", "is not a two-letter US code"),
        (AGENCIES_CSV, "nobody", "owner 'nobody' is not in agencies file"),
    ],
)
def test_bad_agencies_file_or_owner_is_a_one_line_error(
    network_export: Path, tmp_path: Path, agencies_text: str, owner: str, fragment: str
) -> None:
    """A broken registry, or an owner missing from it, is one line and a non-zero exit."""
    path = tmp_path / "bad_agencies.csv"
    path.write_text(agencies_text, encoding="utf-8")
    result = run(network_export, "--agencies", path, "--owner", owner)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and fragment in result.stderr


def test_missing_files_and_unwritable_output(
    network_export: Path, agencies: Path, tmp_path: Path
) -> None:
    """Unreadable inputs and unwritable outputs are one-line errors too."""
    result = run(tmp_path / "none.csv", "--agencies", agencies, "--owner", "ca-ventura-county-so")
    assert result.returncode == 2 and "cannot read export" in result.stderr
    result = run(network_export, "--agencies", tmp_path / "none.csv", "--owner", "x")
    assert result.returncode == 2 and "cannot read agencies file" in result.stderr
    result = run(
        network_export,
        "--agencies",
        agencies,
        "--owner",
        "ca-ventura-county-so",
        "--out",
        tmp_path / "no-such-dir" / "rows.jsonl",
    )
    assert result.returncode == 2 and "cannot write JSONL output" in result.stderr
    assert result.stderr.count("\n") == 1


def test_in_process_entry_point(
    network_export: Path, agencies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """main_audit returns the exit code instead of exiting, for cli.py to call."""
    assert (
        main_audit(
            [
                str(network_export),
                "--agencies",
                str(agencies),
                "--owner",
                "ca-ventura-county-so",
                "--top",
                "3",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "top 3 by rows with findings" in out


def test_owner_state_needs_no_registry(network_export: Path, tmp_path: Path) -> None:
    """--owner-state alone: names are resolved from the state and [Federal] marker they carry."""
    out = tmp_path / "rows.jsonl"
    result = run(
        network_export, "--owner-state", "CA", "--owner", "Ventura County CA SO", "--out", out
    )
    assert result.returncode == 0, result.stderr
    by_id = {line["id"]: line for line in map(json.loads, out.read_text("utf-8").splitlines())}
    assert by_id["r1"]["resolved_via"] == "owner" and by_id["r1"]["codes"] == []
    assert by_id["r3"]["codes"] == ["OUT_OF_STATE_RECIPIENT"]
    assert by_id["r4"]["resolved_via"] == "federal"
    assert "FEDERAL_RECIPIENT" in by_id["r4"]["codes"]
    # Oxnard has no state in its name: without a registry it is unresolved, and says so.
    assert by_id["r2"]["codes"][0] == "UNKNOWN_REQUESTER"
    assert "owner:   Ventura County CA SO (Ventura County CA SO, CA)" in result.stdout


def test_no_owner_at_all_is_a_one_line_error(network_export: Path) -> None:
    result = run(network_export)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--agencies AGENCIES.csv --owner ID, or --owner-state ST" in result.stderr


def portal_archive(tmp_path: Path) -> Path:
    rows = [
        [slug, "2026-04-19", f"{slug}-{i}", "***", "2026-03-20T00:06:23.972Z", "3", reason, "", ""]
        for i, (slug, reason) in enumerate(
            [("alpha-ca-pd", "theft 484 PC"), ("beta-ca-pd", ""), ("alpha-ca-pd", "")]
        )
    ]
    return write_csv(tmp_path / "archive.csv", PORTAL_CA, rows)


def test_a_multi_portal_archive_is_refused_or_audited_one_portal_at_a_time(
    tmp_path: Path,
) -> None:
    archive = portal_archive(tmp_path)
    result = run(archive, "--owner-state", "CA")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "archive of 2 portals (alpha-ca-pd, beta-ca-pd): audit one with --portal" in (
        result.stderr
    )
    assert result.stdout == ""
    result = run(archive, "--owner-state", "CA", "--portal", "alpha-ca-pd")
    assert result.returncode == 0, result.stderr
    assert "portal:  alpha-ca-pd" in result.stdout
    assert "rows:    2   with findings: 1 (50.0%)" in result.stdout
    assert "1 rows of the archive's other 1 portals" in result.stdout


def test_fail_on_findings_sets_the_exit_status(network_export: Path, agencies: Path) -> None:
    """Exit 1 with findings, 0 without: a cron job or CI can page on it."""
    base = ("--agencies", agencies, "--owner", "ca-ventura-county-so", "--fail-on-findings")
    result = run(network_export, *base)
    assert result.returncode == 1, result.stderr
    assert "rows:    7" in result.stdout  # the report is still printed in full
    clean = write_csv(
        network_export.parent / "clean.csv",
        NETWORK_2026,
        [network_row("c1", "Ventura County CA SO", "burglary 459 PC")],
    )
    assert run(clean, *base).returncode == 0
    assert (
        run(network_export, *base[:-1]).returncode == 0
    )  # without the flag, findings are not errors


def test_a_sharing_list_is_pointed_at_audit_sharing(agencies: Path, tmp_path: Path) -> None:
    listing = write_csv(
        tmp_path / "sharing.csv",
        ["Organization Name", "Networks Shared With Me", "Networks I'm Sharing"],
        [["Dallas TX PD", "", "Ventura County CA SO"]],
    )
    result = run(listing, "--agencies", agencies, "--owner", "ca-ventura-county-so")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "not a search log: audit it with `streamguard audit-sharing`" in result.stderr


def test_progress_goes_to_a_terminal_only(network_export: Path, agencies: Path) -> None:
    """Piped stderr carries warnings and errors only, never a progress line."""
    result = run(network_export, "--agencies", agencies, "--owner", "ca-ventura-county-so")
    assert "\r" not in result.stderr
    assert result.stderr.splitlines() == [
        f"streamguard audit: {network_export} line 14 (row 7): Search Time is not a date and time"
    ]


def test_progress_is_drawn_on_a_terminal(tmp_path: Path) -> None:
    """With stderr on a terminal, a long audit shows a counter and erases it at the end."""
    rows = [[f"e{i}", "u", "2025-06-18 00:02:04.789", "3", "theft 484 PC"] for i in range(20_000)]
    export = write_csv(tmp_path / "big.csv", PORTAL_EUGENE, rows)
    primary, secondary = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "streamguard.cli", "audit", str(export), "--owner-state", "OR"],
        stdout=subprocess.PIPE,
        stderr=secondary,
    ) as process:
        os.close(secondary)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal closes with the process
                break
            if not chunk:
                break
            seen += chunk
        stdout, _ = process.communicate(timeout=120)
    os.close(primary)
    assert process.returncode == 0
    assert re.search(rb"\rstreamguard audit: [\d,]+ rows \(\d+%\), [\d.]+ s", seen), seen[:200]
    assert seen.rstrip(b" ").endswith(b"\r")  # the line is erased before the summary
    assert b"\r" not in stdout and b"rows:    20,000" in stdout
