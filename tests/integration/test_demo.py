"""`streamguard demo` end to end on the test broker: the command a new user runs first."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from streamguard.local.broker import broker_is_up
from streamguard.local.testing import free_port

EVENTS = 300
TIMEOUT = 240.0


def _demo(
    *args: str | int | Path, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`streamguard demo` with `args`, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "streamguard", "demo", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_replays_the_scenario_and_leaves_the_test_broker_running(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Exit 0; every outcome decided; the flip rejected; the chains verified; worker stopped;
    the broker it found on --port still up afterwards; no plate on the terminal."""
    port = kafka_bootstrap.rsplit(":", 1)[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")}
    data_dir = tmp_path / "demo"
    proc = _demo(
        *("--port", port, "--web-port", free_port(), "--events", EVENTS),
        *("--data-dir", data_dir, "--timeout", 120),
        timeout=TIMEOUT,
        env=env,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]

    assert f"using the broker already running on localhost:{port} (left running)" in out
    assert broker_is_up(kafka_bootstrap, timeout=10.0)
    search = re.search(r"^  search_request +\d+ +(.*)$", out, re.MULTILINE)
    read = re.search(r"^  plate_read +\d+ +(.*)$", out, re.MULTILINE)
    change = re.search(r"^  policy_change +\d+ +(.*)$", out, re.MULTILINE)
    assert search and read and change, out
    for outcome in ("approved", "partial", "denied"):
        assert re.search(rf"\b{outcome} +[1-9]", search.group(1)), search.group(0)
    for outcome in ("shared", "partial", "denied"):
        assert re.search(rf"\b{outcome} +[1-9]", read.group(1)), read.group(0)
    # 53 signed settings; rejected: the flip, the forged, the forbidden change and the replay
    assert re.search(r"applied +53 +rejected +4", change.group(1)), change.group(0)
    agency = re.search(r"^  agency +\d+ +(.*)$", out, re.MULTILINE)
    assert agency and re.search(r"rejected +1 +upserted +39", agency.group(1)), out
    for code in (
        "OUT_OF_STATE_RECIPIENT",
        "FEDERAL_RECIPIENT",
        "PROHIBITED_PURPOSE_IMMIGRATION",
        "RETENTION_EXCEEDED",
        "MALFORMED_EVENT",
        "SCHEMA_INVALID",
    ):
        assert re.search(rf"^  {code} +[1-9]", out, re.MULTILINE), code
    assert re.search(r"^  policy_rejected +4 ", out, re.MULTILINE)
    assert re.search(r"^  policy_widened +[1-9]", out, re.MULTILINE)
    assert re.search(r"^  prohibited_purpose +[1-9]", out, re.MULTILINE)

    assert "REJECTED (UNSIGNED_CHANGE, STATUTE_FORBIDS_SETTING), never took effect" in out
    assert "Replayed signed change:       REJECTED (REPLAYED_CHANGE), never took effect" in out
    assert "Registry relabel (Houston):   REJECTED (KEY_NOT_AUTHORIZED), never took effect" in out
    assert "; 0 reached California data" in out
    total = EVENTS + 39 + 53  # stream (with both acts), agency records, signed settings
    assert f"same outcome for {total} of {total} inputs" in out
    assert re.search(
        rf"^Audit chains: +verified \(\d+ chains, {total} records\)", out, re.MULTILINE
    ), out
    assert "/metrics (streamguard_events_total" in out
    assert re.search(r"worker: stopped \(exit code 0\)", out)

    # Plates are only in the inputs the demo sent; none was printed.
    assert not re.search(r"\b[1-9][A-Z]{3}[0-9]{3}\b", out + proc.stderr)
    assert (data_dir / "worker.log").is_file()  # a given --data-dir is kept


def test_demo_reports_a_taken_web_port_in_one_line(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A port someone else holds: exit 1, one error line, nothing started and left behind."""
    port = kafka_bootstrap.rsplit(":", 1)[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        proc = _demo(
            *("--port", port, "--web-port", taken, "--events", 60),
            *("--data-dir", tmp_path / "demo"),
            timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"streamguard demo: error: web port {taken} is already "
        "in use (another worker?); choose --web-port"
    ]
    assert "worker: started" not in proc.stdout
    assert broker_is_up(kafka_bootstrap, timeout=10.0)
