"""Decisions that hold at the edges of the input (docs/contract.md, "where the contract is
silent"): reads kept past their limit, events from the future, windows that ask for nothing or
for everything, fields of the wrong type, searches by no one, placeholder case numbers, and
requesters nobody knows."""

from __future__ import annotations

from typing import Any

import pytest

from streamguard import serde
from streamguard.core.engine import FUTURE_TOLERANCE, names_a_case
from streamguard.core.models import MalformedDecision, ReadDecision, SearchDecision
from streamguard.core.policy import PolicyState
from streamguard.core.timeutil import format_ts
from streamguard.stream.evaluate import evaluate_lines
from streamguard.stream.outputs import approved_search, audit_fields
from tests.helpers import KEYS, NOW, Apply, read, search
from tests.unit.core.test_search_decisions import DAY, decide, network_codes, shared

VA_LIMIT = 21 * DAY


def malformed(apply: Apply, state: PolicyState, event: dict[str, Any]) -> str:
    """The SCHEMA_INVALID detail `event` gets."""
    _, decision = apply(state, event)
    assert isinstance(decision, MalformedDecision), decision
    assert decision.codes == ("SCHEMA_INVALID",)
    return decision.reason.detail


# -- reads past retention ------------------------------------------------------------------


def test_a_read_past_retention_is_denied_even_with_no_recipient(
    state: PolicyState, apply: Apply
) -> None:
    """It may be neither kept nor forwarded: denied as a whole, citing the owner's limit."""
    old = format_ts(NOW - VA_LIMIT - 60)
    _, decision = apply(state, read("va-richmond-pd", [], ts=old))
    assert isinstance(decision, ReadDecision)
    assert decision.outcome == "denied" and decision.codes == ("RETENTION_EXCEEDED",)
    (reason,) = decision.read_reasons
    assert reason.agency_id == "va-richmond-pd" and "2.2-5517" in reason.citation
    _, fresh = apply(state, read("va-richmond-pd", [], ts=format_ts(NOW - VA_LIMIT + 60)))
    assert fresh.outcome == "shared"  # within the limit, nothing leaves the owner: shared


def test_a_read_past_retention_is_denied_to_every_recipient(
    state: PolicyState, apply: Apply
) -> None:
    old = format_ts(NOW - VA_LIMIT - 60)
    _, decision = apply(state, read("va-richmond-pd", ["va-richmond-pd", "zz-nobody"], ts=old))
    assert isinstance(decision, ReadDecision) and decision.outcome == "denied"
    assert {v.agency_id: v.codes for v in decision.verdicts} == {
        "va-richmond-pd": ("RETENTION_EXCEEDED",),
        "zz-nobody": ("UNKNOWN_REQUESTER", "RETENTION_EXCEEDED"),
    }


# -- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [search("tx-houston-pd", networks=["tx-houston-pd"]), read("tx-houston-pd", [])],
    ids=["search", "read"],
)
def test_an_event_more_than_five_minutes_ahead_of_the_clock_is_invalid(
    state: PolicyState, apply: Apply, event: dict[str, Any]
) -> None:
    event["ts"] = format_ts(NOW + FUTURE_TOLERANCE + 1)
    detail = malformed(apply, state, event)
    assert "after the deciding clock" in detail and "5 minutes" in detail
    event["ts"] = format_ts(NOW + FUTURE_TOLERANCE)
    _, decision = apply(state, event)
    assert not isinstance(decision, MalformedDecision)


def test_a_window_that_ends_before_it_starts_is_invalid(state: PolicyState, apply: Apply) -> None:
    window = {"from": "2025-03-01T11:00:00Z", "to": "2025-03-01T10:00:00Z"}
    event = search("tx-houston-pd", networks=["tx-houston-pd"], query=window)
    assert "is after 'query.to'" in malformed(apply, state, event)


