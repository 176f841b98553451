"""A single-node Apache Kafka broker (KRaft, broker and controller in one JVM) on localhost.

`streamguard kafka start|stop` and the integration tests use it so that demos and trials need no
Docker and no manual Kafka install. The broker jars are fetched once per Kafka version and cached:
through Maven Central with `mvn` when it is on PATH (the only route that works on machines that
reach package registries but not the wider internet), else from the official Apache release
archive.

Layout (XDG base directories, so a user can wipe caches without losing broker data):

- `$XDG_CACHE_HOME/streamguard/kafka/<version>/libs/*.jar`: the broker's classpath;
- `$XDG_STATE_HOME/streamguard/kafka/<port>/broker.json`: pid file of the broker on that port;
- `$XDG_STATE_HOME/streamguard/kafka/<port>/data/`: default data dir (`--data-dir` overrides), which
  holds `server.properties`, the KRaft log dirs and `logs/` (JVM output and `server.log`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from streamguard.exceptions import BrokerError, error_line
from streamguard.local.status import StatusLine

__all__ = (
    "DEFAULT_PORT",
    "KAFKA_VERSION",
    "BrokerHandle",
    "Stage",
    "broker_is_up",
    "download_step",
    "ensure_kafka_libs",
    "format_command",
    "main_kafka",
    "new_cluster_id",
    "port_in_use",
    "start_broker",
    "stop_broker",
)

DEFAULT_PORT = 9092
# Newest 4.x that Maven Central serves here; aiokafka 0.14 speaks the protocol versions Kafka 4
# kept after KIP-896. STREAMGUARD_KAFKA_VERSION overrides it (e.g. to pin 4.0.x for a bug hunt).
KAFKA_VERSION = "4.4.0"
SCALA_VERSION = "2.13"
MIN_JAVA = 17  # Kafka 4 brokers need Java 17.
DEFAULT_PARTITIONS = 8

_MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# log4j-core arrives with kafka_2.13, but no SLF4J 1.x binding does: without one the broker's
# slf4j-api logs nothing at all, and a failed start would leave an empty log to read.
_LOG4J_VERSION = "2.25.5"
_APACHE_MIRRORS = (
    "https://downloads.apache.org/kafka",
    "https://archive.apache.org/dist/kafka",
)
_MAVEN_TIMEOUT_S = 900.0
_DOWNLOAD_TIMEOUT_S = 60.0
_FORMAT_TIMEOUT_S = 180.0
_JVM_OPTS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
_PID_FILE = "broker.json"
_LOG_TAIL_LINES = 4


@dataclass(frozen=True)
class BrokerHandle:
    """A running local broker. `already_running` is True when `start_broker` found it up."""

    port: int
    pid: int
    data_dir: Path
    bootstrap: str
    already_running: bool = False


# --------------------------------------------------------------------------------------------
# Locations


def _xdg_dir(env: str, fallback: str) -> Path:
    value = os.environ.get(env, "")
    # The XDG spec says relative values are invalid and must be ignored.
    if value and Path(value).is_absolute():
        return Path(value)
    return Path.home() / fallback


def kafka_version() -> str:
    """The Kafka version to run: STREAMGUARD_KAFKA_VERSION or the tested default."""
    value = os.environ.get("STREAMGUARD_KAFKA_VERSION", "").strip()
    if not value:
        return KAFKA_VERSION
    if not re.fullmatch(r"\d+\.\d+\.\d+", value):
        raise BrokerError(f"STREAMGUARD_KAFKA_VERSION must look like 4.4.0, got {value!r}")
    return value


def _cache_root() -> Path:
    return _xdg_dir("XDG_CACHE_HOME", ".cache") / "streamguard" / "kafka"


def _port_state_dir(port: int) -> Path:
    return _xdg_dir("XDG_STATE_HOME", ".local/state") / "streamguard" / "kafka" / str(port)


def default_data_dir(port: int) -> Path:
    """Where the broker on `port` keeps its data when no `--data-dir` is given."""
    return _port_state_dir(port) / "data"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # Two `start`s at once (parallel tests, a demo and a shell) must not both download into or
    # format the same directory.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# Fetching the broker


def _tail(path: Path, lines: int) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()][-lines:]


def _one_line(lines: list[str], limit: int = 300) -> str:
    return " | ".join(line[:limit] for line in lines)


def _run_logged(cmd: list[str], log: Path, timeout: float, what: str) -> int:
    """Run `cmd` with its output in `log` (read back for errors); return its exit code."""
    try:
        with log.open("wb") as sink:
            proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
                cmd,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
    except subprocess.TimeoutExpired:
        raise BrokerError(f"{what} took over {timeout:.0f}s (log: {log})") from None
    except OSError as exc:
        raise BrokerError(f"{what} failed: cannot run {cmd[0]}: {exc.strerror}") from None
    return proc.returncode


# Told each step of a long start ("fetching Kafka 4.4.0 with mvn", "waiting for the broker"):
# `streamguard kafka start` shows it on a terminal, the demo in its progress line.
Stage = Callable[[str], None]


def _silent(_step: str) -> None:
    return None


def _maven_pom(version: str) -> str:
    deps = [
        ("org.apache.kafka", f"kafka_{SCALA_VERSION}", version),
        ("org.apache.logging.log4j", "log4j-slf4j-impl", _LOG4J_VERSION),
    ]
    dep_xml = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in deps
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.streamguard</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{dep_xml}
  </dependencies>
</project>
"""


