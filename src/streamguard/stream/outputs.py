"""Output records of the worker (docs/contract.md sections 4 and 6) and their deterministic
ids. Pure.

Ids are uuid5 of what identifies the input, never random: at-least-once delivery replays
events after a crash, and a replayed event must produce the same `decision_id` (and an alert
the same `alert_id`) so that consumers can drop the copy.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate
from operator import add
from typing import Any, Final, Literal, TypeGuard, TypeVar

import orjson

from streamguard.core.engine import fanned, normalize_plate, purpose_text
from streamguard.core.models import (
    ChangeDecision,
    Decision,
    MalformedDecision,
    NetworkVerdict,
    ReadDecision,
    Reason,
    SearchDecision,
    UpsertDecision,
)
from streamguard.core.timeutil import format_ts
from streamguard.core.verdicts import (
    DecisionLists,
    Fanned,
    Spread,
    decision_lists,
    derived_of,
    spread_code_counts,
    spread_codes_without,
    spread_lists,
    spread_position,
)
from streamguard.settings import DEFAULT_MAX_MESSAGE_BYTES

__all__ = (
    "LIST_LIMIT",
    "MAX_MESSAGE_BYTES",
    "NAMESPACE",
    "Out",
    "alert_id",
    "alert_record",
    "approved_search",
    "audit_fields",
    "bounded",
    "clamped_windows",
    "decision_id",
    "grouped_reasons",
    "is_json_object",
    "lists_of",
    "quarantine_kind",
    "quarantine_record",
    "raw_decision_id",
    "raw_original",
    "redact_plate",
    "route",
    "shared_read",
)

_T = TypeVar("_T")

# Fixed for all time: changing it would change every id and defeat replay de-duplication.
NAMESPACE: Final = uuid.UUID("6f1d2a7e-3c4b-5e8f-9a0b-1c2d3e4f5a6b")

# "attempts" is internal: out-of-state/federal search attempts re-keyed by owner.
Role = Literal["approved", "shared", "quarantine", "alerts", "attempts"]


@dataclass(frozen=True, slots=True)
class Out:
    """One message to send: which output topic (by role), its key and its value."""

    role: Role
    key: str
    value: dict[str, Any]


# SHA-1 state after the namespace: each id copies it and hashes only its name.
_NAMESPACE_SHA1: Final = hashlib.sha1(NAMESPACE.bytes)  # noqa: S324 - uuid5 is SHA-1 by definition
# The RFC 4122 variant digit (10 in the top two bits) by the hash's own digit there.
_VARIANTS: Final = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _uuid5(name: str) -> str:
    """`str(uuid.uuid5(NAMESPACE, name))` without building a UUID object or hashing the
    namespace again (an id per decision, thousands a second); equality is tested."""
    sha1 = _NAMESPACE_SHA1.copy()
    sha1.update(name.encode("utf-8"))
    text = sha1.hexdigest()
    # Digit 12 is the version (5); the top two bits of digit 16 are the variant (10).
    return (
        f"{text[:8]}-{text[8:12]}-5{text[13:16]}-{_VARIANTS[text[16]]}{text[17:20]}-{text[20:32]}"
    )


def decision_id(kind: str, event_id: str) -> str:
    return _uuid5(f"{kind}:{event_id}")


def raw_decision_id(topic: str, partition: int, offset: int) -> str:
    """Id of a decision on a message with no readable event id: where it sits in Kafka."""
    return _uuid5(f"raw:{topic}:{partition}:{offset}")


def alert_id(kind: str, agency_id: str, window_start: str) -> str:
    return _uuid5(f"alert:{kind}:{agency_id}:{window_start}")


# A quarantine copy keeps at most this much of an unreadable message. Kafka's default request
# limit is 1 MB and base64 grows data by a third: a full copy of a large junk message could not
# be written, and the agent deciding it would stop. Size and hash still identify the original.
RAW_KEEP_BYTES: Final = 64 * 1024


def raw_original(data: bytes) -> dict[str, Any]:
    """The quarantine copy of a message that is not a JSON object (`raw_base64`,
    docs/contract.md section 4)."""
    if len(data) <= RAW_KEEP_BYTES:
        return {"raw_base64": base64.b64encode(data).decode("ascii")}
    return {
        "raw_base64": base64.b64encode(data[:RAW_KEEP_BYTES]).decode("ascii"),
        "truncated": True,
        "raw_size": len(data),
        "raw_sha256": hashlib.sha256(data).hexdigest(),
    }


def quarantine_kind(decision: Decision) -> str:
    if isinstance(decision, SearchDecision):
        return "search_request"
    if isinstance(decision, ReadDecision):
        return "plate_read"
    if isinstance(decision, ChangeDecision):
        return "policy_change"
    if isinstance(decision, UpsertDecision):
        return "agency"
    return decision.kind


# Per-network lists longer than this are not repeated in every output (docs/contract.md,
# section 4): `denied_networks` and `denied_recipients` keep their first LIST_LIMIT entries and
# say how many they leave out, and the audit record keeps counts instead of its id lists. The
# complete lists are in the decision's approved/shared record (allowed) and quarantine record
# (denied, grouped by code), which carry the same decision_id.
LIST_LIMIT: Final = 100
# The largest output message written whole (STREAMGUARD_MAX_MESSAGE_BYTES sets the worker's).
MAX_MESSAGE_BYTES: Final = DEFAULT_MAX_MESSAGE_BYTES
# In the detail of a grouped reason, this stands for each listed network.
AGENCY_PLACEHOLDER: Final = "{agency_id}"


def lists_of(decision: SearchDecision | ReadDecision) -> DecisionLists:
    """The decision's allowed, denied and codes lists: in one pass, or for a statewide or
    national search made from a shared spread, from the spread's lists (computed once)."""
    if isinstance(decision, SearchDecision):
        how = fanned(decision)
        if how is not None:
            return _fanned_lists(how, decision.search_reasons)
        top = decision.search_reasons
    else:
        top = decision.read_reasons
    derived = None if top else derived_of(decision.verdicts)
    if derived is None:
        return decision_lists(top, decision.verdicts)
    found = derived.get("lists")
    if not isinstance(found, DecisionLists):
        found = derived["lists"] = decision_lists((), decision.verdicts)
    return found