# -- wrong types, empty user -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("scope", [], "field 'scope'"),  # used to raise TypeError and end evaluate
        ("scope", {}, "field 'scope'"),
        ("scope", 3, "field 'scope'"),
        ("requester", {"agency_id": "tx-houston-pd", "user_id": ""}, "non-empty string"),
        ("requester", {"agency_id": "tx-houston-pd", "user_id": "  "}, "non-empty string"),
        ("requester", {"agency_id": "tx-houston-pd"}, "requester.user_id"),
        ("requester", {"agency_id": "", "user_id": "u-1"}, "agency_id"),
        ("networks", "tx-houston-pd", "field 'networks'"),
        ("case_number", 25, "field 'case_number'"),
    ],
)
def test_search_fields_of_the_wrong_type_are_invalid(
    state: PolicyState, apply: Apply, field: str, value: Any, fragment: str
) -> None:
    event = search("tx-houston-pd", networks=["tx-houston-pd"])
    event[field] = value
    assert fragment in malformed(apply, state, event)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hotlist_hit", "yes"),
        ("hotlist_hit", 1),
        ("camera_id", 17),
        ("plate_state", ["CA"]),
        ("location", [34.2, -119.2]),
        ("confidence", "high"),
    ],
)
def test_read_fields_of_the_wrong_type_are_invalid(
    state: PolicyState, apply: Apply, field: str, value: Any
) -> None:
    event = read("tx-houston-pd", [])
    event[field] = value
    assert f"field {field!r}" in malformed(apply, state, event)


def test_a_bad_line_never_ends_evaluate(state: PolicyState) -> None:
    """`"scope": []` used to raise out of evaluate and lose every later line."""
    bad = search("tx-houston-pd", networks=["tx-houston-pd"], scope=[])
    good = search("tx-houston-pd", networks=["tx-houston-pd"], search_id="s-2")
    out = [serde.loads(x) for x in evaluate_lines(map(serde.dumps, [bad, good]), state, KEYS, NOW)]
    assert [o["outcome"] for o in out] == ["malformed", "approved"]


# -- case numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case_number",
    ["n/a", "N/A", "-", "--", "none", "None", "0", "000", "unknown", " tbd ", "", None],
)
def test_a_placeholder_case_number_is_no_case_number(
    state: PolicyState, case_number: str | None
) -> None:
    assert not names_a_case(case_number)
    state = shared(state, "tx-dallas-pd", "tx-houston-pd", require_case_number=True)
    event = search("tx-houston-pd", networks=["tx-dallas-pd"], case_number=case_number)
    assert decide(state, event).codes == ("MISSING_CASE_NUMBER",)


@pytest.mark.parametrize("case_number", ["25-000123", "0-25-77", "INC 4471", "2025/0042"])
def test_a_real_case_number_satisfies_the_owner(state: PolicyState, case_number: str) -> None:
    assert names_a_case(case_number)
    state = shared(state, "tx-dallas-pd", "tx-houston-pd", require_case_number=True)
    event = search("tx-houston-pd", networks=["tx-dallas-pd"], case_number=case_number)
    assert decide(state, event).outcome == "approved"


# -- unknown requesters ----------------------------------------------------------------------


def test_an_unknown_requester_gets_every_code_that_applies(state: PolicyState) -> None:
    """UNKNOWN_REQUESTER denies the search; each network still says what its owner's law makes
    of the purpose and window, and an unknown owner says so."""
    window = {"from": format_ts(NOW - VA_LIMIT - 60), "to": format_ts(NOW)}
    event = search(
        "zz-nobody",
        networks=["ca-ventura-county-so", "va-richmond-pd", "tx-dallas-pd", "zz-else"],
        reason="ICE civil detainer",
        query=window,
    )
    decision = decide(state, event)
    assert decision.outcome == "denied"
    assert network_codes(decision) == {
        "ca-ventura-county-so": ("UNKNOWN_REQUESTER", "PROHIBITED_PURPOSE_IMMIGRATION"),
        "va-richmond-pd": (
            "UNKNOWN_REQUESTER",
            "PROHIBITED_PURPOSE_IMMIGRATION",
            "RETENTION_EXCEEDED",
        ),
        "tx-dallas-pd": ("UNKNOWN_REQUESTER",),
        "zz-else": ("UNKNOWN_REQUESTER", "UNKNOWN_OWNER"),
    }


