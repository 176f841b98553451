"""The bytes of one posted body to the JSON object a mapper reads. Pure.

Cameras post JSON (under whatever content type they like) or, Axis's "HTTP multipart" option, a
multipart form holding the event's JSON and its images. The images are counted and dropped here;
only the JSON part goes on.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass
from email.message import Message
from typing import Any

from streamguard import serde
from streamguard.ingest.types import MappingError

__all__ = ("ParsedBody", "parse_body")


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """The JSON object of a body and how many image parts came beside it."""

    value: dict[str, Any]
    image_parts: int = 0


def _json_object(raw: bytes) -> dict[str, Any] | MappingError:
    try:
        value = serde.loads(raw)
    except ValueError:
        # orjson rejects invalid UTF-8 as well as invalid JSON.
        return MappingError.malformed("the body is not JSON (UTF-8)")
    if not isinstance(value, dict):
        return MappingError.malformed("the body is JSON but not an object")
    return value


def _parts(raw: bytes, content_type: str) -> list[Message]:
    # The stdlib MIME parser reads the form without writing anything to disk.
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(head + raw)
    payload = message.get_payload() if message.is_multipart() else None
    return [part for part in payload if isinstance(part, Message)] if payload else []


def _part_bytes(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _multipart(raw: bytes, content_type: str) -> ParsedBody | MappingError:
    try:
        content_type.encode("latin-1")
        parts = _parts(raw, content_type)
    except (UnicodeError, ValueError, TypeError):
        parts = []
    if not parts:
        return MappingError.malformed("the body is a multipart form with no readable part")
    event: dict[str, Any] | None = None
    images = 0
    for part in parts:
        kind = part.get_content_type()
        if event is None and (kind == "application/json" or kind.startswith("text/")):
            parsed = _json_object(_part_bytes(part))
            if isinstance(parsed, dict):
                event = parsed
                continue
        images += 1  # an image (or anything else): counted, never read further
    if event is None:
        return MappingError.malformed("the multipart form holds no JSON object part")
    return ParsedBody(event, images)


def parse_body(raw: bytes, content_type: str | None) -> ParsedBody | MappingError:
    """The body's JSON object, or MALFORMED_EVENT when there is none."""
    if content_type and content_type.lower().lstrip().startswith("multipart/"):
        return _multipart(raw, content_type)
    parsed = _json_object(raw)
    return parsed if isinstance(parsed, MappingError) else ParsedBody(parsed)
