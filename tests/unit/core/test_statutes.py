"""The statute data: the loader refuses what it cannot use, and the law of 2025-26 is on file
with the citations and verified marks its sources support (docs/law.md)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from streamguard.core.statutes import StatuteBook, load_statutes

BASE: dict[str, Any] = {
    "version": "t",
    "baseline": {"missing_purpose": {"citation": "c", "verified": True}},
    "states": {
        "CA": {
            "name": "California test",
            "out_of_state": {"rule": "declaration", "citation": "oos", "verified": True},
            "prohibited_purposes": [
                {"category": "immigration", "citation": "imm", "verified": True},
                {
                    "category": "health_care",
                    "applies_to": ["out_of_state", "federal"],
                    "citation": "shield",
                    "verified": False,
                },
            ],
            "retention": {"days": 1, "text": "1 day", "citation": "r", "verified": True},
            "sunset": {"date": "2027-01-01", "citation": "s", "verified": False},
        }
    },
}


def load(data: dict[str, Any], *, enforce_unverified: bool = True) -> StatuteBook:
    return load_statutes(enforce_unverified=enforce_unverified, text=json.dumps(data))


def edited(path: str, value: Any) -> dict[str, Any]:
    """BASE with the value at a dotted path set (a list index is a number); None deletes it."""
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


def test_the_base_document_loads() -> None:
    """The fixture itself is valid, so each failure below is the edit's doing."""
    rule = load(BASE).rule_for("CA")
    assert rule.name == "California test"
    assert [c for c, _ in rule.prohibited_purposes] == ["immigration"]


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        # a misspelt key is a restriction that would silently not exist
        ("states.CA.retention.hotlist_exemt", True, "states.CA.retention has unknown key"),
        ("states.CA.prohibited_purposes.0.applies", ["federal"], "unknown key(s) 'applies'"),
        ("states.CA.retentoin", {}, "states.CA has unknown key(s) 'retentoin'"),
        ("states.CA.out_of_state.allowed_state", ["NY"], "unknown key(s) 'allowed_state'"),
        ("baseline.extra", 1, "baseline has unknown key"),
        ("extra", 1, "the top level has unknown key"),
        # wrong types are not coerced
        ("states.CA.retention.verified", "yes", "retention.verified must be true or false"),
        ("states.CA.retention.days", "21", "retention.days must be a positive number"),
        ("states.CA.retention.days", 0, "retention.days must be a positive number"),
        ("states.CA.retention.days", True, "retention.days must be a positive number"),
        ("states.CA.retention.citation", "  ", "citation must be a non-empty string"),
        ("states.CA.name", 7, "states.CA.name must be a non-empty string"),
        ("states.CA.prohibited_purposes", {}, "prohibited_purposes must be a list"),
        ("states.CA.retention", [], "states.CA.retention must be an object"),
        # names no rule reads
        ("states.CA.prohibited_purposes.0.category", "immigrant", "category must be one of"),
        ("states.CA.prohibited_purposes.1.applies_to", ["in_state"], "requester classes"),
        ("states.CA.prohibited_purposes.1.applies_to", [], "requester classes"),
        ("states.CA.prohibited_purposes.1.category", "immigration", "listed twice"),
        ("states.CA.out_of_state.allowed_states", ["NY", "XX"], "state codes"),
        ("states.CA.sunset.date", "January 2027", "sunset.date must be an ISO date"),
        ("states.ZZ", {"name": "z"}, "'ZZ' is not a two-letter US state code"),
        ("months_as_days", 31, "months_as_days must be 30"),
        # required parts
        ("states.CA.retention.text", None, "retention lacks 'text'"),
        ("states.CA.sunset.verified", None, "sunset lacks 'verified'"),
    ],
)
def test_the_loader_fails_loudly_on_data_it_cannot_use(
    path: str, value: Any, fragment: str
) -> None:
    with pytest.raises(ValueError) as failure:
        load(edited(path, value))
    assert fragment in str(failure.value)


def test_allowed_states_only_with_a_declaration_rule() -> None:
    data = edited("states.CA.out_of_state.allowed_states", ["NY"])
    assert load(data).rule_for("CA").out_of_state.allowed_states == frozenset({"NY"})  # type: ignore[union-attr]
    data["states"]["CA"]["out_of_state"]["rule"] = "forbidden"
    with pytest.raises(ValueError, match="only with the rule 'declaration'"):
        load(data)


