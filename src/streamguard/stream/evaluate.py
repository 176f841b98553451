"""`streamguard evaluate`: the engine over a JSON-lines file, one decision line per input line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from streamguard import serde
from streamguard.core import codes
from streamguard.core.engine import decide_event
from streamguard.core.models import (
    Decision,
    MalformedDecision,
    ReadDecision,
    Reason,
    SearchDecision,
)
from streamguard.core.policy import PolicyState

__all__ = ("decision_summary", "evaluate_lines")


def decision_summary(decision: Decision, event_type: str | None) -> dict[str, Any]:
    """The CONTRACT 5 output object of one decision."""
    allowed: list[str] = []
    denied: list[dict[str, Any]] = []
    if isinstance(decision, SearchDecision | ReadDecision):
        allowed = list(decision.allowed)
        denied = [{"agency_id": v.agency_id, "codes": list(v.codes)} for v in decision.denied]
    return {
        "event_id": decision.event_id,
        "type": event_type,
        "outcome": decision.outcome,
        "codes": list(decision.codes),
        "allowed": allowed,
        "denied": denied,
    }


def _event_type(event: object) -> str | None:
    if isinstance(event, Mapping):
        kind = event.get("type")
        if isinstance(kind, str):
            return kind
        if "agency_id" in event and "name" in event:
            return "agency"
    return None


def evaluate_lines(
    lines: Iterable[bytes], state: PolicyState, keys: Mapping[str, bytes], now: float
) -> Iterator[bytes]:
    """Decide each line in order; policy changes and agency upserts affect later lines.

    Holds one line at a time, so memory does not grow with the input.
    """
    for line in lines:
        try:
            event: object = serde.loads(line)
        except ValueError:
            decision: Decision = MalformedDecision(
                None,
                "raw",
                Reason(
                    codes.MALFORMED_EVENT,
                    "StreamGuard wire contract v1, section 1",
                    "the line is not valid UTF-8 JSON",
                ),
                state.version,
            )
            event = None
        else:
            state, decision = decide_event(event, state, now, keys)
        yield serde.dumps(decision_summary(decision, _event_type(event))) + b"\n"
