"""The chaos soak (issue #13): two workers, a steady producer, a SIGKILL or SIGTERM of a random
worker every 20-40 s and one broker restart; then every input decided, no search counted twice,
every audit chain verified and the policy state equal to a single-worker replay.

The runner is `streamguard.local.soak` (its docstring lists the checks). The soak starts a broker
of its own on a port in 29690-29699, because it restarts it; the session broker is never
touched. In CI it runs DEFAULT_SECONDS of chaos (about 2.5 minutes in all, with the broker's
start, the drain and the checks); `STREAMGUARD_SOAK_SECONDS=600` runs a longer one. Its figures
are printed whether it passes or not.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamguard.exceptions import BrokerError
from streamguard.local.soak import SoakOptions, run_soak
from tests.helpers import unavailable

SECONDS_ENV = "STREAMGUARD_SOAK_SECONDS"
SEED_ENV = "STREAMGUARD_SOAK_SEED"  # the seed a failed run printed, to run it again
DEFAULT_SECONDS = 90.0


def _number(name: str) -> float | None:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else None
    except ValueError:
        pytest.fail(f"{name}={raw!r} is not a number", pytrace=False)


def test_chaos_soak_decides_everything_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        seconds, seed = _number(SECONDS_ENV) or DEFAULT_SECONDS, _number(SEED_ENV)
        options = SoakOptions(seconds=seconds, seed=None if seed is None else int(seed))
        figures, failures = run_soak(options, tmp_path)
    except BrokerError as exc:
        unavailable("a Kafka broker of the soak's own", str(exc))
    report = "\n".join(figures.lines())
    with capsys.disabled():
        print(f"\n{report}")
    assert failures == [], "\n\n".join([report, *failures])
    # The soak did what it says: faults of both kinds were made, the broker restarted once.
    kinds = [fault.kind for fault in figures.faults]
    assert kinds.count("broker restart") == 1, report
    assert "SIGKILL" in kinds, report  # a short run's one kill is a SIGKILL
    assert figures.decided == sum(figures.produced.values()), report
