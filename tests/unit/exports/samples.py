"""Synthetic exports and a registry shared by the export tests; test modules import from here.

Headers follow the real layouts, rows are made up: real records never enter the repository.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

from streamguard.core.models import Agency
from streamguard.core.statutes import load_statutes
from streamguard.exports.cli import run_audit
from streamguard.exports.judge import AuditConfig, Auditor
from streamguard.exports.layouts import ExportFile, Layout
from streamguard.exports.orgs import OrgResolver
from streamguard.exports.summary import AuditSummary

# Headers written in the style of each real layout (docs/law.md, "Flock Safety: audit export
# columns"; docs/audit.md).
NETWORK_2024 = [
    "ID",
    "Name",
    "Org Name",
    "Total Networks Searched",
    "Total Devices Searched",
    "Time Frame",
    "License Plate",
    "Reason",
    "Case #",
    "Filters",
    "Search Time",
    "Search Type",
    "Text Prompt",
    "Moderation",
]
NETWORK_2026 = [
    "ID",
    "Name",
    "Org Name",
    "Total Networks Searched",
    "Time Frame",
    "License Plate",
    "Reason",
    "Case #",
    "Filters",
    "Search Time",
    "Search Type",
]
FEDERAL_SEARCHES = [
    "ID",
    "Name",
    "Org Name",
    "Total Networks Searched",
    "License Plate",
    "Reason",
    "Case #",
    "Filters",
    "Search Time",
    "Search Type",
]
ORG_UNDERSCORE = [
    "ID",
    "Org_Name",
    "Total_Networks_Searched",
    "Total_Devices_Searched",
    "Time_Frame_Start",
    "Time_Frame_End",
    "Reason",
    "Search_Time",
    "Search_Type",
    "Moderation",
]
ORG_BLOG = [
    "Name",
    "Total Networks Searched",
    "Time Frame",
    "License Plate",
    "Case #",
    "Filters",
    "Reason",
    "Offense Type",
    "Search Date/Time",
]
PORTAL_EUGENE = ["id", "userId", "searchDate", "cameraCount", "reason"]
PORTAL_CA = [
    "portal_slug",
    "archived_date",
    "id",
    "userId",
    "searchDate",
    "networkCount",
    "reason",
    "offenseType",
    "caseNumber",
]


def write_csv(
    path: Path,
    header: list[str],
    rows: list[list[str]],
    *,
    bom: bool = False,
    crlf: bool = False,
    quote_all: bool = False,
) -> Path:
    """Write a synthetic export the way the vendor or a spreadsheet would."""
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        lineterminator="\r\n" if crlf else "\n",
        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
    )
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8"))
    return path


# --- a registry and the widest network-audit row, for judging ---------------------------------

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
    """One row of HEADER: the owner's own search for a named crime, `cells` overriding columns."""
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


def auditor_for(
    layout: Layout,
    owner: str = "ca-ventura-county-so",
    config: AuditConfig | None = None,
    enforce_unverified: bool = True,
) -> Auditor:
    """An auditor of `layout` for `owner` of AGENCIES, with the packaged statutes."""
    return Auditor(
        load_statutes(enforce_unverified=enforce_unverified),
        BY_ID[owner],
        OrgResolver(AGENCIES),
        layout,
        config or AuditConfig(),
    )


def audit_rows(
    tmp_path: Path,
    rows: list[list[str]],
    owner: str = "ca-ventura-county-so",
    header: list[str] | None = None,
    config: AuditConfig | None = None,
    enforce_unverified: bool = True,
) -> AuditSummary:
    """Audit `rows` written as an export, the way the command runs it, and return the summary."""
    path = write_csv(tmp_path / "export.csv", header or HEADER, rows)
    with ExportFile(path) as export:
        auditor = auditor_for(export.layout, owner, config, enforce_unverified)
        return run_audit(export, auditor)


# --- sharing lists -------------------------------------------------------------------------------

SHARING = ["Organization Name", "Networks Shared With Me", "Networks I'm Sharing"]
SHARING_PAGED = ["Page", *SHARING]
# The owner's networks, as a sharing list names them (a sheriff's contract cities).
OWN_NETWORKS = "Ventura County CA SO,City of Camarillo CA (VCSO)"


def run_streamguard(command: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """`streamguard COMMAND ...` in a fresh interpreter, through the top-level command table."""
    return subprocess.run(
        [sys.executable, "-m", "streamguard.cli", command, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
