"""Fixtures for the pure-core tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamguard import serde
from streamguard.core.engine import decide_event
from streamguard.core.models import Decision
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from streamguard.stream.intake import Unreadable, decode
from tests.helpers import AGENCIES, KEYS, NOW


@pytest.fixture
def state() -> PolicyState:
    return PolicyState.create(load_statutes(), AGENCIES)


Apply = Callable[..., tuple[PolicyState, Decision]]


@pytest.fixture
def apply() -> Apply:
    """Decide one event, as JSON through the front door, against a state at the test clock."""

    def _apply(state: PolicyState, event: object, now: float = NOW) -> tuple[PolicyState, Decision]:
        decoded = decode(serde.dumps(event), state.version)
        if isinstance(decoded, Unreadable):
            return state, decoded.decision
        return decide_event(decoded, state, now, KEYS)

    return _apply