def _fetch_with_maven(mvn: str, version: str, work: Path, out: Path) -> None:
    pom = work / "pom.xml"
    pom.write_text(_maven_pom(version), encoding="utf-8")
    log = work / "mvn.log"
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom),
        f"{_MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={out}",
    ]
    code = _run_logged(cmd, log, _MAVEN_TIMEOUT_S, f"fetching Kafka {version} with mvn")
    if code != 0:
        errors = [line for line in _tail(log, 200) if "ERROR" in line] or _tail(log, 3)
        raise BrokerError(
            f"mvn could not fetch Kafka {version} (exit {code}): {_one_line(errors[:3])}"
        )


def _download(url: str, dest: Path, stage: Stage = _silent) -> None:
    if not url.startswith("https://"):  # urlopen also takes file:// and ftp://; we never want them
        raise BrokerError(f"refusing non-https download {url}")
    name = url.rsplit("/", 1)[-1]
    with (
        urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as resp,  # noqa: S310
        dest.open("wb") as sink,
    ):
        total = int(resp.headers.get("Content-Length") or 0)
        done = 0
        for chunk in iter(lambda: resp.read(1 << 20), b""):
            sink.write(chunk)
            done += len(chunk)
            stage(download_step(name, done, total))


def download_step(name: str, done: int, total: int) -> str:
    """`downloading kafka_2.13-4.4.0.tgz: 12 of 120 MB (10%)`; without a length, MB so far."""
    got = f"downloading {name}: {done / 1e6:.0f}"
    if total > 0:
        return f"{got} of {total / 1e6:.0f} MB ({100 * done / total:.0f}%)"
    return f"{got} MB"


def _expected_sha512(text: str) -> str:
    # Apache publishes either `gpg --print-md` output ("file: 1234 ABCD ..." over several lines)
    # or sha512sum output ("hex  file"); both reduce to the 128 hex digits.
    body = text.split(":", 1)[1] if ":" in text else text.split(maxsplit=1)[0]
    digest = re.sub(r"\s+", "", body).lower()
    if not re.fullmatch(r"[0-9a-f]{128}", digest):
        raise BrokerError("the published SHA-512 of the Kafka release could not be read")
    return digest


def _fetch_from_apache(version: str, work: Path, out: Path, stage: Stage = _silent) -> None:
    name = f"kafka_{SCALA_VERSION}-{version}"
    archive = work / f"{name}.tgz"
    failures: list[str] = []
    for mirror in _APACHE_MIRRORS:
        url = f"{mirror}/{version}/{name}.tgz"
        try:
            stage(f"downloading Kafka {version} from {mirror}")
            _download(url, archive, stage)
            _download(url + ".sha512", work / "sha512.txt")
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            failures.append(f"{url}: {reason}")
            continue
        break
    else:
        raise BrokerError(f"could not download Kafka {version}: {'; '.join(failures)}")
    expected = _expected_sha512((work / "sha512.txt").read_text(encoding="utf-8"))
    digest = hashlib.sha512()
    with archive.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    stage(f"checking and unpacking Kafka {version}")
    if digest.hexdigest() != expected:
        raise BrokerError(f"downloaded Kafka {version} does not match its published SHA-512")
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            # Only the flat libs/ folder: the broker needs nothing else, and taking basenames only
            # keeps a hostile archive from writing outside `out`.
            if member.isfile() and len(parts) == 3 and parts[1] == "libs":
                source = tar.extractfile(member)
                if source is not None:
                    with source, (out / parts[2]).open("wb") as sink:
                        shutil.copyfileobj(source, sink)


