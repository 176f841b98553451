"""The administrator's side of section 2a: a private signing key, its file, signing records.

StreamGuard itself never needs this module: a deployment holds public keys (KEYS.json). It is
what `streamguard keys new` writes and `streamguard sign` reads, and what tests sign with.

A private key file is one JSON object, written 0600:
`{"key_id", "agency_id" | "role": "registry", "alg": "ed25519", "private_key": "<64 hex>",
"public_key": "<64 hex>"}` (the 32-byte Ed25519 seed and its public key), or for a v1-style
shared secret `{"key_id", "agency_id" | "role", "alg": "hmac-sha256", "secret"}`.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from streamguard.core.keyfile import write_key_file
from streamguard.core.keys import (
    ED25519,
    HMAC_SHA256,
    REGISTRY_ROLE,
    Key,
    parse_keys,
    read_json_file,
)
from streamguard.core.signing import ed25519_signature, hmac_signature, payloads_for
from streamguard.core.timeutil import format_ts
from streamguard.exceptions import InputFileError

__all__ = ("SigningKey", "record_kind", "sign_record")

_SEED_HEX: Final = 64


def record_kind(record: Mapping[str, Any]) -> str | None:
    """`policy_change`, `agency`, or None for anything else (same test as the intake's)."""
    kind = record.get("type")
    if kind == "policy_change":
        return "policy_change"
    if kind in (None, "agency") and "agency_id" in record and "name" in record:
        return "agency"
    return None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A key that can sign: an Ed25519 private key or an HMAC secret, with its binding."""

    key_id: str
    alg: str
    agency_id: str | None  # None: the registry role
    material: bytes = field(repr=False)  # the Ed25519 seed or the HMAC secret

    @classmethod
    def generate(cls, key_id: str, agency_id: str | None) -> SigningKey:
        """A new Ed25519 key bound to `agency_id` (None: the registry role)."""
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return cls(key_id, ED25519, agency_id, seed)

    @classmethod
    def hmac(cls, key_id: str, agency_id: str | None, secret: bytes | None = None) -> SigningKey:
        return cls(key_id, HMAC_SHA256, agency_id, secret or secrets.token_hex(32).encode())

    @property
    def public(self) -> Key:
        """The key as a deployment's KEYS.json holds it (checked like a loaded entry)."""
        entry = self.keys_entry()
        return parse_keys({self.key_id: entry}, "generated key")[self.key_id]

    def keys_entry(self) -> dict[str, str]:
        """This key's KEYS.json entry (for ed25519, the public key only)."""
        binding = {"agency_id": self.agency_id} if self.agency_id else {"role": REGISTRY_ROLE}
        if self.alg == HMAC_SHA256:
            return {**binding, "alg": HMAC_SHA256, "secret": self.material.decode()}
        return {
            **binding,
            "alg": ED25519,
            "public_key": self._private()
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
            .hex(),
        }

    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.material)

    def may_sign(self, kind: str, record: Mapping[str, Any]) -> str | None:
        """None when this key may sign `record`, else why not (one sentence)."""
        if kind == "agency":
            if self.agency_id is not None:
                return (
                    f"key {self.key_id} is bound to agency {self.agency_id}; agency records "
                    "are signed with a registry key"
                )
            return None
        if self.agency_id is None:
            return f"key {self.key_id} is a registry key; it signs agency records only"
        if record.get("agency_id") != self.agency_id:
            return (
                f"key {self.key_id} is bound to {self.agency_id}; it cannot sign a change of "
                f"{record.get('agency_id')}"
            )
        return None

    def signature(self, kind: str, record: Mapping[str, Any]) -> str:
        """This key's signature of `record`'s payload (docs/contract.md section 2a)."""
        return self.sign_payload(payloads_for(kind, record)[0])

    def sign_payload(self, payload: bytes) -> str:
        if self.alg == HMAC_SHA256:
            return hmac_signature(self.material, payload)
        return ed25519_signature(self._private(), payload)

    def to_file_value(self) -> dict[str, str]:
        binding = {"agency_id": self.agency_id} if self.agency_id else {"role": REGISTRY_ROLE}
        out = {"key_id": self.key_id, **binding, "alg": self.alg}
        if self.alg == HMAC_SHA256:
            return {**out, "secret": self.material.decode()}
        return {**out, "private_key": self.material.hex(), "public_key": self.public.material.hex()}

    def write(self, path: Path) -> None:
        """Write the private key file, 0600, refusing to replace an existing file."""
        write_key_file(path, json.dumps(self.to_file_value(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Read a private key file (module docstring); one-line InputFileError when unusable."""
        return cls.from_file_value(read_json_file(path, "key file"), str(path))

    @classmethod
    def from_file_value(cls, raw: object, source: str) -> SigningKey:
        def fail(problem: str) -> InputFileError:
            return InputFileError(f"key file {source}: {problem}")

        if not isinstance(raw, Mapping):
            raise fail("must be a JSON object (written by `streamguard keys new`)")
        key_id = raw.get("key_id")
        if not isinstance(key_id, str) or not key_id:
            raise fail("needs key_id, the name the key has in KEYS.json")
        # The binding and alg are checked by the same rules as a KEYS.json entry.
        public_fields = {k: v for k, v in raw.items() if k in ("agency_id", "role", "alg")}
        alg = raw.get("alg")
        if alg == ED25519:
            seed = raw.get("private_key")
            if not isinstance(seed, str) or len(seed) != _SEED_HEX:
                raise fail(f"needs private_key: {_SEED_HEX} hex chars (an Ed25519 seed)")
            try:
                private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))
            except ValueError:
                raise fail("private_key is not hex") from None
            public_hex = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
            if raw.get("public_key", public_hex) != public_hex:
                raise fail("public_key does not belong to private_key")
            public_fields["public_key"] = public_hex
            material = bytes.fromhex(seed)
        else:
            public_fields["secret"] = raw.get("secret")
            material = b""
        checked = parse_keys({key_id: public_fields}, source)[key_id]
        if checked.alg == HMAC_SHA256:
            material = checked.material
        return cls(key_id, checked.alg, checked.agency_id, material)

    @staticmethod
    def exposure_warning(path: Path) -> str | None:
        """A warning when other users of the machine can read the private key file."""
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return None
        if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
            return f"key file {path} is readable by other users: chmod 600 {path}"
        return None


def sign_record(
    key: SigningKey, record: Mapping[str, Any], *, now: float, user_id: str | None = None
) -> dict[str, Any]:
    """`record` completed and signed with `key`; ValueError says why it cannot be.

    Completes what a signature needs and an administrator would otherwise type: a fresh
    `change_id` (a uuid4: an unpredictable id cannot be burnt in advance by someone who writes
    a record with it first), `ts` (now), and the actor (`user_id`, the key's agency).
    """
    kind = record_kind(record)
    if kind is None:
        msg = 'not a policy_change ("type": "policy_change") or agency record (agency_id, name)'
        raise ValueError(msg)
    refused = key.may_sign(kind, record)
    if refused is not None:
        raise ValueError(refused)
    out: dict[str, Any] = dict(record)
    out.pop("signature", None)
    if not out.get("ts"):
        out["ts"] = format_ts(now)
    if kind == "policy_change":
        if not out.get("change_id"):
            out["change_id"] = str(uuid.uuid4())
        actor = dict(out["actor"]) if isinstance(out.get("actor"), Mapping) else {}
        if user_id is not None and not actor.get("user_id"):
            actor["user_id"] = user_id
        if not isinstance(actor.get("user_id"), str) or not actor["user_id"]:
            msg = "the change names no actor.user_id (give --user USER_ID)"
            raise ValueError(msg)
        actor.setdefault("agency_id", key.agency_id)
        if actor["agency_id"] != key.agency_id:
            msg = f"actor.agency_id {actor['agency_id']!r} is not the key's agency {key.agency_id}"
            raise ValueError(msg)
        out["actor"] = actor
    out["key_id"] = key.key_id
    out["signature"] = key.signature(kind, out)
    return out
