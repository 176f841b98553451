"""`streamguard audit`: arguments, files and exit codes around the judge, summary and report.

Rows stream from the export through the judge into the summary one at a time, and JSON lines
are written as they come, so a multi-million-row export audits in constant memory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import IO

from streamguard import serde
from streamguard.core.statutes import load_statutes
from streamguard.exports.judge import AuditConfig, Auditor
from streamguard.exports.layouts import ExportFile
from streamguard.exports.options import (
    FINDINGS_EXIT,
    add_owner_arguments,
    add_unverified_argument,
    load_ownership,
    open_output,
    positive,
    run_command,
)
from streamguard.exports.orgs import OrgResolver
from streamguard.exports.progress import Progress
from streamguard.exports.report import render_html, render_text
from streamguard.exports.summary import AuditSummary

__all__ = ("build_parser", "main_audit", "run_audit")


def run_audit(
    export: ExportFile,
    auditor: Auditor,
    *,
    jsonl: IO[bytes] | None = None,
    warn: IO[str] | None = None,
    warn_limit: int = 100,
    progress: Progress | None = None,
) -> AuditSummary:
    """Judge every row, write JSONL lines as they come, and return the summary."""
    summary = AuditSummary.of(str(export.path), auditor)
    warned = 0
    for row in export:
        verdict = auditor.judge(row)
        summary.add(verdict)
        if progress is not None:
            progress.tick()
        if jsonl is not None:
            jsonl.write(serde.dumps(verdict.as_json()) + b"\n")
        if verdict.problems and warn is not None:
            warned += 1
            if warned <= warn_limit:
                if progress is not None:
                    progress.done()  # a warning starts on its own line, not after the counter
                print(
                    f"streamguard audit: {export.path} line {verdict.line} (row {verdict.row}): "
                    f"{'; '.join(verdict.problems)}",
                    file=warn,
                )
    if progress is not None:
        progress.done()
    if warn is not None and warned > warn_limit:
        print(f"streamguard audit: ... and {warned - warn_limit} more malformed rows", file=warn)
    if export.portal is not None:
        summary.portal = export.portal
        summary.other_portal_rows = export.skipped
        summary.portals_in_file = len(export.portals)
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamguard audit",
        description="Audit a Flock search-log export (network/organization audit or "
        "transparency-portal search audit) against the owner's state ALPR law.",
    )
    parser.add_argument("export", type=Path, metavar="EXPORT.csv")
    add_owner_arguments(parser)
    parser.add_argument(
        "--portal",
        metavar="SLUG",
        help="audit only this portal's rows of a multi-portal archive (a portal_slug column)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="FILE.jsonl", help="write one JSON line per input row"
    )
    parser.add_argument("--html", type=Path, metavar="FILE", help="write an offline HTML report")
    parser.add_argument(
        "--show-reasons",
        action="store_true",
        help="show each worst row's user and stated reason in the reports (they may hold "
        "plates or names: such a report is not for publication)",
    )
    parser.add_argument(
        "--fail-on-findings",
        action="store_true",
        help=f"exit {FINDINGS_EXIT} when any row has a finding (for cron jobs and CI)",
    )
    parser.add_argument(
        "--broad-networks",
        type=positive,
        default=1000,
        metavar="N",
        help="flag searches covering N or more networks (0 turns it off; default 1000)",
    )
    parser.add_argument(
        "--broad-devices",
        type=positive,
        default=0,
        metavar="N",
        help="flag searches covering N or more cameras (default 0: off)",
    )
    parser.add_argument(
        "--top",
        type=positive,
        default=10,
        metavar="N",
        help="organizations and worst rows shown (default 10)",
    )
    add_unverified_argument(parser)
    return parser


def _audit(args: argparse.Namespace) -> int:
    ownership = load_ownership(args)
    config = AuditConfig(
        broad_networks=args.broad_networks or None,
        broad_devices=args.broad_devices or None,
        top=max(args.top, 1),
        worst=max(args.top, 1),
        show_reasons=args.show_reasons,
    )
    book = load_statutes(enforce_unverified=args.enforce_unverified)
    with ExportFile(args.export, portal=args.portal, keep_user=args.show_reasons) as export:
        auditor = Auditor(
            book, ownership.owner, OrgResolver(ownership.agencies), export.layout, config
        )
        jsonl = open_output(args.out, "JSONL output") if args.out is not None else None
        progress = Progress(sys.stderr, "streamguard audit", fraction=lambda: export.fraction_read)
        try:
            summary = run_audit(export, auditor, jsonl=jsonl, warn=sys.stderr, progress=progress)
        finally:
            progress.done()
            if jsonl is not None:
                jsonl.close()
    if args.html is not None:
        html = open_output(args.html, "HTML report")
        with html:
            html.write(render_html(summary).encode("utf-8"))
    sys.stdout.write(render_text(summary))
    sys.stdout.flush()
    if args.fail_on_findings and summary.rows_with_findings:
        return FINDINGS_EXIT
    return 0


def main_audit(argv: list[str]) -> int:
    """`streamguard audit ...`: 0 after a completed audit (1 with --fail-on-findings and
    findings), 2 with one line on bad input."""
    return run_command(build_parser(), _audit, argv)


if __name__ == "__main__":
    sys.exit(main_audit(sys.argv[1:]))
