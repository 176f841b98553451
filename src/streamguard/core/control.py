"""Control records: policy changes and agency records, verified, checked for replays, applied.

Pure. docs/contract.md section 2a: a record that changes where data may flow (an owner's
settings, the registry) takes effect only when a key allowed to change exactly that signed it,
it was never decided before, it is in order, and it is dated near the deciding clock. Then the
owner's state law still decides what the setting may be (`STATUTE_FORBIDS_SETTING`). Every
reason that applies is listed; any one of them means nothing changes.

What was decided is read from a `ReplayMemory` (`streamguard.core.replay`); the caller writes
back `replay_entry_for(...)` after each decision, so the same rules serve `streamguard evaluate`
(an in-process ledger) and the worker (changelogged tables).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from streamguard.core import codes
from streamguard.core.keys import Key
from streamguard.core.models import (
    Agency,
    ChangeDecision,
    Decision,
    Event,
    MalformedDecision,
    OwnerSettings,
    Reason,
    UpsertDecision,
)
from streamguard.core.policy import (
    BOOL_SETTINGS,
    LIST_SETTINGS,
    SETTING_NAMES,
    PolicyState,
    recipient_law_reasons,
)
from streamguard.core.registry import agency_from_record
from streamguard.core.replay import (
    ControlRecord,
    ReplayEntry,
    ReplayMemory,
    first_decision,
    kept_rejection,
    replay_entry,
    replay_reasons,
    superseded,
)
from streamguard.core.timeutil import parse_ts

__all__ = (
    "apply_agency_record",
    "apply_change",
    "registry_change",
    "replay_entry_for",
    "widened",
)

_SCHEMA: Final = "StreamGuard wire contract v1.1, section 2"
_KEYS: Final = "StreamGuard wire contract v1.1, section 2a (keys and signed control records)"
_LAW: Final = "StreamGuard wire contract v1.1, section 2 (signed policy changes)"


# --- signatures ---------------------------------------------------------------------------------


def _signature_reasons(
    kind: str, record: Mapping[str, Any], keys: Mapping[str, Key], subject: str
) -> tuple[list[Reason], Key | None]:
    """Signature and key-binding reasons of a control record, and the key it names (if any)."""
    what = "change" if kind == "policy_change" else "agency record"
    key_id = record.get("key_id")
    if not key_id or not record.get("signature"):
        return [
            Reason(
                codes.UNSIGNED_CHANGE,
                _KEYS,
                f"{what} of {subject} carries no key_id or signature",
                subject,
            )
        ], None
    key = keys.get(key_id) if isinstance(key_id, str) else None
    if key is None:
        return [
            Reason(
                codes.INVALID_SIGNATURE,
                _KEYS,
                f"no key {key_id!r} is installed (KEYS.json); nothing it signed verifies",
                subject,
            )
        ], None
    found: list[Reason] = []
    if not key.verifies(kind, record):
        found.append(
            Reason(
                codes.INVALID_SIGNATURE,
                _KEYS,
                f"signature does not verify under key {key_id!r}",
                subject,
            )
        )
    if not key.may_sign(kind, subject):
        allowed = "agency records" if key.is_registry else f"policy changes of {key.agency_id}"
        found.append(
            Reason(
                codes.KEY_NOT_AUTHORIZED,
                _KEYS,
                f"key {key_id!r} is bound to {key.binding} and signs {allowed} only, "
                f"not this {what} of {subject}",
                subject,
            )
        )
    return found, key


# --- policy changes -----------------------------------------------------------------------------


def _schema_error(change: Mapping[str, Any]) -> str | None:
    for name in ("change_id", "ts", "agency_id", "setting"):
        if not isinstance(change.get(name), str) or not change[name]:
            return f"field {name!r} must be a non-empty string"
    if parse_ts(change["ts"]) is None:
        return "field 'ts' is not an ISO-8601 timestamp"
    actor = change.get("actor")
    if not isinstance(actor, Mapping) or not isinstance(actor.get("user_id"), str):
        return "field 'actor' must be an object with a string 'user_id'"
    if "agency_id" in actor and not isinstance(actor["agency_id"], str):
        return "field 'actor.agency_id' must be a string"
    for name in ("ticket", "reason", "key_id", "signature"):
        if change.get(name) is not None and not isinstance(change[name], str):
            return f"field {name!r} must be a string or null"
    setting = change["setting"]
    value = change.get("value")
    if setting in BOOL_SETTINGS:
        if not isinstance(value, bool):
            return f"setting {setting!r} takes true or false"
    elif setting in LIST_SETTINGS:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            return f"setting {setting!r} takes a list of agency ids"
    elif setting == "retention_days":
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            return "setting 'retention_days' takes a positive number"
    else:
        return f"unknown setting {setting!r}; expected one of {', '.join(sorted(SETTING_NAMES))}"
    return None


def _actor_reasons(change: Mapping[str, Any], agency_id: str, key: Key | None) -> list[Reason]:
    """`actor.agency_id`, when given, must be the changed agency and the key's agency."""
    actor_agency = change["actor"].get("agency_id")
    if actor_agency is None:
        return []  # the key's binding says who acted
    bound = key.agency_id if key is not None and key.agency_id is not None else agency_id
    if actor_agency == agency_id == bound:
        return []
    return [
        Reason(
            codes.ACTOR_NOT_AUTHORIZED,
            _KEYS,
            f"an administrator of {actor_agency} cannot change the settings of {agency_id}"
            + (f" with a key of {bound}" if bound != agency_id else ""),
            agency_id,
        )
    ]


