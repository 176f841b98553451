"""Organization names from exports resolved to agencies: registry, [Federal], state in the name."""

from __future__ import annotations

import pytest

from streamguard.core.models import Agency
from streamguard.exports.orgs import (
    OrgResolver,
    clean_org_name,
    guess_kind,
    normalize_org_name,
    state_in_name,
)

REGISTRY = (
    Agency("ca-ventura-county-so", "Ventura County Sheriff's Office", "CA", "county"),
    Agency("ca-oxnard-pd", "Oxnard Police Department", "CA", "local", ("Oxnard CA PD",)),
    Agency("fl-okaloosa-county-so", "Okaloosa County FL SO", "FL", "county"),
    Agency("us-fbi", "Federal Bureau of Investigation (FBI)", "US", "federal"),
    Agency("tx-acme-repo", "Acme Repossession", "TX", "private"),
    # Two agencies with one name: the name alone must not pick either.
    Agency("or-springfield-pd", "Springfield Police Department", "OR", "local"),
    Agency("il-springfield-pd", "Springfield Police Department", "IL", "local"),
)


@pytest.fixture
def resolver() -> OrgResolver:
    return OrgResolver(REGISTRY)


@pytest.mark.parametrize(
    ("name", "via", "agency_id", "state", "kind"),
    [
        # registry name, any case and punctuation
        ("Ventura County Sheriff's Office", "registry", "ca-ventura-county-so", "CA", "county"),
        ("VENTURA COUNTY SHERIFFS OFFICE", "registry", "ca-ventura-county-so", "CA", "county"),
        # Flock spelling of a registry name: long forms folded, state token dropped
        ("Ventura County CA SO", "registry", "ca-ventura-county-so", "CA", "county"),
        ("Oxnard CA PD", "registry", "ca-oxnard-pd", "CA", "local"),  # alias
        ("oxnard police dept.", "registry", "ca-oxnard-pd", "CA", "local"),
        ("Okaloosa County FL SO [Inactive]", "registry", "fl-okaloosa-county-so", "FL", "county"),
        ("[Federal] Federal Bureau of Investigation (FBI)", "registry", "us-fbi", "US", "federal"),
        ("Acme Repossession", "registry", "tx-acme-repo", "TX", "private"),
        # the state disambiguates a shared name
        ("Springfield IL PD", "registry", "il-springfield-pd", "IL", "local"),
        # [Federal] marker, prefix or suffix, not in the registry
        ("[Federal] US Border Patrol - El Paso", "federal", None, "US", "federal"),
        ("Wright Patterson OH Air Force Base [Federal]", "federal", None, "US", "federal"),
        # sharing lists spell the marker with parentheses
        ("(Federal) Wright-Patterson OH Air Force Base", "federal", None, "US", "federal"),
        ("(federal) Postal Inspection Service", "federal", None, "US", "federal"),
        ("US - GSA Office of Inspector General", "federal", None, "US", "federal"),
        # state named or abbreviated in the name
        ("Houston TX PD", "state", None, "TX", "local"),
        ("Cobb County GA SO", "state", None, "GA", "county"),
        ("Texas DPS", "state", None, "TX", "state"),
        ("Kansas City MO PD", "state", None, "MO", "local"),
        ("San Diego County CA SD", "state", None, "CA", "county"),  # SD = sheriff's dept here
        ("Brazoria County Const Pct 4 (TX)", "state", None, "TX", "county"),
        ("Sunny Acres HOA (GA)", "state", None, "GA", "private"),
        ("University of Texas PD", "state", None, "TX", "campus"),
        ("Washington D.C. Metropolitan PD", "state", None, "DC", "local"),
        # unresolved: nothing to go on, or two states
        ("Springfield Police Department", "unresolved", None, None, None),
        ("Washington County SO", "unresolved", None, None, None),
        ("Fort Eustis VA US Army", "unresolved", None, None, None),
        ("DO NOT USE", "unresolved", None, None, None),
        ("", "unresolved", None, None, None),
        ("[Inactive]", "unresolved", None, None, None),
    ],
)
def test_resolution_order(
    resolver: OrgResolver,
    name: str,
    via: str,
    agency_id: str | None,
    state: str | None,
    kind: str | None,
) -> None:
    """docs/contract.md section 5: registry, then [Federal], then a state; synthetic: no id."""
    found = resolver.resolve(name)
    assert found.via == via
    assert found.agency_id == agency_id
    assert (found.agency.state if found.agency else None) == state
    assert (found.agency.kind if found.agency else None) == kind
    assert found.resolved is (via != "unresolved")


