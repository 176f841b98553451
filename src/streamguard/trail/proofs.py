"""The audit trail as Merkle trees: checkpoint entries, checks against them, inclusion proofs.

Pure: no Kafka, no files, no clock. Each audit chain is also an RFC 6962 tree whose leaf i is
record seq i+1; the leaf input is the record's 32-byte chain `hash`, which commits to the
record's contents and to every record before it. A checkpoint entry (one message on the
checkpoints topic, one line of a checkpoints file) carries the signed checkpoint note of one
chain and, unsigned but checkable, the consistency proof from the checkpoint before it and the
tree's right edge (frontier) at its size. docs/transparency.md describes the formats.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from streamguard import serde
from streamguard.trail.chain import record_hash
from streamguard.trail.checkpoint import (
    Checkpoint,
    NoteError,
    SignedNote,
    SignerKey,
    VerifierKey,
    parse_note,
    sign_note,
    verify_cosignatures,
    verify_note,
)
from streamguard.trail.merkle import (
    HASH_SIZE,
    Frontier,
    MerkleTree,
    ProofError,
    leaf_hash,
    root_from_frontier,
    verify_consistency,
    verify_inclusion,
)

__all__ = (
    "PROOF_FORMAT",
    "CheckpointEntry",
    "InclusionProof",
    "Misfit",
    "ProofReport",
    "TrailCheck",
    "build_inclusion_proof",
    "chain_of",
    "chain_trees",
    "check_checkpoints",
    "origin_for",
    "record_leaf",
    "sign_entry",
    "verify_inclusion_proof",
)

PROOF_FORMAT: Final = "streamguard-inclusion-proof/v1"
_HEX: Final = frozenset("0123456789abcdef")


def origin_for(log_name: str, chain: str) -> str:
    """A chain's checkpoint origin: the log key's name, a slash, the chain name."""
    return f"{log_name}/{chain}"


def chain_of(origin: str, log_name: str) -> str | None:
    prefix = f"{log_name}/"
    return origin.removeprefix(prefix) if origin.startswith(prefix) else None


def record_leaf(record: Mapping[str, Any]) -> bytes:
    """The leaf hash of an audit record: RFC 6962 leaf hash of its 32-byte chain hash.

    A record whose `hash` is not a hex digest (already a chain break) gets the leaf hash of its
    canonical JSON, so it still takes a place in the tree and cannot match a signed root.
    """
    value = record.get("hash")
    if isinstance(value, str) and len(value) == 64 and set(value) <= _HEX:
        return leaf_hash(bytes.fromhex(value))
    return leaf_hash(serde.canonical_dumps(dict(record)))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _hashes(raw: object, what: str) -> tuple[bytes, ...]:
    if not isinstance(raw, list):
        msg = f"{what} is not a list of base64 hashes"
        raise NoteError(msg)
    out: list[bytes] = []
    for item in raw:
        try:
            value = base64.b64decode(str(item).encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            value = b""
        if len(value) != HASH_SIZE:
            msg = f"{what} holds a value that is not a base64 SHA-256 hash"
            raise NoteError(msg)
        out.append(value)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CheckpointEntry:
    """One chain's signed checkpoint with the unsigned material that helps check it."""

    chain: str
    note: SignedNote
    checkpoint: Checkpoint
    previous_size: int | None = None
    consistency: tuple[bytes, ...] = ()
    frontier: tuple[bytes, ...] | None = None
    signed_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "checkpoint",
            "chain": self.chain,
            "origin": self.checkpoint.origin,
            "size": self.checkpoint.size,
            "checkpoint": self.note.encode(),
        }
        if self.previous_size is not None:
            out["previous_size"] = self.previous_size
            out["consistency"] = [_b64(h) for h in self.consistency]
        if self.frontier is not None:
            out["frontier"] = [_b64(h) for h in self.frontier]
        if self.signed_at is not None:
            out["signed_at"] = self.signed_at
        return out

    @classmethod
    def from_dict(cls, raw: object) -> CheckpointEntry:
        """Parse an entry; NoteError names what is wrong. No signature is checked here."""
        if not isinstance(raw, Mapping):
            msg = "a checkpoint entry is a JSON object"
            raise NoteError(msg)
        chain = raw.get("chain")
        text = raw.get("checkpoint")
        if not isinstance(chain, str) or not chain or not isinstance(text, str):
            msg = "a checkpoint entry needs `chain` and `checkpoint` strings"
            raise NoteError(msg)
        note = parse_note(text)
        checkpoint = Checkpoint.parse(note.text)
        previous = raw.get("previous_size")
        if previous is not None and (
            isinstance(previous, bool) or not isinstance(previous, int) or previous < 0
        ):
            msg = "`previous_size` is not a tree size"
            raise NoteError(msg)
        consistency = _hashes(raw.get("consistency", []), "`consistency`")
        frontier_raw = raw.get("frontier")
        frontier = None if frontier_raw is None else _hashes(frontier_raw, "`frontier`")
        signed_at = raw.get("signed_at")
        return cls(
            chain,
            note,
            checkpoint,
            previous,
            consistency,
            frontier,
            signed_at if isinstance(signed_at, str) else None,
        )

    def with_note(self, note: SignedNote) -> CheckpointEntry:
        return CheckpointEntry(
            self.chain,
            note,
            self.checkpoint,
            self.previous_size,
            self.consistency,
            self.frontier,
            self.signed_at,
        )


