"""Fixtures of the whole test tree (the broker's are in tests/integration/conftest.py)."""

from __future__ import annotations

import pytest

from streamguard import serde
from streamguard.core.control import replay_entry_for
from streamguard.core.engine import decide_event
from streamguard.core.models import Decision
from streamguard.core.policy import PolicyState
from streamguard.core.replay import ReplayLedger
from streamguard.core.statutes import load_statutes
from streamguard.stream.intake import Unreadable, decode
from tests.helpers import AGENCIES, KEYS, NOW, Apply


@pytest.fixture
def state() -> PolicyState:
    return PolicyState.create(load_statutes(), AGENCIES)


@pytest.fixture
def apply() -> Apply:
    """Decide one event, as JSON through the front door, against a state at the test clock."""

    memory = ReplayLedger()  # what this test decided so far, as evaluate keeps it

    def _apply(state: PolicyState, event: object, now: float = NOW) -> tuple[PolicyState, Decision]:
        decoded = decode(serde.dumps(event), state.version)
        if isinstance(decoded, Unreadable):
            return state, decoded.decision
        new_state, decision = decide_event(decoded, state, now, KEYS, memory=memory)
        entry = replay_entry_for(decoded, decision, now)
        if entry is not None:
            memory.remember(entry)
        return new_state, decision

    return _apply
