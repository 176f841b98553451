"""Per-event cost of the compiled (mypyc) build against the pure-Python one, in one run.

    python scripts/build_compiled.py --target build/compiled
    python benchmarks/bench_compiled.py --compiled build/compiled [--events 20000] [--runs 3]

Runs the same workload (benchmarks/workload.py) through `streamguard evaluate`'s path and
through `BatchProcessor.process` in child interpreters, alternately pure (this checkout's src/)
and compiled (the --compiled tree), and prints the best per-event CPU time of each and the
compiled/pure ratio. The same children, with --dump, write every output of the workload in one
canonical encoding: tests/functional/test_compiled_equivalence.py compares those byte for byte.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import gc
import json
import os
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from workload import Workload, build, keys  # noqa: E402

NOW = 1_740_830_400.0 + 2_000.0  # the workload's traffic starts at 1_740_830_400
PARTITIONS = 4
SALT = b"salt-0123456789abcdef"

# Inputs a front door must quarantine, never crash on. Under mypyc every annotation is checked
# at run time, so a wrong type reaching a compiled function raises TypeError where pure Python
# would have carried on: these make both builds show how each such input ends.
_WRONG_VALUES: tuple[Any, ...] = (None, 123, 1.5, True, "", "x" * 300, [], ["a", 1], {}, {"a": 1})


def hostile(work: Workload, count: int) -> list[bytes]:
    """Events of the workload with one field (top-level or nested) replaced by a wrong type."""
    out: list[bytes] = [b"", b"{", b"[]", b"null", b'"text"', b"\xff\xfe", b'{"type": 5}']
    events = work.events
    n = 0
    while len(out) < count:
        event = json.loads(json.dumps(events[n % len(events)]))
        fields = sorted(event)
        name = fields[n % len(fields)]
        wrong = _WRONG_VALUES[(n // len(fields)) % len(_WRONG_VALUES)]
        if isinstance(event[name], dict) and n % 2:
            inner = sorted(event[name])
            if inner:
                event[name][inner[n % len(inner)]] = wrong
        else:
            event[name] = wrong
        out.append(orjson.dumps(event))
        n += 1
    return out


def lines(work: Workload, bad: int) -> list[bytes]:
    """Setup changes, then traffic with the hostile inputs spread through it."""
    good = [orjson.dumps(e) for e in work.events]
    spoilt = hostile(work, bad)
    step = max(1, len(good) // max(1, len(spoilt)))
    mixed: list[bytes] = []
    for i, line in enumerate(good):
        mixed.append(line)
        if i % step == 0 and spoilt:
            mixed.append(spoilt.pop())
    mixed.extend(spoilt)
    return [orjson.dumps(e) for e in work.setup] + mixed


def _role(line: bytes) -> tuple[str, bytes | None]:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "searches", None
    if not isinstance(event, dict):
        return "searches", None
    kind = event.get("type")
    if kind == "policy_change":
        return "policy", str(event.get("agency_id")).encode()
    if kind == "plate_read":
        return "reads", str(event.get("agency_id")).encode()
    requester = event.get("requester")
    who = requester.get("agency_id") if isinstance(requester, dict) else None
    return "searches", str(who).encode()


def plain(value: Any) -> Any:
    """A JSON-able copy of any output: dataclasses by field, bytes as base64, sets sorted."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__type__": type(value).__name__, **fields}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"__bytes__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, orjson.Fragment):
        return {"__fragment__": plain(orjson.dumps(value))}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return {"__repr__": repr(value)}


