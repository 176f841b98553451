"""Create the contract topics before a worker starts (the demo, benchmarks and tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

__all__ = ("contract_topics", "create_topics")


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    """Create topics that do not exist yet (a broker would auto-create them with its default
    partition count, which the worker refuses when it differs from STREAMGUARD_PARTITIONS)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


def contract_topics(prefix: str) -> list[str]:
    """Every topic the worker reads or writes under `prefix`."""
    names = (
        "searches",
        "reads",
        "policy",
        "agencies",
        "purges",
        "searches.approved",
        "reads.shared",
        "quarantine",
        "audit",
        "alerts",
        "checkpoints",
    )
    return [prefix + n for n in names]
