"""Fixtures for the pure-core tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamguard.engine import decide_event
from streamguard.models import Decision
from streamguard.policy import PolicyState
from streamguard.statutes import load_statutes
from tests.unit.factories import AGENCIES, KEYS, NOW


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
