"""faust's current event, set by the worker for one partition's slice of a batch.

faust's tables and stores take "the partition" of every read and write from the current event
(`faust.streams.current_event()`: rocksdb keeps one database per partition, the changelog is
partitioned like the input). A batch from `take_events` can mix partitions, so the worker
processes and records each partition's slice with one of that slice's own events set as the
current event. faust exposes only a getter; `as_current` sets its context variable the way
`Stream._set_current_event` does (a weak reference). Guarded in `sources`.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import faust.streams as faust_streams

__all__ = ("as_current",)

# Imported by name: a faust that renames it fails at import, not silently.
_CURRENT_EVENT: ContextVar[Any] = faust_streams._current_event


@contextlib.contextmanager
def as_current(event: Any | None) -> Iterator[None]:
    """Make `event` faust's current event inside the block (None: leave it as it is)."""
    if event is None:
        yield
        return
    token = _CURRENT_EVENT.set(weakref.ref(event))
    try:
        yield
    finally:
        _CURRENT_EVENT.reset(token)
