"""The audit chains one batch appends to (docs/contract.md section 6). Pure.

One chain per input topic and partition (`searches-3`): only the worker that owns the partition
appends to it, so its head, kept in the audit-heads table under that partition, is never
written concurrently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from streamguard import serde
from streamguard.trail.chain import ChainHead, genesis

_BOOKKEEPING: Final = frozenset({"seq", "chain", "prev_hash", "hash"})

__all__ = ("BatchChains",)


class BatchChains:
    """Appends audit records to their chains, each continuing from its stored head."""

    __slots__ = ("_heads", "_stored")

    def __init__(self, stored: Mapping[str, Any]) -> None:
        self._stored = stored  # chain -> stored head (ChainHead.as_dict), as the table holds it
        self._heads: dict[str, tuple[int, ChainHead]] = {}  # chain -> (partition, new head)

    def append(self, role: str, partition: int, fields: Mapping[str, Any]) -> tuple[str, bytes]:
        """The next record of the chain of input topic `role`, `partition`: (chain, JSON)."""
        chain = f"{role}-{partition}"
        known = self._heads.get(chain)
        if known is not None:
            head = known[1]
        else:
            stored = self._stored.get(chain)
            head = ChainHead.from_dict(stored) if isinstance(stored, Mapping) else genesis(chain)
        record, new_head = _encoded_record(head, fields)
        self._heads[chain] = (partition, new_head)
        return chain, record

    def heads(self) -> dict[str, tuple[int, dict[str, Any]]]:
        """The new head of every chain appended to: (table partition, head) by chain."""
        return {chain: (p, head.as_dict()) for chain, (p, head) in self._heads.items()}


def _encoded_record(head: ChainHead, fields: Mapping[str, Any]) -> tuple[bytes, ChainHead]:
    """`trail.chain.build_record`, encoded: the record's canonical JSON is made once, hashed,
    and written with `hash` spliced in as its first key (the same record, the same hash, as
    `chain.record_hash` gives; key order means nothing in JSON)."""
    body_fields = {**fields, "seq": head.seq + 1, "chain": head.chain, "prev_hash": head.hash}
    # Three keys more than `fields`, or `fields` set one of them (and `hash` is spliced in).
    if len(body_fields) != len(fields) + 3 or "hash" in fields:
        clash = sorted(_BOOKKEEPING.intersection(fields.keys()))
        msg = f"audit fields may not set {', '.join(clash)}"
        raise ValueError(msg)
    body = serde.canonical_dumps(body_fields)
    digest = hashlib.sha256(head.hash.encode())
    digest.update(body)
    hashed = digest.hexdigest()
    return b'{"hash":"' + hashed.encode() + b'",' + body[1:], ChainHead(
        head.chain, head.seq + 1, hashed
    )
