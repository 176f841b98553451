"""Sending mapped records to Kafka: a thin aiokafka producer that waits for the broker's ack.

A post is answered only after its records are acknowledged (acks=all), so a 2xx means the read
is on the topic and a 503 means the sender must retry; the retry carries the same read_id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from streamguard import serde
from streamguard.exceptions import StreamguardError
from streamguard.ingest.translate import Message
from streamguard.settings import WorkerSettings

__all__ = ("KafkaSink", "SendFailed", "Sink")


class SendFailed(StreamguardError):
    """The broker did not acknowledge every record in time; some may have been written."""


class Sink(Protocol):
    """Where mapped records go: Kafka in production, a list in tests."""

    async def send_all(self, messages: Sequence[Message]) -> None:
        """Write every message and return once all are acknowledged; else raise SendFailed."""
        ...


class KafkaSink:
    """The reads and quarantine topics of one deployment (its topic prefix)."""

    def __init__(self, kafka: WorkerSettings, timeout_seconds: float) -> None:
        self._kafka = kafka
        self._timeout = timeout_seconds
        self._topics = {"reads": kafka.topic("reads"), "quarantine": kafka.topic("quarantine")}
        self._producer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._kafka.bootstrap_servers,
            client_id="streamguard-ingest",
            # acks=all with idempotence: an acknowledged read survives a broker failover, and a
            # producer retry inside aiokafka never writes it twice.
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=int(self._timeout * 1000),
            **self._kafka.kafka_client_options(),
        )
        try:
            await asyncio.wait_for(self._producer.start(), self._timeout)
        except Exception as exc:  # any failure to connect is one error line
            await self._producer.stop()
            self._producer = None
            msg = f"cannot connect to the broker {self._kafka.bootstrap_servers}: {exc!r}"
            raise StreamguardError(msg) from None

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send_all(self, messages: Sequence[Message]) -> None:
        from aiokafka.errors import KafkaError

        if self._producer is None:
            msg = "the producer is not started"
            raise SendFailed(msg)
        acks: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout(self._timeout):
                for m in messages:
                    ack = await self._producer.send(
                        self._topics[m.topic], serde.dumps(m.value), key=m.key.encode()
                    )
                    acks.append(ack)
                await asyncio.gather(*acks)
        except (TimeoutError, KafkaError) as exc:
            for ack in acks:
                # Retrieved here, so a late failure is not logged as never retrieved.
                ack.add_done_callback(_consume)
            msg = f"the broker did not acknowledge: {type(exc).__name__}"
            raise SendFailed(msg) from None


def _consume(ack: asyncio.Future[Any]) -> None:
    if not ack.cancelled():
        ack.exception()
