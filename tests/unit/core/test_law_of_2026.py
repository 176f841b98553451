"""The law of 2025-26 as decisions: shield laws that bar a purpose for some requesters only,
Virginia's listed purposes, Oregon's and Washington's 2026 acts, New Hampshire's hotlist
exception and Connecticut's three neighbours (docs/law.md)."""

from __future__ import annotations

import pytest

from streamguard.core.models import Agency, ReadDecision
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import format_ts
from tests.helpers import AGENCIES, KEYS, NOW, Apply, apply_change, change, read, search
from tests.unit.core.test_search_decisions import DAY, decide, network_codes, shared

ABORTION = "had an abortion, search for female"  # a real Texas search, over 6,809 networks
EXTRA = (
    Agency("or-eugene-pd", "Eugene Police Department", "OR", "local"),
    Agency("or-bend-pd", "Bend Police Department", "OR", "local"),
    Agency("ct-hartford-pd", "Hartford Police Department", "CT", "local"),
    Agency("ny-albany-pd", "Albany Police Department", "NY", "local"),
)


@pytest.fixture
def wide() -> PolicyState:
    return PolicyState.create(load_statutes(), (*AGENCIES, *EXTRA))


def health_care_citation(decision: object, owner: str) -> str:
    verdicts = {v.agency_id: v for v in decision.verdicts}  # type: ignore[attr-defined]
    (reason,) = [r for r in verdicts[owner].reasons if r.code == "PROHIBITED_PURPOSE_HEALTH_CARE"]
    return reason.citation


def test_the_texas_abortion_search_is_a_health_care_violation_on_california_data(
    state: PolicyState,
) -> None:
    """Cal. Penal Code § 13778.2(b): no information to another state's agencies about a lawful
    abortion. The code is per network: the Texas network itself is not denied by it."""
    state = shared(state, "tx-dallas-pd", "tx-houston-pd")
    decision = decide(
        state,
        search(
            "tx-houston-pd",
            networks=["ca-ventura-county-so", "ca-oxnard-pd", "tx-dallas-pd"],
            reason=ABORTION,
        ),
    )
    assert decision.outcome == "partial"
    assert network_codes(decision) == {
        "ca-ventura-county-so": (
            "NOT_SHARED",
            "OUT_OF_STATE_RECIPIENT",
            "PROHIBITED_PURPOSE_HEALTH_CARE",
        ),
        "ca-oxnard-pd": ("NOT_SHARED", "OUT_OF_STATE_RECIPIENT", "PROHIBITED_PURPOSE_HEALTH_CARE"),
        "tx-dallas-pd": (),
    }
    assert "13778.2(b)" in health_care_citation(decision, "ca-oxnard-pd")
    assert not health_care_citation(decision, "ca-oxnard-pd").endswith("[unverified]")


def test_federal_requesters_are_shielded_against_too(state: PolicyState) -> None:
    decision = decide(state, search("us-fbi", networks=["ca-ventura-county-so"], reason=ABORTION))
    assert network_codes(decision)["ca-ventura-county-so"] == (
        "NOT_SHARED",
        "FEDERAL_RECIPIENT",
        "PROHIBITED_PURPOSE_HEALTH_CARE",
    )


def test_california_agencies_may_still_investigate_near_a_clinic(state: PolicyState) -> None:
    """§ 13778.2(d) keeps in-state criminal investigation open: the shield does not deny a
    California agency, on its own network or a shared one."""
    state = shared(state, "ca-ventura-county-so", "ca-oxnard-pd")
    purpose = "arson at an abortion clinic, suspect vehicle, case 25-4471"
    for networks in (["ca-oxnard-pd"], ["ca-ventura-county-so"]):
        decision = decide(state, search("ca-oxnard-pd", networks=networks, reason=purpose))
        assert decision.outcome == "approved", network_codes(decision)