def ensure_kafka_libs(version: str | None = None, *, stage: Stage = _silent) -> Path:
    """Return the cached classpath folder of Kafka `version`, fetching it on first use."""
    version = version or kafka_version()
    root = _cache_root() / version
    libs = root / "libs"
    marker = root / "complete"
    if marker.is_file() and libs.is_dir():
        return libs
    with _file_lock(root / ".lock"):
        if marker.is_file() and libs.is_dir():
            return libs
        with tempfile.TemporaryDirectory(prefix="fetch-", dir=root) as tmp:
            work = Path(tmp)
            staged = work / "libs"
            mvn = shutil.which("mvn")
            errors: list[str] = []
            if mvn:
                stage(f"fetching Kafka {version} with mvn (first run only; about a minute)")
                try:
                    _fetch_with_maven(mvn, version, work, staged)
                except BrokerError as exc:
                    errors.append(str(exc))
                    shutil.rmtree(staged, ignore_errors=True)
            if not mvn or errors:
                try:
                    _fetch_from_apache(version, work, staged, stage)
                except BrokerError as exc:
                    errors.append(str(exc))
                    raise BrokerError("; ".join(errors)) from None
            if not any(staged.glob(f"kafka_{SCALA_VERSION}-*.jar")):
                raise BrokerError(f"fetched Kafka {version} but its broker jar is missing")
            shutil.rmtree(libs, ignore_errors=True)
            staged.rename(libs)
        marker.write_text(version + "\n", encoding="utf-8")
    return libs


def _storage_tool_class(libs: Path) -> str:
    """Return the storage tool's class as this Kafka version names it (checking the broker's)."""
    names: set[str] = set()
    for jar in libs.glob("kafka*.jar"):
        with contextlib.suppress(zipfile.BadZipFile, OSError), zipfile.ZipFile(jar) as zf:
            names.update(zf.namelist())
    # StorageTool moved between packages across 3.x/4.x; use whichever this version ships.
    storage = next(
        (
            cls
            for cls in ("kafka.tools.StorageTool", "org.apache.kafka.tools.StorageTool")
            if cls.replace(".", "/") + ".class" in names
        ),
        None,
    )
    if "kafka/Kafka.class" not in names or storage is None:
        raise BrokerError(f"the Kafka jars in {libs} are incomplete; delete that folder and retry")
    return storage


# --------------------------------------------------------------------------------------------
# Java


