"""aiokafka's producer behind faust's, and the two steps of its `send` the worker does once per
batch instead of once per message.

The worker sends a batch's outputs as aiokafka record batches, one per topic-partition
(`streamguard.worker.delivery.RecordBatches`), with aiokafka's public batch API
(`create_batch`, `send_batch`). What `AIOKafkaProducer.send` does first for each message is
private: wait for the topic's metadata (`AIOKafkaClient._wait_on_metadata`) and choose the
partition of a keyed message (`AIOKafkaProducer._partition`, which calls the producer's
`_partitioner`). These are the only calls to them. Guarded in `sources`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

__all__ = ("Partitioner", "aiokafka_producer", "partitioner", "wait_on_metadata")

# (serialized key, all partitions, available partitions) -> partition
Partitioner = Callable[[bytes, Sequence[int], Sequence[int]], int]


def aiokafka_producer(producer: Any) -> AIOKafkaProducer | None:
    """The started aiokafka producer of faust `producer`; None for any other kind of producer
    (a test's in-memory one) or before it starts."""
    kafka = getattr(producer, "_producer", None)
    return kafka if isinstance(kafka, AIOKafkaProducer) else None


async def wait_on_metadata(kafka: AIOKafkaProducer, topic: str) -> None:
    """Wait until `kafka` has the metadata of `topic` (what `send` waits for, per message)."""
    await kafka.client._wait_on_metadata(topic)


def partitioner(kafka: AIOKafkaProducer) -> Partitioner:
    """The partitioner `kafka` applies to a keyed message without a partition."""
    return kafka._partitioner  # type: ignore[no-any-return]
