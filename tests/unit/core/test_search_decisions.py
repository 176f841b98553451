"""Search decisions: access from the owner's settings, then the owner's state law on top."""

from __future__ import annotations

from typing import Any

import pytest

from streamguard.core.engine import decide_search
from streamguard.core.models import MalformedDecision, SearchDecision
from streamguard.core.policy import PolicyState
from tests.helpers import KEYS, NOW, apply_change, change, search

DAY = 86_400.0


def shared(state: PolicyState, owner: str, *recipients: str, **settings: Any) -> PolicyState:
    """The state after the owner's signed changes: share with recipients plus other settings."""
    if recipients:
        state, decision = apply_change(state, change(owner, "share_with", list(recipients)), KEYS)
        assert decision.outcome == "applied", decision.reasons
    for name, value in settings.items():
        state, decision = apply_change(state, change(owner, name, value), KEYS)
        assert decision.outcome == "applied", decision.reasons
    return state


def decide(state: PolicyState, event: dict[str, Any], now: float = NOW) -> SearchDecision:
    decision = decide_search(event, state, now)
    assert isinstance(decision, SearchDecision), decision
    return decision


def network_codes(decision: SearchDecision) -> dict[str, tuple[str, ...]]:
    return {v.agency_id: v.codes for v in decision.verdicts}


def test_own_network_with_specific_purpose_is_approved(state: PolicyState) -> None:
    """An agency searching its own network for a named crime is approved."""
    decision = decide(state, search("ca-ventura-county-so", networks=["ca-ventura-county-so"]))
    assert decision.outcome == "approved"
    assert decision.allowed == ("ca-ventura-county-so",)
    assert decision.codes == ()


def test_in_state_shared_network_is_approved(state: PolicyState) -> None:
    """A California agency may search a California network shared with it."""
    state = shared(state, "ca-ventura-county-so", "ca-oxnard-pd")
    decision = decide(state, search("ca-oxnard-pd", networks=["ca-ventura-county-so"]))
    assert decision.outcome == "approved"


def test_out_of_state_attempt_on_california_counts_even_when_not_shared(state: PolicyState) -> None:
    """docs/contract.md section 3 example: an out-of-state attempt on CA data carries
    OUT_OF_STATE_RECIPIENT."""
    decision = decide(state, search("tx-houston-pd", networks=["ca-ventura-county-so"]))
    assert decision.outcome == "denied"
    assert network_codes(decision) == {
        "ca-ventura-county-so": ("NOT_SHARED", "OUT_OF_STATE_RECIPIENT"),
    }
    reason = decision.denied[0].reasons[1]
    assert "1798.90.55" in reason.citation and reason.agency_id == "ca-ventura-county-so"


@pytest.mark.parametrize(
    ("requester", "owner", "setup", "expected"),
    [
        # California: only California public agencies
        ("us-ice-ero", "ca-ventura-county-so", {}, ("NOT_SHARED", "FEDERAL_RECIPIENT")),
        ("ca-acme-security", "ca-ventura-county-so", {}, ("NOT_SHARED", "PRIVATE_RECIPIENT")),
        (
            "tx-acme-repo",
            "ca-ventura-county-so",
            {},
            ("NOT_SHARED", "PRIVATE_RECIPIENT", "OUT_OF_STATE_RECIPIENT"),
        ),
        ("ca-tribal-pd", "ca-ventura-county-so", {}, ("NOT_SHARED", "INELIGIBLE_RECIPIENT")),
        # Illinois: out-of-state needs a written declaration on file
        (
            "tx-houston-pd",
            "il-mount-prospect-pd",
            {"share": ["tx-houston-pd"]},
            ("NO_DECLARATION_ON_FILE",),
        ),
        (
            "tx-houston-pd",
            "il-mount-prospect-pd",
            {"share": ["tx-houston-pd"], "declaration_on_file": ["tx-houston-pd"]},
            (),
        ),
        (
            "us-fbi",
            "il-mount-prospect-pd",
            {"share": ["us-fbi"], "federal_sharing": True},
            ("NO_DECLARATION_ON_FILE",),
        ),
        # Virginia and Washington: in-state only
        ("tx-houston-pd", "va-richmond-pd", {}, ("NOT_SHARED", "OUT_OF_STATE_RECIPIENT")),
        ("us-fbi", "wa-seattle-pd", {}, ("NOT_SHARED", "FEDERAL_RECIPIENT")),
        # law enforcement only: private recipients are refused even where other states are fine
        ("tx-acme-repo", "nh-concord-pd", {}, ("NOT_SHARED", "PRIVATE_RECIPIENT")),
        ("tx-acme-repo", "me-portland-pd", {}, ("NOT_SHARED", "PRIVATE_RECIPIENT")),
        ("tx-acme-repo", "mn-st-louis-park-pd", {}, ("NOT_SHARED", "PRIVATE_RECIPIENT")),
        ("tx-acme-repo", "ga-atlanta-pd", {}, ("NOT_SHARED", "PRIVATE_RECIPIENT")),
        # out-of-state law enforcement is fine where the law is silent on it
        ("tx-houston-pd", "ga-atlanta-pd", {"share": ["tx-houston-pd"]}, ()),
        ("tx-houston-pd", "mt-billings-pd", {"share": ["tx-houston-pd"]}, ()),
        # no statute on file: the owner's settings alone decide
        ("ca-oxnard-pd", "tx-dallas-pd", {"share": ["ca-oxnard-pd"]}, ()),
        ("tx-acme-repo", "tx-dallas-pd", {"share": ["tx-acme-repo"]}, ()),
        # federal requesters also need the owner's federal_sharing
        ("us-fbi", "tx-dallas-pd", {"share": ["us-fbi"]}, ("NOT_SHARED",)),
        ("us-fbi", "tx-dallas-pd", {"share": ["us-fbi"], "federal_sharing": True}, ()),
        # campus police are California public agencies
        ("ca-uc-pd", "ca-ventura-county-so", {"share": ["ca-uc-pd"]}, ()),
    ],
)
def test_recipient_rules_per_state(
    state: PolicyState, requester: str, owner: str, setup: dict[str, Any], expected: tuple[str, ...]
) -> None:
    """Each state's recipient rule yields exactly its codes for one owner network."""
    setup = dict(setup)
    state = shared(state, owner, *setup.pop("share", ()), **setup)
    decision = decide(state, search(requester, networks=[owner]))
    assert network_codes(decision) == {owner: expected}
    assert decision.outcome == ("approved" if not expected else "denied")


