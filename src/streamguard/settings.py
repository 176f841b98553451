"""Worker settings: the one place that reads `STREAMGUARD_*` environment variables.

Everything else receives a frozen `WorkerSettings`, so tests build one directly and nothing
deep in the worker can change behaviour by reading the environment behind the caller's back.

The README's settings table is generated from the fields below:
`python -m streamguard.settings --write README.md` rewrites it between its marker comments,
`--check README.md` exits 1 when it differs (CI runs it), `--markdown` prints it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from streamguard.exceptions import StreamguardError

__all__ = (
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ENV_PREFIX",
    "TABLE_BEGIN",
    "TABLE_END",
    "SettingsError",
    "WorkerSettings",
    "settings_markdown",
    "settings_table",
    "with_settings_table",
)

ENV_PREFIX: Final = "STREAMGUARD_"
_T = TypeVar("_T")
_TRUE: Final = frozenset(("1", "true", "yes", "on"))
_FALSE: Final = frozenset(("0", "false", "no", "off"))
_PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# The generated table sits between these two lines of a Markdown file.
TABLE_BEGIN: Final = (
    "<!-- settings table: generated from src/streamguard/settings.py by "
    "`python -m streamguard.settings --write README.md`; do not edit by hand -->"
)
TABLE_END: Final = "<!-- end of settings table -->"
# The largest output message written whole: Kafka's default `max.message.bytes` is 1048588,
# less the headroom of a record batch's framing, key and headers. A larger one is split.
DEFAULT_MAX_MESSAGE_BYTES: Final = 1_000_000


class SettingsError(StreamguardError):
    """An environment variable holds a value the worker cannot use.

    Operator action: fix the variable named in the message; the worker does not start.
    """


def _env(name: str, doc: str) -> dict[str, str]:
    # The env name and the documentation live on the field, so the docs table and the parser
    # cannot drift apart.
    return {"env": ENV_PREFIX + name, "doc": doc}


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Everything `streamguard worker` and `streamguard verify-audit` can be told."""

    broker: str = field(
        default="kafka://localhost:9092",
        metadata=_env("BROKER", "Kafka bootstrap server(s), comma-separated"),
    )
    broker_wait_seconds: int = field(
        default=30,
        metadata=_env(
            "BROKER_WAIT_SECONDS",
            "how long the worker waits at start for a broker to answer; then it exits with "
            "one error line",
        ),
    )
    keys_path: Path | None = field(
        default=None,
        metadata=_env(
            "KEYS",
            "KEYS.json v1.1 (docs/keys.md): the keys that sign policy changes and agency "
            "records; unset: every one is rejected",
        ),
    )
    checkpoint_key: Path | None = field(
        default=None,
        metadata=_env(
            "CHECKPOINT_KEY",
            "Ed25519 key that signs audit checkpoints (streamguard checkpoint-key); "
            "unset: the trail is not checkpointed",
        ),
    )
    checkpoint_every_records: int = field(
        default=1000,
        metadata=_env(
            "CHECKPOINT_EVERY_RECORDS", "sign a chain's checkpoint after at most N new records"
        ),
    )
    checkpoint_every_seconds: int = field(
        default=60,
        metadata=_env(
            "CHECKPOINT_EVERY_SECONDS", "and at most S seconds after a chain's first new record"
        ),
    )
    agencies_path: Path | None = field(
        default=None,
        metadata=_env("AGENCIES", "agencies CSV loaded at start, merged under the agencies topic"),
    )
    data_dir: Path = field(
        default=Path("streamguard-data"),
        metadata=_env("DATA_DIR", "table state (RocksDB) and the salt file"),
    )
    web_port: int = field(
        default=6066, metadata=_env("WEB_PORT", "port of the web server that serves /metrics")
    )
    # Prometheus scrapes from another host; the page serves counts, never plates.
    web_bind: str = field(
        default="0.0.0.0",  # noqa: S104
        metadata=_env("WEB_BIND", "address the web server binds"),
    )
    topic_prefix: str = field(
        default="streamguard.", metadata=_env("TOPIC_PREFIX", "prefix of every contract topic")
    )
    app_id: str = field(
        default="streamguard-worker",
        metadata=_env("APP_ID", "Kafka consumer group and internal-topic prefix"),
    )
    partitions: int = field(
        default=8,
        metadata=_env(
            "PARTITIONS", "partitions of topics the worker creates; must match the input topics"
        ),
    )
    replication: int = field(
        default=1, metadata=_env("REPLICATION", "replication factor of topics the worker creates")
    )
    store: str = field(
        default="rocksdb://",
        metadata=_env("STORE", "table store: rocksdb:// (in DATA_DIR) or memory://"),
    )
    plate_salt: str | None = field(
        default=None,
        metadata=_env(
            "PLATE_SALT",
            "salt of audit plate hashes; unset: a random salt kept in DATA_DIR/plate_salt",
        ),
    )
    rate_limit_per_minute: int = field(
        default=120,
        metadata=_env(
            "RATE_LIMIT_PER_MINUTE", "searches per requester per minute (event time); 0 disables"
        ),
    )
    alert_out_of_state_per_hour: int = field(
        default=20,
        metadata=_env(
            "ALERT_OUT_OF_STATE_PER_HOUR",
            "alert when an owner gets more than N out-of-state or federal attempts in an hour",
        ),
    )
    alert_denied_networks_per_hour: int = field(
        default=50,
        metadata=_env(
            "ALERT_DENIED_NETWORKS_PER_HOUR",
            "alert when a requester is denied more than N owner networks in an hour",
        ),
    )
    alert_immigration_per_hour: int = field(
        default=5,
        metadata=_env(
            "ALERT_IMMIGRATION_PER_HOUR",
            "alert when a requester makes more than N immigration-purpose searches in an hour",
        ),
    )
    batch_size: int = field(
        default=4000, metadata=_env("BATCH_SIZE", "events decided per batch (stream.take)")
    )
    max_message_bytes: int = field(
        default=DEFAULT_MAX_MESSAGE_BYTES,
        metadata=_env(
            "MAX_MESSAGE_BYTES",
            "the largest output record written whole; a larger one is split into parts "
            "(docs/contract.md section 4). At most the topics' max.message.bytes less headroom",
        ),
    )
    batch_window_ms: int = field(
        default=50, metadata=_env("BATCH_WINDOW_MS", "longest wait to fill a batch")
    )
    batch_close_early: bool = field(
        default=False,
        metadata=_env(
            "BATCH_CLOSE_EARLY",
            "close a batch that is not full as soon as its queue is empty (unless another "
            "agent's batch awaits its acknowledgements): lower latency at low load, but 0.71-0.82 "
            "of the throughput under a backlog in a paired run (docs/scaling.md section 7)",
        ),
    )
    commit_interval_ms: int = field(
        default=2800,
        metadata=_env(
            "COMMIT_INTERVAL_MS",
            "how often decided offsets are committed; a crash re-decides at most this much",
        ),
    )
    session_timeout_seconds: int = field(
        default=60,
        metadata=_env(
            "SESSION_TIMEOUT_SECONDS",
            "how long the consumer group waits for a worker that stopped heartbeating before its "
            "partitions move to the others (at least 6, the broker's minimum); lower: faster "
            "takeover after a crash",
        ),
    )
    enforce_unverified: bool = field(
        default=True,
        metadata=_env(
            "ENFORCE_UNVERIFIED", "enforce statute provisions whose text is marked unverified"
        ),
    )
    log_level: str = field(default="info", metadata=_env("LOG_LEVEL", "worker log level"))
    security_protocol: str = field(
        default="PLAINTEXT",
        metadata=_env("SECURITY_PROTOCOL", "Kafka: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
    )
    sasl_mechanism: str = field(
        default="PLAIN",
        metadata=_env("SASL_MECHANISM", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* only)"),
    )
    sasl_username: str | None = field(
        default=None, metadata=_env("SASL_USERNAME", "SASL user name")
    )
    # A secret: never in repr (so never in a log line or a traceback's locals summary).
    sasl_password: str | None = field(
        default=None,
        repr=False,
        metadata=_env("SASL_PASSWORD", "SASL password (prefer SASL_PASSWORD_FILE)"),
    )
    sasl_password_file: Path | None = field(
        default=None,
        metadata=_env("SASL_PASSWORD_FILE", "file holding the SASL password (one line)"),
    )
    ssl_cafile: Path | None = field(
        default=None, metadata=_env("SSL_CAFILE", "CA bundle that signs the brokers' certificates")
    )
    ssl_certfile: Path | None = field(
        default=None, metadata=_env("SSL_CERTFILE", "client certificate (mutual TLS)")
    )
    ssl_keyfile: Path | None = field(
        default=None, metadata=_env("SSL_KEYFILE", "private key of the client certificate")
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        """Build settings from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            name = spec.metadata["env"]
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            values[spec.name] = _parse(name, raw.strip(), spec.type)
        password_file = values.get("sasl_password_file")
        if password_file is not None:
            if "sasl_password" in values:
                msg = f"set {ENV_PREFIX}SASL_PASSWORD or {ENV_PREFIX}SASL_PASSWORD_FILE, not both"
                raise SettingsError(msg)
            values["sasl_password"] = _read_secret(password_file, "SASL_PASSWORD_FILE")
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Reject combinations no worker could run with (one-line SettingsError)."""
        positive = {
            "BROKER_WAIT_SECONDS": self.broker_wait_seconds,
            "PARTITIONS": self.partitions,
            "REPLICATION": self.replication,
            "BATCH_SIZE": self.batch_size,
            "MAX_MESSAGE_BYTES": self.max_message_bytes,
            "BATCH_WINDOW_MS": self.batch_window_ms,
            "COMMIT_INTERVAL_MS": self.commit_interval_ms,
            "CHECKPOINT_EVERY_RECORDS": self.checkpoint_every_records,
            "CHECKPOINT_EVERY_SECONDS": self.checkpoint_every_seconds,
        }
        for name, value in positive.items():
            if value < 1:
                msg = f"{ENV_PREFIX}{name} must be at least 1, got {value}"
                raise SettingsError(msg)
        for name in (
            "RATE_LIMIT_PER_MINUTE",
            "ALERT_OUT_OF_STATE_PER_HOUR",
            "ALERT_DENIED_NETWORKS_PER_HOUR",
            "ALERT_IMMIGRATION_PER_HOUR",
        ):
            if getattr(self, name.lower()) < 0:
                msg = f"{ENV_PREFIX}{name} must not be negative"
                raise SettingsError(msg)
        if self.session_timeout_seconds < 6:
            # The broker's group.min.session.timeout.ms defaults to 6 s: a lower one is refused
            # at join time with an error far from its cause.
            msg = (
                f"{ENV_PREFIX}SESSION_TIMEOUT_SECONDS must be at least 6, "
                f"got {self.session_timeout_seconds}"
            )
            raise SettingsError(msg)
        if not 0 < self.web_port < 65536:
            msg = f"{ENV_PREFIX}WEB_PORT must be a TCP port, got {self.web_port}"
            raise SettingsError(msg)
        if self.store.split("://", 1)[0] not in ("rocksdb", "memory"):
            msg = f"{ENV_PREFIX}STORE must be rocksdb:// or memory://, got {self.store!r}"
            raise SettingsError(msg)
        self._check_security()
        if self.plate_salt is not None and len(self.plate_salt) < 16:
            # A short salt over the small space of plates is a lookup table away from the plates.
            msg = f"{ENV_PREFIX}PLATE_SALT must be at least 16 characters"
            raise SettingsError(msg)

    def _check_security(self) -> None:
        protocol = self.security_protocol.upper()
        if protocol not in _PROTOCOLS:
            msg = (
                f"{ENV_PREFIX}SECURITY_PROTOCOL must be one of {', '.join(_PROTOCOLS)}, "
                f"got {self.security_protocol!r}"
            )
            raise SettingsError(msg)
        if protocol.startswith("SASL_"):
            if self.sasl_mechanism.upper() not in _MECHANISMS:
                msg = (
                    f"{ENV_PREFIX}SASL_MECHANISM must be one of {', '.join(_MECHANISMS)}, "
                    f"got {self.sasl_mechanism!r}"
                )
                raise SettingsError(msg)
            if not self.sasl_username or not self.sasl_password:
                msg = (
                    f"{ENV_PREFIX}SECURITY_PROTOCOL={protocol} needs {ENV_PREFIX}SASL_USERNAME "
                    f"and {ENV_PREFIX}SASL_PASSWORD (or SASL_PASSWORD_FILE)"
                )
                raise SettingsError(msg)
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            msg = f"{ENV_PREFIX}SSL_CERTFILE and {ENV_PREFIX}SSL_KEYFILE go together"
            raise SettingsError(msg)
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                msg = f"{ENV_PREFIX}{name.upper()} {path} is not a readable file"
                raise SettingsError(msg)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of SSL and SASL_SSL connections; None for plaintext ones."""
        if not self.security_protocol.upper().endswith("SSL"):
            return None
        try:
            context = ssl.create_default_context(
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None
            )
            if self.ssl_certfile is not None:
                context.load_cert_chain(
                    str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
                )
        except (OSError, ssl.SSLError) as exc:
            # The reason only: never the key material.
            msg = f"cannot build the Kafka TLS context: {type(exc).__name__}: {exc.strerror or ''}"
            raise SettingsError(msg.rstrip(": ")) from None
        return context

    def faust_credentials(self) -> Any:
        """faust's `broker_credentials` for these settings (None for PLAINTEXT)."""
        import faust

        protocol = self.security_protocol.upper()
        if protocol == "PLAINTEXT":
            return None
        context = self.ssl_context()
        if protocol == "SSL":
            return faust.SSLCredentials(context)
        return faust.SASLCredentials(
            username=self.sasl_username,
            password=self.sasl_password,
            mechanism=self.sasl_mechanism.upper(),
            ssl_context=context,
        )

    @property
    def bootstrap_servers(self) -> str:
        """The broker list without faust's `kafka://` scheme, for plain aiokafka clients."""
        return ",".join(
            part.strip().removeprefix("kafka://") for part in self.broker.split(",") if part.strip()
        )

    def kafka_client_options(self) -> dict[str, Any]:
        """Security keyword arguments for plain aiokafka clients (verify-audit, audit tail)."""
        protocol = self.security_protocol.upper()
        options: dict[str, Any] = {"security_protocol": protocol}
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if protocol.startswith("SASL_"):
            options |= {
                "sasl_mechanism": self.sasl_mechanism.upper(),
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password,
            }
        return options

    def topic(self, name: str) -> str:
        """A contract topic under the configured prefix: `searches` -> `streamguard.searches`."""
        return self.topic_prefix + name


def _parse(name: str, raw: str, kind: object) -> Any:
    parsers: dict[str, Callable[[str], Any]] = {
        "str": str,
        "str | None": str,
        "int": int,
        "bool": _bool,
        "Path": Path,
        "Path | None": Path,
    }
    parser = parsers[str(kind)]
    try:
        return parser(raw)
    except ValueError:
        msg = f"{name} must be {str(kind).removesuffix(' | None')}, got {raw!r}"
        raise SettingsError(msg) from None


def _read_secret(path: Path, name: str) -> str:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        msg = f"cannot read {ENV_PREFIX}{name} {path}: {reason}"
        raise SettingsError(msg) from None
    if not secret:
        msg = f"{ENV_PREFIX}{name} {path} is empty"
        raise SettingsError(msg)
    return secret


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(raw)


def settings_table() -> list[tuple[str, str, str]]:
    """(env name, default, meaning) for every setting, for the docs."""
    rows: list[tuple[str, str, str]] = []
    for spec in dataclasses.fields(WorkerSettings):
        default = "(unset)" if spec.default is None else str(spec.default)
        rows.append((spec.metadata["env"], default, spec.metadata["doc"]))
    return rows


def settings_markdown() -> str:
    """The settings as a Markdown table, one row per variable, in declaration order."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for spec in dataclasses.fields(WorkerSettings):
        default = spec.default
        if default is None:
            shown = "(unset)"
        elif isinstance(default, bool):
            shown = f"`{str(default).lower()}`"  # spelled as the variable takes it
        else:
            shown = f"`{default}`"
        doc = spec.metadata["doc"].replace("|", "\\|")
        lines.append(f"| `{spec.metadata['env']}` | {shown} | {doc} |")
    return "\n".join(lines) + "\n"


def with_settings_table(text: str) -> str:
    """`text` (a Markdown document) with the part between the table markers regenerated.

    Raises SettingsError when the markers are missing, repeated or out of order, so a check
    can never pass on a document that has no generated table at all.
    """
    lines = text.splitlines(keepends=True)
    begins = [i for i, line in enumerate(lines) if line.strip() == TABLE_BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == TABLE_END]
    if len(begins) != 1 or len(ends) != 1 or begins[0] > ends[0]:
        msg = "expected one settings-table begin marker followed by one end marker"
        raise SettingsError(msg)
    head, tail = lines[: begins[0] + 1], lines[ends[0] :]
    return "".join([*head, settings_markdown(), *tail])


def main(argv: list[str] | None = None) -> int:
    """`python -m streamguard.settings`: print, write or check the generated settings table."""
    parser = argparse.ArgumentParser(
        prog="python -m streamguard.settings",
        description="The STREAMGUARD_* settings table, generated from WorkerSettings.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--markdown", action="store_true", help="print the Markdown table")
    action.add_argument("--write", type=Path, metavar="FILE", help="regenerate FILE's table")
    action.add_argument("--check", type=Path, metavar="FILE", help="exit 1 if FILE's differs")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(settings_markdown())
        return 0
    path: Path = args.write or args.check
    try:
        text = path.read_text(encoding="utf-8")
        expected = with_settings_table(text)
    except (OSError, UnicodeDecodeError, SettingsError) as exc:
        print(f"streamguard.settings: error: {path}: {exc}", file=sys.stderr)
        return 2
    if args.write:
        if expected != text:
            path.write_text(expected, encoding="utf-8")
        return 0
    if expected != text:
        print(
            f"{path}: the settings table differs from src/streamguard/settings.py; "
            f"run python -m streamguard.settings --write {path}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
