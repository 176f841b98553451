"""Vendor search-log exports: tell the layout from the header, parse rows into frozen values.

Two families are known (docs/law.md, "Flock Safety: audit export columns"; docs/audit.md):

* Flock network / organization audit exports (``ID, Name, Org Name, Total Networks Searched, ...``),
  with spaces or underscores in the header and columns added and dropped over the years;
* Flock transparency-portal search audits (``id, userId, searchDate, networkCount|cameraCount,
  reason, [offenseType], [caseNumber]``), extra columns ignored.

A row keeps only what the audit judges. Plate, filters, prompt and user name are reduced to
whether they are present, empty or redacted, so a plate can never leak from an `ExportRow` into
a report or a log. Reading holds one row at a time: memory does not grow with the file.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Final

from streamguard.core.timeutil import parse_ts
from streamguard.exceptions import InputFileError
from streamguard.exports.csvfile import ClosingFile, CsvFile, width_problem

__all__ = (
    "FLOCK_AUDIT",
    "PORTAL_SEARCH_AUDIT",
    "ExportFile",
    "ExportRow",
    "Layout",
    "MalformedRow",
    "Presence",
    "detect_layout",
    "is_redacted",
    "parse_export_time",
    "parse_row",
)

FLOCK_AUDIT: Final = "flock_audit"
PORTAL_SEARCH_AUDIT: Final = "portal_search_audit"
_LAYOUT_TITLES: Final = {
    FLOCK_AUDIT: "Flock network/organization audit export",
    PORTAL_SEARCH_AUDIT: "Flock transparency-portal search audit",
}

# Header spellings seen in real exports, folded by `_header_key` (lower case, letters, digits and
# '#' only), mapped to the field the audit reads. Both families share one table: where a spelling
# means the same thing in both (`id`, `reason`) it is listed once.
_FIELDS: Final[Mapping[str, str]] = {
    "id": "id",
    "name": "user",
    "username": "user",
    "user": "user",
    "userid": "user",
    "orgname": "org",
    "organization": "org",
    "organizationname": "org",
    "totalnetworkssearched": "networks",
    "networkcount": "networks",
    "totaldevicessearched": "devices",
    "cameracount": "devices",
    "timeframe": "time_frame",
    "timeframestart": "frame_start",
    "timeframeend": "frame_end",
    "licenseplate": "plate",
    "plate": "plate",
    "reason": "reason",
    "searchreason": "reason",
    "case#": "case_number",
    "casenumber": "case_number",
    "case": "case_number",
    "filters": "filters",
    "searchtime": "search_time",
    "searchdatetime": "search_time",
    "searchdate": "search_time",
    "searchtype": "search_type",
    "textprompt": "text_prompt",
    "moderation": "moderation",
    "offensetype": "offense_type",
    # Archives of many transparency portals name the portal of each row.
    "portalslug": "portal",
    "portal": "portal",
}
# Columns that only one family uses: they tell the families apart.
_FLOCK_MARKERS: Final = frozenset(("totalnetworkssearched", "searchtime", "searchdatetime"))
_PORTAL_MARKERS: Final = frozenset(("searchdate", "networkcount", "cameracount"))
# A sharing list ("Organization Name, Networks Shared With Me, Networks I'm Sharing") is judged by
# `streamguard audit-sharing`; `audit` says so instead of a generic refusal.
_SHARING_MARKERS: Final = frozenset(("organizationname", "networksimsharing"))

_HEADER_JUNK: Final = re.compile(r"[^a-z0-9#]+")


def _header_key(name: str) -> str:
    return _HEADER_JUNK.sub("", name.replace("\ufeff", "").lower())


@dataclass(frozen=True, slots=True)
class Layout:
    """A recognised export layout: which column holds which field."""

    kind: str  # FLOCK_AUDIT | PORTAL_SEARCH_AUDIT
    header: tuple[str, ...]
    columns: Mapping[str, int]  # field -> column index

    @property
    def title(self) -> str:
        return _LAYOUT_TITLES[self.kind]

    @property
    def width(self) -> int:
        return len(self.header)

    def has(self, field: str) -> bool:
        return field in self.columns

    @property
    def org_implied(self) -> bool:
        """No organization column: every row is a search by the owner's own users.

        Portal audits list only the portal owner's searches, and an organization audit without an
        `Org Name` column holds only the exporting organization's users.
        """
        return "org" not in self.columns


def detect_layout(header: Sequence[str]) -> Layout | str:
    """The layout of a header row, or a sentence saying why it is none we know."""
    keys = [_header_key(h) for h in header]
    present = set(keys)
    flock = bool(present & _FLOCK_MARKERS) and "totalnetworkssearched" in present
    portal = "searchdate" in present and bool(present & {"networkcount", "cameracount"})
    if flock and portal:
        return "header mixes Flock audit and transparency-portal columns"
    if not flock and not portal:
        if present >= _SHARING_MARKERS:
            return (
                "is a sharing list (Organization Name, Networks I'm Sharing), not a search log: "
                "audit it with `streamguard audit-sharing`"
            )
        shown = ", ".join(h.strip() for h in header[:8])
        return (
            f"header ({shown}{', ...' if len(header) > 8 else ''}) is not a Flock audit export "
            "(needs Total Networks Searched and Search Time) or a transparency-portal search "
            "audit (needs searchDate and networkCount or cameraCount)"
        )
    kind = FLOCK_AUDIT if flock else PORTAL_SEARCH_AUDIT
    if kind == FLOCK_AUDIT and not ({"searchtime", "searchdatetime"} & present):
        return "Flock audit header has no Search Time column"
    columns: dict[str, int] = {}
    for index, key in enumerate(keys):
        field = _FIELDS.get(key)
        # The first column of a name wins: a duplicated header cell must not shift the data.
        if field is not None and field not in columns:
            columns[field] = index
    return Layout(kind=kind, header=tuple(h.strip() for h in header), columns=columns)


# --- cells ---------------------------------------------------------------------------------------


class Presence(StrEnum):
    """What an access-log field looks like in one row."""

    ABSENT = "absent"  # the export has no column for it
    EMPTY = "empty"  # the column is there and the cell is blank
    REDACTED = "redacted"  # withheld on purpose: not the same as not logged
    PRESENT = "present"


# Redaction markers seen in real exports (docs/law.md, "Flock Safety: audit export columns"):
# Flock's `***`, agency-typed `REDACTED`/`###`, and exemption citations such as `7923.600 GC`
# (Cal. Gov. Code, public-records exemptions) typed into the cell.
_REDACTED: Final = re.compile(
    r"""^\s*(?:
        [*#\u2588]{3,}                                     # ***, ###, full blocks
      | \[?\s*redacted\s*\]?                               # REDACTED, [redacted]
      | \[?\s*(?:withheld|exempt)\b.*                      # "Exempt - 7923.600 GC"
      | .*\b\d{3,5}(?:\.\d+)?(?:\([a-z0-9]+\))*\s*(?:gc|gov(?:ernment|t)?\.?\s*code)\b.*
      | .*\b(?:gc|gov(?:ernment|t)?\.?\s*code)\s*(?:\u00a7\s*)?\d{3,5}(?:\.\d+)?\b.*
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


_REDACTION_HINTS: Final = ("redact", "withheld", "exempt", "gc", "gov")


@functools.lru_cache(maxsize=8192)
def is_redacted(cell: str) -> bool:
    """True for a cell an agency withheld (`***`, `REDACTED`, `###`, `7923.600 GC`)."""
    if not cell:
        return False
    # Most cells are plain values; a cheap look for the markers skips the regex for them.
    lowered = cell.lower()
    if cell.lstrip()[:1] not in ("*", "#", "\u2588", "[") and not any(
        hint in lowered for hint in _REDACTION_HINTS
    ):
        return False
    return _REDACTED.match(cell) is not None


def _presence(cells: Sequence[str | None]) -> Presence:
    """One field over the columns that can carry it: any value wins, then any redaction."""
    seen = [c for c in cells if c is not None]
    if not seen:
        return Presence.ABSENT
    if any(c and not is_redacted(c) for c in seen):
        return Presence.PRESENT
    if any(c for c in seen):
        return Presence.REDACTED
    return Presence.EMPTY


# "11/14/2025, 09:53:36 AM UTC" (Flock), also without seconds, comma, meridiem or zone.
_FLOCK_TIME: Final = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4}),?\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*([AaPp][Mm])?"
    r"\s*(?:UTC|GMT|Z)?"
)
_UTC_SUFFIX: Final = re.compile(r"\s*(?:UTC|GMT)$", re.IGNORECASE)


