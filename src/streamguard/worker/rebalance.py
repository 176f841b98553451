"""Commit what the agents decided before a rebalance takes their partitions away.

faust 0.15.3 (`faust.transport.consumer.Consumer.on_partitions_revoked`) forgets the acked but
not yet committed offsets of every revoked partition *before* it lets the agents finish and
flushes the producer, and then commits only what is acked after that. With the eager protocol
every rebalance revokes every partition, so each join or leave replayed up to a whole commit
interval of events that were already decided: their outputs went out twice and, worse, they
were counted twice in the rate windows. Here the order is: drain the agents (faust's own
`App._on_partitions_revoked`), commit the revoked partitions' acked offsets while this member
still owns them (the group is only preparing the rebalance, so the broker accepts the commit
from the current generation), then forget them.

A commit that fails here is logged and the events are decided again by the next owner, as
at-least-once allows; the counters' offset marks (`BatchProcessor`) keep them from being
counted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Set
from typing import Any

from faust.transport.consumer import CONSUMER_PARTITIONS_REVOKED
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service

__all__ = ("CommitOnRevokeConsumer", "use_commit_on_revoke")

log = logging.getLogger("streamguard.worker")


class CommitOnRevokeConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer, committing revoked partitions before forgetting their acks."""

    @Service.transitions_to(CONSUMER_PARTITIONS_REVOKED)
    async def on_partitions_revoked(self, revoked: Set[TP]) -> None:
        if self._active_partitions is not None:
            self._active_partitions.difference_update(revoked)
        self._paused_partitions.difference_update(revoked)
        # The app stops the flow, waits until every event taken is acked and flushes the
        # producer: after this, the acked offsets are exactly what was decided and delivered.
        await self._on_partitions_revoked(set(revoked))
        if not self.app.should_stop:
            await self._commit_revoked(revoked)
        for tp in revoked:
            self._gap.pop(tp, None)
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._read_offset.pop(tp, None)
            self._committed_offset.pop(tp, None)

    async def _commit_revoked(self, revoked: Set[TP]) -> None:
        try:
            # `commit` returns without committing when another commit is in flight; wait for
            # that one, then commit what it did not cover.
            await self.maybe_wait_for_commit_to_finish()
            committed = await self.force_commit(set(revoked))
        except Exception as exc:  # never fail the rebalance over it: a replay is safe
            log.warning("offsets of revoked partitions not committed (%s); their events "
                        "will be decided again", type(exc).__name__)  # fmt: skip
            return
        if committed:
            log.info("committed the decided offsets of %d revoked partition(s)", len(revoked))


def use_commit_on_revoke(transport: Any) -> Any:
    """Make `transport` (a faust aiokafka Transport) create `CommitOnRevokeConsumer`s."""
    if not issubclass(transport.Consumer, faust_aiokafka.Consumer):
        raise TypeError(f"unexpected faust consumer class {transport.Consumer!r}")
    transport.Consumer = CommitOnRevokeConsumer
    return transport
