"""Policy changes: only signed, lawful changes by the owner's own administrators take effect."""

from __future__ import annotations

import dataclasses

import pytest

from streamguard.core.models import ChangeDecision, MalformedDecision
from streamguard.core.policy import PolicyState
from streamguard.core.signing import change_payloads
from streamguard.core.statutes import load_statutes
from streamguard.local.testing import signed
from tests.helpers import AGENCIES, KEYS, SIGNERS, apply_change, change

VENTURA_KEY = SIGNERS.for_agency("ca-ventura-county-so")


def test_signed_lawful_change_is_applied_and_bumps_the_version(state: PolicyState) -> None:
    """A signed in-state share takes effect in a new snapshot with a new policy version."""
    new_state, decision = apply_change(
        state, change("ca-ventura-county-so", "share_with", ["ca-oxnard-pd"]), KEYS
    )
    assert isinstance(decision, ChangeDecision)
    assert decision.applied and decision.outcome == "applied" and decision.codes == ()
    assert new_state.settings_for("ca-ventura-county-so").share_with == {"ca-oxnard-pd"}
    assert new_state.version != state.version == decision.policy_version.replace("/1", "/0")
    assert state.settings_for("ca-ventura-county-so").share_with == frozenset()


def test_ventura_flip_unsigned_national_lookup_changes_nothing(state: PolicyState) -> None:
    """The Ventura failure: an unsigned National Lookup flip for a California owner is rejected."""
    new_state, decision = apply_change(
        state, change("ca-ventura-county-so", "national_lookup", True, sign=False), KEYS
    )
    assert isinstance(decision, ChangeDecision)
    assert decision.outcome == "rejected"
    assert decision.codes == ("UNSIGNED_CHANGE", "STATUTE_FORBIDS_SETTING")
    assert new_state is state
    assert "ca-ventura-county-so" not in new_state.national_owners
    citations = " ".join(r.citation for r in decision.reasons)
    assert "1798.90.55" in citations


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        # a signature from someone without the key
        (lambda e: {**e, "signature": "0" * 64}, "INVALID_SIGNATURE"),
        # a key id nobody configured
        (lambda e: {**e, "key_id": "k-unknown"}, "INVALID_SIGNATURE"),
        # the value changed after signing
        (lambda e: {**e, "value": ["ca-uc-pd"]}, "INVALID_SIGNATURE"),
        # the ticket changed after signing
        (lambda e: {**e, "ticket": "CHG-2"}, "INVALID_SIGNATURE"),
        # signature removed, key id kept
        (lambda e: {k: v for k, v in e.items() if k != "signature"}, "UNSIGNED_CHANGE"),
        # key id removed, signature kept
        (lambda e: {k: v for k, v in e.items() if k != "key_id"}, "UNSIGNED_CHANGE"),
    ],
)
def test_forged_or_unsigned_changes_are_rejected(state: PolicyState, mutate, code: str) -> None:  # type: ignore[no-untyped-def]
    """Any change whose signature does not verify under a configured key is rejected."""
    event = mutate(change("ca-ventura-county-so", "share_with", ["ca-oxnard-pd"]))
    new_state, decision = apply_change(state, event, KEYS)
    assert decision.codes == (code,)
    assert new_state is state


