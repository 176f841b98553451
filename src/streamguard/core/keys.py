"""KEYS.json v1.1 (docs/contract.md section 2a): each key bound to one agency or to the registry.

A key bound to an `agency_id` signs that agency's `policy_change` records and nothing else; a key
with `"role": "registry"` signs `agency` records and nothing else. `ed25519` keys are public
keys, so nobody who can read StreamGuard's files can sign with them; `hmac-sha256` keys are
shared secrets (v1's scheme) and can.

The file is refused as a whole, with one line that says how to fix it, on anything that is not
exactly this: a v1 file (a key_id mapped to a bare secret), an entry with no binding or two, an
unknown `alg`, a private key, a duplicate key_id, or one key's material under two bindings
(whoever holds it could sign as either). A half-loaded key file would decide changes against
keys the operator did not mean.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from streamguard.core.signing import payloads_for, verify_ed25519, verify_hmac
from streamguard.exceptions import InputFileError

__all__ = (
    "ALGORITHMS",
    "ED25519",
    "HMAC_SHA256",
    "MIN_SECRET_BYTES",
    "REGISTRY_ROLE",
    "Key",
    "exposure_warning",
    "load_keys",
    "parse_keys",
    "read_json_file",
)

ED25519: Final = "ed25519"
HMAC_SHA256: Final = "hmac-sha256"
ALGORITHMS: Final = (ED25519, HMAC_SHA256)
REGISTRY_ROLE: Final = "registry"
# Half the HMAC-SHA256 output (RFC 2104, NIST SP 800-107): a shorter secret is guessable.
MIN_SECRET_BYTES: Final = 16
_PUBLIC_KEY_HEX: Final = 64
# Fields that would put signing material into the file StreamGuard reads.
_PRIVATE_FIELDS: Final = ("private_key", "seed", "secret_key", "d")
_HOW_TO: Final = "docs/keys.md"


@dataclass(frozen=True, slots=True)
class Key:
    """One verified KEYS.json entry. `agency_id` None means the registry role."""

    key_id: str
    alg: str
    material: bytes = field(repr=False)  # the raw public key (ed25519) or the secret (hmac)
    agency_id: str | None = None
    _public: Ed25519PublicKey | None = field(default=None, repr=False, compare=False)

    @property
    def is_registry(self) -> bool:
        return self.agency_id is None

    @property
    def binding(self) -> str:
        """Who the key speaks for, in words."""
        return "the registry role" if self.agency_id is None else f"agency {self.agency_id}"

    def may_sign(self, kind: str, agency_id: object) -> bool:
        """Whether this key is allowed to sign a `kind` record about `agency_id`."""
        if kind == "agency":
            return self.is_registry
        return (
            kind == "policy_change" and self.agency_id is not None and self.agency_id == agency_id
        )

    def verifies(self, kind: str, record: Mapping[str, Any]) -> bool:
        """Whether `record["signature"]` is this key's signature of the record's payload."""
        payloads = payloads_for(kind, record)
        signature = record.get("signature")
        if self.alg == ED25519:
            assert self._public is not None  # set by parse_keys for every ed25519 key
            return verify_ed25519(self._public, payloads, signature)
        return verify_hmac(self.material, payloads, signature)

    def public_entry(self) -> dict[str, str]:
        """The KEYS.json entry of an ed25519 key (a secret is never written back out)."""
        entry = {"agency_id": self.agency_id} if self.agency_id else {"role": REGISTRY_ROLE}
        return {**entry, "alg": self.alg, "public_key": self.material.hex()}


def _fail(source: str, problem: str) -> InputFileError:
    return InputFileError(f"keys file {source}: {problem}")


def _v1_error(source: str, key_id: str) -> InputFileError:
    return _fail(
        source,
        f"this is a v1 KEYS.json (key {key_id!r} is a bare secret) and v1.1 binds every key to "
        f'one agency or to the registry: write "{key_id}": {{"agency_id": "AGENCY", '
        f'"alg": "hmac-sha256", "secret": "..."}}, or run '
        f"`streamguard keys convert {source} --bind {key_id}=AGENCY` "
        f"(better: new Ed25519 keys from `streamguard keys new --agency AGENCY`; {_HOW_TO})",
    )


def _entry(source: str, key_id: str, value: object) -> Key:
    if isinstance(value, str):
        raise _v1_error(source, key_id)
    if not isinstance(value, Mapping):
        raise _fail(source, f"key {key_id!r} must be an object with a binding and an alg")
    agency_id = value.get("agency_id")
    role = value.get("role")
    if agency_id is not None and role is not None:
        raise _fail(
            source,
            f"key {key_id!r} has both agency_id and role; a key is bound to one agency or to "
            "the registry, never both",
        )
    if role is not None and role != REGISTRY_ROLE:
        raise _fail(source, f'key {key_id!r} has role {role!r}; the only role is "registry"')
    if agency_id is None and role is None:
        raise _fail(
            source,
            f'key {key_id!r} is bound to nothing: give it "agency_id": "AGENCY" (it signs that '
            f'agency\'s policy changes) or "role": "registry" (it signs agency records); {_HOW_TO}',
        )
    if agency_id is not None and (not isinstance(agency_id, str) or not agency_id.strip()):
        raise _fail(source, f"key {key_id!r} has an agency_id that is not a non-empty string")
    bound = agency_id.strip() if isinstance(agency_id, str) else None
    alg = value.get("alg")
    if alg not in ALGORITHMS:
        raise _fail(
            source,
            f"key {key_id!r} has alg {alg!r}; expected {' or '.join(ALGORITHMS)} ({_HOW_TO})",
        )
    if alg == ED25519:
        if any(name in value for name in (*_PRIVATE_FIELDS, "secret")):
            raise _fail(
                source,
                f"key {key_id!r} holds a private key or secret; an ed25519 entry holds only "
                "public_key (the private key stays with the agency's administrator)",
            )
        public_hex = value.get("public_key")
        if not isinstance(public_hex, str) or len(public_hex.strip()) != _PUBLIC_KEY_HEX:
            raise _fail(source, f"key {key_id!r} needs public_key: {_PUBLIC_KEY_HEX} hex chars")
        try:
            raw = bytes.fromhex(public_hex.strip())
            public = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            raise _fail(
                source, f"key {key_id!r} has a public_key that is not an Ed25519 public key"
            ) from None
        return Key(key_id, ED25519, raw, bound, public)
    secret = value.get("secret")
    if not isinstance(secret, str) or len(secret.encode()) < MIN_SECRET_BYTES:
        raise _fail(
            source,
            f"key {key_id!r} needs secret: a string of at least {MIN_SECRET_BYTES} bytes",
        )
    return Key(key_id, HMAC_SHA256, secret.encode(), bound)


def parse_keys(raw: object, source: str) -> dict[str, Key]:
    """Check a decoded KEYS.json value; every problem raises InputFileError naming `source`."""
    if not isinstance(raw, Mapping):
        raise _fail(source, f"must be a JSON object mapping key_id to a key ({_HOW_TO})")
    keys: dict[str, Key] = {}
    holders: dict[tuple[str, bytes], Key] = {}
    for key_id, value in raw.items():
        if not isinstance(key_id, str) or not key_id.strip():
            raise _fail(source, "every key_id must be a non-empty string")
        key = _entry(source, key_id, value)
        other = holders.get((key.alg, key.material))
        if other is not None and other.agency_id != key.agency_id:
            raise _fail(
                source,
                f"keys {other.key_id!r} and {key_id!r} are the same key bound to "
                f"{other.binding} and {key.binding}; its holder could sign as both",
            )
        holders[(key.alg, key.material)] = key
        keys[key_id] = key
    return keys


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            # json.loads would keep the last one silently: which key is meant is unknowable.
            msg = f"key_id {name!r} appears twice"
            raise ValueError(msg)
        seen[name] = value
    return seen


def read_json_file(path: Path, what: str) -> Any:
    """The JSON value in `path` (objects with a repeated name refused); one-line InputFileError.

    `what` names the file in messages ("keys file", "key file").
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read {what} {path}: {exc.strerror or exc}"
        raise InputFileError(msg) from exc
    except UnicodeDecodeError as exc:
        msg = f"{what} {path}: is not UTF-8 text"
        raise InputFileError(msg) from exc
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        msg = f"{what} {path}: is not valid JSON: {exc}"
        raise InputFileError(msg) from exc


def load_keys(path: Path) -> dict[str, Key]:
    """Read and check a KEYS.json v1.1 file (module docstring); one-line InputFileError."""
    return parse_keys(read_json_file(path, "keys file"), str(path))


def exposure_warning(path: Path, keys: Mapping[str, Key]) -> str | None:
    """A warning when the file holds HMAC secrets that other users of the machine can read."""
    secrets = sorted(k.key_id for k in keys.values() if k.alg == HMAC_SHA256)
    if not secrets:
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if not mode & (stat.S_IRGRP | stat.S_IROTH):
        return None
    return (
        f"keys file {path} holds HMAC secrets ({', '.join(secrets)}) readable by other users "
        "(chmod 600 it); anyone who can read them can sign changes: prefer ed25519 keys"
    )
