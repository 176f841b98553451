"""Alerts: the `kind` of every record on the alerts topic (docs/contract.md section 4), and when
the window counts raise one. Pure.

The kinds are one list, read by the processor that raises alerts and by the metrics that
pre-create a series per kind, so "no alert yet" reads as 0 and never as a gap.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from streamguard.core.models import ChangeDecision
from streamguard.core.timeutil import format_ts
from streamguard.settings import WorkerSettings
from streamguard.stream.outputs import alert_record, decision_id
from streamguard.stream.windows import WINDOWS, crossed, parse_counter_key

__all__ = (
    "ALERT_KINDS",
    "OUT_OF_STATE_ATTEMPTS",
    "POLICY_REJECTED",
    "POLICY_WIDENED",
    "PROHIBITED_PURPOSE",
    "REGISTRY_CHANGED",
    "SEARCH_RATE",
    "VIOLATION_BURST",
    "policy_widened_alert",
    "registry_changed_alert",
    "rejected_change_alert",
    "threshold_alerts",
)

SEARCH_RATE: Final = "search_rate"
VIOLATION_BURST: Final = "violation_burst"
PROHIBITED_PURPOSE: Final = "prohibited_purpose"
POLICY_REJECTED: Final = "policy_rejected"
OUT_OF_STATE_ATTEMPTS: Final = "out_of_state_attempts"
# docs/contract.md section 2a: the owner is told at once of every change that opens access, and
# an agency of every change of its standing in the registry.
POLICY_WIDENED: Final = "policy_widened"
REGISTRY_CHANGED: Final = "registry_changed"

ALERT_KINDS: Final = (
    VIOLATION_BURST,
    PROHIBITED_PURPOSE,
    POLICY_REJECTED,
    SEARCH_RATE,
    OUT_OF_STATE_ATTEMPTS,
    POLICY_WIDENED,
    REGISTRY_CHANGED,
)


def _thresholds(settings: WorkerSettings) -> dict[tuple[str, str], tuple[str, int]]:
    """(counter metric, window) -> (alert kind, threshold)."""
    return {
        ("searches", "1m"): (SEARCH_RATE, settings.rate_limit_per_minute),
        ("denied", "1h"): (VIOLATION_BURST, settings.alert_denied_networks_per_hour),
        ("immigration", "1h"): (PROHIBITED_PURPOSE, settings.alert_immigration_per_hour),
        ("attempts", "1h"): (OUT_OF_STATE_ATTEMPTS, settings.alert_out_of_state_per_hour),
    }


def threshold_alerts(
    before: Mapping[str, int], after: Mapping[str, int], settings: WorkerSettings
) -> Iterator[dict[str, Any]]:
    """Alert records of the window counters that passed their threshold: `before` holds the
    value of each counter a batch moved before it moved it, `after` its new value."""
    thresholds = _thresholds(settings)
    for key, was in before.items():
        # The key's metric and window first: most counters have no threshold, or did not
        # cross it, and need no more of the key read.
        parts = key.split("|", 4)
        if len(parts) != 5:
            continue
        rule = thresholds.get((parts[1], parts[2]))
        if rule is None or (parts[1] == "searches" and rule[1] == 0):
            continue  # a rate limit of 0 means no limit, not "alert on every search"
        kind, threshold = rule
        now = after[key]
        if not crossed(was, now, threshold):
            continue
        parsed = parse_counter_key(key)
        if parsed is not None:
            _, metric, window, start, agency_id = parsed
            yield alert_record(
                kind,
                agency_id,
                format_ts(start),
                format_ts(start + WINDOWS[window].size),
                now,
                threshold,
                f"{metric} for {agency_id} passed {threshold} in the {window} "
                f"window starting {format_ts(start)}",
            )


def rejected_change_alert(decision: ChangeDecision, at: str) -> dict[str, Any]:
    """The alert of a rejected policy change, dated `at` (the change's `ts`)."""
    record = alert_record(
        POLICY_REJECTED,
        decision.agency_id or "unknown",
        at,
        at,
        len(decision.reasons),
        0,
        f"policy change {decision.event_id} of {decision.setting} rejected: "
        + ", ".join(decision.codes),
    )
    if decision.event_id is not None:
        # Not a window: one alert per event, id tied to that event for replays.
        record["alert_id"] = decision_id(f"alert:{POLICY_REJECTED}", decision.event_id)
    return record


def policy_widened_alert(
    decision: ChangeDecision, at: str, widenings: tuple[str, ...]
) -> dict[str, Any]:
    """The alert of an applied change that opens access (`widenings` say how), dated `at`."""
    record = alert_record(
        POLICY_WIDENED,
        decision.agency_id or "unknown",
        at,
        at,
        len(widenings),
        0,
        f"policy change {decision.event_id} widened access of {decision.agency_id}: "
        + "; ".join(widenings),
    )
    if decision.event_id is not None:
        record["alert_id"] = decision_id(f"alert:{POLICY_WIDENED}", decision.event_id)
    return record


def registry_changed_alert(agency_id: str, record_id: str, at: str, change: str) -> dict[str, Any]:
    """The alert of an applied agency record or tombstone that changed an existing agency's
    state, kind or existence; `record_id` names the record (ids repeat on a redelivery only)."""
    record = alert_record(REGISTRY_CHANGED, agency_id, at, at, 1, 0, f"registry changed: {change}")
    record["alert_id"] = decision_id(f"alert:{REGISTRY_CHANGED}", record_id)
    return record
