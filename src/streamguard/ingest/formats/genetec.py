"""Genetec AutoVu reads as ParkPow forwards them (`{"records": [...]}` visits) to plate_read. Pure.

Each record is a visit that a camera opened: its `id` (ParkPow's visit number) and the camera's
`code` name the read. Scores are 0-1, `start_date` is ISO-8601 with the camera's UTC offset. A
body holds one or more records and is mapped whole: one bad record refuses the body, so a
sender's retry never leaves half of it behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from streamguard.ingest import normalize
from streamguard.ingest.images import count_images
from streamguard.ingest.read import plate_read
from streamguard.ingest.types import Mapped, MappingError, MapResult, Owner, VendorFormat

__all__ = ("FORMAT", "map_genetec")

NAME: Final = "genetec"
# AutoVu's context and plate images, and the image fields ParkPow adds to a visit.
_IMAGE_KEYS: Final = frozenset(
    ("ContextImage", "PlateImage", "image", "images", "start_image", "end_image")
)
# A body is one forwarding batch, not an archive: a bound keeps one post's work bounded.
MAX_RECORDS: Final = 500


def is_image_key(key: str) -> bool:
    return key in _IMAGE_KEYS


def _object(value: object, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        msg = f"field {name!r} must be an object"
        raise normalize.FieldError(msg)
    return value


def _records(body: Mapping[str, Any]) -> list[Any]:
    records = body.get("records")
    if records is None and "vehicle" in body:
        return [body]  # one visit posted on its own
    if not isinstance(records, list) or not records:
        msg = "field 'records' must be a non-empty list of visits"
        raise normalize.FieldError(msg)
    if len(records) > MAX_RECORDS:
        msg = f"field 'records' holds more than {MAX_RECORDS} visits"
        raise normalize.FieldError(msg)
    return records


def _read(record: Mapping[str, Any], owner: Owner, event_id: str, camera: str) -> dict[str, Any]:
    vehicle = _object(record.get("vehicle"), "vehicle")
    start = _object(record.get("start_data"), "start_data")
    cam = _object(record.get("start_cam"), "start_cam")
    score = start.get("score", record.get("score"))
    return plate_read(
        owner,
        NAME,
        read_id=event_id,
        ts=normalize.ts_from_iso(record.get("start_date"), "start_date"),
        camera_id=camera,
        plate=normalize.plate(
            vehicle.get("license_plate", start.get("plate")), "vehicle.license_plate"
        ),
        plate_state=normalize.region(start.get("region"), "start_data.region"),
        confidence=normalize.confidence_from_unit(score, "start_data.score"),
        location=normalize.location(cam.get("latitude"), cam.get("longitude"), "start_cam"),
        images_dropped=count_images(record, is_image_key),
    )


def map_genetec(body: Mapping[str, Any], owner: Owner) -> MapResult:
    """A ParkPow visits body -> one plate_read per record, or one error for the whole body."""
    try:
        records = _records(body)
    except normalize.FieldError as exc:
        return MappingError.invalid(str(exc))
    reads: list[dict[str, Any]] = []
    for index, item in enumerate(records):
        event_id = None
        try:
            record = _object(item, "record")
            visit_id = normalize.required_id(record, "id")
            camera = normalize.required_id(
                _object(record.get("start_cam"), "start_cam"), "code", "start_cam.code"
            )
            event_id = normalize.read_id(NAME, owner.agency_id, camera, visit_id)
            reads.append(_read(record, owner, event_id, camera))
        except normalize.FieldError as exc:
            # The quarantine copy holds the whole body: it is named by the read it would have
            # been only when it holds one record.
            return MappingError.invalid(
                f"records[{index}]: {exc}", event_id if len(records) == 1 else None
            )
    return Mapped(tuple(reads))


FORMAT: Final = VendorFormat(NAME, map_genetec, is_image_key)
