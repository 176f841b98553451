"""`streamguard worker` start failures: each ends with one `streamguard worker: error:` line.

The failures that need faust running against a real broker (a web port taken, a store that
cannot open) are in tests/integration/test_worker_start.py; these need no broker.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError

from streamguard.exceptions import error_line
from streamguard.local.testing import free_port
from streamguard.settings import WorkerSettings
from streamguard.worker.main import main_worker
from streamguard.worker.startup import FatalRecordFilter, describe_failure

_PREFIX = "streamguard worker: error: "


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Only this test's STREAMGUARD_* settings; the worker's data in tmp_path."""
    for name in [n for n in os.environ if n.startswith("STREAMGUARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STREAMGUARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STREAMGUARD_STORE", "memory://")
    monkeypatch.setenv("STREAMGUARD_WEB_PORT", str(free_port()))
    return monkeypatch


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if " error: " in line]
    assert errors == [lines[-1]], lines
    assert lines[-1].startswith(_PREFIX), lines
    assert "Traceback" not in err
    return lines[-1].removeprefix(_PREFIX)


def test_a_closed_broker_port_fails_after_the_wait_naming_both_settings(
    environ: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environ.setenv("STREAMGUARD_BROKER", f"kafka://localhost:{free_port()}")
    environ.setenv("STREAMGUARD_BROKER_WAIT_SECONDS", "2")
    started = time.monotonic()
    assert main_worker([]) == 2
    elapsed = time.monotonic() - started
    cause = _one_error_line(capsys.readouterr().err)
    # Retried for the whole wait (a broker still starting refuses connections), then given up.
    assert 1.5 <= elapsed < 10, elapsed
    assert (
        "STREAMGUARD_BROKER)" in cause and "within 2 s (STREAMGUARD_BROKER_WAIT_SECONDS)" in cause
    )


def test_a_broker_that_never_answers_is_bounded_by_the_wait(
    environ: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], silent_listener: int
) -> None:
    environ.setenv("STREAMGUARD_BROKER", f"kafka://127.0.0.1:{silent_listener}")
    environ.setenv("STREAMGUARD_BROKER_WAIT_SECONDS", "2")
    started = time.monotonic()
    assert main_worker([]) == 2
    assert time.monotonic() - started < 10
    cause = _one_error_line(capsys.readouterr().err)
    assert cause.endswith("(STREAMGUARD_BROKER_WAIT_SECONDS): no answer within 2 s"), cause


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("STREAMGUARD_PARTITIONS", "eight", "STREAMGUARD_PARTITIONS must be int, got 'eight'"),
        (
            "STREAMGUARD_BROKER_WAIT_SECONDS",
            "0",
            "STREAMGUARD_BROKER_WAIT_SECONDS must be at least",
        ),
        ("STREAMGUARD_WEB_PORT", "70000", "STREAMGUARD_WEB_PORT must be a TCP port"),
    ],
)
def test_a_bad_setting_is_one_line_before_any_connection(
    environ: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    setting: str,
    value: str,
    says: str,
) -> None:
    environ.setenv("STREAMGUARD_BROKER", "kafka://localhost:1")
    environ.setenv(setting, value)
    assert main_worker([]) == 2
    assert says in _one_error_line(capsys.readouterr().err)


def _bad_keys(base: Path) -> Path:
    path = base / "KEYS.json"
    path.write_text('{"version": "1.1", "keys": [', encoding="utf-8")
    return path


def _bad_agencies(base: Path) -> Path:
    path = base / "agencies.csv"
    path.write_text("agency_id,name\nca-x,X\n", encoding="utf-8")
    return path


def _data_dir_is_a_file(base: Path) -> Path:
    path = base / "not-a-dir"
    path.write_text("", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("setting", "make", "says"),
    [
        pytest.param("STREAMGUARD_KEYS", _bad_keys, "is not valid JSON", id="keys-not-json"),
        pytest.param("STREAMGUARD_KEYS", lambda base: base, "Is a directory", id="keys-dir"),
        pytest.param(
            "STREAMGUARD_AGENCIES", _bad_agencies, "lacks column(s) state, kind", id="agencies"
        ),
        pytest.param(
            "STREAMGUARD_DATA_DIR", _data_dir_is_a_file, "cannot read or create", id="data-dir"
        ),
    ],
)
def test_a_bad_file_is_one_line_naming_it(
    environ: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    setting: str,
    make: object,
    says: str,
) -> None:
    assert callable(make)
    path = make(tmp_path)
    environ.setenv("STREAMGUARD_BROKER", "kafka://localhost:1")
    environ.setenv(setting, str(path))
    assert main_worker([]) == 2
    cause = _one_error_line(capsys.readouterr().err)
    assert says in cause and str(path) in cause


