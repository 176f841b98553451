"""One posted body to what is sent and what is answered: the ingest's whole decision. Pure.

Shared by the HTTP endpoint and the file command, so a body replayed from a file is mapped
exactly as it was when posted. A body becomes its reads (topic `reads`), or one quarantine record
(topic `quarantine`) with a 4xx answer, or nothing at all when it is not a read (a heartbeat),
which is answered and counted.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from typing import Any, Final, Literal

from streamguard.core.codes import MALFORMED_EVENT
from streamguard.ingest.body import parse_body
from streamguard.ingest.images import count_images
from streamguard.ingest.quarantine import quarantine_record
from streamguard.ingest.types import Ignored, Mapped, MappingError, MapResult, Owner, VendorFormat

__all__ = ("OUTCOMES", "Message", "Translation", "translate")

logger = logging.getLogger(__name__)

# Outcomes of a body that was read; the endpoint adds its own (unauthorized, too_large, ...).
OUTCOMES: Final = ("accepted", "ignored", "malformed", "schema_invalid")
_STATUS: Final = {"accepted": 202, "ignored": 200, "malformed": 400, "schema_invalid": 422}


@dataclass(frozen=True, slots=True)
class Message:
    """One record to send: to the reads or the quarantine topic, with its key."""

    topic: Literal["reads", "quarantine"]
    key: str
    value: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Translation:
    """What one body became."""

    outcome: str  # one of OUTCOMES
    answer: dict[str, Any]
    messages: tuple[Message, ...] = ()
    images_dropped: int = 0
    code: str | None = None  # the quarantine reason code

    @property
    def status(self) -> int:
        return _STATUS[self.outcome]

    @property
    def reads(self) -> tuple[dict[str, Any], ...]:
        return tuple(m.value for m in self.messages if m.topic == "reads")


def _map(fmt: VendorFormat, body: dict[str, Any], owner: Owner) -> MapResult:
    try:
        return fmt.mapper(body, owner)
    except Exception as exc:  # a mapper bug refuses one body, never the process
        # The exception's message may quote the body (a plate): log its type and where only.
        where = "; ".join(
            f"{f.filename}:{f.lineno}" for f in traceback.extract_tb(exc.__traceback__)
        )
        logger.error("ingest %s mapper failed: %s at %s", fmt.name, type(exc).__name__, where)
        return MappingError.invalid("the body could not be mapped (an ingest fault, logged)")


def translate(
    fmt: VendorFormat, owner: Owner, raw: bytes, content_type: str | None, decided_at: str
) -> Translation:
    """Map one body posted (or replayed) for `owner` in `fmt`'s layout."""
    parsed = parse_body(raw, content_type)
    body: dict[str, Any] | None = None
    if isinstance(parsed, MappingError):
        result: MapResult = parsed
        images = 0
    else:
        body = parsed.value
        images = parsed.image_parts
        result = _map(fmt, body, owner)
    if isinstance(result, Mapped):
        # Image parts of a multipart form belong to the body: they are told on its first read.
        reads = tuple(
            {**read, "images_dropped": read["images_dropped"] + images} if index == 0 else read
            for index, read in enumerate(result.reads)
        )
        return Translation(
            "accepted",
            {"accepted": len(reads), "read_ids": [r["read_id"] for r in reads]},
            tuple(Message("reads", owner.agency_id, r) for r in reads),
            sum(r["images_dropped"] for r in reads),
        )
    dropped = images + (count_images(body, fmt.is_image_key) if body is not None else 0)
    if isinstance(result, Ignored):
        return Translation("ignored", {"ignored": result.reason}, (), dropped)
    record = quarantine_record(
        result,
        format_name=fmt.name,
        owner_id=owner.agency_id,
        raw=raw,
        body=body,
        is_image_key=fmt.is_image_key,
        decided_at=decided_at,
    )
    outcome = "malformed" if result.code == MALFORMED_EVENT else "schema_invalid"
    answer = {"error": result.code, "detail": result.detail, "quarantine_id": record["event_id"]}
    return Translation(
        outcome,
        answer,
        (Message("quarantine", record["event_id"], record),),
        dropped,
        result.code,
    )
