"""The broker fixture of the tests that need a real Kafka broker, and what is made on it.

The broker is named by STREAMGUARD_TEST_BROKER (`.ci/run` starts one with `streamguard kafka
start` and sets it). Without it, the session starts its own broker on a free port with the same
project code and stops it at the end, so `python -m pytest` works on any machine with Java. In
CI a missing or broken broker is a failure, never a skip: a green run that silently skipped every
integration test would prove nothing.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamguard.exceptions import BrokerError
from streamguard.local.broker import broker_is_up, start_broker, stop_broker
from streamguard.local.testing import Deployment, TestRegistry, free_port
from tests.helpers import Deploy, unavailable

BROKER_ENV = "STREAMGUARD_TEST_BROKER"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test below this folder `integration`, so `-m "not integration"` skips them."""
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a real broker: STREAMGUARD_TEST_BROKER's, or one started for this session."""
    bootstrap = os.environ.get(BROKER_ENV, "").strip().removeprefix("kafka://")
    if bootstrap:
        if not broker_is_up(bootstrap, timeout=10.0):
            unavailable(
                "a Kafka broker",
                f"{BROKER_ENV}={bootstrap} does not answer Kafka metadata requests",
            )
        yield bootstrap
        return
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="streamguard-test-kafka-") as data_dir:
        try:
            handle = start_broker(port, Path(data_dir), timeout=120.0)
        except BrokerError as exc:
            unavailable(
                "a Kafka broker",
                f"{BROKER_ENV} is not set and a session broker did not start: {exc}",
            )
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


@pytest.fixture
def deploy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deploy]:
    """Makes `Deployment`s (a fresh topic prefix, its topics created, the files of `registry=`
    written) in this test's tmp_path, on the session broker unless given `bootstrap=`; stops
    whatever worker the test left running."""
    made: list[Deployment] = []

    def make(
        tag: str,
        *,
        partitions: int = 2,
        bootstrap: str | None = None,
        registry: TestRegistry | None = None,
    ) -> Deployment:
        # The session broker only when asked for: a test with a broker of its own needs none.
        where = bootstrap or request.getfixturevalue("kafka_bootstrap")
        workdir = tmp_path / f"{tag}{len(made)}"
        deployment = Deployment.create(
            where, workdir, tag=tag, partitions=partitions, registry=registry
        )
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.stop()