def test_an_unknown_requester_could_be_from_anywhere(state: PolicyState) -> None:
    """A purpose barred to other states' agencies is barred to one of no known state."""
    event = search("zz-nobody", networks=["ca-ventura-county-so"], reason="abortion, female")
    (verdict,) = decide(state, event).verdicts
    assert verdict.codes == ("UNKNOWN_REQUESTER", "PROHIBITED_PURPOSE_HEALTH_CARE")
    assert "not in the registry" in verdict.reasons[1].detail


# -- open windows --------------------------------------------------------------------------


def open_search(requester: str, **extra: Any) -> dict[str, Any]:
    return search(requester, query={"plate": "8ABC123", "from": None, "to": None}, **extra)


def test_an_open_window_is_clamped_to_each_owners_limit(state: PolicyState) -> None:
    """No query.from asks for everything: approved, with each limited owner's window clamped,
    and the clamp in every output."""
    state = shared(state, "va-richmond-pd", retention_days=7)
    own = decide(state, open_search("va-richmond-pd", networks=["va-richmond-pd", "tx-dallas-pd"]))
    assert own.outcome == "partial"  # tx-dallas-pd does not share with Richmond
    assert own.clamped == (("va-richmond-pd", NOW - 7 * DAY),)
    record = approved_search(open_search("va-richmond-pd"), own, "d", format_ts(NOW))
    assert record["clamped_windows"] == [
        {"agency_id": "va-richmond-pd", "from": format_ts(NOW - 7 * DAY)}
    ]
    assert audit_fields(open_search("va-richmond-pd"), own, "d", "t", None)["clamped_windows"]
    line = serde.loads(
        next(
            evaluate_lines(
                [serde.dumps(open_search("va-richmond-pd", networks=["va-richmond-pd"]))],
                state,
                KEYS,
                NOW,
            )
        )
    )
    assert line["clamped_windows"] == [
        {"agency_id": "va-richmond-pd", "from": format_ts(NOW - 7 * DAY)}
    ]


def test_no_clamp_without_a_limit_or_with_a_window(state: PolicyState) -> None:
    assert decide(state, open_search("tx-houston-pd", networks=["tx-houston-pd"])).clamped == ()
    bounded = decide(state, search("va-richmond-pd", networks=["va-richmond-pd"]))
    assert bounded.outcome == "approved" and bounded.clamped == ()
    vague = decide(state, open_search("va-richmond-pd", networks=["va-richmond-pd"], reason="x"))
    assert vague.outcome == "denied" and vague.clamped == ()  # nothing approved, nothing clamped


def test_a_national_open_search_clamps_the_limited_owners_it_reaches(state: PolicyState) -> None:
    state = shared(state, "ga-atlanta-pd", national_lookup=True)
    state = shared(state, "tx-dallas-pd", national_lookup=True)
    decision = decide(state, open_search("tx-houston-pd", scope="national"))
    assert isinstance(decision, SearchDecision) and decision.outcome == "approved"
    assert decision.clamped == (("ga-atlanta-pd", NOW - 900 * DAY),)


def test_a_clamp_never_predates_the_epoch(state: PolicyState) -> None:
    """An owner's huge limit reaches back before any ALPR: the clamp stays a timestamp."""
    state = shared(state, "tx-houston-pd", retention_days=1e12)
    decision = decide(state, open_search("tx-houston-pd", networks=["tx-houston-pd"]))
    assert decision.clamped == (("tx-houston-pd", 0.0),)
    assert approved_search(open_search("tx-houston-pd"), decision, "d", "t")["clamped_windows"] == [
        {"agency_id": "tx-houston-pd", "from": "1970-01-01T00:00:00Z"}
    ]
