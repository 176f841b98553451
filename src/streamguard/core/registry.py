"""The agency registry: who is who, from `agency` records or a CSV file of the same columns."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from streamguard.core.models import AGENCY_KINDS, FEDERAL_STATE, Agency
from streamguard.exceptions import InputFileError

__all__ = ("agency_from_record", "load_agencies_csv")

_REQUIRED_COLUMNS: Final = ("agency_id", "name", "state", "kind")
# Two-letter codes we accept as a `state`: the 50 states, DC, territories, and US for federal.
_STATE_CODES: Final = (
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM "
    "NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP"
)
US_STATES: Final = frozenset(_STATE_CODES.split(" ")) | {FEDERAL_STATE}


def agency_from_record(record: Mapping[str, Any]) -> Agency | str:
    """Build an Agency from an `agency` record, or return what is wrong with it."""
    values: dict[str, str] = {}
    for column in _REQUIRED_COLUMNS:
        value = record.get(column)
        if not isinstance(value, str) or not value.strip():
            return f"field {column!r} must be a non-empty string"
        values[column] = value.strip()
    state = values["state"].upper()
    if state not in US_STATES:
        return f"state {values['state']!r} is not a two-letter US code"
    kind = values["kind"].lower()
    if kind not in AGENCY_KINDS:
        return f"kind {values['kind']!r} is not one of {', '.join(sorted(AGENCY_KINDS))}"
    raw_aliases = record.get("aliases")
    aliases: tuple[str, ...] = ()
    if isinstance(raw_aliases, str):
        aliases = tuple(a.strip() for a in raw_aliases.split("|") if a.strip())
    elif isinstance(raw_aliases, list):
        aliases = tuple(a.strip() for a in raw_aliases if isinstance(a, str) and a.strip())
    elif raw_aliases is not None:
        return "field 'aliases' must be a string or a list of strings"
    return Agency(
        agency_id=values["agency_id"],
        name=values["name"],
        state=state,
        kind=kind,
        aliases=aliases,
    )


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        msg = f"cannot read agencies file {path}: {exc.strerror or exc}"
        raise InputFileError(msg) from exc
    with handle:
        reader = csv.DictReader(handle)
        # The header is read lazily, so decoding errors can surface here or on any row.
        try:
            header = reader.fieldnames or []
            missing = [c for c in _REQUIRED_COLUMNS if c not in header]
            if missing:
                msg = f"agencies file {path} lacks column(s) {', '.join(missing)}"
                raise InputFileError(msg)
            for row in reader:
                yield reader.line_num, row
        except UnicodeDecodeError as exc:
            msg = f"agencies file {path} is not UTF-8 text (byte {exc.start} of a line)"
            raise InputFileError(msg) from exc
        except csv.Error as exc:
            msg = f"agencies file {path} line {reader.line_num}: {exc}"
            raise InputFileError(msg) from exc


def load_agencies_csv(path: Path) -> list[Agency]:
    """Read an agencies CSV; any bad row makes the whole file unusable (one-line error).

    A registry half-loaded would decide searches against the wrong set of agencies, so a bad
    row is not skipped: the operator fixes the file.
    """
    agencies: dict[str, Agency] = {}
    for line, row in _rows(path):
        result = agency_from_record(row)
        if isinstance(result, str):
            msg = f"agencies file {path} line {line}: {result}"
            raise InputFileError(msg)
        agencies[result.agency_id] = result
    return list(agencies.values())