# --- the filter on faust's log and the one-line cause ---------------------------------------


def _record(
    level: int, msg: str, *args: object, exc: BaseException | None = None
) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("faust.worker", level, __file__, 1, msg, args, exc_info)


def _bind_error() -> OSError:
    return OSError(errno.EADDRINUSE, "error while attempting to bind: address already in use")


def test_the_fatal_report_and_the_shutdown_after_it_are_held_back() -> None:
    fatal = FatalRecordFilter(verbose=False)
    assert fatal.filter(_record(logging.INFO, "[^Worker]: Starting... "))
    error = _bind_error()
    assert not fatal.filter(_record(logging.ERROR, "[^Worker]: Error: %r", error, exc=error))
    assert fatal.failure is error
    assert not fatal.filter(_record(logging.INFO, "[^--Web]: Stopping... "))
    # A warning or an error while stopping is news, still shown.
    assert fatal.filter(_record(logging.WARNING, "[^--Producer]: flush timed out"))
    assert fatal.filter(_record(logging.ERROR, "[^--Consumer]: commit failed"))


def test_at_debug_the_traceback_and_the_shutdown_pass_demoted() -> None:
    fatal = FatalRecordFilter(verbose=True)
    error = _bind_error()
    record = _record(logging.ERROR, "[^Worker]: Error: %r", error, exc=error)
    assert fatal.filter(record)
    assert (record.levelno, record.levelname) == (logging.DEBUG, "DEBUG")
    assert record.exc_info is not None and fatal.failure is error
    assert fatal.filter(_record(logging.INFO, "[^--Web]: Stopping... "))


def test_a_crash_reported_without_exc_info_is_still_the_failure() -> None:
    fatal = FatalRecordFilter(verbose=False)
    crash = RuntimeError("table store closed")
    assert not fatal.filter(_record(logging.ERROR, "[^Worker]: Crashed reason=%r", crash))
    assert fatal.failure is crash
    # Only the first report is the cause; mode repeats it when it re-raises.
    assert not fatal.filter(_record(logging.ERROR, "[^Worker]: Error: %r", ValueError("later")))
    assert fatal.failure is crash


def test_ordinary_error_records_before_a_failure_pass() -> None:
    fatal = FatalRecordFilter(verbose=False)
    assert fatal.filter(_record(logging.ERROR, 'Unable connect to "localhost:1"'))
    assert fatal.filter(_record(logging.DEBUG, "fetch"))
    assert fatal.failure is None


def test_each_cause_names_the_setting_to_fix(tmp_path: Path) -> None:
    settings = WorkerSettings(broker="kafka://k1:9092", web_port=6066, data_dir=tmp_path)
    assert describe_failure(_bind_error(), settings) == (
        "web port 6066 on 0.0.0.0 is already in use (STREAMGUARD_WEB_PORT)"
    )
    refused = KafkaConnectionError("Unable to bootstrap from [('k1', 9092)]")
    assert describe_failure(refused, settings) == (
        "cannot reach the Kafka broker kafka://k1:9092 (STREAMGUARD_BROKER): "
        "KafkaConnectionError: Unable to bootstrap from [('k1', 9092)]"
    )
    store = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "v1" / "tables"))
    assert describe_failure(store, settings) == (
        f"cannot use STREAMGUARD_DATA_DIR {tmp_path}: Permission denied: {tmp_path}/v1/tables"
    )
    elsewhere = FileNotFoundError(errno.ENOENT, "No such file or directory", "/etc/x")
    assert describe_failure(elsewhere, settings) == "No such file or directory: /etc/x"
    assert describe_failure(ValueError("bad\nsecond line"), settings) == "ValueError: bad"
    assert describe_failure(RuntimeError(), settings) == "RuntimeError"


def test_every_command_names_itself_in_its_error_line() -> None:
    assert error_line("audit", "no such file") == "streamguard audit: error: no such file"
    assert error_line("worker", "") == _PREFIX


def test_the_worker_module_runs_as_a_script_with_the_same_line(
    environ: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import subprocess

    environ.setenv("STREAMGUARD_PARTITIONS", "0")
    result = subprocess.run(
        [sys.executable, "-m", "streamguard", "worker"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert _one_error_line(result.stderr) == "STREAMGUARD_PARTITIONS must be at least 1, got 0"
