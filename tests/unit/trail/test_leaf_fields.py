"""The worker reads (seq, hash) off serialized audit records without parsing them."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamguard import serde
from streamguard.trail.chain import build_record, genesis
from streamguard.trail.checkpointer import leaf_fields

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_fields = st.dictionaries(
    st.text(max_size=10).filter(lambda k: k not in {"seq", "chain", "prev_hash", "hash"}),
    _json,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(_fields, st.integers(0, 10**9))
def test_leaf_fields_equal_the_parsed_record(fields: dict[str, Any], seq: int) -> None:
    head = genesis("searches-0")
    head = type(head)(head.chain, seq, head.hash)
    record, _ = build_record(head, {**fields, "value": {"seq": 7, "hash": "x"}})
    assert leaf_fields(serde.dumps(record)) == (record["seq"], record["hash"])


def test_an_unusual_layout_is_parsed() -> None:
    record, _ = build_record(genesis("reads-1"), {"event_id": "e"})
    reordered = {"hash": record["hash"], **{k: v for k, v in record.items() if k != "hash"}}
    assert leaf_fields(serde.dumps(reordered)) == (1, record["hash"])
