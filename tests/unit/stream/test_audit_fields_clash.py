"""Audit fields never set the chain's own bookkeeping: a record that tried would carry a
forged sequence, chain, link or hash."""

from __future__ import annotations

import pytest

from streamguard.stream.audit import BatchChains


@pytest.mark.parametrize("name", ["seq", "chain", "prev_hash", "hash"])
def test_fields_that_set_bookkeeping_are_refused(name: str) -> None:
    chains = BatchChains({})
    with pytest.raises(ValueError, match=name):
        chains.append("searches", 0, {"event_id": "e-1", name: "forged"})
    assert chains.heads() == {}  # nothing was appended


def test_other_fields_are_appended() -> None:
    chains = BatchChains({})
    chain, record = chains.append("searches", 0, {"event_id": "e-1", "sequence": 9})
    assert chain == "searches-0" and b'"sequence":9' in record and b'"seq":1' in record
