"""What the transparency log costs per audit record, and the worker's throughput with and without.

Not a test. Two parts, both same-run comparisons:

1. In process, per record: building and serializing an audit record (what the worker does
   anyway), and on top of it what checkpoints add: reading seq and hash back
   (`leaf_fields`), the RFC 6962 leaf hash and frontier append, and signing every N records
   (Ed25519 plus the consistency proof). Prints microseconds per record and the ratio.
2. With a broker (skipped with --no-worker): the same workload of N mixed searches and reads
   decided by `streamguard worker` without a checkpoint key and with one, alternating
   A B A B on fresh topic prefixes; the rate of each run is timed from the broker timestamps
   of its first and last audit record, as `bench_worker.py` does. Prints each run, the median
   ratio with/without, and whether the cost stays within the 5 % the issue allows.

    python benchmarks/bench_checkpoints.py --broker localhost:19092 --n 30000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_worker import agencies_csv, audit_span, decided, events, produce_all

from streamguard import serde
from streamguard.local.testing import WorkerProcess, contract_topics, create_topics, worker_env
from streamguard.trail.chain import build_record, genesis
from streamguard.trail.checkpoint import generate_key
from streamguard.trail.checkpointer import Checkpointer, leaf_fields

WEB_PORT = 6551


def _fields(i: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=i)),
        "kind": "search",
        "outcome": "denied",
        "codes": ["OUT_OF_STATE_RECIPIENT"],
        "policy_version": "2025.1/7",
        "decided_at": "2026-01-01T00:00:00.000000Z",
        "decision_id": str(uuid.UUID(int=i + 1)),
        "requester": "tx-houston-pd",
        "user_id": "u-991",
        "reason": "burglary 459 PC case 25-000123",
        "case_number": "25-000123",
        "scope": "national",
        "query_from": None,
        "query_to": None,
        "allowed": [],
        "denied": ["ca-oxnard-pd", "ca-ventura-pd"],
        "plate_sha256": "ab" * 32,
    }


def in_process(n: int, every: int) -> dict[str, float]:
    """Microseconds per record: the record itself, and what checkpoints add."""
    fields = [_fields(i) for i in range(n)]
    chain = "searches-0"

    head = genesis(chain)
    t0 = time.perf_counter()
    values = []
    for f in fields:
        record, head = build_record(head, f)
        values.append(serde.dumps(record))
    build = time.perf_counter() - t0

    signer = Checkpointer(generate_key("bench.example/audit"), every, 3600.0)
    signer.resume(chain, None, [], now=0.0)
    t0 = time.perf_counter()
    signed = 0
    for start in range(0, n, 500):  # the worker hands over one batch at a time
        signer.extend_hashes(chain, [leaf_fields(v) for v in values[start : start + 500]])
        signed += len(signer.due(now=0.0))
    tlog = time.perf_counter() - t0
    return {
        "records": n,
        "checkpoints_signed": signed,
        "record_us": 1e6 * build / n,
        "tlog_us": 1e6 * tlog / n,
        "tlog_over_record": tlog / build,
    }


def worker_rate(
    bootstrap: str, prefix: str, n: int, workdir: Path, agencies: Path, **settings: str
) -> float:
    env = worker_env(
        bootstrap,
        prefix,
        workdir / f"data-{prefix}",
        agencies=agencies,
        web_port=WEB_PORT,
        partitions=2,
        rate_limit_per_minute="0",
        batch_window_ms="50",
        **settings,
    )
    worker = WorkerProcess(env, workdir / f"worker-{prefix}.log")
    worker.start()
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if decided(WEB_PORT) >= n:
                records, seconds = asyncio.run(audit_span(bootstrap, prefix + "audit"))
                return records / seconds
            if not worker.alive():
                raise RuntimeError("worker died:\n" + worker.log_text()[-2000:])
            time.sleep(1.0)
        raise RuntimeError(f"worker decided only {decided(WEB_PORT)} of {n} in time")
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", default="localhost:19092")
    parser.add_argument("--n", type=int, default=30_000)
    parser.add_argument("--every", type=int, default=1000, help="CHECKPOINT_EVERY_RECORDS")
    parser.add_argument("--pairs", type=int, default=2, help="A/B pairs of worker runs")
    parser.add_argument("--no-worker", action="store_true", help="only the in-process part")
    args = parser.parse_args()

    micro = in_process(100_000, args.every)
    print(
        f"in process: building an audit record {micro['record_us']:.2f} us, checkpoints add "
        f"{micro['tlog_us']:.2f} us per record ({micro['checkpoints_signed']:.0f} signed "
        f"checkpoints in {micro['records']:.0f} records)"
    )
    result: dict[str, Any] = {"in_process": {k: round(v, 3) for k, v in micro.items()}}
    if not args.no_worker:
        rng = random.Random(7)
        csv, ids = agencies_csv(300, rng)
        items = events(args.n, ids, rng)
        runs: list[tuple[str, float]] = []
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            agencies = workdir / "agencies.csv"
            agencies.write_text(csv, encoding="utf-8")
            key = generate_key("bench.example/audit")
            key_file = workdir / "checkpoint.key"
            key_file.write_text(key.encode() + "\n", encoding="utf-8")
            for _ in range(args.pairs):
                for label in ("without", "with"):
                    prefix = f"bcp{uuid.uuid4().hex[:6]}."
                    asyncio.run(create_topics(args.broker, contract_topics(prefix), 2))
                    asyncio.run(produce_all(args.broker, prefix, items))
                    extra = (
                        {
                            "checkpoint_key": str(key_file),
                            "checkpoint_every_records": str(args.every),
                        }
                        if label == "with"
                        else {}
                    )
                    rate = worker_rate(args.broker, prefix, args.n, workdir, agencies, **extra)
                    runs.append((label, rate))
                    print(f"worker {label} checkpoints: {rate:,.0f} events/s")
        ratios = [runs[i + 1][1] / runs[i][1] for i in range(0, len(runs), 2) if i + 1 < len(runs)]
        ratio = statistics.median(ratios)
        verdict = "within" if ratio >= 0.95 else "OVER"
        print(
            f"with/without: {ratio:.3f} (median of {len(ratios)} pairs), {verdict} the 5 % budget"
        )
        result |= {
            "n": args.n,
            "runs": [{"checkpoints": label, "events_per_s": round(r)} for label, r in runs],
            "ratio_median": round(ratio, 3),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
