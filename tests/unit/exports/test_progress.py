"""Progress on stderr: drawn only on a terminal, at most a few times a second, then erased."""

from __future__ import annotations

import io

from streamguard.exports.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_nothing_is_written_when_the_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(stream, "audit")
    for _ in range(10_000):
        progress.tick()
    progress.done()
    assert stream.getvalue() == ""
    assert not progress.active
    assert not Progress(None, "audit").active


def test_a_terminal_sees_counts_with_the_share_read_and_a_clean_line_at_the_end() -> None:
    stream, clock = Terminal(), Clock()
    progress = Progress(stream, "streamguard audit", fraction=lambda: 0.25, clock=clock)
    for _ in range(511):
        progress.tick()
    assert stream.getvalue() == ""  # the clock is only read every 512 items
    clock.now += 1.0
    progress.tick()
    assert stream.getvalue() == "\rstreamguard audit: 512 rows (25%), 1.0 s"
    for _ in range(512):
        progress.tick()  # too soon after the last draw: nothing new
    assert stream.getvalue().count("\r") == 1
    width = len("streamguard audit: 512 rows (25%), 1.0 s")
    progress.done()
    assert stream.getvalue().endswith("\r" + " " * width + "\r")


def test_done_without_a_draw_writes_nothing() -> None:
    stream = Terminal()
    progress = Progress(stream, "audit")
    progress.tick()
    progress.done()
    assert stream.getvalue() == ""
