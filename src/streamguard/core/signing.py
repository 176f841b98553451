"""What a control record's signature covers, and the two algorithms that check it. Pure.

docs/contract.md section 2a: a `policy_change` is signed over
`[change_id, ts, agency_id, setting, value, actor.user_id, ticket]`, an `agency` record over
`[agency_id, name, state, kind, ts]`, both serialized with `separators=(",", ":")` and the keys of
any object sorted. `alg` `hmac-sha256`: the lowercase hex HMAC-SHA256 under a shared secret;
`alg` `ed25519`: the lowercase hex of the 64-byte Ed25519 signature, checked with a public key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = (
    "ED25519_SIGNATURE_HEX",
    "agency_payloads",
    "change_payloads",
    "ed25519_signature",
    "hmac_signature",
    "payloads_for",
    "verify_ed25519",
    "verify_hmac",
)

ED25519_SIGNATURE_HEX: Final = 128  # 64 bytes


def _spellings(fields: list[Any]) -> tuple[bytes, ...]:
    """The byte strings a valid signature may cover.

    The contract fixes the array and `separators=(",", ":")` with sorted object keys, which is
    Python's `json.dumps`; it does not say whether non-ASCII is escaped. Producers in other
    languages emit raw UTF-8, so both spellings are accepted: each still needs the key. The
    escaped spelling comes first: it is the one StreamGuard's own tools sign.
    """
    escaped = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
    raw = json.dumps(fields, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    return (escaped,) if escaped == raw else (escaped, raw)


def change_payloads(change: Mapping[str, Any]) -> tuple[bytes, ...]:
    """What the signature of a `policy_change` covers (its spellings)."""
    actor = change.get("actor")
    user_id = actor.get("user_id") if isinstance(actor, Mapping) else None
    return _spellings(
        [
            change.get("change_id"),
            change.get("ts"),
            change.get("agency_id"),
            change.get("setting"),
            change.get("value"),
            user_id,
            change.get("ticket"),
        ]
    )


def agency_payloads(record: Mapping[str, Any]) -> tuple[bytes, ...]:
    """What the signature of an `agency` record covers (its spellings)."""
    return _spellings([record.get(name) for name in ("agency_id", "name", "state", "kind", "ts")])


def payloads_for(kind: str, record: Mapping[str, Any]) -> tuple[bytes, ...]:
    """`kind` is `policy_change` or `agency`."""
    if kind == "policy_change":
        return change_payloads(record)
    if kind == "agency":
        return agency_payloads(record)
    msg = f"no signature payload is defined for {kind!r} records"
    raise ValueError(msg)


def hmac_signature(secret: bytes, payload: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of `payload`."""
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def _normalized(signature: object) -> str | None:
    if not isinstance(signature, str):
        return None
    text = signature.strip().lower()
    return text if text and all(c in "0123456789abcdef" for c in text) else None


def verify_hmac(secret: bytes, payloads: tuple[bytes, ...], signature: object) -> bool:
    given = _normalized(signature)
    if given is None:
        return False
    # Every spelling is tried (no early exit), in constant time per comparison.
    matches = [
        hmac.compare_digest(hmac_signature(secret, payload).encode(), given.encode())
        for payload in payloads
    ]
    return any(matches)


def ed25519_signature(private_key: Ed25519PrivateKey, payload: bytes) -> str:
    """Lowercase hex of the 64-byte Ed25519 signature of `payload`."""
    return private_key.sign(payload).hex()


def verify_ed25519(
    public_key: Ed25519PublicKey, payloads: tuple[bytes, ...], signature: object
) -> bool:
    given = _normalized(signature)
    if given is None or len(given) != ED25519_SIGNATURE_HEX:
        return False
    raw = bytes.fromhex(given)
    for payload in payloads:
        try:
            public_key.verify(raw, payload)
        except InvalidSignature:
            continue
        return True
    return False
