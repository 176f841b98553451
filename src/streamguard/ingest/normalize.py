"""Vendor values to contract values: plates, regions, confidences, times, places, read ids. Pure.

Every function either returns a contract value or raises `FieldError` with a sentence that names
the field and never quotes its value (values are plates, or come from a hostile poster).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

from streamguard import serde
from streamguard.core.engine import normalize_plate

__all__ = (
    "FieldError",
    "confidence_from_percent",
    "confidence_from_unit",
    "location",
    "plate",
    "read_id",
    "region",
    "required_id",
    "ts_from_epoch_ms",
    "ts_from_iso",
    "ts_from_local",
)

# Fixed for all time: changing it would give every retried webhook a new read_id.
INGEST_NAMESPACE: Final = uuid.UUID("0f6b1c9e-5a2d-5e47-9c3b-7d8e2a41f6c0")

# Longer than any plate issued anywhere; a longer "plate" is a mapping mistake or junk.
MAX_PLATE_LENGTH: Final = 16
# Epoch milliseconds from 2000 up to 2100: a seconds value sent as milliseconds lands in 1970 and
# is refused instead of being read as a date 50 years ago.
_MIN_EPOCH_MS: Final = 946_684_800_000
_MAX_EPOCH_MS: Final = 4_102_444_800_000
_REGION: Final = re.compile(r"(?:[a-z]{2}-)?([a-z0-9]{1,3})")
_AXIS_LOCAL: Final = re.compile(r"(\d{8}) (\d{6})(\d{3})")
MAX_ID_LENGTH: Final = 128


class FieldError(ValueError):
    """A field of a vendor body that cannot become its contract value."""


def plate(value: object, name: str) -> str:
    """The contract plate: upper-cased, spaces and dashes stripped, letters and digits only."""
    if not isinstance(value, str):
        msg = f"field {name!r} must be a string"
        raise FieldError(msg)
    text = normalize_plate(value)
    if not text:
        msg = f"field {name!r} holds no plate"
        raise FieldError(msg)
    if len(text) > MAX_PLATE_LENGTH or not text.isalnum():
        # Masked (`AB****`) and placeholder (`----/----`) plates end up here.
        msg = (
            f"field {name!r} must be a plate of at most {MAX_PLATE_LENGTH} letters and digits "
            "(besides spaces and dashes)"
        )
        raise FieldError(msg)
    return text


def region(value: object, name: str) -> str | None:
    """`us-ca` / `CA` / `ca` -> `CA`; None when the vendor did not say."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        match = _REGION.fullmatch(value.strip().lower())
        if match is not None:
            return match.group(1).upper()
    msg = f"field {name!r} must be a region code like 'us-ca' or 'CA'"
    raise FieldError(msg)


def _number(value: object, name: str) -> float:
    if isinstance(value, bool):
        number = math.nan
    elif isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
    else:
        number = math.nan
    if not math.isfinite(number):
        msg = f"field {name!r} must be a number"
        raise FieldError(msg)
    return number


def _confidence(number: float, scale: float, name: str) -> float:
    if not 0.0 <= number <= scale:
        msg = f"field {name!r} must be a confidence from 0 to {scale:g}"
        raise FieldError(msg)
    return round(number / scale, 4)


def confidence_from_percent(value: object, name: str) -> float | None:
    """A 0-100 confidence (OpenALPR) on the contract's 0-1 scale; None when absent."""
    if value is None:
        return None
    return _confidence(_number(value, name), 100.0, name)


def confidence_from_unit(value: object, name: str) -> float | None:
    """A 0-1 confidence (Axis, ParkPow), numbers or numeric strings; None when absent."""
    if value is None or value == "":
        return None
    return _confidence(_number(value, name), 1.0, name)