def test_signature_accepts_raw_utf8_serialisation(state: PolicyState) -> None:
    """A producer that does not escape non-ASCII (ensure_ascii=False) still verifies."""
    import json

    event = change(
        "ca-ventura-county-so", "share_with", ["ca-oxnard-pd"], sign=False, ticket="CHG-é"
    )
    payload = json.dumps(
        [
            event["change_id"],
            event["ts"],
            event["agency_id"],
            event["setting"],
            event["value"],
            "admin-1",
            "CHG-é",
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    event["key_id"] = VENTURA_KEY.key_id
    event["signature"] = VENTURA_KEY.sign_payload(payload)
    _, decision = apply_change(state, event, KEYS)
    assert decision.outcome == "applied"


def test_object_values_are_signed_with_sorted_keys() -> None:
    """Keys of an object value are sorted before signing, so producers' key order is irrelevant."""
    a = {
        "change_id": "c",
        "ts": "t",
        "agency_id": "a",
        "setting": "s",
        "value": {"b": 1, "a": 2},
        "actor": {"user_id": "u"},
        "ticket": None,
    }
    b = {**a, "value": {"a": 2, "b": 1}}
    assert change_payloads(a) == change_payloads(b)


@pytest.mark.parametrize(
    ("agency_id", "setting", "value", "codes"),
    [
        # California: sharing only with California public agencies
        ("ca-ventura-county-so", "national_lookup", True, ("STATUTE_FORBIDS_SETTING",) * 2),
        ("ca-ventura-county-so", "federal_sharing", True, ("STATUTE_FORBIDS_SETTING",)),
        ("ca-ventura-county-so", "share_with", ["tx-houston-pd"], ("STATUTE_FORBIDS_SETTING",)),
        ("ca-ventura-county-so", "share_with", ["us-fbi"], ("STATUTE_FORBIDS_SETTING",)),
        ("ca-ventura-county-so", "share_with", ["ca-acme-security"], ("STATUTE_FORBIDS_SETTING",)),
        ("ca-ventura-county-so", "share_with", ["ca-tribal-pd"], ("STATUTE_FORBIDS_SETTING",)),
        # Virginia and Washington: no out-of-state or federal sharing
        ("va-richmond-pd", "national_lookup", True, ("STATUTE_FORBIDS_SETTING",) * 2),
        ("wa-seattle-pd", "federal_sharing", True, ("STATUTE_FORBIDS_SETTING",)),
        # retention may be shortened, never lengthened past the statute
        ("va-richmond-pd", "retention_days", 30, ("STATUTE_FORBIDS_SETTING",)),
        ("ga-atlanta-pd", "retention_days", 1000, ("STATUTE_FORBIDS_SETTING",)),
        # private recipients where the law allows law enforcement only
        ("nh-concord-pd", "share_with", ["tx-acme-repo"], ("STATUTE_FORBIDS_SETTING",)),
        ("ar-conway-pd", "share_with", ["tx-acme-repo"], ("STATUTE_FORBIDS_SETTING",)),
    ],
)
def test_statute_forbidden_settings_never_take_effect(
    state: PolicyState, agency_id: str, setting: str, value: object, codes: tuple[str, ...]
) -> None:
    """A signed change that would let data flow where the owner's law forbids is rejected."""
    new_state, decision = apply_change(state, change(agency_id, setting, value), KEYS)
    assert decision.codes[:1] == ("STATUTE_FORBIDS_SETTING",)
    assert tuple(r.code for r in decision.reasons) == codes
    assert new_state is state


@pytest.mark.parametrize(
    ("agency_id", "setting", "value"),
    [
        ("ca-ventura-county-so", "national_lookup", False),  # turning sharing off is always lawful
        ("ca-ventura-county-so", "statewide_lookup", True),
        (
            "ca-ventura-county-so",
            "share_with",
            ["ca-uc-pd"],
        ),  # campus police are CA public agencies
        ("ca-ventura-county-so", "retention_days", 365),  # CA sets no statewide cap for locals
        ("il-mount-prospect-pd", "national_lookup", True),  # IL needs declarations per search
        ("il-mount-prospect-pd", "share_with", ["tx-houston-pd"]),
        ("va-richmond-pd", "retention_days", 7),  # shorter than the statute is lawful
        ("tx-houston-pd", "national_lookup", True),  # no Texas statute on file
        ("tx-houston-pd", "federal_sharing", True),
        ("tx-houston-pd", "require_case_number", True),
    ],
)
def test_lawful_signed_changes_apply(
    state: PolicyState, agency_id: str, setting: str, value: object
) -> None:
    """Signed changes that the owner's law allows are applied."""
    _, decision = apply_change(state, change(agency_id, setting, value), KEYS)
    assert decision.outcome == "applied", decision.reasons


def test_unverified_provisions_can_be_switched_off() -> None:
    """With unverified provisions off, Virginia's unverified ban no longer blocks a change."""
    relaxed = PolicyState.create(load_statutes(enforce_unverified=False), AGENCIES)
    _, decision = apply_change(relaxed, change("va-richmond-pd", "national_lookup", True), KEYS)
    assert decision.outcome == "applied"


def test_unverified_provisions_are_marked_in_citations(state: PolicyState) -> None:
    """Reasons that rest on unverified statute text say so in their citation."""
    _, decision = apply_change(state, change("va-richmond-pd", "retention_days", 30), KEYS)
    assert decision.reasons[0].citation.endswith("[unverified]")


def test_unknown_agency_and_unknown_share_target_are_rejected(state: PolicyState) -> None:
    """Changes for, or naming, agencies outside the registry are rejected with UNKNOWN_AGENCY."""
    _, decision = apply_change(state, change("zz-nowhere", "statewide_lookup", True), KEYS)
    assert decision.codes == ("UNKNOWN_AGENCY",)
    _, decision = apply_change(
        state, change("ca-ventura-county-so", "share_with", ["zz-nowhere"]), KEYS
    )
    assert decision.codes == ("UNKNOWN_AGENCY",)


def test_admin_of_another_agency_cannot_change_settings(state: PolicyState) -> None:
    """A correctly signed change by another agency's administrator is rejected."""
    event = change(
        "ca-ventura-county-so",
        "statewide_lookup",
        True,
        sign=False,
        actor={"user_id": "admin-9", "agency_id": "tx-houston-pd"},
    )
    _, decision = apply_change(state, signed(event, VENTURA_KEY), KEYS)
    assert decision.codes == ("ACTOR_NOT_AUTHORIZED",)


def test_unshare_and_declarations(state: PolicyState) -> None:
    """unshare_with removes recipients; declaration_on_file replaces the set held."""
    state, _ = apply_change(
        state, change("il-mount-prospect-pd", "share_with", ["tx-houston-pd", "tx-dallas-pd"]), KEYS
    )
    state, _ = apply_change(
        state, change("il-mount-prospect-pd", "unshare_with", ["tx-dallas-pd"]), KEYS
    )
    state, _ = apply_change(
        state, change("il-mount-prospect-pd", "declaration_on_file", ["tx-houston-pd"]), KEYS
    )
    state, _ = apply_change(
        state, change("il-mount-prospect-pd", "declaration_on_file", ["tx-dallas-pd"]), KEYS
    )
    settings = state.settings_for("il-mount-prospect-pd")
    assert settings.share_with == {"tx-houston-pd"}
    assert settings.declaration_on_file == {"tx-dallas-pd"}
    assert state.revision == 4


@pytest.mark.parametrize(
    "patch",
    [
        {"setting": "bogus_setting"},
        {"setting": "national_lookup", "value": "yes"},
        {"setting": "share_with", "value": "ca-oxnard-pd"},
        {"setting": "share_with", "value": [1, 2]},
        {"setting": "retention_days", "value": -3},
        {"setting": "retention_days", "value": True},
        {"ts": "yesterday"},
        {"actor": "admin"},
        {"actor": {"agency_id": "ca-ventura-county-so"}},
        {"change_id": 7},
        {"ticket": 12},
    ],
)
def test_schema_invalid_changes_are_malformed(state: PolicyState, patch: dict[str, object]) -> None:
    """Ill-typed or unknown fields make a change SCHEMA_INVALID, and nothing is applied."""
    event = {**change("ca-ventura-county-so", "statewide_lookup", True), **patch}
    new_state, decision = apply_change(state, event, KEYS)
    assert isinstance(decision, MalformedDecision)
    assert decision.codes == ("SCHEMA_INVALID",)
    assert decision.reason.detail
    assert new_state is state


def test_rejected_change_keeps_readable_event_id(state: PolicyState) -> None:
    """A rejected change reports its change_id so the audit can name it."""
    event = change("ca-ventura-county-so", "national_lookup", True, sign=False)
    _, decision = apply_change(state, event, KEYS)
    assert isinstance(decision, ChangeDecision)
    assert decision.event_id == event["change_id"]
    assert dataclasses.asdict(decision)["applied"] is False