def sign_entry(
    key: SignerKey,
    chain: str,
    frontier: Frontier,
    previous_size: int | None,
    consistency: Sequence[bytes],
    signed_at: str | None,
) -> CheckpointEntry:
    """Sign the checkpoint of `chain` at the frontier's size."""
    checkpoint = Checkpoint(origin_for(key.name, chain), frontier.size, frontier.root())
    note = sign_note(checkpoint.text(), key)
    return CheckpointEntry(
        chain,
        note,
        checkpoint,
        previous_size,
        tuple(consistency),
        frontier.hashes,
        signed_at,
    )


@dataclass(slots=True)
class ChainTree:
    """One chain of today's trail: its records by seq (exact replays dropped) and its tree."""

    records: list[Mapping[str, Any]] = field(default_factory=list)
    tree: MerkleTree = field(default_factory=MerkleTree)


def chain_trees(records: Iterable[Mapping[str, Any]]) -> dict[str, ChainTree]:
    """Per chain, its records in written order as tree leaves.

    A record that repeats the previous one of its chain exactly (a producer retry) is not a
    new leaf, as `verify_chains` counts it without failing. Leaves are taken as found: a
    dropped, inserted or reordered record moves every later leaf, which the checkpoints show.
    """
    leaves: dict[str, list[bytes]] = {}
    kept: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        chain = record.get("chain")
        if not isinstance(chain, str) or not chain:
            continue
        previous = kept.setdefault(chain, [])
        if previous and _same(previous[-1], record):
            continue
        previous.append(record)
        leaves.setdefault(chain, []).append(record_leaf(record))
    return {name: ChainTree(kept[name], MerkleTree(leaves[name])) for name in kept}


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.get("seq") == b.get("seq") and a.get("hash") == b.get("hash") and a == b


@dataclass(frozen=True, slots=True)
class Misfit:
    """Where today's trail and a signed checkpoint disagree."""

    chain: str
    size: int
    what: str
    first_seq: int | None = None
    last_seq: int | None = None

    def __str__(self) -> str:
        if self.first_seq is None:
            where = ""
        elif self.first_seq == self.last_seq:
            where = f"; the first record that does not fit is seq {self.first_seq}"
        else:
            where = (
                f"; the first record that does not fit is in seq {self.first_seq}..{self.last_seq}"
            )
        return f"chain {self.chain!r}, checkpoint of size {self.size}: {self.what}{where}"


@dataclass(frozen=True, slots=True)
class TrailCheck:
    chains: int
    checkpoints: int
    consistent: int
    uncovered: int
    misfits: tuple[Misfit, ...]
    cosigned: int = 0


