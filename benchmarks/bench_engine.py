"""Engine and `evaluate` throughput against a bare orjson read-and-write loop, in one run.

Run: python benchmarks/bench_engine.py [--events 100000] [--agencies 2000]
Prints decisions per second for (1) the bare loop, (2) the engine on decoded events, (3) the
evaluate pipeline (decode through the front door, decide, write), and each as a ratio of the
bare loop, so a noisy machine moves all figures together.
"""

from __future__ import annotations

import argparse
import gc
import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import agencies_csv, build, keys

from streamguard.core.engine import decide_event
from streamguard.core.models import Event
from streamguard.core.policy import PolicyState
from streamguard.core.replay import ReplayLedger
from streamguard.core.statutes import load_statutes
from streamguard.stream.evaluate import evaluate_lines
from streamguard.stream.intake import decode

NOW = 1_740_830_400.0 + 2_000.0


def best_of(runs: int, fn: Callable[[], int]) -> float:
    """Best wall time of `runs` runs: the least disturbed by the rest of the machine."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--agencies", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    work = build(args.events, args.agencies, changes_at=NOW - 3600)
    signing = keys(work.agencies)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        with path.open("wb") as handle:
            for event in (*work.setup, *work.events):
                handle.write(orjson.dumps(event) + b"\n")
        (Path(tmp) / "agencies.csv").write_text("".join(agencies_csv(work.agencies)))
        data = path.read_bytes()
    lines = data.splitlines()
    total = len(lines)

    def bare() -> int:
        out = io.BytesIO()
        for line in lines:
            out.write(orjson.dumps(orjson.loads(line)) + b"\n")
        return out.tell()

    base_state = PolicyState.create(load_statutes(), work.agencies)
    decoded = [decode(line, base_state.version) for line in lines]
    events = [e for e in decoded if isinstance(e, Event)]
    assert len(events) == total, "the workload holds only valid events"
    ready = base_state
    for change in events[: len(work.setup)]:
        ready, _ = decide_event(change, ready, NOW, signing, memory=ReplayLedger())
    parsed = events[len(work.setup) :]
    # The workload itself is a few million long-lived objects; without freezing them every
    # garbage collection rescans them, and that cost would be charged to whichever loop runs.
    gc.freeze()

    def engine() -> int:
        state = ready
        # A fresh snapshot each run so its verdict cache starts cold, as in a real run.
        state = PolicyState.create(state.statutes, state.agencies.values(), state.settings)
        memory = ReplayLedger()
        for event in parsed:
            state, _ = decide_event(event, state, NOW, signing, memory=memory)
        return 0

    def evaluate() -> int:
        out = io.BytesIO()
        for chunk in evaluate_lines(lines, base_state, signing, NOW):
            out.write(chunk)
        return out.tell()

    t_bare = best_of(args.runs, bare)
    t_engine = best_of(args.runs, engine)
    t_eval = best_of(args.runs, evaluate)
    n_traffic = len(parsed)
    setup = len(work.setup)
    print(f"workload: {total} lines ({setup} signed changes, {n_traffic} searches/reads), ", end="")
    print(f"{args.agencies} agencies; best of {args.runs} runs")
    print(f"bare orjson read+write loop : {total / t_bare:>10,.0f} lines/s")
    print(
        f"engine (decoded events)     : {n_traffic / t_engine:>10,.0f} decisions/s  "
        f"ratio {(n_traffic / t_engine) / (total / t_bare):.3f} of bare loop"
    )
    print(
        f"evaluate (parse+decide+write): {total / t_eval:>10,.0f} lines/s      "
        f"ratio {(total / t_eval) / (total / t_bare):.3f} of bare loop"
    )


if __name__ == "__main__":
    main()