def _format_ms(epoch_ms: int) -> str:
    seconds, millis = divmod(epoch_ms, 1000)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def ts_from_epoch_ms(value: object, name: str) -> str:
    """Epoch milliseconds (a number or a string of digits) as the contract's ISO UTC string."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        epoch_ms = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        epoch_ms = value
    else:
        msg = f"field {name!r} must be epoch milliseconds"
        raise FieldError(msg)
    if not _MIN_EPOCH_MS <= epoch_ms < _MAX_EPOCH_MS:
        msg = f"field {name!r} must be epoch milliseconds between 2000 and 2100"
        raise FieldError(msg)
    return _format_ms(epoch_ms)


def _to_contract(moment: datetime, name: str) -> str:
    epoch_ms = round(moment.timestamp() * 1000)
    if not _MIN_EPOCH_MS <= epoch_ms < _MAX_EPOCH_MS:
        msg = f"field {name!r} must be a time between 2000 and 2100"
        raise FieldError(msg)
    return _format_ms(epoch_ms)


def ts_from_local(value: object, name: str, zone: tzinfo | None) -> str:
    """Axis `YYYYMMDD HHMMSSmmm` camera-local time, read in the owner's zone, as ISO UTC.

    A local time that a DST change repeats is read as its first occurrence (`fold=0`).
    """
    match = _AXIS_LOCAL.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        msg = f"field {name!r} must be a local time 'YYYYMMDD HHMMSSmmm'"
        raise FieldError(msg)
    if zone is None:
        msg = (
            f"field {name!r} is a camera-local time and the owner has no time zone configured "
            "(owners file 'timezone' or STREAMGUARD_INGEST_TIMEZONE)"
        )
        raise FieldError(msg)
    day, clock, millis = match.groups()
    try:
        naive = datetime.strptime(day + clock, "%Y%m%d%H%M%S")  # noqa: DTZ007 - zone set below
    except ValueError:
        msg = f"field {name!r} is not a calendar date and time"
        raise FieldError(msg) from None
    return _to_contract(naive.replace(microsecond=int(millis) * 1000, tzinfo=zone), name)


def ts_from_iso(value: object, name: str) -> str:
    """ISO-8601 with an explicit offset (`2024-10-24T20:29:26+03:00`, `...Z`) as ISO UTC."""
    moment = None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
    if moment is None:
        msg = f"field {name!r} must be an ISO-8601 time"
        raise FieldError(msg)
    if moment.tzinfo is None or moment.utcoffset() is None:
        msg = f"field {name!r} must carry a UTC offset (a time without one is ambiguous)"
        raise FieldError(msg)
    return _to_contract(moment, name)


def location(lat: object, lon: object, name: str) -> dict[str, float] | None:
    """`{"lat", "lon"}` in degrees; None when the vendor has no fix (absent, or both zero)."""
    if lat is None and lon is None:
        return None
    latitude = _number(lat, f"{name} latitude")
    longitude = _number(lon, f"{name} longitude")
    if latitude == 0.0 and longitude == 0.0:
        # Cameras without a configured position send 0/0 ("null island"), not a place.
        return None
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        msg = f"field {name!r} must be a latitude and longitude in degrees"
        raise FieldError(msg)
    return {"lat": latitude, "lon": longitude}


def required_id(body: Mapping[str, Any], key: str, name: str | None = None) -> str:
    """A vendor identifier (an integer, or printable text such as `G6378 - Camera`)."""
    value = body.get(key)
    label = name or key
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if text and len(text) <= MAX_ID_LENGTH and text.isprintable():
            return text
    msg = f"field {label!r} must be an identifier (printable text or an integer)"
    raise FieldError(msg)


def read_id(vendor: str, owner_id: str, *vendor_ids: str) -> str:
    """The read's stable id: a retried webhook carries the same vendor ids, so the same id.

    The owner is part of the name: two agencies' cameras may reuse each other's numbers.
    """
    return str(uuid.uuid5(INGEST_NAMESPACE, serde.dumps([vendor, owner_id, *vendor_ids]).decode()))