def _without(items: tuple[_T, ...], at: int) -> tuple[_T, ...]:
    return items[:at] + items[at + 1 :]


def _with_first(first: _T, items: tuple[_T, ...], drop: int | None) -> tuple[_T, ...]:
    """`(first, *_without(items, drop))` (or `(first, *items)`), without the intermediate
    tuple."""
    if drop is None:
        return (first, *items)
    return (first, *items[:drop], *items[drop + 1 :])


def _fanned_lists(how: Fanned, top: tuple[Reason, ...]) -> DecisionLists:
    """`decision_lists(top, (own, *spread without own_at))`, from the spread's lists (with
    as few copies of their thousands of entries as splicing allows)."""
    spread, own, own_at = how.spread, how.own, how.own_at
    base = spread_lists(spread)
    allowed, denied, codes = base.allowed, base.denied, base.codes
    drop_allowed = drop_denied = None
    if own_at is not None:
        if spread.verdicts[own_at].reasons:
            drop_denied = spread_position(spread, own_at)
            codes = spread_codes_without(spread, own_at)
        else:
            drop_allowed = spread_position(spread, own_at)
    if own.reasons:
        denied = _with_first(own, denied, drop_denied)
        codes = (*own.codes, *codes)
    else:
        allowed = _with_first(own.agency_id, allowed, drop_allowed)
    if drop_denied is not None and not own.reasons:
        denied = _without(denied, drop_denied)
    if drop_allowed is not None and own.reasons:
        allowed = _without(allowed, drop_allowed)
    if top or own.reasons:
        codes = tuple(dict.fromkeys((*(r.code for r in top), *codes)))
    return DecisionLists(allowed, denied, codes)


def _denied(lists: DecisionLists) -> list[dict[str, Any]]:
    return [{"agency_id": v.agency_id, "codes": list(v.codes)} for v in lists.denied[:LIST_LIMIT]]


def _kept(
    decision: SearchDecision | ReadDecision, lists: DecisionLists
) -> dict[str, object] | None:
    """Where what outputs derive from `lists` is kept: when they are the lists `lists_of` keeps
    for the decision's `shared` verdicts tuple (no event-level reasons); else None. Records
    take a list of their own of the kept entries (delivery only encodes them)."""
    top = decision.search_reasons if isinstance(decision, SearchDecision) else decision.read_reasons
    derived = None if top else derived_of(decision.verdicts)
    if derived is None or derived.get("lists") is not lists:
        return None
    return derived


def _with_denied(
    record: dict[str, Any],
    field: str,
    lists: DecisionLists,
    decision: SearchDecision | ReadDecision | None = None,
) -> None:
    kept = None if decision is None else _kept(decision, lists)
    if kept is None:
        record[field] = _denied(lists)
    else:
        found = kept.get("denied")
        if not isinstance(found, list):
            found = kept["denied"] = _denied(lists)
        record[field] = list(found)
    if len(lists.denied) > LIST_LIMIT:
        record[f"{field}_omitted"] = len(lists.denied) - LIST_LIMIT


def clamped_windows(decision: SearchDecision) -> list[dict[str, Any]]:
    """The window each allowed owner may answer an open-ended search with (additive field
    `clamped_windows`): reads from `from` on, its retention limit (docs/contract.md, section 2)."""
    return [{"agency_id": owner, "from": format_ts(start)} for owner, start in decision.clamped]


def approved_search(
    event: Mapping[str, Any],
    decision: SearchDecision,
    did: str,
    decided_at: str,
    lists: DecisionLists | None = None,
) -> dict[str, Any]:
    lists = lists or lists_of(decision)
    how = _wide(decision)
    record = {
        **event,
        "decision_id": did,
        "decided_at": decided_at,
        "allowed_networks": list(lists.allowed) if how is None else _encoded_allowed(how),
    }
    if how is None:
        _with_denied(record, "denied_networks", lists, decision)
    else:
        record["denied_networks"] = _encoded_denied(how)
        if len(lists.denied) > LIST_LIMIT:
            record["denied_networks_omitted"] = len(lists.denied) - LIST_LIMIT
    record["policy_version"] = decision.policy_version
    if decision.clamped:
        record["clamped_windows"] = clamped_windows(decision)
    return record


# A statewide or national decision made from a spread of at least this many networks has its
# per-network lists written from the spread's encoded lists (`orjson.Fragment`), spliced where
# the requester's own network differs, instead of being encoded again for every search. Below
# it, encoding is cheap and the records stay plain values.
ENCODED_FROM = 1_000


def _wide(decision: SearchDecision) -> Fanned | None:
    how = fanned(decision)
    if how is None or len(how.spread.verdicts) < ENCODED_FROM:
        return None
    return how


