"""The camera endpoint over real HTTP (aiohttp's test server), with a recording sink in place of
Kafka: each format accepted, retries, refusals (400/401/404/413/422), backpressure and broker
failures (503 with Retry-After), metrics, and no plate or image where it must not be."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from streamguard import serde
from streamguard.core.codes import MALFORMED_EVENT, SCHEMA_INVALID
from streamguard.ingest.auth import KEY_ID_HEADER, SIGNATURE_HEADER, load_owners, sign
from streamguard.ingest.metrics import IngestMetrics
from streamguard.ingest.producer import SendFailed
from streamguard.ingest.server import IngestEndpoint, Limits, build_app, build_metrics_app
from streamguard.ingest.translate import Message
from tests.unit.ingest import samples

TOKEN = samples.TOKEN
SECRET = samples.SECRET
BODIES: dict[str, Callable[[], dict[str, Any]]] = {
    "openalpr": samples.openalpr_group,
    "axis": samples.axis_event,
    "genetec": samples.genetec_visits,
}
GOLDEN = {
    "openalpr": samples.OPENALPR_READ,
    "axis": samples.AXIS_READ,
    "genetec": samples.GENETEC_READ,
}
PLATES = ("8ABC123", "7XYZ890", "6TRJ244")


class RecordingSink:
    """Keeps what would go to Kafka; can hold sends (a slow broker) or fail them."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def send_all(self, messages: Sequence[Message]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            msg = "the broker did not acknowledge: TimeoutError"
            raise SendFailed(msg)
        self.sent.extend(messages)


class Edge:
    """One endpoint under test, its sink, its metrics and an HTTP client to it."""

    def __init__(
        self,
        client: TestClient,
        endpoint: IngestEndpoint,
        sink: RecordingSink,
        metrics: IngestMetrics,
    ) -> None:
        self.client = client
        self.endpoint = endpoint
        self.sink = sink
        self.metrics = metrics

    async def post(
        self,
        name: str,
        body: Any,
        *,
        token: str | None = TOKEN,
        headers: dict[str, str] | None = None,
    ) -> ClientResponse:
        data = body if isinstance(body, bytes) else serde.dumps(body)
        sent_headers = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent_headers["Authorization"] = f"Bearer {token}"
        return await self.client.post(f"/v1/reads/{name}", data=data, headers=sent_headers)


EdgeFactory = Callable[..., Awaitable[Edge]]


@pytest.fixture
async def make_edge(tmp_path: Path) -> AsyncIterator[EdgeFactory]:
    clients: list[TestClient] = []

    async def make(limits: Limits | None = None) -> Edge:
        sink = RecordingSink()
        metrics = IngestMetrics()
        limits = limits or Limits()
        endpoint = IngestEndpoint(
            load_owners(samples.write_owners_file(tmp_path / "owners.json")), sink, metrics, limits
        )
        client = TestClient(TestServer(build_app(endpoint, limits.max_body_bytes)))
        await client.start_server()
        clients.append(client)
        return Edge(client, endpoint, sink, metrics)

    yield make
    for client in clients:
        await client.close()


def _metric(edge: Edge, name: str, **labels: str) -> float:
    value = edge.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


@pytest.mark.parametrize("name", list(BODIES))
async def test_each_format_is_accepted_and_sent_keyed_by_its_owner(
    make_edge: EdgeFactory, name: str
) -> None:
    edge = await make_edge()
    response = await edge.post(name, BODIES[name]())
    assert response.status == 202
    assert await response.json() == {"accepted": 1, "read_ids": [GOLDEN[name]["read_id"]]}
    assert [(m.topic, m.key, m.value) for m in edge.sink.sent] == [
        ("reads", samples.OWNER_ID, GOLDEN[name])
    ]
    assert _metric(edge, "streamguard_ingest_requests_total", format=name, outcome="accepted") == 1
    assert _metric(edge, "streamguard_ingest_reads_total", format=name) == 1


async def test_a_retried_webhook_is_the_same_read(make_edge: EdgeFactory) -> None:
    """Delivered twice (at least once), named once: the copy carries the same read_id."""
    edge = await make_edge()
    answers = [await (await edge.post("axis", samples.axis_event())).json() for _ in range(2)]
    assert answers[0] == answers[1]
    assert {m.value["read_id"] for m in edge.sink.sent} == {samples.AXIS_READ["read_id"]}


