"""Credentials bound to owners: the owners file, bearer and Basic tokens (stored as hashes),
HMAC-signed posts with a bounded age, and one-line refusals of unusable files."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from streamguard.exceptions import InputFileError
from streamguard.ingest.auth import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    AuthFailure,
    OwnerRegistry,
    PendingSignature,
    load_owners,
    new_token,
    sign,
)
from streamguard.ingest.types import Owner

TOKEN_A = "token-of-ventura-camera-0123456789"
TOKEN_B = "token-of-oxnard-camera-9876543210"
SECRET = "gateway-secret-0123456789abcdef-xyz"
NOW = 1_767_225_600


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def owners_file(tmp_path: Path, data: Any = None) -> Path:
    if data is None:
        data = {
            "ca-ventura-county-so": {
                "share_to": ["ca-oxnard-pd", "ca-oxnard-pd", "ca-simi-valley-pd"],
                "timezone": "America/Los_Angeles",
                "credentials": [
                    {"id": "ventura-scout", "bearer_sha256": _sha(TOKEN_A)},
                    {"id": "ventura-gateway", "hmac_sha256_secret": SECRET},
                ],
            },
            "ca-oxnard-pd": {
                "credentials": [{"id": "oxnard-axis", "bearer_sha256": _sha(TOKEN_B)}]
            },
        }
    path = tmp_path / "owners.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def registry(tmp_path: Path) -> OwnerRegistry:
    return load_owners(owners_file(tmp_path))


def test_owners_file_gives_each_owner_its_recipients_and_zone(registry: OwnerRegistry) -> None:
    ventura = registry.owners["ca-ventura-county-so"]
    assert ventura == Owner(
        "ca-ventura-county-so",
        ("ca-oxnard-pd", "ca-simi-valley-pd"),
        ZoneInfo("America/Los_Angeles"),
    )
    assert registry.owners["ca-oxnard-pd"] == Owner("ca-oxnard-pd", (), None)


def test_default_zone_applies_to_owners_without_one(tmp_path: Path) -> None:
    registry = load_owners(owners_file(tmp_path), ZoneInfo("America/Chicago"))
    assert registry.owners["ca-oxnard-pd"].zone == ZoneInfo("America/Chicago")
    assert registry.owners["ca-ventura-county-so"].zone == ZoneInfo("America/Los_Angeles")


def test_a_bearer_token_names_its_owner(registry: OwnerRegistry) -> None:
    assert registry.check_headers({"Authorization": f"Bearer {TOKEN_A}"}).agency_id == (  # type: ignore[union-attr]
        "ca-ventura-county-so"
    )
    assert registry.check_headers({"Authorization": f"bearer {TOKEN_B}"}).agency_id == (  # type: ignore[union-attr]
        "ca-oxnard-pd"
    )


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_takes_the_token_as_password_and_the_owner_as_user(
    registry: OwnerRegistry,
) -> None:
    """For cameras that speak only Basic: the user, when given, must be the token's owner."""
    assert isinstance(registry.check_headers(_basic("ca-oxnard-pd", TOKEN_B)), Owner)
    assert isinstance(registry.check_headers(_basic("", TOKEN_B)), Owner)
    assert registry.check_headers(_basic("ca-ventura-county-so", TOKEN_B)) == AuthFailure("invalid")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"Authorization": "Bearer not-a-token"}, "invalid"),
        ({"Authorization": f"Bearer {_sha(TOKEN_A)}"}, "invalid"),  # the hash is not the token
        ({"Authorization": "Bearer"}, "malformed"),
        ({"Authorization": f"Token {TOKEN_A}"}, "malformed"),
        ({"Authorization": "Basic !!!"}, "malformed"),
        ({KEY_ID_HEADER: "ventura-gateway"}, "malformed"),
        ({KEY_ID_HEADER: "ventura-gateway", SIGNATURE_HEADER: "v1=abc"}, "malformed"),
        ({KEY_ID_HEADER: "nobody", SIGNATURE_HEADER: f"t={NOW},v1={'0' * 64}"}, "invalid"),
        # A bearer credential's id cannot be used to sign.
        ({KEY_ID_HEADER: "ventura-scout", SIGNATURE_HEADER: f"t={NOW},v1={'0' * 64}"}, "invalid"),
    ],
)
def test_refused_headers(registry: OwnerRegistry, headers: dict, reason: str) -> None:
    assert registry.check_headers(headers) == AuthFailure(reason)


