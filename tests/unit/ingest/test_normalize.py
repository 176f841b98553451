"""Vendor values to contract values: plates, regions, confidence scales, the three time forms,
places and read ids; and that a refusal never quotes the value it refuses."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from streamguard.ingest import normalize
from streamguard.ingest.normalize import FieldError
from tests.unit.ingest.samples import LOS_ANGELES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8ABC123", "8ABC123"),
        ("8abc 123", "8ABC123"),
        ("8-ABC-123", "8ABC123"),
        (" 8abc\t123 ", "8ABC123"),
        ("\u041c\u0422 777", "\u041c\u0422777"),  # Cyrillic letters: Axis sends plateUnicode
    ],
)
def test_plate_is_upper_cased_and_stripped_of_spaces_and_dashes(raw: str, expected: str) -> None:
    """The contract's plate normalization, as the engine applies it."""
    assert normalize.plate(raw, "plate") == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",  # nothing
        " - ",  # only separators
        "AB*****",  # a masked plate
        "----/----",  # Axis's placeholder for "no plate"
        "8ABC.123",  # punctuation the contract does not strip
        "A" * 17,  # longer than any plate
        None,
        123456,
    ],
)
def test_plate_refuses_what_is_not_a_plate_without_quoting_it(raw: object) -> None:
    with pytest.raises(FieldError) as caught:
        normalize.plate(raw, "best_plate_number")
    assert "best_plate_number" in str(caught.value)
    if isinstance(raw, str) and raw.strip(" -"):
        assert raw not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("us-ca", "CA"), ("US-TX", "TX"), ("ca", "CA"), ("CA", "CA"), ("eu-pl", "PL"), (None, None)],
)
def test_region_codes_become_the_state_or_region(raw: object, expected: str | None) -> None:
    assert normalize.region(raw, "best_region") == expected


@pytest.mark.parametrize("raw", ["california", "us_ca", 6, ["ca"]])
def test_region_refuses_other_spellings(raw: object) -> None:
    with pytest.raises(FieldError, match="best_region"):
        normalize.region(raw, "best_region")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(93.50499725341797, 0.935), (100, 1.0), (0, 0.0), ("71.2", 0.712), (None, None)],
)
def test_percent_confidence_is_scaled_to_0_1(raw: object, expected: float | None) -> None:
    """OpenALPR's 0-100."""
    assert normalize.confidence_from_percent(raw, "best_confidence") == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("0.719034", 0.719), (0.9, 0.9), (1, 1.0), ("", None), (None, None)]
)
def test_unit_confidence_is_kept_on_0_1(raw: object, expected: float | None) -> None:
    """Axis (strings) and ParkPow (numbers) already use 0-1."""
    assert normalize.confidence_from_unit(raw, "plateConfidence") == expected


@pytest.mark.parametrize("raw", [101, -1, "high", True, float("nan"), float("inf"), [0.5]])
def test_percent_confidence_refuses_values_off_the_scale(raw: object) -> None:
    with pytest.raises(FieldError, match="best_confidence"):
        normalize.confidence_from_percent(raw, "best_confidence")


def test_unit_confidence_refuses_a_percentage() -> None:
    """A 0-100 value in a 0-1 field is a layout mistake, not a confidence of 9,300%."""
    with pytest.raises(FieldError, match="from 0 to 1"):
        normalize.confidence_from_unit("93.5", "plateConfidence")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1609433731402, "2020-12-31T16:55:31.402Z"),
        ("1623405938252", "2021-06-11T10:05:38.252Z"),
        (1767225600000, "2026-01-01T00:00:00Z"),
    ],
)
def test_epoch_milliseconds_become_iso_utc(raw: object, expected: str) -> None:
    assert normalize.ts_from_epoch_ms(raw, "epoch_start") == expected


@pytest.mark.parametrize(
    "raw",
    [
        1609433731,  # seconds sent as milliseconds: 1970, refused
        4102444800000,  # 2100
        "1609433731402.5",
        "-1609433731402",
        True,
        1609433731402.0,
        None,
    ],
)
def test_epoch_milliseconds_refuse_other_values(raw: object) -> None:
    with pytest.raises(FieldError, match="epoch_start"):
        normalize.ts_from_epoch_ms(raw, "epoch_start")


