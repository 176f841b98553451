"""Vendor sharing-settings exports ("sharing lists"): tell the layout, read rows as frozen values.

Flock's "shared networks" export has one row per organization the exporting agency (the owner)
has a sharing relation with:

    [Page,] Organization Name, Networks Shared With Me, Networks I'm Sharing

`Networks I'm Sharing` lists the owner's networks that organization can search (the owner's
data going out); `Networks Shared With Me` lists that organization's networks the owner can
search (coming in). Both cells are comma-separated network names. `Page` appears when the list
was copied out of a paged PDF or screen. Header cells are compared like search-log headers
(case, spaces and punctuation folded), unknown columns are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from streamguard.exceptions import InputFileError
from streamguard.exports.csvfile import ClosingFile, CsvFile, width_problem
from streamguard.exports.layouts import Layout, MalformedRow, detect_layout

__all__ = (
    "SharingFile",
    "SharingLayout",
    "SharingRow",
    "detect_sharing_layout",
    "split_networks",
)

_HEADER_JUNK: Final = re.compile(r"[^a-z0-9]+")
_FIELDS: Final[Mapping[str, str]] = {
    "organizationname": "org",
    "organization": "org",
    "orgname": "org",
    "networksimsharing": "outbound",
    "networksiamsharing": "outbound",
    "networkssharedwithme": "inbound",
    "page": "page",
}


def _header_key(name: str) -> str:
    return _HEADER_JUNK.sub("", name.replace("\ufeff", "").lower())


@dataclass(frozen=True, slots=True)
class SharingLayout:
    """Which column of a sharing list holds which field."""

    header: tuple[str, ...]
    columns: Mapping[str, int]

    @property
    def width(self) -> int:
        return len(self.header)

    @property
    def title(self) -> str:
        paged = ", with Page" if "page" in self.columns else ""
        return f"Flock sharing list ({self.width} columns{paged})"


def detect_sharing_layout(header: Sequence[str]) -> SharingLayout | str:
    """The layout of a sharing-list header, or a sentence saying why it is not one."""
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        field = _FIELDS.get(_header_key(cell))
        if field is not None and field not in columns:
            columns[field] = index
    if "org" not in columns or "outbound" not in columns:
        shown = ", ".join(h.strip() for h in header[:6])
        return (
            f"header ({shown}{', ...' if len(header) > 6 else ''}) is not a sharing list "
            "(needs Organization Name and Networks I'm Sharing)"
        )
    return SharingLayout(tuple(h.strip() for h in header), columns)


def split_networks(cell: str) -> tuple[str, ...]:
    """The network names of one cell, stripped, empty ones dropped, first spelling kept once.

    The vendor joins names with commas and quotes nothing inside them, so a comma is always a
    separator.
    """
    seen: dict[str, None] = {}
    for part in cell.split(","):
        name = " ".join(part.split())
        if name:
            seen.setdefault(name, None)
    return tuple(seen)


@dataclass(frozen=True, slots=True)
class SharingRow:
    """One organization of a sharing list.

    `outbound` are the owner's networks this organization receives; empty when the relation
    only goes the other way. `row` counts data rows from 1, `line` is the physical line.
    """

    row: int
    line: int
    org: str
    outbound: tuple[str, ...]
    inbound: tuple[str, ...]
    page: str | None = None


class SharingFile(ClosingFile):
    """An open sharing list: `layout` from its header, iteration yields one row at a time.

    `what` names the file in messages ("sharing list", "baseline").
    """

    def __init__(self, path: Path, what: str = "sharing list") -> None:
        self.path = path
        self.what = what
        self._source = CsvFile(path, what)
        try:
            line, cells = self._source.header()
            found = detect_sharing_layout(cells)
            if isinstance(found, str):
                if isinstance(detect_layout(cells), Layout):
                    found = "is a search log, not a sharing list: audit it with `streamguard audit`"
                msg = f"{what} {path} line {line}: {found}"
                raise InputFileError(msg)
            self.layout = found
        except BaseException:
            self._source.close()
            raise

    @property
    def fraction_read(self) -> float | None:
        return self._source.fraction_read

    def close(self) -> None:
        self._source.close()

    def __iter__(self) -> Iterator[SharingRow | MalformedRow]:
        columns = self.layout.columns
        for row, line, cells in self._source.records():
            if isinstance(cells, str):
                yield MalformedRow(row, line, None, cells)
                continue
            problem = width_problem(cells, self.layout.width)
            if problem is not None:
                yield MalformedRow(row, line, None, problem)
                continue

            def cell(field: str, cells: list[str] = cells) -> str:
                index = columns.get(field)
                return cells[index] if index is not None else ""

            yield SharingRow(
                row=row,
                line=line,
                org=" ".join(cell("org").split()),
                outbound=split_networks(cell("outbound")),
                inbound=split_networks(cell("inbound")),
                page=cell("page").strip() or None,
            )
