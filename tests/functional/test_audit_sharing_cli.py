"""`streamguard audit-sharing` end to end: synthetic sharing lists, registry and signed log."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from streamguard.exports.sharing_cli import main_audit_sharing
from tests.helpers import SIGNERS, change
from tests.unit.exports.samples import (
    NETWORK_2026,
    OWN_NETWORKS,
    SHARING,
    SHARING_PAGED,
    run_streamguard,
    write_csv,
)

OWNER = "ca-ventura-county-so"
AGENCIES_CSV = (
    "agency_id,name,state,kind,aliases\n"
    f"{OWNER},Ventura County Sheriff's Office,CA,county,Ventura County CA SO\n"
    "ca-oxnard-pd,Oxnard Police Department,CA,local,Oxnard CA PD\n"
    "ca-simi-valley-pd,Simi Valley Police Department,CA,local,Simi Valley CA PD\n"
    "tx-dallas-pd,Dallas Police Department,TX,local,Dallas TX PD\n"
)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_streamguard("audit-sharing", *args)


@pytest.fixture
def listing(tmp_path: Path) -> Path:
    """A CA sheriff's list: lawful, out-of-state, federal, private, tribal, unknown, and more."""
    rows = [
        ["1", "Oxnard CA PD", "Oxnard CA PD", OWN_NETWORKS],
        ["1", "Dallas TX PD", "Dallas TX PD", "Ventura County CA SO"],
        ["1", "[Federal] HSI Los Angeles", "", "Ventura County CA SO"],
        ["1", "Acme Security LLC CA", "", "Ventura County CA SO"],
        ["2", "CA Example Band Tribal Police", "", "Ventura County CA SO"],
        ["2", "Regional Task Force", "", "Ventura County CA SO"],
        ["2", "Casa Grande AZ PD", "Casa Grande AZ PD", ""],  # shares with us only
        ["2", "Simi Valley CA PD", "", "Ventura County CA SO"],
        ["3", "Broken row", ""],  # a column short
        ["3", "dallas tx pd", "", "City of Camarillo CA (VCSO)"],  # listed again, other page
    ]
    return write_csv(tmp_path / "sharing_2026-05-02.csv", SHARING_PAGED, rows, bom=True)


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "agencies.csv"
    path.write_text(AGENCIES_CSV, encoding="utf-8")
    return path


def no_registry(listing: Path, *extra: str | Path) -> subprocess.CompletedProcess[str]:
    return run(listing, "--owner-state", "CA", "--owner", "Ventura County CA SO", *extra)


def test_summary_judges_every_recipient_by_the_owners_law(listing: Path) -> None:
    result = no_registry(listing)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "layout:  Flock sharing list (4 columns, with Page)" in out
    assert (
        "rows:    10   recipients of the owner's networks: 7   sharing with the owner only: 1   "
        "malformed: 1"
    ) in out
    assert "recipients with findings: 5 (71.4%)" in out
    for code in (
        "OUT_OF_STATE_RECIPIENT",
        "FEDERAL_RECIPIENT",
        "PRIVATE_RECIPIENT",
        "INELIGIBLE_RECIPIENT",
        "UNKNOWN_REQUESTER",
    ):
        assert re.search(rf"^  {code} +1  14\.3%  \S", out, re.MULTILINE), code
    assert "Cal. Civ. Code § 1798.90.55(b)" in out
    assert "Unresolved recipient names: 1" in out and "  Regional Task Force" in out
    # Seven recipients get the owner's main network; the merged Dallas entry the second too.
    assert re.search(r"^  Ventura County CA SO +7$", out, re.MULTILINE)
    assert re.search(r"^  City of Camarillo CA \(VCSO\) +2$", out, re.MULTILINE)
    # A broken row is reported at once on stderr with its line, and nothing else is.
    assert result.stderr.splitlines() == [
        f"streamguard audit-sharing: {listing} line 10 (row 9): has 3 columns, the header has 4"
    ]


