"""A batch's decisions reported at once (`observe_decisions`) expose the same series as the
same decisions reported one event at a time (`observe_decision`)."""

from __future__ import annotations

import random
from collections import Counter

from streamguard.core import codes
from streamguard.worker.metrics import StreamguardMetrics


def _samples(metrics: StreamguardMetrics) -> list[str]:
    return [
        line
        for line in metrics.exposition().decode().splitlines()
        if line.startswith("streamguard_") and "_created" not in line
    ]


def test_a_tallied_batch_exposes_what_per_event_observations_do() -> None:
    rng = random.Random(2)
    pool = (codes.NOT_SHARED, codes.OUT_OF_STATE_RECIPIENT, codes.RETENTION_EXCEEDED, "MADE_UP")
    events = []
    for _ in range(300):
        kind = rng.choice(("search_request", "plate_read", "agency", "weird"))
        outcome = rng.choice(("approved", "denied", "partial", "shared", "nonsense"))
        found = tuple(rng.choice(pool) for _ in range(rng.randint(0, 3)))
        lag = None if rng.random() < 0.2 else rng.uniform(-1, 100)
        events.append((kind, outcome, found, rng.randint(0, 9), rng.randint(0, 9), lag))
    one, batched = StreamguardMetrics.create(), StreamguardMetrics.create()
    for kind, outcome, found, allowed, denied, lag in events:
        one.observe_decision(kind, outcome, found, allowed, denied, 0.004, lag)
    batched.observe_decisions(
        Counter((kind, outcome, found) for kind, outcome, found, *_ in events),
        sum(e[3] for e in events),
        sum(e[4] for e in events),
        [0.004] * len(events),
        [e[5] for e in events if e[5] is not None],
    )
    assert _samples(batched) == _samples(one)
    assert any('code="MADE_UP"' in line or 'code="other"' in line for line in _samples(one))
