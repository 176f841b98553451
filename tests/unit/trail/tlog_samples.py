"""Trails with checkpoints built in memory, the way the worker builds them (tests only)."""

from __future__ import annotations

from typing import Any

from streamguard.trail.chain import build_record, genesis
from streamguard.trail.checkpoint import COSIGNATURE, SignerKey, generate_key
from streamguard.trail.checkpointer import Checkpointer
from streamguard.trail.proofs import CheckpointEntry

LOG_NAME = "alpr.county.example/audit"
WITNESS_NAME = "auditor.county.example/witness"


def log_key() -> SignerKey:
    return generate_key(LOG_NAME)


def witness_key() -> SignerKey:
    return generate_key(WITNESS_NAME, COSIGNATURE)


def records(chain: str, n: int, start: int = 0) -> list[dict[str, Any]]:
    head = genesis(chain)
    out = []
    for i in range(start, start + n):
        record, head = build_record(
            head,
            {
                "event_id": f"{chain}-e{i}",
                "kind": "search",
                "outcome": "denied",
                "decided_at": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
            },
        )
        out.append(record)
    return out


def trail_with_checkpoints(
    key: SignerKey, chain: str, n: int, every: int
) -> tuple[list[dict[str, Any]], list[CheckpointEntry]]:
    """n records of `chain` and a checkpoint after every `every` records (and at the end)."""
    trail = records(chain, n)
    signer = Checkpointer(key, every_records=every, every_seconds=3600.0)
    signer.resume(chain, None, [], now=0.0)
    entries: list[CheckpointEntry] = []
    for i, record in enumerate(trail):
        signer.extend(chain, [record])
        entries.extend(signer.due(now=float(i)))
    entries.extend(signer.due(now=float(n), force=True))
    return trail, entries


def rechain(trail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What an insider with write access does: renumber and rehash so the chain verifies again."""
    if not trail:
        return []
    head = genesis(str(trail[0]["chain"]))
    out = []
    for record in trail:
        fields = {k: v for k, v in record.items() if k not in {"seq", "chain", "prev_hash", "hash"}}
        rebuilt, head = build_record(head, fields)
        out.append(rebuilt)
    return out


def fork(key: SignerKey, trail: list[dict[str, Any]]) -> CheckpointEntry:
    """A checkpoint the log key signs over another version of the trail."""
    signer = Checkpointer(key, every_records=len(trail), every_seconds=3600.0)
    signer.resume(str(trail[0]["chain"]), None, trail, now=0.0)
    (entry,) = signer.due(0.0, force=True)
    return entry