def _find_java() -> str:
    java_home = os.environ.get("JAVA_HOME", "")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is not None and os.access(candidate, os.X_OK):
        java = str(candidate)
    else:
        found = shutil.which("java")
        if found is None:
            raise BrokerError(
                f"Java {MIN_JAVA}+ is needed to run Kafka but `java` is not on PATH "
                "(install a JDK, e.g. apt-get install openjdk-17-jre-headless)"
            )
        java = found
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerError(f"could not run {java} -version: {exc}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if match is None:
        raise BrokerError(f"could not read the Java version of {java}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise BrokerError(f"Kafka 4 needs Java {MIN_JAVA}+ but {java} is Java {major}")
    return java


# --------------------------------------------------------------------------------------------
# Processes and ports


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A dead child that nobody reaped yet still answers kill(0); /proc tells zombies apart.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    state = stat.rsplit(")", 1)[-1].split()
    return not state or state[0] not in ("Z", "X")


def _is_our_broker(pid: int, config: Path) -> bool:
    """True when `pid` is alive and is the Kafka JVM started with `config` (not a reused pid)."""
    if not _pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (not Linux): trust the pid file
    args = [arg.decode(errors="replace") for arg in cmdline]
    return "kafka.Kafka" in args and str(config) in args


def port_in_use(port: int) -> bool:
    """True when a process listens on 127.0.0.1:`port` (or on every address) right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR so that closed connections in TIME_WAIT (a just-stopped broker, the last
        # scrapes of a worker's /metrics) do not count: the JVM and aiohttp bind with it too.
        # A live listener on the port still makes bind fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _read_record(port: int) -> dict[str, Any] | None:
    path = _port_state_dir(port) / _PID_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
        return None
    return record


def _write_record(port: int, record: dict[str, Any]) -> None:
    path = _port_state_dir(port) / _PID_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _remove_record(port: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        (_port_state_dir(port) / _PID_FILE).unlink()


def _live_record(port: int) -> dict[str, Any] | None:
    """The pid file of `port` when it names our running broker; a stale one is removed."""
    record = _read_record(port)
    if record is None:
        return None
    if _is_our_broker(int(record["pid"]), Path(str(record.get("config", "")))):
        return record
    _remove_record(port)
    return None


# --------------------------------------------------------------------------------------------
# Readiness


def _run_private_loop(coro: Coroutine[Any, Any, bool]) -> bool:
    # Not asyncio.run: it resets the thread's current event loop on exit, which would pull the
    # loop from under a caller that keeps one (pytest-asyncio's session loop, a Faust app).
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _run_coroutine(coro: Coroutine[Any, Any, bool]) -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_private_loop(coro)
    # Called from async code (a demo, an async test): a loop cannot be nested in a running one,
    # so the probe runs on a helper thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_run_private_loop, coro).result()


async def _metadata_round_trip(bootstrap: str, timeout: float) -> bool:
    # Imported here: aiokafka pulls in much of asyncio and costs the `stop` path for nothing.
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=max(int(timeout * 1000), 500),
        client_id="streamguard-kafka-probe",
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        # A KRaft broker answers before it has registered with its controller; only a broker
        # that lists itself in metadata can lead partitions and serve produce requests.
        return len(client.cluster.brokers()) > 0
    except Exception:  # any failure just means "not up yet"
        return False
    finally:
        await client.close()


def _parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",", maxsplit=1)[0].strip()
    first = first.removeprefix("kafka://")
    host, sep, port = first.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"not a host:port bootstrap address: {bootstrap!r}")
    return host.strip("[]") or "localhost", int(port)


def broker_is_up(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when a Kafka broker at `bootstrap` (host:port) answers a metadata request in time."""
    try:
        host, port = _parse_bootstrap(bootstrap)
    except ValueError:
        return False
    # A plain TCP connect first: cheap, and it spares aiokafka logging connection errors at
    # ERROR level every half second while the JVM is still starting.
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError:
        return False
    bootstrap = f"{host}:{port}"
    return _run_coroutine(_metadata_round_trip(bootstrap, timeout))


# --------------------------------------------------------------------------------------------
# Start and stop


def _server_properties(node_dir: Path, port: int, controller_port: int, partitions: int) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://localhost:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(node_dir),
        "num.partitions": str(partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # One broker: internal topics cannot have the default replication factor of 3.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": str(partitions),
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
        # Tests and demos start consumers right away; the 3 s default only slows them down.
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    lines = ["# Written by streamguard kafka start; rewritten on every start.", ""]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _log4j_properties(logs_dir: Path) -> str:
    server_log = logs_dir / "server.log"
    return f"""status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {server_log}
appender.file.filePattern = {server_log}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 10MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def _controller_port(data_dir: Path) -> int:
    # Reuse the controller port across restarts of one data dir where possible, so the quorum
    # config stays the one the storage was formatted with.
    path = data_dir / "controller.port"
    with contextlib.suppress(OSError, ValueError):
        previous = int(path.read_text(encoding="ascii").strip())
        if 0 < previous < 65536 and not port_in_use(previous):
            return previous
    port = _free_port()
    path.write_text(f"{port}\n", encoding="ascii")
    return port


def _log_excerpt(logs_dir: Path) -> str:
    lines = _tail(logs_dir / "broker.out", 50) + _tail(logs_dir / "server.log", 50)
    errors = [line for line in lines if "ERROR" in line or "Exception" in line or "Error:" in line]
    picked = (errors or lines)[-_LOG_TAIL_LINES:]
    return _one_line(picked) if picked else "(log is empty)"


def new_cluster_id(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding (22 characters).

    Like Kafka's own `Uuid.randomUuid()`, never one that begins with '-': one id in 64 would,
    and command-line tools read such a value as an option (`kafka-storage ... -t -x...` fails
    with "argument --cluster-id/-t: expected one argument").
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes(16)).rstrip(b"=").decode("ascii")
        if not cluster_id.startswith("-"):
            return cluster_id


def format_command(
    java: str, libs: Path, storage_class: str, cluster_id: str, *, config: Path, log4j: Path
) -> list[str]:
    """The `kafka-storage format` command line for `config` with `cluster_id`."""
    return [
        java,
        "-Xmx256m",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        f"{libs}/*",
        storage_class,
        "format",
        "--ignore-formatted",
        # One token, `--cluster-id=<id>`: a separate value that begins with '-' would be taken
        # for an option, whoever generated the id.
        f"--cluster-id={cluster_id}",
        "-c",
        str(config),
    ]


def _format_storage(
    java: str, libs: Path, storage_class: str, *, config: Path, log4j: Path, logs_dir: Path
) -> None:
    cmd = format_command(java, libs, storage_class, new_cluster_id(), config=config, log4j=log4j)
    out = logs_dir / "format.out"
    if _run_logged(cmd, out, _FORMAT_TIMEOUT_S, "formatting Kafka storage") != 0:
        raise BrokerError(
            f"formatting Kafka storage in {config.parent} failed: {_one_line(_tail(out, 3))}"
        )


def _launch(java: str, libs: Path, config: Path, log4j: Path, logs_dir: Path) -> int:
    cmd = [
        java,
        *_JVM_OPTS,
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={logs_dir}",
        "-cp",
        f"{libs}/*",
        "kafka.Kafka",
        str(config),
    ]
    with (logs_dir / "broker.out").open("ab") as sink:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
            # Own session: Ctrl-C in the shell that ran `start` must not reach the broker, and it
            # outlives the CLI process.
            start_new_session=True,
        )
    # In a long-lived caller (tests, the demo) the broker is our child: reap it when it exits so
    # that it does not linger as a zombie that still answers kill(pid, 0).
    threading.Thread(target=proc.wait, name=f"kafka-reaper-{proc.pid}", daemon=True).start()
    return proc.pid


def _terminate(pid: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + max(timeout, 0.0)
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    raise BrokerError(f"broker process {pid} survived SIGKILL")


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise BrokerError(f"port must be between 1 and 65535, got {port}")


def _wait_until_up(
    pid: int, port: int, logs_dir: Path, *, timeout: float, stage: Stage = _silent
) -> None:
    bootstrap = f"localhost:{port}"
    stage(f"waiting for the broker on {bootstrap} (up to {timeout:.0f} s)")
    deadline = time.monotonic() + timeout
    while True:
        if not _pid_alive(pid):
            raise BrokerError(
                f"Kafka broker on port {port} exited during startup: {_log_excerpt(logs_dir)} "
                f"(full log in {logs_dir})"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerError(
                f"Kafka broker on port {port} did not come up within {timeout:.0f}s "
                f"(log in {logs_dir}): {_log_excerpt(logs_dir)}"
            )
        if broker_is_up(bootstrap, timeout=min(5.0, max(remaining, 0.5))):
            return
        time.sleep(min(0.5, max(deadline - time.monotonic(), 0.0)))


def start_broker(
    port: int = DEFAULT_PORT,
    data_dir: Path | None = None,
    *,
    timeout: float = 90.0,
    partitions: int = DEFAULT_PARTITIONS,
    stage: Stage = _silent,
) -> BrokerHandle:
    """Start a local single-node KRaft broker on 127.0.0.1:`port` and wait until it serves.

    Returns at once (with `already_running=True`) when our broker already serves that port.
    `timeout` bounds the wait for the broker to come up, not the one-time download.
    `stage` is told each step as it begins. Raises BrokerError with a one-line message.
    """
    _check_port(port)
    if partitions < 1:
        raise BrokerError(f"partitions must be at least 1, got {partitions}")
    bootstrap = f"localhost:{port}"
    with _file_lock(_port_state_dir(port) / "start.lock"):
        record = _live_record(port)
        if record is not None:
            pid = int(record["pid"])
            running_dir = Path(str(record.get("data_dir", "")))
            logs = running_dir / "logs"
            _wait_until_up(pid, port, logs, timeout=timeout, stage=stage)
            return BrokerHandle(port, pid, running_dir, bootstrap, already_running=True)
        if port_in_use(port):
            raise BrokerError(
                f"port {port} is already in use by another process (not a StreamGuard broker); "
                "stop it or choose another --port"
            )
        java = _find_java()
        libs = ensure_kafka_libs(stage=stage)
        storage_class = _storage_tool_class(libs)

        data = (data_dir if data_dir is not None else default_data_dir(port)).expanduser()
        data = data.resolve()
        if data.exists() and not data.is_dir():
            raise BrokerError(f"data dir {data} exists and is not a directory")
        logs_dir = data / "logs"
        node_dir = data / "kraft"
        try:
            logs_dir.mkdir(parents=True, exist_ok=True)
            node_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BrokerError(f"cannot create data dir {data}: {exc.strerror}") from None
        if port_in_use(port):  # the fetch can take minutes; someone may have taken the port
            raise BrokerError(f"port {port} was taken by another process while Kafka was fetched")
        controller_port = _controller_port(data)
        config = data / "server.properties"
        log4j = data / "log4j2.properties"
        config.write_text(
            _server_properties(node_dir, port, controller_port, partitions),
            encoding="utf-8",
        )
        log4j.write_text(_log4j_properties(logs_dir), encoding="utf-8")
        if not (node_dir / "meta.properties").is_file():
            stage(f"formatting the broker's storage in {node_dir}")
            _format_storage(
                java, libs, storage_class, config=config, log4j=log4j, logs_dir=logs_dir
            )

        stage("starting the broker's JVM")
        pid = _launch(java, libs, config, log4j, logs_dir)
        _write_record(
            port,
            {
                "pid": pid,
                "port": port,
                "data_dir": str(data),
                "config": str(config),
                "controller_port": controller_port,
                "kafka_version": kafka_version(),
                "started_at": time.time(),
            },
        )
        try:
            _wait_until_up(pid, port, logs_dir, timeout=timeout, stage=stage)
        except BaseException:
            # Never leave a half-started JVM holding the port behind a failed start.
            with contextlib.suppress(BrokerError):
                _terminate(pid, 10.0)
            _remove_record(port)
            raise
        return BrokerHandle(port, pid, data, bootstrap)


def stop_broker(port: int = DEFAULT_PORT, *, timeout: float = 30.0) -> bool:
    """Stop our broker on `port`: SIGTERM, then SIGKILL after `timeout`. False if none ran."""
    _check_port(port)
    record = _live_record(port)
    if record is None:
        return False
    try:
        _terminate(int(record["pid"]), timeout)
    except PermissionError:
        raise BrokerError(f"not allowed to stop broker process {record['pid']}") from None
    _remove_record(port)
    return True


# --------------------------------------------------------------------------------------------
# Command line


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; the contract wants one line on bad input.
        raise _UsageError(message)


def _port_arg(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {port}")
    return port


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="streamguard kafka",
        description="Run a single-node Apache Kafka broker (KRaft) on localhost.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    start = sub.add_parser("start", help="start a broker (fetches Kafka on first use)")
    start.add_argument("--port", type=_port_arg, default=DEFAULT_PORT)
    start.add_argument("--data-dir", type=Path, default=None)
    start.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    start.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the broker")
    stop = sub.add_parser("stop", help="stop the broker started on that port")
    stop.add_argument("--port", type=_port_arg, default=DEFAULT_PORT)
    stop.add_argument("--timeout", type=float, default=30.0)
    return parser


def main_kafka(argv: list[str]) -> int:
    """`streamguard kafka start|stop`; `argv` is what follows `kafka` on the command line."""
    if argv[:1] == ["kafka"]:
        argv = argv[1:]
    try:
        args = _build_parser().parse_args(argv)
    except _UsageError as exc:
        print(error_line("kafka", exc), file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    try:
        if args.command == "start":
            started = time.monotonic()
            # On a terminal, one line says which step runs (the first run fetches Kafka for
            # half a minute or more); elsewhere nothing, so logs hold the result only.
            with StatusLine(sys.stderr, "streamguard kafka") as status:
                handle = start_broker(
                    args.port,
                    args.data_dir,
                    timeout=args.timeout,
                    partitions=args.partitions,
                    stage=status,
                )
            if handle.already_running:
                print(
                    f"Kafka broker already running on {handle.bootstrap} "
                    f"(pid {handle.pid}, data {handle.data_dir})"
                )
            else:
                print(
                    f"Kafka {kafka_version()} broker up on {handle.bootstrap} "
                    f"(pid {handle.pid}, data {handle.data_dir}, "
                    f"{time.monotonic() - started:.1f}s)"
                )
            return 0
        if stop_broker(args.port, timeout=args.timeout):
            print(f"Kafka broker on port {args.port} stopped")
        else:
            print(f"no StreamGuard Kafka broker running on port {args.port}")
        return 0
    except BrokerError as exc:
        print(error_line("kafka", exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("streamguard kafka: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main_kafka(sys.argv[1:]))
