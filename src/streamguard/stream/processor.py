"""Decide one batch of raw Kafka messages. No faust here: the agents feed batches in and write
back what a `BatchResult` says, so everything that matters is testable without a broker.

One `BatchProcessor` serves one agent (one stream of batches, processed strictly in order). It
wires the parts together: every message through the front door (`intake`) and the engine,
then the outputs, the audit chains (`audit`), the window counters and replay marks
(`counters`), the owner attempts (`attempts`), alerts (`alerts`), the agency-search gauges
(`gauges`) and the policy tables' revision counters (`revisions`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from streamguard.core import codes
from streamguard.core.control import registry_change, replay_entry_for, widened
from streamguard.core.engine import decide_event, fanned
from streamguard.core.keys import Key
from streamguard.core.models import (
    Agency,
    ChangeDecision,
    Decision,
    Event,
    MalformedDecision,
    NetworkVerdict,
    ReadDecision,
    Reason,
    SearchDecision,
    UpsertDecision,
)
from streamguard.core.policy import PolicyState
from streamguard.core.replay import ReplayLedger
from streamguard.core.timeutil import format_ts, parse_ts
from streamguard.core.verdicts import DecisionLists
from streamguard.settings import WorkerSettings
from streamguard.stream.alerts import (
    policy_widened_alert,
    registry_changed_alert,
    rejected_change_alert,
    threshold_alerts,
)
from streamguard.stream.attempts import (
    Attempts,
    AttemptSets,
    BatchAttempts,
    attempt_kind,
    read_attempt,
)
from streamguard.stream.audit import BatchChains
from streamguard.stream.counters import KEEP, BatchCounts, WindowCounters, mark_key
from streamguard.stream.gauges import SearchGauges
from streamguard.stream.intake import TOPIC_KINDS, Unreadable, decode
from streamguard.stream.outputs import (
    Out,
    audit_fields,
    decision_id,
    is_json_object,
    lists_of,
    quarantine_kind,
    raw_decision_id,
    raw_original,
    route,
)
from streamguard.stream.revisions import Revisions
from streamguard.stream.tables import (
    DELETED,
    TableReplayMemory,
    agency_to_value,
    replay_writes,
    settings_to_value,
)
from streamguard.stream.types import BatchResult, InMessage, MetricsSink
from streamguard.stream.windows import (
    TUMBLING_HOUR,
    TUMBLING_MINUTE,
    counter_key,
    current_start,
    expired,
    parse_counter_key,
)
from streamguard.trail.chain import plate_sha256

__all__ = (
    "DECISION_ERROR",
    "BatchProcessor",
    "mark_key",
)

log = logging.getLogger("streamguard.worker")

# Additive reason code: the engine raised on this event. The event is quarantined, not lost.
DECISION_ERROR: Final = "DECISION_ERROR"
# Roles whose messages are counted in windows: their partitions carry an offset mark.
_COUNTED_ROLES: Final = frozenset({"searches", "attempts"})
_CONTROL_KINDS: Final = frozenset({"policy_change", "agency"})
# How long after its start a search's minute and hour buckets take counts: `windows.expired`
# with the keep of `KEEP`, as one number.
_MINUTE_LIFE: Final = TUMBLING_MINUTE.step + max(TUMBLING_MINUTE.grace, KEEP.get("1m", 0))
_HOUR_LIFE: Final = TUMBLING_HOUR.step + max(TUMBLING_HOUR.grace, KEEP.get("1h", 0))


@dataclass(slots=True)
class _Batch:
    """Working state of one batch."""

    result: BatchResult
    counts: BatchCounts
    chains: BatchChains
    attempts: BatchAttempts
    now: float
    decided_at: str
    received: float
    # Control records decided in this batch: decided-record keys and subjects whose last
    # applied ts moved (their table values are written with the batch).
    decided_keys: dict[str, int]  # -> the partition it was read from
    moved_subjects: dict[str, int]
    # The batch's decisions, reported to the metrics once at its end: how many of each
    # (kind, outcome, codes), the networks allowed and denied, latencies and event lags.
    tally: dict[tuple[str, str, tuple[str, ...]], int]
    allowed: int = 0
    denied: int = 0
    seconds: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)


class BatchProcessor:
    """Decides batches for one agent. `state` is the policy snapshot decisions read."""

    def __init__(
        self,
        settings: WorkerSettings,
        state: PolicyState,
        keys: Mapping[str, Key],
        salt: bytes,
        metrics: MetricsSink,
        clock: Callable[[], float],
        *,
        replay: TableReplayMemory | None = None,
    ) -> None:
        """`replay`: the worker's replay tables; the processor keeps what it decided on top of
        them, so a replay in the same batch, or before the tables have it, is refused too."""
        self.settings = settings
        self.state = state
        self.keys = keys
        self.replay_tables = replay
        self.replay = ReplayLedger(replay)
        self.salt = salt
        self.metrics = metrics
        self.clock = clock
        self.windows = WindowCounters()
        self.gauges = SearchGauges(metrics)
        self.revisions = Revisions()
        self.attempt_sets = AttemptSets()

    # --- entry points ------------------------------------------------------------------------

    def seed_counters(self, items: Iterable[tuple[Any, Any]]) -> None:
        """Take over the counters of the partitions this worker now owns (after a restart or a
        rebalance): their keys expire like the ones written here, and the agency-search gauges
        show the restored counts instead of only what was counted since."""
        self.windows.forget_keys()
        self.gauges.clear()
        for key, value in items:
            parsed = parse_counter_key(key) if isinstance(key, str) else None
            if parsed is None:
                continue
            partition, metric, window, start, agency_id = parsed
            self.windows.remember(partition, window, start, key)
            if metric == "searches" and isinstance(value, int):
                self.gauges.set(window, start, agency_id, value)

    def set_revisions(self, revisions: Mapping[str, int]) -> None:
        """The revision counters as the tables hold them (called when the snapshot is rebuilt)."""
        self.revisions.reset(revisions)

    def publish_pending_gauges(self, now: float) -> bool:
        """Publish the agency-search gauges if any count changed since the last publication.

        Returns whether it published. Called after batches (throttled) and by a timer.
        """
        return self.gauges.publish_pending(now)

    def process(
        self,
        batch: Iterable[InMessage],
        *,
        now: float,
        counters: Mapping[str, int],
        heads: Mapping[str, Any],
    ) -> BatchResult:
        """Decide every message of the batch, in order; never raises for one bad message."""
        result = BatchResult()
        work = _Batch(
            result,
            BatchCounts(counters, result.counters),
            BatchChains(heads),
            BatchAttempts(),
            now,
            format_ts(now),
            self.clock(),
            {},
            {},
            {},
        )
        touched: set[int] = set()
        for msg in batch:
            touched.add(msg.partition)
            if msg.role == "attempts":
                self._count_attempts(msg, work)
            else:
                self._decide_one(msg, work)
            if msg.role in _COUNTED_ROLES:
                work.counts.counted_through(msg.partition, msg.offset)
        work.counts.write_marks()
        for (owner_id, kind), n in work.attempts.flush_groups().items():
            self.metrics.observe_owner_attempt(owner_id, kind, n)
        result.messages.extend(work.attempts.messages())
        for record in threshold_alerts(work.counts.before, result.counters, self.settings):
            self._alert(record, work)
        for partition in touched:
            for key in self.windows.expire(partition):
                result.counters.pop(key, None)
                result.expired.append(key)
        result.heads.update(work.chains.heads())
        self._record_replay(work)
        self.metrics.observe_decisions(
            work.tally, work.allowed, work.denied, work.seconds, work.lags
        )
        self.gauges.publish_due(work.received)
        return result

    # --- decisions ---------------------------------------------------------------------------

    def _decide_one(self, msg: InMessage, work: _Batch) -> None:
        lists: DecisionLists | None
        try:
            original, decision, lists, plate, event_ts = self._decide(msg, work)
        except Exception as exc:  # one bad event must not stop the partition
            # Type and position only: the exception text may quote the event, plate included.
            log.error(
                "decision failed on %s[%d]@%d: %s",
                msg.topic,
                msg.partition,
                msg.offset,
                type(exc).__name__,
            )
            # Nothing read from a message the engine failed on is trusted: no event id, and
            # the quarantine keeps its bytes.
            original = raw_original(msg.value or b"")
            decision = MalformedDecision(
                None,
                TOPIC_KINDS.get(msg.role, "agency"),
                Reason(
                    DECISION_ERROR,
                    "StreamGuard worker",
                    f"the event could not be decided ({type(exc).__name__}); "
                    "it is quarantined and not shared",
                ),
                self.state.version,
            )
            lists = None
            plate = event_ts = None
        out_kind = quarantine_kind(decision)
        if decision.event_id is not None:
            did = decision_id(out_kind, _id_basis(decision, original, msg))
        else:
            did = raw_decision_id(msg.topic, msg.partition, msg.offset)
        work.result.messages.extend(
            route(
                original,
                decision,
                did,
                work.decided_at,
                fallback_key=did,
                lists=lists,
                max_bytes=self.settings.max_message_bytes,
            )
        )
        fields = audit_fields(
            original,
            decision,
            did,
            work.decided_at,
            plate_sha256(plate, self.salt) if plate else None,
            lists,
        )
        outcome = decision.outcome
        if isinstance(decision, UpsertDecision) and decision.deleted:
            outcome = fields["outcome"] = "deleted"
        work.result.audit.append(work.chains.append(msg.role, msg.partition, fields))
        key = (out_kind, outcome, decision.codes if lists is None else lists.codes)
        tally = work.tally
        tally[key] = tally.get(key, 0) + 1
        if lists is not None:
            work.allowed += len(lists.allowed)
            work.denied += len(lists.denied)
        work.seconds.append(self.clock() - work.received)
        if event_ts is not None:
            work.lags.append(work.now - event_ts)

    def _decide(
        self, msg: InMessage, work: _Batch
    ) -> tuple[Any, Decision, DecisionLists | None, str | None, float | None]:
        """(what outputs echo, the decision, its lists, the plate to hash, the event's ts) of
        `msg`."""
        event = decode(msg.value, self.state.version, role=msg.role, key=msg.key)
        if isinstance(event, Unreadable):
            return event.original, event.decision, None, None, None
        event_ts = parse_ts(event.body.get("ts")) if event.kind != "agency" else None
        counted_for, rate_limited = None, False
        if event.kind == "search_request":
            counted_for, rate_limited = self._rate_check(event, event_ts, msg, work)
        before = self.state
        source = None
        if event.kind in _CONTROL_KINDS:
            source = f"{msg.topic}-{msg.partition}@{msg.offset}"
        self.state, decision = decide_event(
            event,
            self.state,
            work.now,
            self.keys,
            memory=self.replay,
            rate_limited=rate_limited,
            source=source,
        )
        if source is not None:
            self._remember(event, decision, source, msg.partition, work)
        lists = None
        if isinstance(decision, SearchDecision | ReadDecision):
            lists = lists_of(decision)  # once: every output and count reads them
        if (
            isinstance(decision, SearchDecision)
            and lists is not None
            and counted_for is not None
            and event_ts is not None
        ):
            self._count_search(decision, lists, counted_for, event_ts, msg.partition, work)
        elif isinstance(decision, ChangeDecision):
            self._changed(decision, event, before, msg.partition, work)
        elif isinstance(decision, UpsertDecision):
            self._registered(decision, event, before, source or "", msg.partition, work)
        return event.body, decision, lists, _plate(event), event_ts

    def _rate_check(
        self, event: Event, ts: float | None, msg: InMessage, work: _Batch
    ) -> tuple[str | None, bool]:
        """(the requester this search is counted for, whether it passed the rate limit)."""
        requester = event.body.get("requester")
        requester_id = requester.get("agency_id") if is_json_object(requester) else None
        if ts is None or not isinstance(requester_id, str):
            return None, False
        # A replayed search (after a crash) is decided again but never counted again, and the
        # stored count of a replayed search already includes the search itself.
        replayed = work.counts.replayed(msg.partition, msg.offset)
        limit = self.settings.rate_limit_per_minute
        rate_limited = False
        if limit > 0:
            minute = current_start(ts, TUMBLING_MINUTE)
            minute_key = counter_key(msg.partition, "searches", requester_id, "1m", minute)
            rate_limited = work.counts.count(minute_key) + (0 if replayed else 1) > limit
        return (None if replayed else requester_id), rate_limited

    def _count_search(
        self,
        decision: SearchDecision,
        lists: DecisionLists,
        requester_id: str,
        ts: float,
        partition: int,
        work: _Batch,
    ) -> None:
        windows, counts, gauges = self.windows, work.counts, self.gauges
        watermark = windows.advance(partition, ts)
        denied = len(lists.denied)
        minute = current_start(ts, TUMBLING_MINUTE)
        hour = current_start(ts, TUMBLING_HOUR)
        if minute + _MINUTE_LIFE > watermark:
            n = windows.count(counts, partition, "searches", requester_id, "1m", minute, 1)
            gauges.set("1m", minute, requester_id, n)
            if denied:
                windows.count(counts, partition, "denied", requester_id, "1m", minute, denied)
        # else too late: that window is closed and may already be deleted
        if hour + _HOUR_LIFE > watermark:
            n = windows.count(counts, partition, "searches", requester_id, "1h", hour, 1)
            gauges.set("1h", hour, requester_id, n)
            if denied:
                windows.count(counts, partition, "denied", requester_id, "1h", hour, denied)
            if "immigration" in decision.categories:
                windows.count(counts, partition, "immigration", requester_id, "1h", hour, 1)
        if requester_id not in self.state.agencies:
            return
        how = fanned(decision)
        attempted = lists.denied
        if how is not None:
            # Retention and search-level reasons never add a recipient code: the attempts of
            # every spread of a pool are its root's.
            root, agencies = how.spread.root, self.state.agencies
            sets = self.attempt_sets
            owners = root.memo("attempts", lambda: sets.of(_attempts(root.verdicts, agencies)))
            without = None
            if how.own_at is not None:
                gone = root.verdicts[how.own_at]
                kind = attempt_kind(gone) if gone.reasons else None
                if kind is not None and gone.agency_id in agencies:
                    without = (gone.agency_id, kind)
            work.attempts.add_group(owners, hour, ts, without)
            attempted = (how.own,) if how.own.reasons else ()
        for verdict in attempted:  # an allowed verdict carries no code, so is no attempt
            kind = attempt_kind(verdict)
            if kind is not None and verdict.agency_id in self.state.agencies:
                self.metrics.observe_owner_attempt(verdict.agency_id, kind)
                work.attempts.add(verdict.agency_id, hour, ts)

    def _remember(
        self, event: Event, decision: Decision, source: str, partition: int, work: _Batch
    ) -> None:
        """Keep a decided control record in the replay memory (written with the batch)."""
        entry = replay_entry_for(event, decision, work.now, source=source)
        if entry is None:
            return
        self.replay.remember(entry)
        work.decided_keys[entry.key] = partition
        if entry.applied_ts is not None:
            work.moved_subjects[entry.subject] = partition

    def _record_replay(self, work: _Batch) -> None:
        decided, applied = replay_writes(
            self.replay, self.replay_tables, work.decided_keys, work.moved_subjects
        )
        for key, value in decided.items():
            work.result.control_decided[key] = (work.decided_keys[key], value)
        for subject, groups in applied.items():
            work.result.control_applied[subject] = (work.moved_subjects[subject], groups)

    def _changed(
        self,
        decision: ChangeDecision,
        event: Event,
        before: PolicyState,
        partition: int,
        work: _Batch,
    ) -> None:
        self.metrics.observe_policy_change(decision.outcome)
        ts = event.body.get("ts")
        at = ts if isinstance(ts, str) else work.decided_at
        if decision.applied and decision.agency_id is not None:
            owner = decision.agency_id
            after = self.state.settings_for(owner)
            work.result.settings[owner] = (partition, settings_to_value(after))
            self.revisions.bump("policy", partition, work.result.revisions)
            widenings = widened(before.settings_for(owner), after)
            if widenings:
                self._alert(policy_widened_alert(decision, at, widenings), work)
        elif not decision.applied:
            self._alert(rejected_change_alert(decision, at), work)

    def _registered(
        self,
        decision: UpsertDecision,
        event: Event,
        before: PolicyState,
        source: str,
        partition: int,
        work: _Batch,
    ) -> None:
        if not decision.applied:
            return  # quarantined and audited by the caller; nothing changes
        agency_id = decision.event_id
        agency = self.state.agencies.get(agency_id)
        if decision.deleted or agency is None:
            work.result.registry[agency_id] = (partition, dict(DELETED))
        else:
            work.result.registry[agency_id] = (partition, agency_to_value(agency))
        self.revisions.bump("agencies", partition, work.result.revisions)
        change = registry_change(before.agencies.get(agency_id), agency)
        if change is not None:
            ts = event.body.get("ts")
            at = ts if isinstance(ts, str) else work.decided_at
            # A tombstone has no ts: it is named by where it was read (same on a redelivery).
            record_id = f"{agency_id}@{ts}" if isinstance(ts, str) else f"{agency_id}@{source}"
            self._alert(registry_changed_alert(agency_id, record_id, at, change), work)

    def _alert(self, record: dict[str, Any], work: _Batch) -> None:
        work.result.messages.append(Out("alerts", record["agency_id"], record))
        self.metrics.observe_alert(record["kind"])

    # --- owner attempts ----------------------------------------------------------------------

    def _count_attempts(self, msg: InMessage, work: _Batch) -> None:
        record = read_attempt(msg.value)
        if record is None:
            # Internal topic, written only by workers: a bad record is a bug, said loudly.
            log.error(
                "unreadable owner-attempt record at %s[%d]@%d; not counted",
                msg.topic,
                msg.partition,
                msg.offset,
            )
            return
        if work.counts.replayed(msg.partition, msg.offset):
            return
        watermark = self.windows.advance(msg.partition, record.ts)
        if expired(record.start, TUMBLING_HOUR, watermark):
            return
        self.windows.count(
            work.counts,
            msg.partition,
            "attempts",
            record.owner,
            TUMBLING_HOUR.name,
            record.start,
            record.n,
        )


def _attempts(verdicts: tuple[NetworkVerdict, ...], agencies: Mapping[str, Agency]) -> Attempts:
    """The (owner, kind) of every verdict that is an attempt on a registry owner."""
    found = []
    for verdict in verdicts:
        kind = attempt_kind(verdict) if verdict.reasons else None
        if kind is not None and verdict.agency_id in agencies:
            found.append((verdict.agency_id, kind))
    return tuple(found)


def _id_basis(decision: Decision, original: Any, msg: InMessage) -> str:
    """What a decision's id is made of: the event id, except for control records.

    A replayed control record carries the id of the record it copies, but it is a decision of
    its own (a rejection that consumers must not drop as a copy of the original), so it is
    named by where it was read. An agency record has no id of its own: one agency's record is
    named by its `ts`, a tombstone by where it was read.
    """
    assert decision.event_id is not None
    if isinstance(decision, SearchDecision | ReadDecision):
        return decision.event_id  # the common case, without the test below
    where = f"{decision.event_id}@{msg.topic}:{msg.partition}:{msg.offset}"
    if isinstance(decision, ChangeDecision | UpsertDecision | MalformedDecision) and (
        codes.REPLAYED_CHANGE in decision.codes
    ):
        return where
    if isinstance(decision, UpsertDecision):
        ts = original.get("ts") if is_json_object(original) else None
        if decision.deleted or not isinstance(ts, str):
            return where
        return f"{decision.event_id}@{ts}"
    return decision.event_id


def _plate(event: Event) -> str | None:
    """The plate of a search's query or of a read, hashed into its audit record."""
    if event.kind == "search_request":
        query = event.body.get("query")
        plate = query.get("plate") if is_json_object(query) else None
    elif event.kind == "plate_read":
        plate = event.body.get("plate")
    else:
        return None
    return plate if isinstance(plate, str) else None
