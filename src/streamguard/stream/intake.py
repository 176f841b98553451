"""The one front door for input: the bytes of a message (or of a line) in, a decoded `Event`
or the reason it is none out. Pure.

The worker's `BatchProcessor`, `streamguard evaluate` and the demo's expected decisions all
decode here, so one set of rules says what is an event: the size and depth limits, the JSON
object check, the event kind (on a contract topic, that it is the topic's kind), the message key
of an agency record, and agency tombstones (a null value on the agencies topic deletes the agency
its key names). What passes is decided by `streamguard.core.engine.decide_event`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from streamguard import serde
from streamguard.core import codes
from streamguard.core.models import Agency, Event, MalformedDecision, Reason
from streamguard.core.registry import agency_from_record
from streamguard.stream.outputs import raw_original

__all__ = (
    "MAX_EVENT_BYTES",
    "TOPIC_KINDS",
    "Unreadable",
    "decode",
    "event_kind",
)

_CONTRACT: Final = "StreamGuard wire contract v1"
# Event kind -> the field that holds its id (docs/contract.md section 2).
_ID_FIELDS: Final[Mapping[str, str]] = {
    "search_request": "search_id",
    "plate_read": "read_id",
    "policy_change": "change_id",
    "agency": "agency_id",
}
# Input topic (by role) -> the one event kind it carries (docs/contract.md section 1).
TOPIC_KINDS: Final[Mapping[str, str]] = {
    "searches": "search_request",
    "reads": "plate_read",
    "policy": "policy_change",
    "agencies": "agency",
}
# Outputs echo the input event, and Kafka's default request limit is 1 MB: a larger message
# could be decided but not written. Real events are a few KB.
MAX_EVENT_BYTES: Final = 960 * 1024
# orjson reads up to 1024 levels of nesting but writes at most 254: an event nested deeper
# could be decided but its output never written, which would stop the agent. Deeper parts are
# replaced by a marker, well inside the writable depth.
_MAX_DEPTH: Final = 200
_TOO_DEEP: Final = f"<nested deeper than {_MAX_DEPTH} levels: removed by StreamGuard>"


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An input that is no event: what a quarantine record keeps of it, and why it is none."""

    original: Any  # the JSON object, `raw_original` of the bytes, or None for a bad tombstone
    decision: MalformedDecision


def event_kind(event: Mapping[str, Any]) -> str:
    """The contract kind of an input object, `raw` when it names none we know."""
    kind = event.get("type")
    if isinstance(kind, str) and kind in _ID_FIELDS:
        return kind
    if kind is None and "agency_id" in event and "name" in event:
        return "agency"
    return "raw"


def _event_id(event: Mapping[str, Any], kind: str) -> str | None:
    field = _ID_FIELDS.get(kind)
    value = event.get(field) if field else None
    return value if isinstance(value, str) and value else None


def _schema_invalid(
    original: Any, event_id: str | None, kind: str, section: str, detail: str, version: str
) -> Unreadable:
    reason = Reason(codes.SCHEMA_INVALID, f"{_CONTRACT}, section {section}", detail)
    return Unreadable(original, MalformedDecision(event_id, kind, reason, version))


def decode(
    value: bytes | None, version: str, *, role: str | None = None, key: bytes | None = None
) -> Event | Unreadable:
    """The event in `value`, or why there is none (decided under policy `version`).

    `role` names the input topic the message came from (`searches`, `reads`, `policy`,
    `agencies`), whose kind it must be; without one (a line of `evaluate`) any kind is taken.
    `key` is the Kafka message key, checked where the contract says what it holds.
    """
    expected = TOPIC_KINDS.get(role) if role is not None else None
    text_key = key.decode("utf-8", "replace") if key and expected == "agency" else None
    if value is None and expected == "agency":
        if not text_key:
            return _schema_invalid(
                None, None, "agency", "1", "a null agency value needs a key to delete", version
            )
        return Event("agency", text_key, {"agency_id": text_key}, deleted=True)
    raw = value or b""
    parsed = _json_object(raw)
    if isinstance(parsed, str):
        reason = Reason(codes.MALFORMED_EVENT, f"{_CONTRACT}, section 1", parsed)
        return Unreadable(raw_original(raw), MalformedDecision(None, "raw", reason, version))
    if expected == "agency":
        # The topic says what it carries: any object on it is read as an agency record.
        return _agency(parsed, text_key, version)
    kind = event_kind(parsed)
    if expected is not None and kind != expected:
        return _schema_invalid(
            parsed,
            _event_id(parsed, expected),
            kind,
            "1",
            f"a {kind} event on the {role} topic; expected {expected}",
            version,
        )
    if kind == "raw":
        return _schema_invalid(
            parsed,
            None,
            "raw",
            "2",
            "field 'type' must be search_request, plate_read or policy_change "
            "(or an agency record)",
            version,
        )
    return Event(kind, _event_id(parsed, kind), parsed)


def _agency(record: dict[str, Any], key: str | None, version: str) -> Event | Unreadable:
    event_id = _event_id(record, "agency")
    if key:
        # Only a record that is otherwise valid is held to its key; the engine reports what
        # is wrong with any other.
        agency = agency_from_record(record)
        if isinstance(agency, Agency) and agency.agency_id != key:
            detail = f"message key {key!r} differs from agency_id {agency.agency_id!r}"
            return _schema_invalid(record, event_id, "agency", "2", detail, version)
    return Event("agency", event_id, record)


def _json_object(raw: bytes) -> dict[str, Any] | str:
    """The JSON object in `raw` (clipped to the writable depth), or what is wrong with it."""
    if len(raw) > MAX_EVENT_BYTES:
        return f"the message is {len(raw):,} bytes, over the {MAX_EVENT_BYTES:,}-byte limit"
    try:
        obj = serde.loads(raw)
    except ValueError:
        return "the message is empty" if not raw else "the message is not UTF-8 JSON"
    if not isinstance(obj, dict):
        return "the message is JSON but not an object"
    # Counting brackets is a cheap upper bound of the depth; only then walk it.
    if raw.count(b"{") + raw.count(b"[") > _MAX_DEPTH:
        clipped: dict[str, Any] = _clip(obj, 0)
        return clipped
    return obj


def _clip(value: Any, depth: int) -> Any:
    """A copy of parsed JSON with containers deeper than _MAX_DEPTH replaced by a marker."""
    if isinstance(value, dict):
        if depth >= _MAX_DEPTH:
            return _TOO_DEEP
        return {k: _clip(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        if depth >= _MAX_DEPTH:
            return _TOO_DEEP
        return [_clip(v, depth + 1) for v in value]
    return value
