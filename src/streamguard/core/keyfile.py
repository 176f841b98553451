"""Creating a key file: the one writer of `streamguard keys new` and `streamguard checkpoint-key`.

A key file is created, never replaced: overwriting a private key loses the only copy of it,
and a new public key next to an old private one would publish a key nobody holds. A private
key file is created 0600 in the same call that creates it, so no other user can open it even
for the moment between create and chmod.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from streamguard.exceptions import InputFileError

__all__ = ("refuse_existing", "write_key_file")

_PRIVATE: Final = 0o600
_PUBLIC: Final = 0o666  # the umask decides, as for any file the user writes


def _exists(path: Path) -> InputFileError:
    return InputFileError(f"{path} exists; a key file is never overwritten (choose another --out)")


def _cannot_write(path: Path, why: str) -> InputFileError:
    return InputFileError(f"cannot write key file {path}: {why}")


def refuse_existing(path: Path) -> None:
    """The error `write_key_file` would raise for `path` if it exists, raised before any write.

    For a command that writes several files and must write none when one is in the way.
    """
    if os.path.lexists(path):
        raise _exists(path)


def write_key_file(path: Path, text: str, *, private: bool = True) -> None:
    """Create `path` holding `text` (mode 0600 when `private`); one-line InputFileError when
    the file exists or cannot be created. A write that fails midway leaves no file behind."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE if private else _PUBLIC)
    except FileExistsError:
        raise _exists(path) from None
    except FileNotFoundError:
        raise _cannot_write(path, f"the directory {path.parent} does not exist") from None
    except OSError as exc:
        raise _cannot_write(path, exc.strerror or str(exc)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        # A truncated key is unusable and, left in place, would block the retry.
        path.unlink(missing_ok=True)
        raise _cannot_write(path, exc.strerror or str(exc)) from None
