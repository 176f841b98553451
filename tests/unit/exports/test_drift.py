"""Sharing drift: the list against the previous one, and against the replayed signed policy."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamguard.core.models import OwnerSettings
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import parse_ts
from streamguard.exports.drift import (
    UNSIGNED_SHARING,
    compare_baseline,
    compare_policy,
    replay_policy_log,
    signed_reach,
    unsigned_reason,
)
from streamguard.exports.orgs import OrgResolver
from streamguard.exports.sharing import Listed, SharingJudge, recipient_key
from tests.helpers import KEYS, NOW, change, search
from tests.unit.exports.samples import AGENCIES, BY_ID

OWNER = BY_ID["ca-ventura-county-so"]


def listed(org: str, *networks: str) -> Listed:
    return Listed(recipient_key(org), org, 1, 2, 1, networks or ("Net A",))


def test_baseline_lists_added_removed_and_changed_networks() -> None:
    before = [listed("Oxnard CA PD", "Net A"), listed("Dallas TX PD"), listed("Simi Valley CA PD")]
    now = [listed("oxnard ca pd", "Net A", "Net B"), listed("Simi Valley CA PD"), listed("NCRIC")]
    drift = compare_baseline(now, before, "monday.csv")
    assert drift.added == ("ncric",)
    assert [r.org for r in drift.removed] == ["Dallas TX PD"]
    assert dict(drift.changed) == {"oxnard ca pd": (("Net B",), ())}
    assert [drift.status(r.key) for r in now] == ["networks_changed", "kept", "added"]
    assert drift.changes == 3


def lines(*events: Any) -> list[bytes]:
    return [e if isinstance(e, bytes) else json.dumps(e).encode() for e in events]


def replay(*events: Any, as_of: str | None = None) -> Any:
    state = PolicyState.create(load_statutes(), AGENCIES)
    when = parse_ts(as_of) if as_of is not None else None
    return replay_policy_log(
        lines(*events),
        state,
        KEYS,
        OWNER.agency_id,
        now=NOW,
        as_of=when,
    )


def test_only_changes_the_engine_applies_count() -> None:
    """Signed and lawful: applied. Unsigned, or forbidden by the owner's law: rejected."""
    owner = OWNER.agency_id
    policy = replay(
        change(owner, "share_with", ["ca-oxnard-pd"]),
        change(owner, "statewide_lookup", True, sign=False),
        change(owner, "national_lookup", True),  # California forbids it
        change("tx-houston-pd", "share_with", ["ca-oxnard-pd"], actor={"user_id": "a"}),
        search("ca-oxnard-pd"),
        b"not json",
        b"[1, 2]",
        b"",
    )
    assert policy.settings.share_with == frozenset({"ca-oxnard-pd"})
    assert not policy.settings.national_lookup and not policy.settings.statewide_lookup
    assert (policy.owner_applied, policy.owner_rejected) == (1, 2)
    assert dict(policy.rejected_codes) == {"UNSIGNED_CHANGE": 1, "STATUTE_FORBIDS_SETTING": 1}
    assert (policy.other_changes, policy.ignored, policy.malformed, policy.lines) == (1, 1, 2, 7)


def test_changes_after_the_export_are_not_replayed() -> None:
    owner = OWNER.agency_id
    policy = replay(
        change(owner, "share_with", ["ca-oxnard-pd"], ts="2025-02-01T00:00:00Z"),
        change(owner, "unshare_with", ["ca-oxnard-pd"], ts="2025-02-20T00:00:00Z"),
        as_of="2025-02-10T00:00:00Z",
    )
    assert policy.settings.share_with == frozenset({"ca-oxnard-pd"})
    assert (policy.owner_applied, policy.after_as_of) == (1, 1)


def recipient(org: str) -> Any:
    return SharingJudge(load_statutes(), OWNER, OrgResolver(AGENCIES)).judge(listed(org))


@pytest.mark.parametrize(
    ("settings", "org", "via"),
    [
        (OwnerSettings(share_with=frozenset({"ca-oxnard-pd"})), "Oxnard CA PD", "share_with"),
        (OwnerSettings(), "Oxnard CA PD", None),
        (OwnerSettings(statewide_lookup=True), "Simi Valley CA PD", "statewide_lookup"),
        (OwnerSettings(statewide_lookup=True), "Dallas TX PD", None),
        (OwnerSettings(national_lookup=True), "Dallas TX PD", "national_lookup"),
        # a federal recipient also needs federal_sharing
        (
            OwnerSettings(share_with=frozenset({"us-ice"})),
            "U.S. Immigration and Customs Enforcement",
            None,
        ),
        (
            OwnerSettings(share_with=frozenset({"us-ice"}), federal_sharing=True),
            "U.S. Immigration and Customs Enforcement",
            "share_with",
        ),
        # share_with names registry ids: a name resolved only by its state is never in it
        (OwnerSettings(share_with=frozenset({"Simi Valley CA PD"})), "Simi Valley CA PD", None),
        (OwnerSettings(national_lookup=True), "NCRIC", None),  # unresolved: nothing explains it
        (OwnerSettings(), "Ventura County CA SO", "owner"),
    ],
)
def test_signed_reach_follows_the_contracts_access_rule(
    settings: OwnerSettings, org: str, via: str | None
) -> None:
    assert signed_reach(settings, OWNER, recipient(org)) == via


def test_compare_policy_finds_unsigned_and_absent_recipients() -> None:
    owner = OWNER.agency_id
    policy = replay(
        change(owner, "share_with", ["ca-oxnard-pd", "ca-acme-security", "us-ice"]),
        change(owner, "share_with", ["ca-example-tribal-pd"]),
    )
    # Acme (private) and ICE (federal) and the tribal agency are forbidden for a CA owner, so
    # the first change was rejected as a whole; the tribal one too.
    assert policy.settings.share_with == frozenset()
    policy = replay(change(owner, "share_with", ["ca-oxnard-pd"]))
    drift = compare_policy([recipient("Simi Valley CA PD")], policy, OWNER)
    assert drift.unsigned(recipient_key("Simi Valley CA PD"))
    assert drift.unsigned_count == 1
    assert [a.agency_id for a in drift.absent] == ["ca-oxnard-pd"]
    assert unsigned_reason(OWNER).code == UNSIGNED_SHARING
