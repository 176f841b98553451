"""Vendor CSV files read one record at a time: header, line numbers, broken records, progress.

Search logs and sharing lists come out of the same vendor tooling (and the same spreadsheet
round trips), so they are read the same way: a UTF-8 byte-order mark, CRLF line ends, quoted
multi-line cells and blank lines are accepted; undecodable bytes become U+FFFD rather than
stopping a million-row file at one bad character; a record the CSV reader cannot parse costs
that record only.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

from streamguard.exceptions import InputFileError

__all__ = ("ClosingFile", "CsvFile", "width_problem")


def width_problem(cells: Sequence[str], width: int) -> str | None:
    """Why a record of `cells` cannot be read against a header of `width` columns, if it can't.

    Trailing empty cells are what spreadsheet round trips leave; anything else would shift every
    field after the break, so such a record is not read at all.
    """
    if len(cells) == width:
        return None
    if len(cells) > width and not any(c.strip() for c in cells[width:]):
        return None
    return f"has {len(cells)} columns, the header has {width}"


class ClosingFile:
    """A context manager that closes the file it holds: `with Reader(path) as reader: ...`."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class CsvFile(ClosingFile):
    """An open CSV file: `header()` once, then `records()`; a context manager.

    `what` names the file in errors ("export", "sharing list", "baseline").
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        try:
            # newline="" lets the csv module see CRLF and quoted multi-line cells itself.
            self._handle: TextIO = path.open(newline="", encoding="utf-8-sig", errors="replace")
        except OSError as exc:
            msg = f"cannot read {what} {path}: {exc.strerror or exc}"
            raise InputFileError(msg) from exc
        try:
            self._size = path.stat().st_size
        except OSError:
            self._size = 0
        self._reader = csv.reader(self._handle)

    def header(self) -> tuple[int, list[str]]:
        """The first non-blank record and its line; a one-line error if there is none."""
        try:
            for cells in self._reader:
                if any(c.strip() for c in cells):
                    return self._reader.line_num, cells
        except csv.Error as exc:
            msg = f"{self.what} {self.path} line {self._reader.line_num}: not CSV ({exc})"
            raise InputFileError(msg) from exc
        msg = f"{self.what} {self.path} is empty (no header row)"
        raise InputFileError(msg)

    def records(self) -> Iterator[tuple[int, int, list[str] | str]]:
        """(row, line, cells) per non-blank record; cells is a sentence when it is broken CSV.

        `row` counts data records from 1; `line` is the physical line the record starts on.
        """
        reader = self._reader
        row = 0
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # The reader resumes on the next line, so one broken record costs one row.
                row += 1
                yield row, start, f"is not valid CSV ({exc})"
                continue
            if not any(c.strip() for c in cells):
                continue  # blank lines separate nothing in these files
            row += 1
            yield row, start, cells

    @property
    def fraction_read(self) -> float | None:
        """How much of the file the reader has consumed (0 to 1), for progress; None if unknown."""
        if not self._size:
            return None
        try:
            position = self._handle.buffer.tell()
        except (OSError, ValueError, AttributeError):
            return None
        return min(position / self._size, 1.0)

    def close(self) -> None:
        self._handle.close()