@pytest.mark.parametrize(
    ("owner", "reason", "expected"),
    [
        # California: Values Act bars immigration enforcement use
        ("ca-ventura-county-so", "ICE warrant", ("PROHIBITED_PURPOSE_IMMIGRATION",)),
        # Illinois: immigration status and health care
        ("il-mount-prospect-pd", "assist ICE ERO locate", ("PROHIBITED_PURPOSE_IMMIGRATION",)),
        (
            "il-mount-prospect-pd",
            "had an abortion, search for female",
            ("PROHIBITED_PURPOSE_HEALTH_CARE",),
        ),
        # Washington: immigration and protected activity
        ("wa-seattle-pd", "protest", ("PROTECTED_ACTIVITY",)),
        ("wa-seattle-pd", "ICE warrant", ("PROHIBITED_PURPOSE_IMMIGRATION",)),
        # documented-purpose states refuse vague purposes
        ("ca-ventura-county-so", "investigation", ("VAGUE_PURPOSE",)),
        ("mn-st-louis-park-pd", "investigation", ("VAGUE_PURPOSE",)),
        ("mt-billings-pd", "investigation", ("VAGUE_PURPOSE",)),
        ("ar-conway-pd", "investigation", ("VAGUE_PURPOSE",)),
        ("ne-omaha-pd", "investigation", ("VAGUE_PURPOSE",)),
        ("ut-provo-pd", "investigation", ("VAGUE_PURPOSE",)),
        ("vt-burlington-pd", "investigation", ("VAGUE_PURPOSE",)),
        ("va-richmond-pd", "investigation", ("VAGUE_PURPOSE",)),
        ("nh-concord-pd", "investigation", ("VAGUE_PURPOSE",)),
        # states without a documented-purpose or purpose rule
        ("ga-atlanta-pd", "investigation", ()),
        ("il-mount-prospect-pd", "investigation", ()),
        ("tx-dallas-pd", "ICE warrant", ()),
        ("tx-dallas-pd", "protest", ()),
    ],
)
def test_purpose_rules_per_state(
    state: PolicyState, owner: str, reason: str, expected: tuple[str, ...]
) -> None:
    """A purpose code applies exactly where the owner's state prohibits that purpose."""
    decision = decide(state, search(owner, networks=[owner], reason=reason))
    assert network_codes(decision) == {owner: expected}


@pytest.mark.parametrize(
    ("owner", "limit_days"),
    [
        ("va-richmond-pd", 21),
        ("wa-seattle-pd", 21),
        ("me-portland-pd", 21),
        ("mn-st-louis-park-pd", 60),
        ("mt-billings-pd", 90),
        ("ar-conway-pd", 150),
        ("ne-omaha-pd", 180),
        ("ut-provo-pd", 270),
        ("vt-burlington-pd", 540),
        ("ga-atlanta-pd", 900),
    ],
)
def test_retention_limit_per_state(state: PolicyState, owner: str, limit_days: int) -> None:
    """Asking for reads older than the owner's statutory retention is RETENTION_EXCEEDED."""

    def asked_from(days_back: float) -> dict[str, Any]:
        event = search(owner, networks=[owner])
        event["query"] = {"plate": "8ABC123", "from": _ts(NOW - days_back * DAY), "to": None}
        return event

    inside = decide(state, asked_from(limit_days - 1))
    outside = decide(state, asked_from(limit_days + 1))
    assert inside.codes == ()
    assert network_codes(outside) == {owner: ("RETENTION_EXCEEDED",)}


