"""`streamguard evaluate`: the engine over a JSON-lines file, one decision line per input line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from streamguard import serde
from streamguard.core.control import replay_entry_for
from streamguard.core.engine import decide_event
from streamguard.core.keys import Key
from streamguard.core.models import Decision, ReadDecision, SearchDecision
from streamguard.core.policy import PolicyState
from streamguard.core.replay import ReplayLedger
from streamguard.stream.intake import Unreadable, decode
from streamguard.stream.outputs import clamped_windows, quarantine_kind

__all__ = ("decision_summary", "evaluate_lines")


def decision_summary(decision: Decision) -> dict[str, Any]:
    """The docs/contract.md section 5 output object of one decision.

    `type` is the kind the event was decided as, null for input that is no event.
    """
    allowed: list[str] = []
    denied: list[dict[str, Any]] = []
    if isinstance(decision, SearchDecision | ReadDecision):
        allowed = list(decision.allowed)
        denied = [{"agency_id": v.agency_id, "codes": list(v.codes)} for v in decision.denied]
    kind = quarantine_kind(decision)
    summary = {
        "event_id": decision.event_id,
        "type": None if kind == "raw" else kind,
        "outcome": decision.outcome,
        "codes": list(decision.codes),
        "allowed": allowed,
        "denied": denied,
    }
    if isinstance(decision, SearchDecision) and decision.clamped:
        summary["clamped_windows"] = clamped_windows(decision)
    return summary


def evaluate_lines(
    lines: Iterable[bytes], state: PolicyState, keys: Mapping[str, Key], now: float
) -> Iterator[bytes]:
    """Decide each line in order; policy changes and agency records affect later lines.

    A line goes through the same front door as a worker's message (`streamguard.stream.intake`),
    with the same limits, and control records through the same replay rules: what the file
    decided before is remembered as the worker's tables remember it. Holds one line at a time
    (and the replay memory, one small entry per policy change or agency record).
    """
    memory = ReplayLedger()
    for line in lines:
        event = decode(line, state.version)
        if isinstance(event, Unreadable):
            decision: Decision = event.decision
        else:
            state, decision = decide_event(event, state, now, keys, memory=memory)
            entry = replay_entry_for(event, decision, now)
            if entry is not None:
                memory.remember(entry)
        yield serde.dumps(decision_summary(decision)) + b"\n"
