"""Signing keys that follow their file (KEYS.json v1.1): rotated without a restart.

Operators rotate a key by rewriting STREAMGUARD_KEYS. The worker notices the change (file
identity, size and mtime, checked at most every few seconds by a timer) and loads the new keys;
a key no longer in the file signs nothing from then on. A new file that cannot be used
(unreadable, not JSON, a v1 layout, an unbound key, an unknown alg) keeps the keys loaded
before and logs one error line per bad version of the file: a typo during a rotation must
neither stop the worker nor let unverifiable changes through.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

from streamguard.core.keys import Key, exposure_warning, load_keys
from streamguard.exceptions import StreamguardError

__all__ = ("KeyRing",)

log = logging.getLogger("streamguard.worker")

_Stamp = tuple[int, int, int, int]


_MISSING: Final[_Stamp] = (-1, -1, -1, -1)


def _stamp(path: Path) -> _Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return _MISSING
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class KeyRing(Mapping[str, Key]):
    """key_id -> Key, as a read-only mapping that `reload_if_changed` may swap."""

    def __init__(self, path: Path | None, keys: Mapping[str, Key] | None = None) -> None:
        """`keys`: what was loaded (and checked) at start; read from `path` when not given."""
        self.path = path
        self._stamp = _stamp(path) if path is not None else None
        if keys is None:
            keys = load_keys(path) if path is not None else {}
            self._warn(keys)
        self._keys: dict[str, Key] = dict(keys)
        self._rejected: _Stamp | None = None  # the bad version already reported

    def __getitem__(self, key_id: str) -> Key:
        return self._keys[key_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:  # never the secrets
        return f"KeyRing({self.path}, key_ids={sorted(self._keys)})"

    def _warn(self, keys: Mapping[str, Key]) -> None:
        warning = exposure_warning(self.path, keys) if self.path is not None else None
        if warning is not None:
            log.warning("%s", warning)

    def reload_if_changed(self) -> bool:
        """Load the file again if it changed since the last load; True when keys changed."""
        if self.path is None:
            return False
        stamp = _stamp(self.path)
        if stamp in (self._stamp, self._rejected):
            return False
        try:
            keys = load_keys(self.path)
        except StreamguardError as exc:
            log.error("%s; keeping the %d key(s) loaded before", exc, len(self._keys))
            self._rejected = stamp
            return False
        self._keys, self._stamp, self._rejected = keys, stamp, None
        self._warn(keys)
        bindings = ", ".join(f"{k.key_id} ({k.binding})" for k in keys.values())
        log.warning("reloaded %d signing key(s) from %s: %s", len(keys), self.path, bindings)
        return True
