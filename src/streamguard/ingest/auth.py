"""Who is posting: credentials bound to camera owners, from the owners file.

A post names no owner; its credential does. The owner of a read is the agency the credential is
bound to, so a camera (or anyone holding its token) can only ever write reads of its own agency.

Two kinds of credential:
- a bearer token (`Authorization: Bearer <token>`, or HTTP Basic with the token as password, for
  cameras that only speak Basic). The file holds the token's SHA-256, never the token: reading
  the file does not let anyone post.
- an HMAC-SHA256 secret, for gateways that can sign: `X-StreamGuard-Key-Id: <credential id>` and
  `X-StreamGuard-Signature: t=<unix seconds>,v1=<hex of HMAC(secret, "<t>." + body)>`; a
  signature older than the configured age is refused, so a captured post cannot be replayed
  later.
Every comparison of secret material is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any, Final

from streamguard import serde
from streamguard.exceptions import InputFileError
from streamguard.ingest.settings import load_zone
from streamguard.ingest.types import Owner
from streamguard.settings import SettingsError

__all__ = (
    "AUTH_FAILURES",
    "KEY_ID_HEADER",
    "SIGNATURE_HEADER",
    "AuthFailure",
    "OwnerRegistry",
    "PendingSignature",
    "load_owners",
    "new_token",
    "sign",
)

KEY_ID_HEADER: Final = "X-StreamGuard-Key-Id"
SIGNATURE_HEADER: Final = "X-StreamGuard-Signature"
# Why a post was refused (a bounded set: a metric label).
AUTH_FAILURES: Final = ("missing", "malformed", "invalid", "bad_signature", "stale")
_AGENCY_ID: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_CREDENTIAL_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_SIGNATURE: Final = re.compile(r"t=(\d{1,12}),v1=([0-9a-f]{64})")
# An HMAC secret shorter than this is guessable offline from one signed post.
MIN_SECRET_LENGTH: Final = 32
_OWNER_KEYS: Final = frozenset(("share_to", "timezone", "credentials"))


@dataclass(frozen=True, slots=True)
class AuthFailure:
    reason: str  # one of AUTH_FAILURES


@dataclass(frozen=True, slots=True)
class _Credential:
    credential_id: str
    owner_id: str
    token_sha256: bytes | None = field(default=None, repr=False)
    secret: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class PendingSignature:
    """An HMAC post whose headers are well formed; the body decides."""

    credential: _Credential
    timestamp: int
    signature: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class OwnerRegistry:
    """The owners file, loaded: each agency's defaults and the credentials bound to it."""

    owners: Mapping[str, Owner]
    _bearer: tuple[_Credential, ...] = ()
    _hmac: Mapping[str, _Credential] = field(default_factory=dict)

    def check_headers(self, headers: Mapping[str, str]) -> Owner | PendingSignature | AuthFailure:
        """Authenticate from the headers alone (bearer, Basic), or say the body must decide."""
        authorization = headers.get("Authorization")
        if authorization is not None:
            return self._check_authorization(authorization)
        key_id = headers.get(KEY_ID_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        if key_id is None and signature is None:
            return AuthFailure("missing")
        match = _SIGNATURE.fullmatch((signature or "").strip())
        if key_id is None or match is None:
            return AuthFailure("malformed")
        credential = self._hmac.get(key_id.strip())
        if credential is None:
            return AuthFailure("invalid")
        return PendingSignature(credential, int(match.group(1)), match.group(2))

    def check_signature(
        self, pending: PendingSignature, body: bytes, now: float, max_age_seconds: int
    ) -> Owner | AuthFailure:
        """Verify an HMAC post once its body has been read."""
        assert pending.credential.secret is not None  # only HMAC credentials are pending
        expected = sign(pending.credential.secret, pending.timestamp, body)
        if not hmac.compare_digest(expected.encode(), pending.signature.encode()):
            return AuthFailure("bad_signature")
        if abs(now - pending.timestamp) > max_age_seconds:
            return AuthFailure("stale")
        return self.owners[pending.credential.owner_id]

    def _check_authorization(self, value: str) -> Owner | AuthFailure:
        scheme, _, credentials = value.strip().partition(" ")
        credentials = credentials.strip()
        user = None
        if scheme.lower() == "bearer" and credentials:
            token = credentials
        elif scheme.lower() == "basic" and credentials:
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return AuthFailure("malformed")
            user, _, token = decoded.partition(":")
        else:
            return AuthFailure("malformed")
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found: _Credential | None = None
        # Every credential is compared, match or not: the time taken says nothing about which.
        for credential in self._bearer:
            assert credential.token_sha256 is not None
            if hmac.compare_digest(digest, credential.token_sha256):
                found = credential
        if found is None or (user not in (None, "") and user != found.owner_id):
            return AuthFailure("invalid")
        return self.owners[found.owner_id]


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `v1` hex of a signed post: HMAC-SHA256 of `"<timestamp>." + body`."""
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh bearer token and the SHA-256 hex the owners file holds for it."""
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).hexdigest()


