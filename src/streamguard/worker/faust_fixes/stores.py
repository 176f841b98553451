"""`TableStore` (streamguard.worker.stores) for a faust table's local store.

The worker sends the changelog records of its counter tables itself, with the batch's outputs
(`streamguard.worker.delivery`), and writes them to the local store only once the broker has
acknowledged them. faust has no public call for "apply these changelog records", so this does
what faust does itself:

* rocksdb through rocksdict: the records' bytes are put or deleted in one `WriteBatch` per
  partition (one WAL append, applied in order), written to that partition's database, as
  `Store.apply_changelog_batch` does in recovery; a put also files the key under its partition
  in the store's key index, as `Store._set` does. A counter key lives in its own partition's
  database only (written there, and restored there from its changelog partition), so a delete
  touches that database only.
* other serialized stores: `Store._set` / `Store._del`, record by record.
* the memory store, which keeps values, not bytes: set or pop the value.

The changelog offset is recorded with the store's `set_persisted_offset`, as faust's own
callback for a changelog record it sent does (`Collection._on_changelog_sent`): recovery resumes
after it. Every private name used here is guarded in `sources`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import rocksdict
from faust.types import TP

from streamguard.worker.stores import Change, TableStore

__all__ = ("FaustTableStore", "table_store")


class FaustTableStore:
    """A faust table's local store, as a `TableStore`."""

    __slots__ = ("_topic", "table")

    def __init__(self, table: Any) -> None:
        self.table = table
        self._topic: str | None = None

    @property
    def changelog_topic(self) -> str:
        # Looked up when first needed: the table creates its changelog topic lazily.
        if self._topic is None:
            self._topic = self.table.changelog_topic.get_topic_name()
        return self._topic

    def get(self, key: str) -> Any:
        return self.table.data.get(key)

    def items(self) -> Iterable[tuple[Any, Any]]:
        return self.table.items()  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.data)

    def __len__(self) -> int:
        return len(self.table.data)

    def write(self, partition: int, changes: Sequence[Change]) -> None:
        # `table.data` every time: faust creates the store when the table first needs it.
        store = self.table.data
        if hasattr(store, "_set") and getattr(store, "use_rocksdict", False):
            batch = rocksdict.WriteBatch(raw_mode=True)
            key_index = store._key_index
            for change in changes:
                if change.value_bytes is None:
                    batch.delete(change.key_bytes)
                else:
                    batch.put(change.key_bytes, change.value_bytes)
                    key_index[change.key_bytes] = partition
            if changes:
                store._db_for_partition(partition).write(batch)
        elif hasattr(store, "_set"):
            for change in changes:
                if change.value_bytes is None:
                    store._del(change.key_bytes)
                else:
                    store._set(change.key_bytes, change.value_bytes)
        else:
            for change in changes:
                if change.value is None:
                    store.pop(change.key, None)
                else:
                    store[change.key] = change.value

    def set_changelog_offset(self, partition: int, offset: int) -> None:
        self.table.data.set_persisted_offset(TP(self.changelog_topic, partition), offset)


def table_store(table: Any) -> TableStore:
    """The local store of faust `table`."""
    return FaustTableStore(table)
