"""`streamguard worker` failing once faust runs: one error line last, the traceback at debug.

A broker answers (the wait passes), then faust cannot bind the web port or open its table
store. mode would log the traceback at ERROR and a "Stopping..." line per service; the command
ends with `streamguard worker: error: <cause>` instead, and exits 1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamguard.local.testing import free_port

_PREFIX = "streamguard worker: error: "


def _worker(bootstrap: str, data_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    tag = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")}
    env |= {
        "STREAMGUARD_BROKER": f"kafka://{bootstrap}",
        "STREAMGUARD_TOPIC_PREFIX": f"sg-start-{tag}.",
        "STREAMGUARD_APP_ID": f"sg-start-{tag}",
        "STREAMGUARD_PARTITIONS": "1",
        "STREAMGUARD_DATA_DIR": str(data_dir),
        "STREAMGUARD_STORE": "memory://",
        "STREAMGUARD_WEB_BIND": "127.0.0.1",
        "STREAMGUARD_WEB_PORT": str(free_port()),
        **{f"STREAMGUARD_{name.upper()}": value for name, value in settings.items()},
    }
    return subprocess.run(
        [sys.executable, "-m", "streamguard", "worker"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr[-3000:]
    assert lines and lines[-1].startswith(_PREFIX), lines[-5:]
    assert sum(line.startswith(_PREFIX) for line in lines) == 1
    return lines[-1].removeprefix(_PREFIX)


def test_a_taken_web_port_is_one_line_and_no_traceback(
    kafka_bootstrap: str, tmp_path: Path, taken_port: int
) -> None:
    result = _worker(kafka_bootstrap, tmp_path, web_port=str(taken_port))
    assert _last_line(result) == (
        f"web port {taken_port} on 127.0.0.1 is already in use (STREAMGUARD_WEB_PORT)"
    )
    assert "Traceback" not in result.stderr
    assert "Stopping..." not in result.stderr
    assert "[ERROR]" not in result.stderr


def test_at_debug_level_the_traceback_is_logged_above_the_line(
    kafka_bootstrap: str, tmp_path: Path, taken_port: int
) -> None:
    result = _worker(kafka_bootstrap, tmp_path, web_port=str(taken_port), log_level="debug")
    assert "already in use (STREAMGUARD_WEB_PORT)" in _last_line(result)
    assert "Traceback (most recent call last):" in result.stderr
    assert "[DEBUG] [^Worker]: Error: OSError(" in result.stderr
    assert "Stopping..." in result.stderr


def test_a_table_store_that_cannot_open_names_the_data_dir(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # With a salt given, nothing reads the data directory before faust's RocksDB store does.
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    data_dir = blocker / "data"
    result = _worker(
        kafka_bootstrap,
        data_dir,
        store="rocksdb://",
        plate_salt="0123456789abcdef0123",
    )
    cause = _last_line(result)
    assert cause.startswith(f"cannot use STREAMGUARD_DATA_DIR {data_dir}: "), cause
    assert "Traceback" not in result.stderr
