"""Owners' sharing settings and the registry, changed only by verified, lawful events.

`PolicyState` is an immutable value: every applied change returns a new one, so a decision
always reads one consistent snapshot, and a rejected change provably leaves nothing behind.
(Verdicts computed against a snapshot are cached by the engine, `streamguard.core.verdicts`,
not in the snapshot.) Which changes are verified and lawful is `streamguard.core.control`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from streamguard.core import codes
from streamguard.core.models import Agency, OwnerSettings, Reason
from streamguard.core.statutes import StateRule, StatuteBook

__all__ = (
    "BOOL_SETTINGS",
    "LIST_SETTINGS",
    "SETTING_NAMES",
    "PolicyState",
    "RetentionLimit",
    "own_retention_limit",
    "purpose_law_reasons",
    "recipient_class_law_reasons",
    "recipient_law_reasons",
    "requester_relation",
)

BOOL_SETTINGS: Final = frozenset(
    ("national_lookup", "statewide_lookup", "federal_sharing", "require_case_number")
)
LIST_SETTINGS: Final = frozenset(("share_with", "unshare_with", "declaration_on_file"))
SETTING_NAMES: Final = BOOL_SETTINGS | LIST_SETTINGS | {"retention_days"}
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


def own_retention_limit(agency: Agency, settings: OwnerSettings) -> RetentionLimit | None:
    """The owner's own `retention_days`, without its statute's limit: what still binds a read
    that the statute exempts from its purge (a hotlist hit in New Hampshire)."""
    if settings.retention_days is None:
        return None
    return (
        settings.retention_days * _DAY,
        f"owner setting retention_days of {agency.agency_id}",
        f"{settings.retention_days:g} days",
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
    own = own_retention_limit(agency, settings)
    if own is not None:
        limits.append(own)
    return min(limits) if limits else None


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
        out_of_state = rule.out_of_state
        if recipient.state != owner.state and out_of_state is not None:
            if out_of_state.allowed_states is not None and (
                recipient.state not in out_of_state.allowed_states
            ):
                found.append(
                    Reason(
                        codes.OUT_OF_STATE_RECIPIENT,
                        out_of_state.provision.cited,
                        f"the recipient is in {recipient.state}; {rule.name} allows sharing "
                        f"{owner.state} ALPR data outside {owner.state} only with agencies of "
                        f"{', '.join(sorted(out_of_state.allowed_states))}",
                        owner_id,
                    )
                )
            elif out_of_state.rule == "forbidden":
                found.append(
                    Reason(
                        codes.OUT_OF_STATE_RECIPIENT,
                        out_of_state.provision.cited,
                        f"the recipient is in {recipient.state}; {rule.name} allows sharing "
                        f"{owner.state} ALPR data only within {owner.state}",
                        owner_id,
                    )
                )
            elif out_of_state.rule == "declaration" and not declared:
                found.append(
                    Reason(
                        codes.NO_DECLARATION_ON_FILE,
                        out_of_state.provision.cited,
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


# How a requester stands to an owner, for the purposes barred to some requesters only.
Relation = Literal["same_state", "out_of_state", "federal", "unknown"]
_RELATION_WORDS: Final = {
    "out_of_state": "an agency of another state",
    "federal": "a federal agency",
    "unknown": "an agency not in the registry (it could be of any state)",
}


def requester_relation(owner: Agency, requester: Agency | None) -> Relation:
    """The requester's relation to the owner: of its state, of another state, federal, or
    unknown (not in the registry, so of no known state)."""
    if requester is None:
        return "unknown"
    if requester.is_federal:
        return "federal"
    return "same_state" if requester.state == owner.state else "out_of_state"


def purpose_law_reasons(
    rule: StateRule, owner: Agency, categories: tuple[str, ...], relation: Relation
) -> list[Reason]:
    """What the owner's state law says about a purpose, given its classifier categories and the
    requester's `relation` to the owner.

    A purpose barred for some requesters only (a shield law) applies to those, and to an
    unknown requester: it could be any of them, and StreamGuard fails closed.
    """
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
    for shield in rule.shielded_purposes:
        if shield.category in categories and (
            relation == "unknown" or relation in shield.requesters
        ):
            found.append(
                Reason(
                    codes.CATEGORY_CODES[shield.category],
                    shield.provision.cited,
                    f"the stated purpose is {shield.category.replace('_', ' ')} and the requester "
                    f"is {_RELATION_WORDS[relation]}; {rule.name} prohibits giving such agencies "
                    f"{owner.state} ALPR data for it",
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
