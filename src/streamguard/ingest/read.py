"""The contract `plate_read` (docs/contract.md section 2) a mapper builds.

One place fixes its fields and order.
"""

from __future__ import annotations

from typing import Any

from streamguard.ingest.types import Owner

__all__ = ("plate_read",)


def plate_read(
    owner: Owner,
    source_format: str,
    *,
    read_id: str,
    ts: str,
    camera_id: str,
    plate: str,
    plate_state: str | None,
    confidence: float | None,
    location: dict[str, float] | None,
    images_dropped: int,
) -> dict[str, Any]:
    """A read of `owner`'s camera, shared by default with the owner's configured recipients.

    `hotlist_hit` is false: no accepted layout carries a hotlist result, and ingest matches no
    hotlist. `source_format` and `images_dropped` are additive fields (docs/contract.md
    section 1 allows them).
    """
    return {
        "type": "plate_read",
        "read_id": read_id,
        "ts": ts,
        "agency_id": owner.agency_id,
        "camera_id": camera_id,
        "plate": plate,
        "plate_state": plate_state,
        "confidence": confidence,
        "location": location,
        "hotlist_hit": False,
        "share_to": list(owner.share_to),
        "source_format": source_format,
        "images_dropped": images_dropped,
    }
