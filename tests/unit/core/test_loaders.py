"""Statute data, agency CSVs, key files and timestamps: loaded strictly, errors in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamguard.core.keys import load_keys
from streamguard.core.registry import load_agencies_csv
from streamguard.core.statutes import NEUTRAL, load_statutes
from streamguard.core.timeutil import format_ts, parse_ts
from streamguard.exceptions import InputFileError

REQUIRED_STATES = ("CA", "IL", "VA", "WA", "NH", "ME", "MN", "MT", "AR", "NE", "UT", "VT", "GA")


def test_packaged_statutes_cover_the_required_states() -> None:
    """Every state the issue names has a rule with citations."""
    book = load_statutes()
    for code in REQUIRED_STATES:
        rule = book.rule_for(code)
        assert rule is not NEUTRAL and rule.state == code
        provisions = [
            p for p in (rule.out_of_state, rule.federal, rule.private, rule.retention) if p
        ]
        provisions += [p for _, p in rule.prohibited_purposes]
        cited = [p.provision.cited if hasattr(p, "provision") else p.cited for p in provisions]
        cited += [rule.documented_purpose.cited] if rule.documented_purpose else []
        assert cited, code
        assert all(c.strip() for c in cited)


def test_states_without_statute_get_the_neutral_default() -> None:
    """A state with no ALPR statute on file restricts nothing beyond the owner's settings."""
    rule = load_statutes().rule_for("TX")
    assert rule is NEUTRAL
    assert rule.out_of_state is None and rule.retention is None and not rule.prohibited_purposes


def test_statute_loader_rejects_unknown_recipient_rules() -> None:
    """A typo in the statute data is an error, not a silent permission."""
    text = json.dumps(
        {
            "version": "x",
            "baseline": {"missing_purpose": {"citation": "c", "verified": True}},
            "states": {
                "ZZ": {
                    "name": "z",
                    "out_of_state": {"rule": "maybe", "citation": "c", "verified": True},
                }
            },
        }
    )
    with pytest.raises(ValueError, match="maybe"):
        load_statutes(text=text)


def test_agencies_csv_loads_with_aliases_and_normalises(tmp_path: Path) -> None:
    """CSV rows become agencies; state and kind are normalised; aliases split on |."""
    path = tmp_path / "agencies.csv"
    path.write_text(
        "\ufeffagency_id,name,state,kind,aliases\n"
        "ca-x,X Police,ca,Local,X PD|X Police Dept\n"
        "us-y,Y Agency,US,federal,\n",
        encoding="utf-8",
    )
    agencies = {a.agency_id: a for a in load_agencies_csv(path)}
    assert agencies["ca-x"].state == "CA" and agencies["ca-x"].kind == "local"
    assert agencies["ca-x"].aliases == ("X PD", "X Police Dept")
    assert agencies["us-y"].is_federal


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("agency_id,name,state\nx,X,CA\n", "lacks column"),
        ("agency_id,name,state,kind\nx,X,Cali,local\n", "line 2"),
        ("agency_id,name,state,kind\nx,X,CA,local\ny,Y,CA,alien\n", "line 3"),
        ("agency_id,name,state,kind\n,X,CA,local\n", "agency_id"),
    ],
)
def test_bad_agencies_csv_is_a_one_line_error(tmp_path: Path, content: str, message: str) -> None:
    """A bad agencies file fails whole, with a one-line message naming the problem."""
    path = tmp_path / "agencies.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputFileError, match=message) as info:
        load_agencies_csv(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"agency_id,name,state,kind\n\xff\xfe,X,CA,local\n", b"\xff\xfeagency_id,name\n"],
)
def test_non_utf8_agencies_csv_is_a_one_line_error(tmp_path: Path, content: bytes) -> None:
    """Bytes that are not UTF-8, in the header or a row, are an input error, not a traceback."""
    path = tmp_path / "agencies.csv"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match="not UTF-8"):
        load_agencies_csv(path)


def test_missing_agencies_file_is_an_input_error(tmp_path: Path) -> None:
    """A path that does not exist is reported, not a traceback."""
    with pytest.raises(InputFileError, match="cannot read"):
        load_agencies_csv(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    "content", ["not json", "[1,2]", '{"k1": 5}', '{"k1": ""}', '{"k1": "a-v1-secret"}']
)
def test_bad_keys_file_is_an_input_error(tmp_path: Path, content: str) -> None:
    """KEYS.json must map key ids to bound keys (v1.1); a v1 bare secret is refused too."""
    path = tmp_path / "keys.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputFileError):
        load_keys(path)


def test_keys_file_loads_hmac_secrets_as_bytes(tmp_path: Path) -> None:
    """HMAC secrets are read as UTF-8 bytes, bound to their agency."""
    path = tmp_path / "keys.json"
    entry = {"agency_id": "ca-ventura-county-so", "alg": "hmac-sha256"}
    path.write_text(
        json.dumps(
            {"k1": {**entry, "secret": "s3cret-0123456789"}, "k2": {**entry, "secret": "ünï" * 6}}
        ),
        encoding="utf-8",
    )
    loaded = load_keys(path)
    assert {k: v.material for k, v in loaded.items()} == {
        "k1": b"s3cret-0123456789",
        "k2": ("ünï" * 6).encode(),
    }


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2025-02-10T18:03:11Z", 1739210591.0),
        ("2025-02-10T18:03:11.500Z", 1739210591.5),
        ("2025-02-10T18:03:11+00:00", 1739210591.0),
        ("2025-02-10T20:03:11+02:00", 1739210591.0),
        ("2025-02-10 18:03:11", 1739210591.0),
        ("2025-02-10T18:03:11z", 1739210591.0),
    ],
)
def test_timestamps_parse_as_utc(text: str, epoch: float) -> None:
    """Contract timestamps and common variants parse to the same instant."""
    assert parse_ts(text) == epoch


@pytest.mark.parametrize("value", ["", "yesterday", "2025-13-01T00:00:00Z", None, 17, ["x"]])
def test_non_timestamps_are_rejected(value: object) -> None:
    """Anything that is not an ISO-8601 string parses to None."""
    assert parse_ts(value) is None


def test_format_round_trips() -> None:
    """format_ts writes the contract's Z form and parses back to the same instant."""
    assert format_ts(1739210591.0) == "2025-02-10T18:03:11Z"
    assert parse_ts(format_ts(1739210591.25)) == 1739210591.25


def test_no_statute_tells_public_agency_kinds_apart() -> None:
    """The engine shares cache entries across local, county, state and campus agencies; that is
    only sound while no statute's eligible kinds split them."""
    public = {"local", "county", "state", "campus"}
    for rule in load_statutes().states.values():
        if rule.eligible_kinds is not None:
            assert public <= rule.eligible_kinds.kinds or not public & rule.eligible_kinds.kinds
