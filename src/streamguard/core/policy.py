"""Owners' sharing settings and the registry, changed only by verified, lawful events.

`PolicyState` is an immutable value: every applied change returns a new one, so a decision
always reads one consistent snapshot, and a rejected change provably leaves nothing behind.
(Verdicts computed against a snapshot are cached by the engine, `streamguard.core.verdicts`,
not in the snapshot.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from streamguard.core import codes
from streamguard.core.models import Agency, ChangeDecision, MalformedDecision, OwnerSettings, Reason
from streamguard.core.signing import signature_valid
from streamguard.core.statutes import StateRule, StatuteBook
from streamguard.core.timeutil import parse_ts

__all__ = (
    "SETTING_NAMES",
    "PolicyState",
    "RetentionLimit",
    "apply_change",
    "purpose_law_reasons",
    "recipient_class_law_reasons",
    "recipient_law_reasons",
)

_BOOL_SETTINGS: Final = frozenset(
    ("national_lookup", "statewide_lookup", "federal_sharing", "require_case_number")
)
_LIST_SETTINGS: Final = frozenset(("share_with", "unshare_with", "declaration_on_file"))
SETTING_NAMES: Final = _BOOL_SETTINGS | _LIST_SETTINGS | {"retention_days"}
_DEFAULT_SETTINGS: Final = OwnerSettings()
_DAY: Final = 86_400.0


RetentionLimit = tuple[float, str, str]  # (seconds, citation, text): the tightest limit in force


@dataclass(frozen=True, slots=True)
class PolicyState:
    """Registry, settings and statutes as one snapshot; `revision` counts applied changes."""

    statutes: StatuteBook
    agencies: Mapping[str, Agency]
    settings: Mapping[str, OwnerSettings]
    national_owners: frozenset[str]
    statewide_owners: Mapping[str, frozenset[str]]
    # Owner -> tightest retention (statute or own setting); owners with none are absent, so the
    # hot path checks retention only where a limit exists.
    retention_limits: Mapping[str, RetentionLimit]
    revision: int = 0

    @property
    def version(self) -> str:
        return f"{self.statutes.version}/{self.revision}"

    @classmethod
    def create(
        cls,
        statutes: StatuteBook,
        agencies: Iterable[Agency] = (),
        settings: Mapping[str, OwnerSettings] | None = None,
        *,
        revision: int = 0,
    ) -> PolicyState:
        registry = {a.agency_id: a for a in agencies}
        owner_settings = dict(settings or {})
        national: set[str] = set()
        statewide: dict[str, set[str]] = {}
        limits: dict[str, RetentionLimit] = {}
        for agency_id, agency in registry.items():
            owned = owner_settings.get(agency_id, _DEFAULT_SETTINGS)
            if owned.national_lookup:
                national.add(agency_id)
            if owned.statewide_lookup:
                statewide.setdefault(agency.state, set()).add(agency_id)
            limit = _retention_limit(statutes, agency, owned)
            if limit is not None:
                limits[agency_id] = limit
        return cls(
            statutes=statutes,
            agencies=MappingProxyType(registry),
            settings=MappingProxyType(owner_settings),
            national_owners=frozenset(national),
            statewide_owners=MappingProxyType({k: frozenset(v) for k, v in statewide.items()}),
            retention_limits=MappingProxyType(limits),
            revision=revision,
        )

    def settings_for(self, agency_id: str) -> OwnerSettings:
        return self.settings.get(agency_id, _DEFAULT_SETTINGS)

    def rule_for(self, agency: Agency) -> StateRule:
        return self.statutes.rule_for(agency.state)

    def with_agency(self, agency: Agency) -> PolicyState:
        registry = dict(self.agencies)
        old = registry.get(agency.agency_id)
        registry[agency.agency_id] = agency
        return self._changed(agency.agency_id, old, agency, registry=registry)

    def without_agency(self, agency_id: str) -> PolicyState:
        registry = dict(self.agencies)
        old = registry.pop(agency_id, None)
        return self._changed(agency_id, old, None, registry=registry)

    def with_settings(self, agency_id: str, settings: OwnerSettings) -> PolicyState:
        owner_settings = dict(self.settings)
        owner_settings[agency_id] = settings
        agency = self.agencies.get(agency_id)
        return self._changed(agency_id, agency, agency, owner_settings=owner_settings)

    def _changed(
        self,
        agency_id: str,
        old: Agency | None,
        new: Agency | None,
        *,
        registry: dict[str, Agency] | None = None,
        owner_settings: dict[str, OwnerSettings] | None = None,
    ) -> PolicyState:
        """A new snapshot in which only `agency_id`'s entries of each index are recomputed.

        Copying the maps keeps snapshots immutable; touching one owner's index entries keeps a
        change cheap even with thousands of agencies.
        """
        settings_map = owner_settings if owner_settings is not None else self.settings
        owned = settings_map.get(agency_id, _DEFAULT_SETTINGS)
        national = self.national_owners - {agency_id}
        if new is not None and owned.national_lookup:
            national = national | {agency_id}
        statewide = dict(self.statewide_owners)
        if old is not None and old.state in statewide:
            statewide[old.state] = statewide[old.state] - {agency_id}
        if new is not None and owned.statewide_lookup:
            statewide[new.state] = statewide.get(new.state, frozenset()) | {agency_id}
        limits = dict(self.retention_limits)
        limits.pop(agency_id, None)
        if new is not None:
            limit = _retention_limit(self.statutes, new, owned)
            if limit is not None:
                limits[agency_id] = limit
        return PolicyState(
            statutes=self.statutes,
            agencies=MappingProxyType(registry) if registry is not None else self.agencies,
            settings=MappingProxyType(owner_settings)
            if owner_settings is not None
            else self.settings,
            national_owners=national,
            statewide_owners=MappingProxyType(statewide),
            retention_limits=MappingProxyType(limits),
            revision=self.revision + 1,
        )


def _retention_limit(
    statutes: StatuteBook, agency: Agency, settings: OwnerSettings
) -> RetentionLimit | None:
    rule = statutes.rule_for(agency.state)
    limits: list[RetentionLimit] = []
    if rule.retention is not None:
        limits.append(
            (rule.retention.days * _DAY, rule.retention.provision.cited, rule.retention.text)
        )
    if settings.retention_days is not None:
        limits.append(
            (
                settings.retention_days * _DAY,
                f"owner setting retention_days of {agency.agency_id}",
                f"{settings.retention_days:g} days",
            )
        )
    return min(limits) if limits else None


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
    if setting in _BOOL_SETTINGS:
        if not isinstance(value, bool):
            return f"setting {setting!r} takes true or false"
    elif setting in _LIST_SETTINGS:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            return f"setting {setting!r} takes a list of agency ids"
    elif setting == "retention_days":
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            return "setting 'retention_days' takes a positive number"
    else:
        return f"unknown setting {setting!r}; expected one of {', '.join(sorted(SETTING_NAMES))}"
    return None


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


def recipient_law_reasons(
    rule: StateRule, owner: Agency, recipient: Agency, settings: OwnerSettings
) -> list[Reason]:
    """What the owner's state law says about this recipient, before any purpose is known.

    Details name the owner but not the recipient: the same reasons serve every recipient of the
    same state and kind, which lets fan-out searches share them.
    """
    if recipient.agency_id == owner.agency_id:
        return []
    declared = recipient.agency_id in settings.declaration_on_file
    return recipient_class_law_reasons(rule, owner, recipient, declared=declared)


def recipient_class_law_reasons(
    rule: StateRule, owner: Agency, recipient: Agency, *, declared: bool
) -> list[Reason]:
    """`recipient_law_reasons` for a recipient other than the owner, told only whether its
    written declaration is on file: it reads the recipient's state and kind, never its id, so
    the reasons hold for every recipient of that state and kind."""
    found: list[Reason] = []
    owner_id = owner.agency_id
    if recipient.is_federal:
        if rule.federal is not None:
            if rule.federal.rule == "forbidden":
                found.append(
                    Reason(
                        codes.FEDERAL_RECIPIENT,
                        rule.federal.provision.cited,
                        f"the recipient is a federal agency; {rule.name} forbids sharing "
                        f"{owner.state} ALPR data with federal agencies",
                        owner_id,
                    )
                )
            elif rule.federal.rule == "declaration" and not declared:
                found.append(
                    Reason(
                        codes.NO_DECLARATION_ON_FILE,
                        rule.federal.provision.cited,
                        f"no written declaration from this federal recipient is on file with "
                        f"{owner_id}",
                        owner_id,
                    )
                )
    else:
        if recipient.is_private and rule.private is not None and rule.private.rule == "forbidden":
            found.append(
                Reason(
                    codes.PRIVATE_RECIPIENT,
                    rule.private.provision.cited,
                    f"the recipient is a private entity; {rule.name} allows sharing only "
                    "with law enforcement or public agencies",
                    owner_id,
                )
            )
        if recipient.state != owner.state and rule.out_of_state is not None:
            if rule.out_of_state.rule == "forbidden":
                found.append(
                    Reason(
                        codes.OUT_OF_STATE_RECIPIENT,
                        rule.out_of_state.provision.cited,
                        f"the recipient is in {recipient.state}; {rule.name} allows sharing "
                        f"{owner.state} ALPR data only within {owner.state}",
                        owner_id,
                    )
                )
            elif rule.out_of_state.rule == "declaration" and not declared:
                found.append(
                    Reason(
                        codes.NO_DECLARATION_ON_FILE,
                        rule.out_of_state.provision.cited,
                        f"no written declaration from this {recipient.state} recipient is on file "
                        f"with {owner_id}",
                        owner_id,
                    )
                )
    if (
        not found
        and rule.eligible_kinds is not None
        and (recipient.kind not in rule.eligible_kinds.kinds)
    ):
        found.append(
            Reason(
                codes.INELIGIBLE_RECIPIENT,
                rule.eligible_kinds.provision.cited,
                f"the recipient is a {recipient.kind} agency, not one {rule.name} allows",
                owner_id,
            )
        )
    return found


def purpose_law_reasons(
    rule: StateRule, owner: Agency, categories: tuple[str, ...]
) -> list[Reason]:
    """What the owner's state law says about a purpose, given its classifier categories."""
    found: list[Reason] = []
    for category, provision in rule.prohibited_purposes:
        if category in categories:
            found.append(
                Reason(
                    codes.CATEGORY_CODES[category],
                    provision.cited,
                    f"the stated purpose is {category.replace('_', ' ')}, which {rule.name} "
                    f"prohibits for {owner.state} ALPR data",
                    owner.agency_id,
                )
            )
    if rule.documented_purpose is not None and "vague" in categories:
        found.append(
            Reason(
                codes.VAGUE_PURPOSE,
                rule.documented_purpose.cited,
                f"the stated purpose names no crime, case or person; {rule.name} requires a "
                "documented purpose",
                owner.agency_id,
            )
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


def apply_change(
    state: PolicyState, change: Mapping[str, Any], keys: Mapping[str, bytes]
) -> tuple[PolicyState, ChangeDecision | MalformedDecision]:
    """Verify one policy_change and apply it, or reject it with every reason that applies."""
    change_id = change.get("change_id")
    event_id = change_id if isinstance(change_id, str) else None
    problem = _schema_error(change)
    if problem is not None:
        reason = Reason(codes.SCHEMA_INVALID, "StreamGuard wire contract v1, section 2", problem)
        return state, MalformedDecision(event_id, "policy_change", reason, state.version)

    agency_id: str = change["agency_id"]
    setting: str = change["setting"]
    value = change.get("value")
    reasons: list[Reason] = []
    key_id = change.get("key_id")
    contract = "StreamGuard wire contract v1, section 2 (signed policy changes)"
    if not key_id or not change.get("signature"):
        reasons.append(
            Reason(
                codes.UNSIGNED_CHANGE,
                contract,
                f"change of {setting} for {agency_id} carries no key_id or signature",
                agency_id,
            )
        )
    elif key_id not in keys or not signature_valid(change, keys[key_id]):
        reasons.append(
            Reason(
                codes.INVALID_SIGNATURE,
                contract,
                f"signature does not verify under key {key_id!r}",
                agency_id,
            )
        )

    owner = state.agencies.get(agency_id)
    if owner is None:
        reasons.append(
            Reason(
                codes.UNKNOWN_AGENCY,
                contract,
                f"agency {agency_id} is not in the registry",
                agency_id,
            )
        )
    actor_agency = change["actor"].get("agency_id")
    if actor_agency is not None and actor_agency != agency_id:
        reasons.append(
            Reason(
                codes.ACTOR_NOT_AUTHORIZED,
                contract,
                f"an administrator of {actor_agency} cannot change the settings of {agency_id}",
                agency_id,
            )
        )
    if setting in _LIST_SETTINGS:
        unknown = [a for a in value or () if a not in state.agencies]
        if unknown:
            reasons.append(
                Reason(
                    codes.UNKNOWN_AGENCY,
                    contract,
                    f"{setting} names agencies not in the registry: {', '.join(unknown)}",
                    agency_id,
                )
            )
    if owner is not None:
        reasons.extend(_forbidden_by_statute(state, owner, setting, value))

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