def test_synthetic_requester_is_named_after_the_org(resolver: OrgResolver) -> None:
    """A state-only requester carries the cleaned name, so reasons read naturally."""
    found = resolver.resolve("[Inactive] Houston TX PD")
    assert found.agency is not None
    assert found.agency.agency_id == "Houston TX PD"
    assert found.agency_id is None


def test_resolutions_are_cached(resolver: OrgResolver) -> None:
    """The same name twice gives the same answer object (exports repeat names a lot)."""
    assert resolver.resolve("Houston TX PD") is resolver.resolve("Houston TX PD")


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("Cobb County GA SO", "GA"),
        ("IN - Greene County Prosecutors", "IN"),
        ("Louisiana DOTD", "LA"),
        ("North Carolina State Highway Patrol", "NC"),
        ("West Virginia State Police", "WV"),  # not Virginia
        ("Arkansas State Police", "AR"),  # not Kansas
        ("LA County CA SO", "CA"),  # LA = Los Angeles when another code is present
        ("Adams County CO SO", "CO"),
        ("Winston County MS CO", "MS"),  # CO = county when another code is present
        ("Nevada City Police", None),  # a California city, not Nevada
        ("Polk Co Sheriff", None),  # "Co" in title case is not Colorado
        ("Houston TX Dallas TX", "TX"),
        ("Houston TX OK", None),  # two real states: ambiguous
        ("The Colony PD", None),
    ],
)
def test_state_in_name(name: str, state: str | None) -> None:
    """Upper-case codes win over spelled names; overloaded codes give way; ties are None."""
    assert state_in_name(name) == state


@pytest.mark.parametrize(
    ("raw", "cleaned", "federal"),
    [
        (
            "[Federal] Federal Bureau of Investigation (FBI)",
            "Federal Bureau of Investigation (FBI)",
            True,
        ),
        ("Some Base [federal]", "Some Base", True),
        ("Okaloosa County FL SO [Inactive]", "Okaloosa County FL SO", False),
        ("  Plain   Name  ", "Plain Name", False),
    ],
)
def test_clean_org_name(raw: str, cleaned: str, federal: bool) -> None:
    """Markers are stripped and [Federal] is remembered."""
    assert clean_org_name(raw) == (cleaned, federal)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Ventura County Sheriff's Office", "ventura county sheriffs office"),
        ("Oxnard Police Department", "OXNARD POLICE DEPT"),
        ("St. Louis Park PD", "Saint Louis Park Police Department"),
        ("Café Police", "Cafe Police"),
        ("A & B Task Force", "A and B Task Force"),
    ],
)
def test_normalized_names_compare_equal(a: str, b: str) -> None:
    """Case, accents, punctuation and common long forms do not change the key."""
    assert normalize_org_name(a) == normalize_org_name(b)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("houston tx pd", "local"),
        ("cobb county ga so", "county"),
        ("georgia state patrol", "state"),
        ("ucla campus police", "campus"),
        ("quapaw nation ok marshals service", "tribal"),
        ("acme apartments llc", "private"),
        ("town of pegram", "local"),
    ],
)
def test_guess_kind(name: str, kind: str) -> None:
    """The kind of a synthetic requester comes from words in its name."""
    assert guess_kind(name) == kind
