"""OpenALPR / Rekor Scout `alpr_group` webhook bodies to plate_read. Pure.

An `alpr_group` is Scout's one result per vehicle, sent once the plate has left the frame. Its
`best_uuid` (`<agent_uid>-<camera_id>-<epoch ms>`) names the frame of the best plate and is the
same in every retry of the webhook. Confidences are percentages (0-100), times epoch ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from streamguard.ingest import normalize
from streamguard.ingest.images import count_images
from streamguard.ingest.read import plate_read
from streamguard.ingest.types import Ignored, Mapped, MappingError, MapResult, Owner, VendorFormat

__all__ = ("FORMAT", "map_openalpr")

NAME: Final = "openalpr"
# Scout posts these to the same URL as reads; they are answered and counted, not quarantined.
_NOT_READS: Final = frozenset(("heartbeat",))


def is_image_key(key: str) -> bool:
    # `vehicle_crop_jpeg`, `plate_crop_jpeg`: base64 JPEG crops.
    return key.endswith("_jpeg")


def _best(body: Mapping[str, Any]) -> Mapping[str, Any]:
    best = body.get("best_plate")
    return best if isinstance(best, Mapping) else {}


def map_openalpr(body: Mapping[str, Any], owner: Owner) -> MapResult:
    """One `alpr_group` body -> one plate_read; heartbeats and previews are ignored."""
    data_type = body.get("data_type")
    if isinstance(data_type, str) and data_type in _NOT_READS:
        return Ignored(data_type)
    if data_type != "alpr_group":
        return MappingError.invalid(
            "field 'data_type' must be 'alpr_group' (per-frame results and alerts are not "
            "accepted: configure the webhook to send plate groups)"
        )
    if body.get("is_preview") is True:
        # A preview is followed by the final group of the same vehicle: mapping both would
        # record the vehicle twice.
        return Ignored("preview")
    event_id = None
    try:
        agent_uid = normalize.required_id(body, "agent_uid")
        camera_id = normalize.required_id(body, "camera_id")
        best_uuid = normalize.required_id(body, "best_uuid")
        event_id = normalize.read_id(NAME, owner.agency_id, agent_uid, camera_id, best_uuid)
        best = _best(body)
        plate_value = body.get("best_plate_number", best.get("plate"))
        region_value = body.get("best_region", best.get("region"))
        confidence_value = body.get("best_confidence", best.get("confidence"))
        read = plate_read(
            owner,
            NAME,
            read_id=event_id,
            ts=normalize.ts_from_epoch_ms(body.get("epoch_start"), "epoch_start"),
            camera_id=camera_id,
            plate=normalize.plate(plate_value, "best_plate_number"),
            plate_state=normalize.region(region_value, "best_region"),
            confidence=normalize.confidence_from_percent(confidence_value, "best_confidence"),
            location=normalize.location(
                body.get("gps_latitude"), body.get("gps_longitude"), "gps_latitude/gps_longitude"
            ),
            images_dropped=count_images(body, is_image_key),
        )
    except normalize.FieldError as exc:
        return MappingError.invalid(str(exc), event_id)
    return Mapped((read,))


FORMAT: Final = VendorFormat(NAME, map_openalpr, is_image_key)
