"""`streamguard ingest FILE` end to end (a child process): JSON lines, one document or an array
of bodies in; contract events out with --dry-run / --out; one-line errors on unusable input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.ingest import samples


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")}
    return subprocess.run(
        [sys.executable, "-m", "streamguard", "ingest", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def owners(tmp_path: Path) -> Path:
    return samples.write_owners_file(tmp_path / "owners.json")


def test_json_lines_are_mapped_line_by_line_with_the_owners_defaults(
    tmp_path: Path, owners: Path
) -> None:
    replay = tmp_path / "axis.jsonl"
    replay.write_text(
        "\n".join(
            [
                json.dumps(samples.axis_event()),
                "",
                "not json at all",
                json.dumps(samples.axis_event(carID="52212", capture_timestamp=None)),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    done = run(
        replay, "--format", "axis", "--owner", samples.OWNER_ID, "--owners", owners, "--dry-run"
    )
    assert done.returncode == 0, done.stderr
    first, bad, local = _lines(done.stdout)
    assert first == samples.AXIS_READ
    assert bad["kind"] == "raw" and bad["reasons"][0]["code"] == "MALFORMED_EVENT"
    # The owner's zone (from the owners file) reads the camera-local time.
    assert local["ts"] == samples.AXIS_READ["ts"] and local["read_id"] != first["read_id"]
    assert done.stderr.strip() == "ingest: 3 bodies: 2 reads printed, 1 quarantined, 0 ignored"


def test_one_document_and_an_array_of_documents(tmp_path: Path) -> None:
    """Without an owners file the reads are shared with nobody, and the summary says so."""
    document = tmp_path / "visits.json"
    document.write_text(json.dumps(samples.genetec_visits(), indent=2), encoding="utf-8")
    done = run(document, "--format", "genetec", "--owner", samples.OWNER_ID, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert _lines(done.stdout) == [{**samples.GENETEC_READ, "share_to": []}]
    assert "share_to is empty" in done.stderr

    array = tmp_path / "groups.json"
    array.write_text(
        json.dumps(
            [samples.openalpr_group(), {"data_type": "heartbeat"}, samples.openalpr_group()],
            indent=1,
        ),
        encoding="utf-8",
    )
    out = tmp_path / "events.jsonl"
    done = run(array, "--format", "openalpr", "--owner", samples.OWNER_ID, "--out", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    reads = _lines(out.read_text(encoding="utf-8"))
    assert [r["read_id"] for r in reads] == [samples.OPENALPR_READ["read_id"]] * 2
    assert "3 bodies: 2 reads written to" in done.stderr and "1 ignored" in done.stderr


def test_a_local_time_without_any_zone_is_quarantined_with_the_reason(tmp_path: Path) -> None:
    replay = tmp_path / "axis.jsonl"
    replay.write_text(
        json.dumps(samples.axis_event(capture_timestamp=None)) + "\n", encoding="utf-8"
    )
    done = run(replay, "--format", "axis", "--owner", samples.OWNER_ID, "--dry-run")
    [record] = _lines(done.stdout)
    assert "no time zone configured" in record["reasons"][0]["detail"]
    with_zone = run(
        replay,
        "--format",
        "axis",
        "--owner",
        samples.OWNER_ID,
        "--timezone",
        "America/Los_Angeles",
        "--dry-run",
    )
    assert _lines(with_zone.stdout)[0]["ts"] == samples.AXIS_READ["ts"]


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "cannot read"),
        ("{\n  broken", [], "neither JSON lines nor one JSON document"),
        ("{}", ["--owner", "Ventura SO"], "--owner must be an agency id"),
        ("{}", ["--owners", "/nonexistent/owners.json"], "cannot read it"),
        ("{}", ["--timezone", "Mars/Olympus"], "not an IANA time zone"),
    ],
)
def test_unusable_input_exits_2_with_one_line(
    tmp_path: Path, content: str | None, args: list[str], message: str
) -> None:
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    base = ["--format", "axis", "--owner", samples.OWNER_ID, "--dry-run"]
    if "--owner" in args:
        base = ["--format", "axis", "--dry-run"]
    done = run(path, *base, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""


def test_an_owner_missing_from_the_owners_file_is_refused(tmp_path: Path, owners: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("{}\n", encoding="utf-8")
    done = run(path, "--format", "axis", "--owner", "ca-oxnard-pd", "--owners", owners, "--dry-run")
    assert done.returncode == 2
    assert "ca-oxnard-pd is not in the owners file" in done.stderr


def test_new_token_prints_a_token_and_its_credential() -> None:
    done = run("new-token", "--id", "lot-a")
    assert done.returncode == 0
    token = done.stdout.splitlines()[0].rsplit(" ", 1)[1]
    credential = json.loads(done.stdout.splitlines()[-1])
    assert credential == {
        "id": "lot-a",
        "bearer_sha256": hashlib.sha256(token.encode()).hexdigest(),
    }
