"""Command-line pieces both audit commands share: who the owner is, and output files.

The owner is the agency whose data the export is about; its state's law applies. It comes from a
registry (`--agencies` and `--owner ID`) or, for an auditor who has no registry yet, from
`--owner-state` (and `--owner-kind`): organizations are then resolved from their names alone
(docs/audit.md, "Resolving organization names").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from streamguard.core.models import AGENCY_KINDS, Agency
from streamguard.core.registry import US_STATES, load_agencies_csv
from streamguard.core.timeutil import parse_ts
from streamguard.exceptions import InputFileError, StreamguardError, error_line
from streamguard.exports.orgs import guess_kind, normalize_org_name

__all__ = (
    "DEFAULT_OWNER_ID",
    "FINDINGS_EXIT",
    "OptionsError",
    "Ownership",
    "add_owner_arguments",
    "add_unverified_argument",
    "load_ownership",
    "open_output",
    "positive",
    "run_command",
    "timestamp",
)

DEFAULT_OWNER_ID: Final = "owner"
# Exit status with --fail-on-findings when the audit found something: distinct from 2 (the audit
# could not run), so a cron job or CI can tell "read the report" from "fix the job".
FINDINGS_EXIT: Final = 1


class OptionsError(StreamguardError):
    """Options that contradict each other or the registry; one line, exit 2, like a bad file."""


def positive(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    if not text.strip().isdigit():
        msg = f"not a whole number >= 0: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def timestamp(text: str) -> float:
    """An argparse type: an ISO-8601 timestamp, as POSIX seconds."""
    value = parse_ts(text)
    if value is None:
        msg = f"not an ISO-8601 timestamp: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def add_unverified_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-unverified",
        dest="enforce_unverified",
        action="store_false",
        help="do not apply statute provisions whose text is marked unverified",
    )


def _state(text: str) -> str:
    code = text.strip().upper()
    if code not in US_STATES:
        msg = f"not a two-letter US state code: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return code


def add_owner_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "owner", "a registry and an agency_id in it, or the owner's state (no registry needed)"
    )
    group.add_argument(
        "--agencies",
        type=Path,
        metavar="AGENCIES.csv",
        help="registry of agencies (docs/contract.md section 2 columns, optional aliases)",
    )
    group.add_argument(
        "--owner",
        metavar="AGENCY_ID",
        help="agency_id of the owner in the registry; with --owner-state and no registry, "
        "the owner's name as the export spells it (its own rows are then recognised)",
    )
    group.add_argument(
        "--owner-state",
        type=_state,
        metavar="ST",
        help="the owner's state (two-letter code): its law applies; no registry needed",
    )
    group.add_argument(
        "--owner-kind",
        choices=sorted(AGENCY_KINDS),
        help="the owner's kind with --owner-state (default: guessed from --owner, else local)",
    )


@dataclass(frozen=True, slots=True)
class Ownership:
    """The owner and the agencies organization names are resolved against (the owner included)."""

    owner: Agency
    agencies: tuple[Agency, ...]
    from_registry: bool


def load_ownership(args: argparse.Namespace) -> Ownership:
    """The owner from `--agencies/--owner` or `--owner-state`; contradictions are errors."""
    agencies = load_agencies_csv(args.agencies) if args.agencies is not None else []
    listed = next((a for a in agencies if a.agency_id == args.owner), None)
    if listed is not None:
        for option, given, actual in (
            ("--owner-state", args.owner_state, listed.state),
            ("--owner-kind", args.owner_kind, listed.kind),
        ):
            if given is not None and given != actual:
                msg = (
                    f"owner {listed.agency_id!r} is {actual} in agencies file {args.agencies}, "
                    f"not {option} {given}"
                )
                raise OptionsError(msg)
        return Ownership(listed, tuple(agencies), from_registry=True)
    if args.owner_state is None:
        if args.agencies is None:
            msg = "say whose data this is: --agencies AGENCIES.csv --owner ID, or --owner-state ST"
            raise OptionsError(msg)
        if args.owner is None:
            msg = f"--owner ID is needed with agencies file {args.agencies} (or --owner-state ST)"
            raise OptionsError(msg)
        msg = (
            f"owner {args.owner!r} is not in agencies file {args.agencies} (or give --owner-state)"
        )
        raise InputFileError(msg)
    name = args.owner or DEFAULT_OWNER_ID
    kind = args.owner_kind or (guess_kind(normalize_org_name(name)) if args.owner else "local")
    owner = Agency(name, name, args.owner_state, kind)
    # A named owner joins the names to resolve, so its own rows are the owner's; the placeholder
    # name of an unnamed one must not match an organization called "Owner".
    resolvable = (*agencies, owner) if args.owner else tuple(agencies)
    return Ownership(owner, resolvable, from_registry=False)


def open_output(path: Path, what: str) -> IO[bytes]:
    try:
        return path.open("wb")
    except OSError as exc:
        msg = f"cannot write {what} {path}: {exc.strerror or exc}"
        raise InputFileError(msg) from exc


def run_command(
    parser: argparse.ArgumentParser,
    command: Callable[[argparse.Namespace], int],
    argv: list[str],
) -> int:
    """Parse `argv` and run `command`; a StreamGuard or OS error is one line and exit 2."""
    args = parser.parse_args(argv)
    try:
        return command(args)
    except BrokenPipeError:
        return 0  # `streamguard audit ... | head` is normal use
    except (StreamguardError, OSError) as exc:
        print(error_line(parser.prog.removeprefix("streamguard "), exc), file=sys.stderr)
        return 2