def check_checkpoints(
    trees: Mapping[str, ChainTree],
    entries: Sequence[CheckpointEntry],
    log_keys: Sequence[VerifierKey],
    witness_keys: Sequence[VerifierKey] = (),
) -> TrailCheck:
    """Prove today's trail consistent with every signed checkpoint, or name the first misfit.

    Per chain, checkpoints are taken by size. Each must verify with a log key and name its
    chain in the origin; then the consistency proof from it to today's tree must verify
    (RFC 9162, 2.1.4). The first checkpoint that fails is reported with the range of records
    the change must be in: after the last checkpoint that still fits, and inside the first
    perfect subtree of the checkpoint's own frontier that today's trail no longer has.
    """
    by_chain: dict[str, list[CheckpointEntry]] = {}
    for entry in entries:
        by_chain.setdefault(entry.chain, []).append(entry)
    misfits: list[Misfit] = []
    consistent = 0
    cosigned = 0
    uncovered = 0
    for chain in sorted(by_chain):
        chain_entries = sorted(by_chain[chain], key=lambda e: e.checkpoint.size)
        tree = trees[chain].tree if chain in trees else MerkleTree()
        result = _check_chain(chain, tree, chain_entries, log_keys, witness_keys)
        consistent += result[0]
        cosigned += result[1]
        if result[2] is not None:
            misfits.append(result[2])
        else:
            uncovered += tree.size - chain_entries[-1].checkpoint.size
    for chain, chain_tree in trees.items():
        if chain not in by_chain:
            uncovered += chain_tree.tree.size
    return TrailCheck(
        len(set(trees) | set(by_chain)),
        len(entries),
        consistent,
        uncovered,
        tuple(misfits),
        cosigned,
    )


def _check_chain(
    chain: str,
    tree: MerkleTree,
    entries: Sequence[CheckpointEntry],
    log_keys: Sequence[VerifierKey],
    witness_keys: Sequence[VerifierKey],
) -> tuple[int, int, Misfit | None]:
    consistent = 0
    cosigned = 0
    fits = 0  # the largest checkpointed size today's trail still matches
    roots: dict[int, bytes] = {}
    today = tree.root()
    for entry in entries:
        cp = entry.checkpoint
        try:
            keys = verify_note(entry.note, log_keys)
        except NoteError as exc:
            return consistent, cosigned, Misfit(chain, cp.size, f"not a valid checkpoint: {exc}")
        if all(chain_of(cp.origin, k.name) != chain for k in keys):
            what = f"its origin {cp.origin!r} is not chain {chain!r} of a trusted log key"
            return consistent, cosigned, Misfit(chain, cp.size, what)
        if roots.get(cp.size, cp.root) != cp.root:
            what = "the log signed two different roots for this size (a split view)"
            return consistent, cosigned, Misfit(chain, cp.size, what)
        roots[cp.size] = cp.root
        if witness_keys:
            try:
                cosigned += bool(verify_cosignatures(entry.note, witness_keys))
            except NoteError as exc:
                return consistent, cosigned, Misfit(chain, cp.size, str(exc))
        if cp.size > tree.size:
            what = (
                f"the trail holds {tree.size} records of this chain, the checkpoint was signed "
                f"over {cp.size} (records deleted or the chain truncated)"
            )
            return consistent, cosigned, Misfit(chain, cp.size, what, tree.size + 1, cp.size)
        try:
            proof = tree.consistency_proof(cp.size)
            verify_consistency(cp.size, tree.size, cp.root, today, proof)
        except ProofError as exc:
            first, last = _narrow(tree, entry, fits)
            what = (
                f"today's trail is not an extension of it ({exc}): records were rewritten, "
                "reordered, inserted or removed"
            )
            return consistent, cosigned, Misfit(chain, cp.size, what, first, last)
        consistent += 1
        fits = cp.size
    return consistent, cosigned, None


