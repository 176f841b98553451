"""KEYS.json v1.1 and signatures: each key speaks for one agency or the registry, nothing else."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from streamguard.core.keys import Key, exposure_warning, load_keys, parse_keys
from streamguard.core.signer import SigningKey, record_kind, sign_record
from streamguard.core.signing import agency_payloads, change_payloads
from streamguard.exceptions import InputFileError

VENTURA = "ca-ventura-county-so"
HOUSTON = "tx-houston-pd"
NOW = 1_740_830_400.0  # 2025-03-01T12:00:00Z


def _change(agency_id: str = VENTURA, **extra: Any) -> dict[str, Any]:
    return {
        "type": "policy_change",
        "change_id": "chg-1",
        "ts": "2025-03-01T11:00:00Z",
        "agency_id": agency_id,
        "setting": "national_lookup",
        "value": False,
        "actor": {"user_id": "admin-3"},
        "ticket": "CHG-1",
        **extra,
    }


def _agency(**extra: Any) -> dict[str, Any]:
    return {"agency_id": HOUSTON, "name": "Houston PD", "state": "TX", "kind": "local", **extra}


@pytest.fixture(scope="module")
def ventura() -> SigningKey:
    return SigningKey.generate("k-ventura", VENTURA)


@pytest.fixture(scope="module")
def registry() -> SigningKey:
    return SigningKey.generate("k-registry", None)


def _keys(*signers: SigningKey) -> dict[str, Key]:
    return parse_keys({s.key_id: s.keys_entry() for s in signers}, "test")


def test_ed25519_signature_verifies_only_over_the_signed_fields(ventura: SigningKey) -> None:
    """A signed change verifies; changing any signed field breaks it; unsigned fields do not."""
    key = _keys(ventura)["k-ventura"]
    signed = sign_record(ventura, _change(), now=NOW)
    assert len(signed["signature"]) == 128 and signed["key_id"] == "k-ventura"
    assert key.verifies("policy_change", signed)
    for field, value in (
        ("change_id", "chg-2"),
        ("ts", "2025-03-01T11:00:01Z"),
        ("agency_id", HOUSTON),
        ("setting", "statewide_lookup"),
        ("value", True),
        ("ticket", "CHG-2"),
        ("actor", {"user_id": "someone-else", "agency_id": VENTURA}),
    ):
        assert not key.verifies("policy_change", {**signed, field: value}), field
    # `reason` and actor.agency_id are not in the payload (the key binding stands for the latter)
    assert key.verifies("policy_change", {**signed, "reason": "edited"})
    assert key.verifies("policy_change", {**signed, "signature": signed["signature"].upper()})


def test_another_keys_signature_and_garbage_do_not_verify(
    ventura: SigningKey, registry: SigningKey
) -> None:
    """A signature from a different key, a truncated one or a non-hex one is invalid."""
    keys = _keys(ventura, registry)
    by_registry = {**_change(), "signature": registry.signature("policy_change", _change())}
    assert not keys["k-ventura"].verifies("policy_change", by_registry)
    for bad in ("", "zz" * 64, "00" * 63, None, 7):
        assert not keys["k-ventura"].verifies("policy_change", {**_change(), "signature": bad})


def test_hmac_keys_sign_as_in_v1_and_are_bound_too() -> None:
    """hmac-sha256 entries verify the v1 signature (a lowercase hex HMAC of the same payload)."""
    signer = SigningKey.hmac("k-v1", VENTURA, b"a-secret-of-sixteen-bytes")
    key = _keys(signer)["k-v1"]
    signed = sign_record(signer, _change(), now=NOW)
    assert len(signed["signature"]) == 64 and key.verifies("policy_change", signed)
    assert key.agency_id == VENTURA and key.may_sign("policy_change", VENTURA)
    assert not key.may_sign("policy_change", HOUSTON) and not key.may_sign("agency", HOUSTON)


def test_agency_record_payload_is_agency_id_name_state_kind_ts(registry: SigningKey) -> None:
    """Registry records are signed over [agency_id, name, state, kind, ts], nothing else."""
    record = sign_record(registry, _agency(), now=NOW)
    assert (
        agency_payloads(record)[0]
        == json.dumps(
            [HOUSTON, "Houston PD", "TX", "local", record["ts"]], separators=(",", ":")
        ).encode()
    )
    key = _keys(registry)["k-registry"]
    assert key.verifies("agency", record)
    assert not key.verifies("agency", {**record, "state": "CA"})
    assert key.may_sign("agency", HOUSTON) and not key.may_sign("policy_change", HOUSTON)


def test_non_ascii_values_verify_in_either_json_spelling(ventura: SigningKey) -> None:
    """Producers that do not escape non-ASCII (raw UTF-8) sign a payload that still verifies."""
    change = _change(ticket="CHG-ñ")
    escaped, raw = change_payloads(change)
    assert b"\\u00f1" in escaped and "ñ".encode() in raw
    from streamguard.core.signing import ed25519_signature

    private = ventura._private()
    key = _keys(ventura)["k-ventura"]
    assert key.verifies("policy_change", {**change, "signature": ed25519_signature(private, raw)})


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        # v1: a key id mapped to a bare secret, with the way out in the same line
        ({"k1": "example-secret-do-not-use"}, "v1 KEYS.json"),
        ({"k1": {"alg": "ed25519", "public_key": "00" * 32}}, "bound to nothing"),
        ({"k1": {"agency_id": VENTURA, "role": "registry", "alg": "hmac-sha256"}}, "never both"),
        ({"k1": {"role": "admin", "alg": "hmac-sha256", "secret": "x" * 16}}, "only role"),
        ({"k1": {"agency_id": VENTURA, "alg": "rsa", "public_key": "00"}}, "alg 'rsa'"),
        ({"k1": {"agency_id": VENTURA, "public_key": "00" * 32}}, "alg None"),
        ({"k1": {"agency_id": VENTURA, "alg": "ed25519", "public_key": "ab"}}, "64 hex"),
        (
            {"k1": {"agency_id": VENTURA, "alg": "ed25519", "public_key": "zz" * 32}},
            "not an Ed25519",
        ),
        # a private key in the deployment's file defeats the point of public keys
        (
            {
                "k1": {
                    "agency_id": VENTURA,
                    "alg": "ed25519",
                    "public_key": "00" * 32,
                    "private_key": "00" * 32,
                }
            },
            "public_key (the private key stays",
        ),
        ({"k1": {"agency_id": VENTURA, "alg": "hmac-sha256", "secret": "short"}}, "16 bytes"),
        ({"k1": {"agency_id": "", "alg": "hmac-sha256", "secret": "x" * 16}}, "non-empty"),
        # one secret under two bindings: its holder could sign for both
        (
            {
                "a": {"agency_id": VENTURA, "alg": "hmac-sha256", "secret": "x" * 16},
                "b": {"agency_id": HOUSTON, "alg": "hmac-sha256", "secret": "x" * 16},
            },
            "sign as both",
        ),
        (["k1"], "must be a JSON object"),
        ({"k1": 5}, "must be an object"),
    ],
)
def test_bad_key_files_are_refused_as_a_whole_in_one_line(raw: object, says: str) -> None:
    """Every malformed entry refuses the whole file with a single line naming the fix."""
    with pytest.raises(InputFileError) as caught:
        parse_keys(raw, "KEYS.json")
    message = str(caught.value)
    assert says in message and "\n" not in message and "KEYS.json" in message


def test_v1_error_says_how_to_convert() -> None:
    """The v1 refusal names the convert command and the Ed25519 alternative."""
    with pytest.raises(InputFileError, match=r"streamguard keys convert .* --bind k1=AGENCY"):
        parse_keys({"k1": "secret"}, "old.json")
    with pytest.raises(InputFileError, match="streamguard keys new --agency"):
        parse_keys({"k1": "secret"}, "old.json")


def test_load_keys_refuses_duplicate_ids_and_bad_json(tmp_path: Path, ventura: SigningKey) -> None:
    """A key_id given twice is ambiguous; a file that is not JSON is refused with its name."""
    entry = json.dumps(ventura.keys_entry())
    path = tmp_path / "KEYS.json"
    path.write_text(f'{{"k1": {entry}, "k1": {entry}}}')
    with pytest.raises(InputFileError, match="appears twice"):
        load_keys(path)
    path.write_text("{not json")
    with pytest.raises(InputFileError, match="not valid JSON"):
        load_keys(path)
    with pytest.raises(InputFileError, match="cannot read"):
        load_keys(tmp_path / "missing.json")
    path.write_text(f'{{"k1": {entry}}}')
    assert load_keys(path)["k1"].binding == f"agency {VENTURA}"


def test_the_same_key_may_have_two_ids_for_one_agency(ventura: SigningKey) -> None:
    """Rotation keeps old and new ids side by side; that is one binding, not two."""
    keys = parse_keys({"old": ventura.keys_entry(), "new": ventura.keys_entry()}, "test")
    assert set(keys) == {"old", "new"}


def test_hmac_secrets_readable_by_others_are_warned_about(tmp_path: Path) -> None:
    """A world-readable file of HMAC secrets gets a warning; public keys do not need one."""
    path = tmp_path / "KEYS.json"
    hmac_keys = {"k": SigningKey.hmac("k", VENTURA, b"s" * 20).keys_entry()}
    path.write_text(json.dumps(hmac_keys))
    os.chmod(path, 0o644)
    warning = exposure_warning(path, load_keys(path))
    assert warning is not None and "chmod 600" in warning
    os.chmod(path, 0o600)
    assert exposure_warning(path, load_keys(path)) is None
    path.write_text(json.dumps({"k": SigningKey.generate("k", VENTURA).keys_entry()}))
    os.chmod(path, 0o644)
    assert exposure_warning(path, load_keys(path)) is None


def test_repr_never_shows_key_material() -> None:
    """Secrets stay out of logs even when a key object is printed."""
    signer = SigningKey.hmac("k", VENTURA, b"do-not-print-this-secret")
    key = _keys(signer)["k"]
    assert "do-not-print" not in repr(key) and "do-not-print" not in repr(signer)


def test_sign_record_fills_what_a_signature_needs_and_refuses_other_agencies(
    ventura: SigningKey, registry: SigningKey
) -> None:
    """Signing adds a uuid change_id, ts and the actor's agency, and refuses foreign records."""
    bare = {
        "type": "policy_change",
        "agency_id": VENTURA,
        "setting": "national_lookup",
        "value": False,
    }
    signed = sign_record(ventura, bare, now=NOW, user_id="admin-3")
    assert len(signed["change_id"]) == 36 and signed["ts"] == "2025-03-01T12:00:00Z"
    assert signed["actor"] == {"user_id": "admin-3", "agency_id": VENTURA}
    with pytest.raises(ValueError, match=r"no actor\.user_id"):
        sign_record(ventura, bare, now=NOW)
    with pytest.raises(ValueError, match="cannot sign a change of tx-houston-pd"):
        sign_record(ventura, _change(HOUSTON), now=NOW)
    with pytest.raises(ValueError, match="registry key"):
        sign_record(ventura, _agency(), now=NOW)
    with pytest.raises(ValueError, match="agency records only"):
        sign_record(registry, _change(), now=NOW)
    with pytest.raises(ValueError, match="not the key's agency"):
        sign_record(ventura, _change(actor={"user_id": "a", "agency_id": HOUSTON}), now=NOW)
    with pytest.raises(ValueError, match="not a policy_change"):
        sign_record(ventura, {"type": "search_request"}, now=NOW)
    assert record_kind(_agency()) == "agency" and record_kind(_change()) == "policy_change"


def test_private_key_file_round_trips_and_is_private(tmp_path: Path, ventura: SigningKey) -> None:
    """The written key file is 0600, never overwritten, and loads back to the same key."""
    path = tmp_path / "k.key.json"
    ventura.write(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert SigningKey.load(path) == ventura
    assert SigningKey.exposure_warning(path) is None
    with pytest.raises(InputFileError, match="never overwritten"):
        ventura.write(path)
    value = json.loads(path.read_text())
    value["public_key"] = "00" * 32
    with pytest.raises(InputFileError, match="does not belong"):
        SigningKey.from_file_value(value, "k.key.json")
    with pytest.raises(InputFileError, match="needs key_id"):
        SigningKey.from_file_value({"alg": "ed25519"}, "k.key.json")
