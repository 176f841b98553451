"""The worker's side of the transparency log: grow each chain's tree, sign checkpoints when due.

Pure (the clock is an argument): `worker.checkpoints` feeds it the audit records the broker has
acknowledged and sends what it signs. Per chain it holds the tree's right edge (O(log n)
hashes) and the leaf hashes since the last checkpoint (at most the records of one interval),
which is all a consistency proof from the last checkpoint needs. It never signs over a record
the broker has not acknowledged: a checkpoint is a promise that those records exist.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from streamguard import serde
from streamguard.core.timeutil import format_ts
from streamguard.trail.checkpoint import SignerKey
from streamguard.trail.merkle import (
    HASH_SIZE,
    Frontier,
    FrontierSource,
    leaf_hash,
    root_from_frontier,
)
from streamguard.trail.proofs import CheckpointEntry, record_leaf, sign_entry

__all__ = ("Checkpointer", "CheckpointerError", "leaf_fields")


# `build_record` adds `hash` last and orjson keeps insertion order, so a serialized audit record
# ends with this and the 64 hex digits; anything else is parsed in full.
_HASH_TAIL: Final = b',"hash":"'
_TAIL_LENGTH: Final = len(_HASH_TAIL) + 64 + 2


def leaf_fields(value: bytes) -> tuple[int, str]:
    """(seq, hash) of one serialized audit record, without parsing it when it ends as usual."""
    if value[-_TAIL_LENGTH:-66] == _HASH_TAIL and value.endswith(b'"}'):
        digest = value[-66:-2].decode("ascii", "replace")
        start = value.rfind(b'"seq":')
        if start >= 0:
            end = start + 6
            while end < len(value) and 48 <= value[end] <= 57:
                end += 1
            if end > start + 6 and value[end : end + 1] in (b",", b"}"):
                return int(value[start + 6 : end]), digest
    record = serde.loads(value)
    return int(record["seq"]), str(record["hash"])


class CheckpointerError(RuntimeError):
    """The trail and the checkpoints disagree: the worker must stop rather than sign."""


@dataclass(slots=True)
class _ChainLog:
    frontier: Frontier
    last: CheckpointEntry | None
    since: list[bytes] = field(default_factory=list)
    last_hash: str | None = None
    signed_at: float | None = None


class Checkpointer:
    """Checkpoints of every chain this worker writes, signed at least every N records or S s."""

    def __init__(
        self,
        key: SignerKey,
        every_records: int,
        every_seconds: float,
        history: int = 64,
    ) -> None:
        if every_records < 1 or every_seconds <= 0 or history < 1:
            msg = "checkpoints need every_records >= 1, every_seconds > 0 and history >= 1"
            raise ValueError(msg)
        self.key = key
        self.every_records = every_records
        self.every_seconds = every_seconds
        self._chains: dict[str, _ChainLog] = {}
        self._history: dict[str, deque[CheckpointEntry]] = {}
        self._history_size = history

    def chains(self) -> list[str]:
        return list(self._chains)

    def knows(self, chain: str) -> bool:
        return chain in self._chains

    def size(self, chain: str) -> int:
        return self._chains[chain].frontier.size

    def resume(
        self,
        chain: str,
        last: CheckpointEntry | None,
        records_after: Sequence[Mapping[str, Any]],
        now: float,
    ) -> None:
        """Take up a chain from its last checkpoint and the records the trail holds after it.

        The checkpoint's frontier must rebuild its signed root, and the records must continue
        its size seq by seq; otherwise the trail lost or changed what was signed.
        """
        if last is None:
            frontier = Frontier()
        else:
            cp = last.checkpoint
            if last.frontier is None or len(last.frontier) != cp.size.bit_count():
                msg = f"the last checkpoint of {chain!r} carries no usable frontier"
                raise CheckpointerError(msg)
            if root_from_frontier(last.frontier) != cp.root:
                msg = f"the last checkpoint of {chain!r} has a frontier that is not its tree"
                raise CheckpointerError(msg)
            frontier = Frontier(cp.size, last.frontier)
        log = _ChainLog(frontier, last, signed_at=now if last is not None else None)
        self._chains[chain] = log
        self._history.setdefault(chain, deque(maxlen=self._history_size))
        if last is not None and not self._history[chain]:
            self._history[chain].append(last)
        self.extend(chain, records_after)

    def extend(self, chain: str, records: Iterable[Mapping[str, Any]]) -> None:
        """Append acknowledged records of `chain`, in chain order (exact replays skipped)."""
        log = self._chains.get(chain)
        if log is None:
            msg = f"chain {chain!r} was not resumed before its records"
            raise CheckpointerError(msg)
        for record in records:
            self._append(chain, log, record.get("seq"), record.get("hash"), record_leaf(record))

    def extend_hashes(self, chain: str, records: Iterable[tuple[int, str]]) -> None:
        """`extend` for records known by (seq, chain hash) only: the worker's fast path."""
        log = self._chains.get(chain)
        if log is None:
            msg = f"chain {chain!r} was not resumed before its records"
            raise CheckpointerError(msg)
        for seq, value in records:
            try:
                leaf = leaf_hash(bytes.fromhex(value))
            except ValueError:
                leaf = b""
            if len(leaf) != HASH_SIZE or len(value) != 64:
                msg = f"chain {chain!r}: record seq {seq} has no SHA-256 hex hash"
                raise CheckpointerError(msg)
            self._append(chain, log, seq, value, leaf)

    @staticmethod
    def _append(chain: str, log: _ChainLog, seq: object, value: object, leaf: bytes) -> None:
        if seq == log.frontier.size and value == log.last_hash:
            return  # a producer retry of the record just appended
        if seq != log.frontier.size + 1:
            msg = (
                f"chain {chain!r}: record seq {seq} does not follow the tree of "
                f"{log.frontier.size} leaves"
            )
            raise CheckpointerError(msg)
        log.frontier.append(leaf)
        log.since.append(leaf)
        log.last_hash = str(value)

    def due(self, now: float, *, force: bool = False) -> list[CheckpointEntry]:
        """Sign a checkpoint for every chain with new records past N records or S seconds."""
        out: list[CheckpointEntry] = []
        for chain, log in sorted(self._chains.items()):
            if not log.since:
                continue
            if log.signed_at is None:
                log.signed_at = now  # the interval starts with the chain's first new record
            waited = now - log.signed_at
            if force or len(log.since) >= self.every_records or waited >= self.every_seconds:
                out.append(self._sign(chain, log, now))
        return out

    def _sign(self, chain: str, log: _ChainLog, now: float) -> CheckpointEntry:
        previous = log.last.checkpoint.size if log.last is not None else 0
        old_frontier = log.last.frontier if log.last is not None else ()
        source = FrontierSource(tuple(old_frontier or ()), previous, tuple(log.since))
        proof = source.consistency_proof()
        entry = sign_entry(self.key, chain, log.frontier, previous, proof, format_ts(now))
        log.last, log.since, log.signed_at = entry, [], now
        self._history[chain].append(entry)
        return entry

    def forget(self, chain: str) -> None:
        """Drop a chain this worker no longer writes (its partition moved); history stays."""
        self._chains.pop(chain, None)

    def recent(self) -> list[CheckpointEntry]:
        """The last checkpoints of every chain, oldest first, for the HTTP endpoint."""
        return [e for chain in sorted(self._history) for e in self._history[chain]]