def test_jsonl_one_line_per_recipient(listing: Path, tmp_path: Path) -> None:
    out = tmp_path / "recipients.jsonl"
    result = no_registry(listing, "--out", out)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    by_org = {line["org"]: line for line in lines}
    assert len(lines) == 7 and all(line["listed"] for line in lines)
    dallas = by_org["Dallas TX PD"]
    assert (dallas["rows"], dallas["state"], dallas["kind"], dallas["resolved_via"]) == (
        2,
        "TX",
        "local",
        "state",
    )
    assert dallas["networks"] == ["Ventura County CA SO", "City of Camarillo CA (VCSO)"]
    assert dallas["codes"] == ["OUT_OF_STATE_RECIPIENT"]
    assert dallas["reasons"][0]["citation"].startswith("Cal. Civ. Code")
    assert by_org["[Federal] HSI Los Angeles"]["state"] == "US"
    assert by_org["CA Example Band Tribal Police"]["codes"] == ["INELIGIBLE_RECIPIENT"]
    assert by_org["Regional Task Force"]["codes"] == ["UNKNOWN_REQUESTER"]
    assert (
        by_org["Oxnard CA PD"]["codes"] == [] and by_org["Oxnard CA PD"]["since_baseline"] is None
    )


def test_html_report_is_offline_and_titled_by_file_name(listing: Path, tmp_path: Path) -> None:
    html = tmp_path / "sharing.html"
    result = no_registry(listing, "--html", html)
    assert result.returncode == 0, result.stderr
    page = html.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>StreamGuard sharing audit of sharing_2026-05-02.csv</title>" in page
    assert str(tmp_path) not in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "<svg" in page and '<div class="notes">' in page
    assert "OUT_OF_STATE_RECIPIENT: the recipient is in TX" in page


def test_baseline_lists_added_and_removed_recipients(listing: Path, tmp_path: Path) -> None:
    baseline = write_csv(
        tmp_path / "sharing_2026-05-01.csv",
        SHARING,
        [
            ["Oxnard CA PD", "", "Ventura County CA SO"],  # one network fewer then
            ["Dallas TX PD", "", "Ventura County CA SO,City of Camarillo CA (VCSO)"],
            ["Ojai CA PD", "", "Ventura County CA SO"],  # gone since
            ["Simi Valley CA PD", "", "Ventura County CA SO"],
        ],
    )
    out = tmp_path / "r.jsonl"
    result = no_registry(listing, "--baseline", baseline, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Since baseline sharing_2026-05-01.csv: 4 added, 1 removed, 1 with other networks" in (
        result.stdout
    )
    assert "  + [Federal] HSI Los Angeles  FEDERAL_RECIPIENT" in result.stdout
    assert "  - Ojai CA PD" in result.stdout
    assert "  ~ Oxnard CA PD: +City of Camarillo CA (VCSO)" in result.stdout
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    status = {line["org"]: line["since_baseline"] for line in lines}
    assert status["Dallas TX PD"] == "kept" and status["Oxnard CA PD"] == "networks_changed"
    assert status["Ojai CA PD"] == "removed"
    assert [line["listed"] for line in lines if line["org"] == "Ojai CA PD"] == [False]
    # --fail-on-drift pages on any change; findings alone do not trip it.
    assert no_registry(listing, "--baseline", baseline, "--fail-on-drift").returncode == 1
    assert no_registry(listing, "--baseline", listing, "--fail-on-drift").returncode == 0


def signed_log(tmp_path: Path) -> tuple[Path, Path]:
    changes = [
        change(OWNER, "share_with", ["ca-oxnard-pd"], ts="2026-04-01T00:00:00Z"),
        change(OWNER, "share_with", ["tx-dallas-pd"], ts="2026-04-02T00:00:00Z"),  # unlawful
        change(OWNER, "share_with", ["ca-simi-valley-pd"], ts="2026-04-03T00:00:00Z", sign=False),
    ]
    log = tmp_path / "policy.jsonl"
    log.write_text("".join(json.dumps(c) + "\n" for c in changes), encoding="utf-8")
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(SIGNERS.keys_json()), encoding="utf-8")
    return log, keys