class _EncodedIds:
    """Ids as orjson encodes a list of them, with where each one starts (found when a splice
    first needs it): a copy without one of them, or with another id first, is spliced by byte
    offsets instead of encoded."""

    __slots__ = ("_ids", "_starts", "data")

    def __init__(self, ids: tuple[str, ...]) -> None:
        self.data = orjson.dumps(ids)
        self._ids = ids
        self._starts: list[int] | None = None

    @property
    def starts(self) -> list[int]:
        if self._starts is None:
            ids = self._ids
            n = len(ids)
            if not ids:
                self._starts = []
            elif sum(map(len, ids)) + 3 * n + 1 == len(self.data):
                # No id needed an escape: each takes its length, quotes and comma (in C).
                lengths = accumulate(map(len, ids[:-1]), initial=1)
                self._starts = list(map(add, lengths, range(0, 3 * n, 3)))
            else:
                sizes = [len(orjson.dumps(a)) + 1 for a in ids]
                self._starts = list(accumulate(sizes[:-1], initial=1))
        return self._starts

    def spliced(self, first: str | None, drop: int | None) -> bytes:
        """The list with the id at index `drop` left out and `first` put first."""
        data = memoryview(self.data)
        body: list[memoryview]
        if drop is None:
            body = [data[1:-1]]
        else:
            starts = self.starts
            if len(starts) == 1:
                body = []
            elif drop == len(starts) - 1:
                body = [data[1 : starts[drop] - 1]]  # and the comma before it
            else:
                body = [data[1 : starts[drop]], data[starts[drop + 1] : -1]]
        parts: list[bytes | memoryview] = [b"["]
        if first is not None:
            parts.append(orjson.dumps(first))
            if any(len(b) for b in body):
                parts.append(b",")
        parts += body
        parts.append(b"]")
        return b"".join(parts)


def _encoded_allowed(how: Fanned) -> orjson.Fragment:
    """`allowed_networks` of a decision made from a spread, from the spread's encoded list."""
    spread, own, own_at = how.spread, how.own, how.own_at
    encoded = spread.memo("allowed_json", lambda: _EncodedIds(spread_lists(spread).allowed))
    drop = None
    if own_at is not None and not spread.verdicts[own_at].reasons:
        drop = spread_position(spread, own_at)
    return orjson.Fragment(encoded.spliced(None if own.reasons else own.agency_id, drop))


def _denied_entry(verdict: NetworkVerdict) -> bytes:
    return orjson.dumps({"agency_id": verdict.agency_id, "codes": list(verdict.codes)})


def _encoded_denied(how: Fanned) -> orjson.Fragment:
    """`denied_networks` (its first LIST_LIMIT entries) of a decision made from a spread."""
    spread, own, own_at = how.spread, how.own, how.own_at
    denied = spread_lists(spread).denied
    entries: list[bytes] = spread.memo(
        "denied_json", lambda: [_denied_entry(v) for v in denied[: LIST_LIMIT + 1]]
    )
    if own_at is not None and spread.verdicts[own_at].reasons:
        skip = spread_position(spread, own_at)
        if skip <= LIST_LIMIT:
            entries = entries[:skip] + entries[skip + 1 :]
    if own.reasons:
        entries = [_denied_entry(own), *entries]
    return orjson.Fragment(b"[" + b",".join(entries[:LIST_LIMIT]) + b"]")


def shared_read(
    event: Mapping[str, Any],
    decision: ReadDecision,
    did: str,
    decided_at: str,
    lists: DecisionLists | None = None,
) -> dict[str, Any]:
    lists = lists or lists_of(decision)
    record = {
        **event,
        "decision_id": did,
        "decided_at": decided_at,
        "recipients": list(lists.allowed),
    }
    _with_denied(record, "denied_recipients", lists, decision)
    return record


_GroupKey = tuple[str, str, str]  # code, citation, detail with the id as AGENCY_PLACEHOLDER


def _group_key(reason: Reason, agency_id: str) -> _GroupKey:
    return (reason.code, reason.citation, reason.detail.replace(agency_id, AGENCY_PLACEHOLDER))


@dataclass(frozen=True, slots=True)
class _Grouping:
    """`_groups` of some verdicts, with where each group's networks come from: the index of
    each one's verdict (ascending, parallel to the ids) and each group's first place (verdict
    index, place among its reasons), which orders the groups."""

    loose: list[dict[str, Any]]  # reasons of no network, as they are
    groups: dict[_GroupKey, list[str]]  # in order of first appearance; read-only
    at: dict[_GroupKey, list[int]]
    first: dict[_GroupKey, tuple[int, int]]
    # Whether every network's reason names its own verdict's network (as the engine writes
    # them): then a group holds a verdict's network once, and a verdict's changes touch only
    # its own entries.
    regular: bool
    # The groups that differ from those of the grouping it was derived from (None: computed
    # in full).
    touched: frozenset[_GroupKey] | None = None


