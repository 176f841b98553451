"""RFC 6962 Merkle trees: the published test vectors, and properties over random trees."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamguard.trail.merkle import (
    EMPTY_ROOT,
    Frontier,
    FrontierSource,
    MerkleTree,
    ProofError,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

# The RFC 6962 reference vectors (certificate-transparency's tests, reused by
# transparency-dev/merkle): eight leaf inputs and the root of every prefix.
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = {
    (0, 1): [],
    (0, 2): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
    (1, 2): ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CONSISTENCY = {
    (1, 1): [],
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


def _tree(n: int = 8) -> MerkleTree:
    return MerkleTree(leaf_hash(x) for x in LEAVES[:n])


def test_hashing_is_domain_separated() -> None:
    assert leaf_hash(b"ab") == hashlib.sha256(b"\x00ab").digest()
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert EMPTY_ROOT.hex() == ROOTS[0]


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_rfc_vectors(size: int) -> None:
    assert _tree(8).root(size).hex() == ROOTS[size]
    frontier = Frontier()
    for leaf in LEAVES[:size]:
        frontier.append(leaf_hash(leaf))
    assert frontier.root().hex() == ROOTS[size]
    assert MerkleTree(leaf_hash(x) for x in LEAVES[:size]).root().hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_inclusion_proofs_match_the_rfc_vectors(index: int, size: int) -> None:
    proof = _tree().inclusion_proof(index, size)
    assert [p.hex() for p in proof] == INCLUSION[(index, size)]
    verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("old", "new"), sorted(CONSISTENCY))
def test_consistency_proofs_match_the_rfc_vectors(old: int, new: int) -> None:
    proof = _tree().consistency_proof(old, new)
    assert [p.hex() for p in proof] == CONSISTENCY[(old, new)]
    verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), proof)


def test_a_wrong_leaf_index_or_root_fails_inclusion() -> None:
    tree = _tree()
    proof = tree.inclusion_proof(5, 8)
    root = tree.root()
    with pytest.raises(ProofError, match="root"):
        verify_inclusion(leaf_hash(LEAVES[4]), 5, 8, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(LEAVES[5]), 4, 8, proof, root)
    with pytest.raises(ProofError, match="longer"):
        verify_inclusion(leaf_hash(LEAVES[5]), 5, 8, [*proof, proof[0]], root)
    with pytest.raises(ProofError, match="shorter"):
        verify_inclusion(leaf_hash(LEAVES[5]), 5, 8, proof[:-1], root)
    with pytest.raises(ProofError, match="outside"):
        verify_inclusion(leaf_hash(LEAVES[5]), 8, 8, proof, root)


def test_edge_cases_of_consistency() -> None:
    r5 = bytes.fromhex(ROOTS[5])
    verify_consistency(0, 5, EMPTY_ROOT, r5, [])
    verify_consistency(5, 5, r5, r5, [])
    with pytest.raises(ProofError, match="empty"):
        verify_consistency(0, 5, EMPTY_ROOT, r5, [r5])
    with pytest.raises(ProofError, match="same size"):
        verify_consistency(5, 5, r5, bytes.fromhex(ROOTS[6]), [])
    with pytest.raises(ProofError, match="cannot extend"):
        verify_consistency(6, 5, r5, r5, [r5])
    with pytest.raises(ProofError, match="empty"):
        verify_consistency(2, 5, bytes.fromhex(ROOTS[2]), r5, [])
    with pytest.raises(ProofError, match="32-byte"):
        verify_consistency(2, 5, b"short", r5, [])


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 70), st.data())
def test_every_inclusion_proof_verifies_and_a_flipped_bit_does_not(
    n: int, data: st.DataObject
) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    tree = MerkleTree(leaves)
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    proof = tree.inclusion_proof(index, size)
    root = tree.root(size)
    verify_inclusion(leaves[index], index, size, proof, root)
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[at] = bytes([bad[at][0] ^ 1]) + bad[at][1:]
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, size, bad, root)
    other = data.draw(st.integers(0, size - 1))
    if other != index:
        with pytest.raises(ProofError):
            verify_inclusion(leaves[other], index, size, proof, root)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 70), st.data())
def test_consistency_holds_for_prefixes_and_fails_for_a_changed_leaf(
    n: int, data: st.DataObject
) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    tree = MerkleTree(leaves)
    old = data.draw(st.integers(1, n))
    proof = tree.consistency_proof(old)
    verify_consistency(old, n, tree.root(old), tree.root(), proof)
    changed = data.draw(st.integers(0, old - 1))
    forged = list(leaves)
    forged[changed] = leaf_hash(b"forged")
    other = MerkleTree(forged)
    if old < n:
        with pytest.raises(ProofError):
            verify_consistency(old, n, tree.root(old), other.root(), other.consistency_proof(old))
    # Reordering two leaves of the old tree is a change too.
    if old >= 2:
        swapped = list(leaves)
        swapped[0], swapped[old - 1] = swapped[old - 1], swapped[0]
        moved = MerkleTree(swapped)
        with pytest.raises(ProofError):
            verify_consistency(old, n, tree.root(old), moved.root(), moved.consistency_proof(old))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 80), st.integers(0, 40))
def test_frontier_proofs_equal_whole_tree_proofs(old: int, added: int) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(old + added)]
    frontier = Frontier()
    for leaf in leaves[:old]:
        frontier.append(leaf)
    source = FrontierSource(frontier.hashes, old, tuple(leaves[old:]))
    tree = MerkleTree(leaves)
    assert source.consistency_proof() == tree.consistency_proof(old)
    for leaf in leaves[old:]:
        frontier.append(leaf)
    assert frontier.root() == tree.root()
    assert Frontier(frontier.size, frontier.hashes).root() == tree.root()


def test_a_frontier_has_one_hash_per_set_bit() -> None:
    with pytest.raises(ValueError, match="hashes"):
        Frontier(6, [EMPTY_ROOT])
    assert Frontier(6, [EMPTY_ROOT, EMPTY_ROOT]).ranges() == [(0, 4), (4, 6)]


def test_a_tree_grows_incrementally_like_a_fresh_one() -> None:
    tree = MerkleTree()
    for i, leaf in enumerate(LEAVES):
        tree.append(leaf_hash(leaf))
        assert tree.root().hex() == ROOTS[i + 1]
    with pytest.raises(ProofError):
        tree.subtree_hash(3, 9)