def _forbidden_by_statute(
    state: PolicyState, owner: Agency, setting: str, value: Any
) -> list[Reason]:
    """Reasons the owner's state law forbids this setting; turning sharing off is always lawful."""
    rule = state.rule_for(owner)
    found: list[Reason] = []

    def forbid(citation: str, detail: str) -> None:
        found.append(Reason(codes.STATUTE_FORBIDS_SETTING, citation, detail, owner.agency_id))

    if setting == "national_lookup" and value is True:
        for recipients, who in ((rule.out_of_state, "out-of-state"), (rule.federal, "federal")):
            if recipients is not None and recipients.rule == "forbidden":
                forbid(
                    recipients.provision.cited,
                    f"national lookup would open {owner.state} data to {who} agencies, "
                    f"which {rule.name} forbids",
                )
    elif setting == "federal_sharing" and value is True:
        if rule.federal is not None and rule.federal.rule == "forbidden":
            forbid(
                rule.federal.provision.cited,
                f"{rule.name} forbids sharing {owner.state} ALPR data with federal agencies",
            )
    elif setting == "share_with":
        for agency_id in value:
            recipient = state.agencies.get(agency_id)
            if recipient is None:
                continue  # reported as UNKNOWN_AGENCY by the caller
            for reason in recipient_law_reasons(
                rule, owner, recipient, state.settings_for(owner.agency_id)
            ):
                if reason.code == codes.NO_DECLARATION_ON_FILE:
                    continue  # lawful to configure; each search still needs the declaration
                forbid(reason.citation, f"sharing with {agency_id}: {reason.detail}")
    elif (
        setting == "retention_days"
        and rule.retention is not None
        and float(value) > rule.retention.days
    ):
        forbid(
            rule.retention.provision.cited,
            f"retention of {value} days exceeds the {rule.retention.text} that {rule.name} allows",
        )
    return found


def _updated(settings: OwnerSettings, setting: str, value: Any) -> OwnerSettings:
    if setting == "share_with":
        return dataclasses.replace(settings, share_with=settings.share_with | frozenset(value))
    if setting == "unshare_with":
        return dataclasses.replace(settings, share_with=settings.share_with - frozenset(value))
    if setting == "declaration_on_file":
        # The list is the set of declarations held now: a withdrawn one must stop counting.
        return dataclasses.replace(settings, declaration_on_file=frozenset(value))
    if setting == "retention_days":
        return dataclasses.replace(settings, retention_days=float(value))
    return dataclasses.replace(settings, **{setting: value})


