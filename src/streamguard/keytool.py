"""`streamguard keys` and `streamguard sign`: what an administrator needs to sign control records.

    streamguard keys new --agency ID [--key-id K] [--out FILE] [--keys KEYS.json]
    streamguard keys new --registry  [--key-id K] [--out FILE] [--keys KEYS.json]
    streamguard keys check KEYS.json
    streamguard keys convert V1-KEYS.json --bind KEY_ID=AGENCY_ID|registry ...
    streamguard sign --key FILE [--user USER_ID] [--with-key] [RECORDS.jsonl]

docs/keys.md is the step-by-step. Every failure is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from streamguard import serde
from streamguard.core.keys import (
    HMAC_SHA256,
    REGISTRY_ROLE,
    exposure_warning,
    load_keys,
    parse_keys,
    read_json_file,
)
from streamguard.core.signer import SigningKey, sign_record
from streamguard.exceptions import InputFileError, StreamguardError, error_line, warning_line

__all__ = ("main_keys", "main_sign")

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")


def _default_key_id(agency_id: str | None, now: float) -> str:
    who = agency_id if agency_id is not None else REGISTRY_ROLE
    return f"k-{_UNSAFE.sub('-', who)}-{time.strftime('%Y%m%d', time.gmtime(now))}"


def _read_json_object(path: Path) -> dict[str, Any]:
    raw = read_json_file(path, "keys file")
    if not isinstance(raw, dict):
        msg = f"keys file {path} must be a JSON object"
        raise InputFileError(msg)
    return raw


def _write_keys_file(path: Path, entries: dict[str, Any]) -> None:
    """Replace KEYS.json atomically: a worker reloading it never reads half a file."""
    parse_keys(entries, str(path))  # never write a file the worker would refuse
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(entries, handle, indent=2)
        handle.write("\n")
    if path.exists():
        os.chmod(temporary, path.stat().st_mode & 0o777)
    os.replace(temporary, path)


def _cmd_new(args: argparse.Namespace) -> int:
    now = time.time()
    agency_id: str | None = None if args.registry else args.agency.strip()
    key_id: str = args.key_id or _default_key_id(agency_id, now)
    out: Path = args.out or Path(f"{key_id}.key.json")
    existing: dict[str, Any] | None = None
    if args.keys is not None and args.keys.exists():
        existing = _read_json_object(args.keys)
        load_keys(args.keys)  # the file must be usable before anything is added to it
        if key_id in existing:
            msg = f"{args.keys} already has a key {key_id!r}; choose another --key-id"
            raise InputFileError(msg)
    key = SigningKey.generate(key_id, agency_id)
    key.write(out)
    entry = {key_id: key.keys_entry()}
    if args.keys is not None:
        _write_keys_file(args.keys, {**(existing or {}), **entry})
        print(f"added key {key_id} ({key.public.binding}) to {args.keys}", file=sys.stderr)
    print(
        f"private key written to {out} (mode 0600): keep it off the StreamGuard hosts",
        file=sys.stderr,
    )
    print(json.dumps(entry))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    keys = load_keys(args.keys_file)
    warning = exposure_warning(args.keys_file, keys)
    if warning is not None:
        print(warning_line("keys", warning), file=sys.stderr)
    for key in sorted(keys.values(), key=lambda k: k.key_id):
        print(f"{key.key_id}\t{key.alg}\t{key.binding}")
    print(f"{args.keys_file}: {len(keys)} key(s), KEYS.json v1.1", file=sys.stderr)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    raw = _read_json_object(args.v1_file)
    bindings: dict[str, str] = {}
    for item in args.bind:
        key_id, sep, target = item.partition("=")
        if not sep or not key_id or not target:
            msg = f"--bind takes KEY_ID=AGENCY_ID or KEY_ID=registry, not {item!r}"
            raise InputFileError(msg)
        bindings[key_id] = target
    converted: dict[str, Any] = {}
    for key_id, value in raw.items():
        if not isinstance(value, str):
            converted[key_id] = value  # already a v1.1 entry: checked below like the rest
            continue
        target = bindings.pop(key_id, None)
        if target is None:
            msg = (
                f"{args.v1_file}: key {key_id!r} has no --bind {key_id}=AGENCY_ID; every key "
                "must be bound to the one agency (or the registry) it signs for"
            )
            raise InputFileError(msg)
        binding = {"role": REGISTRY_ROLE} if target == REGISTRY_ROLE else {"agency_id": target}
        converted[key_id] = {**binding, "alg": HMAC_SHA256, "secret": value}
    if bindings:
        msg = f"--bind names key(s) not in {args.v1_file}: {', '.join(sorted(bindings))}"
        raise InputFileError(msg)
    parse_keys(converted, str(args.v1_file))
    sys.stdout.write(json.dumps(converted, indent=2) + "\n")
    return 0


def _records(lines: Iterable[str], source: str) -> list[tuple[int, dict[str, Any]]]:
    records: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = serde.loads(line)
        except ValueError:
            msg = f"{source} line {number} is not JSON"
            raise InputFileError(msg) from None
        if not isinstance(value, dict):
            msg = f"{source} line {number} is not a JSON object"
            raise InputFileError(msg)
        records.append((number, value))
    return records


def _cmd_sign(args: argparse.Namespace) -> int:
    key = SigningKey.load(args.key)
    warning = SigningKey.exposure_warning(args.key)
    if warning is not None:
        print(warning_line("sign", warning), file=sys.stderr)
    if args.records is None:
        source, lines = "stdin", list(sys.stdin)
    else:
        source = str(args.records)
        try:
            lines = args.records.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            msg = f"cannot read {args.records}: {exc.strerror or exc}"
            raise InputFileError(msg) from exc
    now = time.time()
    signed: list[dict[str, Any]] = []
    # Everything is checked before anything is written: half a batch of signed changes on
    # stdout would be sent by the next command in the pipe.
    for number, record in _records(lines, source):
        try:
            signed.append(sign_record(key, record, now=now, user_id=args.user))
        except ValueError as exc:
            msg = f"{source} line {number}: {exc}"
            raise InputFileError(msg) from None
    out = sys.stdout
    for record in signed:
        line = serde.dumps(record).decode()
        # kafka-console-producer's parse.key form: the message key is the record's agency.
        out.write(f"{record['agency_id']}\t{line}\n" if args.with_key else f"{line}\n")
    out.flush()
    return 0


def _keys_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamguard keys",
        description="Create, check and convert signing keys (docs/keys.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    new = commands.add_parser("new", help="a new Ed25519 key pair for one agency or the registry")
    who = new.add_mutually_exclusive_group(required=True)
    who.add_argument("--agency", metavar="AGENCY_ID", help="the agency whose changes it signs")
    who.add_argument("--registry", action="store_true", help="a key that signs agency records")
    new.add_argument("--key-id", metavar="KEY_ID", help="default: k-<agency>-<yyyymmdd>")
    new.add_argument("--out", type=Path, metavar="FILE", help="default: <key_id>.key.json")
    new.add_argument(
        "--keys", type=Path, metavar="KEYS.json", help="also add the public entry to this file"
    )
    new.set_defaults(handler=_cmd_new)
    check = commands.add_parser("check", help="check a KEYS.json and list its keys")
    check.add_argument("keys_file", type=Path, metavar="KEYS.json")
    check.set_defaults(handler=_cmd_check)
    convert = commands.add_parser("convert", help="a v1 KEYS.json as v1.1 (stdout)")
    convert.add_argument("v1_file", type=Path, metavar="V1-KEYS.json")
    convert.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="KEY_ID=AGENCY_ID",
        help="the agency (or 'registry') each key signs for; once per key",
    )
    convert.set_defaults(handler=_cmd_convert)
    return parser


def _sign_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamguard sign",
        description="Sign policy_change and agency records (JSON lines, file or stdin).",
    )
    parser.add_argument("records", nargs="?", type=Path, metavar="RECORDS.jsonl")
    parser.add_argument("--key", type=Path, required=True, metavar="FILE", help="private key file")
    parser.add_argument("--user", metavar="USER_ID", help="actor.user_id where a change has none")
    parser.add_argument(
        "--with-key",
        action="store_true",
        help="prefix each line with its agency_id and a tab (kafka-console-producer parse.key)",
    )
    parser.set_defaults(handler=_cmd_sign)
    return parser


def _run(parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    args = parser.parse_args(list(argv))
    try:
        result: int = args.handler(args)
    except StreamguardError as exc:
        print(error_line(parser.prog.removeprefix("streamguard "), exc), file=sys.stderr)
        return 2
    return result


def main_keys(argv: Sequence[str]) -> int:
    return _run(_keys_parser(), argv)


def main_sign(argv: Sequence[str]) -> int:
    return _run(_sign_parser(), argv)
