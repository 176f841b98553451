"""A worker as a child process (`python -m streamguard.worker`): its environment and its
lifecycle. Used by the demo, the benchmarks and the integration tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ("WorkerProcess", "app_id", "worker_env")


def app_id(prefix: str) -> str:
    """The app id `worker_env` gives the workers of `prefix`, which is also their consumer group."""
    return f"{prefix.rstrip('.')}-worker"


def worker_env(
    bootstrap: str,
    prefix: str,
    data_dir: Path,
    *,
    agencies: Path | None = None,
    keys: Path | None = None,
    web_port: int = 6100,
    partitions: int = 2,
    **extra: str,
) -> dict[str, str]:
    """Environment for `streamguard worker` on `bootstrap` with its own prefix and app id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")}
    env |= {
        "STREAMGUARD_BROKER": f"kafka://{bootstrap}",
        "STREAMGUARD_TOPIC_PREFIX": prefix,
        "STREAMGUARD_APP_ID": app_id(prefix),
        "STREAMGUARD_DATA_DIR": str(data_dir),
        "STREAMGUARD_WEB_PORT": str(web_port),
        "STREAMGUARD_WEB_BIND": "127.0.0.1",
        "STREAMGUARD_PARTITIONS": str(partitions),
        "STREAMGUARD_PLATE_SALT": "test-salt-0123456789abcdef",
        "STREAMGUARD_LOG_LEVEL": "warning",
    }
    if agencies is not None:
        env["STREAMGUARD_AGENCIES"] = str(agencies)
    if keys is not None:
        env["STREAMGUARD_KEYS"] = str(keys)
    env |= {f"STREAMGUARD_{k.upper()}": v for k, v in extra.items()}
    return env


@dataclass
class WorkerProcess:
    """`python -m streamguard.worker` as a child process, stopped gracefully (SIGTERM)."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamguard.worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait: a graceful stop commits offsets and flushes table changelogs."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self.proc = None
        return code

    def wait(self, timeout: float = 60.0) -> int:
        """Exit code of a worker that stops by itself (a start-up error), within `timeout`."""
        if self.proc is None:
            raise RuntimeError("the worker was not started")
        return self.proc.wait(timeout)

    def kill(self, timeout: float = 30.0) -> int:
        """SIGKILL, as a crash would: no flush, no commit, no changelog catch-up."""
        if self.proc is None:
            raise RuntimeError("the worker was not started")
        self.proc.kill()
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")
