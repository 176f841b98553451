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

`batch_monitors` and `record_batch_in` / `record_batch_out` are faust's four per-event sensor
calls (`on_message_in`, `on_stream_event_in`, `on_stream_event_out`, `on_message_out`) made once
per batch by `take_batches`, for apps whose only sensors are faust's `Monitor` and this one:
the same counts and offsets, each event's runtime measured from the moment it was taken (to
the drain round, see `Round`), the active gauges raised when the batch is handed to the agent
rather than per event as it is taken. The per-event methods they stand for are guarded too.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

from faust.sensors.monitor import Monitor, TPOffsetMapping
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CollectorRegistry

if TYPE_CHECKING:
    from faust.types import TP, AppT
    from faust.types.web import Request, View

__all__ = (
    "BROKEN_FAUST_FIELDS",
    "LagAndRebalances",
    "Round",
    "StreamguardMonitor",
    "batch_monitors",
    "faust_metrics",
    "record_batch_in",
    "record_batch_out",
)

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
        self._tp_children: dict[tuple[str, TP | str], Any] = {}
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
        child = self._tp_children.get(("topic", tp.topic))
        if child is None:
            child = self._tp_children[("topic", tp.topic)] = (
                metrics.messages_received_per_topics.labels(topic=tp.topic)
            )
        child.inc()
        self._tp_child(metrics.messages_received_per_topics_partition, "in", tp).set(offset)

    def prometheus_batch_in(
        self, stream: Any, events: Sequence[Any], messages: Sequence[Any]
    ) -> None:
        """What `on_message_in` and `on_stream_event_in` add to faust's Prometheus metrics,
        for a batch (`record_batch_in`)."""
        metrics = self._metrics
        if messages:
            metrics.messages_received.inc(len(messages))
            metrics.active_messages.inc(len(messages))
            topics = Counter(message.topic for message in messages)
            for topic, count in topics.items():
                child = self._tp_children.get(("topic", topic))
                if child is None:
                    child = self._tp_children[("topic", topic)] = (
                        metrics.messages_received_per_topics.labels(topic=topic)
                    )
                child.inc(count)
            last = {message.tp: message.offset for message in messages}
            for tp, offset in last.items():
                self._tp_child(metrics.messages_received_per_topics_partition, "in", tp).set(offset)
        if events:
            metrics.total_events.inc(len(events))
            metrics.total_active_events.inc(len(events))
            child = self._stream_children.get(stream)
            if child is None:
                child = self._stream_children[stream] = metrics.total_events_per_stream.labels(
                    stream=f"stream.{self._stream_label(stream)}.events"
                )
            child.inc(len(events))

    def prometheus_batch_out(
        self, n_events: int, n_finished: int, runtimes: Sequence[tuple[int, float]]
    ) -> None:
        """What `on_stream_event_out` and `on_message_out` add to faust's Prometheus metrics,
        for a batch (`record_batch_out`): one runtime observation per event, as faust makes."""
        metrics = self._metrics
        if n_events:
            metrics.total_active_events.dec(n_events)
        observe = metrics.events_runtime_latency.observe
        for count, runtime in runtimes:
            ms = self.secs_to_ms(runtime)
            for _ in range(count):
                observe(ms)
        if n_finished:
            metrics.active_messages.dec(n_finished)

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


# --- faust's per-event sensor calls, once per batch ------------------------------------------


class Round(NamedTuple):
    """Events `[.., events)` and newly tracked messages `[.., messages)` of a batch taken at
    `taken` (`time.monotonic`), after the previous round's. A round is one drain of the agent's
    queue (microseconds), so its events share one take time."""

    events: int
    messages: int
    taken: float


