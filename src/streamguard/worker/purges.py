"""The `purges` input topic: retention purges of downstream stores, audited (deletion proofs).

A store that deletes ALPR data for retention sends one `retention_purge` event to the purges
topic (docs/transparency.md). Its batches go through the worker like every other input
(`StreamguardWorker.run_batch`: delivered offsets, chain heads read back from the audit
topic, deliver-then-commit, checkpoints), decided by `PurgeProcessor`: one audit record of kind
`retention_purge` per event in the chain `purges-<partition>`, judged against the owner's
retention limit in the worker's policy snapshot. An event that is not a purge is quarantined
and audited as malformed input, like on the other topics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from streamguard import serde
from streamguard.core import codes
from streamguard.core.models import MalformedDecision, Reason
from streamguard.core.timeutil import format_ts
from streamguard.stream.audit import BatchChains
from streamguard.stream.intake import MAX_EVENT_BYTES
from streamguard.stream.outputs import (
    audit_fields,
    decision_id,
    raw_decision_id,
    raw_original,
    route,
)
from streamguard.stream.processor import BatchProcessor
from streamguard.stream.types import BatchResult, InMessage
from streamguard.trail.purge import PURGE_KIND, parse_purge
from streamguard.trail.purge import audit_fields as purge_fields

if TYPE_CHECKING:
    from streamguard.worker.app import StreamguardWorker

__all__ = ("ROLE", "PurgeProcessor", "install_purges")

ROLE: Final = "purges"
_SOURCE: Final = "StreamGuard retention purges (docs/transparency.md)"


class PurgeProcessor(BatchProcessor):
    """Decides batches of the purges topic (module docstring); the rest is BatchProcessor's."""

    def process(
        self,
        batch: Iterable[InMessage],
        *,
        now: float,
        counters: Mapping[str, int],
        heads: Mapping[str, Any],
    ) -> BatchResult:
        result = BatchResult()
        chains = BatchChains(heads)
        decided_at = format_ts(now)
        for msg in batch:
            fields, outs = self._decide_purge(msg, decided_at)
            result.messages.extend(outs)
            result.audit.append(chains.append(ROLE, msg.partition, fields))
        result.heads.update(chains.heads())
        return result

    def _decide_purge(self, msg: InMessage, decided_at: str) -> tuple[dict[str, Any], list[Any]]:
        version = self.state.version
        raw = msg.value or b""
        event: Any = None
        if len(raw) <= MAX_EVENT_BYTES:
            try:
                event = serde.loads(raw)
            except ValueError:
                event = None
        if not isinstance(event, dict):
            why = "the message is not a JSON object (or is over the size limit)"
            reason = Reason(codes.MALFORMED_EVENT, _SOURCE, why)
            return self._malformed(
                msg, raw_original(raw), MalformedDecision(None, "raw", reason, version), decided_at
            )
        purge = parse_purge(event)
        if isinstance(purge, str):
            event_id = event.get("purge_id") if isinstance(event.get("purge_id"), str) else None
            reason = Reason(codes.SCHEMA_INVALID, _SOURCE, purge)
            return self._malformed(
                msg, event, MalformedDecision(event_id, PURGE_KIND, reason, version), decided_at
            )
        limit = self.state.retention_limits.get(purge.owner)
        fields: dict[str, Any] = {
            "event_id": purge.purge_id,
            "kind": PURGE_KIND,
            "policy_version": version,
            "decided_at": decided_at,
            "decision_id": decision_id(PURGE_KIND, purge.purge_id),
            **purge_fields(purge, limit),
        }
        return fields, []

    @staticmethod
    def _malformed(
        msg: InMessage, original: Any, decision: MalformedDecision, decided_at: str
    ) -> tuple[dict[str, Any], list[Any]]:
        if decision.event_id is not None:
            did = decision_id(decision.kind, decision.event_id)
        else:
            did = raw_decision_id(msg.topic, msg.partition, msg.offset)
        outs = route(original, decision, did, decided_at, fallback_key=did)
        return audit_fields(original, decision, did, decided_at, None), list(outs)


def install_purges(worker: StreamguardWorker) -> None:
    """Give the worker its purge processor (the agent is `build_worker`'s, like the others)."""
    worker.processors[ROLE] = PurgeProcessor(
        worker.settings,
        worker.processor("policy").state,
        worker.keys,
        worker.salt,
        worker.metrics,
        worker.clock,
    )
