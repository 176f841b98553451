"""Every Prometheus metric StreamGuard exposes, built in one place (docs/contract.md, 7).

Business code never touches a `Counter` directly: the worker calls the `observe_*` / `set_*`
methods of one `StreamguardMetrics` bundle, and `install_faust_sensors` hooks faust's own consumer
and producer statistics into the same registry. Tests build a fresh bundle (and so a fresh
`CollectorRegistry`) each, so nothing leaks between them.

Label values are always drawn from bounded sets: reason codes from `streamguard.core.codes`, kinds
and outcomes from the contract, agency ids only where the contract asks for them and then capped in
number. Anything else becomes `"other"`. A label never holds a plate, a user id or free text.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

from faust.sensors.prometheus import FaustMetrics
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString as _untyped_go_string

from streamguard.core import codes
from streamguard.stream.alerts import ALERT_KINDS
from streamguard.worker.exposition import MetricsPage
from streamguard.worker.faust_fixes.monitor import StreamguardMonitor, faust_metrics

if TYPE_CHECKING:
    from faust.types import AppT
    from faust.types.web import Request, View
    from faust.types.web import Response as WebResponse

__all__ = (
    "ALL_CODES",
    "DECISION_SECONDS_BUCKETS",
    "EVENT_KINDS",
    "EVENT_LAG_SECONDS_BUCKETS",
    "FAUST_PREFIX",
    "NETWORK_DECISIONS",
    "OTHER",
    "OUTCOMES_BY_KIND",
    "OWNER_ATTEMPT_KINDS",
    "POLICY_RESULTS",
    "EventHistogram",
    "StreamguardMetrics",
)

OTHER: Final = "other"

EVENT_KINDS: Final = ("search_request", "plate_read", "policy_change", "agency", "raw")
# Which outcomes each kind can have (docs/contract.md, 3 and 5). Pre-creating exactly these
# series at 0 lets `rate()` and `increase()` see the first event instead of a missing series.
OUTCOMES_BY_KIND: Final[Mapping[str, tuple[str, ...]]] = {
    "search_request": ("approved", "partial", "denied", "malformed"),
    "plate_read": ("shared", "partial", "denied", "malformed"),
    "policy_change": ("applied", "rejected", "malformed"),
    # "deleted" is additive: a null agency value removes a registry entry (docs/contract.md, 1).
    "agency": ("upserted", "deleted", "malformed"),
    "raw": ("malformed",),
}
_OUTCOMES: Final = frozenset(o for outs in OUTCOMES_BY_KIND.values() for o in outs)
ALL_CODES: Final = (
    *codes.SEARCH_CODES,
    *codes.NETWORK_CODES,
    *codes.CHANGE_CODES,
    *codes.INPUT_CODES,
)
_CODES: Final = frozenset(ALL_CODES)
NETWORK_DECISIONS: Final = ("allowed", "denied")
POLICY_RESULTS: Final = ("applied", "rejected")
OWNER_ATTEMPT_KINDS: Final = ("out_of_state", "federal")
# Alert kinds (stream.alerts.ALERT_KINDS) are pre-created so that "no alert yet" reads as 0,
# not as a gap. Any other snake_case kind is accepted up to `_MAX_EXTRA_ALERT_KINDS` (the alert
# topic is ours, so kinds are code, not input), then folded into "other".
_MAX_EXTRA_ALERT_KINDS: Final = 16

# Decision latency is CPU work on one event (sub-millisecond) plus state-store and producer waits
# (milliseconds), with seconds only when a worker is overloaded; the buckets resolve all three
# so p50 and p99 both land inside a bucket rather than at an edge.
DECISION_SECONDS_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Event lag spans live traffic (well under a second) to replays and backfills of a camera that
# was offline or an audit re-run over a day of data, so the buckets reach a day.
EVENT_LAG_SECONDS_BUCKETS: Final = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    21600.0,
    86400.0,
)
# A rebalance plus table recovery takes seconds to minutes.
REBALANCE_SECONDS_BUCKETS: Final = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

# Agency ids are registry keys (`ca-ventura-county-so`); requesters come from input, so the shape
# is checked and the number of series per window is capped: a producer sending random ids must not
# be able to grow Prometheus without bound.
_AGENCY_ID: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_WINDOW: Final = re.compile(r"[a-z0-9_]{1,16}")
_ALERT_KIND: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
_MAX_WINDOWS: Final = 8
DEFAULT_MAX_AGENCY_SERIES: Final = 500
_MAX_CACHED_CHILDREN: Final = 256
_MAX_CACHED_OWNER_CHILDREN: Final = 100_000

# faust's sensor metrics get a fixed prefix instead of the app id: dashboards and alert rules must
# not change when a deployment renames its app or topic prefix.
FAUST_PREFIX: Final = "streamguard_faust"


# prometheus' own spelling of a bucket bound (`le="0.0025"`, `le="+Inf"`).
_go_string = cast(Callable[[float], str], _untyped_go_string)


def _bounded(value: str, allowed: Iterable[str]) -> str:
    return value if value in allowed else OTHER


class StreamguardMetrics:
    """The metric bundle of one worker (or one test)."""

    registry: CollectorRegistry

    def __init__(self, registry: CollectorRegistry, *, max_agency_series: int) -> None:
        self.registry = registry
        self._page = MetricsPage(registry)
        self._max_agency_series = max_agency_series
        self._lock = threading.Lock()
        # Counter increments of decisions and owner attempts, by label child, added to the
        # counters when the registry is collected (a scrape, `exposition()`): one `inc(n)` per
        # series per scrape instead of a locked `inc()` per event. Registered before the
        # counters, so a collection flushes before it reads them. The worker is one event loop
        # thread; the flush swaps the dict out under the lock.
        self._pending: dict[Any, float] = {}
        registry.register(_PendingFlush(self))
        self.events = Counter(
            "streamguard_events",
            "Events decided, by input kind and outcome.",
            ["kind", "outcome"],
            registry=registry,
        )
        self.violations = Counter(
            "streamguard_violations",
            "Reason codes raised, once per event that carries the code.",
            ["code"],
            registry=registry,
        )
        self.networks = Counter(
            "streamguard_networks",
            "Owner networks (or read recipients) allowed or denied.",
            ["decision"],
            registry=registry,
        )
        self.policy_changes = Counter(
            "streamguard_policy_changes",
            "Signed policy changes applied or rejected.",
            ["result"],
            registry=registry,
        )
        self.alerts = Counter(
            "streamguard_alerts",
            "Alerts published to the alerts topic, by kind.",
            ["kind"],
            registry=registry,
        )
        # Observed once or twice per event: `EventHistogram`, not prometheus' locked one.
        self.decision_seconds = EventHistogram(
            "streamguard_decision_seconds",
            "Seconds from arrival at the worker to decision.",
            DECISION_SECONDS_BUCKETS,
            registry,
        )
        self.event_lag_seconds = EventHistogram(
            "streamguard_event_lag_seconds",
            "Seconds from the event's own `ts` to decision.",
            EVENT_LAG_SECONDS_BUCKETS,
            registry,
        )
        self.agency_searches = Gauge(
            "streamguard_agency_searches",
            "Searches per requesting agency in the current window (windowed tables).",
            ["agency_id", "window"],
            registry=registry,
        )
        self.owner_attempts = Counter(
            "streamguard_owner_attempts",
            "Out-of-state and federal search attempts on an owner's network (additive metric).",
            ["owner_id", "kind"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "streamguard_consumer_lag_messages",
            "Messages not yet committed: partition end offset minus committed offset.",
            ["topic", "partition"],
            registry=registry,
        )
        self.rebalances = Counter(
            "streamguard_rebalances", "Consumer group rebalances started.", registry=registry
        )
        self.rebalance_in_progress = Gauge(
            "streamguard_rebalance_in_progress",
            "1 while a rebalance (including table recovery) is in progress.",
            registry=registry,
        )
        self.rebalance_seconds = Histogram(
            "streamguard_rebalance_seconds",
            "Seconds from rebalance start to fully recovered.",
            registry=registry,
            buckets=REBALANCE_SECONDS_BUCKETS,
        )
        self._windows: dict[str, set[str]] = {}
        self._owners: set[str] = set()
        # Label children by their (raw) label values: `labels()` validates and joins the labels
        # on every call, which cost more than the increment itself at thousands of events/s.
        # These counters never drop a series, so a child once made stays the right one.
        self._event_children: dict[tuple[str, str], Any] = {}
        self._code_children: dict[str, Any] = {}
        self._codes_children: dict[tuple[str, ...], tuple[Any, ...]] = {}
        self._owner_children: dict[tuple[str, str], Any] = {}
        self._lag_children: dict[tuple[str, int], Any] = {}
        self._gauge_children: dict[str, dict[str, Any]] = {}  # window -> agency -> child
        self._allowed_networks = self.networks.labels(decision="allowed")
        self._denied_networks = self.networks.labels(decision="denied")
        self._extra_alert_kinds: set[str] = set()
        self._faust: FaustMetrics | None = None
        self._zero_known_series()

    @classmethod
    def create(
        cls,
        registry: CollectorRegistry | None = None,
        *,
        max_agency_series: int = DEFAULT_MAX_AGENCY_SERIES,
    ) -> StreamguardMetrics:
        """Build every metric in `registry` (a new one, with process metrics, when None)."""
        if registry is None:
            registry = CollectorRegistry()
            # A registry we create is the worker's whole /metrics page, so it gets the process
            # and runtime collectors the global default registry would have had.
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        return cls(registry, max_agency_series=max_agency_series)

    def _zero_known_series(self) -> None:
        for kind, outcomes in OUTCOMES_BY_KIND.items():
            for outcome in outcomes:
                self.events.labels(kind=kind, outcome=outcome)
        for code in ALL_CODES:
            self.violations.labels(code=code)
        for decision in NETWORK_DECISIONS:
            self.networks.labels(decision=decision)
        for result in POLICY_RESULTS:
            self.policy_changes.labels(result=result)
        for kind in ALERT_KINDS:
            self.alerts.labels(kind=kind)

    # --- decisions ---------------------------------------------------------------------------

    def observe_decision(
        self,
        kind: str,
        outcome: str,
        codes: Iterable[str],
        allowed_networks: int,
        denied_networks: int,
        decision_seconds: float,
        event_lag_seconds: float | None,
    ) -> None:
        """Count one decided event: its outcome, each distinct code, networks, latencies.

        `event_lag_seconds` is None when the event carried no readable `ts`.
        """
        self.observe_decisions(
            {(kind, outcome, tuple(codes)): 1},
            allowed_networks,
            denied_networks,
            (decision_seconds,),
            () if event_lag_seconds is None else (event_lag_seconds,),
        )

    def observe_decisions(
        self,
        tally: Mapping[tuple[str, str, tuple[str, ...]], int],
        allowed_networks: int,
        denied_networks: int,
        decision_seconds: Sequence[float],
        event_lag_seconds: Sequence[float],
    ) -> None:
        """Count a batch of decided events at once: how many had each (kind, outcome, codes),
        the networks they allowed and denied in all, one latency per event and one lag per
        event with a readable `ts`. The same counts as `observe_decision` per event."""
        pending = self._pending
        for (kind, outcome, event_codes), n in tally.items():
            child = self._event_children.get((kind, outcome))
            if child is None:
                child = self.events.labels(
                    kind=_bounded(kind, EVENT_KINDS), outcome=_bounded(outcome, _OUTCOMES)
                )
                if len(self._event_children) < _MAX_CACHED_CHILDREN:  # raw values: bounded
                    self._event_children[(kind, outcome)] = child
            pending[child] = pending.get(child, 0) + n
            # A code counts once per event: the panel reads "events with this violation", and
            # a search denied by five networks for NOT_SHARED is one unlawful attempt, not five.
            if event_codes:
                for child in self._code_children_of(event_codes):
                    pending[child] = pending.get(child, 0) + n
        if allowed_networks > 0:
            child = self._allowed_networks
            pending[child] = pending.get(child, 0) + allowed_networks
        if denied_networks > 0:
            child = self._denied_networks
            pending[child] = pending.get(child, 0) + denied_networks
        # Clock skew between producers and the worker can make either value slightly negative;
        # a histogram cannot hold that, and "no delay" is the honest reading.
        self.observe_latencies(decision_seconds, event_lag_seconds)

    def _code_children_of(self, event_codes: tuple[str, ...]) -> tuple[Any, ...]:
        """The violation counter's children of the distinct (bounded) codes of one event."""
        found = self._codes_children.get(event_codes)
        if found is None:
            children = []
            for code in dict.fromkeys(_bounded(c, _CODES) for c in event_codes):
                child = self._code_children.get(code)
                if child is None:
                    child = self._code_children[code] = self.violations.labels(code=code)
                children.append(child)
            found = tuple(children)
            if len(self._codes_children) < _MAX_CACHED_CHILDREN * 16:  # codes come from input
                self._codes_children[event_codes] = found
        return found

    def observe_latencies(
        self, decision_seconds: Sequence[float], event_lag_seconds: Sequence[float]
    ) -> None:
        """Observe a batch's latencies at once: one value per decided event in
        `decision_seconds`, one per event with a readable `ts` in `event_lag_seconds`.

        `observe_decisions` observes them with the batch's counts; `observe_decision` one
        event at a time.
        """
        self.decision_seconds.observe_many(max(s, 0.0) for s in decision_seconds)
        self.event_lag_seconds.observe_many(max(s, 0.0) for s in event_lag_seconds)

    def observe_policy_change(self, result: str) -> None:
        """Count one policy change: "applied" or "rejected"."""
        self.policy_changes.labels(result=_bounded(result, POLICY_RESULTS)).inc()

    def observe_alert(self, kind: str) -> None:
        """Count one alert published."""
        with self._lock:
            if kind not in ALERT_KINDS and kind not in self._extra_alert_kinds:
                if (
                    _ALERT_KIND.fullmatch(kind) is None
                    or len(self._extra_alert_kinds) >= _MAX_EXTRA_ALERT_KINDS
                ):
                    kind = OTHER
                else:
                    self._extra_alert_kinds.add(kind)
        self.alerts.labels(kind=kind).inc()

    def observe_owner_attempt(self, owner_id: str, kind: str, n: int = 1) -> None:
        """Count `n` (one) out-of-state or federal search attempts on `owner_id`'s network.

        Additive to docs/contract.md, 7 (the contract's violation counter has no owner label).
        Call once per owner network a search reached for with `OUT_OF_STATE_RECIPIENT`
        ("out_of_state") or `FEDERAL_RECIPIENT` ("federal"), whether or not the owner shared.
        Owner ids should be registry agencies; at most `max_agency_series` distinct owners get
        their own series.
        """
        child = self._owner_children.get((owner_id, kind))
        if child is None:
            bounded = _bounded(kind, OWNER_ATTEMPT_KINDS)
            with self._lock:
                admitted = self._admit_owner(owner_id)
            child = self.owner_attempts.labels(
                owner_id=owner_id if admitted else OTHER, kind=bounded
            )
            # An owner refused once is refused for good (the admitted set only grows, and the
            # id's shape does not change), so its "other" child can be kept too; bounded, as
            # owner ids come from the registry.
            if len(self._owner_children) < _MAX_CACHED_OWNER_CHILDREN:
                self._owner_children[(owner_id, kind)] = child
        pending = self._pending
        pending[child] = pending.get(child, 0) + n

    def flush(self) -> None:
        """Add the increments held back since the last collection to their counters."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for child, amount in pending.items():
            child.inc(amount)

    def register_owners(self, owner_ids: Iterable[str]) -> None:
        """Create every owner's attempt series at 0 (call with the registry's agency ids).

        Without it an owner's first attempt creates its series at 1, and `increase()` on the
        dashboard and in alert rules never sees that first attempt.
        """
        with self._lock:
            for owner_id in owner_ids:
                if self._admit_owner(owner_id):
                    for kind in OWNER_ATTEMPT_KINDS:
                        self.owner_attempts.labels(owner_id=owner_id, kind=kind)

    def _admit_owner(self, owner_id: str) -> bool:
        """True when `owner_id` has (or may now have) its own series. Call under the lock."""
        if owner_id in self._owners:
            return True
        if _AGENCY_ID.fullmatch(owner_id) is None or len(self._owners) >= self._max_agency_series:
            return False
        self._owners.add(owner_id)
        return True

    # --- windowed tables ---------------------------------------------------------------------

    def set_agency_searches(self, window: str, counts: Mapping[str, int]) -> None:
        """Publish the current window's searches per agency, replacing that window's series.

        Agencies absent from `counts` lose their series, so the gauge lists only agencies active
        in the current window. Past `max_agency_series` agencies, the smallest counts (and any
        id not shaped like a registry key) are summed into `agency_id="other"`.
        """
        if _WINDOW.fullmatch(window) is None:
            window = OTHER
        kept: dict[str, int] = {}
        folded = 0
        # Largest first, so the cap drops the agencies least likely to matter on a dashboard.
        for agency_id, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            if count <= 0:
                continue
            if _AGENCY_ID.fullmatch(agency_id) is None or len(kept) >= self._max_agency_series:
                folded += count
            else:
                kept[agency_id] = count
        if folded:
            kept[OTHER] = kept.get(OTHER, 0) + folded
        with self._lock:
            if window not in self._windows and len(self._windows) >= _MAX_WINDOWS:
                window = OTHER
            previous = self._windows.get(window, set())
            children = self._gauge_children.setdefault(window, {})
            for agency_id in previous - kept.keys():
                self.agency_searches.remove(agency_id, window)
                children.pop(agency_id, None)
            for agency_id, count in kept.items():
                child = children.get(agency_id)
                if child is None:
                    child = children[agency_id] = self.agency_searches.labels(
                        agency_id=agency_id, window=window
                    )
                child.set(count)
            self._windows[window] = set(kept)

    # --- faust -------------------------------------------------------------------------------

    def install_faust_sensors(self, app: Any) -> None:
        """Make `app` record faust's consumer/producer metrics into this bundle's registry.

        Uses faust's Prometheus sensor minus its broken metrics (docs/faust-fixes.md), replaced by
        `streamguard_rebalances_total`, `streamguard_rebalance_in_progress` and
        `streamguard_rebalance_seconds`, plus `streamguard_consumer_lag_messages`. Call before
        the worker starts. Safe to call for several apps: the faust metrics are created once per
        bundle, so a shared registry never raises `DuplicateTimeseries`.
        """
        if self._faust is None:
            self._faust = faust_metrics(self.registry, FAUST_PREFIX)
        app.monitor = StreamguardMonitor(metrics=self._faust, streamguard=self)

    def mount_metrics_page(self, app: AppT, pattern: str = "/metrics") -> None:
        """Serve this bundle's registry on faust's web server (`web_port`) at `pattern`."""

        @app.page(pattern)
        async def metrics_page(view: View, request: Request) -> WebResponse:
            # Passed as a header: aiohttp refuses a `content_type` argument with a charset.
            return view.bytes(self.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # Lag and rebalance bookkeeping, called by the faust sensor -----------------------------

    def set_consumer_lag(self, topic: str, partition: int, lag: int) -> None:
        """Record one assigned partition's lag (never negative: a commit can race the fetch)."""
        child = self._lag_children.get((topic, partition))
        if child is None:
            child = self._lag_children[(topic, partition)] = self.consumer_lag.labels(
                topic=topic, partition=str(partition)
            )
        child.set(max(lag, 0))

    def clear_consumer_lag(self) -> None:
        """Drop every lag series: after a rebalance the worker may own other partitions."""
        self.consumer_lag.clear()
        self._lag_children.clear()

    def observe_rebalance_start(self) -> None:
        """Count a rebalance; in progress until `observe_rebalance_end`."""
        self.rebalances.inc()
        self.rebalance_in_progress.set(1)

    def observe_rebalance_end(self, seconds: float) -> None:
        """A rebalance (including table recovery) ended after `seconds`."""
        self.rebalance_in_progress.set(0)
        self.rebalance_seconds.observe(seconds)

    def exposition(self) -> bytes:
        """The registry in Prometheus text format (what `/metrics` serves): the bytes of
        prometheus-client's `generate_latest`, from `streamguard.worker.exposition`."""
        return self._page.render()


