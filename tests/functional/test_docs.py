"""The documents that are generated from code, or that restate data, agree with their source.

The README's settings table is generated from `WorkerSettings`; docs/law.md lists, per state,
every provision of the statute data with its citation and verified mark.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streamguard.settings import (
    TABLE_BEGIN,
    TABLE_END,
    SettingsError,
    WorkerSettings,
    settings_markdown,
    with_settings_table,
)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LAW = ROOT / "docs" / "law.md"
STATUTES = ROOT / "src" / "streamguard" / "core" / "data" / "statutes.json"


def _table_rows(markdown: str) -> list[list[str]]:
    """Cells of each body row of the Markdown tables in `markdown` (header and rule skipped)."""
    rows: list[list[str]] = []
    for line in markdown.splitlines():
        if not line.startswith("|"):
            continue
        if set(line.strip()) <= set("|-: "):
            rows.pop()  # the row above the rule is the header
            continue
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def test_readme_settings_table_is_the_generated_one() -> None:
    text = README.read_text(encoding="utf-8")
    assert with_settings_table(text) == text, (
        "README.md's settings table is out of date: run python -m streamguard.settings "
        "--write README.md"
    )


def test_generated_table_lists_every_setting_once() -> None:
    rows = _table_rows(settings_markdown())
    names = [row[0].strip("`") for row in rows]
    expected = [spec.metadata["env"] for spec in dataclasses.fields(WorkerSettings)]
    assert names == expected
    assert len(set(names)) == len(names) == 36
    by_name = {row[0].strip("`"): row for row in rows}
    assert by_name["STREAMGUARD_ENFORCE_UNVERIFIED"][1] == "`true`"
    assert by_name["STREAMGUARD_BATCH_CLOSE_EARLY"][1] == "`false`"
    assert by_name["STREAMGUARD_KEYS"][1] == "(unset)"
    assert by_name["STREAMGUARD_COMMIT_INTERVAL_MS"][1] == "`2800`"


def test_an_edited_table_is_regenerated_and_the_rest_kept() -> None:
    text = f"intro\n{TABLE_BEGIN}\n| stale | row |\n{TABLE_END}\noutro\n"
    result = with_settings_table(text)
    assert result.startswith(f"intro\n{TABLE_BEGIN}\n")
    assert result.endswith(f"{TABLE_END}\noutro\n")
    assert "stale" not in result
    assert settings_markdown() in result


@pytest.mark.parametrize(
    "text",
    [
        "no markers at all\n",
        f"{TABLE_END}\n{TABLE_BEGIN}\n",
        f"{TABLE_BEGIN}\n{TABLE_BEGIN}\n{TABLE_END}\n",
    ],
)
def test_missing_or_misplaced_markers_are_an_error(text: str) -> None:
    with pytest.raises(SettingsError):
        with_settings_table(text)


def test_check_command_fails_on_a_stale_file_and_write_repairs_it(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"{TABLE_BEGIN}\n| old |\n{TABLE_END}\n", encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streamguard.settings", *args],
            capture_output=True,
            text=True,
            check=False,
        )

    stale = run("--check", str(doc))
    assert stale.returncode == 1 and "--write" in stale.stderr
    assert run("--write", str(doc)).returncode == 0
    assert run("--check", str(doc)).returncode == 0
    assert doc.read_text(encoding="utf-8") == f"{TABLE_BEGIN}\n{settings_markdown()}{TABLE_END}\n"
    missing = run("--check", str(tmp_path / "absent.md"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


def _provisions(body: dict[str, object]) -> set[tuple[str, str]]:
    """(citation, yes|no) of every provision of one state in statutes.json."""
    found: set[tuple[str, str]] = set()
    for key, value in body.items():
        items = value if key == "prohibited_purposes" else [value]
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and "citation" in item:
                found.add((str(item["citation"]), "yes" if item["verified"] else "no"))
    return found


def _law_sections() -> dict[str, tuple[str, str]]:
    """State code -> (the statute name after the code, the section's text), from docs/law.md."""
    text = LAW.read_text(encoding="utf-8")
    sections: dict[str, tuple[str, str]] = {}
    for part in re.split(r"(?m)^### ", text)[1:]:
        match = re.search(r"(?m)^`([A-Z]{2})`: (.+)$", part)
        if match:
            sections[match.group(1)] = (match.group(2).strip(), part)
    return sections


def test_law_summary_lists_every_provision_with_its_citation_and_mark() -> None:
    data = json.loads(STATUTES.read_text(encoding="utf-8"))
    sections = _law_sections()
    assert set(sections) == set(data["states"])
    for state, body in data["states"].items():
        name, section = sections[state]
        assert name == body["name"], state
        rows = {(row[2], row[3]) for row in _table_rows(section)}
        assert rows == _provisions(body), state


def test_contract_page_names_every_reason_code() -> None:
    """docs/contract.md, section 3, lists every code the program can raise."""
    from streamguard.core import codes

    raised = {
        value
        for name, value in vars(codes).items()
        if name.isupper() and isinstance(value, str) and value == name
    }
    text = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    section = text[text.index("## 3. ") : text.index("## 4. ")]
    assert len(raised) > 20
    assert {code for code in raised if f"`{code}`" not in section} == set()
