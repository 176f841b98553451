"""A witness's judgment: follow a log's checkpoints from the one it holds, or raise the alarm.

Pure: the command (`streamguard witness`, in `trail.tlog_cli`) fetches and stores. A witness
holds, per chain, the last checkpoint it verified and cosigned. From there it accepts a newer
checkpoint only along a path of consistency proofs (each entry carries the proof from the
checkpoint the worker signed before it), so the log can never present it a tree that drops or
rewrites what it already cosigned. The rules follow c2sp.org/tlog-witness (same size with
another root, or a proof that fails: never cosign, keep the evidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streamguard.trail.checkpoint import (
    NoteError,
    SignerKey,
    VerifierKey,
    cosign,
    verify_note,
)
from streamguard.trail.merkle import EMPTY_ROOT, ProofError, verify_consistency
from streamguard.trail.proofs import CheckpointEntry, chain_of

__all__ = ("Alarm", "Step", "advance", "cosign_entry")


@dataclass(frozen=True, slots=True)
class Alarm:
    """Evidence that the log misbehaved (or that what was served cannot be trusted)."""

    chain: str
    size: int
    what: str
    held: CheckpointEntry | None
    offered: CheckpointEntry

    def __str__(self) -> str:
        held = self.held.checkpoint.size if self.held is not None else 0
        return f"chain {self.chain!r}: checkpoint of size {self.size} (holding {held}): {self.what}"


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome for one chain: the newest verified entry (or the held one) and why not more."""

    chain: str
    newest: CheckpointEntry | None
    advanced: bool
    alarms: tuple[Alarm, ...]
    gap: str | None


def advance(
    chain: str,
    held: CheckpointEntry | None,
    offered: Sequence[CheckpointEntry],
    log_keys: Sequence[VerifierKey],
) -> Step:
    """Follow the offered checkpoints of `chain` from `held` as far as proofs reach."""
    size = held.checkpoint.size if held is not None else 0
    root = held.checkpoint.root if held is not None else EMPTY_ROOT
    current = held
    alarms: list[Alarm] = []
    advanced = False
    pending: list[CheckpointEntry] = []
    for entry in sorted(offered, key=lambda e: e.checkpoint.size):
        cp = entry.checkpoint
        try:
            keys = verify_note(entry.note, log_keys)
        except NoteError as exc:
            alarms.append(Alarm(chain, cp.size, f"not signed by the log: {exc}", current, entry))
            continue
        if entry.chain != chain or all(chain_of(cp.origin, k.name) != chain for k in keys):
            what = f"its origin {cp.origin!r} is not chain {chain!r}"
            alarms.append(Alarm(chain, cp.size, what, current, entry))
            continue
        if cp.size == size:
            if cp.root != root:
                what = "the log signed another root for a size the witness already holds"
                alarms.append(Alarm(chain, cp.size, what, current, entry))
            continue
        if cp.size < size:
            continue  # older than what is held; it was checked when it was new
        if entry.previous_size != size:
            pending.append(entry)
            continue
        try:
            verify_consistency(size, cp.size, root, cp.root, entry.consistency)
        except ProofError as exc:
            what = f"not consistent with the checkpoint held ({exc}): the log rewrote history"
            alarms.append(Alarm(chain, cp.size, what, current, entry))
            break
        current, size, root, advanced = entry, cp.size, cp.root, True
    gap = None
    newer = [e for e in pending if e.checkpoint.size > size]
    if newer:
        first = newer[0]
        gap = (
            f"cannot reach size {first.checkpoint.size}: it extends size {first.previous_size},"
            f" the witness holds {size}; feed it the checkpoints in between"
            " (the checkpoints topic keeps them all)"
        )
    return Step(chain, current, advanced, tuple(alarms), gap)


def cosign_entry(entry: CheckpointEntry, key: SignerKey, timestamp: int) -> CheckpointEntry:
    """The entry with the witness's cosignature (c2sp.org/tlog-cosignature, Ed25519) added."""
    return entry.with_note(entry.note.with_signatures([cosign(entry.note, key, timestamp)]))