def _grouping(verdicts: tuple[NetworkVerdict, ...]) -> _Grouping:
    loose: list[dict[str, Any]] = []
    groups: dict[_GroupKey, list[str]] = {}
    at: dict[_GroupKey, list[int]] = {}
    first: dict[_GroupKey, tuple[int, int]] = {}
    regular = True
    for i, verdict in enumerate(verdicts):
        reasons = verdict.reasons
        if not reasons:
            continue
        for r, reason in enumerate(reasons):
            agency_id = reason.agency_id
            if agency_id is None:  # not a network's reason: kept as it is
                loose.append(reason.as_dict())
                continue
            regular = regular and agency_id == verdict.agency_id
            detail = reason.detail.replace(agency_id, AGENCY_PLACEHOLDER)
            key = (reason.code, reason.citation, detail)
            ids = groups.get(key)
            if ids is None:
                groups[key] = [agency_id]
                at[key] = [i]
                first[key] = (i, r)
            elif ids[-1] != agency_id:
                ids.append(agency_id)
                at[key].append(i)
    return _Grouping(loose, groups, at, first, regular)


def _groups(
    denied: tuple[NetworkVerdict, ...],
) -> tuple[list[dict[str, Any]], dict[_GroupKey, list[str]]]:
    """(reasons of no network, as they are; the networks of each group, in order)."""
    grouping = _grouping(denied)
    return grouping.loose, grouping.groups


def _place(verdict: NetworkVerdict, key: _GroupKey) -> int:
    """Where `key` first appears among `verdict`'s reasons (which hold it)."""
    for r, reason in enumerate(verdict.reasons):
        agency_id = reason.agency_id
        if reason.code == key[0] and agency_id is not None and _group_key(reason, agency_id) == key:
            return r
    raise ValueError(key)


def _moved(
    ids: list[str],
    at: list[int],
    drop: list[int],
    add: list[int],
    verdicts: tuple[NetworkVerdict, ...],
) -> tuple[list[str], list[int]]:
    """A group's ids and verdict indices with the entries of the verdicts `drop` left out and
    those of the verdicts `add` put in; all ascending, spliced by slices."""
    if not ids:  # a new group
        return [verdicts[i].agency_id for i in add], add
    out_ids: list[str] = []
    out_at: list[int] = []
    done = 0
    for i, adding in sorted([(i, False) for i in drop] + [(i, True) for i in add]):
        k = bisect_left(at, i, done)
        out_ids += ids[done:k]
        out_at += at[done:k]
        if adding:
            done = k
            out_ids.append(verdicts[i].agency_id)
            out_at.append(i)
        else:
            done = k + 1  # the verdict's entry (it is at k: the group held that verdict)
    out_ids += ids[done:]
    out_at += at[done:]
    return out_ids, out_at


@dataclass(frozen=True, slots=True)
class _Changes:
    """How verdicts changed at some indices, by group: the verdicts that leave each group and
    those that join it (ascending), and those whose reasons were replaced (not kept first):
    their groups' places among their reasons may move."""

    drops: dict[_GroupKey, list[int]]
    adds: dict[_GroupKey, list[int]]
    replaced: set[int]


def _changes(
    before: tuple[NetworkVerdict, ...],
    verdicts: tuple[NetworkVerdict, ...],
    changed: tuple[int, ...],
) -> _Changes | None:
    """None where a changed verdict holds a reason of no network or of another network."""
    found = _Changes({}, {}, set())
    drops, adds, replaced = found.drops, found.adds, found.replaced
    adds_get = adds.get
    for i in changed:
        old, new = before[i], verdicts[i]
        owner = new.agency_id
        kept = old.reasons
        extra = new.reasons
        n = len(kept)
        if old.agency_id != owner:
            return None
        if len(extra) == n + 1 and extra[:n] == kept:  # a bucket's: RETENTION_EXCEEDED added
            reason = extra[n]
            if reason.agency_id != owner:
                return None
            code = reason.code
            key = (code, reason.citation, reason.detail.replace(owner, AGENCY_PLACEHOLDER))
            if kept and key in [_group_key(r, owner) for r in kept if r.code == code]:
                continue
            joins = adds_get(key)
            if joins is None:
                adds[key] = [i]
            else:
                joins.append(i)
            continue
        if extra[:n] == kept:
            extra = extra[n:]
            codes = {r.code for r in extra}
            kept = tuple([r for r in kept if r.code in codes])  # the only ones it can match
        else:
            replaced.add(i)
        if any(r.agency_id != owner for r in extra):
            return None
        gained = {_group_key(r, owner): None for r in extra}
        had = {_group_key(r, owner): None for r in kept}
        for key in gained:
            if key not in had:
                adds.setdefault(key, []).append(i)
        if i in replaced:
            for key in had:
                if key not in gained:
                    drops.setdefault(key, []).append(i)
    return found


def _derived_grouping(
    base: _Grouping,
    before: tuple[NetworkVerdict, ...],
    verdicts: tuple[NetworkVerdict, ...],
    changed: tuple[int, ...],
) -> _Grouping | None:
    """`_grouping(verdicts)` for verdicts that differ from `before` (grouped as `base`) only
    at the ascending indices `changed`, in the size of what changed; None where a reason of
    no network or of another network is involved (then it is computed in full)."""
    if base.loose or not base.regular:
        return None
    changes = _changes(before, verdicts, changed)
    if changes is None:
        return None
    drops, adds, replaced = changes.drops, changes.adds, changes.replaced
    groups = dict(base.groups)
    at = dict(base.at)
    first = dict(base.first)
    touched = frozenset((*drops, *adds))
    for key in touched:
        ids, where = _moved(
            groups.get(key, []), at.get(key, []), drops.get(key, []), adds.get(key, []), verdicts
        )
        if not ids:
            del groups[key], at[key], first[key]
            continue
        groups[key], at[key] = ids, where
        place = first.get(key)
        if place is None or place[0] != where[0]:
            first[key] = (where[0], _place(verdicts[where[0]], key))
    if replaced:
        for key, (i, _) in first.items():
            if i in replaced:
                first[key] = (i, _place(verdicts[i], key))
    order = sorted(groups, key=first.__getitem__)
    return _Grouping([], {key: groups[key] for key in order}, at, first, True, touched)