def _change_record(change: Mapping[str, Any], source: str | None) -> ControlRecord:
    ts = parse_ts(change["ts"])
    assert ts is not None  # checked by the schema
    return ControlRecord.of_change(
        change["change_id"], change["agency_id"], change["setting"], ts, source
    )


def apply_change(
    state: PolicyState,
    change: Mapping[str, Any],
    keys: Mapping[str, Key],
    memory: ReplayMemory,
    now: float,
    *,
    source: str | None = None,
) -> tuple[PolicyState, ChangeDecision | MalformedDecision]:
    """Verify one policy_change and apply it, or reject it with every reason that applies.

    `source` is where the change was read (`topic-partition@offset`), for telling a redelivery
    after a crash from a replay; None in `evaluate`.
    """
    change_id = change.get("change_id")
    event_id = change_id if isinstance(change_id, str) else None
    problem = _schema_error(change)
    if problem is not None:
        reason = Reason(codes.SCHEMA_INVALID, _SCHEMA, problem)
        return state, MalformedDecision(event_id, "policy_change", reason, state.version)

    agency_id: str = change["agency_id"]
    setting: str = change["setting"]
    value = change.get("value")
    record = _change_record(change, source)
    first = first_decision(memory, record)
    if first is not None and first.applied and superseded(memory, record):
        # Redelivered after a crash, and a later change of its setting applied since: its
        # first decision stands, and applying it again would undo the later change.
        return state, ChangeDecision(
            event_id, agency_id, setting, applied=True, policy_version=state.version
        )
    reasons, key = _signature_reasons("policy_change", change, keys, agency_id)
    reasons.extend(_actor_reasons(change, agency_id, key))
    reasons.extend(replay_reasons(memory, record, now))
    owner = state.agencies.get(agency_id)
    if owner is None:
        reasons.append(
            Reason(
                codes.UNKNOWN_AGENCY, _LAW, f"agency {agency_id} is not in the registry", agency_id
            )
        )
    if setting in LIST_SETTINGS:
        unknown = [a for a in value or () if a not in state.agencies]
        if unknown:
            reasons.append(
                Reason(
                    codes.UNKNOWN_AGENCY,
                    _LAW,
                    f"{setting} names agencies not in the registry: {', '.join(unknown)}",
                    agency_id,
                )
            )
    if owner is not None:
        reasons.extend(_forbidden_by_statute(state, owner, setting, value))
    if not reasons and first is not None and not first.applied:
        reasons.append(kept_rejection(first, agency_id))

    if reasons:
        return state, ChangeDecision(
            event_id,
            agency_id,
            setting,
            applied=False,
            reasons=tuple(reasons),
            policy_version=state.version,
        )
    new_state = state.with_settings(
        agency_id, _updated(state.settings_for(agency_id), setting, value)
    )
    return new_state, ChangeDecision(
        event_id, agency_id, setting, applied=True, policy_version=new_state.version
    )


# --- agency records -----------------------------------------------------------------------------


