"""The witness: follows consistent checkpoints, refuses a rewritten history, keeps evidence."""

from __future__ import annotations

import copy

from streamguard.trail.checkpoint import generate_key, verify_cosignatures
from streamguard.trail.witness import advance, cosign_entry
from tests.unit.trail.tlog_samples import (
    fork,
    log_key,
    rechain,
    trail_with_checkpoints,
    witness_key,
)

CHAIN = "searches-1"


def test_follows_a_path_of_proofs_and_cosigns_the_newest() -> None:
    key = log_key()
    _, entries = trail_with_checkpoints(key, CHAIN, 30, every=10)
    step = advance(CHAIN, None, entries, [key.verifier()])
    assert step.alarms == () and step.gap is None and step.advanced
    assert step.newest is not None and step.newest.checkpoint.size == 30
    witness = witness_key()
    cosigned = cosign_entry(step.newest, witness, 1_750_000_000)
    assert verify_cosignatures(cosigned.note, [witness.verifier()]) == {witness.name: 1_750_000_000}
    # Held at 30, nothing newer: no advance, no alarm.
    again = advance(CHAIN, cosigned, entries, [key.verifier()])
    assert not again.advanced and again.alarms == () and again.newest == cosigned


def test_a_gap_is_reported_not_cosigned() -> None:
    key = log_key()
    _, entries = trail_with_checkpoints(key, CHAIN, 30, every=10)
    step = advance(CHAIN, entries[0], entries[2:], [key.verifier()])
    assert not step.advanced and step.gap is not None and "extends size 20" in step.gap


def test_a_rewritten_history_raises_the_alarm() -> None:
    key = log_key()
    trail, entries = trail_with_checkpoints(key, CHAIN, 20, every=10)
    # The operator rewrites record 3 and signs a new tree from scratch.
    forged = copy.deepcopy(trail)
    forged[2]["outcome"] = "approved"
    rebuilt = rechain(forged)
    fork_10 = [fork(key, rebuilt[:10])]
    fork_20 = [fork(key, rebuilt)]
    held = entries[0]
    step = advance(CHAIN, held, fork_10 + fork_20, [key.verifier()])
    assert not step.advanced
    assert any("another root" in a.what for a in step.alarms)
    # A forged proof from the held size is refused outright.
    lying = fork_20[0]
    from streamguard.trail.proofs import CheckpointEntry

    forged_step = CheckpointEntry(
        lying.chain,
        lying.note,
        lying.checkpoint,
        10,
        entries[1].consistency,
        lying.frontier,
        lying.signed_at,
    )
    step = advance(CHAIN, held, [forged_step], [key.verifier()])
    assert not step.advanced and any("rewrote history" in a.what for a in step.alarms)


def test_checkpoints_of_another_key_or_chain_are_refused() -> None:
    key = log_key()
    _, entries = trail_with_checkpoints(key, CHAIN, 10, every=10)
    step = advance(CHAIN, None, entries, [generate_key(key.name).verifier()])
    assert not step.advanced and "not signed by the log" in step.alarms[0].what
    step = advance("reads-0", None, entries, [key.verifier()])
    assert not step.advanced and "not chain" in step.alarms[0].what
