"""The worker's checkpoint schedule: every N records or S seconds, resumable, fail closed."""

from __future__ import annotations

import pytest

from streamguard.trail.checkpoint import verify_note
from streamguard.trail.checkpointer import Checkpointer, CheckpointerError
from streamguard.trail.merkle import MerkleTree, verify_consistency
from streamguard.trail.proofs import CheckpointEntry, origin_for, record_leaf
from tests.unit.trail.tlog_samples import log_key, records

CHAIN = "reads-2"


def test_signs_every_n_records_with_a_proof_from_the_one_before() -> None:
    key = log_key()
    trail = records(CHAIN, 25)
    signer = Checkpointer(key, every_records=10, every_seconds=3600.0)
    signer.resume(CHAIN, None, [], now=0.0)
    entries = []
    for record in trail:
        signer.extend(CHAIN, [record])
        entries.extend(signer.due(now=1.0))
    assert [e.checkpoint.size for e in entries] == [10, 20]
    tree = MerkleTree(record_leaf(r) for r in trail)
    previous = (0, MerkleTree().root())
    for entry in entries:
        assert verify_note(entry.note, [key.verifier()])
        assert entry.checkpoint.origin == origin_for(key.name, CHAIN)
        assert entry.checkpoint.root == tree.root(entry.checkpoint.size)
        assert entry.previous_size == previous[0]
        verify_consistency(
            previous[0],
            entry.checkpoint.size,
            previous[1],
            entry.checkpoint.root,
            entry.consistency,
        )
        previous = (entry.checkpoint.size, entry.checkpoint.root)
    assert signer.recent() == entries


def test_signs_after_s_seconds_only_when_there_is_something_new() -> None:
    signer = Checkpointer(log_key(), every_records=1000, every_seconds=5.0)
    signer.resume(CHAIN, None, [], now=0.0)
    assert signer.due(now=100.0) == []
    signer.extend(CHAIN, records(CHAIN, 3))
    assert signer.due(now=101.0) == []  # the interval starts with the first new record
    (entry,) = signer.due(now=106.5)
    assert entry.checkpoint.size == 3 and entry.signed_at == "1970-01-01T00:01:46.500000Z"
    assert signer.due(now=200.0) == []


def test_resumes_from_the_last_checkpoint_and_the_records_after_it() -> None:
    key = log_key()
    trail = records(CHAIN, 17)
    first = Checkpointer(key, 10, 3600.0)
    first.resume(CHAIN, None, trail[:12], now=0.0)
    (cp,) = first.due(0.0, force=True)
    # A new worker takes the chain up from the topic copy of that checkpoint.
    second = Checkpointer(key, 10, 3600.0)
    second.resume(CHAIN, CheckpointEntry.from_dict(cp.as_dict()), trail[12:15], now=0.0)
    second.extend(CHAIN, trail[15:])
    (nxt,) = second.due(1.0, force=True)
    assert nxt.previous_size == 12 and nxt.checkpoint.size == 17
    tree = MerkleTree(record_leaf(r) for r in trail)
    assert nxt.checkpoint.root == tree.root()
    verify_consistency(12, 17, cp.checkpoint.root, nxt.checkpoint.root, nxt.consistency)


def test_fails_closed_on_a_gap_or_a_bad_frontier() -> None:
    key = log_key()
    trail = records(CHAIN, 5)
    signer = Checkpointer(key, 10, 3600.0)
    signer.resume(CHAIN, None, trail[:2], now=0.0)
    signer.extend(CHAIN, [trail[1]])  # a producer retry is skipped
    with pytest.raises(CheckpointerError, match="does not follow"):
        signer.extend(CHAIN, [trail[3]])
    (cp,) = signer.due(0.0, force=True)
    broken = CheckpointEntry(
        cp.chain,
        cp.note,
        cp.checkpoint,
        cp.previous_size,
        cp.consistency,
        (b"\x00" * 32,),
        cp.signed_at,
    )
    with pytest.raises(CheckpointerError, match="frontier"):
        Checkpointer(key, 10, 3600.0).resume(CHAIN, broken, [], now=0.0)
    with pytest.raises(CheckpointerError, match="not resumed"):
        Checkpointer(key, 10, 3600.0).extend("other", trail)
    with pytest.raises(ValueError, match="every_records"):
        Checkpointer(key, 0, 1.0)


def test_the_fast_path_builds_the_same_tree() -> None:
    key = log_key()
    trail = records(CHAIN, 9)
    slow = Checkpointer(key, 100, 3600.0)
    slow.resume(CHAIN, None, trail, now=0.0)
    fast = Checkpointer(key, 100, 3600.0)
    fast.resume(CHAIN, None, [], now=0.0)
    fast.extend_hashes(CHAIN, [(r["seq"], r["hash"]) for r in trail])
    (a,) = slow.due(0.0, force=True)
    (b,) = fast.due(0.0, force=True)
    assert a.checkpoint == b.checkpoint
    with pytest.raises(CheckpointerError, match="hex"):
        fast.extend_hashes(CHAIN, [(10, "zz" * 32)])
