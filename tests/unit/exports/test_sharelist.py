"""Sharing lists: the layout from the header, rows read one at a time, broken rows kept apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamguard.exceptions import InputFileError
from streamguard.exports.layouts import MalformedRow
from streamguard.exports.sharelist import (
    SharingFile,
    SharingRow,
    detect_sharing_layout,
    split_networks,
)
from tests.unit.exports.samples import NETWORK_2026, SHARING, SHARING_PAGED, write_csv


@pytest.mark.parametrize(
    ("header", "columns", "title"),
    [
        (SHARING, {"org": 0, "inbound": 1, "outbound": 2}, "Flock sharing list (3 columns)"),
        (
            SHARING_PAGED,
            {"page": 0, "org": 1, "inbound": 2, "outbound": 3},
            "Flock sharing list (4 columns, with Page)",
        ),
        # spreadsheet spellings: upper case, underscores, a typographic apostrophe
        (
            ["ORGANIZATION_NAME", "Networks I\u2019m Sharing"],
            {"org": 0, "outbound": 1},
            "Flock sharing list (2 columns)",
        ),
    ],
)
def test_layouts_are_told_by_the_header(
    header: list[str], columns: dict[str, int], title: str
) -> None:
    found = detect_sharing_layout(header)
    assert not isinstance(found, str)
    assert dict(found.columns) == columns and found.title == title


def test_a_header_without_outbound_networks_is_not_a_sharing_list() -> None:
    found = detect_sharing_layout(["Organization Name", "Networks Shared With Me"])
    assert isinstance(found, str) and "needs Organization Name and Networks I'm Sharing" in found


def test_a_search_log_is_refused_with_the_command_that_reads_it(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "log.csv", NETWORK_2026, [])
    with pytest.raises(InputFileError, match="is a search log, not a sharing list"):
        SharingFile(path)


def test_an_empty_file_is_an_error_naming_what_it_should_be(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"baseline .*empty\.csv is empty"):
        SharingFile(path, "baseline")


def test_network_cells_are_split_on_commas() -> None:
    assert split_networks(" A CA PD ,  B  (LR),,A CA PD, ") == ("A CA PD", "B (LR)")
    assert split_networks("") == ()


def test_rows_bom_crlf_blank_lines_and_broken_rows(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "list.csv",
        SHARING_PAGED,
        [
            ["1", "Dallas TX PD ", "Dallas TX PD,Dallas TX PD (LR)", "Owner Net"],
            ["1", "Casa Grande AZ PD", "Casa Grande AZ PD", ""],
            [],
            ["2", "Broken", "x"],  # a column short: not read at all
            ["2", "Tulsa OK PD", "", "Owner Net", "", ""],  # trailing empties are tolerated
        ],
        bom=True,
        crlf=True,
    )
    with SharingFile(path) as listing:
        rows = list(listing)
    assert rows[0] == SharingRow(
        1, 2, "Dallas TX PD", ("Owner Net",), ("Dallas TX PD", "Dallas TX PD (LR)"), "1"
    )
    assert rows[1] == SharingRow(2, 3, "Casa Grande AZ PD", (), ("Casa Grande AZ PD",), "1")
    assert rows[2] == MalformedRow(3, 5, None, "has 3 columns, the header has 4")
    assert rows[3] == SharingRow(4, 6, "Tulsa OK PD", ("Owner Net",), (), "2")