def test_new_hampshire_keeps_reads_three_minutes(state: PolicyState) -> None:
    """New Hampshire's 3-minute retention refuses a search for reads an hour old."""
    event = search("nh-concord-pd", networks=["nh-concord-pd"])
    event["query"]["from"] = _ts(NOW - 3600)
    decision = decide(state, event)
    assert decision.codes == ("RETENTION_EXCEEDED",)
    assert "3 minutes" in decision.denied[0].reasons[0].detail


def test_owner_retention_setting_tightens_the_statute(state: PolicyState) -> None:
    """An owner's own retention_days, shorter than its statute, is enforced and cited."""
    state = shared(state, "va-richmond-pd", retention_days=7)
    event = search("va-richmond-pd", networks=["va-richmond-pd"])
    event["query"]["from"] = _ts(NOW - 10 * DAY)
    decision = decide(state, event)
    assert decision.codes == ("RETENTION_EXCEEDED",)
    assert "owner setting" in decision.denied[0].reasons[0].citation


def test_owner_can_require_case_numbers(state: PolicyState) -> None:
    """With require_case_number on, a search without one is refused on that network only."""
    state = shared(state, "tx-dallas-pd", "tx-houston-pd", require_case_number=True)
    state = shared(state, "tx-houston-pd")
    event = search("tx-houston-pd", networks=["tx-dallas-pd", "tx-houston-pd"], case_number=None)
    decision = decide(state, event)
    assert decision.outcome == "partial"
    assert network_codes(decision) == {
        "tx-dallas-pd": ("MISSING_CASE_NUMBER",),
        "tx-houston-pd": (),
    }
    blank = decide(state, {**event, "case_number": "   "})
    assert blank.codes == ("MISSING_CASE_NUMBER",)


@pytest.mark.parametrize("reason", [None, "", "   ", "n/a", "none", "test", "."])
def test_missing_purpose_denies_the_whole_search(state: PolicyState, reason: str | None) -> None:
    """A search with no stated purpose is denied on every network, each saying why."""
    state = shared(state, "tx-dallas-pd", "tx-houston-pd")
    decision = decide(
        state, search("tx-houston-pd", networks=["tx-dallas-pd", "tx-houston-pd"], reason=reason)
    )
    assert decision.outcome == "denied"
    assert decision.codes == ("MISSING_PURPOSE",)
    assert decision.allowed == ()
    assert all(v.codes == ("MISSING_PURPOSE",) for v in decision.verdicts)


def test_unknown_requester_is_denied_everywhere(state: PolicyState) -> None:
    """Nothing is shared with an agency the registry does not know."""
    decision = decide(state, search("zz-unknown", networks=["tx-dallas-pd"]))
    assert decision.outcome == "denied"
    assert decision.codes == ("UNKNOWN_REQUESTER",)
    assert network_codes(decision) == {"tx-dallas-pd": ("UNKNOWN_REQUESTER",)}


def test_unknown_owner_is_denied_and_others_proceed(state: PolicyState) -> None:
    """An unknown owner network is denied; known, shared ones are still allowed (partial)."""
    state = shared(state, "tx-dallas-pd", "tx-houston-pd")
    decision = decide(state, search("tx-houston-pd", networks=["tx-dallas-pd", "zz-gone"]))
    assert decision.outcome == "partial"
    assert decision.allowed == ("tx-dallas-pd",)
    assert network_codes(decision)["zz-gone"] == ("UNKNOWN_OWNER",)


def test_rate_limited_search_is_denied(state: PolicyState) -> None:
    """A search past the requester's rate limit is denied with RATE_LIMIT_EXCEEDED."""
    decision = decide_search(
        search("tx-houston-pd", networks=["tx-houston-pd"]), state, NOW, rate_limited=True
    )
    assert isinstance(decision, SearchDecision)
    assert decision.outcome == "denied" and decision.codes == ("RATE_LIMIT_EXCEEDED",)


def test_statewide_scope_reaches_in_state_owners_with_statewide_lookup(state: PolicyState) -> None:
    """Statewide: the requester's own network plus in-state owners that turned statewide on."""
    state = shared(state, "ca-ventura-county-so", statewide_lookup=True)
    state = shared(state, "tx-dallas-pd", statewide_lookup=True)
    decision = decide(state, search("ca-oxnard-pd", scope="statewide"))
    assert decision.outcome == "approved"
    assert set(decision.allowed) == {"ca-oxnard-pd", "ca-ventura-county-so"}
    tx = decide(state, search("tx-houston-pd", scope="statewide"))
    assert set(tx.allowed) == {"tx-houston-pd", "tx-dallas-pd"}


