"""`MetricsPage` writes the bytes prometheus-client's `generate_latest` writes, scrape after
scrape, while series change, appear and disappear."""

from __future__ import annotations

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.core import GaugeHistogramMetricFamily, UnknownMetricFamily
from prometheus_client.registry import Collector

from streamguard.worker import exposition
from streamguard.worker.exposition import MetricsPage
from streamguard.worker.metrics import StreamguardMetrics

AWKWARD = ('a"quote', "back\\slash", "new\nline", "ünï", "", "x{y}=z,")


class _Custom(Collector):
    def collect(self) -> list[object]:
        gh = GaugeHistogramMetricFamily("queue_age", "ages\nwith a newline", labels=["q"])
        gh.add_metric(["a"], [("1.0", 2.0), ("+Inf", 3.0)], gsum_value=4.5)
        unknown = UnknownMetricFamily("odd_thing", "back\\slash help", labels=["k"])
        unknown.add_metric(["v"], 1e-9)
        return [gh, unknown]


def _registry() -> tuple[CollectorRegistry, Counter, Gauge, Histogram]:
    registry = CollectorRegistry()
    counter = Counter("sg_things", "things counted", ["kind", "where"], registry=registry)
    gauge = Gauge("sg_level", "a level", ["agency_id"], registry=registry)
    histogram = Histogram("sg_seconds", "durations", ["role"], registry=registry)
    Summary("sg_sizes", "sizes", registry=registry).observe(12.5)
    Info("sg_build", "build", registry=registry).info({"version": "1.2", "name": 'q"t'})
    Enum("sg_state", "state", states=["up", "down"], registry=registry).state("down")
    registry.register(_Custom())
    for value in AWKWARD:
        counter.labels(kind=value, where="w").inc(3)
        gauge.labels(agency_id=value).set(1e21)
        histogram.labels(role=value).observe(0.0042)
    gauge.labels(agency_id="inf").set(float("inf"))
    gauge.labels(agency_id="nan").set(float("nan"))
    gauge.labels(agency_id="neg").set(-2.5)
    return registry, counter, gauge, histogram


def test_the_page_is_what_generate_latest_writes_while_series_change() -> None:
    registry, counter, gauge, histogram = _registry()
    page = MetricsPage(registry)
    assert page.render() == generate_latest(registry)
    counter.labels(kind="new", where="w").inc()
    gauge.remove("ünï")
    gauge.labels(agency_id='a"quote').set(7)
    histogram.labels(role="").observe(3000.0)
    assert page.render() == generate_latest(registry)  # formatted prefixes reused
    gauge.clear()
    assert page.render() == generate_latest(registry)


def test_the_prefix_cache_starts_again_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exposition, "_MAX_PREFIXES", 3)
    registry, counter, _, _ = _registry()
    page = MetricsPage(registry)
    for _ in range(2):
        assert page.render() == generate_latest(registry)
        counter.labels(kind="more", where="w").inc()
    assert len(page._prefixes) <= 3


def test_the_worker_bundle_serves_generate_latest_bytes() -> None:
    metrics = StreamguardMetrics.create(CollectorRegistry())
    metrics.set_agency_searches("1h", {"ca-oxnard-pd": 4, "ca-ventura-so": 2})
    metrics.observe_owner_attempt("ca-oxnard-pd", "denied")
    first = metrics.exposition()
    assert b"streamguard_agency_searches" in first
    # The bundle's pending counts are flushed by a collection, so compare a second page of
    # each (nothing pending), and both with the cache warm.
    assert metrics.exposition() == generate_latest(metrics.registry)
    metrics.set_agency_searches("1h", {"ca-ventura-so": 9})
    assert metrics.exposition() == generate_latest(metrics.registry)
