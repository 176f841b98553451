"""The head of every audit chain the worker appends to: read back from the audit topic.

A chain (`searches-3`: role and input partition) is appended to by whichever worker owns the
partition. After any rebalance another worker may have appended to a chain this one knew, so
`forget` drops every head and the next batch of that chain reads its head again: the last record
of the chain on the audit topic (`streamguard.trail.tail.AuditTail`), from the offset the
`audit-heads` table stored as a floor, else the stored head, else the chain's genesis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from streamguard.trail.chain import genesis
from streamguard.trail.tail import AuditTail
from streamguard.worker.faust_fixes.context import as_current
from streamguard.worker.stores import TableStore

__all__ = ("ChainHeads",)

log = logging.getLogger("streamguard.worker")
# Between two tries of a chain head while the broker cannot be reached.
RETRY_PAUSE = 1.0


class ChainHeads:
    """chain -> {chain, seq, hash, offset}: the verified heads of this assignment."""

    def __init__(self, stored: TableStore, on_undeliverable: Callable[[str], None]) -> None:
        """`stored`: the `audit-heads` table's store; `on_undeliverable` ends the process."""
        self._stored = stored
        self._on_undeliverable = on_undeliverable
        self._heads: dict[str, dict[str, Any]] = {}
        self.audit_tail: AuditTail | None = None

    async def for_batch(self, chains: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """The true head of every chain in `chains` (chain -> an event of its partition).

        Returned for this batch rather than read from this object later: a rebalance while
        this awaits empties it, and a missing head must never mean "start at seq 1".
        """
        heads: dict[str, dict[str, Any]] = {}
        for chain, event in chains.items():
            head = self._heads.get(chain)
            if head is None:
                with as_current(event):
                    stored = self._stored.get(chain)
                stored = stored if isinstance(stored, Mapping) else None
                head = self._heads[chain] = await self.recover(chain, stored)
            heads[chain] = head
        return heads

    def advance(self, chain: str, head: dict[str, Any]) -> None:
        """`head` is the chain's head now (its records were delivered)."""
        self._heads[chain] = head

    def forget(self) -> None:
        """Drop every head (after a rebalance)."""
        self._heads.clear()

    async def recover(self, chain: str, stored: Mapping[str, Any] | None) -> dict[str, Any]:
        """The chain's head: its last record on the audit topic, else what the table stored."""
        floor = stored.get("offset") if stored is not None else None
        floor = floor if isinstance(floor, int) else None
        if self.audit_tail is not None:
            try:
                record = await self._last_record(self.audit_tail, chain, floor)
            except Exception as exc:  # any failure: do not guess a head
                self._on_undeliverable(
                    f"cannot read the head of audit chain {chain}: {type(exc).__name__}"
                )
                raise
            if record is not None:
                head = {
                    "chain": chain,
                    "seq": record.get("seq"),
                    "hash": record.get("hash"),
                    "offset": record["offset"],
                }
                if stored is None or head != dict(stored):
                    log.info(
                        "audit chain %s continues at seq %s (from the audit topic)",
                        chain,
                        head["seq"],
                    )
                return head
        return dict(stored) if stored is not None else genesis(chain).as_dict()

    @staticmethod
    async def _last_record(tail: AuditTail, chain: str, floor: int | None) -> dict[str, Any] | None:
        """`tail.last_record`, retried while the broker cannot be reached (a broker restart
        takes tens of seconds) until the tail's timeout; the batch waits meanwhile."""
        from aiokafka.errors import KafkaError

        deadline = time.monotonic() + tail.timeout
        while True:
            try:
                return await tail.last_record(chain, floor)
            except KafkaError as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("audit chain %s: head not read yet (%s), retrying", chain, exc)
                await asyncio.sleep(RETRY_PAUSE)
