"""Fixtures of the whole test tree (the broker's are in tests/integration/conftest.py)."""

from __future__ import annotations

import pytest

from streamguard import serde
from streamguard.core.engine import decide_event
from streamguard.core.models import Decision
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from streamguard.stream.intake import Unreadable, decode
from tests.helpers import AGENCIES, KEYS, NOW, Apply


@pytest.fixture
def state() -> PolicyState:
    return PolicyState.create(load_statutes(), AGENCIES)


@pytest.fixture
def apply() -> Apply:
    """Decide one event, as JSON through the front door, against a state at the test clock."""

    def _apply(state: PolicyState, event: object, now: float = NOW) -> tuple[PolicyState, Decision]:
        decoded = decode(serde.dumps(event), state.version)
        if isinstance(decoded, Unreadable):
            return state, decoded.decision
        return decide_event(decoded, state, now, KEYS)

    return _apply
