"""HMAC signatures of policy changes and the key file that holds their secrets.

The v1 scheme of docs/contract.md, section 2; section 2a (keys bound to agencies, Ed25519, the
v1.1 KEYS.json layout) is not implemented yet.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamguard.exceptions import InputFileError

__all__ = ("load_keys", "sign_change", "signature_valid", "signing_payloads")


def signing_payloads(change: Mapping[str, Any]) -> tuple[bytes, ...]:
    """The byte strings a valid signature may cover.

    The contract fixes the array and `separators=(",", ":")` with sorted object keys, which is
    Python's `json.dumps`; it does not say whether non-ASCII is escaped. Producers in other
    languages emit raw UTF-8, so both spellings are accepted: each still needs the secret.
    """
    actor = change.get("actor")
    user_id = actor.get("user_id") if isinstance(actor, Mapping) else None
    fields = [
        change.get("change_id"),
        change.get("ts"),
        change.get("agency_id"),
        change.get("setting"),
        change.get("value"),
        user_id,
        change.get("ticket"),
    ]
    escaped = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
    raw = json.dumps(fields, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    return (escaped,) if escaped == raw else (escaped, raw)


def sign_change(change: Mapping[str, Any], secret: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of the change's signing payload."""
    return hmac.new(secret, signing_payloads(change)[0], hashlib.sha256).hexdigest()


def signature_valid(change: Mapping[str, Any], secret: bytes) -> bool:
    signature = change.get("signature")
    if not isinstance(signature, str):
        return False
    given = signature.strip().lower().encode()
    return any(
        hmac.compare_digest(hmac.new(secret, payload, hashlib.sha256).hexdigest().encode(), given)
        for payload in signing_payloads(change)
    )


def load_keys(path: Path) -> dict[str, bytes]:
    """Read KEYS.json: an object mapping key_id to secret string."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"cannot read keys file {path}: {exc.strerror or exc}"
        raise InputFileError(msg) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        msg = f"keys file {path} is not valid JSON: {exc}"
        raise InputFileError(msg) from exc
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in raw.items()
    ):
        msg = f"keys file {path} must be a JSON object mapping key_id to a non-empty secret"
        raise InputFileError(msg)
    return {key_id: secret.encode() for key_id, secret in raw.items()}
