"""What a long local step is doing, on one terminal line: for a person watching, nobody else.

`streamguard kafka start` is silent for half a minute on a first run (the broker jars are
fetched, then a JVM starts). On a terminal one line says which step runs and for how long,
redrawn in place every half second and erased at the end; a pipe, a log file, CI or a test
capturing stderr gets nothing, so their output holds results and errors only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, TextIO

__all__ = ("StatusLine", "status_text")

_REDRAW_SECONDS: Final = 0.5
_CLEAR_TO_END: Final = "\x1b[K"


def status_text(label: str, step: str, elapsed: float) -> str:
    """The line shown: who, which step, and seconds since the command started."""
    return f"{label}: {step} ({elapsed:.0f} s)"


class StatusLine:
    """Call it with each step's text; `close()` (or leaving the `with`) erases the line.

    `tty` says whether `stream` is a terminal (default: ask it); `redraw` is the period of the
    background redraw that keeps the seconds moving during a step that says nothing (None: only
    on each new step, as tests use it).
    """

    def __init__(
        self,
        stream: TextIO,
        label: str,
        *,
        tty: bool | None = None,
        redraw: float | None = _REDRAW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        shown = _is_terminal(stream) if tty is None else tty
        self._stream: TextIO | None = stream if shown else None
        self._label = label
        self._redraw = redraw
        self._clock = clock
        self._started = clock()
        self._step = ""
        self._drawn = False
        self._shown = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._stream is not None

    def __call__(self, step: str) -> None:
        if self._stream is None:
            return
        with self._lock:
            self._step = step
            self._draw()
        if self._redraw is not None and self._thread is None:
            self._thread = threading.Thread(target=self._keep_drawing, daemon=True)
            self._thread.start()

    def _draw(self) -> None:
        assert self._stream is not None
        text = status_text(self._label, self._step, self._clock() - self._started)
        if self._drawn and text == self._shown:
            return  # the seconds have not moved: nothing to redraw
        self._stream.write(f"\r{text}{_CLEAR_TO_END}")
        self._stream.flush()
        self._shown = text
        self._drawn = True

    def _keep_drawing(self) -> None:
        assert self._redraw is not None
        while not self._stop.wait(self._redraw):
            with self._lock:
                if self._stream is not None and self._drawn:
                    self._draw()

    def close(self) -> None:
        """Stop redrawing and erase the line, so what is printed next starts clean."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._stream is not None and self._drawn:
                self._stream.write(f"\r{_CLEAR_TO_END}")
                self._stream.flush()
                self._drawn = False

    def __enter__(self) -> StatusLine:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-like stream without isatty
        return False
