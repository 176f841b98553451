"""RFC 6962 / RFC 9162 Merkle hash trees: hashing, roots, inclusion and consistency proofs.

Pure functions over SHA-256 digests (bytes); no I/O. Definitions (RFC 9162, section 2.1):

- leaf hash: SHA-256(0x00 || leaf input); interior node: SHA-256(0x01 || left || right);
- the root of n > 1 leaves splits at k, the largest power of two below n: MTH(D[0:k]) and
  MTH(D[k:n]); the root of no leaves is SHA-256 of the empty string.

Proofs are built from a `SubtreeHash`, a function (lo, hi) -> MTH(D[lo:hi]), so one proof
algorithm serves a whole tree held in memory (`MerkleTree`, for the command-line tools) and the
worker's view (`FrontierSource`: the right edge of the tree at the last checkpoint plus the
leaves appended since), which never holds the whole tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = (
    "EMPTY_ROOT",
    "Frontier",
    "FrontierSource",
    "MerkleTree",
    "ProofError",
    "SubtreeHash",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_frontier",
    "verify_consistency",
    "verify_inclusion",
)

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"

SubtreeHash = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not verify, or a request for a proof that cannot exist."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_aligned_perfect(lo: int, hi: int) -> bool:
    size = hi - lo
    return size > 0 and size & (size - 1) == 0 and lo % size == 0


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """The root of a tree given its right edge: the perfect subtrees, largest first."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = node_hash(left, root)
    return root


