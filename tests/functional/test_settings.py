"""WorkerSettings from STREAMGUARD_* (security settings, secrets kept out of sight) and the
policy-change keys that follow their file."""

from __future__ import annotations

import json
import logging
import os
import ssl
from pathlib import Path

import faust
import pytest

from streamguard.settings import SettingsError, WorkerSettings, settings_table
from streamguard.worker.keys import KeyRing

SECRET = "s3cr3t-Pa55word-never-shown"


def test_defaults_are_plaintext_with_no_client_security() -> None:
    settings = WorkerSettings.from_env({})
    assert settings.security_protocol == "PLAINTEXT"
    assert settings.faust_credentials() is None
    assert settings.kafka_client_options() == {"security_protocol": "PLAINTEXT"}


def test_sasl_settings_reach_faust_and_aiokafka_but_never_repr() -> None:
    settings = WorkerSettings.from_env(
        {
            "STREAMGUARD_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "STREAMGUARD_SASL_MECHANISM": "SCRAM-SHA-512",
            "STREAMGUARD_SASL_USERNAME": "streamguard",
            "STREAMGUARD_SASL_PASSWORD": SECRET,
        }
    )
    credentials = settings.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("streamguard", SECRET)
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    options = settings.kafka_client_options()
    assert options == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "streamguard",
        "sasl_plain_password": SECRET,
    }
    for shown in (repr(settings), str(settings), repr(credentials), str(settings_table())):
        assert SECRET not in shown


def test_password_file_is_read_and_stays_hidden(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(SECRET + "\n", encoding="utf-8")
    settings = WorkerSettings.from_env(
        {
            "STREAMGUARD_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "STREAMGUARD_SASL_USERNAME": "streamguard",
            "STREAMGUARD_SASL_PASSWORD_FILE": str(tmp_path / "pw"),
        }
    )
    assert settings.sasl_password == SECRET
    assert SECRET not in repr(settings)


def test_sasl_ssl_builds_a_verifying_tls_context_from_the_ca_file() -> None:
    cafile = Path(ssl.get_default_verify_paths().openssl_cafile)
    assert cafile.is_file(), f"the system CA bundle {cafile} is needed by this test"
    settings = WorkerSettings.from_env(
        {
            "STREAMGUARD_SECURITY_PROTOCOL": "SASL_SSL",
            "STREAMGUARD_SASL_USERNAME": "u",
            "STREAMGUARD_SASL_PASSWORD": SECRET,
            "STREAMGUARD_SSL_CAFILE": str(cafile),
        }
    )
    credentials = settings.faust_credentials()
    assert credentials.protocol.value == "SASL_SSL"
    context = credentials.ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert settings.kafka_client_options()["security_protocol"] == "SASL_SSL"
    ssl_only = WorkerSettings.from_env(
        {"STREAMGUARD_SECURITY_PROTOCOL": "SSL", "STREAMGUARD_SSL_CAFILE": str(cafile)}
    )
    assert isinstance(ssl_only.faust_credentials(), faust.SSLCredentials)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STREAMGUARD_SECURITY_PROTOCOL": "TLS"}, "SECURITY_PROTOCOL must be one of"),
        (
            {"STREAMGUARD_SECURITY_PROTOCOL": "SASL_SSL", "STREAMGUARD_SASL_USERNAME": "u"},
            "needs STREAMGUARD_SASL_USERNAME and STREAMGUARD_SASL_PASSWORD",
        ),
        (
            {
                "STREAMGUARD_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "STREAMGUARD_SASL_USERNAME": "u",
                "STREAMGUARD_SASL_PASSWORD": SECRET,
                "STREAMGUARD_SASL_MECHANISM": "GSSAPI",
            },
            "SASL_MECHANISM must be one of",
        ),
        (
            {"STREAMGUARD_SECURITY_PROTOCOL": "SSL", "STREAMGUARD_SSL_CAFILE": "/nonexistent/ca"},
            "SSL_CAFILE /nonexistent/ca is not a readable file",
        ),
        ({"STREAMGUARD_SASL_PASSWORD_FILE": "/nonexistent/pw"}, "cannot read"),
        (
            {
                "STREAMGUARD_SASL_PASSWORD_FILE": "/nonexistent/pw",
                "STREAMGUARD_SASL_PASSWORD": SECRET,
            },
            "not both",
        ),
    ],
)
def test_bad_security_settings_are_one_line_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        WorkerSettings.from_env(env)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert SECRET not in text


# --- keys that follow their file ---------------------------------------------------------------


def _write_keys(path: Path, keys: dict[str, str], mtime: int) -> None:
    """KEYS.json v1.1 with one HMAC key per (key_id, secret), bound to Ventura."""
    entries = {
        k: {"agency_id": "ca-ventura-county-so", "alg": "hmac-sha256", "secret": v}
        for k, v in keys.items()
    }
    path.write_text(json.dumps(entries), encoding="utf-8")
    os.utime(path, (mtime, mtime))  # a distinct mtime per version, whatever the clock says


def test_keys_rotate_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    _write_keys(path, {"k1": "old-secret-0123456789"}, 1_000_000)
    ring = KeyRing(path)
    assert {k: v.material for k, v in ring.items()} == {"k1": b"old-secret-0123456789"}
    assert ring.reload_if_changed() is False  # unchanged file: not read again
    _write_keys(path, {"k2": "new-secret-0123456789"}, 1_000_100)
    assert ring.reload_if_changed() is True
    assert {k: v.material for k, v in ring.items()} == {"k2": b"new-secret-0123456789"}
    assert "new-secret-0123456789" not in repr(ring)


def test_a_bad_new_keys_file_keeps_the_old_keys_and_logs_one_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.json"
    _write_keys(path, {"k1": "old-secret-0123456789"}, 1_000_000)
    ring = KeyRing(path)
    path.write_text('{"k1": "half-written', encoding="utf-8")
    os.utime(path, (1_000_200, 1_000_200))
    with caplog.at_level(logging.ERROR, logger="streamguard.worker"):
        for _ in range(3):  # checked again and again by the timer: one error line, not three
            assert ring.reload_if_changed() is False
    assert {k: v.material for k, v in ring.items()} == {"k1": b"old-secret-0123456789"}
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "keeping the 1 key(s) loaded before" in errors[0].getMessage()
    assert "half-written" not in errors[0].getMessage()
    _write_keys(
        path, {"k3": "fixed-0123456789abcdef"}, 1_000_300
    )  # the operator fixes the file: picked up
    assert ring.reload_if_changed() is True
    assert {k: v.material for k, v in ring.items()} == {"k3": b"fixed-0123456789abcdef"}


# --- consumer group session -------------------------------------------------------------------


def test_the_session_timeout_reaches_faust_with_a_heartbeat_a_third_of_it_at_most() -> None:
    from streamguard.worker.app import _app_options

    fast = _app_options(
        WorkerSettings.from_env({"STREAMGUARD_SESSION_TIMEOUT_SECONDS": "6"}), False
    )
    assert (fast["broker_session_timeout"], fast["broker_heartbeat_interval"]) == (6.0, 2.0)
    default = _app_options(WorkerSettings.from_env({}), False)
    assert (default["broker_session_timeout"], default["broker_heartbeat_interval"]) == (60.0, 3.0)
    with pytest.raises(SettingsError, match="SESSION_TIMEOUT_SECONDS must be at least 6, got 5"):
        WorkerSettings.from_env({"STREAMGUARD_SESSION_TIMEOUT_SECONDS": "5"})
