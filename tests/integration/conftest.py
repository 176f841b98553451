"""Fixtures for tests that need a real Kafka broker.

The broker comes from outside the test run (`.ci/run` starts one with `streamguard kafka start`),
named by STREAMGUARD_TEST_BROKER. In CI a missing broker is a failure, never a skip: a green run
that silently skipped every integration test would prove nothing.
"""

from __future__ import annotations

import os
import uuid

import pytest

from streamguard.kafka_local import broker_is_up

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


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """host:port of the test broker from STREAMGUARD_TEST_BROKER, checked to answer."""
    bootstrap = os.environ.get(BROKER_ENV, "").strip().removeprefix("kafka://")
    if not bootstrap:
        _unavailable(
            f"{BROKER_ENV} is not set (start one with `streamguard kafka start --port 19092` "
            f"and export {BROKER_ENV}=localhost:19092)"
        )
    if not broker_is_up(bootstrap, timeout=10.0):
        _unavailable(f"{BROKER_ENV}={bootstrap} does not answer Kafka metadata requests")
    return bootstrap


@pytest.fixture
def unique_topic() -> str:
    """A topic name no other test (or earlier run against the same broker) uses."""
    return f"sg-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def unique_group() -> str:
    """A consumer group id no other test uses, so committed offsets never leak between tests."""
    return f"sg-test-group-{uuid.uuid4().hex[:12]}"
