"""Fixtures for tests that need a real Kafka broker.

The broker is named by STREAMGUARD_TEST_BROKER (`.ci/run` starts one with `streamguard kafka
start` and sets it). Without it, the session starts its own broker on a free port with the same
project code and stops it at the end, so `python -m pytest` works on any machine with Java. In
CI a missing or broken broker is a failure, never a skip: a green run that silently skipped every
integration test would prove nothing.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamguard.exceptions import BrokerError
from streamguard.local.broker import broker_is_up, start_broker, stop_broker

BROKER_ENV = "STREAMGUARD_TEST_BROKER"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test below this folder `integration`, so `-m "not integration"` skips them."""
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.integration)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI needs a Kafka broker: {reason}", pytrace=False)
    pytest.skip(f"no Kafka broker for integration tests: {reason}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a real broker: STREAMGUARD_TEST_BROKER's, or one started for this session."""
    bootstrap = os.environ.get(BROKER_ENV, "").strip().removeprefix("kafka://")
    if bootstrap:
        if not broker_is_up(bootstrap, timeout=10.0):
            _unavailable(f"{BROKER_ENV}={bootstrap} does not answer Kafka metadata requests")
        yield bootstrap
        return
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="streamguard-test-kafka-") as data_dir:
        try:
            handle = start_broker(port, Path(data_dir), timeout=120.0)
        except BrokerError as exc:
            _unavailable(f"{BROKER_ENV} is not set and a session broker did not start: {exc}")
        try:
            yield handle.bootstrap
        finally:
            stop_broker(port)


@pytest.fixture
def unique_topic() -> str:
    """A topic name no other test (or earlier run against the same broker) uses."""
    return f"sg-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def unique_group() -> str:
    """A consumer group id no other test uses, so committed offsets never leak between tests."""
    return f"sg-test-group-{uuid.uuid4().hex[:12]}"
