"""`streamguard verify-audit`: read the audit topic from the beginning and verify every chain.

The end offsets are taken once at start, so the command terminates on a topic that a running
worker keeps appending to: it verifies what was there when it started. With `--checkpoints` it
also proves today's trail consistent with every signed checkpoint in the file (RFC 9162
consistency proofs), which catches what the chain alone cannot: a trail rewritten with every
hash recomputed, truncated, reordered or deleted (docs/transparency.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from streamguard import serde
from streamguard.exceptions import StreamguardError
from streamguard.settings import WorkerSettings
from streamguard.trail.chain import ChainBreak, VerifyReport, verify_chains
from streamguard.trail.proofs import TrailCheck, chain_trees, check_checkpoints

__all__ = ("main_verify_audit", "read_audit", "read_trail_file")


async def read_audit(
    bootstrap: str, topic: str, timeout: float, client_options: Mapping[str, Any] | None = None
) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of every record from the beginning to the end at start.

    `client_options`: security settings for aiokafka (`WorkerSettings.kafka_client_options`).
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    # Subscribing by name makes the client fetch the topic's metadata on start; the partitions
    # are then assigned by hand, without a consumer group (nothing is committed).
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        request_timeout_ms=int(timeout * 1000),
        **(client_options or {}),
    )
    try:
        await asyncio.wait_for(consumer.start(), timeout)
    except Exception as exc:
        await consumer.stop()
        msg = f"cannot connect to Kafka at {bootstrap}: {type(exc).__name__}"
        raise StreamguardError(msg) from None
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            msg = f"audit topic {topic} does not exist"
            raise StreamguardError(msg)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.unsubscribe()
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        records: list[tuple[int, int, bytes]] = []
        deadline = time.monotonic() + timeout
        while remaining:
            if time.monotonic() > deadline:
                msg = f"timed out reading {topic} after {timeout:g} s"
                raise StreamguardError(msg)
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset < ends[tp]:
                        records.append((tp.partition, message.offset, message.value or b""))
                    if message.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)  # trailing offsets were transaction markers or gaps
        return records
    finally:
        await consumer.stop()


def read_trail_file(path: Path) -> list[tuple[int, int, bytes]]:
    """Audit records from a JSON-lines export of the audit topic, as (0, line number, bytes).

    Records keep the file's order, which must be the topic's order per chain (a dump with
    `kcat -C -e -t <audit topic> -f '%s\\n'` or `kafka-console-consumer` keeps it).
    """
    try:
        with path.open("rb") as handle:
            return [
                (0, number, line.rstrip(b"\r\n"))
                for number, line in enumerate(handle, 1)
                if line.strip()
            ]
    except OSError as exc:
        msg = f"cannot read trail file {path}: {exc.strerror or exc}"
        raise StreamguardError(msg) from None


def _decoded(records: list[tuple[int, int, bytes]]) -> Iterator[dict[str, Any]]:
    """Records per partition in offset order; an unreadable one becomes a record that breaks."""
    for partition, offset, raw in sorted(records, key=lambda r: (r[0], r[1])):
        try:
            value = serde.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            yield {"chain": f"?partition-{partition}@{offset}", "seq": None}
        else:
            yield value


def verify_records(records: list[tuple[int, int, bytes]]) -> VerifyReport:
    # A chain is keyed by its name, so all its records sit in one partition in written order.
    return verify_chains(_decoded(records))


def check_records_against(
    records: list[tuple[int, int, bytes]],
    checkpoints: Path,
    key: Path,
    witness_keys: list[Path],
) -> TrailCheck:
    from streamguard.trail.checkpoint import COSIGNATURE, ED25519
    from streamguard.trail.tlog_cli import load_entries, load_verifier_keys

    log_keys = load_verifier_keys([key], ED25519)
    if not log_keys:
        msg = f"{key} holds no key"
        raise StreamguardError(msg)
    witnesses = load_verifier_keys(witness_keys, COSIGNATURE)
    entries = load_entries(checkpoints)
    return check_checkpoints(chain_trees(_decoded(records)), entries, log_keys, witnesses)


def main_verify_audit(argv: list[str]) -> int:
    """Entry point of `streamguard verify-audit`; 0 when every chain verifies, 1 on a break."""
    parser = argparse.ArgumentParser(
        prog="streamguard verify-audit",
        description="Verify every hash chain of the audit topic (settings from STREAMGUARD_*).",
    )
    parser.add_argument("--broker", help="bootstrap server (default: STREAMGUARD_BROKER)")
    parser.add_argument("--topic", help="audit topic (default: STREAMGUARD_TOPIC_PREFIX + audit)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument(
        "--trail",
        type=Path,
        metavar="FILE",
        help="read audit records from a JSON-lines export instead of the broker",
    )
    parser.add_argument(
        "--checkpoints",
        type=Path,
        metavar="FILE",
        help="signed checkpoints (JSON lines: a witness's file or a dump of the checkpoints "
        "topic); prove the trail consistent with each",
    )
    parser.add_argument(
        "--key", type=Path, help="the log's public checkpoint key (vkey file); with --checkpoints"
    )
    parser.add_argument(
        "--witness-key",
        type=Path,
        action="append",
        default=[],
        help="a witness's public key: count (and check) its cosignatures",
    )
    args = parser.parse_args(argv)
    if args.checkpoints is not None and args.key is None:
        parser.error("--checkpoints needs --key, the log's public key")
    try:
        if args.trail is not None:
            topic = str(args.trail)
            records = read_trail_file(args.trail)
        else:
            settings = WorkerSettings.from_env()
            bootstrap = (args.broker or settings.bootstrap_servers).removeprefix("kafka://")
            topic = args.topic or settings.topic("audit")
            records = asyncio.run(
                read_audit(bootstrap, topic, args.timeout, settings.kafka_client_options())
            )
        tlog = (
            check_records_against(records, args.checkpoints, args.key, args.witness_key)
            if args.checkpoints is not None
            else None
        )
    except StreamguardError as exc:
        print(f"streamguard verify-audit: error: {exc}", file=sys.stderr)
        return 2
    report = verify_records(records)
    failed = False
    if report.broken is not None:
        print(f"streamguard verify-audit: BROKEN: {_describe(report.broken)}", file=sys.stderr)
        failed = True
    if tlog is not None:
        for misfit in tlog.misfits:
            print(f"streamguard verify-audit: CHECKPOINT MISFIT: {misfit}", file=sys.stderr)
        failed = failed or bool(tlog.misfits)
    if failed:
        return 1
    extra = f", {report.duplicates} exact replays" if report.duplicates else ""
    print(f"audit OK: {report.chains} chains, {report.records} records{extra} in {topic}")
    if tlog is not None:
        cosigned = f", {tlog.cosigned} cosigned by a trusted witness" if args.witness_key else ""
        print(
            f"checkpoints OK: {tlog.checkpoints} signed checkpoints of {tlog.chains} chains, "
            f"the trail is consistent with every one{cosigned}; "
            f"{tlog.uncovered} records after the newest checkpoints rest on the hash chain alone"
        )
    return 0


def _describe(broken: ChainBreak) -> str:
    return str(broken)
