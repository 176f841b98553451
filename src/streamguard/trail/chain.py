"""Tamper-evident audit chains (docs/contract.md, section 6). Pure: no Kafka, no clock.

Each chain is append-only: record `seq` n carries the `hash` of record n-1 as `prev_hash`, and
its own `hash` is SHA-256 over `prev_hash` followed by the canonical JSON (sorted keys, orjson)
of the record without `hash`. Changing, dropping, inserting or reordering any record breaks
the link at that point, which `verify` names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from streamguard import serde
from streamguard.core.engine import normalize_plate

__all__ = (
    "GENESIS_HASH",
    "ChainBreak",
    "ChainHead",
    "VerifyReport",
    "build_record",
    "genesis",
    "plate_sha256",
    "record_hash",
    "verify",
    "verify_chains",
)

# The prev_hash of the first record of every chain: 64 zeros, the width of a SHA-256 hex digest.
GENESIS_HASH: Final = "0" * 64
_HEX: Final = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where a chain stands: the last `seq` written and its `hash` (seq 0 = nothing yet)."""

    chain: str
    seq: int
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"chain": self.chain, "seq": self.seq, "hash": self.hash}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ChainHead:
        return cls(str(raw["chain"]), int(raw["seq"]), str(raw["hash"]))


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place a chain does not verify."""

    chain: str
    seq: int | None
    what: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "unknown seq"
        return f"chain {self.chain!r} breaks at {where}: {self.what}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    chains: int
    records: int
    duplicates: int
    broken: ChainBreak | None


def genesis(chain: str) -> ChainHead:
    return ChainHead(chain, 0, GENESIS_HASH)


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 hex of `prev_hash` + canonical JSON of the record without `hash`."""
    body = {k: v for k, v in record.items() if k != "hash"}
    digest = hashlib.sha256(str(record.get("prev_hash", "")).encode())
    digest.update(serde.canonical_dumps(body))
    return digest.hexdigest()


def build_record(head: ChainHead, fields: Mapping[str, Any]) -> tuple[dict[str, Any], ChainHead]:
    """Append one record to the chain at `head`; returns the record and the new head.

    `fields` must not carry the chain bookkeeping itself (`seq`, `chain`, `prev_hash`, `hash`):
    those are the chain's to set, and a caller-supplied one would silently fork it.
    """
    clash = {"seq", "chain", "prev_hash", "hash"} & fields.keys()
    if clash:
        msg = f"audit fields may not set {', '.join(sorted(clash))}"
        raise ValueError(msg)
    record: dict[str, Any] = {
        **fields,
        "seq": head.seq + 1,
        "chain": head.chain,
        "prev_hash": head.hash,
    }
    record["hash"] = record_hash(record)
    return record, ChainHead(head.chain, head.seq + 1, record["hash"])


def plate_sha256(plate: str, salt: bytes) -> str:
    """Salted SHA-256 hex of the normalized plate: joins records of one plate, reveals none."""
    return hashlib.sha256(salt + b"\x00" + normalize_plate(plate).encode()).hexdigest()


def _is_hash(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def verify(records: Iterable[Mapping[str, Any]]) -> ChainBreak | None:
    """First break in ONE chain's records, given in the order they were written."""
    report = verify_chains(records)
    return report.broken


def verify_chains(records: Iterable[Mapping[str, Any]]) -> VerifyReport:
    """Verify records of any number of chains, each chain's records in written order.

    A record that repeats the previous one exactly (same seq and hash) is a producer retry after
    a lost acknowledgement (at-least-once delivery), not tampering: it is counted, not failed.
    """
    heads: dict[str, ChainHead] = {}
    count = 0
    duplicates = 0
    for record in records:
        count += 1
        chain = record.get("chain")
        seq = record.get("seq")
        if not isinstance(chain, str) or not chain:
            return VerifyReport(
                len(heads),
                count,
                duplicates,
                ChainBreak(
                    "?",
                    seq if isinstance(seq, int) else None,
                    "record has no chain name",
                ),
            )
        head = heads.get(chain, genesis(chain))
        problem = _check(record, head)
        if problem == "duplicate":
            duplicates += 1
            continue
        if problem is not None:
            return VerifyReport(
                len(heads | {chain: head}),
                count,
                duplicates,
                ChainBreak(chain, seq if isinstance(seq, int) else None, problem),
            )
        heads[chain] = ChainHead(chain, head.seq + 1, str(record["hash"]))
    return VerifyReport(len(heads), count, duplicates, None)


def _check(record: Mapping[str, Any], head: ChainHead) -> str | None:
    seq = record.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int):
        return "seq is missing or not an integer"
    if not _is_hash(record.get("hash")) or not _is_hash(record.get("prev_hash")):
        return "hash or prev_hash is not a SHA-256 hex digest"
    if seq == head.seq and record["hash"] == head.hash and record_hash(record) == head.hash:
        return "duplicate"
    if seq != head.seq + 1:
        if seq <= head.seq:
            return f"seq {seq} repeats or goes back (previous seq {head.seq})"
        return f"gap: expected seq {head.seq + 1}, found {seq}"
    if record["prev_hash"] != head.hash:
        return "prev_hash does not match the hash of the previous record"
    if record_hash(record) != record["hash"]:
        return "hash does not match the record's contents (record altered)"
    return None
