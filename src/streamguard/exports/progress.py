"""Progress of a long audit on stderr, for a person watching a terminal and nobody else.

Shown only when the stream is a terminal: a cron job, a pipe, CI or a test capturing stderr gets
nothing, so logs hold warnings and errors only. One line, rewritten in place with a carriage
return, at most a few times a second; cleared when the work is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, TextIO

__all__ = ("Progress",)

_INTERVAL: Final = 0.25  # seconds between redraws
_CHECK_EVERY: Final = 512  # items between looks at the clock: time.monotonic() is not free


class Progress:
    """`tick()` per item; `done()` at the end. Does nothing unless `stream` is a terminal."""

    def __init__(
        self,
        stream: TextIO | None,
        label: str,
        unit: str = "rows",
        *,
        fraction: Callable[[], float | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None and _is_terminal(stream) else None
        self._label = label
        self._unit = unit
        self._fraction = fraction
        self._clock = clock
        self._count = 0
        self._pending = 0
        self._started = clock()
        self._next = self._started + _INTERVAL
        self._width = 0

    @property
    def active(self) -> bool:
        return self._stream is not None

    def tick(self, n: int = 1) -> None:
        self._count += n
        if self._stream is None:
            return
        self._pending += n
        if self._pending < _CHECK_EVERY:
            return
        self._pending = 0
        now = self._clock()
        if now >= self._next:
            self._next = now + _INTERVAL
            self._draw(now)

    def _draw(self, now: float) -> None:
        assert self._stream is not None
        text = f"{self._label}: {self._count:,} {self._unit}"
        share = self._fraction() if self._fraction is not None else None
        if share is not None:
            text += f" ({100 * share:.0f}%)"
        text += f", {now - self._started:.1f} s"
        pad = " " * max(self._width - len(text), 0)
        self._width = len(text)
        self._stream.write(f"\r{text}{pad}")
        self._stream.flush()

    def done(self) -> None:
        """Erase the progress line, so what follows on the terminal starts on a clean line."""
        if self._stream is not None and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
