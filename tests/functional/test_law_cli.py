"""`streamguard law STATE`: the rule in force, readable without the JSON, and complete."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streamguard.cli import main

ROOT = Path(__file__).resolve().parents[2]
STATUTES = ROOT / "src" / "streamguard" / "core" / "data" / "statutes.json"
DATA = json.loads(STATUTES.read_text(encoding="utf-8"))


def law(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["law", *args]) == 0
    return capsys.readouterr().out


def blocks(text: str) -> dict[str, list[str]]:
    """The output's blocks, keyed by their first line (what StreamGuard does)."""
    found: dict[str, list[str]] = {}
    for block in text.split("\n\n")[1:]:
        head, *rest = block.strip("\n").split("\n")
        found[head] = rest
    return found


def provisions(body: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for key, value in body.items():
        items = value if key == "prohibited_purposes" else [value]
        found += [i for i in items if isinstance(i, dict) and "citation" in i]
    return found


@pytest.mark.parametrize("state", sorted(DATA["states"]))
def test_every_provision_is_printed_with_its_citation_and_mark(
    capsys: pytest.CaptureFixture[str], state: str
) -> None:
    """Each provision of the data, and the baseline, is one block: citation, then its mark."""
    out = law(capsys, state, "--on", "2026-12-01")
    assert out.startswith(f"{state}: {DATA['states'][state]['name']}\n")
    printed = {(rest[0], rest[1]) for rest in blocks(out).values()}
    expected = {
        (f"  citation: {p['citation']}", "  verified: yes")
        for p in provisions(DATA["states"][state])
        if p["verified"]
    }
    assert expected <= printed
    unverified = [p for p in provisions(DATA["states"][state]) if not p["verified"]]
    for p in unverified:
        assert any(
            c == f"  citation: {p['citation']}" and m.startswith("  verified: no")
            for c, m in printed
        )
    baseline = DATA["baseline"]["missing_purpose"]["citation"]
    assert (f"  citation: {baseline}", "  verified: yes") in printed
    assert len(blocks(out)) == len(provisions(DATA["states"][state])) + 1


def test_california_prints_the_shield_rule(capsys: pytest.CaptureFixture[str]) -> None:
    out = blocks(law(capsys, "ca"))
    head = (
        "prohibited purpose: health care, for out-of-state and federal requesters only -> "
        "PROHIBITED_PURPOSE_HEALTH_CARE"
    )
    assert head in out
    assert "13778.2(b)" in out[head][0] and out[head][1] == "  verified: yes"
    assert (
        "prohibited purpose: immigration, for every requester -> PROHIBITED_PURPOSE_IMMIGRATION"
        in out
    )


def test_unverified_provisions_are_listed_even_when_switched_off(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--no-unverified shows what evaluate --no-unverified enforces, without hiding the rest."""
    on = blocks(law(capsys, "VA"))
    off = blocks(law(capsys, "VA", "--no-unverified"))
    assert on.keys() == off.keys()
    retention = (
        "retention: 21 days; an older read, or a search window starting earlier -> "
        "RETENTION_EXCEEDED"
    )
    assert on[retention][1] == "  verified: no (enforced: StreamGuard fails closed)"
    assert off[retention][1] == "  verified: no (NOT enforced: --no-unverified)"


def test_new_hampshire_shows_its_hotlist_exception_and_repeal_date(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = blocks(law(capsys, "NH", "--on", "2026-12-01"))
    assert (
        "retention: 3 minutes; an older read that hit no hotlist, or a search window starting "
        "earlier -> RETENTION_EXCEEDED"
    ) in before
    assert "repeal: set for 2027-01-01 (in 31 days); enforced until the data changes" in before
    after = blocks(law(capsys, "NH", "--on", "2027-02-01"))
    assert "repeal: set for 2027-01-01, which has passed; still enforced: update the data" in after


def test_a_rule_not_yet_in_force_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    early = blocks(law(capsys, "NM", "--on", "2026-06-01"))
    assert "in force: from 2026-07-01 (in 30 days); StreamGuard enforces it already" in early
    assert "in force: since 2026-07-01" in blocks(law(capsys, "NM", "--on", "2026-07-01"))


def test_a_state_without_a_statute_gets_the_baseline_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = law(capsys, "TX")
    assert out.startswith("TX: no ALPR sharing statute on file; only the owner's settings decide\n")
    assert list(blocks(out)) == [
        "every owner (StreamGuard baseline): a search must state a purpose -> MISSING_PURPOSE"
    ]


def test_without_a_state_every_state_on_file_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    lines = law(capsys).splitlines()
    assert lines[0] == f"statute data {DATA['version']}: {len(DATA['states'])} states on file"
    listed = [line.split()[0] for line in lines[1:-1]]
    assert listed == sorted(DATA["states"])
    assert "IL  3/4 verified  " in "\n".join(lines)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["law", "ZZ"], "not a two-letter US state code: 'ZZ'"),
        (["law", "CA", "--on", "soon"], "--on"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], fragment: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamguard", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert fragment in result.stderr.splitlines()[-1]
    if args[1] == "ZZ":
        assert result.stderr == f"streamguard law: error: {fragment}\n"
