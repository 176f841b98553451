"""A MetricsSink for processor tests: keeps alerts, owner attempts and the last gauge values."""

from __future__ import annotations

from typing import Any


class RecordingSink:
    """What `streamguard.worker.processor.MetricsSink` is told, minus per-decision counts."""

    def __init__(self) -> None:
        self.alerts: list[str] = []
        self.attempts: list[tuple[str, str]] = []
        self.gauges: dict[str, dict[str, int]] = {}

    def observe_decision(self, *args: Any, **kwargs: Any) -> None:
        return None

    def observe_policy_change(self, result: str) -> None:
        return None

    def observe_alert(self, kind: str) -> None:
        self.alerts.append(kind)

    def observe_owner_attempt(self, owner_id: str, kind: str) -> None:
        self.attempts.append((owner_id, kind))

    def set_agency_searches(self, window: str, counts: Any) -> None:
        self.gauges[window] = dict(counts)
