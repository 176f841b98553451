"""Sharing drift: what changed since the last sharing list, and what no signed change explains.

Two comparisons, both optional:

* **Baseline.** The previous export of the same list: recipients added, removed, and recipients
  whose set of the owner's networks changed.
* **Signed policy.** StreamGuard's own record of the owner's settings is the signed
  policy-change log (docs/contract.md section 2: `policy_change` records, as exported from the
  policy topic). It is replayed offline from an empty state with the core's `decide_event`, the
  engine `streamguard evaluate` runs, so a change counts only if the engine would have applied
  it (signature verified, lawful). The resulting settings say which recipients the owner chose
  to share with; a recipient the vendor lists that they do not explain is `UNSIGNED_SHARING`:
  sharing that was switched on outside the signed process (the silent flip).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from streamguard.core.control import replay_entry_for
from streamguard.core.engine import decide_event
from streamguard.core.keys import Key
from streamguard.core.models import Agency, ChangeDecision, OwnerSettings, Reason
from streamguard.core.policy import PolicyState
from streamguard.core.replay import ReplayLedger
from streamguard.core.timeutil import parse_ts
from streamguard.exports.sharing import Listed, Recipient
from streamguard.stream.intake import Unreadable, decode

__all__ = (
    "SHARE_WITH",
    "UNSIGNED_SHARING",
    "BaselineDrift",
    "PolicyDrift",
    "SignedPolicy",
    "compare_baseline",
    "compare_policy",
    "replay_policy_log",
    "signed_reach",
    "unsigned_reason",
)

# Additive code (docs/contract.md allows extra codes); documented in docs/audit.md.
UNSIGNED_SHARING: Final = "UNSIGNED_SHARING"
SHARE_WITH: Final = "share_with"
_SIGNED_PROCESS: Final = "StreamGuard wire contract v1, section 2 (signed policy changes)"


# --- baseline ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BaselineDrift:
    """How the recipients changed since the baseline list."""

    baseline: str
    added: tuple[str, ...]  # keys of recipients not in the baseline
    removed: tuple[Listed, ...]  # baseline recipients no longer listed
    # key -> (networks now shared that were not, networks no longer shared)
    changed: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]

    def status(self, key: str) -> str:
        if key in self.added:
            return "added"
        if key in self.changed:
            return "networks_changed"
        return "kept"

    @property
    def changes(self) -> int:
        return len(self.added) + len(self.removed) + len(self.changed)


def compare_baseline(
    current: Sequence[Listed], previous: Sequence[Listed], baseline: str
) -> BaselineDrift:
    before = {r.key: r for r in previous}
    now = {r.key for r in current}
    changed: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for recipient in current:
        old = before.get(recipient.key)
        if old is None:
            continue
        gained = tuple(n for n in recipient.networks if n not in old.networks)
        lost = tuple(n for n in old.networks if n not in recipient.networks)
        if gained or lost:
            changed[recipient.key] = (gained, lost)
    return BaselineDrift(
        baseline=baseline,
        added=tuple(r.key for r in current if r.key not in before),
        removed=tuple(r for r in previous if r.key not in now),
        changed=changed,
    )


# --- the signed policy ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedPolicy:
    """The owner's settings after replaying a signed policy-change log, and how it went."""

    log: str
    settings: OwnerSettings
    registry: Mapping[str, Agency]  # after the log's agency records
    lines: int
    owner_applied: int
    owner_rejected: int
    rejected_codes: tuple[tuple[str, int], ...]  # codes of the owner's rejected changes
    other_changes: int  # changes and agency records of other owners, replayed too
    ignored: int  # searches and reads: not part of the settings
    malformed: int  # not JSON, or not a decidable record
    after_as_of: int  # the owner's changes dated after --as-of, not replayed