def _flock_times(text: str) -> list[float] | None:
    """Every Flock-style timestamp in `text`, or None when one of them is not a real time."""
    found: list[float] = []
    for match in _FLOCK_TIME.finditer(text):
        month, day, year, hour, minute = (int(match.group(i)) for i in range(1, 6))
        second = int(match.group(6) or 0)
        meridiem = (match.group(7) or "").upper()
        if meridiem:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if meridiem == "PM" else 0)
        try:
            moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            return None
        found.append(moment.timestamp())
    return found


def parse_export_time(text: str) -> float | None:
    """POSIX seconds of one export timestamp (Flock `MM/DD/YYYY, hh:mm:ss AM UTC` or ISO-8601)."""
    stripped = text.strip()
    times = _flock_times(stripped)
    if times and len(times) == 1 and _FLOCK_TIME.fullmatch(stripped):
        return times[0]
    return parse_ts(_UTC_SUFFIX.sub("", stripped))


def _time_frame(text: str) -> tuple[float, float] | None:
    """Start and end of a Time Frame cell: two timestamps, one per line (or one line apart)."""
    times = _flock_times(text)
    if times is None:
        return None
    if len(times) < 2:
        parts = [p for p in re.split(r"\n|\s+(?:-|to|\u2013)\s+", text.strip()) if p.strip()]
        parsed = [parse_export_time(p) for p in parts]
        if len(parsed) != 2 or parsed[0] is None or parsed[1] is None:
            return None
        return parsed[0], parsed[1]
    return times[0], times[-1]


