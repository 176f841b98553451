"""The key-file writer of `keys new` and `checkpoint-key`: create only, private from the start."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any

import pytest

from streamguard.core.keyfile import refuse_existing, write_key_file
from streamguard.exceptions import InputFileError


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that takes nothing away: the mode seen is the one the writer asked for."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_a_private_key_file_is_0600_before_the_secret_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_umask: None
) -> None:
    path = tmp_path / "k.key"
    modes: list[int] = []
    real_fdopen = os.fdopen

    def fdopen_noting_the_mode(fd: int, *args: Any, **kwargs: Any) -> Any:
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", fdopen_noting_the_mode)
    write_key_file(path, "secret\n")
    assert modes == [0o600]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8") == "secret\n"


def test_a_public_key_file_takes_the_umask(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "k.key.pub"
    write_key_file(path, "public\n", private=False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666


def test_an_existing_file_is_never_replaced_and_the_error_names_it(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_text("the only copy\n", encoding="utf-8")
    for refuse in (partial(write_key_file, path, "new\n"), partial(refuse_existing, path)):
        with pytest.raises(InputFileError) as caught:
            refuse()
        assert str(caught.value) == (
            f"{path} exists; a key file is never overwritten (choose another --out)"
        )
    assert path.read_text(encoding="utf-8") == "the only copy\n"
    refuse_existing(tmp_path / "absent.key")  # nothing in the way: no error


def test_a_dangling_symlink_is_in_the_way_too(tmp_path: Path) -> None:
    """O_EXCL never follows a link, so the pre-check must not either."""
    link = tmp_path / "k.key"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputFileError, match="never overwritten"):
        refuse_existing(link)
    with pytest.raises(InputFileError, match="never overwritten"):
        write_key_file(link, "secret\n")
    assert not (tmp_path / "elsewhere").exists()


def test_a_missing_directory_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "k.key"
    with pytest.raises(InputFileError) as caught:
        write_key_file(path, "secret\n")
    assert str(caught.value) == (
        f"cannot write key file {path}: the directory {path.parent} does not exist"
    )


def test_a_write_that_fails_midway_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "k.key"
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle: IO[Any]) -> None:
            self._handle = handle

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self._handle.close()

        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullDisk(real_fdopen(fd, *a, **k)))
    with pytest.raises(InputFileError, match=f"cannot write key file {path}: No space left"):
        write_key_file(path, "secret\n")
    assert not path.exists()
