"""Posts per second through the camera endpoint, next to a bare aiohttp handler. Not a test.

    python benchmarks/bench_ingest.py [--posts 4000] [--concurrency 32] [--crop-bytes 20000]
        [--runs 3] [--broker localhost:19092]

Each server runs in a child process on loopback (ports 6460-6462), the client in this one, so
on a 2-core machine each has a core. For each vendor format the client sends --posts
authenticated posts (distinct vehicles, a base64 crop of --crop-bytes in each OpenALPR body) and
prints posts/s against:
- `bare`: an aiohttp handler that reads the body and answers 202, nothing else (the floor of
  any Python HTTP edge on this machine);
- `ingest`: the real endpoint (auth, parse, map, quarantine logic, metrics) with a sink that
  drops what it is given, so the figure is the endpoint's own cost;
- `ingest+kafka` (with --broker): the real endpoint waiting for acks=all from a real broker, on
  a fresh topic prefix.
The ratio column is each variant's rate over `bare` in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from streamguard import serde

OWNER = "ca-ventura-county-so"
TOKEN = "benchmark-token-0123456789-abcdefghij"
PORTS = {"bare": 6460, "ingest": 6461, "ingest+kafka": 6462}
JPEG = "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8U"


def openalpr(i: int, crop: str) -> dict[str, Any]:
    uid = "BENCHAGENT000000000000000000000000000001"
    epoch = 1767225600000 + i
    return {
        "data_type": "alpr_group",
        "version": 2,
        "epoch_start": epoch,
        "epoch_end": epoch + 900,
        "agent_uid": uid,
        "camera_id": 77,
        "gps_latitude": 34.27,
        "gps_longitude": -119.23,
        "best_uuid": f"{uid}-77-{epoch}",
        "best_plate_number": f"{i % 10}ABC{i % 1000:03d}",
        "best_region": "us-ca",
        "best_confidence": 91.5,
        "vehicle_crop_jpeg": crop,
        "best_plate": {"plate": "X", "confidence": 91.5, "plate_crop_jpeg": JPEG},
        "is_preview": False,
    }


def axis(i: int, crop: str) -> dict[str, Any]:
    return {
        "capture_timestamp": str(1767225600000 + i),
        "datetime": "20251231 160000000",
        "plateText": f"{i % 10}XYZ{i % 1000:03d}",
        "plateConfidence": "0.8712",
        "carState": "lost",
        "carID": str(i),
        "geotag": {"lat": 34.28, "lon": -119.29},
        "imagesURI": ["/local/fflprapp/tools.cgi?action=getImage&name=lp.jpg"],
        "camera_info": {"SerialNumber": "B8A44F000001"},
    }


def genetec(i: int, crop: str) -> dict[str, Any]:
    return {
        "records": [
            {
                "id": i,
                "vehicle": {"license_plate": f"{i % 10}TRJ{i % 1000:03d}"},
                "start_cam": {"code": "AUTOVU-0042", "latitude": 34.28, "longitude": -119.29},
                "start_data": {"region": "us-ca", "score": 0.91},
                "start_date": "2025-12-31T16:00:00-08:00",
            }
        ]
    }


BODIES: dict[str, Callable[[int, str], dict[str, Any]]] = {
    "openalpr": openalpr,
    "axis": axis,
    "genetec": genetec,
}


class DroppingSink:
    """Accepts every record at once: the endpoint's cost without a broker."""

    async def send_all(self, messages: Sequence[Any]) -> None:
        return None


def _owners_file(directory: Path) -> Path:
    path = directory / "owners.json"
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    entry = {"share_to": ["ca-oxnard-pd"], "credentials": [{"id": "c", "bearer_sha256": digest}]}
    path.write_text(json.dumps({OWNER: entry}), encoding="utf-8")
    return path


