"""Ingest settings: the one place that reads `STREAMGUARD_INGEST_*` environment variables.

The broker, the topic prefix and the Kafka security settings are the worker's own
(`STREAMGUARD_BROKER`, `STREAMGUARD_TOPIC_PREFIX`, `STREAMGUARD_SECURITY_PROTOCOL`, ...): an ingest
process and the workers it feeds must agree on them, so they are read by `WorkerSettings` once
and kept here as `kafka`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streamguard.settings import SettingsError, WorkerSettings

__all__ = ("INGEST_PREFIX", "IngestSettings", "ingest_settings_table", "load_zone")

INGEST_PREFIX: Final = "STREAMGUARD_INGEST_"


def _env(name: str, doc: str) -> dict[str, str]:
    return {"env": INGEST_PREFIX + name, "doc": doc}


def load_zone(name: str, source: str) -> ZoneInfo:
    """The IANA time zone `name`; `source` names where it came from in the error."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"{source} is not an IANA time zone (like America/Los_Angeles): {name!r}"
        raise SettingsError(msg) from None


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """Everything `streamguard ingest serve` and `streamguard ingest FILE` can be told."""

    owners_path: Path | None = field(
        default=None,
        metadata=_env(
            "OWNERS", "owners file: credentials, default recipients and time zone per agency"
        ),
    )
    # Cameras post here: loopback unless the operator opens it (behind TLS, see docs/ingest.md).
    bind: str = field(default="127.0.0.1", metadata=_env("BIND", "address the endpoint binds"))
    port: int = field(default=6070, metadata=_env("PORT", "port of the camera endpoint"))
    # Prometheus scrapes from another host; the page serves counts, never plates.
    metrics_bind: str = field(
        default="0.0.0.0",  # noqa: S104
        metadata=_env("METRICS_BIND", "address the /metrics listener binds"),
    )
    metrics_port: int = field(
        default=6071, metadata=_env("METRICS_PORT", "port of /metrics (apart from the cameras')")
    )
    max_body_bytes: int = field(
        default=2 * 1024 * 1024,
        metadata=_env("MAX_BODY_BYTES", "largest body accepted (413 above); crops count"),
    )
    max_in_flight: int = field(
        default=64,
        metadata=_env("MAX_IN_FLIGHT", "posts being read or sent at once; more are answered 503"),
    )
    retry_after_seconds: int = field(
        default=1, metadata=_env("RETRY_AFTER_SECONDS", "Retry-After of a 503 answer")
    )
    send_timeout_ms: int = field(
        default=10_000,
        metadata=_env("SEND_TIMEOUT_MS", "longest wait for the broker's ack before answering 503"),
    )
    timezone: str | None = field(
        default=None,
        metadata=_env(
            "TIMEZONE",
            "zone of camera-local times (Axis `datetime`) for owners that set none; "
            "unset: such events are refused",
        ),
    )
    signature_max_age_seconds: int = field(
        default=300,
        metadata=_env("SIGNATURE_MAX_AGE_SECONDS", "how old an HMAC-signed post may be"),
    )
    tls_certfile: Path | None = field(
        default=None, metadata=_env("TLS_CERTFILE", "serve the camera endpoint over TLS")
    )
    tls_keyfile: Path | None = field(
        default=None, metadata=_env("TLS_KEYFILE", "private key of TLS_CERTFILE")
    )
    log_level: str = field(default="info", metadata=_env("LOG_LEVEL", "ingest log level"))
    kafka: WorkerSettings = field(default_factory=WorkerSettings, metadata={})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestSettings:
        """Build settings from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"kafka": WorkerSettings.from_env(env)}
        for spec in dataclasses.fields(cls):
            if "env" not in spec.metadata:
                continue
            raw = env.get(spec.metadata["env"], "").strip()
            if raw:
                values[spec.name] = _parse(spec.metadata["env"], raw, str(spec.type))
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Reject values no ingest process could run with (one-line SettingsError)."""
        for name in (
            "MAX_BODY_BYTES",
            "MAX_IN_FLIGHT",
            "RETRY_AFTER_SECONDS",
            "SEND_TIMEOUT_MS",
            "SIGNATURE_MAX_AGE_SECONDS",
        ):
            if getattr(self, name.lower()) < 1:
                msg = f"{INGEST_PREFIX}{name} must be at least 1"
                raise SettingsError(msg)
        for name in ("PORT", "METRICS_PORT"):
            if not 0 < getattr(self, name.lower()) < 65536:
                msg = f"{INGEST_PREFIX}{name} must be a TCP port"
                raise SettingsError(msg)
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            msg = f"{INGEST_PREFIX}TLS_CERTFILE and {INGEST_PREFIX}TLS_KEYFILE go together"
            raise SettingsError(msg)
        if self.timezone is not None:
            load_zone(self.timezone, f"{INGEST_PREFIX}TIMEZONE")

    def default_zone(self) -> ZoneInfo | None:
        """The zone of camera-local times for owners that configure none."""
        if self.timezone is None:
            return None
        return load_zone(self.timezone, f"{INGEST_PREFIX}TIMEZONE")


def _parse(name: str, raw: str, kind: str) -> Any:
    parsers: dict[str, Callable[[str], Any]] = {
        "str": str,
        "str | None": str,
        "int": int,
        "Path | None": Path,
    }
    try:
        return parsers[kind](raw)
    except ValueError:
        msg = f"{name} must be {kind.removesuffix(' | None')}, got {raw!r}"
        raise SettingsError(msg) from None


def ingest_settings_table() -> list[tuple[str, str, str]]:
    """(env name, default, meaning) for every ingest setting, for the docs."""
    return [
        (
            spec.metadata["env"],
            "(unset)" if spec.default is None else str(spec.default),
            spec.metadata["doc"],
        )
        for spec in dataclasses.fields(IngestSettings)
        if "env" in spec.metadata
    ]
