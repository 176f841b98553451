"""The shapes the worker and the batch processor exchange: what comes in, what goes out, and
where metrics are reported. Plain types, so the processor is testable without faust."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamguard.stream.outputs import Out

__all__ = ("BatchResult", "InMessage", "MetricsSink")


class MetricsSink(Protocol):
    """The part of `streamguard.worker.metrics.StreamguardMetrics` the processor reports to."""

    def observe_decisions(
        self,
        tally: Mapping[tuple[str, str, tuple[str, ...]], int],
        allowed_networks: int,
        denied_networks: int,
        decision_seconds: Sequence[float],
        event_lag_seconds: Sequence[float],
    ) -> None: ...
    def observe_policy_change(self, result: str) -> None: ...
    def observe_alert(self, kind: str) -> None: ...
    def observe_owner_attempt(self, owner_id: str, kind: str, n: int = 1) -> None: ...
    def set_agency_searches(self, window: str, counts: Mapping[str, int]) -> None: ...


@dataclass(frozen=True, slots=True)
class InMessage:
    """One consumed Kafka message; `role` names its contract topic (`searches`, `attempts`...)."""

    role: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)
class BatchResult:
    """What the agent must do after a batch: send, then write tables (partition, key, value)."""

    messages: list[Out] = field(default_factory=list)
    audit: list[tuple[str, bytes]] = field(default_factory=list)  # (chain, record JSON)
    counters: dict[str, int] = field(default_factory=dict)  # counter key -> new total
    expired: list[str] = field(default_factory=list)  # counter keys to delete
    heads: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    registry: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    settings: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    revisions: dict[str, tuple[int, int]] = field(default_factory=dict)
    # The replay memory of control records (docs/contract.md section 2a): decided-record key ->
    # its value, and owner or agency -> last applied ts per setting group.
    control_decided: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    control_applied: dict[str, tuple[int, dict[str, float]]] = field(default_factory=dict)
