"""`EventHistogram` exposes what prometheus' own `Histogram` would for the same values, and the
bundle's batch path counts every event once."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamguard.worker.metrics import (
    DECISION_SECONDS_BUCKETS,
    EVENT_LAG_SECONDS_BUCKETS,
    EventHistogram,
    StreamguardMetrics,
)

VALUES = [0.0, 0.0001, 0.0005, 0.0025, 0.003, 0.2, 1.0, 7.5, 99.0, 1e9]


def _without_created(text: bytes) -> str:
    return re.sub(r"_created \S+", "_created T", text.decode())


@pytest.mark.parametrize("buckets", [DECISION_SECONDS_BUCKETS, EVENT_LAG_SECONDS_BUCKETS])
def test_exposition_equals_prometheus_histogram(buckets: tuple[float, ...]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("sg_x_seconds", "doc", registry=theirs, buckets=buckets)
    histogram = EventHistogram("sg_x_seconds", "doc", buckets, ours)
    for value in VALUES:
        reference.observe(value)
    histogram.observe_many(VALUES[:4])
    for value in VALUES[4:]:
        histogram.observe(value)
    assert _without_created(generate_latest(ours)) == _without_created(generate_latest(theirs))
    assert "sg_x_seconds_created" in generate_latest(ours).decode()


def _samples(metrics: StreamguardMetrics) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            found[(sample.name, sample.labels.get("le", ""))] = sample.value
    return found


def test_batch_latencies_count_each_event_like_per_event_observations() -> None:
    one_by_one, batched = StreamguardMetrics.create(), StreamguardMetrics.create()
    decisions, lags = [0.001, 0.002, -0.5, 0.3], [1.5, 45.0, -3.0]
    for seconds in decisions:
        one_by_one.decision_seconds.observe(max(seconds, 0.0))
    for seconds in lags:
        one_by_one.event_lag_seconds.observe(max(seconds, 0.0))
    batched.observe_latencies(decisions, lags)
    ours, theirs = _samples(batched), _samples(one_by_one)
    for name in ("streamguard_decision_seconds", "streamguard_event_lag_seconds"):
        picked = {k: v for k, v in ours.items() if k[0].startswith(name) and "created" not in k[0]}
        assert picked == {k: theirs[k] for k in picked}
    assert ours[("streamguard_decision_seconds_count", "")] == 4
    assert ours[("streamguard_event_lag_seconds_count", "")] == 3
    assert ours[("streamguard_event_lag_seconds_bucket", "0.1")] == 1  # the negative one, as 0
