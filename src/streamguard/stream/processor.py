"""Decide one batch of raw Kafka messages. No faust here: the agents feed batches in and write
back what a `BatchResult` says, so everything that matters is testable without a broker.

One `BatchProcessor` serves one agent (one stream of batches, processed strictly in order).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from streamguard import serde
from streamguard.core import codes
from streamguard.core.engine import decide_read, decide_search, event_kind
from streamguard.core.models import (
    Agency,
    ChangeDecision,
    Decision,
    MalformedDecision,
    ReadDecision,
    Reason,
    SearchDecision,
    UpsertDecision,
)
from streamguard.core.policy import PolicyState, apply_change
from streamguard.core.registry import agency_from_record
from streamguard.core.timeutil import format_ts, parse_ts
from streamguard.settings import WorkerSettings
from streamguard.stream import alerts
from streamguard.stream.outputs import (
    Out,
    alert_record,
    audit_fields,
    decision_id,
    quarantine_kind,
    raw_decision_id,
    raw_original,
    route,
)
from streamguard.stream.tables import DELETED, agency_to_value, settings_to_value
from streamguard.stream.types import BatchResult, InMessage, MetricsSink
from streamguard.stream.windows import (
    DAY,
    HOPPING_DAY,
    HOUR,
    TUMBLING_HOUR,
    TUMBLING_MINUTE,
    WINDOWS,
    WindowSpec,
    bucket_start,
    counter_key,
    crossed,
    expired,
    parse_counter_key,
)
from streamguard.trail.chain import ChainHead, build_record, genesis, plate_sha256

__all__ = (
    "DECISION_ERROR",
    "BatchProcessor",
    "mark_key",
)

log = logging.getLogger("streamguard.worker")

_CONTRACT: Final = "StreamGuard wire contract v1"
# Additive reason code: the engine raised on this event. The event is quarantined, not lost.
DECISION_ERROR: Final = "DECISION_ERROR"
# Hourly buckets feed the 24 h hopping windows, so they live a day past their end.
_KEEP: Final = {TUMBLING_HOUR.name: DAY}
# Roles whose messages are counted in windows: their partitions carry an offset mark.
_COUNTED_ROLES: Final = frozenset({"searches", "attempts"})
_EXPECTED_KIND: Final = {
    "searches": "search_request",
    "reads": "plate_read",
    "policy": "policy_change",
}


@dataclass(slots=True)
class _Batch:
    """Working state of one batch: counter reads go through `pending` before the table."""

    result: BatchResult
    counters: Mapping[str, int]
    heads: Mapping[str, Any]
    now: float
    decided_at: str
    received: float
    before: dict[str, int] = field(default_factory=dict)
    chains: dict[str, ChainHead] = field(default_factory=dict)
    attempts: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    counted: dict[int, int] = field(default_factory=dict)  # partition -> last offset counted

    def replayed(self, msg: InMessage) -> bool:
        """Whether the stored counters already include this message (see `mark_key`)."""
        mark = self.counters.get(mark_key(msg.partition))
        return isinstance(mark, int) and msg.offset <= mark

    def counted_through(self, msg: InMessage) -> None:
        self.counted[msg.partition] = max(self.counted.get(msg.partition, -1), msg.offset)

    def count(self, key: str) -> int:
        pending = self.result.counters.get(key)
        if pending is not None:
            return pending
        value = self.counters.get(key, 0)
        return int(value) if isinstance(value, int) else 0

    def add(self, key: str, n: int) -> None:
        current = self.count(key)
        self.before.setdefault(key, current)
        self.result.counters[key] = current + n


class BatchProcessor:
    """Decides batches for one agent. `state` is the policy snapshot decisions read."""

    def __init__(
        self,
        settings: WorkerSettings,
        state: PolicyState,
        keys: Mapping[str, bytes],
        salt: bytes,
        metrics: MetricsSink,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.state = state
        self.keys = keys
        self.salt = salt
        self.metrics = metrics
        self.clock = clock
        self.watermarks: dict[int, float] = {}  # partition -> newest event ts seen
        # partition -> (window, bucket start) -> live counter keys: expiry looks at buckets,
        # not at every key (a day of hourly counters is tens of thousands of keys).
        self._known: dict[int, dict[tuple[str, int], set[str]]] = defaultdict(dict)
        self._cleaned: dict[int, int] = {}  # partition -> minute of the last expiry pass
        self._gauge: dict[tuple[str, int], dict[str, int]] = {}
        self._gauge_watermark = 0.0
        self._gauges_published = 0.0  # clock() of the last gauge update
        self._gauges_pending = False  # counts changed since the last publication
        self._revisions: dict[str, int] = {}  # revision counters as last seen or written

    # --- entry points ------------------------------------------------------------------------

    def seed_counters(self, items: Iterable[tuple[Any, Any]]) -> None:
        """Take over the counters of the partitions this worker now owns (after a restart or a
        rebalance): their keys expire like the ones written here, and the agency-search gauges
        show the restored counts instead of only what was counted since."""
        self._known.clear()
        self._gauge.clear()
        for key, value in items:
            parsed = parse_counter_key(key) if isinstance(key, str) else None
            if parsed is None:
                continue
            partition, metric, window, start, agency_id = parsed
            self._remember(partition, window, start, key)
            if metric == "searches" and isinstance(value, int) and window in ("1m", "1h"):
                self._gauge.setdefault((window, start), {})[agency_id] = value
                self._gauge_watermark = max(self._gauge_watermark, start)
                self._gauges_pending = True

    def process(
        self,
        batch: Iterable[InMessage],
        *,
        now: float,
        counters: Mapping[str, int],
        heads: Mapping[str, Any],
    ) -> BatchResult:
        """Decide every message of the batch, in order; never raises for one bad message."""
        work = _Batch(BatchResult(), counters, heads, now, format_ts(now), self.clock())
        touched: set[int] = set()
        for msg in batch:
            touched.add(msg.partition)
            if msg.role == "attempts":
                self._attempt(msg, work)
            else:
                self._decide_one(msg, work)
            if msg.role in _COUNTED_ROLES:
                work.counted_through(msg)
        for partition, offset in work.counted.items():
            # Written with the counters, in the same changelog partition and batch; never
            # lowered, or the rest of a replay that spans batches would be counted again.
            stored = work.counters.get(mark_key(partition))
            if not isinstance(stored, int) or offset > stored:
                work.result.counters[mark_key(partition)] = offset
        self._flush_attempts(work)
        self._alerts(work)
        for partition in touched:
            self._expire(partition, work)
        for chain, head in work.chains.items():
            work.result.heads[chain] = (_chain_partition(chain), head.as_dict())
        self._publish_gauges(work)
        return work.result

    # --- decisions ---------------------------------------------------------------------------

    def _decide_one(self, msg: InMessage, work: _Batch) -> None:
        kind = _EXPECTED_KIND.get(msg.role, "agency")
        original: Any = raw_original(msg.value or b"")
        plate: str | None = None
        event_ts: float | None = None
        try:
            original, decision, plate, event_ts = self._decide(msg, work)
        except Exception as exc:  # one bad event must not stop the partition
            # Type and position only: the exception text may quote the event, plate included.
            log.error(
                "decision failed on %s[%d]@%d: %s",
                msg.topic,
                msg.partition,
                msg.offset,
                type(exc).__name__,
            )
            decision = MalformedDecision(
                _event_id(original, kind),
                kind,
                Reason(
                    DECISION_ERROR,
                    "StreamGuard worker",
                    f"the event could not be decided ({type(exc).__name__}); "
                    "it is quarantined and not shared",
                ),
                self.state.version,
            )
            plate = None
        if decision.event_id is not None:
            did = decision_id(quarantine_kind(decision), decision.event_id)
        else:
            did = raw_decision_id(msg.topic, msg.partition, msg.offset)
        out_kind = quarantine_kind(decision)
        work.result.messages.extend(
            route(original, decision, did, work.decided_at, fallback_key=did)
        )
        fields = audit_fields(
            original,
            decision,
            did,
            work.decided_at,
            plate_sha256(plate, self.salt) if plate else None,
        )
        outcome = decision.outcome
        if isinstance(decision, UpsertDecision) and decision.deleted:
            outcome = fields["outcome"] = "deleted"
        self._audit(f"{msg.role}-{msg.partition}", fields, work)
        allowed = denied = 0
        if isinstance(decision, SearchDecision | ReadDecision):
            allowed, denied = len(decision.allowed), len(decision.denied)
        self.metrics.observe_decision(
            out_kind,
            outcome,
            decision.codes,
            allowed,
            denied,
            self.clock() - work.received,
            work.now - event_ts if event_ts is not None else None,
        )

    def _decide(
        self, msg: InMessage, work: _Batch
    ) -> tuple[Any, Decision, str | None, float | None]:
        if msg.role == "agencies":
            return self._agency(msg, work)
        original, problem = _parse(msg)
        if problem is not None:
            return original, problem(self.state.version), None, None
        expected = _EXPECTED_KIND[msg.role]
        kind = event_kind(original)
        if kind != expected:
            return (
                original,
                MalformedDecision(
                    _event_id(original, expected),
                    "raw" if kind == "raw" else kind,
                    Reason(
                        codes.SCHEMA_INVALID,
                        f"{_CONTRACT}, section 1",
                        f"a {kind} event on the {msg.role} topic; expected {expected}",
                    ),
                    self.state.version,
                ),
                None,
                None,
            )
        event_ts = parse_ts(original.get("ts"))
        if msg.role == "searches":
            decision = self._search(original, event_ts, msg, work)
            query = original.get("query")
            plate = query.get("plate") if isinstance(query, Mapping) else None
            return original, decision, plate if isinstance(plate, str) else None, event_ts
        if msg.role == "reads":
            read = decide_read(original, self.state, work.now)
            plate = original.get("plate")
            return original, read, plate if isinstance(plate, str) else None, event_ts
        return original, self._change(original, msg.partition, work), None, event_ts

    def _search(
        self, event: Mapping[str, Any], ts: float | None, msg: InMessage, work: _Batch
    ) -> SearchDecision | MalformedDecision:
        requester = event.get("requester")
        requester_id = requester.get("agency_id") if isinstance(requester, Mapping) else None
        limit = self.settings.rate_limit_per_minute
        rate_limited = False
        minute_key = None
        # A replayed search (after a crash) is decided again but never counted again.
        replayed = work.replayed(msg)
        if ts is not None and isinstance(requester_id, str):
            minute_key = counter_key(
                msg.partition,
                "searches",
                requester_id,
                "1m",
                bucket_start(ts, TUMBLING_MINUTE.step),
            )
            # The stored count of a replayed search already includes the search itself.
            mine = 0 if replayed else 1
            rate_limited = limit > 0 and work.count(minute_key) + mine > limit
        decision = decide_search(event, self.state, work.now, rate_limited=rate_limited)
        counted = minute_key is not None and not replayed
        if counted and isinstance(decision, SearchDecision) and ts is not None:
            self._count_search(decision, str(requester_id), ts, msg.partition, work)
        return decision

    def _count_search(
        self, decision: SearchDecision, requester_id: str, ts: float, partition: int, work: _Batch
    ) -> None:
        watermark = max(self.watermarks.get(partition, ts), ts)
        self.watermarks[partition] = watermark
        denied = len(decision.denied)
        immigration = "immigration" in decision.categories
        for spec in (TUMBLING_MINUTE, TUMBLING_HOUR):
            start = bucket_start(ts, spec.step)
            if expired(start, spec, watermark, keep=_KEEP.get(spec.name, 0)):
                continue  # too late: that window is closed and may already be deleted
            self._count(work, partition, "searches", requester_id, spec, start, 1)
            if denied:
                self._count(work, partition, "denied", requester_id, spec, start, denied)
            if immigration and spec is TUMBLING_HOUR:
                self._count(work, partition, "immigration", requester_id, spec, start, 1)
        requester = self.state.agencies.get(requester_id)
        if requester is None:
            return
        hour = bucket_start(ts, HOUR)
        for verdict in decision.verdicts:
            owner = self.state.agencies.get(verdict.agency_id)
            if owner is None or owner.agency_id == requester_id or not _foreign(requester, owner):
                continue
            attempt_kind = "federal" if requester.is_federal else "out_of_state"
            self.metrics.observe_owner_attempt(owner.agency_id, attempt_kind)
            entry = work.attempts.setdefault((owner.agency_id, hour), [0, ts])
            entry[0] += 1
            entry[1] = max(entry[1], ts)

    def _count(
        self,
        work: _Batch,
        partition: int,
        metric: str,
        agency_id: str,
        spec: WindowSpec,
        start: int,
        n: int,
    ) -> None:
        key = counter_key(partition, metric, agency_id, spec.name, start)
        work.add(key, n)
        self._remember(partition, spec.name, start, key)
        if metric == "searches":
            self._gauge.setdefault((spec.name, start), {})[agency_id] = work.count(key)
            self._gauge_watermark = max(self._gauge_watermark, start)
            self._gauges_pending = True

    def _change(
        self, event: Mapping[str, Any], partition: int, work: _Batch
    ) -> ChangeDecision | MalformedDecision:
        new_state, decision = apply_change(self.state, event, self.keys)
        if isinstance(decision, MalformedDecision):
            return decision
        self.metrics.observe_policy_change(decision.outcome)
        if decision.applied and decision.agency_id is not None:
            self.state = new_state
            work.result.settings[decision.agency_id] = (
                partition,
                settings_to_value(new_state.settings_for(decision.agency_id)),
            )
            self._bump(f"policy-{partition}", partition, work)
        elif not decision.applied:
            at = event.get("ts") if isinstance(event.get("ts"), str) else work.decided_at
            self._alert(
                work,
                alerts.POLICY_REJECTED,
                decision.agency_id or "unknown",
                str(at),
                str(at),
                len(decision.reasons),
                0,
                f"policy change {decision.event_id} of {decision.setting} rejected: "
                + ", ".join(decision.codes),
                alert_key=decision.event_id,
            )
        return decision

    def _agency(
        self, msg: InMessage, work: _Batch
    ) -> tuple[Any, Decision, str | None, float | None]:
        key = msg.key.decode("utf-8", "replace") if msg.key else None
        if msg.value is None:
            if not key:
                return (
                    None,
                    _malformed(
                        "agency",
                        codes.SCHEMA_INVALID,
                        "a null agency value needs a key to delete",
                        self.state.version,
                    ),
                    None,
                    None,
                )
            self.state = self.state.without_agency(key)
            work.result.registry[key] = (msg.partition, dict(DELETED))
            self._bump(f"agencies-{msg.partition}", msg.partition, work)
            return {"agency_id": key}, UpsertDecision(key, True, self.state.version), None, None
        original, problem = _parse(msg)
        if problem is not None:
            return original, problem(self.state.version), None, None
        result = agency_from_record(original)
        if isinstance(result, Agency) and key and key != result.agency_id:
            result = f"message key {key!r} differs from agency_id {result.agency_id!r}"
        if isinstance(result, str):
            return (
                original,
                MalformedDecision(
                    _event_id(original, "agency"),
                    "agency",
                    Reason(codes.SCHEMA_INVALID, f"{_CONTRACT}, section 2", result),
                    self.state.version,
                ),
                None,
                None,
            )
        self.state = self.state.with_agency(result)
        work.result.registry[result.agency_id] = (msg.partition, agency_to_value(result))
        self._bump(f"agencies-{msg.partition}", msg.partition, work)
        return original, UpsertDecision(result.agency_id, False, self.state.version), None, None

    def _bump(self, meta_key: str, partition: int, work: _Batch) -> None:
        # One counter per input partition: writers never share a key, so no update is lost,
        # and their sum only grows, which is all readers need to see that something changed.
        current = work.result.revisions.get(meta_key)
        base = current[1] if current is not None else self.revision_of(meta_key)
        work.result.revisions[meta_key] = (partition, base + 1)
        self._revisions[meta_key] = base + 1

    def revision_of(self, meta_key: str) -> int:
        return self._revisions.get(meta_key, 0)

    def set_revisions(self, revisions: Mapping[str, int]) -> None:
        """The revision counters as the tables hold them (called when the snapshot is rebuilt)."""
        self._revisions = dict(revisions)

    # --- audit, alerts, attempts -------------------------------------------------------------

    def _audit(self, chain: str, fields: dict[str, Any], work: _Batch) -> None:
        head = work.chains.get(chain)
        if head is None:
            stored = work.heads.get(chain)
            head = ChainHead.from_dict(stored) if isinstance(stored, Mapping) else genesis(chain)
        record, work.chains[chain] = build_record(head, fields)
        work.result.audit.append((chain, serde.dumps(record)))

    def _alert(
        self,
        work: _Batch,
        kind: str,
        agency_id: str,
        start: str,
        end: str,
        value: int,
        threshold: int,
        detail: str,
        *,
        alert_key: str | None = None,
    ) -> None:
        record = alert_record(kind, agency_id, start, end, value, threshold, detail)
        if alert_key is not None:
            # Not a window: one alert per event, id tied to that event for replays.
            record["alert_id"] = decision_id(f"alert:{kind}", alert_key)
        work.result.messages.append(Out("alerts", agency_id, record))
        self.metrics.observe_alert(kind)

    def _alerts(self, work: _Batch) -> None:
        thresholds = {
            ("searches", "1m"): (alerts.SEARCH_RATE, self.settings.rate_limit_per_minute),
            ("denied", "1h"): (
                alerts.VIOLATION_BURST,
                self.settings.alert_denied_networks_per_hour,
            ),
            ("immigration", "1h"): (
                alerts.PROHIBITED_PURPOSE,
                self.settings.alert_immigration_per_hour,
            ),
            ("attempts", "1h"): (
                alerts.OUT_OF_STATE_ATTEMPTS,
                self.settings.alert_out_of_state_per_hour,
            ),
        }
        for key, before in work.before.items():
            parsed = parse_counter_key(key)
            if parsed is None:
                continue
            _, metric, window, start, agency_id = parsed
            rule = thresholds.get((metric, window))
            if rule is None or (metric == "searches" and rule[1] == 0):
                continue  # a rate limit of 0 means no limit, not "alert on every search"
            kind, threshold = rule
            after = work.result.counters[key]
            if crossed(before, after, threshold):
                size = TUMBLING_MINUTE.size if window == "1m" else TUMBLING_HOUR.size
                self._alert(
                    work,
                    kind,
                    agency_id,
                    format_ts(start),
                    format_ts(start + size),
                    after,
                    threshold,
                    f"{metric} for {agency_id} passed {threshold} in the {window} "
                    f"window starting {format_ts(start)}",
                )

    def _flush_attempts(self, work: _Batch) -> None:
        # One small message per (owner, hour) per batch, keyed by owner: the owners' counts are
        # then kept by whichever worker owns that owner's partition of the attempts topic.
        for (owner, hour), (n, ts) in work.attempts.items():
            work.result.messages.append(
                Out("attempts", owner, {"owner": owner, "start": hour, "n": n, "ts": ts})
            )

    def _attempt(self, msg: InMessage, work: _Batch) -> None:
        try:
            value = serde.loads(msg.value or b"")
            owner, start, n, ts = value["owner"], value["start"], value["n"], value["ts"]
            valid = isinstance(owner, str) and isinstance(start, int) and isinstance(n, int)
        except (ValueError, TypeError, KeyError):
            valid = False
        if not valid:
            # Internal topic, written only by workers: a bad record is a bug, said loudly.
            log.error(
                "unreadable owner-attempt record at %s[%d]@%d; not counted",
                msg.topic,
                msg.partition,
                msg.offset,
            )
            return
        if work.replayed(msg):
            return
        watermark = max(self.watermarks.get(msg.partition, float(ts)), float(ts))
        self.watermarks[msg.partition] = watermark
        if expired(start, TUMBLING_HOUR, watermark):
            return
        key = counter_key(msg.partition, "attempts", owner, TUMBLING_HOUR.name, start)
        work.add(key, n)
        self._remember(msg.partition, TUMBLING_HOUR.name, start, key)

    # --- expiry and gauges -------------------------------------------------------------------

    def _expire(self, partition: int, work: _Batch) -> None:
        watermark = self.watermarks.get(partition)
        if watermark is None:
            return
        minute = bucket_start(watermark, TUMBLING_MINUTE.step)
        if self._cleaned.get(partition) == minute:
            return  # nothing can have expired since the last pass in this minute
        self._cleaned[partition] = minute
        buckets = self._known[partition]
        # Whether a key expired depends only on its window and bucket start (as in
        # `expired_keys`), so whole buckets go at once; unknown window names never expire.
        for bucket in [b for b in buckets if _bucket_expired(b, watermark)]:
            for key in buckets.pop(bucket):
                work.result.counters.pop(key, None)
                work.result.expired.append(key)

    def _remember(self, partition: int, window: str, start: int, key: str) -> None:
        """Note a live counter key, so that it expires with its bucket."""
        bucket = self._known[partition].get((window, start))
        if bucket is None:
            bucket = self._known[partition][(window, start)] = set()
        bucket.add(key)

    def _publish_gauges(self, work: _Batch) -> None:
        # Once a second is plenty for a scraped gauge; per batch it cost more than deciding.
        # Counts held back here are published by `publish_pending_gauges` (the app's timer),
        # so the last batch of a burst shows even when no traffic follows it.
        if work.received - self._gauges_published >= 1.0:
            self.publish_pending_gauges(work.received)

    def publish_pending_gauges(self, now: float) -> bool:
        """Publish the agency-search gauges if any count changed since the last publication.

        Returns whether it published. Called after batches (throttled) and by a timer.
        """
        if not self._gauges_pending or not self._gauge:
            return False
        self._gauges_pending = False
        self._gauges_published = now
        mark = self._gauge_watermark
        minute = bucket_start(mark, TUMBLING_MINUTE.step)
        hour = bucket_start(mark, HOUR)
        self.metrics.set_agency_searches("1m", self._gauge.get(("1m", minute), {}))
        self.metrics.set_agency_searches("1h", self._gauge.get(("1h", hour), {}))
        first = hour - (HOPPING_DAY.buckets - 1) * HOUR
        # The 24 h hopping window starting at `first`: per agency, the sum of its hourly
        # buckets from `first` on (what `hopping_total` gives), in one pass over the buckets.
        last = first + (HOPPING_DAY.buckets - 1) * HOUR
        day: dict[str, int] = {}
        for (w, s), counts in self._gauge.items():
            if w == "1h" and first <= s <= last:
                for agency_id, count in counts.items():
                    day[agency_id] = day.get(agency_id, 0) + count
        self.metrics.set_agency_searches("24h", day)
        for window_key in [k for k in self._gauge if k[1] < first - HOUR]:
            del self._gauge[window_key]
        return True


def mark_key(partition: int) -> str:
    """Counters-table key of the last input offset of `partition` whose counts are stored.

    Kept in the counters table itself, so that it lands in the same changelog partition and
    batch as the counts it describes: whichever worker restores the partition (after a crash or
    a rebalance) restores both together, and skips counting messages at or below the mark
    when they are replayed. Counting is then idempotent; deciding and auditing are not skipped
    (their outputs may not have been delivered before the crash, and replays carry the same
    decision ids).
    """
    return f"{partition}|decided-through"


def _bucket_expired(bucket: tuple[str, int], watermark: float) -> bool:
    window, start = bucket
    spec = WINDOWS.get(window)
    return spec is not None and expired(start, spec, watermark, keep=_KEEP.get(spec.name, 0))


def _foreign(requester: Agency, owner: Agency) -> bool:
    return requester.is_federal or requester.state != owner.state


def _chain_partition(chain: str) -> int:
    return int(chain.rsplit("-", 1)[1])


def _event_id(original: Any, kind: str) -> str | None:
    if not isinstance(original, Mapping):
        return None
    name = {
        "search_request": "search_id",
        "plate_read": "read_id",
        "policy_change": "change_id",
        "agency": "agency_id",
    }.get(kind)
    value = original.get(name) if name else None
    return value if isinstance(value, str) and value else None


def _malformed(kind: str, code: str, detail: str, version: str) -> MalformedDecision:
    return MalformedDecision(None, kind, Reason(code, f"{_CONTRACT}, section 1", detail), version)


# orjson reads up to 1024 levels of nesting but writes at most 254: an event nested deeper
# could be decided but its output never written, which would stop the agent. Deeper parts are
# replaced by a marker, well inside the writable depth.
_MAX_DEPTH: Final = 200
_TOO_DEEP: Final = f"<nested deeper than {_MAX_DEPTH} levels: removed by StreamGuard>"
# Outputs echo the input event, and Kafka's default request limit is 1 MB: a larger message
# could be decided but not written. Real events are a few KB.
MAX_EVENT_BYTES: Final = 960 * 1024


def _clip(value: Any, depth: int) -> Any:
    """A copy of parsed JSON with containers deeper than _MAX_DEPTH replaced by a marker."""
    if isinstance(value, dict):
        if depth >= _MAX_DEPTH:
            return _TOO_DEEP
        return {k: _clip(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        if depth >= _MAX_DEPTH:
            return _TOO_DEEP
        return [_clip(v, depth + 1) for v in value]
    return value


def _parse(msg: InMessage) -> tuple[Any, Callable[[str], MalformedDecision] | None]:
    """(original, None) for a JSON object; else (raw copy, maker of the MALFORMED decision)."""
    raw = msg.value or b""
    if len(raw) > MAX_EVENT_BYTES:
        detail = f"the message is {len(raw):,} bytes, over the {MAX_EVENT_BYTES:,}-byte limit"
    else:
        try:
            obj = serde.loads(raw)
        except ValueError:
            detail = "the message is empty" if not raw else "the message is not UTF-8 JSON"
        else:
            if isinstance(obj, dict):
                # Counting brackets is a cheap upper bound of the depth; only then walk it.
                if raw.count(b"{") + raw.count(b"[") > _MAX_DEPTH:
                    obj = _clip(obj, 0)
                return obj, None
            detail = "the message is JSON but not an object"

    def make(version: str) -> MalformedDecision:
        return _malformed("raw", codes.MALFORMED_EVENT, detail, version)

    return raw_original(raw), make
