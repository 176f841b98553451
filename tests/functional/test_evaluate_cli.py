"""`streamguard evaluate` end to end: files in, one JSON line out per line in."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamguard import serde
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from streamguard.stream.evaluate import evaluate_lines
from streamguard.stream.intake import MAX_EVENT_BYTES
from tests.helpers import AGENCIES, NOW, NOW_TS, SIGNERS, change, registry_record, search

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamguard", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    agencies = tmp_path / "agencies.csv"
    agencies.write_text(
        "agency_id,name,state,kind\n"
        + "".join(
            f"{a.agency_id},{a.name.replace(',', '')},{a.state},{a.kind}\n" for a in AGENCIES
        ),
        encoding="utf-8",
    )
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(SIGNERS.keys_json()), encoding="utf-8")
    share = change("ca-ventura-county-so", "share_with", ["ca-oxnard-pd"])
    flip = change("ca-ventura-county-so", "national_lookup", True, sign=False)
    lines = [
        json.dumps(flip),
        json.dumps(share),
        json.dumps(search("ca-oxnard-pd", networks=["ca-ventura-county-so"])),
        json.dumps(
            search("tx-houston-pd", networks=["ca-ventura-county-so"], reason="ICE warrant")
        ),
        "{not json",
        "",
        json.dumps({"type": "search_request", "search_id": "bad-1"}),
        json.dumps(
            registry_record(
                {"agency_id": "nv-reno-pd", "name": "Reno PD", "state": "NV", "kind": "local"}
            )
        ),
        json.dumps(
            {
                "type": "plate_read",
                "read_id": "r-9",
                "ts": "2025-03-01T11:00:00Z",
                "agency_id": "ca-ventura-county-so",
                "plate": "8ABC123",
                "share_to": ["ca-oxnard-pd", "nv-reno-pd"],
            }
        ),
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"agencies": agencies, "keys": keys, "events": events}


def test_evaluate_writes_one_decision_per_line(files: dict[str, Path]) -> None:
    """Every input line gets exactly one output line with the contract's fields and outcomes."""
    result = run(
        "evaluate",
        files["events"],
        "--agencies",
        files["agencies"],
        "--keys",
        files["keys"],
        "--now",
        NOW_TS,
    )
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 9
    assert all(set(o) == {"event_id", "type", "outcome", "codes", "allowed", "denied"} for o in out)
    assert [o["outcome"] for o in out] == [
        "rejected",
        "applied",
        "approved",
        "denied",
        "malformed",
        "malformed",
        "malformed",
        "upserted",
        "partial",
    ]
    assert out[0]["codes"] == ["UNSIGNED_CHANGE", "STATUTE_FORBIDS_SETTING"]
    assert out[2]["allowed"] == ["ca-ventura-county-so"]
    assert out[3]["denied"] == [
        {
            "agency_id": "ca-ventura-county-so",
            "codes": ["NOT_SHARED", "OUT_OF_STATE_RECIPIENT", "PROHIBITED_PURPOSE_IMMIGRATION"],
        }
    ]
    assert out[4] == {
        "event_id": None,
        "type": None,
        "outcome": "malformed",
        "codes": ["MALFORMED_EVENT"],
        "allowed": [],
        "denied": [],
    }
    assert out[6]["event_id"] == "bad-1" and out[6]["codes"] == ["SCHEMA_INVALID"]
    assert out[7]["type"] == "agency" and out[7]["event_id"] == "nv-reno-pd"
    assert out[8]["allowed"] == ["ca-oxnard-pd"]
    assert out[8]["denied"] == [
        {"agency_id": "nv-reno-pd", "codes": ["NOT_SHARED", "OUT_OF_STATE_RECIPIENT"]}
    ]


def test_without_keys_every_change_is_rejected(files: dict[str, Path]) -> None:
    """No key file means no change can verify: signed changes are rejected too (fail closed)."""
    result = run("evaluate", files["events"], "--agencies", files["agencies"], "--now", NOW_TS)
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out[1]["outcome"] == "rejected" and out[1]["codes"] == ["INVALID_SIGNATURE"]
    assert out[2]["outcome"] == "denied"


@pytest.mark.parametrize(
    ("which", "content", "message"),
    [
        ("agencies", "id,name\n1,x\n", "lacks column"),
        ("keys", "[]", "keys file"),
    ],
)
def test_bad_input_files_are_one_line_errors(
    files: dict[str, Path], which: str, content: str, message: str
) -> None:
    """A bad --agencies or --keys file exits non-zero with one line on stderr."""
    files[which].write_text(content, encoding="utf-8")
    result = run(
        "evaluate", files["events"], "--agencies", files["agencies"], "--keys", files["keys"]
    )
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert lines[0].startswith("streamguard evaluate: error:")


def test_missing_events_file_is_a_one_line_error(files: dict[str, Path], tmp_path: Path) -> None:
    """A missing events file is reported in one line."""
    result = run("evaluate", tmp_path / "none.jsonl", "--agencies", files["agencies"])
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1


def test_evaluate_streams_without_reading_ahead() -> None:
    """Decisions come out while input is still being produced: memory does not grow with input."""
    state = PolicyState.create(load_statutes(), AGENCIES)
    consumed = 0

    def endless() -> itertools.count[int]:
        return itertools.count()

    def lines() -> object:
        nonlocal consumed
        for i in endless():
            consumed += 1
            yield serde.dumps(
                search("tx-houston-pd", networks=["tx-houston-pd"], search_id=f"s{i}")
            )

    first = list(itertools.islice(evaluate_lines(lines(), state, {}, 0.0), 3))  # type: ignore[arg-type]
    assert len(first) == 3 and consumed == 3


def test_evaluate_has_the_workers_input_limits() -> None:
    """A line goes through the worker's front door: over the size limit it is MALFORMED_EVENT
    (as a message would be), and an over-deep one is clipped and decided."""
    state = PolicyState.create(load_statutes(), AGENCIES)
    big = search("tx-houston-pd", networks=["tx-houston-pd"], search_id="big")
    big["padding"] = "x" * MAX_EVENT_BYTES
    deep = serde.dumps(search("tx-houston-pd", networks=["tx-houston-pd"], search_id="deep"))
    deep = deep[:-1] + b', "extra": ' + b"[" * 300 + b"]" * 300 + b"}"
    lines = [serde.dumps(big), deep]
    out = [json.loads(line) for line in evaluate_lines(lines, state, {}, NOW)]
    assert out[0]["outcome"] == "malformed" and out[0]["codes"] == ["MALFORMED_EVENT"]
    assert out[0]["event_id"] is None and out[0]["type"] is None
    assert out[1]["event_id"] == "deep" and out[1]["outcome"] == "approved"
