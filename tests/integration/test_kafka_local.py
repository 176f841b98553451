"""The local broker behind `streamguard kafka start|stop`, exercised against real Kafka JVMs."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streamguard.exceptions import BrokerError
from streamguard.local.broker import (
    broker_is_up,
    main_kafka,
    start_broker,
    stop_broker,
)
from streamguard.local.testing import collect, free_port, port_is_free, produce


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


@pytest.fixture
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Pid files in a temp dir, so tests never see or stop a developer's own brokers."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


@pytest.fixture
def second_port(private_state: Path) -> Iterator[int]:
    """A free port whose broker, if a test starts one, is always stopped afterwards."""
    port = free_port()
    yield port
    stop_broker(port, timeout=20)


async def test_produce_consume_round_trip(
    kafka_bootstrap: str, unique_topic: str, unique_group: str
) -> None:
    """Messages produced to an auto-created topic come back in order to a new consumer group."""
    sent = [f"event-{i}".encode() for i in range(5)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for value in sent:
            await producer.send_and_wait(unique_topic, value, key=b"same-partition")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        unique_topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while len(received) < len(sent) and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for messages in batches.values():
                received.extend(m.value for m in messages if m.value is not None)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert received == sent


def test_start_is_idempotent_and_stop_frees_the_port(
    kafka_bootstrap: str,
    second_port: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A second broker starts on another port, a repeated start reuses it, stop frees the port."""
    del kafka_bootstrap  # only gates the test: the environment can run Kafka with a warm cache
    data_dir = tmp_path / "kafka-data"
    steps: list[str] = []
    handle = start_broker(second_port, data_dir, timeout=120, stage=steps.append)
    assert handle.bootstrap == f"localhost:{second_port}"
    assert not handle.already_running
    # Each step is told as it begins (the fetch only when the jars are not cached yet).
    starting = [step.split(" ", 1)[0] for step in steps if not step.startswith(("fetch", "down"))]
    assert starting == ["formatting", "starting", "waiting"], steps
    assert handle.data_dir == data_dir.resolve()
    assert broker_is_up(handle.bootstrap, timeout=10)

    again = start_broker(second_port, data_dir)
    assert again.already_running
    assert again.pid == handle.pid

    assert main_kafka(["start", "--port", str(second_port), "--data-dir", str(data_dir)]) == 0
    out, err = capsys.readouterr()
    assert "already running" in out
    assert len(out.strip().splitlines()) == 1
    assert err == ""  # not a terminal: no status line

    assert stop_broker(second_port) is True
    assert not _alive(handle.pid)
    assert port_is_free(second_port)
    assert not broker_is_up(handle.bootstrap, timeout=2)

    assert main_kafka(["stop", "--port", str(second_port)]) == 0
    assert "no StreamGuard Kafka broker running" in capsys.readouterr().out


def test_restart_keeps_topic_data(kafka_bootstrap: str, second_port: int, tmp_path: Path) -> None:
    """A broker restarted on the same data dir still serves the messages written before."""
    del kafka_bootstrap
    data_dir = tmp_path / "kafka-data"
    topic = "sg-restart-check"

    handle = start_broker(second_port, data_dir, timeout=120)
    asyncio.run(produce(handle.bootstrap, topic, [(None, b"kept")], acks="all"))
    assert stop_broker(second_port)
    restarted = start_broker(second_port, data_dir, timeout=120)
    assert not restarted.already_running
    got = asyncio.run(collect(restarted.bootstrap, [topic], lambda c: bool(c[topic]), 20.0))
    assert [value for _, value in got[topic]] == [b"kept"]


def test_start_that_times_out_leaves_nothing_running(
    kafka_bootstrap: str, second_port: int, tmp_path: Path
) -> None:
    """A broker that is not up within the timeout is killed, its pid file removed, port freed."""
    del kafka_bootstrap
    with pytest.raises(BrokerError, match=r"did not come up within") as caught:
        start_broker(second_port, tmp_path / "slow", timeout=0.5)
    assert "\n" not in str(caught.value)
    assert stop_broker(second_port) is False
    assert port_is_free(second_port)


def test_port_taken_by_another_listener_is_an_error(
    second_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """Starting on a port some other program listens on fails with one line naming the port."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", second_port))
        listener.listen()
        with pytest.raises(BrokerError, match=rf"port {second_port} is already in use"):
            start_broker(second_port)
        assert main_kafka(["start", "--port", str(second_port)]) == 1
        err = capsys.readouterr().err
        assert str(second_port) in err
        assert len(err.strip().splitlines()) == 1
        # The other program's socket is left alone and nothing is recorded as ours.
        assert stop_broker(second_port) is False


def test_missing_java_is_an_error(
    second_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without Java on PATH (and no JAVA_HOME) start fails with a one-line error saying so."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(BrokerError, match=r"`java` is not on PATH") as caught:
        start_broker(second_port, tmp_path / "data")
    assert "\n" not in str(caught.value)


def test_stop_with_stale_pid_file_reports_nothing_running(private_state: Path) -> None:
    """A pid file left by a broker that died is cleaned up and stop reports nothing stopped."""
    port = free_port()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # its pid is dead once reaped
    dead.wait()
    record = private_state / "streamguard" / "kafka" / str(port) / "broker.json"
    record.parent.mkdir(parents=True)
    record.write_text(f'{{"pid": {dead.pid}, "config": "/nowhere/server.properties"}}')
    assert stop_broker(port) is False
    assert not record.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["start", "--port", "70000"],
        ["start", "--port", "abc"],
        ["stop", "--port", "0"],
        ["restart"],
        [],
    ],
)
def test_bad_command_line_is_one_line_error(
    argv: list[str], capsys: pytest.CaptureFixture[str], private_state: Path
) -> None:
    """Bad arguments exit 2 with a single error line on stderr and touch nothing."""
    assert main_kafka(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("streamguard kafka: error:")
    assert not private_state.exists()


def test_broker_is_up_is_false_for_silent_ports() -> None:
    """broker_is_up answers False quickly for a closed port and for a garbage address."""
    started = time.monotonic()
    assert broker_is_up(f"localhost:{free_port()}", timeout=1) is False
    assert broker_is_up("not an address", timeout=1) is False
    assert time.monotonic() - started < 5
