"""The `streamguard` command line: argument parsing and file handling; logic lives elsewhere."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from streamguard import __version__, serde
from streamguard.compiled import build_label
from streamguard.core.timeutil import parse_ts
from streamguard.exceptions import StreamguardError, error_line, warning_line

__all__ = ("main",)


def _timestamp(text: str) -> float:
    value = parse_ts(text)
    if value is None:
        msg = f"not an ISO-8601 timestamp: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from streamguard.core.keys import exposure_warning, load_keys
    from streamguard.core.policy import PolicyState
    from streamguard.core.registry import load_agencies_csv
    from streamguard.core.statutes import load_statutes
    from streamguard.stream.evaluate import evaluate_lines

    agencies = load_agencies_csv(args.agencies)
    keys = load_keys(args.keys) if args.keys else {}
    warning = exposure_warning(args.keys, keys) if args.keys else None
    if warning is not None:
        print(warning_line("evaluate", warning), file=sys.stderr)
    state = PolicyState.create(load_statutes(enforce_unverified=args.enforce_unverified), agencies)
    # The clock is read here, at the edge, once: every line is judged against the same instant.
    now = args.now if args.now is not None else time.time()
    try:
        source = args.events.open("rb")
    except OSError as exc:
        msg = f"cannot read events file {args.events}: {exc.strerror or exc}"
        raise StreamguardError(msg) from exc
    out = sys.stdout.buffer
    with source:
        for line in evaluate_lines(_lines(source), state, keys, now):
            out.write(line)
    out.flush()
    return 0


def _lines(source: Iterable[bytes]) -> Iterator[bytes]:
    for raw in source:
        line: bytes = raw.rstrip(b"\r\n")
        yield line


def _cmd_classify(args: argparse.Namespace) -> int:
    from streamguard.core.classifier import explain

    texts: Iterable[str] = args.texts if args.texts else (line.rstrip("\r\n") for line in sys.stdin)
    out = sys.stdout.buffer
    for text in texts:
        found = explain(text)
        rules = [{"rule": f.rule, "matched": f.matched} for f in found.findings]
        line = {"text": text, "categories": list(found.categories), "rules": rules}
        out.write(serde.dumps({**line, "folds": list(found.folds)}) + b"\n")
    out.flush()
    return 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        msg = f"not an ISO date (YYYY-MM-DD): {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def _cmd_law(args: argparse.Namespace) -> int:
    from streamguard.core.lawbook import describe_book, describe_state
    from streamguard.core.statutes import load_statutes

    # Every provision is loaded, so one switched off by --no-unverified is listed as such.
    book = load_statutes(enforce_unverified=True)
    today = args.on if args.on is not None else dt.datetime.now(dt.UTC).date()
    if args.state is None:
        lines = describe_book(book, enforce_unverified=args.enforce_unverified, today=today)
    else:
        lines = describe_state(
            book, args.state, enforce_unverified=args.enforce_unverified, today=today
        )
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    return 0


# Commands with their own argument parsers, in their own modules; `main` hands them the rest of
# the command line untouched so `streamguard kafka --help` and friends reach the right parser.
_DELEGATED: dict[str, tuple[str, str, str]] = {
    "worker": (
        "streamguard.worker.main",
        "main_worker",
        "run a Faust worker (settings from STREAMGUARD_* environment variables)",
    ),
    "demo": (
        "streamguard.local.demo",
        "main_demo",
        "the main job: local broker, worker, a Ventura-style scenario, a summary",
    ),
    "kafka": (
        "streamguard.local.broker",
        "main_kafka",
        "start or stop a local single-node Kafka broker (KRaft)",
    ),
    "audit": (
        "streamguard.exports.cli",
        "main_audit",
        "audit a vendor search-log export (Flock, transparency portal) against the law",
    ),
    "keys": (
        "streamguard.keytool",
        "main_keys",
        "create (Ed25519), check and convert the keys that sign control records",
    ),
    "sign": (
        "streamguard.keytool",
        "main_sign",
        "sign policy_change and agency records with a private key file",
    ),
    "audit-sharing": (
        "streamguard.exports.sharing_cli",
        "main_audit_sharing",
        "audit a vendor sharing list against the law, the last list and the signed policy",
    ),
    "verify-audit": (
        "streamguard.trail.verify",
        "main_verify_audit",
        "verify every hash chain of the audit topic (and, with --checkpoints, the signed tree)",
    ),
    "prove": (
        "streamguard.trail.tlog_cli",
        "main_prove",
        "print an inclusion proof that the audit record of one event is in a signed checkpoint",
    ),
    "verify-proof": (
        "streamguard.trail.tlog_cli",
        "main_verify_proof",
        "check an inclusion proof offline with the log's public key",
    ),
    "witness": (
        "streamguard.trail.tlog_cli",
        "main_witness",
        "poll a log's checkpoints, check consistency, cosign and keep them (an outside party)",
    ),
    "verify-retention": (
        "streamguard.trail.tlog_cli",
        "main_verify_retention",
        "show from the trail's purge records that no data was kept past N days",
    ),
    "checkpoint-key": (
        "streamguard.trail.tlog_cli",
        "main_checkpoint_key",
        "create an Ed25519 checkpoint signing key or (--witness) a witness cosigning key",
    ),
    "ingest": (
        "streamguard.ingest.cli",
        "main_ingest",
        "vendor camera events (OpenALPR, Axis, Genetec) to plate_read: a file, or `serve`",
    ),
}


def _delegate(command: str, rest: list[str]) -> int:
    module_name, function_name, _ = _DELEGATED[command]
    module = importlib.import_module(module_name)
    handler: Callable[[list[str]], int] = getattr(module, function_name)
    return handler(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamguard",
        description="Enforce state ALPR data-sharing law on Kafka event streams.",
    )
    version = f"streamguard {__version__} ({build_label()})"
    parser.add_argument("--version", action="version", version=version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    evaluate = commands.add_parser(
        "evaluate",
        help="decide a JSON-lines file of events without Kafka, one line out per line in",
    )
    evaluate.add_argument("events", type=Path, metavar="EVENTS.jsonl")
    evaluate.add_argument("--agencies", type=Path, required=True, metavar="AGENCIES.csv")
    evaluate.add_argument(
        "--keys",
        type=Path,
        metavar="KEYS.json",
        help="KEYS.json v1.1: the keys that sign policy changes and agency records; without "
        "it every change and agency line is rejected",
    )
    evaluate.add_argument(
        "--now",
        type=_timestamp,
        metavar="TS",
        help="fix the clock for retention and replay checks (default: the current time)",
    )
    evaluate.add_argument(
        "--no-unverified",
        dest="enforce_unverified",
        action="store_false",
        help="do not enforce statute provisions whose text is marked unverified",
    )
    evaluate.set_defaults(handler=_cmd_evaluate)

    classify = commands.add_parser(
        "classify", help="classify search purposes (args or stdin lines)"
    )
    classify.add_argument("texts", nargs="*", metavar="TEXT")
    classify.set_defaults(handler=_cmd_classify)

    law = commands.add_parser(
        "law",
        help="print the law enforced for a state: each provision, its citation, verified or not",
    )
    law.add_argument("state", nargs="?", metavar="STATE", help="two-letter code; none lists all")
    law.add_argument(
        "--no-unverified",
        dest="enforce_unverified",
        action="store_false",
        help="show the rule as `evaluate --no-unverified` enforces it",
    )
    law.add_argument(
        "--on", type=_date, metavar="YYYY-MM-DD", help="date the in-force and repeal notes refer to"
    )
    law.set_defaults(handler=_cmd_law)

    for command, (_, _, summary) in _DELEGATED.items():
        commands.add_parser(command, help=summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Every command's last line on failure is `streamguard <command>: error: <cause>` (exit 2).
    command = args_list[0] if args_list else ""
    try:
        if command in _DELEGATED:
            return _delegate(command, args_list[1:])
        args = build_parser().parse_args(args_list)
        result: int = args.handler(args)
    except StreamguardError as exc:
        print(error_line(command, exc), file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `streamguard evaluate ... | head` is normal use, not an error.
        return 0
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
