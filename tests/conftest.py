"""Fixtures for the pure-core tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamguard.core.engine import decide_event
from streamguard.core.models import Decision
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from tests.helpers import AGENCIES, KEYS, NOW


@pytest.fixture
def state() -> PolicyState:
    return PolicyState.create(load_statutes(), AGENCIES)


Apply = Callable[..., tuple[PolicyState, Decision]]


@pytest.fixture
def apply() -> Apply:
    """Decide one event against a state at the fixed test clock."""

    def _apply(state: PolicyState, event: object, now: float = NOW) -> tuple[PolicyState, Decision]:
        return decide_event(event, state, now, KEYS)

    return _apply