def test_illinois_still_bars_health_care_for_every_requester(state: PolicyState) -> None:
    """625 ILCS 5/2-130(b)(1) is not a shield law: it names no requester."""
    decision = decide(
        state, search("il-mount-prospect-pd", networks=["il-mount-prospect-pd"], reason=ABORTION)
    )
    assert decision.codes == ("PROHIBITED_PURPOSE_HEALTH_CARE",)


def test_a_national_shielded_search_is_judged_per_network(wide: PolicyState) -> None:
    """The pool is computed once per requester class, and the shield still tells the owners
    apart: Connecticut's attestation bars health care to out-of-state agencies, Georgia has no
    such rule, and a declaration on file does not lift the purpose bar."""
    state = shared(wide, "ga-atlanta-pd", national_lookup=True)
    state = shared(state, "ct-hartford-pd", national_lookup=True)
    decision = decide(state, search("tx-houston-pd", scope="national", reason=ABORTION))
    assert network_codes(decision) == {
        "tx-houston-pd": (),
        "ct-hartford-pd": ("OUT_OF_STATE_RECIPIENT", "PROHIBITED_PURPOSE_HEALTH_CARE"),
        "ga-atlanta-pd": (),
    }
    state = shared(state, "ct-hartford-pd", declaration_on_file=["ny-albany-pd"])
    decision = decide(state, search("ny-albany-pd", scope="national", reason=ABORTION))
    assert network_codes(decision)["ct-hartford-pd"] == ("PROHIBITED_PURPOSE_HEALTH_CARE",)
    plain = decide(state, search("ny-albany-pd", scope="national"))
    assert network_codes(plain)["ct-hartford-pd"] == ()


def test_virginia_refuses_civil_immigration_even_to_its_own_agencies(state: PolicyState) -> None:
    """Va. Code § 2.2-5517 allows only its listed criminal-investigation purposes."""
    event = search("va-richmond-pd", networks=["va-richmond-pd"], reason="ICE civil detainer")
    decision = decide(state, event)
    assert decision.codes == ("PROHIBITED_PURPOSE_IMMIGRATION",)
    (reason,) = decision.verdicts[0].reasons
    assert "2.2-5517" in reason.citation and reason.citation.endswith("[unverified]")
    relaxed = PolicyState.create(load_statutes(enforce_unverified=False), AGENCIES)
    assert decide(relaxed, event).outcome == "approved"


def test_oregon_2026(wide: PolicyState) -> None:
    """SB 1516: no standing access from outside Oregon, a justification for every search, and
    30 days."""
    _, rejected = apply_change(wide, change("or-eugene-pd", "national_lookup", True), KEYS)
    assert rejected.codes == ("STATUTE_FORBIDS_SETTING",)
    state = shared(wide, "or-eugene-pd", "or-bend-pd")
    outside = decide(state, search("tx-houston-pd", networks=["or-eugene-pd"]))
    assert network_codes(outside)["or-eugene-pd"] == ("NOT_SHARED", "OUT_OF_STATE_RECIPIENT")
    vague = decide(state, search("or-bend-pd", networks=["or-eugene-pd"], reason="investigation"))
    assert vague.codes == ("VAGUE_PURPOSE",)
    old = format_ts(NOW - 31 * DAY)
    late = decide(state, search("or-bend-pd", networks=["or-eugene-pd"], query={"from": old}))
    assert late.codes == ("RETENTION_EXCEEDED",)
    assert decide(state, search("or-bend-pd", networks=["or-eugene-pd"])).outcome == "approved"


def test_washington_2026(state: PolicyState) -> None:
    """ESSB 6002: no civil immigration use, 21 days."""
    own = ["wa-seattle-pd"]
    immigration = decide(
        state, search("wa-seattle-pd", networks=own, reason="ICE removal, civil warrant")
    )
    assert immigration.codes == ("PROHIBITED_PURPOSE_IMMIGRATION",)
    window = {"from": format_ts(NOW - 22 * DAY), "to": format_ts(NOW)}
    assert decide(state, search("wa-seattle-pd", networks=own, query=window)).codes == (
        "RETENTION_EXCEEDED",
    )


