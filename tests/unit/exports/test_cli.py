"""run_audit: one JSON line per row as rows come, and a capped warning per malformed row."""

from __future__ import annotations

import io
import json
from pathlib import Path

from streamguard.exports.cli import run_audit
from streamguard.exports.layouts import ExportFile
from tests.unit.exports.samples import HEADER, auditor_for, row, write_csv


def test_jsonl_lines_and_capped_warnings(tmp_path: Path) -> None:
    rows = [row(ID="ok"), *(row(ID=f"bad{i}", **{"Search Time": "someday"}) for i in range(3))]
    path = write_csv(tmp_path / "export.csv", HEADER, rows)
    jsonl, warn = io.BytesIO(), io.StringIO()
    with ExportFile(path) as export:
        auditor = auditor_for(export.layout)
        summary = run_audit(export, auditor, jsonl=jsonl, warn=warn, warn_limit=2)
    lines = [json.loads(line) for line in jsonl.getvalue().splitlines()]
    assert [line["id"] for line in lines] == ["ok", "bad0", "bad1", "bad2"]
    assert summary.rows == 4 and summary.malformed_rows == 3
    assert summary.export == str(path) and summary.layout == auditor.layout
    assert warn.getvalue().splitlines() == [
        f"streamguard audit: {path} line 4 (row 2): Search Time is not a date and time",
        f"streamguard audit: {path} line 6 (row 3): Search Time is not a date and time",
        "streamguard audit: ... and 1 more malformed rows",
    ]
