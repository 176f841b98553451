"""Counter expiry in the batch processor: exactly the keys whose bucket is past its grace."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry

from streamguard import serde
from streamguard.core.models import Agency
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import format_ts
from streamguard.local.testing import search_request
from streamguard.settings import WorkerSettings
from streamguard.stream.processor import BatchProcessor
from streamguard.stream.tables import build_state
from streamguard.stream.types import InMessage
from streamguard.stream.windows import DAY, HOUR, WINDOWS, expired, parse_counter_key
from streamguard.worker.metrics import StreamguardMetrics

AGENCIES = (
    Agency("ca-ventura-county-so", "Ventura County SO", "CA", "county"),
    Agency("ca-oxnard-pd", "Oxnard PD", "CA", "local"),
    Agency("tx-houston-pd", "Houston PD", "TX", "local"),
)
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def _expired_keys(keys: Iterable[str], partition: int, watermark: float) -> set[str]:
    """The oracle: keys of `partition` whose bucket is past its grace once event time reached
    `watermark`, hourly buckets kept a day longer (the 24 h windows sum them); a window the
    worker does not know never expires."""
    out = set()
    for key in keys:
        parsed = parse_counter_key(key)
        if parsed is None or parsed[0] != partition:
            continue
        spec = WINDOWS.get(parsed[2])
        keep = DAY if parsed[2] == "1h" else 0
        if spec is not None and expired(parsed[3], spec, watermark, keep=keep):
            out.add(key)
    return out


def test_expiry_drops_exactly_the_expired_keys_of_each_partition() -> None:
    """Over 30 hours of event time on two partitions, with restored keys (one of a window the
    worker does not know), every batch expires exactly what the oracle says of the keys then
    live, and nothing else."""
    metrics = StreamguardMetrics.create(CollectorRegistry())
    proc = BatchProcessor(
        WorkerSettings(rate_limit_per_minute=0),
        build_state(load_statutes(), AGENCIES, (), (), 0),
        {},
        b"salt-salt-salt-salt",
        metrics,
        lambda: float(T0),
    )
    restored = [
        f"0|searches|1h|{T0 - 3 * HOUR}|ca-oxnard-pd",
        f"1|searches|1m|{T0 - 600}|tx-houston-pd",
        f"1|denied|1h|{T0 - 2 * DAY}|ca-oxnard-pd",
        f"0|searches|7d|{T0 - 9 * DAY}|ca-oxnard-pd",
        "not a counter key",
    ]
    proc.seed_counters([(key, 1) for key in restored])
    live: dict[int, set[str]] = {0: set(), 1: set()}
    for key in restored[:4]:
        live[int(key.split("|", 1)[0])].add(key)
    counters: dict[str, int] = {}
    heads: dict[str, Any] = {}
    offsets = [0, 0]
    expired_total = 0
    for step in range(0, 30 * 60, 7):  # a batch every 7 minutes of event time
        ts = T0 + step * 60
        batch = []
        for n, requester in enumerate(("ca-oxnard-pd", "tx-houston-pd", "ca-ventura-county-so")):
            partition = n % 2
            search = search_request(
                requester, networks=["ca-ventura-county-so", requester], ts=format_ts(ts + n)
            )
            batch.append(
                InMessage(
                    "searches",
                    "s",
                    partition,
                    offsets[partition],
                    requester.encode(),
                    serde.dumps(search),
                )
            )
            offsets[partition] += 1
        result = proc.process(batch, now=float(ts), counters=counters, heads=heads)
        want = set()
        for partition, keys in live.items():
            watermark = proc.windows.watermarks.get(partition)
            if watermark is not None:
                want |= _expired_keys(keys | set(result.counters), partition, watermark)
        # The processor expires once per minute of watermark; every step here is a new minute.
        assert set(result.expired) == want
        assert len(result.expired) == len(want)  # each key once
        assert not want & set(result.counters)
        expired_total += len(want)
        for partition in live:
            live[partition] |= {k for k in result.counters if k.startswith(f"{partition}|")}
            live[partition] -= want
        counters.update(result.counters)
        for key in result.expired:
            counters.pop(key, None)
    assert expired_total > 100
    assert f"0|searches|7d|{T0 - 9 * DAY}|ca-oxnard-pd" in live[0]  # unknown window: kept
