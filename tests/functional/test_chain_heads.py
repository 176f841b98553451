"""A chain head read while the broker restarts: retried until the tail's timeout, then the
worker stops rather than guess a head (`streamguard.worker.heads`)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiokafka.errors import KafkaConnectionError

from streamguard.trail.tail import AuditTail
from streamguard.worker import heads
from streamguard.worker.heads import ChainHeads
from streamguard.worker.stores import TableStore

RECORD = {"chain": "searches-1", "seq": 7, "hash": "ab" * 32, "offset": 41}


class FlakyTail:
    """An audit tail whose first `failures` reads fail as with the broker down."""

    def __init__(self, failures: int, timeout: float) -> None:
        self.failures, self.timeout, self.calls = failures, timeout, 0

    async def last_record(self, chain: str, floor: int | None) -> dict[str, Any] | None:
        self.calls += 1
        if self.calls <= self.failures:
            raise KafkaConnectionError("Connection at localhost:29690 closed")
        return RECORD


def _heads(tail: FlakyTail, stops: list[str]) -> ChainHeads:
    chain_heads = ChainHeads(cast(TableStore, None), stops.append)
    chain_heads.audit_tail = cast(AuditTail, tail)
    return chain_heads


def test_a_broker_outage_is_waited_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heads, "RETRY_PAUSE", 0.0)
    stops: list[str] = []
    tail = FlakyTail(failures=3, timeout=60.0)
    head = asyncio.run(_heads(tail, stops).recover("searches-1", None))
    assert head == {"chain": "searches-1", "seq": 7, "hash": "ab" * 32, "offset": 41}
    assert (tail.calls, stops) == (4, [])


def test_an_outage_past_the_timeout_stops_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heads, "RETRY_PAUSE", 0.0)
    stops: list[str] = []
    tail = FlakyTail(failures=10**9, timeout=0.05)
    with pytest.raises(KafkaConnectionError):
        asyncio.run(_heads(tail, stops).recover("searches-1", None))
    assert stops == ["cannot read the head of audit chain searches-1: KafkaConnectionError"]
    assert tail.calls > 1
