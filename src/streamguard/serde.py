"""All JSON goes through here: orjson, bytes out, one set of options."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ("canonical_dumps", "dumps", "loads")

# Sorted keys make audit hashes and signatures independent of dict insertion order.
_CANONICAL_OPTIONS = orjson.OPT_SORT_KEYS


def dumps(value: Any) -> bytes:
    """Serialize to compact UTF-8 JSON bytes."""
    return orjson.dumps(value)


def canonical_dumps(value: Any) -> bytes:
    """Serialize with sorted keys, for hashing."""
    return orjson.dumps(value, option=_CANONICAL_OPTIONS)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON; raises orjson.JSONDecodeError (a ValueError) on bad input."""
    return orjson.loads(data)
