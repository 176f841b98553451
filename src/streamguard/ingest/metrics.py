"""The ingest process's Prometheus metrics, built in one place, on its own registry.

Labels come from bounded sets only: the formats of `streamguard.ingest.formats`, the outcomes
below, reason codes, authentication failure reasons. Never a plate, an agency, a camera or a path.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from streamguard.core.codes import INPUT_CODES
from streamguard.ingest.auth import AUTH_FAILURES
from streamguard.ingest.formats import FORMAT_NAMES
from streamguard.ingest.translate import OUTCOMES

__all__ = ("NOT_FOUND", "OTHER", "REQUEST_OUTCOMES", "IngestMetrics")

OTHER: Final = "other"
NOT_FOUND: Final = "not_found"  # 404, with format "other"
# Body outcomes (translate) plus the endpoint's own refusals.
REQUEST_OUTCOMES: Final = (
    *OUTCOMES,
    "unauthorized",  # 401
    "too_large",  # 413
    "overloaded",  # 503: in-flight limit reached
    "unavailable",  # 503: the broker did not acknowledge in time
)
# Posting is a parse plus a broker round trip (milliseconds); seconds mean the broker is slow.
# 1-2.5-5 steps from a millisecond to ten seconds (each product is exact in binary floating point).
REQUEST_SECONDS_BUCKETS: Final = (
    *(step * decade for decade in (0.001, 0.01, 0.1, 1.0) for step in (1, 2.5, 5)),
    10.0,
)
# Read time to ingest: live cameras (under a second) to cameras catching up after an outage.
READ_LAG_SECONDS_BUCKETS: Final = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0)


def _format(name: str) -> str:
    return name if name in FORMAT_NAMES else OTHER


class IngestMetrics:
    """The metric bundle of one ingest process (or one test)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "streamguard_ingest_requests",
            "Posts (or file lines) by vendor format and outcome.",
            ["format", "outcome"],
            registry=self.registry,
        )
        self.reads = Counter(
            "streamguard_ingest_reads",
            "plate_read events written to the reads topic, by vendor format.",
            ["format"],
            registry=self.registry,
        )
        self.images_dropped = Counter(
            "streamguard_ingest_images_dropped",
            "Images and crops found in bodies and dropped, by vendor format.",
            ["format"],
            registry=self.registry,
        )
        self.quarantined = Counter(
            "streamguard_ingest_quarantined",
            "Bodies refused and written to quarantine, by vendor format and reason code.",
            ["format", "code"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "streamguard_ingest_auth_failures",
            "Posts refused with 401, by why.",
            ["reason"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "streamguard_ingest_request_seconds",
            "Time from a post's arrival to its answer (broker ack included), by format.",
            ["format"],
            buckets=REQUEST_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.read_lag = Histogram(
            "streamguard_ingest_read_lag_seconds",
            "Time from a read's camera time to its ingest (0 for camera clocks ahead).",
            ["format"],
            buckets=READ_LAG_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "streamguard_ingest_in_flight",
            "Posts being read, mapped or sent now.",
            registry=self.registry,
        )
        self.in_flight_limit = Gauge(
            "streamguard_ingest_in_flight_limit",
            "Posts allowed in flight before 503 (STREAMGUARD_INGEST_MAX_IN_FLIGHT).",
            registry=self.registry,
        )
        # Every expected series exists from the start at 0, so rate() sees the first post.
        for name in FORMAT_NAMES:
            for outcome in REQUEST_OUTCOMES:
                self.requests.labels(format=name, outcome=outcome)
            for code in INPUT_CODES:
                self.quarantined.labels(format=name, code=code)
            self.reads.labels(format=name)
            self.images_dropped.labels(format=name)
            self.request_seconds.labels(format=name)
            self.read_lag.labels(format=name)
        # A path naming no format is counted apart: it is a scanner or a mistyped camera URL.
        self.requests.labels(format=OTHER, outcome=NOT_FOUND)
        for reason in AUTH_FAILURES:
            self.auth_failures.labels(reason=reason)

    def observe_request(self, format_name: str, outcome: str, seconds: float | None) -> None:
        label = _format(format_name)
        self.requests.labels(format=label, outcome=outcome).inc()
        if seconds is not None:
            self.request_seconds.labels(format=label).observe(seconds)

    def observe_sent(
        self, format_name: str, reads: int, images: int, lags: tuple[float, ...]
    ) -> None:
        label = _format(format_name)
        if reads:
            self.reads.labels(format=label).inc(reads)
        if images:
            self.images_dropped.labels(format=label).inc(images)
        for lag in lags:
            self.read_lag.labels(format=label).observe(max(lag, 0.0))

    def observe_quarantined(self, format_name: str, code: str) -> None:
        label = code if code in INPUT_CODES else OTHER
        self.quarantined.labels(format=_format(format_name), code=label).inc()

    def observe_auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(reason=reason if reason in AUTH_FAILURES else OTHER).inc()

    def exposition(self) -> bytes:
        """The registry in Prometheus text format (what `/metrics` serves)."""
        return generate_latest(self.registry)
