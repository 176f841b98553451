"""The worker's access to a table's local store: a small interface, and a cache in front of it.

The worker reads counters and audit heads from the local store (not through the table: reads
need no changelog bookkeeping), and writes to it the changelog records it sent itself once the
broker has acknowledged them, together with their changelog offset. That is all it needs of a
store, so that is all `TableStore` offers; the idea is quixstreams' `StorePartition`
(`state/base/partition.py`: `get`, `write(cache, changelog_offset)`). How a faust store does
it (private API) is `streamguard.worker.faust_fixes.stores`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

__all__ = ("CachedStore", "Change", "TableStore")


class Change(Protocol):
    """One changelog record of a table: `value` None deletes `key`."""

    @property
    def key(self) -> str: ...
    @property
    def value(self) -> Any: ...
    @property
    def key_bytes(self) -> bytes: ...
    @property
    def value_bytes(self) -> bytes | None: ...


class TableStore(Protocol):
    """One table's local store. Reads and writes run with an event of the partition concerned
    as faust's current event (`streamguard.worker.faust_fixes.context.as_current`)."""

    @property
    def changelog_topic(self) -> str: ...

    def get(self, key: str) -> Any:
        """The stored value of `key`, None when there is none."""
        ...

    def items(self) -> Iterable[tuple[Any, Any]]:
        """Every (key, value) of the partitions this worker owns."""
        ...

    def __iter__(self) -> Iterator[str]: ...
    def __len__(self) -> int: ...

    def write(self, partition: int, changes: Sequence[Change]) -> None:
        """Apply acknowledged changelog records of `partition`, in order."""
        ...

    def set_changelog_offset(self, partition: int, offset: int) -> None:
        """Record that the store holds `partition`'s changelog up to `offset` (recovery resumes
        after it)."""
        ...


class CachedStore(Mapping[str, Any]):
    """Counter reads: this worker's cache first, then the store (filling the cache).

    Only a partition's owner writes its counters, so the cache stays true until a rebalance,
    which must call `forget`.
    """

    __slots__ = ("_cache", "store")

    def __init__(self, store: TableStore) -> None:
        self.store = store
        self._cache: dict[str, Any] = {}  # key -> value this worker read or wrote

    def get(self, key: str, default: Any = None) -> Any:
        try:
            value = self._cache[key]
        except KeyError:
            value = self._cache[key] = self.store.get(key)
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.store)

    def __len__(self) -> int:
        return len(self.store)

    def write(self, partition: int, changes: Sequence[Change]) -> None:
        """Write `changes` to the store, then to the cache."""
        self.store.write(partition, changes)
        cache = self._cache
        for change in changes:
            if change.value is None:
                cache.pop(change.key, None)
            else:
                cache[change.key] = change.value

    def forget(self) -> None:
        """Empty the cache (after a rebalance: another worker may own these keys now)."""
        self._cache.clear()