class EventHistogram:
    """A Prometheus histogram for values observed per event, exposed exactly as
    `prometheus_client.Histogram` exposes one without labels (`_bucket{le}`, `_count`, `_sum`,
    `_created`).

    prometheus' `Histogram.observe` takes two locks per value (its sum and its bucket); that was
    two of the locked calls per decided event. Here a value is a `bisect` and two additions on
    plain numbers. Observations and collections both run on the worker's event loop thread
    (faust serves `/metrics` from it); a collection from another thread (`exposition()` in a
    test) reads a copy of the counts, so its buckets always add up to its count.
    """

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        bounds = [float(b) for b in buckets]
        if bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.name = name
        self.documentation = documentation
        self.bounds: tuple[float, ...] = tuple(bounds)
        self._labels = tuple(_go_string(b) for b in bounds)
        self._counts = [0] * len(bounds)  # per bucket, not cumulative
        self._sum = 0.0
        self._created = time.time()
        registry.register(self)

    def observe(self, value: float) -> None:
        """Count one value (not negative: prometheus' own rule for histograms)."""
        self._counts[bisect.bisect_left(self.bounds, value)] += 1
        self._sum += value

    def observe_many(self, values: Iterable[float]) -> None:
        """Count every value of `values`."""
        counts, bounds, where = self._counts, self.bounds, bisect.bisect_left
        total = 0.0
        for value in values:
            counts[where(bounds, value)] += 1
            total += value
        self._sum += total

    def describe(self) -> list[Any]:
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self) -> list[Any]:
        counts, total = list(self._counts), self._sum
        cumulative: list[tuple[str, float]] = []
        running = 0
        for label, count in zip(self._labels, counts, strict=True):
            running += count
            cumulative.append((label, float(running)))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], cumulative, sum_value=total)
        family.samples.append(Sample(f"{self.name}_created", {}, self._created))
        return [family]


class _PendingFlush:
    """A collector with no metrics of its own: collecting it flushes the bundle's held-back
    counter increments, so every collection (scrape, exposition) sees them."""

    def __init__(self, metrics: StreamguardMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        self._metrics.flush()
        return []