async def test_the_owner_comes_from_the_credential_not_the_body(make_edge: EdgeFactory) -> None:
    """A body claiming another agency still writes a read of the credential's agency."""
    edge = await make_edge()
    body = samples.openalpr_group(agency_id="us-ice-ero", share_to=["us-ice-ero"])
    assert (await edge.post("openalpr", body)).status == 202
    [message] = edge.sink.sent
    assert (message.key, message.value["agency_id"]) == (samples.OWNER_ID, samples.OWNER_ID)
    assert message.value["share_to"] == list(samples.SHARE_TO)


@pytest.mark.parametrize(
    ("token", "headers", "reason"),
    [
        (None, {}, "missing"),
        ("not-the-token", {}, "invalid"),
        (None, {"Authorization": "Digest abc"}, "malformed"),
        (
            None,
            {KEY_ID_HEADER: "ventura-gw", SIGNATURE_HEADER: f"t=1,v1={'0' * 64}"},
            "bad_signature",
        ),
    ],
)
async def test_an_unauthenticated_post_is_refused_401_and_counted(
    make_edge: EdgeFactory, token: str | None, headers: dict[str, str], reason: str
) -> None:
    edge = await make_edge()
    response = await edge.post("openalpr", samples.openalpr_group(), token=token, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json())["error"] == "UNAUTHORIZED"
    assert edge.sink.sent == []  # not even a quarantine record: a stranger writes nothing
    assert _metric(edge, "streamguard_ingest_auth_failures_total", reason=reason) == 1
    assert (
        _metric(
            edge, "streamguard_ingest_requests_total", format="openalpr", outcome="unauthorized"
        )
        == 1
    )


async def test_an_hmac_signed_post_is_accepted_and_a_stale_one_refused(
    make_edge: EdgeFactory,
) -> None:
    edge = await make_edge()
    raw = serde.dumps(samples.genetec_visits())
    now = int(time.time())
    for timestamp, status in ((now, 202), (now - 3600, 401)):
        signature = sign(SECRET.encode(), timestamp, raw)
        headers = {KEY_ID_HEADER: "ventura-gw", SIGNATURE_HEADER: f"t={timestamp},v1={signature}"}
        response = await edge.post("genetec", raw, token=None, headers=headers)
        assert response.status == status
    assert [m.value["read_id"] for m in edge.sink.sent] == [samples.GENETEC_READ["read_id"]]
    assert _metric(edge, "streamguard_ingest_auth_failures_total", reason="stale") == 1


async def test_a_body_over_the_limit_is_refused_413(make_edge: EdgeFactory) -> None:
    """Announced or streamed (chunked, no Content-Length): refused either way, never stored."""
    edge = await make_edge(Limits(max_body_bytes=4096))
    big = samples.openalpr_group(vehicle_crop_jpeg=samples.FAKE_JPEG * 200)
    response = await edge.post("openalpr", big)
    assert response.status == 413
    assert (await response.json())["error"] == "TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:
        raw = serde.dumps(big)
        for start in range(0, len(raw), 1000):
            yield raw[start : start + 1000]

    streamed = await edge.client.post(
        "/v1/reads/openalpr", data=chunks(), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert streamed.status == 413
    assert edge.sink.sent == []
    assert (
        _metric(edge, "streamguard_ingest_requests_total", format="openalpr", outcome="too_large")
        == 2
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"plate=8ABC123&camera=7", 400, MALFORMED_EVENT),
        (b"[]", 400, MALFORMED_EVENT),
        (
            samples.axis_event(plateText="8AB*123", plateUTF8="", plateUnicode=""),
            422,
            SCHEMA_INVALID,
        ),
        (samples.axis_event(camera_info={}), 422, SCHEMA_INVALID),
    ],
)
async def test_an_unmappable_body_is_quarantined_and_answered_4xx_with_the_reason(
    make_edge: EdgeFactory, body: Any, status: int, code: str
) -> None:
    edge = await make_edge()
    response = await edge.post("axis", body)
    assert response.status == status
    answer = await response.json()
    [message] = edge.sink.sent
    assert message.topic == "quarantine"
    record = message.value
    assert answer == {
        "error": code,
        "detail": record["reasons"][0]["detail"],
        "quarantine_id": record["event_id"],
    }
    assert record["kind"] == "raw" and record["reasons"][0]["code"] == code
    assert not any(plate in json.dumps(answer) for plate in (*PLATES, "8AB*123"))
    assert _metric(edge, "streamguard_ingest_quarantined_total", format="axis", code=code) == 1