def _narrow(tree: MerkleTree, entry: CheckpointEntry, fits: int) -> tuple[int, int]:
    """The seq range the first difference must be in (1-based, inclusive)."""
    cp = entry.checkpoint
    lo, hi = fits, cp.size
    frontier = entry.frontier
    # The frontier is not signed, but if it rebuilds the signed root it is the signed tree's.
    if (
        frontier is not None
        and len(frontier) == cp.size.bit_count()
        and root_from_frontier(frontier) == cp.root
    ):
        ranges = Frontier(cp.size, frontier).ranges()
        for (f_lo, f_hi), value in zip(ranges, frontier, strict=True):
            if tree.subtree_hash(f_lo, f_hi) != value:
                lo, hi = max(lo, f_lo), min(hi, f_hi)
                break
    return lo + 1, hi


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """One audit record, its audit path and the signed checkpoint it leads to."""

    record: Mapping[str, Any]
    leaf_index: int
    tree_size: int
    path: tuple[bytes, ...]
    checkpoint: SignedNote

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": PROOF_FORMAT,
            "chain": self.record.get("chain"),
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf_input": "the record's chain hash, 32 bytes (docs/transparency.md)",
            "inclusion_path": [_b64(h) for h in self.path],
            "checkpoint": self.checkpoint.encode(),
            "record": dict(self.record),
        }

    @classmethod
    def from_dict(cls, raw: object) -> InclusionProof:
        if not isinstance(raw, Mapping) or raw.get("format") != PROOF_FORMAT:
            msg = f"not a {PROOF_FORMAT} document"
            raise NoteError(msg)
        record = raw.get("record")
        index = raw.get("leaf_index")
        size = raw.get("tree_size")
        text = raw.get("checkpoint")
        if not isinstance(record, Mapping) or not isinstance(text, str):
            msg = "the proof needs a `record` object and a `checkpoint` note"
            raise NoteError(msg)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (index, size)):
            msg = "`leaf_index` and `tree_size` must be integers"
            raise NoteError(msg)
        assert isinstance(index, int)
        assert isinstance(size, int)
        path = _hashes(raw.get("inclusion_path"), "`inclusion_path`")
        return cls(dict(record), index, size, path, parse_note(text))


def build_inclusion_proof(
    chain_tree: ChainTree, index: int, entry: CheckpointEntry
) -> InclusionProof:
    """The proof that leaf `index` of the chain is in the tree of `entry`'s checkpoint."""
    size = entry.checkpoint.size
    if not index < size <= chain_tree.tree.size:
        msg = (
            f"checkpoint of size {size} does not cover leaf {index} "
            f"of a chain of {chain_tree.tree.size}"
        )
        raise ProofError(msg)
    if chain_tree.tree.root(size) != entry.checkpoint.root:
        msg = (
            f"today's trail does not match the checkpoint of size {size} "
            "(run verify-audit --checkpoints)"
        )
        raise ProofError(msg)
    path = chain_tree.tree.inclusion_proof(index, size)
    return InclusionProof(chain_tree.records[index], index, size, tuple(path), entry.note)


@dataclass(frozen=True, slots=True)
class ProofReport:
    chain: str
    seq: int
    origin: str
    tree_size: int
    log_key: str
    record: Mapping[str, Any]
    cosigned: Mapping[str, int]


def verify_inclusion_proof(
    proof: InclusionProof,
    log_keys: Sequence[VerifierKey],
    witness_keys: Sequence[VerifierKey] = (),
) -> ProofReport:
    """Check a proof offline with public keys only; ProofError/NoteError says what fails.

    The record must hash to its own `hash` (its contents are what was chained), sit at seq
    leaf_index + 1 of its chain, and lead by the audit path to the root of a checkpoint that a
    trusted log key signed for that chain. With witness keys, at least one must have cosigned.
    """
    record = proof.record
    chain = record.get("chain")
    if not isinstance(chain, str) or not chain:
        msg = "the record names no chain"
        raise ProofError(msg)
    if record_hash(record) != record.get("hash"):
        msg = "the record's contents do not hash to its `hash` (record altered)"
        raise ProofError(msg)
    if record.get("seq") != proof.leaf_index + 1:
        msg = f"the record's seq {record.get('seq')} is not leaf {proof.leaf_index} + 1"
        raise ProofError(msg)
    keys = verify_note(proof.checkpoint, log_keys)
    checkpoint = Checkpoint.parse(proof.checkpoint.text)
    signer = next((k for k in keys if chain_of(checkpoint.origin, k.name) == chain), None)
    if signer is None:
        msg = f"the checkpoint's origin {checkpoint.origin!r} is not chain {chain!r}"
        raise ProofError(msg)
    if checkpoint.size != proof.tree_size:
        msg = (
            f"the proof is for size {proof.tree_size}, the checkpoint is of size {checkpoint.size}"
        )
        raise ProofError(msg)
    verify_inclusion(
        record_leaf(record), proof.leaf_index, proof.tree_size, proof.path, checkpoint.root
    )
    cosigned = verify_cosignatures(proof.checkpoint, witness_keys) if witness_keys else {}
    if witness_keys and not cosigned:
        msg = "no trusted witness cosigned the checkpoint"
        raise ProofError(msg)
    return ProofReport(
        chain,
        proof.leaf_index + 1,
        checkpoint.origin,
        checkpoint.size,
        signer.encode(),
        record,
        cosigned,
    )