def replay_policy_log(
    lines: Iterable[bytes],
    state: PolicyState,
    keys: Mapping[str, Key],
    owner_id: str,
    *,
    now: float,
    as_of: float | None = None,
    log: str = "",
) -> SignedPolicy:
    """Replay `lines` (JSON lines) in order through the engine; returns the owner's settings.

    Every policy_change and agency record is decided in log order, as the worker would, with
    the same replay rules (docs/contract.md section 2a); search and read events are skipped.
    Each record is decided at its own `ts` (no later than `now`): the worker decided it when it
    was sent, so an old change of a long log is not refused for its age, while one dated
    after `now` is still FUTURE_DATED. Changes dated after `as_of` (the time the sharing list
    was exported) are not replayed, so a change made after the export is not held against it.
    """
    counts: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    memory = ReplayLedger()
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        counts["lines"] += 1
        # The same front door as `evaluate` and the worker: one rule for what an event is.
        event = decode(line, state.version)
        if isinstance(event, Unreadable):
            counts["malformed"] += 1
            continue
        if event.kind in ("search_request", "plate_read"):
            counts["ignored"] += 1
            continue
        if event.kind == "policy_change" and as_of is not None:
            ts = event.body.get("ts")
            when = parse_ts(ts) if isinstance(ts, str) else None
            if when is not None and when > as_of:
                counts["after"] += 1
                continue
        ts = event.body.get("ts")
        when = parse_ts(ts) if isinstance(ts, str) else None
        at = now if when is None else min(when, now)
        state, decision = decide_event(event, state, at, keys, memory=memory)
        entry = replay_entry_for(event, decision, at)
        if entry is not None:
            memory.remember(entry)
        if not isinstance(decision, ChangeDecision):
            counts["malformed" if decision.outcome == "malformed" else "other"] += 1
        elif decision.agency_id != owner_id:
            counts["other"] += 1
        elif decision.applied:
            counts["applied"] += 1
        else:
            counts["rejected"] += 1
            rejected.update(decision.codes)
    return SignedPolicy(
        log=log,
        settings=state.settings_for(owner_id),
        registry=state.agencies,
        lines=counts["lines"],
        owner_applied=counts["applied"],
        owner_rejected=counts["rejected"],
        rejected_codes=tuple(rejected.most_common()),
        other_changes=counts["other"],
        ignored=counts["ignored"],
        malformed=counts["malformed"],
        after_as_of=counts["after"],
    )


def signed_reach(settings: OwnerSettings, owner: Agency, recipient: Recipient) -> str | None:
    """The signed setting that lets `recipient` reach the owner's network, None if none does.

    The contract's access rule (docs/contract.md section 2): the recipient is in `share_with`,
    or it is in the owner's state and `statewide_lookup` is on, or `national_lookup` is on; a
    federal recipient also needs `federal_sharing`. Only a registry agency can be in
    `share_with`, which names agency ids.
    """
    agency = recipient.agency
    if recipient.via == "owner":
        return "owner"
    if agency is None:
        return None
    via: str | None = None
    if recipient.via == "registry" and agency.agency_id in settings.share_with:
        via = SHARE_WITH
    elif settings.statewide_lookup and agency.state == owner.state:
        via = "statewide_lookup"
    elif settings.national_lookup:
        via = "national_lookup"
    if via is not None and agency.is_federal and not settings.federal_sharing:
        return None
    return via


@dataclass(frozen=True, slots=True)
class PolicyDrift:
    """The listed recipients against the signed policy."""

    policy: SignedPolicy
    reach: Mapping[str, str | None]  # recipient key -> the signed setting that explains it
    absent: tuple[Agency, ...]  # in signed share_with and reachable, but not listed

    def unsigned(self, key: str) -> bool:
        return key in self.reach and self.reach[key] is None

    @property
    def unsigned_count(self) -> int:
        return sum(1 for v in self.reach.values() if v is None)


def compare_policy(
    recipients: Sequence[Recipient], policy: SignedPolicy, owner: Agency
) -> PolicyDrift:
    settings = policy.settings
    reach = {r.listed.key: signed_reach(settings, owner, r) for r in recipients}
    listed_ids = {r.agency_id for r in recipients if r.via == "registry"}
    absent = tuple(
        agency
        for agency_id in sorted(settings.share_with)
        if (agency := policy.registry.get(agency_id)) is not None
        and agency_id not in listed_ids
        and (settings.federal_sharing or not agency.is_federal)
    )
    return PolicyDrift(policy, reach, absent)


def unsigned_reason(owner: Agency) -> Reason:
    return Reason(
        UNSIGNED_SHARING,
        _SIGNED_PROCESS,
        f"the vendor lists this organization as receiving {owner.agency_id}'s networks, but no "
        f"applied signed change of {owner.agency_id} shares with it (share_with, "
        "statewide_lookup or national_lookup): sharing set outside the signed process",
        owner.agency_id,
    )