class RecordingMetrics:
    """A MetricsSink that records every call in order, whatever the processor calls."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)

        def record(*args: Any, **kwargs: Any) -> None:
            def keep(v: Any) -> Any:
                if isinstance(v, Iterator):
                    return list(v)
                return v

            self.calls.append(
                [
                    name,
                    [plain(keep(a)) for a in args],
                    {k: plain(keep(v)) for k, v in kwargs.items()},
                ]
            )

        return record


def _processors(work: Workload, metrics: Any) -> tuple[Any, dict[str, Any]]:
    from streamguard.core.statutes import load_statutes
    from streamguard.settings import WorkerSettings
    from streamguard.stream.processor import BatchProcessor
    from streamguard.stream.tables import build_state

    settings = WorkerSettings(rate_limit_per_minute=0, partitions=PARTITIONS)
    state = build_state(load_statutes(), work.agencies, (), (), 0)
    signing = keys(work.agencies)
    policy = BatchProcessor(settings, state, signing, SALT, metrics, lambda: NOW)
    procs = {
        role: BatchProcessor(settings, policy.state, signing, SALT, metrics, lambda: NOW)
        for role in ("searches", "reads")
    }
    return policy, procs


def _messages(data: Iterable[bytes]) -> list[Any]:
    from streamguard.stream.types import InMessage

    out: list[Any] = []
    offsets: dict[tuple[str, int], int] = {}
    for line in data:
        role, key = _role(line)
        partition = 0 if key is None or role == "policy" else zlib.crc32(key) % PARTITIONS
        offset = offsets.get((role, partition), 0)
        offsets[role, partition] = offset + 1
        out.append(InMessage(role, role, partition, offset, key, line))
    return out


def run_processor(
    work: Workload, data: list[bytes], batch: int, sink: Callable[[Any], None] | None
) -> tuple[int, float]:
    """Setup changes in one batch on the policy agent, then the traffic per role and partition.

    Returns the traffic's message count and the CPU seconds it took (the setup left out).
    """
    recording = RecordingMetrics()
    metrics: Any = recording
    if sink is None:  # timed: the worker's own metrics, as bench_processor.py measures
        from streamguard.worker.metrics import StreamguardMetrics

        metrics = StreamguardMetrics.create()
        metrics.register_owners(a.agency_id for a in work.agencies)
    policy, procs = _processors(work, metrics)
    messages = _messages(data)
    setup = [m for m in messages if m.role == "policy"]
    traffic = [m for m in messages if m.role != "policy"]
    result = policy.process(setup, now=NOW, counters={}, heads={})
    if sink is not None:
        sink(["policy", plain(result)])
    start = time.process_time()
    counters: dict[str, int] = {}
    heads: dict[str, Any] = {}
    for i in range(0, len(traffic), batch):
        groups: dict[tuple[str, int], list[Any]] = {}
        for msg in traffic[i : i + batch]:
            groups.setdefault((msg.role, msg.partition), []).append(msg)
        for (role, _), group in groups.items():
            result = procs[role].process(group, now=NOW, counters=counters, heads=heads)
            counters.update(result.counters)
            for key in result.expired:
                counters.pop(key, None)
            # The audit chains continue across batches, as the worker's heads do.
            heads.update({chain: head for chain, (_, head) in result.heads.items()})
            for out in result.messages:
                orjson.dumps(out.value)  # what the worker's delivery does with every output
            if sink is not None:
                sink([role, plain(result)])
    spent = time.process_time() - start
    if sink is not None:
        sink(["metrics", recording.calls])
    return len(traffic), spent


def run_evaluate(work: Workload, data: list[bytes], sink: Callable[[bytes], None] | None) -> int:
    from streamguard.core.policy import PolicyState
    from streamguard.core.statutes import load_statutes
    from streamguard.stream.evaluate import evaluate_lines

    state = PolicyState.create(load_statutes(), work.agencies)
    for chunk in evaluate_lines(data, state, keys(work.agencies), NOW):
        if sink is not None:
            sink(chunk)
    return len(data)


def dump(path: Path, events: int, agencies: int, bad: int, batch: int) -> None:
    work = build(events, agencies, seed=11, changes_at=NOW - 3600)
    data = lines(work, bad)
    with path.open("wb") as handle:
        handle.write(b"# evaluate\n")
        run_evaluate(work, data, handle.write)
        handle.write(b"# processor\n")
        run_processor(
            work,
            data,
            batch,
            lambda item: handle.write(orjson.dumps(item, option=orjson.OPT_SORT_KEYS) + b"\n"),
        )


def timed(events: int, agencies: int, batch: int) -> dict[str, float]:
    """CPU seconds per event: `evaluate` over the whole file (setup changes included, as the
    command runs), the processor over the traffic after its setup batch."""
    work = build(events, agencies, seed=11, changes_at=NOW - 3600)
    data = lines(work, 0)
    gc.freeze()
    out: dict[str, float] = {}
    start = time.process_time()
    n = run_evaluate(work, data, None)
    out["evaluate"] = (time.process_time() - start) / n
    n, spent = run_processor(work, data, batch, None)
    out["processor"] = spent / n
    return out


def child_env(path: Path) -> dict[str, str]:
    """An environment importing streamguard from `path` first, with a fixed hash seed."""
    env = {**os.environ, "PYTHONPATH": f"{path}{os.pathsep}{HERE}", "PYTHONHASHSEED": "0"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def child(path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        env=child_env(path),
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def compare(compiled: Path, events: int, agencies: int, runs: int, batch: int) -> None:
    pure = ROOT / "src"
    best: dict[str, dict[str, float]] = {"pure": {}, "compiled": {}}
    labels: dict[str, str] = {}
    size = ["--events", str(events), "--agencies", str(agencies), "--batch", str(batch)]
    for _ in range(runs):
        for name, path in (("pure", pure), ("compiled", compiled)):
            report = json.loads(child(path, "--child-time", *size))
            labels[name] = report.pop("build")
            for key, value in report.items():
                best[name][key] = min(best[name].get(key, value), value)
    print(f"workload: {events} events, {agencies} agencies; best of {runs} runs, CPU time")
    for name in ("pure", "compiled"):
        print(f"  {name:8} = {labels[name]}")
    for key in ("evaluate", "processor"):
        p, c = best["pure"][key] * 1e6, best["compiled"][key] * 1e6
        print(f"{key:10}: pure {p:7.1f} us/event, compiled {c:7.1f} us/event, ratio {c / p:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compiled", type=Path, help="the tree of scripts/build_compiled.py")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--agencies", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bad", type=int, default=0, help="hostile inputs (with --dump)")
    parser.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-time", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dump is not None:
        dump(args.dump, args.events, args.agencies, args.bad, args.batch)
    elif args.child_time:
        from streamguard.compiled import build_label

        report: dict[str, Any] = timed(args.events, args.agencies, args.batch)
        print(json.dumps({"build": build_label(), **report}))
    elif args.compiled is None:
        parser.error("--compiled DIR is required (build it with scripts/build_compiled.py)")
    else:
        compare(args.compiled.resolve(), args.events, args.agencies, args.runs, args.batch)


if __name__ == "__main__":
    main()
