"""Alert kinds: the `kind` of every record on the alerts topic (docs/contract.md section 4).

One list, read by the processor that raises alerts and by the metrics that pre-create a series per
kind, so "no alert yet" reads as 0 and never as a gap.
"""

from __future__ import annotations

from typing import Final

__all__ = (
    "ALERT_KINDS",
    "OUT_OF_STATE_ATTEMPTS",
    "POLICY_REJECTED",
    "PROHIBITED_PURPOSE",
    "SEARCH_RATE",
    "VIOLATION_BURST",
)

SEARCH_RATE: Final = "search_rate"
VIOLATION_BURST: Final = "violation_burst"
PROHIBITED_PURPOSE: Final = "prohibited_purpose"
POLICY_REJECTED: Final = "policy_rejected"
OUT_OF_STATE_ATTEMPTS: Final = "out_of_state_attempts"

ALERT_KINDS: Final = (
    VIOLATION_BURST,
    PROHIBITED_PURPOSE,
    POLICY_REJECTED,
    SEARCH_RATE,
    OUT_OF_STATE_ATTEMPTS,
)
