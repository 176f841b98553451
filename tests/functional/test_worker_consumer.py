"""The worker's faust consumer: its aiokafka consumer is created with a short fetch wait."""

from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from streamguard.core.models import Agency
from streamguard.core.statutes import load_statutes
from streamguard.settings import WorkerSettings
from streamguard.worker.app import build_worker
from streamguard.worker.faust_fixes.consumer import FETCH_MAX_WAIT_MS, CommitOnRevokeConsumer
from streamguard.worker.metrics import StreamguardMetrics


async def test_the_aiokafka_consumer_waits_briefly_for_fetches(tmp_path: Path) -> None:
    settings = WorkerSettings(
        app_id=f"fc-{tmp_path.name}", store="memory://", data_dir=tmp_path, partitions=1
    )
    built = build_worker(
        settings,
        statutes=load_statutes(),
        file_agencies=(Agency("a", "A", "CA", "local"),),
        keys={"k1": b"s"},
        salt=b"salt",
        metrics=StreamguardMetrics.create(CollectorRegistry()),
        web_enabled=False,
    )
    consumer = built.app.consumer
    assert isinstance(consumer, CommitOnRevokeConsumer)
    # What faust's consumer thread starts (not started here: no broker is contacted).
    kafka = consumer._thread._create_worker_consumer(built.app.transport)
    assert isinstance(kafka, AIOKafkaConsumer)
    assert kafka._fetch_max_wait_ms == FETCH_MAX_WAIT_MS < 1500
    await kafka.stop()
