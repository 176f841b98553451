"""Who the owner is: a registry entry, or a state given on the command line without a registry."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from streamguard.exceptions import InputFileError
from streamguard.exports.options import (
    DEFAULT_OWNER_ID,
    OptionsError,
    add_owner_arguments,
    load_ownership,
)

REGISTRY = "agency_id,name,state,kind\nca-oxnard-pd,Oxnard Police Department,CA,local\n"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_owner_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture
def registry(tmp_path: Path) -> str:
    path = tmp_path / "agencies.csv"
    path.write_text(REGISTRY, encoding="utf-8")
    return str(path)


def test_owner_from_the_registry(registry: str) -> None:
    found = load_ownership(parse("--agencies", registry, "--owner", "ca-oxnard-pd"))
    assert found.from_registry
    assert (found.owner.agency_id, found.owner.state, found.owner.kind) == (
        "ca-oxnard-pd",
        "CA",
        "local",
    )


def test_owner_state_without_a_registry_names_the_owner_from_owner() -> None:
    found = load_ownership(parse("--owner-state", "fl", "--owner", "Okaloosa County FL SO"))
    assert not found.from_registry
    owner = found.owner
    assert (owner.agency_id, owner.name, owner.state, owner.kind) == (
        "Okaloosa County FL SO",
        "Okaloosa County FL SO",
        "FL",
        "county",  # guessed from the name
    )
    assert found.agencies == (owner,)  # its own rows resolve to it


def test_an_unnamed_owner_is_not_matched_by_name() -> None:
    found = load_ownership(parse("--owner-state", "CA", "--owner-kind", "county"))
    assert (found.owner.agency_id, found.owner.kind) == (DEFAULT_OWNER_ID, "county")
    assert found.agencies == ()


def test_owner_state_adds_an_owner_missing_from_the_registry(registry: str) -> None:
    found = load_ownership(
        parse("--agencies", registry, "--owner", "Eugene OR PD", "--owner-state", "OR")
    )
    assert found.owner.state == "OR" and not found.from_registry
    assert [a.agency_id for a in found.agencies] == ["ca-oxnard-pd", "Eugene OR PD"]


@pytest.mark.parametrize(
    ("argv", "error", "fragment"),
    [
        ((), OptionsError, "--agencies AGENCIES.csv --owner ID, or --owner-state ST"),
        (("--agencies", "{r}"), OptionsError, "--owner ID is needed"),
        (("--agencies", "{r}", "--owner", "nobody"), InputFileError, "'nobody' is not in"),
        (
            ("--agencies", "{r}", "--owner", "ca-oxnard-pd", "--owner-state", "TX"),
            OptionsError,
            "is CA in agencies file",
        ),
        (
            ("--agencies", "{r}", "--owner", "ca-oxnard-pd", "--owner-kind", "county"),
            OptionsError,
            "is local in agencies file",
        ),
    ],
)
def test_missing_or_contradicting_owner_options(
    registry: str, argv: tuple[str, ...], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        load_ownership(parse(*(a.replace("{r}", registry) for a in argv)))


def test_a_state_that_is_not_one_is_an_argument_error() -> None:
    with pytest.raises(SystemExit):
        parse("--owner-state", "ZZ")
