"""Engine and `evaluate` throughput against a bare orjson read-and-write loop, in one run.

Run: python benchmarks/bench_engine.py [--events 100000] [--agencies 2000]
Prints decisions per second for (1) the bare loop, (2) the engine on decoded events, (3) the
evaluate pipeline (decode through the front door, decide, write), and each as a ratio of the
bare loop, so a noisy machine moves all figures together.

    python benchmarks/bench_engine.py --baseline-src /path/to/other/checkout/src

compares the engine of this tree with another tree's (e.g. `git worktree add /tmp/sg-base
<commit>`) on the same traffic: the registry and the owners' settings (as this tree's setup
changes leave them) and the searches and reads are written once, and each tree decides them
in child interpreters run alternately, `decide_search` and `decide_read` on the parsed events
with a cold verdict cache per run, beside the bare orjson loop. Prints each tree's best
decisions/s, its ratio of the bare loop of the same child, and this tree's against the other.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
CHILD = Path(__file__).resolve().parent / "bench_engine_child.py"


def best_of(runs: int, fn: Callable[[], int]) -> float:
    """Best wall time of `runs` runs: the least disturbed by the rest of the machine."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def write_traffic(path: Path, events: int, agency_count: int) -> None:
    """The registry, the settings this tree's setup changes leave, and the traffic, as JSON."""
    work = build(events, agency_count, changes_at=NOW - 3600)
    signing = keys(work.agencies)
    state = PolicyState.create(load_statutes(), work.agencies)
    memory = ReplayLedger()
    for line in (orjson.dumps(e) for e in work.setup):
        change = decode(line, state.version)
        assert isinstance(change, Event)
        state, _ = decide_event(change, state, NOW, signing, memory=memory)
    settings = {
        owner: {
            "national_lookup": s.national_lookup,
            "statewide_lookup": s.statewide_lookup,
            "federal_sharing": s.federal_sharing,
            "share_with": sorted(s.share_with),
            "declaration_on_file": sorted(s.declaration_on_file),
            "retention_days": s.retention_days,
            "require_case_number": s.require_case_number,
        }
        for owner, s in state.settings.items()
    }
    agencies = [[a.agency_id, a.name, a.state, a.kind] for a in work.agencies]
    lines = [orjson.dumps(e).decode() for e in work.events]
    path.write_bytes(orjson.dumps({"agencies": agencies, "settings": settings, "lines": lines}))


def compare(args: argparse.Namespace) -> None:
    here = str(Path(__file__).resolve().parent.parent / "src")
    trees = {"this tree": here, "baseline": str(Path(args.baseline_src).resolve())}
    if not (Path(trees["baseline"]) / "streamguard" / "__init__.py").is_file():
        # Without this the child would import the editable install instead, and a "baseline"
        # would silently be this tree measured against itself.
        raise SystemExit(
            f"bench_engine: error: {args.baseline_src} holds no streamguard package; "
            "give the other tree's src/"
        )
    best: dict[str, dict[str, float]] = {name: {"bare": 0.0, "engine": 0.0} for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traffic.json"
        write_traffic(path, args.events, args.agencies)
        for _ in range(args.runs):
            for name, src in trees.items():
                env = {**os.environ, "PYTHONPATH": src}
                out = subprocess.run(
                    [sys.executable, str(CHILD), str(path)],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
                assert figures["streamguard"].startswith(src), figures["streamguard"]
                for what in ("bare", "engine"):
                    best[name][what] = max(best[name][what], figures[what])
                ratio = figures["engine"] / figures["bare"]
                best[name]["ratio"] = max(best[name].get("ratio", 0.0), ratio)
                print(
                    f"  run: {name:<10} engine {figures['engine']:>10,.0f} decisions/s, "
                    f"bare {figures['bare']:>9,.0f} lines/s, ratio {ratio:.4f}",
                    flush=True,
                )
    print(
        f"{args.events} searches/reads, {args.agencies} agencies; best of {args.runs} runs "
        "per tree, alternating, each in a child interpreter"
    )
    for name, src in trees.items():
        figures = best[name]
        print(
            f"{name:<10}: best engine {figures['engine']:>10,.0f} decisions/s, best ratio "
            f"{figures['ratio']:.4f} of its own bare loop (best bare {figures['bare']:,.0f} "
            f"lines/s)  [{src}]"
        )
    this, base = best["this tree"], best["baseline"]
    print(
        f"this tree / baseline: best engine {this['engine'] / base['engine']:.2f}x, "
        f"best ratio of the same child's bare loop {this['ratio'] / base['ratio']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--agencies", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-src", help="another tree's src/ to compare the engine with")
    args = parser.parse_args()
    if args.baseline_src:
        compare(args)
        return

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
