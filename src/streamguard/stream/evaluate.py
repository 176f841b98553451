"""`streamguard evaluate`: the engine over a JSON-lines file, one decision line per input line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

import orjson

from streamguard import serde
from streamguard.core.control import replay_entry_for
from streamguard.core.engine import decide_event, fanned
from streamguard.core.keys import Key
from streamguard.core.models import Decision, NetworkVerdict, ReadDecision, SearchDecision
from streamguard.core.policy import PolicyState
from streamguard.core.replay import ReplayLedger
from streamguard.core.verdicts import Fanned, spread_lists, spread_position
from streamguard.stream.intake import Unreadable, decode
from streamguard.stream.outputs import clamped_windows, lists_of, quarantine_kind

__all__ = ("decision_summary", "evaluate_lines")


# Verdicts are immutable and shared by the engine's cache (the same object for every search of
# a class that reaches the network), so each denied entry is encoded once and spliced in.
_ENTRIES_LIMIT: Final = 100_000


class _Entries:
    """Verdict -> its encoded `denied` entry, by identity (the verdict is held, so its id is
    not reused while the entry is); starts over when full."""

    __slots__ = ("_by_id",)

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[NetworkVerdict, orjson.Fragment]] = {}

    def denied(self, verdicts: tuple[NetworkVerdict, ...]) -> list[orjson.Fragment]:
        by_id = self._by_id
        out: list[orjson.Fragment] = []
        for verdict in verdicts:
            found = by_id.get(id(verdict))
            if found is None or found[0] is not verdict:
                if len(by_id) >= _ENTRIES_LIMIT:
                    by_id.clear()
                entry = {"agency_id": verdict.agency_id, "codes": list(verdict.codes)}
                found = by_id[id(verdict)] = (verdict, orjson.Fragment(serde.dumps(entry)))
            out.append(found[1])
        return out


def _fanned_denied(how: Fanned, entries: _Entries) -> list[orjson.Fragment]:
    """`entries.denied` of a decision made from a spread (`lists_of` gives its denied as the
    own network, if denied, then the spread's without the one at own_at), from the spread's
    entries encoded once."""
    spread = how.spread
    shared = spread.memo(
        ("evaluate", "denied"), lambda: entries.denied(spread_lists(spread).denied)
    )
    out = list(shared)
    if how.own_at is not None and spread.verdicts[how.own_at].reasons:
        del out[spread_position(spread, how.own_at)]
    if how.own.reasons:
        out[:0] = entries.denied((how.own,))
    return out


def decision_summary(decision: Decision, entries: _Entries | None = None) -> dict[str, Any]:
    """The docs/contract.md section 5 output object of one decision (its `denied` entries
    encoded already, as `orjson.Fragment`s, when `entries` is given).

    `type` is the kind the event was decided as, null for input that is no event.
    """
    allowed: list[str] = []
    denied: list[Any] = []
    if isinstance(decision, SearchDecision | ReadDecision):
        lists = lists_of(decision)
        allowed = list(lists.allowed)
        codes = list(lists.codes)
        how = fanned(decision) if isinstance(decision, SearchDecision) else None
        if entries is not None and how is not None:
            denied = _fanned_denied(how, entries)
        elif entries is not None:
            denied = entries.denied(lists.denied)
        else:
            denied = [{"agency_id": v.agency_id, "codes": list(v.codes)} for v in lists.denied]
    else:
        codes = list(decision.codes)
    kind = quarantine_kind(decision)
    summary = {
        "event_id": decision.event_id,
        "type": None if kind == "raw" else kind,
        "outcome": decision.outcome,
        "codes": codes,
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
    entries = _Entries()
    for line in lines:
        event = decode(line, state.version)
        if isinstance(event, Unreadable):
            decision: Decision = event.decision
        else:
            state, decision = decide_event(event, state, now, keys, memory=memory)
            entry = replay_entry_for(event, decision, now)
            if entry is not None:
                memory.remember(entry)
        yield serde.dumps(decision_summary(decision, entries)) + b"\n"
