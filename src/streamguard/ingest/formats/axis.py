"""AXIS License Plate Verifier push events (HTTP, JSON) to plate_read. Pure.

The camera sends an event when it first sees a vehicle (`carState` `new`), when the plate or the
direction changes (`update`) and when it has lost the vehicle (`lost`); each is one read, named by
the camera's serial number, its `carID`, the state and the capture time. Confidences are 0-1
(sent as strings), `capture_timestamp` is epoch ms and `datetime` (`YYYYMMDD HHMMSSmmm`) is the
camera's local time, used only when the epoch time is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from streamguard.ingest import normalize
from streamguard.ingest.images import count_images
from streamguard.ingest.read import plate_read
from streamguard.ingest.types import Mapped, MappingError, MapResult, Owner, VendorFormat

__all__ = ("FORMAT", "map_axis")

NAME: Final = "axis"
# `imagesURI`: paths of the crops on the camera (a recipient holding one could fetch the image);
# `image`, `plateImage`, `carImage`: base64 images of the push event's image options.
_IMAGE_KEYS: Final = frozenset(("imagesURI", "image", "plateImage", "carImage"))
_PLATE_KEYS: Final = ("plateText", "plateUTF8", "plateUnicode")


def is_image_key(key: str) -> bool:
    return key in _IMAGE_KEYS


def _serial(body: Mapping[str, Any]) -> str:
    info = body.get("camera_info")
    return normalize.required_id(
        info if isinstance(info, Mapping) else {}, "SerialNumber", "camera_info.SerialNumber"
    )


def _ts(body: Mapping[str, Any], owner: Owner) -> tuple[str, str]:
    """(contract ts, the vendor's own spelling of it for the read id)."""
    epoch = body.get("capture_timestamp")
    if epoch not in (None, "", "0", 0):
        return normalize.ts_from_epoch_ms(epoch, "capture_timestamp"), str(epoch)
    local = body.get("datetime")
    return normalize.ts_from_local(local, "datetime", owner.zone), str(local)


def _plate_value(body: Mapping[str, Any]) -> object:
    for key in _PLATE_KEYS:
        if body.get(key) not in (None, ""):
            return body[key]
    return None


def _geotag(body: Mapping[str, Any]) -> dict[str, float] | None:
    geotag = body.get("geotag")
    if geotag is None:
        return None
    if not isinstance(geotag, Mapping):
        msg = "field 'geotag' must be an object with 'lat' and 'lon'"
        raise normalize.FieldError(msg)
    return normalize.location(geotag.get("lat"), geotag.get("lon"), "geotag")


def map_axis(body: Mapping[str, Any], owner: Owner) -> MapResult:
    """One push event -> one plate_read."""
    event_id = None
    try:
        serial = _serial(body)
        car_id = normalize.required_id(body, "carID")
        state = body.get("carState") if isinstance(body.get("carState"), str) else ""
        ts, ts_text = _ts(body, owner)
        event_id = normalize.read_id(NAME, owner.agency_id, serial, car_id, str(state), ts_text)
        read = plate_read(
            owner,
            NAME,
            read_id=event_id,
            ts=ts,
            camera_id=serial,
            plate=normalize.plate(_plate_value(body), "plateText"),
            plate_state=normalize.region(body.get("plateRegion"), "plateRegion"),
            confidence=normalize.confidence_from_unit(
                body.get("plateConfidence"), "plateConfidence"
            ),
            location=_geotag(body),
            images_dropped=count_images(body, is_image_key),
        )
    except normalize.FieldError as exc:
        return MappingError.invalid(str(exc), event_id)
    return Mapped((read,))


FORMAT: Final = VendorFormat(NAME, map_axis, is_image_key)