async def _serve(variant: str, broker: str | None, ready: Any, stop: Any) -> None:
    from aiohttp import web

    from streamguard.ingest.auth import load_owners
    from streamguard.ingest.metrics import IngestMetrics
    from streamguard.ingest.producer import KafkaSink
    from streamguard.ingest.server import IngestEndpoint, Limits, build_app
    from streamguard.settings import WorkerSettings
    from streamguard.worker.topics import create_topics

    sink: Any = DroppingSink()
    limits = Limits(max_in_flight=256)
    if variant == "bare":

        async def bare(request: web.Request) -> web.Response:
            await request.read()
            return web.json_response({}, status=202)

        app = web.Application(client_max_size=limits.max_body_bytes)
        app.router.add_post("/v1/reads/{format}", bare)
    else:
        if variant == "ingest+kafka":
            assert broker is not None
            prefix = f"sgbench{uuid.uuid4().hex[:8]}."
            await create_topics(broker, [prefix + "reads", prefix + "quarantine"], 2)
            sink = KafkaSink(WorkerSettings(broker=broker, topic_prefix=prefix), 10.0)
            await sink.start()
        with tempfile.TemporaryDirectory() as directory:
            owners = load_owners(_owners_file(Path(directory)))
        app = build_app(
            IngestEndpoint(owners, sink, IngestMetrics(), limits), limits.max_body_bytes
        )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", PORTS[variant]).start()
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.1)
    await runner.cleanup()
    if isinstance(sink, KafkaSink):
        await sink.stop()


def _child(variant: str, broker: str | None, ready: Any, stop: Any) -> None:
    asyncio.run(_serve(variant, broker, ready, stop))


async def _post_all(port: int, name: str, bodies: list[bytes], concurrency: int) -> float:
    from aiohttp import ClientSession, ClientTimeout, TCPConnector

    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    url = f"http://127.0.0.1:{port}/v1/reads/{name}"
    queue = list(reversed(bodies))
    statuses: dict[int, int] = {}

    async def worker(session: ClientSession) -> None:
        while queue:
            body = queue.pop()
            async with session.post(url, data=body, headers=headers) as reply:
                await reply.read()
                statuses[reply.status] = statuses.get(reply.status, 0) + 1

    connector = TCPConnector(limit=concurrency)
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=60)) as session:
        started = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(worker(session) for _ in range(concurrency))), timeout=300
        )
        elapsed = time.perf_counter() - started
    if set(statuses) != {202}:
        msg = f"{name} on port {port}: answers {statuses}"
        raise SystemExit(msg)
    return len(bodies) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--crop-bytes", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs per figure")
    parser.add_argument("--broker", help="also measure the endpoint against this broker")
    args = parser.parse_args()
    crop = (JPEG * (args.crop_bytes // len(JPEG) + 1))[: args.crop_bytes]
    variants = ["bare", "ingest"] + (["ingest+kafka"] if args.broker else [])
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    children = []
    rates: dict[tuple[str, str], float] = {}
    try:
        for variant in variants:
            ready = context.Event()
            child = context.Process(target=_child, args=(variant, args.broker, ready, stop))
            child.start()
            children.append(child)
            if not ready.wait(60):
                raise SystemExit(f"{variant}: server did not start")
        bodies = {
            name: [serde.dumps(build(i, crop)) for i in range(args.posts)]
            for name, build in BODIES.items()
        }
        for variant in variants:  # warm-up: connections, first-call costs
            for name in BODIES:
                warm = bodies[name][: max(1, args.posts // 10)]
                asyncio.run(_post_all(PORTS[variant], name, warm, args.concurrency))
        # Variants take turns within each run, and the best of --runs is kept: the machine is
        # shared, so a disturbance hits every variant alike rather than one of them.
        for _ in range(args.runs):
            for name in BODIES:
                for variant in variants:
                    rate = asyncio.run(
                        _post_all(PORTS[variant], name, bodies[name], args.concurrency)
                    )
                    rates[(variant, name)] = max(rate, rates.get((variant, name), 0.0))
    finally:
        stop.set()
        for child in children:
            child.join(30)
    print(
        f"posts={args.posts} concurrency={args.concurrency} crop_bytes={args.crop_bytes} "
        f"best of {args.runs} (server: 1 child process; client: this process)"
    )
    print(f"{'format':<10}" + "".join(f"{v:>16}" for v in variants) + "   ratio to bare")
    for name in BODIES:
        row = "".join(f"{rates[(v, name)]:>14.0f}/s" for v in variants)
        ratios = ", ".join(
            f"{v} {rates[(v, name)] / rates[('bare', name)]:.2f}" for v in variants[1:]
        )
        print(f"{name:<10}{row}   {ratios}")


if __name__ == "__main__":
    main()
