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
from streamguard.core.registry import load_agencies_csv
from streamguard.core.statutes import load_statutes
from streamguard.exceptions import InputFileError, StreamguardError
from streamguard.exports.judge import AuditConfig, Auditor
from streamguard.exports.layouts import ExportFile
from streamguard.exports.orgs import OrgResolver
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
) -> AuditSummary:
    """Judge every row, write JSONL lines as they come, and return the summary."""
    summary = AuditSummary.of(str(export.path), auditor)
    warned = 0
    for row in export:
        verdict = auditor.judge(row)
        summary.add(verdict)
        if jsonl is not None:
            jsonl.write(serde.dumps(verdict.as_json()) + b"\n")
        if verdict.problems and warn is not None:
            warned += 1
            if warned <= warn_limit:
                print(
                    f"streamguard audit: {export.path} line {verdict.line} (row {verdict.row}): "
                    f"{'; '.join(verdict.problems)}",
                    file=warn,
                )
    if warn is not None and warned > warn_limit:
        print(f"streamguard audit: ... and {warned - warn_limit} more malformed rows", file=warn)
    return summary


def _positive(text: str) -> int:
    if not text.strip().isdigit():
        msg = f"not a whole number >= 0: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamguard audit",
        description="Audit a Flock search-log export (network/organization audit or "
        "transparency-portal search audit) against the owner's state ALPR law.",
    )
    parser.add_argument("export", type=Path, metavar="EXPORT.csv")
    parser.add_argument("--agencies", type=Path, required=True, metavar="AGENCIES.csv")
    parser.add_argument(
        "--owner",
        required=True,
        metavar="AGENCY_ID",
        help="agency_id of the agency whose data was searched (its law applies)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="FILE.jsonl", help="write one JSON line per input row"
    )
    parser.add_argument("--html", type=Path, metavar="FILE", help="write an offline HTML report")
    parser.add_argument(
        "--broad-networks",
        type=_positive,
        default=1000,
        metavar="N",
        help="flag searches covering N or more networks (0 turns it off; default 1000)",
    )
    parser.add_argument(
        "--broad-devices",
        type=_positive,
        default=0,
        metavar="N",
        help="flag searches covering N or more cameras (default 0: off)",
    )
    parser.add_argument(
        "--top",
        type=_positive,
        default=10,
        metavar="N",
        help="organizations and worst rows shown (default 10)",
    )
    parser.add_argument(
        "--no-unverified",
        dest="enforce_unverified",
        action="store_false",
        help="do not apply statute provisions whose text is marked unverified",
    )
    return parser


def _open_output(path: Path, what: str) -> IO[bytes]:
    try:
        return path.open("wb")
    except OSError as exc:
        msg = f"cannot write {what} {path}: {exc.strerror or exc}"
        raise InputFileError(msg) from exc


def _audit(args: argparse.Namespace) -> int:
    agencies = load_agencies_csv(args.agencies)
    owner = next((a for a in agencies if a.agency_id == args.owner), None)
    if owner is None:
        msg = f"owner {args.owner!r} is not in agencies file {args.agencies}"
        raise InputFileError(msg)
    config = AuditConfig(
        broad_networks=args.broad_networks or None,
        broad_devices=args.broad_devices or None,
        top=max(args.top, 1),
        worst=max(args.top, 1),
    )
    book = load_statutes(enforce_unverified=args.enforce_unverified)
    with ExportFile(args.export) as export:
        auditor = Auditor(book, owner, OrgResolver(agencies), export.layout, config)
        jsonl = _open_output(args.out, "JSONL output") if args.out is not None else None
        try:
            summary = run_audit(export, auditor, jsonl=jsonl, warn=sys.stderr)
        finally:
            if jsonl is not None:
                jsonl.close()
    if args.html is not None:
        html = _open_output(args.html, "HTML report")
        with html:
            html.write(render_html(summary).encode("utf-8"))
    sys.stdout.write(render_text(summary))
    sys.stdout.flush()
    return 0


def main_audit(argv: list[str]) -> int:
    """`streamguard audit ...`: exit 0 after a completed audit, 2 with one line on bad input."""
    args = build_parser().parse_args(argv)
    try:
        return _audit(args)
    except StreamguardError as exc:
        print(f"streamguard: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0  # `streamguard audit ... | head` is normal use
    except OSError as exc:
        print(f"streamguard: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main_audit(sys.argv[1:]))