def _spread_grouping(spread: Spread) -> _Grouping:
    """The grouping of a spread's verdicts, computed once; for a spread made from a base,
    derived from the base's where it can be."""
    found = spread.derived.get("grouping")
    if isinstance(found, _Grouping):
        return found
    base = spread.base
    made = None
    if base is not spread:
        made = _derived_grouping(
            _spread_grouping(base), base.verdicts, spread.verdicts, spread.changed
        )
    if made is None:
        made = _grouping(spread.verdicts)
    spread.derived["grouping"] = made
    return made


def _entries(
    top: tuple[Reason, ...], loose: list[dict[str, Any]], groups: Mapping[_GroupKey, list[str]]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [r.as_dict() for r in top]
    out += loose
    out += [
        {"code": code, "citation": citation, "detail": detail, "agency_ids": ids}
        for (code, citation, detail), ids in groups.items()
    ]
    return out


def _second_place(grouping: _Grouping, spread: Spread, key: _GroupKey) -> tuple[int, int]:
    """A group's first place once its first verdict is left out (it has another)."""
    after = grouping.at[key][1]
    return (after, _place(spread.verdicts[after], key))


def _own_groups(own: NetworkVerdict) -> dict[_GroupKey, list[str]] | None:
    """The groups of the requester's own network's verdict, to merge with a spread's; None
    where one of its reasons is of no network or of another network (its ids could then
    repeat the spread's, which `_groups` of the whole decision would not: the caller groups
    the decision in full)."""
    grouping = _grouping((own,) if own.reasons else ())
    if grouping.loose or not grouping.regular:
        return None
    return grouping.groups


def _fanned_groups(how: Fanned) -> dict[_GroupKey, list[str]] | None:
    """`_groups` of (own, *spread without own_at) from the spread's groups; None when a
    verdict that differs carries a reason of no network (then the caller groups them all)."""
    spread, own, own_at = how.spread, how.own, how.own_at
    grouping = _spread_grouping(spread)
    if grouping.loose or not grouping.regular:
        return None
    mine = _own_groups(own)
    if mine is None:
        return None
    groups = dict(grouping.groups)
    if own_at is not None and spread.verdicts[own_at].reasons:
        places = dict(grouping.first)
        for key in _groups((spread.verdicts[own_at],))[1]:
            ids = groups[key]
            at = bisect_left(grouping.at[key], own_at)
            rest = ids[:at] + ids[at + 1 :]
            if not rest:
                del groups[key]
                continue
            groups[key] = rest
            if at == 0:
                places[key] = _second_place(grouping, spread, key)
        groups = dict(sorted(groups.items(), key=lambda item: places[item[0]]))
    merged = {key: [*ids, *groups.pop(key, ())] for key, ids in mine.items()}
    merged.update(groups)
    return merged


def _group_entry(key: _GroupKey, ids: list[str]) -> bytes:
    code, citation, detail = key
    return orjson.dumps({"code": code, "citation": citation, "detail": detail, "agency_ids": ids})


class _EncodedGroups:
    """A spread's grouped reasons, each entry encoded, with each group's first place: a
    decision that differs from the spread in its own network splices only the entries of the
    groups that network is in. Made from the encoded groups of the spread's base (`base`),
    only the groups that differ from the base's are encoded again."""

    __slots__ = (
        "_base",
        "_ids",
        "_touched",
        "entries",
        "firsts",
        "grouping",
        "groups",
        "index",
        "keys",
        "spliceable",
    )

    def __init__(self, grouping: _Grouping, base: _EncodedGroups | None) -> None:
        self.grouping = grouping
        # Where the spread has reasons of no network, or of another network than the
        # verdict's, decisions are grouped from their own verdicts.
        self.spliceable = not grouping.loose and grouping.regular
        groups = self.groups = grouping.groups
        self.keys = list(groups)
        self.index = {key: i for i, key in enumerate(groups)}
        first = grouping.first
        self.firsts = [first[key] for key in groups]
        touched = grouping.touched
        if base is None or touched is None:
            self._base = None
            self.entries = [_group_entry(k, ids) for k, ids in groups.items()]
        else:
            self._base = base
            was, entries = base.index, base.entries
            self.entries = [
                _group_entry(k, ids) if k in touched else entries[was[k]]
                for k, ids in groups.items()
            ]
        self._touched = touched or frozenset()
        self._ids: dict[_GroupKey, _EncodedIds] = {}

    def ids(self, i: int) -> _EncodedIds:
        """Group `i`'s encoded ids (made when first asked for, or the base's)."""
        key = self.keys[i]
        found = self._ids.get(key)
        if found is None:
            base = self._base
            if base is not None and key not in self._touched:
                found = base.ids(base.index[key])
            else:
                found = _EncodedIds(tuple(self.groups[key]))
            self._ids[key] = found
        return found

    def spliced(self, i: int, first: str | None, drop: int | None) -> bytes:
        """Group `i`'s entry with the id at `drop` left out and `first` put first."""
        code, citation, detail = self.keys[i]
        head = orjson.dumps({"code": code, "citation": citation, "detail": detail})
        return head[:-1] + b',"agency_ids":' + self.ids(i).spliced(first, drop) + b"}"


def _encoded_groups(spread: Spread) -> _EncodedGroups:
    found = spread.derived.get("reasons_json")
    if isinstance(found, _EncodedGroups):
        return found
    base = spread.base.derived.get("reasons_json") if spread.base is not spread else None
    made = _EncodedGroups(
        _spread_grouping(spread), base if isinstance(base, _EncodedGroups) else None
    )
    spread.derived["reasons_json"] = made
    return made


def _encoded_reasons(top: tuple[Reason, ...], how: Fanned) -> orjson.Fragment | None:
    """`reasons` of the quarantine record of a decision made from a spread, as
    `grouped_reasons(top, denied, how)` writes them, spliced from the spread's encoded
    entries; None where `_fanned_groups` would give None (a reason of no network)."""
    spread, own, own_at = how.spread, how.own, how.own_at
    base = _encoded_groups(spread)
    if not base.spliceable:
        return None
    mine = _own_groups(own)
    if mine is None:
        return None
    gone_groups: dict[_GroupKey, list[str]] = {}
    gone_at = -1
    if own_at is not None and spread.verdicts[own_at].reasons:
        gone_groups, gone_at = _groups((spread.verdicts[own_at],))[1], own_at
    grouping, index = base.grouping, base.index
    entries: dict[int, bytes | None] = {}  # base index -> its new entry (None: left out)
    moved: list[tuple[tuple[int, int], int, bytes]] = []  # (new first place, base index, entry)
    drops: dict[_GroupKey, int] = {}  # group -> where the own network's pool verdict is in it
    for key in gone_groups:
        i = index[key]
        where = grouping.at[key]
        at = drops[key] = bisect_left(where, gone_at)
        entries[i] = None
        if key in mine or len(where) == 1:
            continue
        if at == 0:
            moved.append((_second_place(grouping, spread, key), i, base.spliced(i, None, 0)))
        else:
            entries[i] = base.spliced(i, None, at)
    out = [orjson.dumps(r.as_dict()) for r in top]
    for key, own_ids in mine.items():
        at_base = index.get(key)
        if at_base is None:
            out.append(_group_entry(key, own_ids))
        else:
            entries[at_base] = None
            out.append(base.spliced(at_base, own_ids[0], drops.get(key)))
    if not entries:
        out += base.entries
    else:
        firsts, kept = list(base.firsts), list(base.entries)
        for i in sorted(entries, reverse=True):  # from the end: the indices before stay true
            entry = entries[i]
            if entry is None:
                del firsts[i], kept[i]
            else:
                kept[i] = entry
        for first, _, entry in sorted(moved, reverse=True):
            at = bisect_left(firsts, first)
            firsts.insert(at, first)
            kept.insert(at, entry)
        out += kept
    return orjson.Fragment(b"[" + b",".join(out) + b"]")


def grouped_reasons(
    top: tuple[Reason, ...],
    denied: tuple[NetworkVerdict, ...],
    how: Fanned | None = None,
) -> list[dict[str, Any]]:
    """The reasons of a per-network decision in the v1.1 grouped form (docs/contract.md,
    section 4): event-level reasons as they are, then one entry per code, citation and detail
    with the `agency_ids` it applies to, in order of first appearance. The network's id in a
    detail is written as `{agency_id}`, so expanding an entry gives back the per-network
    reasons exactly. `how`: the spread a statewide or national decision was made from, whose
    groups are computed once."""
    groups = _fanned_groups(how) if how is not None else None
    if groups is not None:
        return _entries(top, [], groups)
    return _entries(top, *_groups(denied))


def _decision_reasons(
    top: tuple[Reason, ...], decision: SearchDecision | ReadDecision, lists: DecisionLists
) -> list[dict[str, Any]]:
    """`grouped_reasons(top, lists.denied)` of a decision not made from a spread, computed
    once for a `shared` verdicts tuple (`_kept`)."""
    kept = _kept(decision, lists)
    if kept is None:
        return _entries(top, *_groups(lists.denied))
    found = kept.get("reasons")
    if not isinstance(found, list):
        found = kept["reasons"] = _entries((), *_groups(lists.denied))
    return list(found)


def quarantine_record(
    event_id: str | None,
    kind: str,
    reasons: tuple[Reason, ...] | list[dict[str, Any]] | orjson.Fragment,
    did: str,
    decided_at: str,
    policy_version: str,
    original: Any,
) -> dict[str, Any]:
    """`reasons`: Reason objects (written one entry each), entries already written, or their
    encoded list."""
    return {
        "event_id": event_id,
        "kind": kind,
        "reasons": reasons
        if isinstance(reasons, orjson.Fragment)
        else [r.as_dict() if isinstance(r, Reason) else r for r in reasons],
        "decision_id": did,
        "decided_at": decided_at,
        "policy_version": policy_version,
        "original": original,
    }


def alert_record(
    kind: str,
    agency_id: str,
    window_start: str,
    window_end: str,
    value: int,
    threshold: int,
    detail: str,
) -> dict[str, Any]:
    return {
        "alert_id": alert_id(kind, agency_id, window_start),
        "kind": kind,
        "agency_id": agency_id,
        "window_start": window_start,
        "window_end": window_end,
        "value": value,
        "threshold": threshold,
        "detail": detail,
    }


def route(
    original: Any,
    decision: Decision,
    did: str,
    decided_at: str,
    *,
    fallback_key: str,
    lists: DecisionLists | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> list[Out]:
    """Where one decision goes (docs/contract.md sections 3 and 4). `original` is the parsed
    input, or raw_original.

    `fallback_key` keys the quarantine copy of an event whose id could not be read. `lists`:
    the decision's lists, when the caller has them already. A record of more than `max_bytes`
    is split (`bounded`).
    """
    out: list[Out] = []
    event = original if is_json_object(original) else {}
    reasons: tuple[Reason, ...] | list[dict[str, Any]] | orjson.Fragment
    if isinstance(decision, SearchDecision | ReadDecision):
        lists = lists or lists_of(decision)
        if isinstance(decision, SearchDecision):
            if decision.outcome in ("approved", "partial"):
                value = approved_search(event, decision, did, decided_at, lists)
                out.append(Out("approved", _requester_id(event), value))
            if decision.outcome == "approved":
                return _bounded_all(out, lists, max_bytes)
            top = decision.search_reasons
        else:
            if decision.outcome in ("shared", "partial"):
                value = shared_read(event, decision, did, decided_at, lists)
                out.append(Out("shared", str(event.get("agency_id", "")), value))
            if decision.outcome == "shared":
                return _bounded_all(out, lists, max_bytes)
            top = decision.read_reasons
        how = fanned(decision) if isinstance(decision, SearchDecision) else None
        wide = _wide(decision) if isinstance(decision, SearchDecision) else None
        encoded = _encoded_reasons(top, wide) if wide is not None else None
        if encoded is not None:
            reasons = encoded
        elif how is not None:
            reasons = grouped_reasons(top, lists.denied, how)
        else:
            reasons = _decision_reasons(top, decision, lists)
    elif isinstance(decision, ChangeDecision | UpsertDecision) and decision.outcome != "rejected":
        return out
    else:
        reasons = decision.reasons
    event_id = decision.event_id
    out.append(
        Out(
            "quarantine",
            event_id if event_id is not None else fallback_key,
            quarantine_record(
                event_id,
                quarantine_kind(decision),
                reasons,
                did,
                decided_at,
                decision.policy_version,
                original,
            ),
        )
    )
    return _bounded_all(out, lists, max_bytes)


# At the default limit or above, below this many networks no output can come near the limit
# (ids are registry ids, and the input itself fits in MAX_EVENT_BYTES): its size is not
# measured. A smaller limit set by the operator is measured on every decision.
_MEASURED_FROM: Final = 1_000


def _bounded_all(out: list[Out], lists: DecisionLists | None, max_bytes: int) -> list[Out]:
    if lists is None:
        return out
    if max_bytes >= MAX_MESSAGE_BYTES and len(lists.allowed) + len(lists.denied) < _MEASURED_FROM:
        return out
    return [part for record in out for part in bounded(record, max_bytes)]


# The per-network list each kind of output is split along.
_SPLIT_FIELDS: Final = {"approved": "allowed_networks", "shared": "recipients"}


def bounded(out: Out, max_bytes: int = MAX_MESSAGE_BYTES) -> list[Out]:
    """`out` itself if its JSON fits `max_bytes`, else its parts (docs/contract.md, section 4).

    Each part is the whole record with `part` (from 1) and `parts` added, and a share of its
    per-network list: of `allowed_networks` (approved) or `recipients` (shared), or of the
    `agency_ids` of the grouped `reasons` (quarantine; a part keeps the entries it has ids of,
    and the event-level ones go in part 1). Parts are filled in list order up to the limit, so
    one decision always splits the same way.
    """
    encoded = orjson.dumps(out.value)
    size = len(encoded)
    if size <= max_bytes:
        return [out]
    value = orjson.loads(encoded)  # the same JSON, with any encoded list (Fragment) as a list
    if out.role == "quarantine":
        shares = _split_reasons(value, size, max_bytes)
    elif out.role in _SPLIT_FIELDS:
        field = _SPLIT_FIELDS[out.role]
        shares = [{field: ids} for ids in _chunks(value[field], size, max_bytes)]
    else:
        return [out]  # nothing to split along: the producer refuses it, loudly
    return [
        Out(out.role, out.key, {**value, **share, "part": n, "parts": len(shares)})
        for n, share in enumerate(shares, 1)
    ]


def _chunks(ids: list[str], size: int, max_bytes: int) -> list[list[str]]:
    """`ids` cut into runs whose JSON, with the rest of a record of `size` bytes, fits."""
    room = max_bytes - (size - len(orjson.dumps(ids))) - 64  # 64: `part`, `parts` and commas
    if room <= 0:
        return [ids]
    chunks: list[list[str]] = [[]]
    used = 2
    for agency_id in ids:
        cost = len(agency_id) + 3  # quotes and comma; ids are registry ids, escaped rarely
        if used + cost > room and chunks[-1]:
            chunks.append([])
            used = 2
        chunks[-1].append(agency_id)
        used += cost
    return chunks


def _split_reasons(value: Mapping[str, Any], size: int, max_bytes: int) -> list[dict[str, Any]]:
    reasons: list[dict[str, Any]] = value["reasons"]
    listed = [r for r in reasons if "agency_ids" in r]
    single = [r for r in reasons if "agency_ids" not in r]
    room = max_bytes - (size - len(orjson.dumps(reasons))) - 64
    parts: list[list[dict[str, Any]]] = [list(single)]
    used = len(orjson.dumps(single))
    for entry in listed:
        head = len(orjson.dumps({**entry, "agency_ids": []})) + 1
        used += head
        ids: list[str] = []
        for agency_id in entry["agency_ids"]:
            cost = len(agency_id) + 3
            if used + cost > room and (ids or parts[-1]):
                if ids:
                    parts[-1].append({**entry, "agency_ids": ids})
                parts.append([])
                ids, used = [], 2 + head
            ids.append(agency_id)
            used += cost
        parts[-1].append({**entry, "agency_ids": ids})
    return [{"reasons": part} for part in parts]


def _requester_id(event: Mapping[str, Any]) -> str:
    requester = event.get("requester")
    if is_json_object(requester) and isinstance(requester.get("agency_id"), str):
        return str(requester["agency_id"])
    return ""


def redact_plate(text: str, plate: str | None) -> str:
    """`text` with any spelling of `plate` (spaces, dashes, case) replaced by `[plate]`.

    Officers type the plate into the purpose ("stolen car 8ABC-123"); the audit trail keeps the
    purpose, which the law requires, but never a plate in clear.
    """
    if not plate:
        return text
    norm = normalize_plate(plate)
    if not norm or norm not in normalize_plate(text):
        return text
    pattern = r"[\s-]*".join(re.escape(ch) for ch in norm)
    return re.sub(pattern, "[plate]", text, flags=re.IGNORECASE)


def _code_counts(denied: tuple[NetworkVerdict, ...]) -> dict[str, int]:
    """Code -> how many of `denied` carry it."""
    by_code: dict[str, int] = {}
    for verdict in denied:
        for code in verdict.codes:
            by_code[code] = by_code.get(code, 0) + 1
    return by_code


def _fanned_counts(how: Fanned) -> dict[str, int]:
    spread = how.spread
    counts = dict(spread_code_counts(spread))
    if how.own_at is not None:
        for code in spread.verdicts[how.own_at].codes:
            counts[code] -= 1
            if not counts[code]:
                del counts[code]
    for code in how.own.codes:
        counts[code] = counts.get(code, 0) + 1
    return counts


def _network_fields(lists: DecisionLists, how: Fanned | None = None) -> dict[str, Any]:
    """The networks of a decision on its audit record: the id lists, or beyond LIST_LIMIT
    networks counts (how many allowed, denied, and denied with each code). The lists
    themselves are then in the approved/shared and quarantine records of the same
    decision_id (docs/contract.md, section 6)."""
    if len(lists.allowed) + len(lists.denied) <= LIST_LIMIT:
        return {"allowed": list(lists.allowed), "denied": [v.agency_id for v in lists.denied]}
    by_code = _fanned_counts(how) if how is not None else _code_counts(lists.denied)
    return {
        "allowed_count": len(lists.allowed),
        "denied_count": len(lists.denied),
        "denied_codes": dict(sorted(by_code.items())),
    }


def audit_fields(
    original: Any,
    decision: Decision,
    did: str,
    decided_at: str,
    plate_hash: str | None,
    lists: DecisionLists | None = None,
) -> dict[str, Any]:
    """The docs/contract.md section 6 fields of one decision, without the chain bookkeeping."""
    if lists is None and isinstance(decision, SearchDecision | ReadDecision):
        lists = lists_of(decision)
    fields: dict[str, Any] = {
        "event_id": decision.event_id,
        "kind": quarantine_kind(decision),
        "outcome": decision.outcome,
        "codes": list(decision.codes if lists is None else lists.codes),
        "policy_version": decision.policy_version,
        "decided_at": decided_at,
        "decision_id": did,
    }
    event = original if is_json_object(original) else {}
    if isinstance(decision, MalformedDecision):
        # Fields of an invalid event are not trustworthy enough to put on the record.
        return fields
    if plate_hash is not None:
        fields["plate_sha256"] = plate_hash
    if isinstance(decision, SearchDecision):
        query = event["query"]
        plate = query.get("plate")
        fields |= {
            "requester": event["requester"]["agency_id"],
            "user_id": event["requester"]["user_id"],
            "reason": redact_plate(purpose_text(event), plate),
            "case_number": event.get("case_number"),
            "scope": event["scope"],
            "query_from": query.get("from"),
            "query_to": query.get("to"),
        }
        if decision.clamped:
            if len(decision.clamped) <= LIST_LIMIT:
                fields["clamped_windows"] = clamped_windows(decision)
            else:
                fields["clamped_count"] = len(decision.clamped)
        fields |= _network_fields(lists or lists_of(decision), fanned(decision))
    elif isinstance(decision, ReadDecision):
        fields["owner"] = event["agency_id"]
        fields |= _network_fields(lists or lists_of(decision))
    elif isinstance(decision, ChangeDecision):
        actor = event.get("actor") or {}
        fields |= {
            "owner": decision.agency_id,
            "requester": actor.get("agency_id"),
            "user_id": actor.get("user_id"),
            "reason": event.get("reason"),
            "setting": decision.setting,
            "value": event.get("value"),
            "ticket": event.get("ticket"),
        }
    elif isinstance(decision, UpsertDecision):
        fields |= {"owner": decision.event_id, "deleted": decision.deleted}
    return fields


def is_json_object(value: object) -> TypeGuard[Mapping[str, Any]]:
    """`isinstance(value, Mapping)`, answered for a dict (what parsed JSON is) without the
    ABC check's cost."""
    return type(value) is dict or isinstance(value, Mapping)