def test_a_purpose_for_some_requesters_is_a_shield_rule() -> None:
    """`applies_to` keeps the purpose off the every-requester list, so the owner's own state's
    searches are not denied by a rule meant for other states' agencies."""
    rule = load(BASE).rule_for("CA")
    assert [c for c, _ in rule.prohibited_purposes] == ["immigration"]
    (shield,) = rule.shielded_purposes
    assert shield.category == "health_care"
    assert shield.requesters == frozenset({"out_of_state", "federal"})
    assert shield.provision.cited == "shield [unverified]"


def test_switching_unverified_off_drops_shields_but_keeps_dates() -> None:
    rule = load(BASE, enforce_unverified=False).rule_for("CA")
    assert rule.shielded_purposes == ()
    assert rule.sunset is not None and rule.sunset.date == dt.date(2027, 1, 1)
    assert rule.retention is not None and not rule.retention.hotlist_exempt


# -- the packaged data: the law of 2025-26 -------------------------------------------------


@pytest.fixture(scope="module")
def book() -> StatuteBook:
    return load_statutes()


def test_california_shields_health_care_from_other_states_and_federal_agencies(
    book: StatuteBook,
) -> None:
    """Cal. Penal Code § 13778.2(b): no information to another state's agencies or federal law
    enforcement about a lawful abortion; the Values Act bars immigration for every requester."""
    ca = book.rule_for("CA")
    (shield,) = ca.shielded_purposes
    assert shield.category == "health_care"
    assert shield.requesters == frozenset({"out_of_state", "federal"})
    assert "13778.2(b)" in shield.provision.citation and shield.provision.verified
    assert dict(ca.prohibited_purposes)["immigration"].citation.startswith(
        "Cal. Gov. Code § 7284.6(a)(1)"
    )
    assert "health_care" not in dict(ca.prohibited_purposes)


def test_virginia_bars_immigration_on_summaries_only(book: StatuteBook) -> None:
    va = book.rule_for("VA")
    immigration = dict(va.prohibited_purposes)["immigration"]
    assert "2.2-5517" in immigration.citation and not immigration.verified
    assert va.in_force is not None and va.in_force.date == dt.date(2025, 7, 1)


def test_oregon_and_washington_2026(book: StatuteBook) -> None:
    oregon, washington = book.rule_for("OR"), book.rule_for("WA")
    assert oregon.retention is not None and oregon.retention.days == 30
    assert oregon.documented_purpose is not None
    assert oregon.out_of_state is not None and oregon.out_of_state.rule == "forbidden"
    assert oregon.in_force is not None and oregon.in_force.date == dt.date(2026, 3, 31)
    assert washington.retention is not None and washington.retention.days == 21
    assert "immigration" in dict(washington.prohibited_purposes)
    assert washington.federal is not None and washington.federal.rule == "forbidden"
    for rule in (oregon, washington):
        provisions = [rule.retention.provision, rule.out_of_state.provision]  # type: ignore[union-attr]
        assert not any(p.verified for p in provisions), rule.state


def test_new_hampshire_keeps_hotlist_hits_and_its_purge_is_unverified(book: StatuteBook) -> None:
    """Paragraph VIII (the 3 minutes and its exceptions) was not read in any primary text."""
    nh = book.rule_for("NH")
    assert nh.retention is not None
    assert nh.retention.text == "3 minutes" and nh.retention.days * 86_400 == pytest.approx(180)
    assert nh.retention.hotlist_exempt and not nh.retention.provision.verified
    assert nh.sunset is not None and nh.sunset.date == dt.date(2027, 1, 1)


def test_only_enacted_laws_are_on_file(book: StatuteBook) -> None:
    """Colorado SB26-070 was withdrawn: not on file. New Mexico SB 40 is, unverified."""
    assert "CO" not in book.states
    nm = book.rule_for("NM")
    assert nm.in_force is not None and nm.in_force.date == dt.date(2026, 7, 1)
    assert not any(p.verified for _, p in nm.prohibited_purposes)


def test_connecticut_declarations_only_from_its_three_neighbours(book: StatuteBook) -> None:
    ct = book.rule_for("CT").out_of_state
    assert ct is not None and ct.rule == "declaration"
    assert ct.allowed_states == frozenset({"MA", "NY", "RI"})
