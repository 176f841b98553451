"""`streamguard audit-sharing`: a vendor sharing list judged against the owner's law and policy.

Reads the list (`sharelist`), merges and judges its recipients (`sharing`), compares them with a
previous list and with the signed policy-change log replayed by the engine (`drift`), and
prints, writes and renders the result (`sharing_summary`, `sharing_report`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

from streamguard import serde
from streamguard.core.keys import load_keys
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import StatuteBook, load_statutes
from streamguard.exceptions import InputFileError
from streamguard.exports.drift import (
    SignedPolicy,
    compare_baseline,
    compare_policy,
    replay_policy_log,
)
from streamguard.exports.layouts import MalformedRow
from streamguard.exports.options import (
    FINDINGS_EXIT,
    OptionsError,
    Ownership,
    add_owner_arguments,
    add_unverified_argument,
    load_ownership,
    open_output,
    positive,
    run_command,
    timestamp,
)
from streamguard.exports.orgs import OrgResolver
from streamguard.exports.progress import Progress
from streamguard.exports.sharelist import SharingFile, SharingRow
from streamguard.exports.sharing import SharingJudge, SharingList, collect
from streamguard.exports.sharing_report import render_sharing_html, render_sharing_text
from streamguard.exports.sharing_summary import SharingAudit

__all__ = ("build_parser", "main_audit_sharing", "read_listing")

_WARN_LIMIT: Final = 100
_PROG: Final = "streamguard audit-sharing"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Audit a vendor sharing list (Organization Name, Networks Shared With Me, "
        "Networks I'm Sharing) against the owner's state ALPR law, the previous list and "
        "StreamGuard's signed policy.",
    )
    parser.add_argument("sharing", type=Path, metavar="SHARING.csv")
    add_owner_arguments(parser)
    drift = parser.add_argument_group("drift")
    drift.add_argument(
        "--baseline",
        type=Path,
        metavar="PREVIOUS.csv",
        help="the previous export of the same list: recipients added and removed since",
    )
    drift.add_argument(
        "--policy-log",
        type=Path,
        metavar="CHANGES.jsonl",
        help="signed policy_change records (JSON lines, e.g. an export of the policy topic), "
        "replayed by the engine to rebuild the owner's settings; needs --keys and a registry",
    )
    drift.add_argument(
        "--keys", type=Path, metavar="KEYS.json", help="policy-change signing keys (as evaluate)"
    )
    drift.add_argument(
        "--as-of",
        type=timestamp,
        metavar="TS",
        help="when the sharing list was exported: the owner's changes dated later are not "
        "replayed (default: all)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="FILE.jsonl", help="write one JSON line per recipient"
    )
    parser.add_argument("--html", type=Path, metavar="FILE", help="write an offline HTML report")
    parser.add_argument(
        "--top",
        type=positive,
        default=25,
        metavar="N",
        help="recipients listed per table on stdout (default 25; the HTML lists all)",
    )
    parser.add_argument(
        "--fail-on-findings",
        action="store_true",
        help=f"exit {FINDINGS_EXIT} when any recipient has a finding (UNSIGNED_SHARING included)",
    )
    parser.add_argument(
        "--fail-on-drift",
        action="store_true",
        help=f"exit {FINDINGS_EXIT} when anything changed since --baseline or differs from the "
        "signed policy",
    )
    add_unverified_argument(parser)
    return parser


def read_listing(source: SharingFile, warn: IO[str] | None, progress: Progress) -> SharingList:
    """Every row of `source` merged into recipients; malformed rows warned about as they come."""
    warned = 0

    def on_malformed(row: MalformedRow) -> None:
        nonlocal warned
        warned += 1
        if warn is not None and warned <= _WARN_LIMIT:
            progress.done()
            print(
                f"{_PROG}: {source.path} line {row.line} (row {row.row}): {row.detail}", file=warn
            )

    def ticking() -> Iterator[SharingRow | MalformedRow]:
        for row in source:
            progress.tick()
            yield row

    listing = collect(ticking(), on_malformed)
    progress.done()
    if warn is not None and warned > _WARN_LIMIT:
        print(f"{_PROG}: ... and {warned - _WARN_LIMIT} more malformed rows", file=warn)
    return listing


def _signed_policy(
    args: argparse.Namespace, book: StatuteBook, ownership: Ownership
) -> SignedPolicy | None:
    if args.policy_log is None:
        if args.keys is not None or args.as_of is not None:
            msg = "--keys and --as-of apply to --policy-log, which is not given"
            raise OptionsError(msg)
        return None
    if args.keys is None:
        msg = "--policy-log needs --keys KEYS.json: without keys no signed change can be verified"
        raise OptionsError(msg)
    if not ownership.from_registry:
        msg = (
            "--policy-log needs the owner in a registry (--agencies, --owner ID): signed "
            "changes name agencies by agency_id"
        )
        raise OptionsError(msg)
    keys = load_keys(args.keys)
    state = PolicyState.create(book, ownership.agencies)
    try:
        handle = args.policy_log.open("rb")
    except OSError as exc:
        msg = f"cannot read policy log {args.policy_log}: {exc.strerror or exc}"
        raise InputFileError(msg) from exc
    progress = Progress(sys.stderr, f"{_PROG}: policy log", "lines")

    def lines() -> Iterator[bytes]:
        for line in handle:
            progress.tick()
            yield line

    with handle:
        policy = replay_policy_log(
            lines(),
            state,
            keys,
            ownership.owner.agency_id,
            now=args.as_of if args.as_of is not None else time.time(),
            as_of=args.as_of,
            log=args.policy_log.name,
        )
    progress.done()
    return policy


def _audit(args: argparse.Namespace) -> int:
    ownership = load_ownership(args)
    book = load_statutes(enforce_unverified=args.enforce_unverified)
    policy = _signed_policy(args, book, ownership)
    agencies = tuple(policy.registry.values()) if policy is not None else ownership.agencies
    judge = SharingJudge(
        book,
        ownership.owner,
        OrgResolver(agencies),
        policy.settings if policy is not None else None,
    )
    with SharingFile(args.sharing) as source:
        progress = Progress(sys.stderr, _PROG, fraction=lambda: source.fraction_read)
        listing = read_listing(source, sys.stderr, progress)
        layout = source.layout
    recipients = [judge.judge(listed) for listed in listing.recipients]
    baseline = None
    if args.baseline is not None:
        with SharingFile(args.baseline, "baseline") as previous:
            progress = Progress(sys.stderr, f"{_PROG}: baseline")
            before = read_listing(previous, sys.stderr, progress)
        baseline = compare_baseline(listing.recipients, before.recipients, args.baseline.name)
    audit = SharingAudit.of(
        str(args.sharing),
        layout,
        ownership.owner,
        judge.rule,
        listing,
        recipients,
        baseline=baseline,
        policy=compare_policy(recipients, policy, ownership.owner) if policy else None,
        top=max(args.top, 1),
    )
    if args.out is not None:
        with open_output(args.out, "JSONL output") as jsonl:
            for line in audit.json_lines():
                jsonl.write(serde.dumps(line) + b"\n")
    if args.html is not None:
        with open_output(args.html, "HTML report") as html:
            html.write(render_sharing_html(audit).encode("utf-8"))
    sys.stdout.write(render_sharing_text(audit))
    sys.stdout.flush()
    if (args.fail_on_findings and audit.findings) or (args.fail_on_drift and audit.drift):
        return FINDINGS_EXIT
    return 0


def main_audit_sharing(argv: list[str]) -> int:
    """`streamguard audit-sharing ...`: 0 after a completed audit (1 with --fail-on-findings or
    --fail-on-drift when they apply), 2 with one line on bad input."""
    return run_command(build_parser(), _audit, argv)


if __name__ == "__main__":
    sys.exit(main_audit_sharing(sys.argv[1:]))
