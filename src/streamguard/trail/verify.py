"""`streamguard verify-audit`: read the audit topic from the beginning and verify every chain.

The end offsets are taken once at start, so the command terminates on a topic that a running
worker keeps appending to: it verifies what was there when it started.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

from streamguard import serde
from streamguard.exceptions import StreamguardError
from streamguard.settings import WorkerSettings
from streamguard.trail.chain import ChainBreak, VerifyReport, verify_chains

__all__ = ("main_verify_audit", "read_audit")


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


def main_verify_audit(argv: list[str]) -> int:
    """Entry point of `streamguard verify-audit`; 0 when every chain verifies, 1 on a break."""
    parser = argparse.ArgumentParser(
        prog="streamguard verify-audit",
        description="Verify every hash chain of the audit topic (settings from STREAMGUARD_*).",
    )
    parser.add_argument("--broker", help="bootstrap server (default: STREAMGUARD_BROKER)")
    parser.add_argument("--topic", help="audit topic (default: STREAMGUARD_TOPIC_PREFIX + audit)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    args = parser.parse_args(argv)
    try:
        settings = WorkerSettings.from_env()
        bootstrap = (args.broker or settings.bootstrap_servers).removeprefix("kafka://")
        topic = args.topic or settings.topic("audit")
        records = asyncio.run(
            read_audit(bootstrap, topic, args.timeout, settings.kafka_client_options())
        )
    except StreamguardError as exc:
        print(f"streamguard verify-audit: error: {exc}", file=sys.stderr)
        return 2
    report = verify_records(records)
    if report.broken is not None:
        print(f"streamguard verify-audit: BROKEN: {_describe(report.broken)}", file=sys.stderr)
        return 1
    extra = f", {report.duplicates} exact replays" if report.duplicates else ""
    print(f"audit OK: {report.chains} chains, {report.records} records{extra} in {topic}")
    return 0


def _describe(broken: ChainBreak) -> str:
    return str(broken)
