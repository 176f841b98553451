"""Revision counters of the policy tables (registry and owner settings). Pure.

One counter per input partition (`policy-3`, `agencies-0`): writers never share a key, so no
update is lost, and their sum only grows, which is all readers need to see that something
changed (the worker rebuilds its snapshot when the sum moves).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ("Revisions",)


class Revisions:
    """The revision counters as last read from the table or written by this processor."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def reset(self, revisions: Mapping[str, int]) -> None:
        """The counters as the table holds them (when the snapshot is rebuilt from it)."""
        self._seen = dict(revisions)

    def bump(self, role: str, partition: int, writes: dict[str, tuple[int, int]]) -> None:
        """Count one applied change of input `partition` of topic `role` into `writes`
        (meta key -> (table partition, new value))."""
        meta_key = f"{role}-{partition}"
        value = self._seen.get(meta_key, 0) + 1
        writes[meta_key] = (partition, value)
        self._seen[meta_key] = value