def test_national_scope_and_the_ventura_flip(state: PolicyState) -> None:
    """National reaches owners with national lookup; an unsigned CA flip adds nothing to it."""
    state = shared(state, "tx-dallas-pd", national_lookup=True)
    state, flip = apply_change(
        state, change("ca-ventura-county-so", "national_lookup", True, sign=False), KEYS
    )
    assert flip.outcome == "rejected"
    decision = decide(state, search("tx-houston-pd", scope="national", reason="ICE warrant"))
    assert set(decision.allowed) == {"tx-houston-pd", "tx-dallas-pd"}
    assert "ca-ventura-county-so" not in network_codes(decision)


def test_national_scope_denies_federal_without_federal_sharing(state: PolicyState) -> None:
    """A federal requester in a national search needs each owner's federal_sharing too."""
    state = shared(state, "tx-dallas-pd", national_lookup=True)
    state = shared(state, "ga-atlanta-pd", national_lookup=True, federal_sharing=True)
    decision = decide(state, search("us-fbi", scope="national"))
    assert decision.outcome == "partial"
    assert network_codes(decision) == {
        "us-fbi": (),
        "ga-atlanta-pd": (),
        "tx-dallas-pd": ("NOT_SHARED",),
    }


def test_every_applicable_code_is_listed_once(state: PolicyState) -> None:
    """A search breaking several rules on several networks lists each code once, search-wide."""
    decision = decide(
        state,
        search(
            "tx-houston-pd",
            networks=["ca-ventura-county-so", "ca-oxnard-pd", "va-richmond-pd"],
            reason="ICE warrant",
        ),
    )
    assert decision.codes == (
        "NOT_SHARED",
        "OUT_OF_STATE_RECIPIENT",
        "PROHIBITED_PURPOSE_IMMIGRATION",
    )
    assert len(decision.denied) == 3
    # Virginia allows only its listed criminal-investigation purposes (Va. Code § 2.2-5517).
    assert network_codes(decision)["va-richmond-pd"] == (
        "NOT_SHARED",
        "OUT_OF_STATE_RECIPIENT",
        "PROHIBITED_PURPOSE_IMMIGRATION",
    )


def test_decisions_follow_policy_changes_not_a_stale_cache(state: PolicyState) -> None:
    """The same search decided before and after a share reflects each snapshot."""
    event = search("tx-houston-pd", networks=["tx-dallas-pd"])
    assert decide(state, event).outcome == "denied"
    after = shared(state, "tx-dallas-pd", "tx-houston-pd")
    assert decide(after, event).outcome == "approved"
    assert decide(state, event).outcome == "denied"


def test_duplicate_networks_are_decided_once(state: PolicyState) -> None:
    """A network listed twice is one owner network."""
    decision = decide(state, search("tx-houston-pd", networks=["tx-houston-pd", "tx-houston-pd"]))
    assert decision.allowed == ("tx-houston-pd",)


def test_offense_type_counts_as_purpose(state: PolicyState) -> None:
    """A dropdown offense type is part of the purpose judged (2026 Flock dropdowns)."""
    event = search(
        "ca-ventura-county-so",
        networks=["ca-ventura-county-so"],
        reason=None,
        offense_type="Immigration (civil/administrative)",
    )
    decision = decide(state, event)
    assert "PROHIBITED_PURPOSE_IMMIGRATION" in decision.codes


@pytest.mark.parametrize(
    "patch",
    [
        {"search_id": None},
        {"search_id": ""},
        {"ts": "not a time"},
        {"requester": "tx-houston-pd"},
        {"requester": {"agency_id": "tx-houston-pd"}},
        {"scope": "galaxy"},
        {"networks": "tx-dallas-pd"},
        {"networks": []},
        {"query": None},
        {"query": {"plate": 123}},
        {"query": {"from": "yesterday"}},
        {"reason": 42},
        {"case_number": ["x"]},
    ],
)
def test_schema_invalid_searches_are_malformed(state: PolicyState, patch: dict[str, Any]) -> None:
    """Missing or ill-typed fields make a search SCHEMA_INVALID, never a crash."""
    decision = decide_search(
        {**search("tx-houston-pd", networks=["tx-houston-pd"]), **patch}, state, NOW
    )
    assert isinstance(decision, MalformedDecision)
    assert decision.codes == ("SCHEMA_INVALID",)
    assert decision.outcome == "malformed"
    assert decision.event_id == (patch.get("search_id", "s-1") or None)


def _ts(epoch: float) -> str:
    from streamguard.core.timeutil import format_ts

    return format_ts(epoch)