def batch_monitors(sensors: Iterable[Any]) -> tuple[Monitor, ...] | None:
    """`sensors` (an app's `app.sensors`) if every one is faust's `Monitor` or a
    `StreamguardMonitor` timing with `time.monotonic`, whose per-event calls `record_batch_in`
    and `record_batch_out` make for a whole batch; None otherwise (call them per event)."""
    monitors = tuple(sensors)
    for sensor in monitors:
        if type(sensor) not in _BATCHED or sensor.time is not time.monotonic:
            return None
    return monitors


def record_batch_in(
    monitors: Sequence[Monitor],
    stream: Any,
    events: Sequence[Any],
    messages: Sequence[Any],
    rounds: Sequence[Round],
) -> None:
    """`on_message_in` for each of `messages` (newly tracked) and `on_stream_event_in` for each
    of `events`, as one call per monitor."""
    for monitor in monitors:
        _monitor_in(monitor, stream, events, messages, rounds)
        if isinstance(monitor, StreamguardMonitor):
            monitor.prometheus_batch_in(stream, events, messages)


def record_batch_out(
    monitors: Sequence[Monitor],
    stream: Any,
    events: Sequence[Any],
    finished: Sequence[Any],
    rounds: Sequence[Round],
) -> None:
    """`on_stream_event_out` for each of `events` and `on_message_out` for each of `finished`
    (the messages fully acknowledged), as one call per monitor."""
    done = time.monotonic()
    runtimes = [
        (r.events - start, done - r.taken) for start, r in zip(_starts(rounds), rounds, strict=True)
    ]
    for monitor in monitors:
        _monitor_out(monitor, len(events), finished, runtimes, done)
        if isinstance(monitor, StreamguardMonitor):
            monitor.prometheus_batch_out(len(events), len(finished), runtimes)


def _starts(rounds: Sequence[Round]) -> list[int]:
    return [0, *(r.events for r in rounds[:-1])]


def _monitor_in(
    monitor: Monitor,
    stream: Any,
    events: Sequence[Any],
    messages: Sequence[Any],
    rounds: Sequence[Round],
) -> None:
    """What `Monitor.on_message_in` and `Monitor.on_stream_event_in` record, for a batch."""
    by_topic = monitor.messages_received_by_topic
    read_offsets = monitor.tp_read_offsets
    start = 0
    for r in rounds:
        for message in messages[start : r.messages]:
            by_topic[message.topic] += 1
            read_offsets[message.tp] = message.offset
            message.time_in = r.taken
        start = r.messages
    monitor.messages_received_total += len(messages)
    monitor.messages_active += len(messages)
    inbound = monitor.stream_inbound_time
    for start, r in zip(_starts(rounds), rounds, strict=True):
        for event in events[start : r.events]:
            inbound[event.message.tp] = r.taken
    n = len(events)
    monitor.events_total += n
    stream_key = monitor.stream_lookup.get(stream)
    if stream_key is None:
        stream_key = monitor.stream_lookup[stream] = str(stream)
    monitor.events_by_stream[stream_key] += n
    task_key = monitor.task_lookup.get(stream.task_owner)
    if task_key is None:
        task_key = monitor.task_lookup[stream.task_owner] = str(stream.task_owner)
    monitor.events_by_task[task_key] += n
    monitor.events_active += n


def _monitor_out(
    monitor: Monitor,
    n_events: int,
    finished: Sequence[Any],
    runtimes: Sequence[tuple[int, float]],
    done: float,
) -> None:
    """What `Monitor.on_stream_event_out` and `Monitor.on_message_out` record, for a batch."""
    monitor.events_active -= n_events
    history = monitor.events_runtime
    room = history.maxlen
    for count, runtime in runtimes:
        history.extend(repeat(runtime, count if room is None else min(count, room)))
    monitor.messages_active -= len(finished)
    for message in finished:
        message.time_out = done
        if message.time_in is not None:
            message.time_total = done - message.time_in


# The sensor classes whose per-event calls `record_batch_in` / `record_batch_out` stand for.
_BATCHED: Final = frozenset({Monitor, StreamguardMonitor})
