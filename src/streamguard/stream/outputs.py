"""Output records of the worker (docs/contract.md sections 4 and 6) and their deterministic
ids. Pure.

Ids are uuid5 of what identifies the input, never random: at-least-once delivery replays
events after a crash, and a replayed event must produce the same `decision_id` (and an alert
the same `alert_id`) so that consumers can drop the copy.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from streamguard.core.engine import normalize_plate, purpose_text
from streamguard.core.models import (
    ChangeDecision,
    Decision,
    MalformedDecision,
    ReadDecision,
    Reason,
    SearchDecision,
    UpsertDecision,
)
from streamguard.core.timeutil import format_ts

__all__ = (
    "NAMESPACE",
    "Out",
    "alert_id",
    "alert_record",
    "approved_search",
    "audit_fields",
    "clamped_windows",
    "decision_id",
    "quarantine_kind",
    "quarantine_record",
    "raw_decision_id",
    "raw_original",
    "redact_plate",
    "route",
    "shared_read",
)

# Fixed for all time: changing it would change every id and defeat replay de-duplication.
NAMESPACE: Final = uuid.UUID("6f1d2a7e-3c4b-5e8f-9a0b-1c2d3e4f5a6b")

# "attempts" is internal: out-of-state/federal search attempts re-keyed by owner.
Role = Literal["approved", "shared", "quarantine", "alerts", "attempts"]


@dataclass(frozen=True, slots=True)
class Out:
    """One message to send: which output topic (by role), its key and its value."""

    role: Role
    key: str
    value: dict[str, Any]


_NAMESPACE_BYTES: Final = NAMESPACE.bytes


def _uuid5(name: str) -> str:
    """`str(uuid.uuid5(NAMESPACE, name))` without building a UUID object (a third of the cost
    of an id at thousands of decisions a second); equality is tested."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()[:16])  # noqa: S324 - uuid5 is SHA-1 by definition
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def decision_id(kind: str, event_id: str) -> str:
    return _uuid5(f"{kind}:{event_id}")


def raw_decision_id(topic: str, partition: int, offset: int) -> str:
    """Id of a decision on a message with no readable event id: where it sits in Kafka."""
    return _uuid5(f"raw:{topic}:{partition}:{offset}")


def alert_id(kind: str, agency_id: str, window_start: str) -> str:
    return _uuid5(f"alert:{kind}:{agency_id}:{window_start}")


# A quarantine copy keeps at most this much of an unreadable message. Kafka's default request
# limit is 1 MB and base64 grows data by a third: a full copy of a large junk message could not
# be written, and the agent deciding it would stop. Size and hash still identify the original.
RAW_KEEP_BYTES: Final = 64 * 1024


def raw_original(data: bytes) -> dict[str, Any]:
    """The quarantine copy of a message that is not a JSON object (`raw_base64`,
    docs/contract.md section 4)."""
    if len(data) <= RAW_KEEP_BYTES:
        return {"raw_base64": base64.b64encode(data).decode("ascii")}
    return {
        "raw_base64": base64.b64encode(data[:RAW_KEEP_BYTES]).decode("ascii"),
        "truncated": True,
        "raw_size": len(data),
        "raw_sha256": hashlib.sha256(data).hexdigest(),
    }


def quarantine_kind(decision: Decision) -> str:
    if isinstance(decision, SearchDecision):
        return "search_request"
    if isinstance(decision, ReadDecision):
        return "plate_read"
    if isinstance(decision, ChangeDecision):
        return "policy_change"
    if isinstance(decision, UpsertDecision):
        return "agency"
    return decision.kind


def _denied(decision: SearchDecision | ReadDecision) -> list[dict[str, Any]]:
    return [{"agency_id": v.agency_id, "codes": list(v.codes)} for v in decision.denied]


def clamped_windows(decision: SearchDecision) -> list[dict[str, Any]]:
    """The window each allowed owner may answer an open-ended search with (additive field
    `clamped_windows`): reads from `from` on, its retention limit (docs/contract.md, section 2)."""
    return [{"agency_id": owner, "from": format_ts(start)} for owner, start in decision.clamped]


def approved_search(
    event: Mapping[str, Any], decision: SearchDecision, did: str, decided_at: str
) -> dict[str, Any]:
    record = {
        **event,
        "decision_id": did,
        "decided_at": decided_at,
        "allowed_networks": list(decision.allowed),
        "denied_networks": _denied(decision),
        "policy_version": decision.policy_version,
    }
    if decision.clamped:
        record["clamped_windows"] = clamped_windows(decision)
    return record


def shared_read(
    event: Mapping[str, Any], decision: ReadDecision, did: str, decided_at: str
) -> dict[str, Any]:
    return {
        **event,
        "decision_id": did,
        "decided_at": decided_at,
        "recipients": list(decision.allowed),
        "denied_recipients": _denied(decision),
    }


