"""IngestSettings from STREAMGUARD_INGEST_* (and the worker's broker settings), refusing values
no ingest process could run with."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from streamguard.ingest.settings import IngestSettings, ingest_settings_table
from streamguard.settings import SettingsError


def test_defaults_keep_the_camera_endpoint_on_loopback() -> None:
    settings = IngestSettings.from_env({})
    assert (settings.bind, settings.port, settings.metrics_port) == ("127.0.0.1", 6070, 6071)
    assert settings.owners_path is None and settings.default_zone() is None
    assert settings.kafka.topic("reads") == "streamguard.reads"


def test_values_come_from_the_environment() -> None:
    settings = IngestSettings.from_env(
        {
            "STREAMGUARD_INGEST_OWNERS": "/etc/sg/owners.json",
            "STREAMGUARD_INGEST_PORT": "6455",
            "STREAMGUARD_INGEST_MAX_IN_FLIGHT": " 8 ",
            "STREAMGUARD_INGEST_TIMEZONE": "America/Los_Angeles",
            "STREAMGUARD_TOPIC_PREFIX": "sgx.",
            "STREAMGUARD_BROKER": "kafka://broker-1:9092",
        }
    )
    assert settings.owners_path == Path("/etc/sg/owners.json")
    assert (settings.port, settings.max_in_flight) == (6455, 8)
    assert settings.default_zone() == ZoneInfo("America/Los_Angeles")
    assert settings.kafka.topic("quarantine") == "sgx.quarantine"
    assert settings.kafka.bootstrap_servers == "broker-1:9092"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STREAMGUARD_INGEST_PORT": "http"}, "PORT must be int"),
        ({"STREAMGUARD_INGEST_PORT": "70000"}, "PORT must be a TCP port"),
        ({"STREAMGUARD_INGEST_MAX_IN_FLIGHT": "0"}, "MAX_IN_FLIGHT must be at least 1"),
        ({"STREAMGUARD_INGEST_MAX_BODY_BYTES": "-5"}, "MAX_BODY_BYTES must be at least 1"),
        ({"STREAMGUARD_INGEST_TIMEZONE": "PST8"}, "not an IANA time zone"),
        ({"STREAMGUARD_INGEST_TLS_CERTFILE": "/x.pem"}, "go together"),
        ({"STREAMGUARD_PARTITIONS": "0"}, "PARTITIONS"),  # the worker's own checks apply too
    ],
)
def test_unusable_values_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        IngestSettings.from_env(env)


def test_settings_table_lists_every_ingest_variable() -> None:
    names = [row[0] for row in ingest_settings_table()]
    assert all(name.startswith("STREAMGUARD_INGEST_") for name in names)
    assert "STREAMGUARD_INGEST_OWNERS" in names and "STREAMGUARD_INGEST_MAX_IN_FLIGHT" in names


def test_docs_list_every_setting_with_its_default_and_meaning() -> None:
    """docs/ingest.md's settings table is the one the code describes, row for row."""
    docs = (Path(__file__).resolve().parents[3] / "docs" / "ingest.md").read_text(encoding="utf-8")
    rows = [
        f"| `{name}` | `{default}` | {meaning} |"
        for name, default, meaning in ingest_settings_table()
    ]
    table = "\n".join(rows)
    assert table in docs
