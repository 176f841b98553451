"""Every use of faust-streaming's and aiokafka's private API, each fix guarded by source hashes.

* `recovery`: input fetched while table recovery ends is no longer dropped (two faults).
* `consumer`: revoked partitions are committed before their acks are forgotten; a short fetch
  wait.
* `stores`: acknowledged changelog records written to a table's local store.
* `context`: faust's current event set for one partition's slice of a batch.
* `producer`: aiokafka's producer behind faust's, and the per-message steps of its `send`.
* `monitor`: faust's Prometheus sensor without its broken metrics.
* `drain`, `conductor`, `batches`: fetched messages handed to the agents' queues without a task
  or a coroutine per message, taken from them in batches with one ack per batch.

`sources` holds the one table of the upstream sources these depend on; `create_app` checks it
before anything else, so the worker refuses to start on a faust or aiokafka they were not
written for. docs/faust-fixes.md describes each fix, its tests and how to upgrade.
"""

from __future__ import annotations

from typing import Any

import faust

from streamguard.worker.faust_fixes import recovery
from streamguard.worker.faust_fixes.consumer import CommitOnRevokeApp
from streamguard.worker.faust_fixes.sources import FaustChangedError, check_sources

__all__ = ("FaustChangedError", "check_sources", "create_app")


def create_app(app_id: str, **options: Any) -> faust.App:
    """The worker's faust app (`faust.App(app_id, **options)`) with every fix installed.

    Raises `FaustChangedError` (one line) when faust or aiokafka changed any guarded source.
    """
    check_sources()
    app = CommitOnRevokeApp(app_id, **options)
    recovery.install(app)  # faust drops fetched input at the end of table recovery
    return app