def test_policy_log_flags_sharing_no_signed_change_explains(
    listing: Path, registry: Path, tmp_path: Path
) -> None:
    """Oxnard was shared by a signed change; Simi Valley only by an unsigned one: a silent flip."""
    log, keys = signed_log(tmp_path)
    out = tmp_path / "r.jsonl"
    args = ("--agencies", registry, "--owner", OWNER, "--policy-log", log, "--keys", keys)
    result = run(listing, *args, "--out", out)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "Against the signed policy policy.jsonl" in text
    assert "1 applied, 2 rejected (STATUTE_FORBIDS_SETTING 1, UNSIGNED_CHANGE 1)" in text
    assert "signed settings: share_with 1 agencies" in text
    lines = {line["org"]: line for line in map(json.loads, out.read_text("utf-8").splitlines())}
    assert lines["Oxnard CA PD"]["signed"] == "share_with" and lines["Oxnard CA PD"]["codes"] == []
    assert lines["Simi Valley CA PD"]["codes"] == ["UNSIGNED_SHARING"]
    assert lines["Simi Valley CA PD"]["agency_id"] == "ca-simi-valley-pd"
    assert lines["Dallas TX PD"]["codes"] == ["OUT_OF_STATE_RECIPIENT", "UNSIGNED_SHARING"]
    assert "UNSIGNED_SHARING: 6 recipients no applied signed change explains" in text
    assert "signed share_with but not listed: 0" in text
    assert run(listing, *args, "--fail-on-findings").returncode == 1


def test_as_of_leaves_later_changes_out(listing: Path, registry: Path, tmp_path: Path) -> None:
    log, keys = signed_log(tmp_path)
    result = run(
        listing,
        *("--agencies", registry, "--owner", OWNER, "--policy-log", log, "--keys", keys),
        *("--as-of", "2026-03-01T00:00:00Z"),
    )
    assert result.returncode == 0, result.stderr
    assert "0 applied, 0 rejected" in result.stdout and "3 changes after --as-of" in result.stdout


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (("--policy-log", "{log}"), "--policy-log needs --keys KEYS.json"),
        (("--keys", "{keys}"), "--keys and --as-of apply to --policy-log"),
    ],
)
def test_policy_options_that_cannot_work_are_one_line_errors(
    listing: Path, registry: Path, tmp_path: Path, extra: tuple[str, ...], fragment: str
) -> None:
    log, keys = signed_log(tmp_path)
    args = [a.replace("{log}", str(log)).replace("{keys}", str(keys)) for a in extra]
    result = run(listing, "--agencies", registry, "--owner", OWNER, *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert fragment in result.stderr and result.stdout == ""


def test_policy_log_needs_a_registry(listing: Path, tmp_path: Path) -> None:
    log, keys = signed_log(tmp_path)
    result = no_registry(listing, "--policy-log", log, "--keys", keys)
    assert result.returncode == 2 and "needs the owner in a registry" in result.stderr


def test_wrong_files_are_one_line_errors(listing: Path, tmp_path: Path) -> None:
    log = write_csv(tmp_path / "searches.csv", NETWORK_2026, [])
    result = no_registry(log)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "is a search log, not a sharing list: audit it with `streamguard audit`" in (
        result.stderr
    )
    result = no_registry(tmp_path / "none.csv")
    assert result.returncode == 2 and "cannot read sharing list" in result.stderr
    result = no_registry(listing, "--baseline", tmp_path / "none.csv")
    assert result.returncode == 2 and "cannot read baseline" in result.stderr


def test_fail_on_findings_on_a_clean_list_exits_zero(tmp_path: Path) -> None:
    clean = write_csv(tmp_path / "clean.csv", SHARING, [["Oxnard CA PD", "", "Net"]])
    assert no_registry(clean, "--fail-on-findings").returncode == 0
    assert no_registry(clean, "--fail-on-drift").returncode == 0


def test_in_process_entry_point(listing: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(listing), "--owner-state", "CA", "--top", "2", "--fail-on-findings"]
    assert main_audit_sharing(argv) == 1
    out = capsys.readouterr().out
    assert "Recipients with findings (5; most severe first)" in out
    assert "  Dallas TX PD " in out and "... 3 more (all in --out and --html)" in out
