"""The metric bundle: contract names, bounded labels, buckets, faust sensor wiring.

Every test builds its own `StreamguardMetrics` (and so its own `CollectorRegistry`) and reads the
text exposition, i.e. what Prometheus would scrape.
"""

from __future__ import annotations

import faust
import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from streamguard.core import codes
from streamguard.stream.alerts import ALERT_KINDS
from streamguard.worker.metrics import (
    DECISION_SECONDS_BUCKETS,
    EVENT_LAG_SECONDS_BUCKETS,
    FAUST_PREFIX,
    StreamguardMetrics,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(metrics: StreamguardMetrics) -> Samples:
    """Parse the text exposition into {(sample name, labels): value}."""
    out: Samples = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


def type_lines(metrics: StreamguardMetrics) -> set[str]:
    return {
        line for line in metrics.exposition().decode().splitlines() if line.startswith("# TYPE ")
    }


@pytest.fixture
def metrics() -> StreamguardMetrics:
    return StreamguardMetrics.create()


def decide(metrics: StreamguardMetrics, **overrides: object) -> None:
    args: dict[str, object] = {
        "kind": "search_request",
        "outcome": "denied",
        "codes": [codes.PROHIBITED_PURPOSE_IMMIGRATION],
        "allowed_networks": 0,
        "denied_networks": 1,
        "decision_seconds": 0.002,
        "event_lag_seconds": 1.5,
    }
    args.update(overrides)
    metrics.observe_decision(**args)  # type: ignore[arg-type]


def test_contract_metric_families_are_exposed_with_their_types(metrics: StreamguardMetrics) -> None:
    """docs/contract.md 7 names appear in the exposition with the type the contract implies."""
    types = type_lines(metrics)
    for line in (
        "# TYPE streamguard_events_total counter",
        "# TYPE streamguard_violations_total counter",
        "# TYPE streamguard_networks_total counter",
        "# TYPE streamguard_policy_changes_total counter",
        "# TYPE streamguard_alerts_total counter",
        "# TYPE streamguard_decision_seconds histogram",
        "# TYPE streamguard_event_lag_seconds histogram",
        "# TYPE streamguard_agency_searches gauge",
        "# TYPE streamguard_consumer_lag_messages gauge",
        "# TYPE streamguard_rebalances_total counter",
    ):
        assert line in types


def test_create_without_registry_gives_each_bundle_its_own(metrics: StreamguardMetrics) -> None:
    """Two bundles never share series, so tests and apps cannot see each other's counts."""
    other = StreamguardMetrics.create()
    assert other.registry is not metrics.registry
    decide(metrics)
    assert (
        value(scrape(other), "streamguard_events_total", kind="search_request", outcome="denied")
        == 0.0
    )


def test_create_uses_a_given_registry_without_process_collectors() -> None:
    """A caller's registry gets only StreamGuard's metrics; a fresh one also gets process_*."""
    registry = CollectorRegistry()
    given = StreamguardMetrics.create(registry)
    assert given.registry is registry
    assert not any("process_" in line for line in type_lines(given))
    fresh = type_lines(StreamguardMetrics.create())
    assert any(line.startswith("# TYPE process_cpu_seconds") for line in fresh)


def test_known_series_start_at_zero_so_the_first_event_shows_in_rate(
    metrics: StreamguardMetrics,
) -> None:
    """Every contract outcome, code, decision and result exists at 0 before any event."""
    samples = scrape(metrics)
    assert value(samples, "streamguard_events_total", kind="search_request", outcome="denied") == 0
    assert value(samples, "streamguard_events_total", kind="plate_read", outcome="shared") == 0
    all_codes = (*codes.SEARCH_CODES, *codes.NETWORK_CODES, *codes.CHANGE_CODES, *codes.INPUT_CODES)
    for code in all_codes:
        assert value(samples, "streamguard_violations_total", code=code) == 0
    assert value(samples, "streamguard_networks_total", decision="denied") == 0
    assert value(samples, "streamguard_policy_changes_total", result="rejected") == 0
    # Impossible pairs are not invented: a search is never "shared".
    name = "streamguard_events_total"
    assert value(samples, name, kind="search_request", outcome="shared") is None


def test_observe_decision_counts_outcome_codes_networks_and_latencies(
    metrics: StreamguardMetrics,
) -> None:
    """One denied search: its outcome, each code once, both network counts, both histograms."""
    decide(
        metrics,
        outcome="partial",
        codes=[codes.NOT_SHARED, codes.OUT_OF_STATE_RECIPIENT, codes.NOT_SHARED],
        allowed_networks=2,
        denied_networks=3,
        decision_seconds=0.002,
        event_lag_seconds=45.0,
    )
    samples = scrape(metrics)
    assert value(samples, "streamguard_events_total", kind="search_request", outcome="partial") == 1
    # NOT_SHARED came from two networks but it is one event carrying the code.
    assert value(samples, "streamguard_violations_total", code="NOT_SHARED") == 1
    assert value(samples, "streamguard_violations_total", code="OUT_OF_STATE_RECIPIENT") == 1
    assert value(samples, "streamguard_networks_total", decision="allowed") == 2
    assert value(samples, "streamguard_networks_total", decision="denied") == 3
    assert value(samples, "streamguard_decision_seconds_bucket", le="0.001") == 0
    assert value(samples, "streamguard_decision_seconds_bucket", le="0.0025") == 1
    assert value(samples, "streamguard_decision_seconds_sum") == pytest.approx(0.002)
    assert value(samples, "streamguard_event_lag_seconds_bucket", le="30.0") == 0
    assert value(samples, "streamguard_event_lag_seconds_bucket", le="60.0") == 1


def test_missing_event_time_skips_the_lag_histogram(metrics: StreamguardMetrics) -> None:
    """An event without a readable ts counts as decided but adds no lag observation."""
    decide(metrics, event_lag_seconds=None)
    samples = scrape(metrics)
    assert value(samples, "streamguard_decision_seconds_count") == 1
    assert value(samples, "streamguard_event_lag_seconds_count") == 0


def test_negative_latencies_from_clock_skew_count_as_zero(metrics: StreamguardMetrics) -> None:
    """A producer clock ahead of the worker lands in the lowest bucket, not an error."""
    decide(metrics, decision_seconds=-0.5, event_lag_seconds=-3.0)
    samples = scrape(metrics)
    assert value(samples, "streamguard_decision_seconds_bucket", le="0.0005") == 1
    assert value(samples, "streamguard_event_lag_seconds_bucket", le="0.1") == 1
    assert value(samples, "streamguard_event_lag_seconds_sum") == 0


def test_buckets_cover_sub_millisecond_decisions_and_day_long_replays() -> None:
    """Decision buckets start below a millisecond; lag buckets reach a day for replays."""
    assert DECISION_SECONDS_BUCKETS[0] < 0.001
    assert DECISION_SECONDS_BUCKETS[-1] >= 5
    assert list(DECISION_SECONDS_BUCKETS) == sorted(DECISION_SECONDS_BUCKETS)
    assert EVENT_LAG_SECONDS_BUCKETS[-1] >= 86400
    assert list(EVENT_LAG_SECONDS_BUCKETS) == sorted(EVENT_LAG_SECONDS_BUCKETS)


def test_unknown_label_values_become_other_never_free_text(metrics: StreamguardMetrics) -> None:
    """Kinds, outcomes, codes and results outside the fixed sets are folded into "other"."""
    decide(metrics, kind="Search Request!", outcome="maybe", codes=["ICE warrant for 8ABC123"])
    metrics.observe_policy_change("applied with caveats")
    samples = scrape(metrics)
    assert value(samples, "streamguard_events_total", kind="other", outcome="other") == 1
    assert value(samples, "streamguard_violations_total", code="other") == 1
    assert value(samples, "streamguard_policy_changes_total", result="other") == 1
    assert "8ABC123" not in metrics.exposition().decode()


def test_policy_changes_count_by_result(metrics: StreamguardMetrics) -> None:
    """Applied and rejected changes are counted apart."""
    metrics.observe_policy_change("applied")
    metrics.observe_policy_change("rejected")
    metrics.observe_policy_change("rejected")
    samples = scrape(metrics)
    assert value(samples, "streamguard_policy_changes_total", result="applied") == 1
    assert value(samples, "streamguard_policy_changes_total", result="rejected") == 2


def test_alert_kinds_are_known_identifiers_and_capped(metrics: StreamguardMetrics) -> None:
    """Known kinds and new snake_case kinds count; prose and kinds past the cap become other."""
    metrics.observe_alert("violation_burst")
    metrics.observe_alert("new_kind")
    metrics.observe_alert("Denied search by Houston PD!")
    for i in range(40):
        metrics.observe_alert(f"kind_{i}")
    samples = scrape(metrics)
    assert value(samples, "streamguard_alerts_total", kind="violation_burst") == 1
    assert value(samples, "streamguard_alerts_total", kind="new_kind") == 1
    assert (value(samples, "streamguard_alerts_total", kind="other") or 0) > 1
    assert len(series(samples, "streamguard_alerts_total")) <= len(ALERT_KINDS) + 16 + 1


def test_owner_attempts_bound_owner_and_kind() -> None:
    """Per-owner attempts keep registry-shaped ids up to the cap; the rest go to other."""
    metrics = StreamguardMetrics.create(max_agency_series=2)
    metrics.observe_owner_attempt("ca-ventura-county-so", "out_of_state")
    metrics.observe_owner_attempt("ca-ventura-county-so", "federal")
    metrics.observe_owner_attempt("ca-oxnard-pd", "federal")
    metrics.observe_owner_attempt("ca-uc-pd", "federal")  # past the cap
    metrics.observe_owner_attempt("8ABC 123", "federal")  # not an agency id
    metrics.observe_owner_attempt("ca-oxnard-pd", "sideways")
    samples = scrape(metrics)
    name = "streamguard_owner_attempts_total"
    assert value(samples, name, owner_id="ca-ventura-county-so", kind="out_of_state") == 1
    assert value(samples, name, owner_id="ca-ventura-county-so", kind="federal") == 1
    assert value(samples, name, owner_id="ca-oxnard-pd", kind="federal") == 1
    assert value(samples, name, owner_id="ca-oxnard-pd", kind="other") == 1
    assert value(samples, name, owner_id="other", kind="federal") == 2


def test_agency_searches_replace_the_window_and_drop_inactive_agencies(
    metrics: StreamguardMetrics,
) -> None:
    """Each call replaces one window's series; other windows are untouched."""
    metrics.set_agency_searches("1h", {"tx-houston-pd": 3, "us-ice-ero": 1})
    metrics.set_agency_searches("1d", {"tx-houston-pd": 9})
    metrics.set_agency_searches("1h", {"us-ice-ero": 2, "ca-oxnard-pd": 0})
    samples = scrape(metrics)
    name = "streamguard_agency_searches"
    assert value(samples, name, agency_id="us-ice-ero", window="1h") == 2
    assert value(samples, name, agency_id="tx-houston-pd", window="1h") is None
    # A zero count is not "active in the window".
    assert value(samples, name, agency_id="ca-oxnard-pd", window="1h") is None
    assert value(samples, name, agency_id="tx-houston-pd", window="1d") == 9
    metrics.set_agency_searches("1h", {})
    assert series(scrape(metrics), name) == [{"agency_id": "tx-houston-pd", "window": "1d"}]


def test_agency_searches_cap_folds_smallest_and_malformed_ids_into_other() -> None:
    """Past the cap the smallest agencies are summed into other, as are ids unlike registry keys."""
    metrics = StreamguardMetrics.create(max_agency_series=2)
    metrics.set_agency_searches(
        "1h", {"a-pd": 10, "b-pd": 5, "c-pd": 1, "d-pd": 2, "8ABC123 plate": 4}
    )
    samples = scrape(metrics)
    name = "streamguard_agency_searches"
    assert sorted(s["agency_id"] for s in series(samples, name)) == ["a-pd", "b-pd", "other"]
    assert value(samples, name, agency_id="other", window="1h") == 7
    assert "8ABC123" not in metrics.exposition().decode()


def test_agency_searches_window_label_is_bounded(metrics: StreamguardMetrics) -> None:
    """A window name that is not a short identifier is published as other."""
    metrics.set_agency_searches("last hour of 8ABC123", {"tx-houston-pd": 1})
    assert (
        value(
            scrape(metrics),
            "streamguard_agency_searches",
            agency_id="tx-houston-pd",
            window="other",
        )
        == 1
    )


def faust_app(name: str) -> faust.App:
    return faust.App(name, broker="memory://", store="memory://")


def test_faust_sensors_share_the_registry_without_the_broken_metrics(
    metrics: StreamguardMetrics,
) -> None:
    """faust's correct metrics join the bundle's registry; the ~0 latencies and fake total don't."""
    metrics.install_faust_sensors(faust_app("sg-test"))
    types = type_lines(metrics)
    assert f"# TYPE {FAUST_PREFIX}_messages_received_total counter" in types
    assert f"# TYPE {FAUST_PREFIX}_topic_partition_end_offset gauge" in types
    assert f"# TYPE {FAUST_PREFIX}_consumer_commit_latency histogram" in types
    text = metrics.exposition().decode()
    for broken in ("rebalance_done_latency", "rebalance_done_consumer_latency", "http_latency"):
        assert f"{FAUST_PREFIX}_{broken}" not in text
    assert f"{FAUST_PREFIX}_total_rebalances " not in text
    assert f"# TYPE {FAUST_PREFIX}_total_rebalances gauge" not in types


def test_installing_on_two_apps_does_not_duplicate_timeseries(metrics: StreamguardMetrics) -> None:
    """A second app (same id, same registry) reuses the metrics instead of raising."""
    first, second = faust_app("sg-dup"), faust_app("sg-dup")
    metrics.install_faust_sensors(first)
    metrics.install_faust_sensors(second)
    first.monitor.track_tp_end_offset(TP("streamguard.reads", 0), 4)
    second.monitor.track_tp_end_offset(TP("streamguard.reads", 1), 7)
    samples = scrape(metrics)
    name = f"{FAUST_PREFIX}_topic_partition_end_offset"
    assert value(samples, name, topic="streamguard.reads", partition="0") == 4
    assert value(samples, name, topic="streamguard.reads", partition="1") == 7


def test_consumer_lag_is_end_offset_minus_committed_offset(metrics: StreamguardMetrics) -> None:
    """Lag appears once both offsets are known and follows each new end offset and commit."""
    app = faust_app("sg-lag")
    metrics.install_faust_sensors(app)
    tp = TP("streamguard.searches", 2)
    app.monitor.track_tp_end_offset(tp, 120)
    assert series(scrape(metrics), "streamguard_consumer_lag_messages") == []
    app.monitor.on_tp_commit({tp: 100})
    assert (
        value(
            scrape(metrics),
            "streamguard_consumer_lag_messages",
            topic="streamguard.searches",
            partition="2",
        )
        == 20
    )
    app.monitor.track_tp_end_offset(tp, 130)
    app.monitor.on_tp_commit({tp: 130})
    assert (
        value(
            scrape(metrics),
            "streamguard_consumer_lag_messages",
            topic="streamguard.searches",
            partition="2",
        )
        == 0
    )


def test_rebalance_counts_and_clears_partition_series(metrics: StreamguardMetrics) -> None:
    """A rebalance is counted, its duration recorded, and stale partition lag dropped."""
    app = faust_app("sg-rebalance")
    metrics.install_faust_sensors(app)
    tp = TP("streamguard.reads", 0)
    app.monitor.track_tp_end_offset(tp, 10)
    app.monitor.on_tp_commit({tp: 5})
    state = app.monitor.on_rebalance_start(app)
    samples = scrape(metrics)
    assert value(samples, "streamguard_rebalances_total") == 1
    assert value(samples, "streamguard_rebalance_in_progress") == 1
    assert series(samples, "streamguard_consumer_lag_messages") == []
    app.monitor.on_rebalance_return(app, state)
    # A rebalance that took 40 s (start backdated) lands in the 60 s bucket, not near 0.
    state["time_start"] -= 40.0
    app.monitor.on_rebalance_end(app, state)
    samples = scrape(metrics)
    assert value(samples, "streamguard_rebalance_in_progress") == 0
    assert value(samples, "streamguard_rebalance_seconds_bucket", le="30.0") == 0
    assert value(samples, "streamguard_rebalance_seconds_bucket", le="60.0") == 1
    assert value(samples, f"{FAUST_PREFIX}_total_rebalances_recovering") == 0


def test_no_label_ever_holds_a_plate(metrics: StreamguardMetrics) -> None:
    """A plate passed through every entry point never reaches the exposition."""
    plate = "8ABC123"
    decide(metrics, kind=plate, outcome=plate, codes=[plate])
    metrics.observe_policy_change(plate)
    metrics.observe_alert(plate)
    metrics.observe_owner_attempt(plate, plate)
    metrics.set_agency_searches(plate, {plate: 1})
    assert plate not in metrics.exposition().decode()


def test_register_owners_creates_zero_series_so_the_first_attempt_is_seen() -> None:
    """Registered owners start at 0 for both kinds; the cap and id shape still apply."""
    metrics = StreamguardMetrics.create(max_agency_series=2)
    metrics.register_owners(["ca-ventura-county-so", "Not An Id", "ca-oxnard-pd", "ca-uc-pd"])
    samples = scrape(metrics)
    name = "streamguard_owner_attempts_total"
    assert value(samples, name, owner_id="ca-ventura-county-so", kind="out_of_state") == 0
    assert value(samples, name, owner_id="ca-oxnard-pd", kind="federal") == 0
    owners = {s["owner_id"] for s in series(samples, name)}
    assert owners == {"ca-ventura-county-so", "ca-oxnard-pd"}
    metrics.observe_owner_attempt("ca-oxnard-pd", "federal")
    assert value(scrape(metrics), name, owner_id="ca-oxnard-pd", kind="federal") == 1


def test_held_back_counts_are_seen_by_every_collection(metrics: StreamguardMetrics) -> None:
    """Decision and owner-attempt counts are added when the registry is collected: a direct
    registry read and the exposition both see every event observed before them."""
    decide(metrics)
    metrics.observe_owner_attempt("ca-ventura-county-so", "out_of_state")
    read = metrics.registry.get_sample_value
    labels = {"kind": "search_request", "outcome": "denied"}
    assert read("streamguard_events_total", labels) == 1
    assert (
        read(
            "streamguard_owner_attempts_total",
            {"owner_id": "ca-ventura-county-so", "kind": "out_of_state"},
        )
        == 1
    )
    decide(metrics)
    decide(metrics, denied_networks=3)
    samples = scrape(metrics)
    assert value(samples, "streamguard_events_total", **labels) == 3
    assert value(samples, "streamguard_networks_total", decision="denied") == 5
    assert read("streamguard_events_total", labels) == 3  # nothing counted twice
