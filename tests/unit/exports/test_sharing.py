"""Recipients of the owner's networks: merged from a list, resolved, judged by the core's law."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamguard.core.models import Agency, OwnerSettings
from streamguard.core.policy import PolicyState, recipient_law_reasons
from streamguard.core.statutes import load_statutes
from streamguard.exports.drift import compare_policy, replay_policy_log
from streamguard.exports.layouts import MalformedRow
from streamguard.exports.orgs import OrgResolver
from streamguard.exports.sharelist import SharingRow, detect_sharing_layout
from streamguard.exports.sharing import Listed, SharingJudge, collect, recipient_key
from streamguard.exports.sharing_summary import SharingAudit
from tests.helpers import KEYS, NOW, change
from tests.unit.exports.samples import AGENCIES, BY_ID, SHARING

OWNER = BY_ID["ca-ventura-county-so"]


def listed(org: str) -> Listed:
    return Listed(recipient_key(org), org, 1, 2, 1, ("Ventura County CA SO",))


def judge(owner: Agency = OWNER, settings: OwnerSettings | None = None) -> SharingJudge:
    return SharingJudge(load_statutes(), owner, OrgResolver(AGENCIES), settings)


def test_collect_merges_rows_naming_one_recipient_and_counts_the_rest() -> None:
    rows = [
        SharingRow(1, 2, "Crestview FL PD", ("Net A",), ("Crestview FL PD",), "20"),
        SharingRow(2, 3, "Casa Grande AZ PD", (), ("Casa Grande AZ PD",)),
        MalformedRow(3, 4, None, "has 2 columns, the header has 3"),
        SharingRow(4, 5, "crestview  fl pd", ("Net A", "Net B"), (), "27"),
    ]
    heard: list[int] = []
    found = collect(rows, lambda bad: heard.append(bad.line))
    assert (found.rows, found.inbound_only, found.malformed_rows, heard) == (4, 1, 1, [4])
    assert found.malformed == [(4, "has 2 columns, the header has 3")]
    assert found.recipients == [
        Listed("crestview fl pd", "Crestview FL PD", 1, 2, 2, ("Net A", "Net B"))
    ]


def test_a_federal_marker_keeps_a_recipient_apart_from_its_namesake() -> None:
    assert recipient_key("[Federal] Loma Linda VA PD") != recipient_key("Loma Linda VA PD")


@pytest.mark.parametrize(
    ("org", "via", "codes"),
    [
        ("Oxnard CA PD", "registry", []),
        ("Simi Valley CA PD", "state", []),
        ("Cerritos College CA PD", "state", []),  # a campus agency is a public agency
        ("Dallas TX PD", "state", ["OUT_OF_STATE_RECIPIENT"]),
        ("[Federal] HSI Field Office", "federal", ["FEDERAL_RECIPIENT"]),
        ("(Federal) US Postal Inspection Service", "federal", ["FEDERAL_RECIPIENT"]),
        ("Acme Security LLC", "registry", ["PRIVATE_RECIPIENT"]),
        ("Sunny Acres HOA CA", "state", ["PRIVATE_RECIPIENT"]),
        ("CA Iipay Nation of Santa Ysabel", "state", ["INELIGIBLE_RECIPIENT"]),
        ("NCRIC", "unresolved", ["UNKNOWN_REQUESTER"]),
        ("", "unresolved", ["UNKNOWN_REQUESTER"]),
        ("Ventura County CA SO", "owner", []),
    ],
)
def test_recipients_of_a_california_owner(org: str, via: str, codes: list[str]) -> None:
    recipient = judge().judge(listed(org))
    assert (recipient.via, list(recipient.codes)) == (via, codes)
    for reason in recipient.reasons:
        assert reason.citation and reason.detail and reason.agency_id == OWNER.agency_id


def test_a_withheld_name_is_not_judged() -> None:
    recipient = judge().judge(listed("***"))
    assert recipient.resolution is None and recipient.reasons == () and recipient.via == "redacted"


def test_the_reasons_are_the_cores_recipient_law() -> None:
    """The sharing audit applies core.policy's recipient law, not a copy of it."""
    book = load_statutes()
    houston = BY_ID["tx-houston-pd"]
    recipient = judge().judge(listed(houston.name))
    assert recipient.agency == houston
    expected = recipient_law_reasons(book.rule_for("CA"), OWNER, houston, OwnerSettings())
    assert list(recipient.reasons) == expected


