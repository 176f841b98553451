"""Where one worker's time goes under a backlog: py-spy samples of a real worker. Not a test.

    streamguard kafka start --port 49092
    python benchmarks/profile_worker.py --broker localhost:49092 [--n 30000] [--rate 250]

Same traffic as `bench_scale.py` (1,000 agencies, their signed settings, then N events): the
worker is started and settled, the settings applied, then `py-spy record` attaches to it for the
backlog only. Prints the decided rate, then the functions with the most samples, by own time
(leaf frame) and by total time (anywhere on the stack, counted once per sample), and the raw
folded stacks are kept in --out for a flame graph. Needs `pip install py-spy`.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_scale
from bench_scale import Run, items_of, load
from workload import build

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('func')} ({path})"


def summarize(folded: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in folded.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    if not samples:
        print("no samples")
        return
    print(f"\n{samples} samples; own time (leaf frame):")
    for name, count in own.most_common(top):
        print(f"  {100 * count / samples:5.1f}%  {name}")
    print("\ntotal time (on the stack):")
    for name, count in total.most_common(top):
        print(f"  {100 * count / samples:5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", default="localhost:49092")
    parser.add_argument("--n", type=int, default=30_000)
    parser.add_argument("--agencies", type=int, default=1_000)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--out", type=Path, default=Path("worker-profile.txt"))
    parser.add_argument("--summarize", type=Path, help="only summarize an earlier --out file")
    parser.add_argument(
        "--day",
        action="store_true",
        help="bench_scale's memory traffic instead: seed 13, event times spread "
        "over 24 h (use with --agencies 5000 --n 50000)",
    )
    parser.add_argument("--web-port", type=int, default=6260, help="the worker's web port")
    parser.add_argument("--no-spy", action="store_true", help="only measure the rate")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a worker setting, e.g. batch_size=4000 (STREAMGUARD_BATCH_SIZE)",
    )
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize, args.top)
        return
    bench_scale.WEB_PORTS[:] = [args.web_port, args.web_port + 1]
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    work = build(args.n, args.agencies, seed=13 if args.day else 11)
    setup, traffic = items_of(work, day=args.day)
    print(f"profile_worker: {args.n:,} events, {args.agencies:,} agencies; {load()}")
    with tempfile.TemporaryDirectory(prefix="profile-worker-") as tmp:
        workdir = Path(tmp)
        agencies, keys = bench_scale.write_inputs(workdir, work)
        extra = dict(item.split("=", 1) for item in args.set)
        src = extra.pop("src", None)  # experiments: PYTHONPATH of the worker
        run = Run(args.broker, workdir, agencies, keys, env=extra, src=Path(src) if src else None)
        try:
            run.start(1)
            run.apply_settings(setup)
            pid = run.workers[0][1].proc.pid  # type: ignore[union-attr]
            if args.no_spy:
                rate = run.rate(traffic)
                print(
                    f"decided {rate:,.0f} events/s, {run.cpu_per_1k:.2f} CPU-s per 1,000 "
                    f"events, {extra}; {load()}"
                )
                return
            recorder = subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(args.rate),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(args.out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # attached before the first event arrives
            rate = run.rate(traffic)
            recorder.send_signal(signal.SIGINT)
            recorder.wait(60)
            print(
                f"decided {rate:,.0f} events/s, {run.cpu_per_1k:.2f} CPU-s per 1,000 events "
                f"(under py-spy); {load()}"
            )
        finally:
            run.stop()
    summarize(args.out, args.top)


if __name__ == "__main__":
    main()