def _signed(body: bytes, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    return {
        KEY_ID_HEADER: "ventura-gateway",
        SIGNATURE_HEADER: f"t={timestamp},v1={sign(secret.encode(), timestamp, body)}",
    }


def test_an_hmac_signed_post_is_checked_against_its_body(registry: OwnerRegistry) -> None:
    body = b'{"records": []}'
    pending = registry.check_headers(_signed(body, NOW - 10))
    assert isinstance(pending, PendingSignature)
    assert (
        registry.check_signature(pending, body, NOW, 300) == registry.owners["ca-ventura-county-so"]
    )
    assert registry.check_signature(pending, body + b" ", NOW, 300) == AuthFailure("bad_signature")


def test_an_old_or_future_signature_is_stale(registry: OwnerRegistry) -> None:
    """A captured post cannot be replayed after the window."""
    body = b"{}"
    for timestamp in (NOW - 301, NOW + 301):
        pending = registry.check_headers(_signed(body, timestamp))
        assert isinstance(pending, PendingSignature)
        assert registry.check_signature(pending, body, NOW, 300) == AuthFailure("stale")


def test_a_signature_with_another_secret_is_refused(registry: OwnerRegistry) -> None:
    pending = registry.check_headers(_signed(b"{}", NOW, "another-secret-0123456789abcdefxyz"))
    assert isinstance(pending, PendingSignature)
    assert registry.check_signature(pending, b"{}", NOW, 300) == AuthFailure("bad_signature")


def test_secrets_never_appear_in_reprs(registry: OwnerRegistry) -> None:
    pending = registry.check_headers(_signed(b"{}", NOW))
    shown = repr(registry) + repr(pending)
    assert SECRET not in shown
    assert _sha(TOKEN_A) not in shown


def test_new_token_matches_its_credential(tmp_path: Path) -> None:
    token, digest = new_token()
    assert len(token) >= 40 and digest == _sha(token)
    path = owners_file(tmp_path, {"ca-x": {"credentials": [{"id": "c", "bearer_sha256": digest}]}})
    assert isinstance(load_owners(path).check_headers({"Authorization": f"Bearer {token}"}), Owner)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must map agency ids"),
        ({"CA Ventura": {}}, "agency ids are lowercase"),
        ({"ca-x": {"share-to": []}}, "only credentials, share_to, timezone"),
        ({"ca-x": {"share_to": "ca-y"}}, "'share_to' must be a list"),
        ({"ca-x": {"timezone": "Pacific Time"}}, "not an IANA time zone"),
        ({"ca-x": {"credentials": [{"id": "c"}]}}, "exactly one of"),
        (
            {
                "ca-x": {
                    "credentials": [{"id": "c", "bearer_sha256": "x", "hmac_sha256_secret": "y"}]
                }
            },
            "exactly one of",
        ),
        ({"ca-x": {"credentials": [{"id": "c", "bearer_sha256": "abc"}]}}, "64 lowercase hex"),
        ({"ca-x": {"credentials": [{"id": "c", "hmac_sha256_secret": "short"}]}}, "at least 32"),
        ({"ca-x": {"credentials": [{"bearer_sha256": "0" * 64}]}}, "needs an 'id'"),
        (
            {
                "ca-x": {"credentials": [{"id": "c", "bearer_sha256": "0" * 64}]},
                "ca-y": {"credentials": [{"id": "c", "bearer_sha256": "1" * 64}]},
            },
            "used twice",
        ),
        (
            {
                "ca-x": {"credentials": [{"id": "c1", "bearer_sha256": "0" * 64}]},
                "ca-y": {"credentials": [{"id": "c2", "bearer_sha256": "0" * 64}]},
            },
            "token reused",
        ),
    ],
)
def test_unusable_owners_files_are_refused_in_one_line(
    tmp_path: Path, data: Any, message: str
) -> None:
    with pytest.raises(InputFileError, match=message) as caught:
        load_owners(owners_file(tmp_path, data))
    assert "\n" not in str(caught.value)


def test_a_missing_or_broken_owners_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot read"):
        load_owners(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(InputFileError, match="not JSON"):
        load_owners(tmp_path / "bad.json")