@pytest.mark.parametrize(
    ("raw", "zone", "expected"),
    [
        # The Axis sample's pair: 13:05:38.252 in Kyiv (UTC+3 in June) is its epoch time.
        ("20210611 130538252", ZoneInfo("Europe/Kyiv"), "2021-06-11T10:05:38.252Z"),
        ("20251231 160000252", LOS_ANGELES, "2026-01-01T00:00:00.252Z"),  # PST, UTC-8
        ("20250701 090000000", LOS_ANGELES, "2025-07-01T16:00:00Z"),  # PDT, UTC-7
        ("20251102 013000000", LOS_ANGELES, "2025-11-02T08:30:00Z"),  # repeated hour: first
        ("20250101 000000000", UTC, "2025-01-01T00:00:00Z"),
        ("20250101 000000000", timezone(timedelta(hours=5, minutes=30)), "2024-12-31T18:30:00Z"),
    ],
)
def test_axis_local_time_is_read_in_the_owners_zone(raw: str, zone: object, expected: str) -> None:
    assert normalize.ts_from_local(raw, "datetime", zone) == expected  # type: ignore[arg-type]


def test_axis_local_time_without_a_zone_is_refused() -> None:
    """Guessing UTC would shift every read by the owner's offset: fail closed."""
    with pytest.raises(FieldError, match="no time zone configured"):
        normalize.ts_from_local("20251231 160000252", "datetime", None)


@pytest.mark.parametrize(
    "raw", ["2025-12-31 16:00:00", "20251331 160000252", "20251231 250000000", "20251231", 5]
)
def test_axis_local_time_refuses_other_shapes(raw: object) -> None:
    with pytest.raises(FieldError, match="datetime"):
        normalize.ts_from_local(raw, "datetime", LOS_ANGELES)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-10-24T20:29:26+03:00", "2024-10-24T17:29:26Z"),
        ("2025-12-31T16:00:00.400-08:00", "2026-01-01T00:00:00.400Z"),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
    ],
)
def test_iso_with_offset_becomes_utc(raw: str, expected: str) -> None:
    assert normalize.ts_from_iso(raw, "start_date") == expected


@pytest.mark.parametrize("raw", ["2024-10-24T20:29:26", "yesterday", "", None, 1729790966])
def test_iso_without_an_offset_or_not_iso_is_refused(raw: object) -> None:
    with pytest.raises(FieldError, match="start_date"):
        normalize.ts_from_iso(raw, "start_date")


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        (34.27, -119.23, {"lat": 34.27, "lon": -119.23}),
        ("34.27", "-119.23", {"lat": 34.27, "lon": -119.23}),
        (None, None, None),
        (0, 0, None),  # a camera with no configured position
    ],
)
def test_location(lat: object, lon: object, expected: object) -> None:
    assert normalize.location(lat, lon, "geotag") == expected


@pytest.mark.parametrize(("lat", "lon"), [(91, 0), (0, 181), (34.2, None), ("north", 1)])
def test_location_refuses_what_is_not_a_place(lat: object, lon: object) -> None:
    with pytest.raises(FieldError, match="geotag"):
        normalize.location(lat, lon, "geotag")


def test_read_id_is_uuid5_over_vendor_owner_and_vendor_ids() -> None:
    """The derivation docs/ingest.md states, recomputed here with the standard library."""
    name = json.dumps(["axis", "ca-x", "SERIAL", "52211"], separators=(",", ":"))
    expected = str(uuid.uuid5(normalize.INGEST_NAMESPACE, name))
    assert normalize.read_id("axis", "ca-x", "SERIAL", "52211") == expected
    assert str(normalize.INGEST_NAMESPACE) == "0f6b1c9e-5a2d-5e47-9c3b-7d8e2a41f6c0"


def test_read_id_separates_owners_vendors_and_id_boundaries() -> None:
    ids = {
        normalize.read_id("axis", "ca-a", "S1", "52211"),
        normalize.read_id("axis", "ca-b", "S1", "52211"),  # another owner's camera numbers
        normalize.read_id("openalpr", "ca-a", "S1", "52211"),
        normalize.read_id("axis", "ca-a", "S15", "2211"),  # same characters, other split
    }
    assert len(ids) == 4


@pytest.mark.parametrize(
    ("value", "expected"), [(1234567, "1234567"), (" G6 - Camera ", "G6 - Camera")]
)
def test_required_id_takes_integers_and_printable_text(value: object, expected: str) -> None:
    assert normalize.required_id({"k": value}, "k") == expected


@pytest.mark.parametrize("value", [None, "", "a\nb", "x" * 129, True, 1.5, {"id": 1}])
def test_required_id_refuses_anything_else(value: object) -> None:
    with pytest.raises(FieldError, match="'k'"):
        normalize.required_id({"k": value}, "k")