def quarantine_record(
    event_id: str | None,
    kind: str,
    reasons: tuple[Reason, ...],
    did: str,
    decided_at: str,
    policy_version: str,
    original: Any,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "kind": kind,
        "reasons": [r.as_dict() for r in reasons],
        "decision_id": did,
        "decided_at": decided_at,
        "policy_version": policy_version,
        "original": original,
    }


def alert_record(
    kind: str,
    agency_id: str,
    window_start: str,
    window_end: str,
    value: int,
    threshold: int,
    detail: str,
) -> dict[str, Any]:
    return {
        "alert_id": alert_id(kind, agency_id, window_start),
        "kind": kind,
        "agency_id": agency_id,
        "window_start": window_start,
        "window_end": window_end,
        "value": value,
        "threshold": threshold,
        "detail": detail,
    }


def route(
    original: Any,
    decision: Decision,
    did: str,
    decided_at: str,
    *,
    fallback_key: str,
) -> list[Out]:
    """Where one decision goes (docs/contract.md sections 3 and 4). `original` is the parsed
    input, or raw_original.

    `fallback_key` keys the quarantine copy of an event whose id could not be read.
    """
    out: list[Out] = []
    event = original if isinstance(original, Mapping) else {}
    if isinstance(decision, SearchDecision):
        if decision.outcome in ("approved", "partial"):
            out.append(
                Out(
                    "approved",
                    _requester_id(event),
                    approved_search(event, decision, did, decided_at),
                )
            )
        if decision.outcome == "approved":
            return out
    elif isinstance(decision, ReadDecision):
        if decision.outcome in ("shared", "partial"):
            out.append(
                Out(
                    "shared",
                    str(event.get("agency_id", "")),
                    shared_read(event, decision, did, decided_at),
                )
            )
        if decision.outcome == "shared":
            return out
    elif isinstance(decision, ChangeDecision | UpsertDecision) and decision.outcome != "rejected":
        return out
    reasons = decision.reasons
    event_id = decision.event_id
    out.append(
        Out(
            "quarantine",
            event_id if event_id is not None else fallback_key,
            quarantine_record(
                event_id,
                quarantine_kind(decision),
                reasons,
                did,
                decided_at,
                decision.policy_version,
                original,
            ),
        )
    )
    return out


def _requester_id(event: Mapping[str, Any]) -> str:
    requester = event.get("requester")
    if isinstance(requester, Mapping) and isinstance(requester.get("agency_id"), str):
        return str(requester["agency_id"])
    return ""


def redact_plate(text: str, plate: str | None) -> str:
    """`text` with any spelling of `plate` (spaces, dashes, case) replaced by `[plate]`.

    Officers type the plate into the purpose ("stolen car 8ABC-123"); the audit trail keeps the
    purpose, which the law requires, but never a plate in clear.
    """
    if not plate:
        return text
    norm = normalize_plate(plate)
    if not norm or norm not in normalize_plate(text):
        return text
    pattern = r"[\s-]*".join(re.escape(ch) for ch in norm)
    return re.sub(pattern, "[plate]", text, flags=re.IGNORECASE)


def audit_fields(
    original: Any,
    decision: Decision,
    did: str,
    decided_at: str,
    plate_hash: str | None,
) -> dict[str, Any]:
    """The docs/contract.md section 6 fields of one decision, without the chain bookkeeping."""
    fields: dict[str, Any] = {
        "event_id": decision.event_id,
        "kind": quarantine_kind(decision),
        "outcome": decision.outcome,
        "codes": list(decision.codes),
        "policy_version": decision.policy_version,
        "decided_at": decided_at,
        "decision_id": did,
    }
    event = original if isinstance(original, Mapping) else {}
    if isinstance(decision, MalformedDecision):
        # Fields of an invalid event are not trustworthy enough to put on the record.
        return fields
    if plate_hash is not None:
        fields["plate_sha256"] = plate_hash
    if isinstance(decision, SearchDecision):
        query = event["query"]
        plate = query.get("plate")
        fields |= {
            "requester": event["requester"]["agency_id"],
            "user_id": event["requester"]["user_id"],
            "reason": redact_plate(purpose_text(event), plate),
            "case_number": event.get("case_number"),
            "scope": event["scope"],
            "query_from": query.get("from"),
            "query_to": query.get("to"),
            **({"clamped_windows": clamped_windows(decision)} if decision.clamped else {}),
            "allowed": list(decision.allowed),
            "denied": [v.agency_id for v in decision.denied],
        }
    elif isinstance(decision, ReadDecision):
        fields |= {
            "owner": event["agency_id"],
            "allowed": list(decision.allowed),
            "denied": [v.agency_id for v in decision.denied],
        }
    elif isinstance(decision, ChangeDecision):
        actor = event.get("actor") or {}
        fields |= {
            "owner": decision.agency_id,
            "requester": actor.get("agency_id"),
            "user_id": actor.get("user_id"),
            "reason": event.get("reason"),
            "setting": decision.setting,
            "value": event.get("value"),
            "ticket": event.get("ticket"),
        }
    elif isinstance(decision, UpsertDecision):
        fields |= {"owner": decision.event_id, "deleted": decision.deleted}
    return fields