def _fail(path: Path, problem: str) -> InputFileError:
    return InputFileError(f"owners file {path}: {problem}")


def _credential(path: Path, owner_id: str, entry: object) -> _Credential:
    if not isinstance(entry, Mapping):
        raise _fail(path, f"{owner_id}: each credential must be an object")
    credential_id = entry.get("id")
    if not isinstance(credential_id, str) or not _CREDENTIAL_ID.fullmatch(credential_id):
        raise _fail(path, f"{owner_id}: a credential needs an 'id' of letters, digits, . _ -")
    kinds = {"bearer_sha256", "hmac_sha256_secret"} & entry.keys()
    if len(kinds) != 1 or set(entry) - {"id", "bearer_sha256", "hmac_sha256_secret"}:
        raise _fail(
            path,
            f"credential {credential_id}: exactly one of 'bearer_sha256' or "
            "'hmac_sha256_secret', and nothing else",
        )
    token_hash = entry.get("bearer_sha256")
    if token_hash is not None:
        if not isinstance(token_hash, str) or not _SHA256_HEX.fullmatch(token_hash):
            raise _fail(
                path,
                f"credential {credential_id}: 'bearer_sha256' must be the 64 lowercase hex "
                "digits of the token's SHA-256 (`streamguard ingest new-token` prints both)",
            )
        return _Credential(credential_id, owner_id, token_sha256=bytes.fromhex(token_hash))
    secret = entry.get("hmac_sha256_secret")
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        raise _fail(
            path,
            f"credential {credential_id}: 'hmac_sha256_secret' must be at least "
            f"{MIN_SECRET_LENGTH} characters",
        )
    return _Credential(credential_id, owner_id, secret=secret.encode())


def _owner(
    path: Path, owner_id: str, entry: object, default_zone: tzinfo | None
) -> tuple[Owner, list[_Credential]]:
    if not _AGENCY_ID.fullmatch(owner_id):
        raise _fail(path, "agency ids are lowercase letters, digits, . _ - (as in the registry)")
    if not isinstance(entry, Mapping) or set(entry) - _OWNER_KEYS:
        raise _fail(path, f"{owner_id}: an object with only {', '.join(sorted(_OWNER_KEYS))}")
    share_to = entry.get("share_to", [])
    if not isinstance(share_to, list) or not all(
        isinstance(a, str) and _AGENCY_ID.fullmatch(a) for a in share_to
    ):
        raise _fail(path, f"{owner_id}: 'share_to' must be a list of agency ids")
    zone = default_zone
    if entry.get("timezone") is not None:
        if not isinstance(entry["timezone"], str):
            raise _fail(path, f"{owner_id}: 'timezone' must be an IANA zone name")
        try:
            zone = load_zone(entry["timezone"], f"{owner_id} 'timezone'")
        except SettingsError as exc:
            raise _fail(path, str(exc)) from None
    credentials = entry.get("credentials", [])
    if not isinstance(credentials, list):
        raise _fail(path, f"{owner_id}: 'credentials' must be a list")
    owner = Owner(owner_id, tuple(dict.fromkeys(share_to)), zone)
    return owner, [_credential(path, owner_id, c) for c in credentials]


def load_owners(path: Path, default_zone: tzinfo | None = None) -> OwnerRegistry:
    """Read the owners file (one-line InputFileError when it cannot be used)."""
    try:
        data: Any = serde.loads(path.read_bytes())
    except OSError as exc:
        raise _fail(path, f"cannot read it: {exc.strerror or exc}") from None
    except ValueError:
        raise _fail(path, "not JSON") from None
    if not isinstance(data, dict):
        raise _fail(path, "must map agency ids to their settings")
    owners: dict[str, Owner] = {}
    bearer: list[_Credential] = []
    by_id: dict[str, _Credential] = {}
    digests: set[bytes] = set()
    for owner_id, entry in data.items():
        owner, credentials = _owner(path, owner_id, entry, default_zone)
        owners[owner_id] = owner
        for credential in credentials:
            if credential.credential_id in by_id:
                raise _fail(path, f"credential id {credential.credential_id} is used twice")
            by_id[credential.credential_id] = credential
            if credential.token_sha256 is not None:
                # One token bound to two owners would make the owner of a read a coin toss.
                if credential.token_sha256 in digests:
                    raise _fail(path, f"credential {credential.credential_id}: token reused")
                digests.add(credential.token_sha256)
                bearer.append(credential)
    hmac_credentials = {k: c for k, c in by_id.items() if c.secret is not None}
    return OwnerRegistry(owners, tuple(bearer), hmac_credentials)
