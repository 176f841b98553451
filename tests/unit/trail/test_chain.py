"""Audit hash chains: building, linking, verifying, and naming the first break."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from streamguard import serde
from streamguard.trail.chain import (
    GENESIS_HASH,
    ChainHead,
    build_record,
    genesis,
    plate_sha256,
    record_hash,
    verify,
    verify_chains,
)


def _chain(name: str, n: int, head: ChainHead | None = None) -> list[dict[str, Any]]:
    head = head or genesis(name)
    records = []
    for i in range(n):
        record, head = build_record(head, {"event_id": f"e{i}", "outcome": "approved"})
        records.append(record)
    return records


def test_first_record_links_to_genesis() -> None:
    """The first record is seq 1 with 64 zeros as prev_hash; the head moves to it."""
    record, head = build_record(genesis("searches-3"), {"event_id": "e1"})
    assert record["seq"] == 1
    assert record["chain"] == "searches-3"
    assert record["prev_hash"] == GENESIS_HASH
    assert ChainHead("searches-3", 1, record["hash"]) == head


def test_hash_is_sha256_of_prev_hash_and_canonical_json() -> None:
    """hash = SHA-256 hex of prev_hash + canonical JSON of the record without hash."""
    record, _ = build_record(genesis("c"), {"event_id": "e1", "codes": ["B", "A"]})
    body = {k: v for k, v in record.items() if k != "hash"}
    expected = hashlib.sha256(GENESIS_HASH.encode() + serde.canonical_dumps(body)).hexdigest()
    assert expected == record["hash"] == record_hash(record)


def test_chain_fields_cannot_be_supplied() -> None:
    """Callers cannot set seq/chain/prev_hash/hash and so cannot fork a chain by accident."""
    with pytest.raises(ValueError, match="seq"):
        build_record(genesis("c"), {"seq": 9})


def test_continued_chain_verifies() -> None:
    """A chain continued from a stored head (a restarted worker) verifies end to end."""
    first = _chain("c", 3)
    head = ChainHead.from_dict({"chain": "c", "seq": 3, "hash": first[-1]["hash"]})
    assert verify(first + _chain("c", 2, head)) is None


def test_interleaved_chains_verify_independently() -> None:
    """Records of several chains may interleave; each chain is checked on its own."""
    a, b = _chain("a", 3), _chain("b", 3)
    report = verify_chains([a[0], b[0], a[1], b[1], b[2], a[2]])
    assert (report.chains, report.records, report.broken) == (2, 6, None)


def test_altered_record_is_named() -> None:
    """Changing any field of a record breaks the chain at that record."""
    records = _chain("c", 4)
    records[2] = {**records[2], "outcome": "denied"}
    broken = verify(records)
    assert broken is not None
    assert (broken.chain, broken.seq) == ("c", 3)
    assert "altered" in broken.what


def test_recomputed_hash_breaks_the_next_link() -> None:
    """Rewriting a record and its hash is caught by the next record's prev_hash."""
    records = _chain("c", 4)
    forged = {**records[1], "outcome": "denied"}
    forged["hash"] = record_hash(forged)
    records[1] = forged
    broken = verify(records)
    assert broken is not None
    assert broken.seq == 3
    assert "prev_hash" in broken.what


def test_gap_is_named() -> None:
    """A dropped record is a gap at the seq that follows it."""
    records = _chain("c", 4)
    del records[1]
    broken = verify(records)
    assert broken is not None
    assert (broken.seq, broken.what) == (3, "gap: expected seq 2, found 3")


def test_chain_must_start_at_genesis() -> None:
    """A chain whose first records were removed does not verify."""
    broken = verify(_chain("c", 3)[1:])
    assert broken is not None
    assert broken.seq == 2


def test_exact_replay_is_tolerated_but_counted() -> None:
    """A byte-identical repeat (producer retry) is not tampering; a changed repeat is."""
    records = _chain("c", 3)
    report = verify_chains([records[0], records[1], records[1], records[2]])
    assert (report.broken, report.duplicates) == (None, 1)
    changed = {**records[1], "outcome": "denied"}
    report = verify_chains([records[0], records[1], changed, records[2]])
    assert report.broken is not None
    assert report.broken.seq == 2


def test_garbage_records_are_breaks() -> None:
    """Missing chain names or non-hex hashes are breaks, not crashes."""
    assert verify([{"seq": 1}]) is not None
    assert verify([{"chain": "c", "seq": 1, "hash": "x", "prev_hash": GENESIS_HASH}]) is not None
    assert verify([{"chain": "c", "seq": "1"}]) is not None


def test_plate_hash_is_salted_and_normalized() -> None:
    """Spellings of one plate hash alike; another salt gives another hash; no plate in clear."""
    salt = b"0123456789abcdef"
    digest = plate_sha256("8abc-123", salt)
    assert digest == plate_sha256("8ABC 123", salt)
    assert digest != plate_sha256("8ABC123", b"another-salt-value")
    assert "8ABC123" not in digest
    assert len(digest) == 64
