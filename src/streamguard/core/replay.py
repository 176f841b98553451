"""Replay rules for signed control records (docs/contract.md section 2a). Pure.

A signature proves who signed a record, not when it was sent: an old signed
`national_lookup: true` is as valid today as the day it was signed. So a control record is
refused when

* it was decided once already (applied or rejected): `REPLAYED_CHANGE`;
* its `ts` is not later than the `ts` of the last record applied to the same owner and setting
  (`share_with` and `unshare_with` count as one; every agency record of one agency counts as one
  setting, `registry`): `REPLAYED_CHANGE`;
* a policy change is dated more than `MAX_CHANGE_AGE` before the deciding clock: the memory above
  is all StreamGuard knows of what was sent, and a change older than the policy topic keeps
  cannot be told from one kept back and replayed into a deployment that never saw it
  (`REPLAYED_CHANGE`; docs/security.md);
* it is dated more than `FUTURE_SKEW` after the deciding clock: `FUTURE_DATED` (a change dated
  2099 would otherwise outrank every later change of its owner and setting).

The same message read again after a crash (same `topic-partition@offset`, which only the
broker assigns) is a redelivery, not a replay: it keeps its first decision. Applied, it is
applied again, unless a later change of its setting was applied since (re-applying it would
undo that one); rejected, it stays rejected (`kept_rejection`) even where its checks would
pass now.

What was decided lives behind `ReplayMemory`: an in-process `ReplayLedger` for
`streamguard evaluate`, changelogged tables in the worker, so a restart, a rebalance or a new
worker refuses the same replays. Deciding reads the memory and returns a `ReplayEntry`; the
caller writes it, so a decision never half-writes what it remembers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from streamguard.core import codes
from streamguard.core.models import Reason
from streamguard.core.timeutil import format_ts

__all__ = (
    "FUTURE_SKEW",
    "MAX_CHANGE_AGE",
    "REGISTRY_GROUP",
    "ControlRecord",
    "Decided",
    "ReplayEntry",
    "ReplayLedger",
    "ReplayMemory",
    "first_decision",
    "kept_rejection",
    "replay_entry",
    "replay_reasons",
    "setting_group",
    "superseded",
)

FUTURE_SKEW: Final = 300.0  # the contract's 5 minutes of clock difference
# Kafka's default retention of the policy topic (7 days): older changes are no longer on it.
MAX_CHANGE_AGE: Final = 7 * 86_400.0
REGISTRY_GROUP: Final = "registry"
_CITATION: Final = "StreamGuard wire contract v1.1, section 2a (replays)"


def setting_group(setting: str) -> str:
    """The setting whose last applied `ts` a change of `setting` must pass."""
    return "share_with" if setting == "unshare_with" else setting


@dataclass(frozen=True, slots=True)
class ControlRecord:
    """What the replay rules read of a policy_change or an agency record."""

    key: str  # identity in the decided-record memory
    subject: str  # the owner (policy change) or the agency (agency record)
    group: str  # setting group, or REGISTRY_GROUP
    ts: float
    max_age: float | None  # MAX_CHANGE_AGE for policy changes; None for agency records
    # Where the record was read (`topic-partition@offset`): the same message seen again after
    # a crash is a redelivery, not a replay. None when there is no such place (evaluate lines).
    source: str | None = None

    @classmethod
    def of_change(
        cls, change_id: str, agency_id: str, setting: str, ts: float, source: str | None = None
    ) -> ControlRecord:
        return cls(
            f"change:{change_id}", agency_id, setting_group(setting), ts, MAX_CHANGE_AGE, source
        )

    @classmethod
    def of_agency(cls, agency_id: str, ts: float, source: str | None = None) -> ControlRecord:
        # Agency records carry no id: one agency's record at one instant is one record. The
        # compacted agencies topic keeps old records for good, so there is no age limit.
        return cls(
            f"agency:{agency_id}@{format_ts(ts)}", agency_id, REGISTRY_GROUP, ts, None, source
        )


@dataclass(frozen=True, slots=True)
class Decided:
    """What the memory keeps of one decided control record."""

    applied: bool
    decided_at: float
    source: str | None = None

    def to_value(self) -> dict[str, Any]:
        return {"applied": self.applied, "decided_at": self.decided_at, "source": self.source}

    @classmethod
    def from_value(cls, value: object) -> Decided | None:
        """From a table value; None when unreadable (the caller treats that as decided)."""
        if not isinstance(value, Mapping):
            return None
        applied, decided_at, source = (
            value.get("applied"),
            value.get("decided_at"),
            value.get("source"),
        )
        if not isinstance(applied, bool) or isinstance(decided_at, bool):
            return None
        if not isinstance(decided_at, int | float) or not (
            source is None or isinstance(source, str)
        ):
            return None
        return cls(applied, float(decided_at), source)


class ReplayMemory(Protocol):
    """What was decided before: the only state the replay rules read."""

    def decided(self, key: str) -> Decided | None: ...

    def last_applied(self, subject: str, group: str) -> float | None: ...


@dataclass(frozen=True, slots=True)
class ReplayEntry:
    """What to remember of one decision: written by the caller after deciding."""

    key: str
    decided: Decided
    subject: str
    group: str
    applied_ts: float | None  # the record's ts when applied; None when rejected


def first_decision(memory: ReplayMemory, record: ControlRecord) -> Decided | None:
    """How `record` was decided when its own message (same `source`) was read before: a
    redelivery after a crash. None for a record never decided, or decided as read elsewhere."""
    before = memory.decided(record.key)
    return before if _same_message(before, record) else None


def _same_message(before: Decided | None, record: ControlRecord) -> bool:
    return before is not None and record.source is not None and before.source == record.source


def superseded(memory: ReplayMemory, record: ControlRecord) -> bool:
    """A later record of the same subject and setting was applied after `record`."""
    last = memory.last_applied(record.subject, record.group)
    return last is not None and record.ts < last


def kept_rejection(first: Decided, subject: str) -> Reason:
    """Why a redelivered record that was rejected stays rejected where its checks would pass
    now (the registry or the clock moved on): a record is decided once, and its first
    decision is the one consumers and the audit trail already hold."""
    return Reason(
        codes.REPLAYED_CHANGE,
        _CITATION,
        f"this message was rejected at {format_ts(first.decided_at)}; a redelivered record "
        "keeps its first decision",
        subject,
    )


def replay_reasons(memory: ReplayMemory, record: ControlRecord, now: float) -> tuple[Reason, ...]:
    """The replay codes that apply to `record`, decided at `now` (module docstring)."""
    found: list[Reason] = []
    subject = record.subject
    before = memory.decided(record.key)
    redelivered = _same_message(before, record)
    if before is not None and not redelivered:
        found.append(
            Reason(
                codes.REPLAYED_CHANGE,
                _CITATION,
                f"this record was {'applied' if before.applied else 'rejected'} at "
                f"{format_ts(before.decided_at)}; a decided record is never decided again",
                subject,
            )
        )
    last = memory.last_applied(subject, record.group)
    # A redelivered record that was applied is its own last change: equal is not stale then.
    stale = last is not None and (record.ts < last if redelivered else record.ts <= last)
    if stale and last is not None:
        found.append(
            Reason(
                codes.REPLAYED_CHANGE,
                _CITATION,
                f"dated {format_ts(record.ts)}, not later than the change of {record.group} "
                f"applied for {subject} dated {format_ts(last)}",
                subject,
            )
        )
    if record.max_age is not None and record.ts < now - record.max_age:
        found.append(
            Reason(
                codes.REPLAYED_CHANGE,
                _CITATION,
                f"dated {format_ts(record.ts)}, more than {record.max_age / 86_400:g} days before "
                "the deciding clock; a change that old cannot be told from a replay",
                subject,
            )
        )
    if record.ts > now + FUTURE_SKEW:
        found.append(
            Reason(
                codes.FUTURE_DATED,
                _CITATION,
                f"dated {format_ts(record.ts)}, more than {FUTURE_SKEW / 60:g} minutes after the "
                f"deciding clock ({format_ts(now)})",
                subject,
            )
        )
    return tuple(found)


def replay_entry(record: ControlRecord, *, applied: bool, now: float) -> ReplayEntry:
    return ReplayEntry(
        record.key,
        Decided(applied, now, record.source),
        record.subject,
        record.group,
        record.ts if applied else None,
    )


class ReplayLedger:
    """An in-process ReplayMemory (`streamguard evaluate`, tests), optionally over another.

    Mutable on purpose: it is the state the caller keeps, like the worker's tables, and
    `remember` is its only writer. With `base`, reads fall through to it and writes stay here,
    so a worker's batch sees its own earlier decisions before they reach its tables.
    """

    __slots__ = ("_applied", "_decided", "base")

    def __init__(self, base: ReplayMemory | None = None) -> None:
        self.base = base
        self._decided: dict[str, Decided] = {}
        # Last applied ts per group, by subject: a batch writes its subjects' rows, and a flat
        # (subject, group) map scanned per subject made n changes cost n x (all so far).
        self._applied: dict[str, dict[str, float]] = {}

    def decided(self, key: str) -> Decided | None:
        found = self._decided.get(key)
        if found is None and self.base is not None:
            return self.base.decided(key)
        return found

    def last_applied(self, subject: str, group: str) -> float | None:
        found = self._applied.get(subject, {}).get(group)
        if found is None and self.base is not None:
            return self.base.last_applied(subject, group)
        return found

    def remember(self, entry: ReplayEntry) -> None:
        self._decided[entry.key] = entry.decided
        if entry.applied_ts is not None:
            last = self.last_applied(entry.subject, entry.group)
            if last is None or entry.applied_ts > last:
                self._applied.setdefault(entry.subject, {})[entry.group] = entry.applied_ts

    @property
    def decided_writes(self) -> Mapping[str, Decided]:
        """What `remember` added here (not in `base`)."""
        return self._decided

    @property
    def applied_writes(self) -> Mapping[tuple[str, str], float]:
        return {
            (subject, group): ts
            for subject, groups in self._applied.items()
            for group, ts in groups.items()
        }

    def applied_writes_of(self, subject: str) -> Mapping[str, float]:
        """What `remember` added here for `subject`: last applied ts per group."""
        return self._applied.get(subject, {})
