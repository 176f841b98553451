"""Inputs whose copies could not be written are bounded before they reach an output."""

from __future__ import annotations

import base64
import hashlib

from streamguard import serde
from streamguard.core.models import Event
from streamguard.stream.intake import MAX_EVENT_BYTES, Unreadable, decode
from streamguard.stream.outputs import RAW_KEEP_BYTES, raw_original


def _decode(value: bytes) -> Event | Unreadable:
    return decode(value, "v", role="searches", key=b"k")


def test_small_raw_copy_is_complete() -> None:
    """A small unreadable message is kept whole, as the raw_base64 of docs/contract.md section 4."""
    assert raw_original(b"\xff\x00junk") == {
        "raw_base64": base64.b64encode(b"\xff\x00junk").decode()
    }


def test_large_raw_copy_is_truncated_but_identified() -> None:
    """A large one keeps a prefix, its size and its hash, so the copy stays writable."""
    data = bytes(range(256)) * 4096
    copy = raw_original(data)
    assert len(base64.b64decode(copy["raw_base64"])) == RAW_KEEP_BYTES
    assert copy["truncated"] is True and copy["raw_size"] == len(data)
    assert copy["raw_sha256"] == hashlib.sha256(data).hexdigest()


def test_oversized_message_is_malformed() -> None:
    """A message over the event size limit is MALFORMED_EVENT, with a bounded copy."""
    item = _decode(serde.dumps({"type": "search_request", "x": "y" * MAX_EVENT_BYTES}))
    assert isinstance(item, Unreadable) and item.decision.codes == ("MALFORMED_EVENT",)
    assert "limit" in item.decision.reason.detail and item.original["truncated"] is True


def test_over_deep_object_is_clipped_so_it_can_be_written() -> None:
    """An object nested deeper than orjson can write is clipped, and the rest is kept."""
    raw = (
        b'{"type": "search_request", "search_id": "d1", "extra": ' + b"[" * 300 + b"]" * 300 + b"}"
    )
    item = _decode(raw)
    assert isinstance(item, Event) and item.body["search_id"] == "d1"
    assert serde.loads(serde.dumps(item.body))["type"] == "search_request"


def test_ordinary_object_is_untouched() -> None:
    """Everyday events pass through as parsed."""
    event = {"type": "search_request", "networks": ["a", "b"], "query": {"plate": "X"}}
    item = _decode(serde.dumps(event))
    assert isinstance(item, Event) and item.body == event
