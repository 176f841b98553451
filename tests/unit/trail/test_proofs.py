"""The trail against its signed checkpoints: every tampering named; inclusion proofs offline."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from streamguard.trail.chain import record_hash, verify_chains
from streamguard.trail.checkpoint import NoteError, generate_key, parse_note
from streamguard.trail.merkle import ProofError
from streamguard.trail.proofs import (
    CheckpointEntry,
    InclusionProof,
    build_inclusion_proof,
    chain_trees,
    check_checkpoints,
    verify_inclusion_proof,
)
from streamguard.trail.witness import cosign_entry
from tests.unit.trail.tlog_samples import (
    fork,
    log_key,
    rechain,
    records,
    trail_with_checkpoints,
    witness_key,
)

CHAIN = "searches-0"


def _rechain(trail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = rechain(trail)
    assert verify_chains(out).broken is None
    return out


@pytest.fixture
def signed() -> tuple[Any, list[dict[str, Any]], list[CheckpointEntry]]:
    key = log_key()
    trail, entries = trail_with_checkpoints(key, CHAIN, 40, every=10)
    assert [e.checkpoint.size for e in entries] == [10, 20, 30, 40]
    return key, trail, entries


def test_an_untouched_trail_is_consistent_with_every_checkpoint(signed: Any) -> None:
    key, trail, entries = signed
    more = trail + records(CHAIN, 45)[40:]  # records after the newest checkpoint
    result = check_checkpoints(chain_trees(more), entries, [key.verifier()])
    assert result.misfits == ()
    assert (result.checkpoints, result.consistent, result.uncovered) == (4, 4, 5)


def test_a_rewrite_with_every_hash_recomputed_names_the_checkpoint_and_records(signed: Any) -> None:
    key, trail, entries = signed
    forged = copy.deepcopy(trail)
    forged[24]["outcome"] = "approved"  # seq 25
    forged = _rechain(forged)
    result = check_checkpoints(chain_trees(forged), entries, [key.verifier()])
    (misfit,) = result.misfits
    assert misfit.size == 30 and "not an extension" in misfit.what
    assert misfit.first_seq is not None and misfit.last_seq is not None
    assert misfit.first_seq <= 25 <= misfit.last_seq
    assert misfit.first_seq >= 21  # the checkpoint of size 20 still fits
    assert result.consistent == 2


def test_truncation_is_caught(signed: Any) -> None:
    key, trail, entries = signed
    result = check_checkpoints(chain_trees(trail[:33]), entries, [key.verifier()])
    (misfit,) = result.misfits
    assert (misfit.size, misfit.first_seq, misfit.last_seq) == (40, 34, 40)
    assert "holds 33 records" in str(misfit)


def test_reordering_is_caught(signed: Any) -> None:
    key, trail, entries = signed
    swapped = copy.deepcopy(trail)
    swapped[3], swapped[4] = swapped[4], swapped[3]
    result = check_checkpoints(chain_trees(_rechain(swapped)), entries, [key.verifier()])
    (misfit,) = result.misfits
    assert misfit.size == 10 and misfit.first_seq is not None and misfit.last_seq is not None
    assert misfit.first_seq <= 4 <= misfit.last_seq


def test_a_deleted_record_renumbered_is_caught(signed: Any) -> None:
    key, trail, entries = signed
    shorter = _rechain(trail[:14] + trail[15:])
    (misfit,) = check_checkpoints(chain_trees(shorter), entries, [key.verifier()]).misfits
    assert misfit.size == 20


def test_a_deleted_chain_is_caught(signed: Any) -> None:
    key, _, entries = signed
    (misfit,) = check_checkpoints({}, entries, [key.verifier()]).misfits
    assert "holds 0 records" in misfit.what and misfit.size == 10


def test_a_checkpoint_not_signed_by_the_log_key_is_a_misfit(signed: Any) -> None:
    _, trail, entries = signed
    other = generate_key("alpr.county.example/audit")  # same name, other key
    (misfit,) = check_checkpoints(chain_trees(trail), entries, [other.verifier()]).misfits
    assert "not a valid checkpoint" in misfit.what


def test_two_roots_for_one_size_are_a_split_view(signed: Any) -> None:
    key, trail, entries = signed
    forged = copy.deepcopy(trail)
    forged[0]["outcome"] = "approved"
    _, other = trail_with_checkpoints(key, CHAIN, 10, every=10)
    assert other[0].checkpoint.root == entries[0].checkpoint.root  # same records, same root
    split = fork(key, _rechain(forged)[:10])
    result = check_checkpoints(chain_trees(trail), [*entries, split], [key.verifier()])
    assert any("split view" in m.what for m in result.misfits)


def test_entries_round_trip_through_json(signed: Any) -> None:
    _, _, entries = signed
    for entry in entries:
        assert CheckpointEntry.from_dict(entry.as_dict()) == entry
    with pytest.raises(NoteError):
        CheckpointEntry.from_dict({"chain": CHAIN, "checkpoint": "x"})
    with pytest.raises(NoteError):
        CheckpointEntry.from_dict({**entries[0].as_dict(), "frontier": ["AAAA"]})


def test_an_inclusion_proof_verifies_with_the_public_key_only(signed: Any) -> None:
    key, trail, entries = signed
    witness = witness_key()
    cosigned = cosign_entry(entries[1], witness, 1_760_000_000)
    tree = chain_trees(trail)[CHAIN]
    proof = build_inclusion_proof(tree, 14, cosigned)
    again = InclusionProof.from_dict(proof.as_dict())
    report = verify_inclusion_proof(again, [key.verifier()], [witness.verifier()])
    assert (report.seq, report.tree_size, report.chain) == (15, 20, CHAIN)
    assert report.record["event_id"] == "searches-0-e14"
    assert report.cosigned == {witness.name: 1_760_000_000}
    # Without witness keys the log's signature alone is checked.
    assert verify_inclusion_proof(again, [key.verifier()]).cosigned == {}


def test_a_doctored_proof_fails(signed: Any) -> None:
    key, trail, entries = signed
    tree = chain_trees(trail)[CHAIN]
    doc = build_inclusion_proof(tree, 14, entries[1]).as_dict()

    def fails(change: dict[str, Any], match: str) -> None:
        bad = InclusionProof.from_dict({**doc, **change})
        with pytest.raises((ProofError, NoteError), match=match):
            verify_inclusion_proof(bad, [key.verifier()])

    altered = {**doc["record"], "outcome": "approved"}
    fails({"record": altered}, "altered")
    rehashed = {**altered, "hash": record_hash(altered)}
    fails({"record": rehashed}, "root")
    fails({"leaf_index": 13, "record": trail[13]}, "root")
    fails({"inclusion_path": doc["inclusion_path"][:-1]}, "shorter")
    fails({"tree_size": 30}, "size")
    other = trail_with_checkpoints(generate_key(key.name), CHAIN, 20, every=20)[1][0]
    fails({"checkpoint": other.note.encode()}, "trusted key")
    with pytest.raises(ProofError, match="no trusted witness"):
        verify_inclusion_proof(
            InclusionProof.from_dict(doc), [key.verifier()], [witness_key().verifier()]
        )


def test_a_proof_is_refused_when_the_trail_no_longer_matches(signed: Any) -> None:
    _, trail, entries = signed
    forged = copy.deepcopy(trail)
    forged[2]["outcome"] = "approved"
    tree = chain_trees(_rechain(forged))[CHAIN]
    with pytest.raises(ProofError, match="does not match"):
        build_inclusion_proof(tree, 14, entries[1])
    with pytest.raises(ProofError, match="does not cover"):
        build_inclusion_proof(chain_trees(trail)[CHAIN], 25, entries[1])


def test_exact_replays_are_not_leaves() -> None:
    trail = records(CHAIN, 3)
    tree = chain_trees([trail[0], trail[1], trail[1], trail[2]])[CHAIN]
    assert tree.tree.size == 3
    assert parse_note is not None
