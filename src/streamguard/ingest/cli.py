"""`streamguard ingest`: vendor event files and replays to the reads topic, the endpoint, tokens.

    streamguard ingest FILE --format openalpr|axis|genetec --owner AGENCY_ID [--dry-run | --out F]
    streamguard ingest serve
    streamguard ingest new-token [--id NAME]

FILE is JSON lines (one body a line) or one JSON document (one body, or an array of bodies).
Each body is mapped exactly as the endpoint maps a post; bodies that cannot be mapped become
quarantine records, as they would over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Final

from streamguard import serde
from streamguard.core.timeutil import format_ts
from streamguard.exceptions import InputFileError
from streamguard.ingest.auth import load_owners, new_token
from streamguard.ingest.formats import FORMAT_NAMES, FORMATS
from streamguard.ingest.producer import KafkaSink, SendFailed
from streamguard.ingest.settings import IngestSettings, load_zone
from streamguard.ingest.translate import Message, translate
from streamguard.ingest.types import Owner

__all__ = ("main_ingest",)

_AGENCY_ID: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# One JSON document is read whole; a replay larger than this belongs in JSON lines.
MAX_DOCUMENT_BYTES: Final = 256 * 1024 * 1024
# Records per broker round trip when writing a file.
_CHUNK: Final = 500


def _file_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamguard ingest",
        description=(
            "Map a file of vendor camera events to plate_read events and write them to the "
            "reads topic (or print them). Also: `streamguard ingest serve` (the HTTP endpoint) "
            "and `streamguard ingest new-token`."
        ),
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="JSON lines or one JSON document")
    parser.add_argument("--format", required=True, choices=FORMAT_NAMES)
    parser.add_argument("--owner", required=True, metavar="AGENCY_ID", help="the camera owner")
    parser.add_argument(
        "--owners",
        type=Path,
        metavar="OWNERS.json",
        help="owners file for the owner's share_to and time zone "
        "(default: STREAMGUARD_INGEST_OWNERS; without one, reads are shared with nobody)",
    )
    parser.add_argument(
        "--timezone", metavar="ZONE", help="zone of camera-local times when the owner sets none"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--dry-run", action="store_true", help="print the events as JSON lines, send nothing"
    )
    where.add_argument("--out", type=Path, metavar="FILE.jsonl", help="write the events here")
    return parser


def _owner(args: argparse.Namespace, settings: IngestSettings) -> Owner:
    if not _AGENCY_ID.fullmatch(args.owner):
        msg = f"--owner must be an agency id (lowercase letters, digits, . _ -): {args.owner!r}"
        raise InputFileError(msg)
    zone = load_zone(args.timezone, "--timezone") if args.timezone else settings.default_zone()
    owners_path = args.owners or settings.owners_path
    if owners_path is None:
        return Owner(args.owner, (), zone)
    owner = load_owners(owners_path, zone).owners.get(args.owner)
    if owner is None:
        msg = f"owner {args.owner} is not in the owners file {owners_path}"
        raise InputFileError(msg)
    return owner


def _bodies(path: Path) -> Iterator[bytes]:
    """Each body of the file, as bytes (JSON lines, or one document, or an array of them)."""
    try:
        source = path.open("rb")
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror or exc}"
        raise InputFileError(msg) from None
    with source:
        first = b""
        for line in source:
            if line.strip():
                first = line
                break
        try:
            serde.loads(first)
            lines_mode = True
        except ValueError:
            lines_mode = False
        if lines_mode:
            yield first.strip()
            for line in source:
                if line.strip():
                    yield line.strip()
            return
        rest = source.read(MAX_DOCUMENT_BYTES + 1)
    document = first + rest
    if len(document) > MAX_DOCUMENT_BYTES:
        msg = f"{path} is one JSON document larger than {MAX_DOCUMENT_BYTES} bytes: use JSON lines"
        raise InputFileError(msg)
    try:
        value = serde.loads(document)
    except ValueError:
        msg = f"{path} is neither JSON lines nor one JSON document"
        raise InputFileError(msg) from None
    if isinstance(value, list):
        yield from (serde.dumps(item) for item in value)
    else:
        yield document


def _write(out: IO[bytes], messages: Sequence[Message]) -> None:
    for message in messages:
        out.write(serde.dumps(message.value) + b"\n")


async def _send(settings: IngestSettings, batches: Iterator[list[Message]]) -> None:
    sink = KafkaSink(settings.kafka, settings.send_timeout_ms / 1000)
    await sink.start()
    sent = 0
    try:
        for batch in batches:
            try:
                await sink.send_all(batch)
            except SendFailed as exc:
                msg = (
                    f"{exc} after {sent} records; running the same file again is safe "
                    "(its reads keep their read_ids)"
                )
                raise SendFailed(msg) from None
            sent += len(batch)
    finally:
        await sink.stop()


def _ingest_file(argv: list[str]) -> int:
    args = _file_parser().parse_args(argv)
    settings = IngestSettings.from_env()
    owner = _owner(args, settings)
    fmt = FORMATS[args.format]
    # The clock is read once, here: every quarantine record of one run has the same decided_at.
    decided_at = format_ts(time.time())
    counts = {"bodies": 0, "reads": 0, "quarantined": 0, "ignored": 0}

    def translated() -> Iterator[list[Message]]:
        batch: list[Message] = []
        for raw in _bodies(args.file):
            result = translate(fmt, owner, raw, None, decided_at)
            counts["bodies"] += 1
            counts["reads"] += len(result.reads)
            counts["quarantined"] += 1 if result.code is not None else 0
            counts["ignored"] += 1 if result.outcome == "ignored" else 0
            batch.extend(result.messages)
            if len(batch) >= _CHUNK:
                yield batch
                batch = []
        if batch:
            yield batch

    if args.dry_run or args.out is not None:
        if args.out is None:
            out_stream = sys.stdout.buffer
        else:
            try:
                out_stream = args.out.open("wb")
            except OSError as exc:
                msg = f"cannot write {args.out}: {exc.strerror or exc}"
                raise InputFileError(msg) from None
        try:
            for batch in translated():
                _write(out_stream, batch)
        finally:
            out_stream.flush()
            if args.out is not None:
                out_stream.close()
        where = "printed" if args.out is None else f"written to {args.out}"
    else:
        asyncio.run(_send(settings, translated()))
        where = f"sent to {settings.kafka.topic('reads')}"
    print(
        f"ingest: {counts['bodies']} bodies: {counts['reads']} reads {where}, "
        f"{counts['quarantined']} quarantined, {counts['ignored']} ignored"
        + ("" if owner.share_to else "; share_to is empty (no owners file entry)"),
        file=sys.stderr,
    )
    return 0


def _new_token(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="streamguard ingest new-token",
        description="Print a new bearer token and the owners-file credential that accepts it.",
    )
    parser.add_argument("--id", default="camera-1", help="the credential's id in the owners file")
    args = parser.parse_args(argv)
    token, digest = new_token()
    print(f"token (give it to the camera; it is stored nowhere): {token}")
    print("credential (add it to the owner's 'credentials' list):")
    print(serde.dumps({"id": args.id, "bearer_sha256": digest}).decode())
    return 0


def main_ingest(argv: list[str]) -> int:
    """Entry point of `streamguard ingest` (`serve`, `new-token`, or a file)."""
    if argv and argv[0] == "serve":
        from streamguard.ingest.server import main_serve

        return main_serve(argv[1:])
    if argv and argv[0] == "new-token":
        return _new_token(argv[1:])
    return _ingest_file(argv)
