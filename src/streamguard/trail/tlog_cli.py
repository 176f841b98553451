"""`streamguard checkpoint-key`, `prove`, `verify-proof` and `witness` (docs/transparency.md).

Files and network at the edge; the judgments are in `trail.proofs` and `trail.witness`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from streamguard import serde
from streamguard.core.keyfile import refuse_existing, write_key_file
from streamguard.core.timeutil import format_ts
from streamguard.exceptions import StreamguardError
from streamguard.trail.checkpoint import (
    COSIGNATURE,
    ED25519,
    NoteError,
    SignerKey,
    VerifierKey,
    generate_key,
)
from streamguard.trail.merkle import ProofError
from streamguard.trail.proofs import (
    CheckpointEntry,
    InclusionProof,
    build_inclusion_proof,
    chain_trees,
    verify_inclusion_proof,
)
from streamguard.trail.witness import advance, cosign_entry

__all__ = (
    "load_entries",
    "load_signer_key",
    "load_verifier_keys",
    "main_checkpoint_key",
    "main_prove",
    "main_verify_proof",
    "main_verify_retention",
    "main_witness",
    "read_entries",
)

_MAX_FETCH: Final = 64 * 1024 * 1024


def load_verifier_keys(paths: Iterable[Path], kind: int) -> list[VerifierKey]:
    """Verifier keys from files of one vkey per line (blank lines and # comments skipped)."""
    keys: list[VerifierKey] = []
    for path in paths:
        text = _read_key_file(path)
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                key = VerifierKey.parse(line)
            except NoteError as exc:
                msg = f"{path}:{number}: {exc}"
                raise StreamguardError(msg) from None
            if key.kind != kind:
                want = "log (0x01)" if kind == ED25519 else "witness (0x04)"
                msg = f"{path}:{number}: not a {want} public key"
                raise StreamguardError(msg)
            keys.append(key)
    return keys


def _read_key_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read key file {path}: {exc.strerror or exc}"
        raise StreamguardError(msg) from None


def load_signer_key(path: Path, kind: int) -> SignerKey:
    text = _read_key_file(path)
    try:
        key = SignerKey.parse(text)
    except NoteError as exc:
        msg = f"{path}: {exc}"
        raise StreamguardError(msg) from None
    if key.kind != kind:
        want = "log signing (0x01)" if kind == ED25519 else "witness cosigning (0x04)"
        msg = f"{path}: not a {want} key"
        raise StreamguardError(msg)
    return key


def read_entries(lines: Iterable[bytes], source: str) -> list[CheckpointEntry]:
    """Checkpoint entries from JSON lines; a bad line stops with its number (fail closed)."""
    entries: list[CheckpointEntry] = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            entries.append(CheckpointEntry.from_dict(serde.loads(raw)))
        except (ValueError, NoteError) as exc:
            msg = f"{source}:{number}: not a checkpoint entry: {exc}"
            raise StreamguardError(msg) from None
    return entries


def load_entries(path: Path) -> list[CheckpointEntry]:
    try:
        with path.open("rb") as handle:
            return read_entries(handle, str(path))
    except OSError as exc:
        msg = f"cannot read checkpoints file {path}: {exc.strerror or exc}"
        raise StreamguardError(msg) from None


def main_checkpoint_key(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="streamguard checkpoint-key",
        description="Create an Ed25519 key: the worker's checkpoint signing key, or with "
        "--witness a witness's cosigning key. Writes the secret key (mode 0600) and, next to "
        "it with .pub, the public verifier key to publish.",
    )
    parser.add_argument(
        "name", help="key name, a schema-less URL such as alpr.county.example/audit"
    )
    parser.add_argument("--out", type=Path, required=True, help="secret key file to create")
    parser.add_argument("--witness", action="store_true", help="a witness cosigning key (0x04)")
    args = parser.parse_args(argv)
    try:
        key = generate_key(args.name, COSIGNATURE if args.witness else ED25519)
        public = Path(f"{args.out}.pub")
        for path in (args.out, public):
            refuse_existing(path)  # a new public key beside an old secret one names nobody's key
        write_key_file(args.out, key.encode() + "\n")
        write_key_file(public, key.verifier().encode() + "\n", private=False)
    except (StreamguardError, NoteError) as exc:
        print(f"streamguard checkpoint-key: error: {exc}", file=sys.stderr)
        return 2
    print(key.verifier().encode())
    return 0


def _broker_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trail", type=Path, help="audit records from a JSON-lines export instead of the broker"
    )
    parser.add_argument("--broker", help="bootstrap server (default: STREAMGUARD_BROKER)")
    parser.add_argument("--topic", help="audit topic (default: STREAMGUARD_TOPIC_PREFIX + audit)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")


