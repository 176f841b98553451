"""Decide events: may this agency see this owner's ALPR data, for this purpose, now?

Pure functions of (event, policy snapshot, now). Access is decided first (the owner's settings),
then the law of the owner's state is applied on top and can only deny more. Every applicable
code is reported, so an audit counts attempts, not just leaks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from streamguard import codes
from streamguard.classifier import classify
from streamguard.models import (
    Agency,
    Decision,
    MalformedDecision,
    NetworkVerdict,
    ReadDecision,
    Reason,
    SearchDecision,
    UpsertDecision,
)
from streamguard.policy import PolicyState, apply_change, recipient_law_reasons
from streamguard.registry import agency_from_record
from streamguard.timeutil import parse_ts

__all__ = ("decide_event", "decide_read", "decide_search", "event_kind", "normalize_plate")

_CONTRACT: Final = "StreamGuard wire contract v1"
_SCOPES: Final = frozenset(("national", "statewide", "networks"))
_DAY: Final = 86_400.0
_PLATE_JUNK: Final = str.maketrans("", "", " -\t")
_ID_FIELDS: Final = {
    "search_request": "search_id",
    "plate_read": "read_id",
    "policy_change": "change_id",
    "agency": "agency_id",
}


def normalize_plate(plate: str) -> str:
    """Upper-case and strip spaces and dashes (CONTRACT 1), before any comparison or hash."""
    return plate.translate(_PLATE_JUNK).upper()


def event_kind(event: Mapping[str, Any]) -> str:
    """The contract kind of an input object, `raw` when it names none we know."""
    kind = event.get("type")
    if isinstance(kind, str) and kind in _ID_FIELDS:
        return kind
    if kind is None and "agency_id" in event and "name" in event:
        return "agency"
    return "raw"


def _malformed(
    state: PolicyState, event: Mapping[str, Any], kind: str, detail: str
) -> MalformedDecision:
    id_field = _ID_FIELDS.get(kind)
    event_id = event.get(id_field) if id_field else None
    return MalformedDecision(
        event_id if isinstance(event_id, str) and event_id else None,
        kind,
        Reason(codes.SCHEMA_INVALID, f"{_CONTRACT}, section 2", detail),
        state.version,
    )


def _search_schema_error(event: Mapping[str, Any]) -> str | None:
    if not isinstance(event.get("search_id"), str) or not event["search_id"]:
        return "field 'search_id' must be a non-empty string"
    if parse_ts(event.get("ts")) is None:
        return "field 'ts' must be an ISO-8601 timestamp"
    requester = event.get("requester")
    if not isinstance(requester, Mapping) or not isinstance(requester.get("agency_id"), str):
        return "field 'requester' must be an object with a string 'agency_id'"
    if not isinstance(requester.get("user_id"), str):
        return "field 'requester.user_id' must be a string"
    if event.get("scope") not in _SCOPES:
        return "field 'scope' must be one of national, statewide, networks"
    networks = event.get("networks", [])
    if not isinstance(networks, list) or not all(isinstance(n, str) for n in networks):
        return "field 'networks' must be a list of agency ids"
    if event["scope"] == "networks" and not networks:
        return "scope 'networks' needs a non-empty 'networks' list"
    query = event.get("query")
    if not isinstance(query, Mapping):
        return "field 'query' must be an object"
    for bound in ("from", "to"):
        if query.get(bound) is not None and parse_ts(query[bound]) is None:
            return f"field 'query.{bound}' must be an ISO-8601 timestamp or null"
    if query.get("plate") is not None and not isinstance(query["plate"], str):
        return "field 'query.plate' must be a string or null"
    for name in ("reason", "case_number", "offense_type", "search_type"):
        if event.get(name) is not None and not isinstance(event[name], str):
            return f"field {name!r} must be a string or null"
    return None


def purpose_text(event: Mapping[str, Any]) -> str:
    """The purpose as logged: the reason, with the offense type when both are given."""
    reason = event.get("reason") or ""
    offense = event.get("offense_type") or ""
    if reason and offense:
        return f"{offense} - {reason}"
    return str(reason or offense)


def _candidates(
    state: PolicyState, requester: Agency | None, scope: str, networks: list[str]
) -> list[str]:
    if scope == "networks":
        return list(dict.fromkeys(networks))
    if requester is None:
        # Without a known requester there is no "own network" and no home state.
        return sorted(state.national_owners) if scope == "national" else []
    pool = (
        state.national_owners
        if scope == "national"
        else state.statewide_owners.get(requester.state, frozenset())
    )
    return [requester.agency_id, *sorted(pool - {requester.agency_id})]


def _network_reasons(
    state: PolicyState,
    requester: Agency,
    owner_id: str,
    scope: str,
    categories: tuple[str, ...],
    has_case_number: bool,
) -> tuple[Reason, ...]:
    """Access and law for one owner network, without retention (which depends on the clock)."""
    memo_key = (requester.agency_id, owner_id, scope, categories, has_case_number)
    cached: tuple[Reason, ...] | None = state.memo.get(memo_key)
    if cached is not None:
        return cached
    owner = state.agencies.get(owner_id)
    if owner is None:
        found: list[Reason] = [Reason(
            codes.UNKNOWN_OWNER, f"{_CONTRACT}, section 3",
            f"owner network {owner_id} is not in the registry; nothing is shared with an "
            "unknown owner", owner_id,
        )]  # fmt: skip
    else:
        settings = state.settings_for(owner_id)
        found = []
        if owner_id != requester.agency_id:
            reachable = (
                requester.agency_id in settings.share_with
                or (
                    scope == "statewide"
                    and settings.statewide_lookup
                    and requester.state == owner.state
                )
                or (scope == "national" and settings.national_lookup)
            )
            if reachable and requester.is_federal and not settings.federal_sharing:
                reachable = False
            if not reachable:
                found.append(Reason(
                    codes.NOT_SHARED, f"{_CONTRACT}, section 2 (access)",
                    f"{owner_id} does not share its network with {requester.agency_id} "
                    f"for a {scope} search", owner_id,
                ))  # fmt: skip
        rule = state.rule_for(owner)
        found.extend(recipient_law_reasons(rule, owner, requester, settings))
        for category, provision in rule.prohibited_purposes:
            if category in categories:
                found.append(Reason(
                    codes.CATEGORY_CODES[category], provision.cited,
                    f"the stated purpose is {category.replace('_', ' ')}, which {rule.name} "
                    f"prohibits for {owner.state} ALPR data", owner_id,
                ))  # fmt: skip
        if rule.documented_purpose is not None and "vague" in categories:
            found.append(Reason(
                codes.VAGUE_PURPOSE, rule.documented_purpose.cited,
                f"the stated purpose names no crime, case or person; {rule.name} requires a "
                "documented purpose", owner_id,
            ))  # fmt: skip
        if settings.require_case_number and not has_case_number:
            found.append(Reason(
                codes.MISSING_CASE_NUMBER, f"owner setting require_case_number of {owner_id}",
                f"{owner_id} requires a case number for every search", owner_id,
            ))  # fmt: skip
    result = tuple(found)
    state.memo[memo_key] = result
    return result


def _retention_reason(
    state: PolicyState, owner_id: str, oldest: float, now: float, what: str
) -> Reason | None:
    owner = state.agencies.get(owner_id)
    if owner is None:
        return None
    rule = state.rule_for(owner)
    settings = state.settings_for(owner_id)
    limits: list[tuple[float, str, str]] = []
    if rule.retention is not None:
        limits.append((rule.retention.days, rule.retention.provision.cited, rule.retention.text))
    if settings.retention_days is not None:
        limits.append((
            settings.retention_days, f"owner setting retention_days of {owner_id}",
            f"{settings.retention_days:g} days",
        ))  # fmt: skip
    if not limits:
        return None
    days, citation, text = min(limits)
    if oldest >= now - days * _DAY:
        return None
    return Reason(
        codes.RETENTION_EXCEEDED, citation,
        f"{what} is older than the {text} {owner_id} may keep ALPR data", owner_id,
    )  # fmt: skip


def decide_search(
    event: Mapping[str, Any], state: PolicyState, now: float, *, rate_limited: bool = False
) -> SearchDecision | MalformedDecision:
    """Decide a search_request per owner network in its scope."""
    problem = _search_schema_error(event)
    if problem is not None:
        return _malformed(state, event, "search_request", problem)
    requester_id: str = event["requester"]["agency_id"]
    requester = state.agencies.get(requester_id)
    categories = classify(purpose_text(event))
    case_number = event.get("case_number")
    has_case_number = isinstance(case_number, str) and bool(case_number.strip())
    scope: str = event["scope"]

    search_reasons: list[Reason] = []
    if requester is None:
        search_reasons.append(Reason(
            codes.UNKNOWN_REQUESTER, f"{_CONTRACT}, section 3",
            f"requester {requester_id} is not in the registry; nothing is shared with an "
            "unknown agency",
        ))  # fmt: skip
    if "missing" in categories:
        search_reasons.append(Reason(
            codes.MISSING_PURPOSE, state.statutes.missing_purpose.cited,
            "the search states no purpose (empty or placeholder reason)",
        ))  # fmt: skip
    if rate_limited:
        search_reasons.append(Reason(
            codes.RATE_LIMIT_EXCEEDED, f"{_CONTRACT}, section 3",
            f"{requester_id} passed its search rate limit",
        ))  # fmt: skip

    asked_from = parse_ts(event["query"].get("from"))
    verdicts: list[NetworkVerdict] = []
    for owner_id in _candidates(state, requester, scope, event.get("networks", [])):
        reasons: tuple[Reason, ...] = ()
        if requester is not None:
            reasons = _network_reasons(
                state, requester, owner_id, scope, categories, has_case_number
            )
            if asked_from is not None:
                late = _retention_reason(state, owner_id, asked_from, now, "the asked-for window")
                if late is not None:
                    reasons = (*reasons, late)
        if not reasons and search_reasons:
            # A search-level violation denies every network; say which one on each.
            reasons = tuple(Reason(r.code, r.citation, r.detail, owner_id) for r in search_reasons)
        verdicts.append(NetworkVerdict(owner_id, reasons))

    allowed = sum(1 for v in verdicts if v.allowed)
    if search_reasons or allowed == 0:
        outcome = "denied"
    elif allowed == len(verdicts):
        outcome = "approved"
    else:
        outcome = "partial"
    return SearchDecision(
        event_id=event["search_id"],
        outcome=outcome,
        search_reasons=tuple(search_reasons),
        verdicts=tuple(verdicts),
        policy_version=state.version,
        categories=categories,
    )


def _read_schema_error(event: Mapping[str, Any]) -> str | None:
    for name in ("read_id", "agency_id", "plate"):
        if not isinstance(event.get(name), str) or not event[name]:
            return f"field {name!r} must be a non-empty string"
    if parse_ts(event.get("ts")) is None:
        return "field 'ts' must be an ISO-8601 timestamp"
    share_to = event.get("share_to", [])
    if not isinstance(share_to, list) or not all(isinstance(a, str) for a in share_to):
        return "field 'share_to' must be a list of agency ids"
    confidence = event.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool) or not isinstance(confidence, int | float)
    ):
        return "field 'confidence' must be a number"
    return None


def decide_read(
    event: Mapping[str, Any], state: PolicyState, now: float
) -> ReadDecision | MalformedDecision:
    """Decide a plate_read per recipient in its `share_to` list."""
    problem = _read_schema_error(event)
    if problem is not None:
        return _malformed(state, event, "plate_read", problem)
    owner_id: str = event["agency_id"]
    owner = state.agencies.get(owner_id)
    read_ts = parse_ts(event["ts"])
    assert read_ts is not None  # checked by the schema
    verdicts: list[NetworkVerdict] = []
    for recipient_id in dict.fromkeys(event.get("share_to", [])):
        verdicts.append(NetworkVerdict(
            recipient_id, _recipient_reasons(state, owner, owner_id, recipient_id, read_ts, now)
        ))  # fmt: skip
    allowed = sum(1 for v in verdicts if v.allowed)
    if allowed == len(verdicts):
        outcome = "shared"  # includes a read with no recipients: nothing leaves the owner
    elif allowed == 0:
        outcome = "denied"
    else:
        outcome = "partial"
    return ReadDecision(event["read_id"], outcome, (), tuple(verdicts), state.version)


def _recipient_reasons(
    state: PolicyState,
    owner: Agency | None,
    owner_id: str,
    recipient_id: str,
    read_ts: float,
    now: float,
) -> tuple[Reason, ...]:
    if owner is None:
        return (Reason(
            codes.UNKNOWN_OWNER, f"{_CONTRACT}, section 3",
            f"the read's owner {owner_id} is not in the registry; nothing is shared", recipient_id,
        ),)  # fmt: skip
    recipient = state.agencies.get(recipient_id)
    if recipient is None:
        return (Reason(
            codes.UNKNOWN_REQUESTER, f"{_CONTRACT}, section 3",
            f"recipient {recipient_id} is not in the registry; nothing is shared with an "
            "unknown agency", recipient_id,
        ),)  # fmt: skip
    settings = state.settings_for(owner_id)
    found: list[Reason] = []
    if recipient_id != owner_id:
        reachable = recipient_id in settings.share_with and (
            not recipient.is_federal or settings.federal_sharing
        )
        if not reachable:
            found.append(Reason(
                codes.NOT_SHARED, f"{_CONTRACT}, section 2 (access)",
                f"{owner_id} does not share its reads with {recipient_id}", recipient_id,
            ))  # fmt: skip
    found.extend(
        Reason(r.code, r.citation, r.detail, recipient_id)
        for r in recipient_law_reasons(state.rule_for(owner), owner, recipient, settings)
    )
    late = _retention_reason(state, owner_id, read_ts, now, "the read")
    if late is not None:
        found.append(Reason(late.code, late.citation, late.detail, recipient_id))
    return tuple(found)


def decide_event(
    event: object, state: PolicyState, now: float, keys: Mapping[str, bytes]
) -> tuple[PolicyState, Decision]:
    """Decide any parsed input object; policy changes and upserts return the next snapshot."""
    if not isinstance(event, Mapping):
        reason = Reason(
            codes.MALFORMED_EVENT, f"{_CONTRACT}, section 1", "the message is not a JSON object"
        )
        return state, MalformedDecision(None, "raw", reason, state.version)
    kind = event_kind(event)
    if kind == "search_request":
        return state, decide_search(event, state, now)
    if kind == "plate_read":
        return state, decide_read(event, state, now)
    if kind == "policy_change":
        return apply_change(state, event, keys)
    if kind == "agency":
        result = agency_from_record(event)
        if isinstance(result, str):
            return state, _malformed(state, event, "agency", result)
        new_state = state.with_agency(result)
        return new_state, UpsertDecision(result.agency_id, policy_version=new_state.version)
    reason = Reason(
        codes.SCHEMA_INVALID, f"{_CONTRACT}, section 2",
        "field 'type' must be search_request, plate_read or policy_change (or an agency record)",
    )  # fmt: skip
    return state, MalformedDecision(None, "raw", reason, state.version)