def test_a_declaration_on_file_answers_no_declaration_on_file() -> None:
    """Illinois needs a written declaration from out-of-state recipients; signed settings say."""
    owner = BY_ID["il-mount-prospect-pd"]
    houston = listed("Houston Police Department")
    assert judge(owner).judge(houston).codes == ("NO_DECLARATION_ON_FILE",)
    held = OwnerSettings(declaration_on_file=frozenset({"tx-houston-pd"}))
    assert judge(owner, held).judge(houston).codes == ()


def audit_of(owner: Agency, *orgs: str, **kwargs: Any) -> SharingAudit:
    layout = detect_sharing_layout(SHARING)
    assert not isinstance(layout, str)
    rows = [SharingRow(i + 1, i + 2, org, ("Net",), ()) for i, org in enumerate(orgs)]
    listing = collect(rows)
    found = [judge(owner).judge(r) for r in listing.recipients]
    rule = load_statutes().rule_for(owner.state)
    return SharingAudit.of("/srv/x/list.csv", layout, owner, rule, listing, found, **kwargs)


def test_findings_are_ranked_most_severe_first_and_counted_per_recipient() -> None:
    audit = audit_of(OWNER, "NCRIC", "Oxnard CA PD", "Dallas TX PD", "CA Example Tribal Police")
    assert [r.listed.org for r in audit.with_findings] == [
        "Dallas TX PD",  # a forbidden recipient (4) before unknown and ineligible ones (3)
        "NCRIC",
        "CA Example Tribal Police",
    ]
    assert audit.findings == 3 and audit.drift == 0
    assert audit.code_counts == {
        "OUT_OF_STATE_RECIPIENT": 1,
        "UNKNOWN_REQUESTER": 1,
        "INELIGIBLE_RECIPIENT": 1,
    }
    assert audit.export_name == "list.csv"
    assert [line["org"] for line in audit.json_lines()] == [
        "NCRIC",
        "Oxnard CA PD",
        "Dallas TX PD",
        "CA Example Tribal Police",
    ]


def test_an_illinois_owner_is_told_declarations_are_not_in_the_list() -> None:
    notes = audit_of(BY_ID["il-mount-prospect-pd"], "Dallas TX PD").not_judged()
    assert any(n.startswith("NO_DECLARATION_ON_FILE: written declarations") for n in notes)
    assert not any("NO_DECLARATION" in n for n in audit_of(OWNER, "Dallas TX PD").not_judged())


def test_unsigned_sharing_joins_the_codes_and_absent_agencies_get_lines() -> None:
    owner = OWNER.agency_id
    state = PolicyState.create(load_statutes(), AGENCIES)
    policy = replay_policy_log(
        [json.dumps(change(owner, "share_with", ["ca-oxnard-pd"])).encode()],
        state,
        KEYS,
        owner,
        now=NOW,
    )
    plain = audit_of(OWNER, "Simi Valley CA PD")
    drift = compare_policy(plain.recipients, policy, OWNER)
    audit = audit_of(OWNER, "Simi Valley CA PD", policy=drift)
    assert audit.codes_of(audit.recipients[0]) == ("UNSIGNED_SHARING",)
    assert audit.findings == 1 and audit.drift == 2  # one unsigned, one signed but absent
    lines = list(audit.json_lines())
    assert lines[1] == lines[1] | {
        "org": "Oxnard Police Department",
        "listed": False,
        "agency_id": "ca-oxnard-pd",
        "signed": "share_with",
        "codes": [],
    }