class Frontier:
    """The right edge of a growing tree (a compact range over [0, size)): O(log n) hashes.

    `hashes[i]` is the root of the perfect subtree for the i-th set bit of `size`, from the most
    significant: the tree at size 6 holds MTH(D[0:4]) and MTH(D[4:6]). Appending costs one
    leaf hash plus one node hash per trailing one bit of the old size (one on average).
    """

    __slots__ = ("_hashes", "size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self._hashes = list(hashes)
        if size < 0 or len(self._hashes) != size.bit_count():
            msg = (
                f"a frontier of size {size} has {size.bit_count()} hashes, not {len(self._hashes)}"
            )
            raise ValueError(msg)
        if any(len(h) != HASH_SIZE for h in self._hashes):
            msg = "frontier hashes must be 32-byte SHA-256 digests"
            raise ValueError(msg)
        self.size = size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash (already `leaf_hash`ed)."""
        node = leaf
        size = self.size
        hashes = self._hashes
        while size & 1:
            node = node_hash(hashes.pop(), node)
            size >>= 1
        hashes.append(node)
        self.size += 1

    def root(self) -> bytes:
        return root_from_frontier(self._hashes)

    def ranges(self) -> list[tuple[int, int]]:
        """The [lo, hi) leaf range each hash covers, in the order of `hashes`."""
        out: list[tuple[int, int]] = []
        lo = 0
        for bit in reversed(range(self.size.bit_length())):
            if self.size >> bit & 1:
                out.append((lo, lo + (1 << bit)))
                lo += 1 << bit
        return out

    def copy(self) -> Frontier:
        return Frontier(self.size, self._hashes)


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH over leaf hashes leaves[lo:hi] by the RFC's recursion (for short ranges)."""
    if hi - lo == 1:
        return leaves[lo]
    k = _split(hi - lo)
    return node_hash(_mth(leaves, lo, lo + k), _mth(leaves, lo + k, hi))


class MerkleTree:
    """A whole tree in memory: every leaf hash and every complete interior node.

    Memory is about two hashes per leaf; any subtree hash costs O(log n) after the one-off
    O(n) build, so the tools can prove against many checkpoints in one pass.
    """

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [list(leaves)]
        self._build()

    def _build(self) -> None:
        level = self._levels[0]
        depth = 0
        while len(level) > 1:
            depth += 1
            below = self._levels[depth - 1]
            if len(self._levels) <= depth:
                self._levels.append([])
            level = self._levels[depth]
            for i in range(len(level), len(below) // 2):
                level.append(node_hash(below[2 * i], below[2 * i + 1]))
        del self._levels[depth + 1 :]

    def append(self, leaf: bytes) -> None:
        self._levels[0].append(leaf)
        self._build()

    def extend(self, leaves: Iterable[bytes]) -> None:
        self._levels[0].extend(leaves)
        self._build()

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def leaf(self, index: int) -> bytes:
        return self._levels[0][index]

    def subtree_hash(self, lo: int, hi: int) -> bytes:
        if not 0 <= lo < hi <= self.size:
            msg = f"no subtree [{lo}, {hi}) in a tree of {self.size} leaves"
            raise ProofError(msg)
        if _is_aligned_perfect(lo, hi):
            size = hi - lo
            return self._levels[size.bit_length() - 1][lo // size]
        k = _split(hi - lo)
        return node_hash(self.subtree_hash(lo, lo + k), self.subtree_hash(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if size == 0:
            return EMPTY_ROOT
        return self.subtree_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self.subtree_hash)

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        return consistency_proof(old_size, self.size if size is None else size, self.subtree_hash)


@dataclass(frozen=True, slots=True)
class FrontierSource:
    """Subtree hashes of a tree known as a frontier at `frontier.size` plus the leaves after.

    Enough for a consistency proof from the frontier's size to any later size: such a proof
    only needs whole perfect subtrees of the old tree (frontier entries) and subtrees of the
    new leaves.
    """

    frontier: tuple[bytes, ...]
    old_size: int
    leaves: tuple[bytes, ...]

    @property
    def size(self) -> int:
        return self.old_size + len(self.leaves)

    def subtree_hash(self, lo: int, hi: int) -> bytes:
        if lo >= self.old_size and hi <= self.size:
            return _mth(self.leaves, lo - self.old_size, hi - self.old_size)
        for (f_lo, f_hi), value in zip(
            Frontier(self.old_size, self.frontier).ranges(), self.frontier, strict=True
        ):
            if (f_lo, f_hi) == (lo, hi):
                return value
        msg = f"subtree [{lo}, {hi}) is neither a frontier node of size {self.old_size} nor new"
        raise ProofError(msg)

    def consistency_proof(self) -> list[bytes]:
        return consistency_proof(self.old_size, self.size, self.subtree_hash)


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """The audit path of leaf `index` in the tree of `size` leaves (RFC 9162, 2.1.3.1)."""
    if not 0 <= index < size:
        msg = f"leaf {index} is not in a tree of {size} leaves"
        raise ProofError(msg)
    path: list[bytes] = []
    lo, hi = 0, size
    # Walk down from the root, collecting the sibling of each step; the RFC lists them from
    # the leaf up, so they are reversed at the end.
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo = lo + k
    path.reverse()
    return path


def consistency_proof(old_size: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """The consistency proof from the tree of `old_size` leaves to `size` (RFC 9162, 2.1.4.1)."""
    if not 0 <= old_size <= size:
        msg = f"no consistency proof from size {old_size} to {size}"
        raise ProofError(msg)
    if old_size in (0, size):
        return []
    path: list[bytes] = []
    lo, hi, m, known = 0, size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo, m, known = lo + k, m - k, False
    if not known:
        path.append(subtree(lo, hi))
    path.reverse()
    return path


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        msg = f"{what} is {len(value)} bytes, not a 32-byte SHA-256 digest"
        raise ProofError(msg)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless `proof` shows leaf hash `leaf` at `index` in tree `root`.

    RFC 9162, section 2.1.3.2.
    """
    _check_hash(leaf, "the leaf hash")
    _check_hash(root, "the root hash")
    for node in proof:
        _check_hash(node, "a proof hash")
    if not 0 <= index < size:
        msg = f"leaf index {index} is outside a tree of {size} leaves"
        raise ProofError(msg)
    fn, sn = index, size - 1
    value = leaf
    for node in proof:
        if sn == 0:
            msg = "the inclusion proof is longer than the tree is deep"
            raise ProofError(msg)
        if fn & 1 or fn == sn:
            value = node_hash(node, value)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            value = node_hash(value, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        msg = "the inclusion proof is shorter than the tree is deep"
        raise ProofError(msg)
    if value != root:
        msg = "the inclusion proof does not lead to the root hash"
        raise ProofError(msg)


def _verify_trivial_consistency(
    old_size: int, size: int, old_root: bytes, root: bytes, proof: Sequence[bytes]
) -> None:
    if proof:
        what = "the empty tree" if old_size == 0 else "equal sizes"
        msg = f"a consistency proof from {what} must be empty"
        raise ProofError(msg)
    if old_size == 0 and old_root != EMPTY_ROOT:
        msg = "a tree of size 0 must have the empty root"
        raise ProofError(msg)
    if old_size == size and old_size and old_root != root:
        msg = f"two different root hashes for the same size {size}"
        raise ProofError(msg)


def verify_consistency(
    old_size: int, size: int, old_root: bytes, root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofError unless `proof` shows tree `old_root` is a prefix of tree `root`.

    RFC 9162, section 2.1.4.2, with the sizes 0 and equal handled as the C2SP witness
    protocol asks: from 0 the proof must be empty; between equal sizes it must be empty and
    the roots equal.
    """
    _check_hash(old_root, "the old root hash")
    _check_hash(root, "the root hash")
    for node in proof:
        _check_hash(node, "a proof hash")
    if not 0 <= old_size <= size:
        msg = f"a tree of {size} leaves cannot extend one of {old_size}"
        raise ProofError(msg)
    if old_size in (0, size):
        _verify_trivial_consistency(old_size, size, old_root, root, proof)
        return
    if not proof:
        msg = "the consistency proof is empty"
        raise ProofError(msg)
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            msg = "the consistency proof is longer than the tree is deep"
            raise ProofError(msg)
        if fn & 1 or fn == sn:
            fr = node_hash(node, fr)
            sr = node_hash(node, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        msg = "the consistency proof is shorter than the tree is deep"
        raise ProofError(msg)
    if fr != old_root:
        msg = "the consistency proof does not lead to the old root hash"
        raise ProofError(msg)
    if sr != root:
        msg = "the consistency proof does not lead to the new root hash"
        raise ProofError(msg)
