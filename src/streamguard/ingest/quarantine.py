"""Quarantine records (docs/contract.md section 4) of unmappable bodies, and their ids. Pure.

Ids are uuid5, never random: a sender retries a refused body, and the retry must name the same
quarantine record so consumers can drop the copy.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from typing import Any, Final

from streamguard import serde
from streamguard.core.models import Reason
from streamguard.ingest.images import without_images
from streamguard.ingest.normalize import INGEST_NAMESPACE
from streamguard.ingest.types import MappingError

__all__ = ("MAPPING_VERSION", "RAW_KEEP_BYTES", "quarantine_id", "quarantine_record")

# Stands where a worker's record holds its policy version: the mapping rules that refused it.
MAPPING_VERSION: Final = "ingest/1"
CITATION: Final = "StreamGuard ingest mapping (docs/ingest.md)"
# A body that is not JSON may be anything, an image included: the copy keeps its first bytes, to
# tell what it was, and its size and hash, to find it again, but never enough to show a picture.
RAW_KEEP_BYTES: Final = 512


def quarantine_id(format_name: str, owner_id: str, raw: bytes) -> str:
    """The event id of a body with no readable vendor ids: the body itself, hashed."""
    digest = hashlib.sha256(raw).hexdigest()
    name = serde.dumps(["raw", format_name, owner_id, digest]).decode()
    return str(uuid.uuid5(INGEST_NAMESPACE, name))


def _raw_original(raw: bytes) -> dict[str, Any]:
    original: dict[str, Any] = {
        "raw_base64": base64.b64encode(raw[:RAW_KEEP_BYTES]).decode("ascii"),
        "raw_size": len(raw),
        "raw_sha256": hashlib.sha256(raw).hexdigest(),
    }
    if len(raw) > RAW_KEEP_BYTES:
        original["truncated"] = True
    return original


def quarantine_record(
    error: MappingError,
    *,
    format_name: str,
    owner_id: str,
    raw: bytes,
    body: dict[str, Any] | None,
    is_image_key: Callable[[str], bool],
    decided_at: str,
) -> dict[str, Any]:
    """The record of one refused body; `body` is its JSON object when it had one."""
    event_id = error.event_id or quarantine_id(format_name, owner_id, raw)
    reason = Reason(error.code, f"{CITATION}, {format_name}", error.detail)
    return {
        "event_id": event_id,
        "kind": "raw",
        "reasons": [reason.as_dict()],
        "decision_id": str(uuid.uuid5(INGEST_NAMESPACE, f"quarantine:{event_id}")),
        "decided_at": decided_at,
        "policy_version": MAPPING_VERSION,
        "original": _raw_original(raw) if body is None else without_images(body, is_image_key),
        # Additive: who posted it, in which layout.
        "owner": owner_id,
        "source_format": format_name,
    }