def nh_read(minutes_old: float, **extra: object) -> dict[str, object]:
    return read("nh-concord-pd", ["nh-concord-pd"], ts=format_ts(NOW - minutes_old * 60), **extra)


def test_new_hampshire_keeps_hotlist_hits_past_three_minutes(
    state: PolicyState, apply: Apply
) -> None:
    """RSA 261:75-b, VIII: a read that matched a wanted or missing hotlist is not purged at 3
    minutes; every other read is."""
    _, kept = apply(state, nh_read(10, hotlist_hit=True))
    assert kept.outcome == "shared" and kept.codes == ()
    _, purged = apply(state, nh_read(10, hotlist_hit=False))
    assert purged.outcome == "denied" and purged.codes == ("RETENTION_EXCEEDED",)
    _, fresh = apply(state, nh_read(2, hotlist_hit=False))
    assert fresh.outcome == "shared"


def test_the_owners_own_limit_still_binds_a_hotlist_hit(state: PolicyState, apply: Apply) -> None:
    """An owner may purge sooner than the statute (here 90 seconds), hotlist hits included."""
    state = shared(state, "nh-concord-pd", retention_days=90 / DAY)
    _, decision = apply(state, nh_read(2, hotlist_hit=True))
    assert isinstance(decision, ReadDecision) and decision.codes == ("RETENTION_EXCEEDED",)
    assert decision.read_reasons[0].citation == "owner setting retention_days of nh-concord-pd"
    _, recent = apply(state, nh_read(1, hotlist_hit=True))
    assert recent.outcome == "shared"


def test_a_search_of_new_hampshire_data_is_never_hotlist_exempt(state: PolicyState) -> None:
    """A window past 3 minutes asks for every read of the period, not only the kept hits."""
    window = {"from": format_ts(NOW - 600), "to": format_ts(NOW)}
    decision = decide(state, search("nh-concord-pd", networks=["nh-concord-pd"], query=window))
    assert decision.codes == ("RETENTION_EXCEEDED",)


def test_connecticut_shares_only_with_its_three_neighbours(wide: PolicyState) -> None:
    """P.A. 26-14: Massachusetts, New York and Rhode Island agencies with a declaration; any
    other state is forbidden, declaration or not, and the attestation excludes immigration."""
    _, refused = apply_change(wide, change("ct-hartford-pd", "share_with", ["tx-houston-pd"]), KEYS)
    assert refused.codes == ("STATUTE_FORBIDS_SETTING",)
    state = shared(wide, "ct-hartford-pd", "ny-albany-pd")
    undeclared = decide(state, search("ny-albany-pd", networks=["ct-hartford-pd"]))
    assert undeclared.codes == ("NO_DECLARATION_ON_FILE",)
    state = shared(state, "ct-hartford-pd", declaration_on_file=["ny-albany-pd", "tx-houston-pd"])
    assert decide(state, search("ny-albany-pd", networks=["ct-hartford-pd"])).outcome == "approved"
    texas = decide(state, search("tx-houston-pd", networks=["ct-hartford-pd"]))
    assert network_codes(texas)["ct-hartford-pd"] == ("NOT_SHARED", "OUT_OF_STATE_RECIPIENT")
    assert "MA, NY, RI" in texas.verdicts[0].reasons[1].detail
    ice = decide(state, search("ny-albany-pd", networks=["ct-hartford-pd"], reason="ICE detainer"))
    assert ice.codes == ("PROHIBITED_PURPOSE_IMMIGRATION",)
    home = decide(
        state, search("ct-hartford-pd", networks=["ct-hartford-pd"], reason="ICE detainer")
    )
    assert home.outcome == "approved"  # the attestation binds other states' agencies only
