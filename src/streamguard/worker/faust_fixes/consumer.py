"""The worker's faust consumer: it commits what the agents decided before a rebalance takes
their partitions away, and fetches with a short wait (`FETCH_MAX_WAIT_MS`).

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

`CommitOnRevokeConsumer.on_partitions_revoked` is a rewrite of faust's (the same source in
faust-streaming 0.15.3 and in upstream's main branch at 181b1840): besides the order, it does
not trace the revoke in faust's rebalancing span (`_start_span_from_rebalancing`), which the
worker never configures a tracer for. Its source, and the hooks below (`App._new_transport`,
`Consumer._new_consumer_thread`, `AIOKafkaConsumerThread._create_worker_consumer`, aiokafka's
use of `_fetch_max_wait_ms`), are guarded in `sources`.
"""

from __future__ import annotations

import logging
from collections.abc import Set
from typing import Any, Final

import faust
from faust.transport.conductor import Conductor
from faust.transport.consumer import CONSUMER_PARTITIONS_REVOKED
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service

from streamguard.worker.faust_fixes.conductor import DirectConductor
from streamguard.worker.faust_fixes.drain import DirectDrainConsumer

__all__ = (
    "FETCH_MAX_WAIT_MS",
    "CommitOnRevokeApp",
    "CommitOnRevokeConsumer",
    "use_commit_on_revoke",
)

log = logging.getLogger("streamguard.worker")

# faust creates its aiokafka consumer with fetch_max_wait_ms=1500 and no setting to change it.
# aiokafka keeps one fetch request in flight per broker and leaves out of it every partition
# whose fetched records are still buffered; when such a request holds only quiet partitions
# (policy, agencies, attempts, the global tables' changelogs), the broker holds it for the whole
# wait and the busy input partitions cannot be fetched again until it returns: input stopped
# for up to 1.5 s under load (measured: getmany returning nothing after faust's 1 s timeout
# while 900 events/s were produced). A short wait bounds that stall; an idle worker sends about
# ten empty fetch requests a second instead of one every 1.5 s. 20 ms was no better than 100.
FETCH_MAX_WAIT_MS: Final = 100


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread, its aiokafka consumer created with `FETCH_MAX_WAIT_MS`."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by aiokafka when the consumer starts (its Fetcher is created in `start`).
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class CommitOnRevokeConsumer(DirectDrainConsumer):
    """faust's aiokafka consumer, committing revoked partitions before forgetting their acks,
    fetching with a short `FETCH_MAX_WAIT_MS` and handing fetched messages to the agents
    without a task per message (`faust_fixes.drain`)."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

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
            log.warning(
                "offsets of revoked partitions not committed (%s); their events "
                "will be decided again",
                type(exc).__name__,
            )
            return
        if committed:
            log.info("committed the decided offsets of %d revoked partition(s)", len(revoked))


def use_commit_on_revoke(transport: Any) -> Any:
    """Make `transport` (a faust aiokafka Transport) create `CommitOnRevokeConsumer`s and a
    `DirectConductor` (whose direct puts the consumer's drain loop uses)."""
    if not issubclass(transport.Consumer, faust_aiokafka.Consumer):
        raise TypeError(f"unexpected faust consumer class {transport.Consumer!r}")
    if transport.Conductor is not Conductor:
        raise TypeError(f"unexpected faust conductor class {transport.Conductor!r}")
    transport.Consumer = CommitOnRevokeConsumer
    transport.Conductor = DirectConductor
    return transport


class CommitOnRevokeApp(faust.App):
    """faust.App whose consumer is a `CommitOnRevokeConsumer`."""

    def _new_transport(self) -> Any:
        return use_commit_on_revoke(super()._new_transport())
