"""faust's Prometheus sensor with its broken metrics replaced, and its hot paths cheaper.

faust-streaming 0.15.3 (`faust/sensors/prometheus.py`, `PrometheusMonitor`) gets four metrics
wrong: `rebalance_done_latency`, `rebalance_done_consumer_latency` and `http_latency` observe
`ms_since(state["time_end"/"time_return"])` right after the base `Monitor` set that time, so
they record ~0 ms (a simulated 200 ms rebalance recorded 0.055 ms); `total_rebalances` is a
gauge incremented at start and decremented at return, i.e. "rebalances in progress", named like
a counter. `faust_metrics` builds faust's metrics without those four, and `StreamguardMonitor`
records the real rebalance count and duration into StreamGuard's own metrics instead
(`streamguard_rebalances_total`, `streamguard_rebalance_in_progress`,
`streamguard_rebalance_seconds`), plus the consumer lag faust has no metric for.

It also keeps the label children of faust's per-message metrics instead of looking them up on
every message. The methods it replaces are copies of `PrometheusMonitor`'s minus the broken
observations; they and the private names used (`_metrics`, `_stream_label`,
`_clear_partition_related_metrics`) are guarded in `sources`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol

from faust.sensors.monitor import Monitor, TPOffsetMapping
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CollectorRegistry

if TYPE_CHECKING:
    from faust.types import TP, AppT
    from faust.types.web import Request, View

__all__ = ("BROKEN_FAUST_FIELDS", "LagAndRebalances", "StreamguardMonitor", "faust_metrics")

# `FaustMetrics` fields that are wrong (module docstring) and are not exposed.
BROKEN_FAUST_FIELDS: Final = (
    "rebalance_done_latency",
    "rebalance_done_consumer_latency",
    "http_latency",
    "total_rebalances",
)


class LagAndRebalances(Protocol):
    """What the sensor reports to StreamGuard's own metrics
    (`streamguard.worker.metrics.StreamguardMetrics`)."""

    def set_consumer_lag(self, topic: str, partition: int, lag: int) -> None: ...
    def clear_consumer_lag(self) -> None: ...
    def observe_rebalance_start(self) -> None: ...
    def observe_rebalance_end(self, seconds: float) -> None: ...


def faust_metrics(registry: CollectorRegistry, prefix: str) -> FaustMetrics:
    """faust's sensor metrics in `registry`, named `prefix_*`, minus `BROKEN_FAUST_FIELDS`."""
    metrics = FaustMetrics.create(registry, prefix)
    for name in BROKEN_FAUST_FIELDS:
        registry.unregister(getattr(metrics, name))
    return metrics


class StreamguardMonitor(PrometheusMonitor):
    """faust's Prometheus sensor with its broken metrics replaced (module docstring)."""

    def __init__(self, metrics: FaustMetrics, streamguard: LagAndRebalances, **kwargs: Any):
        super().__init__(metrics=metrics, **kwargs)
        self._streamguard = streamguard
        # Label children of faust's per-message metrics, as `PrometheusMonitor` would look
        # them up on every message (4 labels() calls and a regex per event, about 6 % of a
        # busy worker). Per-partition children are dropped whenever faust removes their
        # series (`_clear_partition_related_metrics`, on every rebalance).
        self._tp_children: dict[tuple[str, TP], Any] = {}
        self._stream_children: dict[Any, Any] = {}

    def _tp_child(self, metric: Any, name: str, tp: TP) -> Any:
        child = self._tp_children.get((name, tp))
        if child is None:
            child = self._tp_children[(name, tp)] = metric.labels(
                topic=tp.topic, partition=tp.partition
            )
        return child

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        """What `PrometheusMonitor.on_message_in` records, with its label children kept."""
        Monitor.on_message_in(self, tp, offset, message)
        metrics = self._metrics
        metrics.messages_received.inc()
        metrics.active_messages.inc()
        child = self._tp_children.get(("topic", tp))
        if child is None:
            child = self._tp_children[("topic", tp)] = metrics.messages_received_per_topics.labels(
                topic=tp.topic
            )
        child.inc()
        self._tp_child(metrics.messages_received_per_topics_partition, "in", tp).set(offset)

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: Any, event: Any
    ) -> dict[str, Any] | None:
        """What `PrometheusMonitor.on_stream_event_in` records, with its label child kept."""
        state = Monitor.on_stream_event_in(self, tp, offset, stream, event)
        metrics = self._metrics
        metrics.total_events.inc()
        metrics.total_active_events.inc()
        child = self._stream_children.get(stream)
        if child is None:
            child = self._stream_children[stream] = metrics.total_events_per_stream.labels(
                stream=f"stream.{self._stream_label(stream)}.events"
            )
        child.inc()
        return state

    def _update_lag(self, tp: TP) -> None:
        # Both are Kafka "next offset" positions (highwater, and last processed + 1), so their
        # difference is the count of messages the group has not committed yet.
        end = self.tp_end_offsets.get(tp)
        committed = self.tp_committed_offsets.get(tp)
        if end is not None and committed is not None:
            self._streamguard.set_consumer_lag(tp.topic, tp.partition, end - committed)

    def on_tp_commit(self, tp_offsets: TPOffsetMapping) -> None:
        """Offsets committed: refresh those partitions' lag."""
        super().on_tp_commit(tp_offsets)
        for tp in tp_offsets:
            self._update_lag(tp)

    def track_tp_end_offset(self, tp: TP, offset: int) -> None:
        """New end offset seen while fetching: refresh that partition's lag."""
        Monitor.track_tp_end_offset(self, tp, offset)
        self._tp_child(self._metrics.topic_partition_end_offset, "end", tp).set(offset)
        self._update_lag(tp)

    def on_rebalance_start(self, app: AppT) -> dict[str, Any]:
        """Count the rebalance (faust's own `total_rebalances` is an in-progress gauge)."""
        state = super().on_rebalance_start(app)
        self._streamguard.observe_rebalance_start()
        return state

    def on_rebalance_return(self, app: AppT, state: dict[str, Any]) -> None:
        """Skip faust's ~0 ms `rebalance_done_consumer_latency`; keep the recovering gauge."""
        Monitor.on_rebalance_return(self, app, state)
        self._metrics.total_rebalances_recovering.inc()

    def on_rebalance_end(self, app: AppT, state: dict[str, Any]) -> None:
        """Record the real rebalance duration (`latency_end`, seconds) instead of faust's ~0."""
        Monitor.on_rebalance_end(self, app, state)
        self._clear_partition_related_metrics()
        self._metrics.total_rebalances_recovering.dec()
        self._streamguard.observe_rebalance_end(state["latency_end"])

    def _clear_partition_related_metrics(self) -> None:
        super()._clear_partition_related_metrics()
        self._tp_children.clear()
        self._streamguard.clear_consumer_lag()

    def on_web_request_end(
        self,
        app: AppT,
        request: Request,
        response: Any,
        state: dict[str, Any],
        *,
        view: View | None = None,
    ) -> None:
        """Count status codes; skip faust's ~0 ms `http_latency`."""
        Monitor.on_web_request_end(self, app, request, response, state, view=view)
        self._metrics.http_status_codes.labels(status_code=int(state["status_code"])).inc()