def _read_topic_values(args: argparse.Namespace, name: str, explicit: str | None) -> list[bytes]:
    from streamguard.settings import WorkerSettings
    from streamguard.trail.verify import read_audit

    settings = WorkerSettings.from_env()
    bootstrap = (args.broker or settings.bootstrap_servers).removeprefix("kafka://")
    topic = explicit or settings.topic(name)
    rows = asyncio.run(read_audit(bootstrap, topic, args.timeout, settings.kafka_client_options()))
    return [raw for _, _, raw in sorted(rows, key=lambda r: (r[0], r[1]))]


def _trail_records(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The audit records of `--trail FILE`, else of the audit topic."""
    if args.trail is not None:
        from streamguard.trail.verify import read_trail_file

        values = [raw for _, _, raw in read_trail_file(args.trail)]
    else:
        values = _read_topic_values(args, "audit", args.topic)
    return list(_decoded(values))


def _decoded(values: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    for raw in values:
        try:
            value = serde.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value


def main_prove(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="streamguard prove",
        description="Print an inclusion proof (JSON) that the audit record of EVENT_ID is in a "
        "signed checkpoint of its chain; check it with `streamguard verify-proof`.",
    )
    parser.add_argument("event_id", metavar="EVENT_ID", help="event_id or decision_id")
    parser.add_argument(
        "--checkpoints",
        type=Path,
        help="checkpoints file (JSON lines, e.g. a witness's, with cosignatures); "
        "default: the checkpoints topic",
    )
    parser.add_argument(
        "--checkpoints-topic", help="default: STREAMGUARD_TOPIC_PREFIX + checkpoints"
    )
    parser.add_argument(
        "--latest",
        action="store_true",
        help="prove against the newest checkpoint (default: the first that covers the record, "
        "which bounds when it was logged)",
    )
    parser.add_argument("--out", type=Path, help="write the proof here instead of stdout")
    _broker_args(parser)
    args = parser.parse_args(argv)
    try:
        records = _trail_records(args)
        if args.checkpoints is not None:
            entries = load_entries(args.checkpoints)
        else:
            values = _read_topic_values(args, "checkpoints", args.checkpoints_topic)
            entries = read_entries(values, "checkpoints topic")
        proof = _prove(args.event_id, records, entries, latest=args.latest)
        text = serde.dumps(proof.as_dict()).decode() + "\n"
        if args.out is not None:
            args.out.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    except (StreamguardError, ProofError) as exc:
        print(f"streamguard prove: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _prove(
    event_id: str,
    records: Sequence[Mapping[str, Any]],
    entries: Sequence[CheckpointEntry],
    latest: bool,
) -> InclusionProof:
    trees = chain_trees(records)
    for chain, chain_tree in sorted(trees.items()):
        for index, record in enumerate(chain_tree.records):
            if event_id not in (record.get("event_id"), record.get("decision_id")):
                continue
            covering = sorted(
                (e for e in entries if e.chain == chain and e.checkpoint.size > index),
                key=lambda e: e.checkpoint.size,
                reverse=latest,
            )
            if not covering:
                msg = (
                    f"the record of {event_id!r} is seq {index + 1} of chain {chain!r}, "
                    "which no checkpoint covers yet; wait for the next checkpoint"
                )
                raise StreamguardError(msg)
            # Prefer a cosigned copy of the chosen size: the witness's time is the proof of when.
            size = covering[0].checkpoint.size
            same = [e for e in covering if e.checkpoint.size == size]
            entry = max(same, key=lambda e: len(e.note.signatures))
            return build_inclusion_proof(chain_tree, index, entry)
    msg = f"no audit record of {event_id!r} in the trail"
    raise StreamguardError(msg)


def main_verify_proof(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="streamguard verify-proof",
        description="Check an inclusion proof offline, with the log's public key only.",
    )
    parser.add_argument("proof", type=Path, metavar="PROOF.json")
    parser.add_argument("--key", type=Path, required=True, help="the log's public key file (vkey)")
    parser.add_argument(
        "--witness-key",
        type=Path,
        action="append",
        default=[],
        help="a witness's public key; if given, the checkpoint must carry its cosignature",
    )
    args = parser.parse_args(argv)
    try:
        log_keys = load_verifier_keys([args.key], ED25519)
        witness_keys = load_verifier_keys(args.witness_key, COSIGNATURE)
        try:
            raw = serde.loads(args.proof.read_bytes())
        except OSError as exc:
            msg = f"cannot read {args.proof}: {exc.strerror or exc}"
            raise StreamguardError(msg) from None
        except ValueError:
            msg = f"{args.proof} is not JSON"
            raise StreamguardError(msg) from None
        proof = InclusionProof.from_dict(raw)
    except (StreamguardError, NoteError) as exc:
        print(f"streamguard verify-proof: error: {exc}", file=sys.stderr)
        return 2
    try:
        report = verify_inclusion_proof(proof, log_keys, witness_keys)
    except (ProofError, NoteError) as exc:
        print(f"streamguard verify-proof: FAILED: {exc}", file=sys.stderr)
        return 1
    record = report.record
    print(
        f"proof OK: record seq {report.seq} of chain {report.chain!r} is in checkpoint "
        f"{report.origin} of size {report.tree_size}, signed by {report.log_key}"
    )
    fields = ("event_id", "decision_id", "kind", "outcome", "codes", "requester", "decided_at")
    print("  " + ", ".join(f"{f}={record[f]}" for f in fields if record.get(f) is not None))
    if record.get("kind") == "retention_purge":
        print(
            f"  retention purge: {record.get('store')} data of {record.get('owner')} older than "
            f"{record.get('deleted_before')} deleted at {record.get('purged_at')} "
            f"(kept at most {record.get('kept_days')} days, limit {record.get('limit_days')})"
        )
    for name, stamp in sorted(report.cosigned.items()):
        print(f"  cosigned by {name} at {format_ts(stamp)}: logged no later than that")
    return 0


def _fetch(url: str, timeout: float) -> list[CheckpointEntry]:
    if not url.startswith(("http://", "https://")):
        msg = f"--url must be http:// or https://, not {url!r}"
        raise StreamguardError(msg)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (checked above)
            body = response.read(_MAX_FETCH + 1)
    except (urllib.error.URLError, OSError) as exc:
        msg = f"cannot fetch {url}: {exc}"
        raise StreamguardError(msg) from None
    if len(body) > _MAX_FETCH:
        msg = f"{url} sent more than {_MAX_FETCH} bytes"
        raise StreamguardError(msg)
    try:
        document = serde.loads(body)
    except ValueError:
        msg = f"{url} did not send JSON"
        raise StreamguardError(msg) from None
    items = document.get("checkpoints") if isinstance(document, dict) else None
    if not isinstance(items, list):
        msg = f"{url} sent no `checkpoints` list"
        raise StreamguardError(msg)
    return read_entries((serde.dumps(item) for item in items), url)


def _held(state: Path) -> dict[str, CheckpointEntry]:
    """The newest cosigned entry per chain from the witness's own log (append-only JSON lines)."""
    if not state.exists():
        return {}
    held: dict[str, CheckpointEntry] = {}
    for entry in load_entries(state):
        if entry.chain not in held or entry.checkpoint.size >= held[entry.chain].checkpoint.size:
            held[entry.chain] = entry
    return held


def _append_lines(path: Path, items: Iterable[Mapping[str, Any]]) -> None:
    with path.open("ab") as handle:
        for item in items:
            handle.write(serde.dumps(item) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def witness_once(
    offered: Sequence[CheckpointEntry],
    state: Path,
    alarms_path: Path,
    log_keys: Sequence[VerifierKey],
    key: SignerKey,
    now: int,
) -> tuple[int, list[str]]:
    """One poll: check, cosign and keep. Returns (alarm count, lines to print)."""
    held = _held(state)
    by_chain: dict[str, list[CheckpointEntry]] = {}
    for entry in offered:
        by_chain.setdefault(entry.chain, []).append(entry)
    cosigned: list[CheckpointEntry] = []
    alarms = 0
    lines: list[str] = []
    for chain in sorted(by_chain):
        step = advance(chain, held.get(chain), by_chain[chain], log_keys)
        if step.alarms:
            alarms += len(step.alarms)
            _append_lines(alarms_path, (_evidence(a, now) for a in step.alarms))
            lines.extend(f"ALARM: {a}" for a in step.alarms)
        if step.gap is not None:
            lines.append(f"chain {chain!r}: {step.gap}")
        if step.advanced and step.newest is not None:
            cosigned.append(cosign_entry(step.newest, key, now))
            lines.append(f"chain {chain!r}: cosigned size {step.newest.checkpoint.size}")
    # The state file is the witness's memory: written before anything is reported as cosigned.
    _append_lines(state, (e.as_dict() for e in cosigned))
    return alarms, lines


def _evidence(alarm: Any, now: int) -> dict[str, Any]:
    return {
        "type": "witness_alarm",
        "at": format_ts(now),
        "chain": alarm.chain,
        "size": alarm.size,
        "what": alarm.what,
        "held": alarm.held.as_dict() if alarm.held is not None else None,
        "offered": alarm.offered.as_dict(),
    }


def main_witness(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="streamguard witness",
        description="Poll a StreamGuard log's checkpoints, check each is consistent with the "
        "last one held, cosign and keep them. Run by a party other than the operator.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="the worker's checkpoint endpoint (…/tlog/checkpoints)")
    source.add_argument(
        "--from", dest="from_file", type=Path, help="checkpoint entries (JSON lines)"
    )
    parser.add_argument("--log-key", type=Path, required=True, help="the log's public key (vkey)")
    parser.add_argument("--key", type=Path, required=True, help="this witness's cosigning key")
    parser.add_argument(
        "--state", type=Path, required=True, help="append-only file of cosigned checkpoints"
    )
    parser.add_argument("--alarms", type=Path, help="evidence file (default: STATE.alarms)")
    parser.add_argument("--interval", type=float, help="poll every S seconds (default: once)")
    parser.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout, seconds")
    args = parser.parse_args(argv)
    alarms_path = args.alarms or Path(f"{args.state}.alarms")
    try:
        log_keys = load_verifier_keys([args.log_key], ED25519)
        key = load_signer_key(args.key, COSIGNATURE)
        if not log_keys:
            msg = f"{args.log_key} holds no key"
            raise StreamguardError(msg)
        _held(args.state)  # an unreadable state file stops the witness before it polls
    except StreamguardError as exc:
        print(f"streamguard witness: error: {exc}", file=sys.stderr)
        return 2
    total_alarms = 0
    while True:
        try:
            offered = _fetch(args.url, args.timeout) if args.url else load_entries(args.from_file)
            alarms, lines = witness_once(
                offered, args.state, alarms_path, log_keys, key, int(time.time())
            )
        except StreamguardError as exc:
            print(f"streamguard witness: error: {exc}", file=sys.stderr)
            if args.interval is None:
                return 2
        else:
            total_alarms += alarms
            for line in lines:
                print(line, flush=True)
            if args.interval is None:
                return 1 if total_alarms else 0
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            return 1 if total_alarms else 0


def main_verify_retention(argv: list[str]) -> int:
    from streamguard.core.timeutil import parse_ts
    from streamguard.trail.proofs import check_checkpoints
    from streamguard.trail.purge import retention_gaps

    parser = argparse.ArgumentParser(
        prog="streamguard verify-retention",
        description="Show from the audit trail's retention_purge records that no data of an "
        "owner was kept past N days between two times (exit 1 names every gap).",
    )
    parser.add_argument("--owner", required=True, help="the data owner's agency_id")
    parser.add_argument("--days", type=float, required=True, help="the retention limit N")
    parser.add_argument("--from", dest="start", required=True, help="ISO-8601 start")
    parser.add_argument("--to", dest="end", required=True, help="ISO-8601 end")
    parser.add_argument("--checkpoints", type=Path, help="first prove the trail against these")
    parser.add_argument("--key", type=Path, help="the log's public key, with --checkpoints")
    _broker_args(parser)
    args = parser.parse_args(argv)
    start, end = parse_ts(args.start), parse_ts(args.end)
    if start is None or end is None or end < start:
        parser.error("--from and --to must be ISO-8601 times, --from first")
    if args.checkpoints is not None and args.key is None:
        parser.error("--checkpoints needs --key, the log's public key")
    try:
        records = _trail_records(args)
        if args.checkpoints is not None:
            misfits = check_checkpoints(
                chain_trees(records),
                load_entries(args.checkpoints),
                load_verifier_keys([args.key], ED25519),
            ).misfits
            if misfits:
                for misfit in misfits:
                    print(
                        f"streamguard verify-retention: CHECKPOINT MISFIT: {misfit}",
                        file=sys.stderr,
                    )
                return 1
    except StreamguardError as exc:
        print(f"streamguard verify-retention: error: {exc}", file=sys.stderr)
        return 2
    purges, gaps = retention_gaps(records, args.owner, args.days, start, end)
    for gap in gaps:
        print(f"streamguard verify-retention: GAP: {gap}", file=sys.stderr)
    if gaps:
        return 1
    stores = sorted({str(r.get("store")) for r in purges})
    print(
        f"retention OK: no data of {args.owner} in {', '.join(stores)} was kept past "
        f"{args.days:g} days from {format_ts(start)} to {format_ts(end)} "
        f"({len(purges)} purge records; prove any with `streamguard prove PURGE_ID`)"
    )
    return 0