_NUMBER_JUNK: Final = str.maketrans("", "", ", _")


def _count(text: str) -> int | None:
    """A non-negative count; thousands separators allowed; raises ValueError on anything else."""
    value = int(text.translate(_NUMBER_JUNK))
    if value < 0:
        msg = "negative"
        raise ValueError(msg)
    return value


# --- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One search as the export logged it, reduced to what the audit judges.

    `row` numbers data rows from 1; `line` is the physical line the row starts on (a multi-line
    Time Frame cell makes the two differ). `problems` lists cells that could not be read (a bad
    date or number); the row is still judged on everything else.
    """

    row: int
    line: int
    id: str | None
    org: str | None  # the Org Name cell; None when the layout has no organization column
    search_time: float | None
    frame_start: float | None
    frame_end: float | None
    networks: int | None
    devices: int | None
    reason: str | None  # None when the layout has no reason column
    offense_type: str | None
    search_type: str | None
    date_time: Presence
    query: Presence  # plate, filters or text prompt
    user: Presence
    organization: Presence
    purpose: Presence  # reason or offense type
    case_number: Presence
    problems: tuple[str, ...] = ()
    portal: str | None = None  # the portal of an archive row (`portal_slug`)
    user_name: str | None = None  # the user cell, kept only when a report is to show users


@dataclass(frozen=True, slots=True)
class MalformedRow:
    """A row that cannot be read at all (wrong column count, broken CSV); not judged."""

    row: int
    line: int
    id: str | None
    detail: str


def parse_row(
    layout: Layout, cells: Sequence[str], row: int, line: int, *, keep_user: bool = False
) -> ExportRow | MalformedRow:
    """Parse one CSV record of `layout`; cells that cannot be read become `problems`.

    The user cell is kept as text only with `keep_user` (a report that shows users on request);
    otherwise a row says only whether it was present.
    """
    columns = layout.columns
    wrong_width = width_problem(cells, layout.width)
    if wrong_width is not None:
        bad_id = (
            cells[columns["id"]].strip() if "id" in columns and columns["id"] < len(cells) else ""
        )
        return MalformedRow(row, line, bad_id or None, wrong_width)

    # Each known cell stripped once; a field the layout lacks reads as None.
    values = {field: cells[index].strip() for field, index in columns.items()}
    get = values.get

    problems: list[str] = []

    def when(field: str, label: str) -> float | None:
        text = get(field)
        if not text or is_redacted(text):
            return None
        value = parse_export_time(text)
        if value is None:
            problems.append(f"{label} is not a date and time")
        return value

    def count(field: str, label: str) -> int | None:
        text = get(field)
        if not text or is_redacted(text):
            return None
        try:
            return _count(text)
        except ValueError:
            problems.append(f"{label} is not a whole number")
            return None

    search_time = when("search_time", layout.header[columns["search_time"]])
    frame_start = when("frame_start", "Time Frame start")
    frame_end = when("frame_end", "Time Frame end")
    frame_text = get("time_frame")
    if frame_text and not is_redacted(frame_text):
        frame = _time_frame(frame_text)
        if frame is None:
            problems.append("Time Frame does not hold a start and an end time")
        else:
            frame_start, frame_end = frame
    networks = count("networks", "network count")
    devices = count("devices", "device count")

    raw_id = get("id")
    org = get("org")
    reason = get("reason")
    offense = get("offense_type")
    search_type = get("search_type")
    user = get("user")
    return ExportRow(
        row=row,
        line=line,
        id=raw_id or None,
        org=org,
        search_time=search_time,
        frame_start=frame_start,
        frame_end=frame_end,
        networks=networks,
        devices=devices,
        reason=reason,
        offense_type=offense,
        search_type=search_type or None,
        date_time=_presence([get("search_time")]),
        query=_presence([get("plate"), get("filters"), get("text_prompt")]),
        user=_presence([get("user")]),
        organization=Presence.PRESENT if layout.org_implied else _presence([org]),
        purpose=_presence([reason, offense]),
        case_number=_presence([get("case_number")]),
        problems=tuple(problems),
        portal=get("portal") or None,
        user_name=(user or None) if keep_user else None,
    )


_PORTALS_NAMED: Final = 5
_PORTALS_COUNTED: Final = 10_000


def portals_in(path: Path, column: int) -> Counter[str]:
    """Rows per portal of an archive (distinct names capped: past the cap they are not named)."""
    found: Counter[str] = Counter()
    with CsvFile(path, "export") as source:
        source.header()
        for _, _, cells in source.records():
            if isinstance(cells, str) or column >= len(cells):
                continue
            name = cells[column].strip()
            if name in found or len(found) < _PORTALS_COUNTED:
                found[name] += 1
    return found


def _named(portals: Counter[str]) -> str:
    names = sorted(portals)
    shown = ", ".join(n or "(empty)" for n in names[:_PORTALS_NAMED])
    more = len(names) - _PORTALS_NAMED
    return shown + (f" and {more:,} more" if more > 0 else "")


class ExportFile(ClosingFile):
    """An open export: `layout` from its header, iteration yields one parsed row at a time.

    Use as a context manager. An archive of several transparency portals (a `portal_slug`
    column with more than one value) is refused unless `portal` picks one: its searches belong
    to as many owners, and judging them all under one owner's law would be wrong. With `portal`,
    the other portals' rows are skipped (`skipped` counts them) and row numbers stay the file's.
    """

    def __init__(self, path: Path, *, portal: str | None = None, keep_user: bool = False) -> None:
        self.path = path
        self.portal = portal
        self.keep_user = keep_user
        self.skipped = 0
        self.portals: Counter[str] = Counter()
        self._source = CsvFile(path, "export")
        try:
            self.layout = self._read_header()
            self._check_portals()
        except BaseException:
            self._source.close()
            raise

    def _read_header(self) -> Layout:
        line, cells = self._source.header()
        found = detect_layout(cells)
        if isinstance(found, str):
            msg = f"export {self.path} line {line}: {found}"
            raise InputFileError(msg)
        return found

    def _check_portals(self) -> None:
        column = self.layout.columns.get("portal")
        if column is None:
            if self.portal is not None:
                msg = f"export {self.path} has no portal_slug column; --portal does not apply"
                raise InputFileError(msg)
            return
        self.portals = portals_in(self.path, column)
        if self.portal is None and len(self.portals) > 1:
            msg = (
                f"export {self.path} is an archive of {len(self.portals):,} portals "
                f"({_named(self.portals)}): audit one with --portal SLUG"
            )
            raise InputFileError(msg)
        if self.portal is not None and self.portal not in self.portals:
            msg = (
                f"export {self.path} has no rows of portal {self.portal!r}; "
                f"it holds {_named(self.portals)}"
            )
            raise InputFileError(msg)

    @property
    def fraction_read(self) -> float | None:
        return self._source.fraction_read

    def close(self) -> None:
        self._source.close()

    def _other_portal(self, cells: Sequence[str]) -> bool:
        column = self.layout.columns.get("portal")
        if self.portal is None or column is None or column >= len(cells):
            return False  # a row whose portal cannot be read is kept, and reported if broken
        return cells[column].strip() != self.portal

    def __iter__(self) -> Iterator[ExportRow | MalformedRow]:
        for row, line, cells in self._source.records():
            if isinstance(cells, str):
                yield MalformedRow(row, line, None, cells)
            elif self._other_portal(cells):
                self.skipped += 1
            else:
                yield parse_row(self.layout, cells, row, line, keep_user=self.keep_user)