async def test_a_heartbeat_is_answered_200_and_sends_nothing(make_edge: EdgeFactory) -> None:
    edge = await make_edge()
    response = await edge.post(
        "openalpr", {"data_type": "heartbeat", "agent_uid": samples.AGENT_UID}
    )
    assert (response.status, await response.json()) == (200, {"ignored": "heartbeat"})
    assert edge.sink.sent == []
    assert (
        _metric(edge, "streamguard_ingest_requests_total", format="openalpr", outcome="ignored")
        == 1
    )


async def test_posts_beyond_the_in_flight_limit_get_503_with_retry_after(
    make_edge: EdgeFactory,
) -> None:
    """A slow broker fills the in-flight slots; the next post is told to come back, not queued."""
    edge = await make_edge(Limits(max_in_flight=2, retry_after_seconds=3))
    edge.sink.gate = asyncio.Event()
    held = [
        asyncio.create_task(edge.post("axis", samples.axis_event(carID=str(i)))) for i in range(2)
    ]
    for _ in range(200):
        if edge.endpoint.in_flight == 2:
            break
        await asyncio.sleep(0.01)
    assert edge.endpoint.in_flight == 2
    assert _metric(edge, "streamguard_ingest_in_flight") == 2
    refused = await edge.post("axis", samples.axis_event(carID="99"))
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "3"
    assert (await refused.json())["error"] == "OVERLOADED"
    edge.sink.gate.set()
    assert [(await t).status for t in held] == [202, 202]
    assert len(edge.sink.sent) == 2 and edge.endpoint.in_flight == 0
    assert (
        _metric(edge, "streamguard_ingest_requests_total", format="axis", outcome="overloaded") == 1
    )


@pytest.mark.parametrize("body", [samples.axis_event(), b"not json"])
async def test_a_broker_that_does_not_acknowledge_gets_503_never_a_silent_drop(
    make_edge: EdgeFactory, body: Any
) -> None:
    """Reads and quarantine records alike: no 2xx or 4xx until the record is acknowledged."""
    edge = await make_edge()
    edge.sink.fail = True
    response = await edge.post("axis", body)
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert (await response.json())["error"] == "UNAVAILABLE"
    assert (
        _metric(edge, "streamguard_ingest_requests_total", format="axis", outcome="unavailable")
        == 1
    )


async def test_unknown_formats_and_methods_are_refused(make_edge: EdgeFactory) -> None:
    edge = await make_edge()
    response = await edge.post("hikvision", samples.axis_event())
    assert response.status == 404
    assert (await response.json())["error"] == "UNKNOWN_FORMAT"
    assert (await edge.client.get("/v1/reads/axis")).status == 405
    assert (
        _metric(edge, "streamguard_ingest_requests_total", format="other", outcome="not_found") == 1
    )


async def test_metrics_and_logs_hold_no_plate_and_sent_records_no_image(
    make_edge: EdgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    edge = await make_edge()
    for name, body in BODIES.items():
        assert (await edge.post(name, body())).status == 202
    assert (await edge.post("axis", samples.axis_event(plateText="7XY*890"))).status == 422
    edge.sink.fail = True
    assert (await edge.post("openalpr", samples.openalpr_group())).status == 503
    metrics_client = TestClient(TestServer(build_metrics_app(edge.metrics)))
    await metrics_client.start_server()
    try:
        page = await (await metrics_client.get("/metrics")).text()
        health = await (await metrics_client.get("/healthz")).json()
    finally:
        await metrics_client.close()
    assert health == {"status": "ok"}
    assert 'streamguard_ingest_requests_total{format="genetec",outcome="accepted"} 1.0' in page
    assert 'streamguard_ingest_images_dropped_total{format="openalpr"} 2.0' in page
    assert "streamguard_ingest_read_lag_seconds_bucket" in page
    for plate in (*PLATES, "7XY*890"):
        assert plate not in page
        assert plate not in caplog.text
    for message in edge.sink.sent:
        assert samples.FAKE_JPEG not in json.dumps(message.value)
        assert "getImage" not in json.dumps(message.value)
