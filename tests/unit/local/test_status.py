"""The status line of long local steps: drawn on a terminal, nothing anywhere else."""

from __future__ import annotations

import io

from streamguard.local.broker import download_step
from streamguard.local.status import StatusLine, status_text


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_on_a_terminal_each_step_redraws_the_line_and_close_erases_it() -> None:
    out, clock = io.StringIO(), _Clock()
    status = StatusLine(out, "streamguard kafka", tty=True, redraw=None, clock=clock)
    assert status.active
    status("fetching Kafka 4.4.0 with mvn")
    clock.now += 27.4
    status("waiting for the broker on localhost:9092")
    status.close()
    assert out.getvalue() == (
        "\rstreamguard kafka: fetching Kafka 4.4.0 with mvn (0 s)\x1b[K"
        "\rstreamguard kafka: waiting for the broker on localhost:9092 (27 s)\x1b[K"
        "\r\x1b[K"
    )


def test_not_a_terminal_nothing_is_written() -> None:
    out = io.StringIO()
    with StatusLine(out, "streamguard kafka", tty=False, redraw=0.01) as status:
        assert not status.active
        status("fetching Kafka 4.4.0 with mvn")
    assert out.getvalue() == ""


def test_a_stream_is_asked_whether_it_is_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not StatusLine(io.StringIO(), "x", redraw=None).active
    assert StatusLine(Terminal(), "x", redraw=None).active


def test_a_line_never_drawn_is_not_erased() -> None:
    out = io.StringIO()
    StatusLine(out, "streamguard kafka", tty=True, redraw=None).close()
    assert out.getvalue() == ""


def test_the_background_redraw_stops_at_close() -> None:
    out = io.StringIO()
    status = StatusLine(out, "streamguard kafka", tty=True, redraw=0.001)
    status("starting the broker's JVM")
    status.close()
    after = out.getvalue()
    assert after.endswith("\r\x1b[K")
    assert after.count("starting the broker's JVM") >= 1
    status.close()  # twice is harmless
    assert out.getvalue() == after


def test_step_texts() -> None:
    assert status_text("streamguard kafka", "starting", 1.6) == "streamguard kafka: starting (2 s)"
    name = "kafka_2.13-4.4.0.tgz"
    assert download_step(name, 12_000_000, 120_000_000) == (
        "downloading kafka_2.13-4.4.0.tgz: 12 of 120 MB (10%)"
    )
    assert download_step(name, 3_000_000, 0) == "downloading kafka_2.13-4.4.0.tgz: 3 MB"