def apply_agency_record(
    state: PolicyState,
    event: Event,
    keys: Mapping[str, Key],
    memory: ReplayMemory,
    now: float,
    *,
    source: str | None = None,
) -> tuple[PolicyState, UpsertDecision | MalformedDecision]:
    """Apply a registry record (or tombstone) of the agencies topic or an evaluate line.

    A tombstone needs no signature: an agency that disappears becomes unknown, which only
    denies. A record takes effect only with a registry key's valid signature over
    `[agency_id, name, state, kind, ts]`, and only those fields are applied (`aliases` is not
    signed, so it is not taken from the topic).
    """
    if event.deleted and event.event_id is not None:
        new_state = state.without_agency(event.event_id)
        return new_state, UpsertDecision(event.event_id, True, new_state.version)
    body = event.body
    parsed = agency_from_record(body)
    if isinstance(parsed, str):
        return state, _malformed_agency(state, event.event_id, parsed)
    agency = dataclasses.replace(parsed, aliases=())
    reasons, _key = _signature_reasons("agency", body, keys, agency.agency_id)
    ts = parse_ts(body.get("ts"))
    unsigned = bool(reasons) and reasons[0].code == codes.UNSIGNED_CHANGE
    if ts is None and not unsigned:
        detail = "field 'ts' must be an ISO-8601 timestamp: a signed agency record carries its ts"
        return state, _malformed_agency(state, agency.agency_id, detail)
    if ts is not None:
        record = ControlRecord.of_agency(agency.agency_id, ts, source)
        first = first_decision(memory, record)
        if first is not None and first.applied and superseded(memory, record):
            # As for policy changes: a later record of this agency applied since stands.
            return state, UpsertDecision(agency.agency_id, False, state.version)
        reasons.extend(replay_reasons(memory, record, now))
        if not reasons and first is not None and not first.applied:
            reasons.append(kept_rejection(first, agency.agency_id))
    if reasons:
        return state, UpsertDecision(agency.agency_id, False, state.version, reasons=tuple(reasons))
    new_state = state.with_agency(agency)
    return new_state, UpsertDecision(agency.agency_id, False, new_state.version)


def _malformed_agency(state: PolicyState, event_id: str | None, detail: str) -> MalformedDecision:
    return MalformedDecision(
        event_id, "agency", Reason(codes.SCHEMA_INVALID, _SCHEMA, detail), state.version
    )


# --- what the caller remembers and tells --------------------------------------------------------


def replay_entry_for(
    event: Event, decision: Decision, now: float, *, source: str | None = None
) -> ReplayEntry | None:
    """What the replay memory keeps of this decision: None for what was never decided (malformed
    records, tombstones, unsigned agency records without a `ts`) and for other events."""
    body = event.body
    if isinstance(decision, ChangeDecision) and event.kind == "policy_change":
        return replay_entry(_change_record(body, source), applied=decision.applied, now=now)
    if isinstance(decision, UpsertDecision) and event.kind == "agency" and not decision.deleted:
        ts = parse_ts(body.get("ts"))
        if ts is None:
            return None
        record = ControlRecord.of_agency(decision.event_id, ts, source)
        return replay_entry(record, applied=decision.applied, now=now)
    return None


def widened(before: OwnerSettings, after: OwnerSettings) -> tuple[str, ...]:
    """How `after` opens access compared with `before` (docs/contract.md section 2a, alerts)."""
    found: list[str] = []
    for name in ("national_lookup", "statewide_lookup", "federal_sharing"):
        if getattr(after, name) and not getattr(before, name):
            found.append(f"{name} turned on")
    for name in ("share_with", "declaration_on_file"):
        added = sorted(getattr(after, name) - getattr(before, name))
        if added:
            found.append(f"{name} added {', '.join(added)}")
    if (
        before.retention_days is not None
        and after.retention_days is not None
        and after.retention_days > before.retention_days
    ):
        found.append(
            f"retention_days raised from {before.retention_days:g} to {after.retention_days:g}"
        )
    if before.require_case_number and not after.require_case_number:
        found.append("require_case_number turned off")
    return tuple(found)


def registry_change(before: Agency | None, after: Agency | None) -> str | None:
    """What an applied agency record or tombstone changed of an existing agency's standing:
    its state or kind, or its existence. None for a new agency or a change of name only."""
    if before is None:
        return None
    if after is None:
        return f"{before.agency_id} ({before.state}, {before.kind}) was deleted from the registry"
    moved = [
        f"{name} {getattr(before, name)} -> {getattr(after, name)}"
        for name in ("state", "kind")
        if getattr(before, name) != getattr(after, name)
    ]
    return f"{after.agency_id}: {', '.join(moved)}" if moved else None
