"""`streamguard ingest serve`: the HTTP endpoint cameras post to, in a process of its own.

`POST /v1/reads/{format}` takes one vendor body. In order: an unknown format is 404, a body over
the limit 413 (before it is read when its length is announced), a post without a valid credential
401, a post beyond the in-flight limit 503 with Retry-After; then the body is mapped
(`translate`) and its records are sent and acknowledged before the answer: 202 with the read ids,
200 for a heartbeat, 400/422 with the reason once the quarantine record is written, or 503 when
the broker did not acknowledge. /metrics and /healthz are served on a second listener, apart from
the cameras'.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from streamguard.core.timeutil import format_ts, parse_ts
from streamguard.exceptions import StreamguardError
from streamguard.ingest.auth import AuthFailure, OwnerRegistry, PendingSignature, load_owners
from streamguard.ingest.formats import FORMAT_NAMES, FORMATS
from streamguard.ingest.metrics import NOT_FOUND, OTHER, IngestMetrics
from streamguard.ingest.producer import KafkaSink, SendFailed, Sink
from streamguard.ingest.settings import INGEST_PREFIX, IngestSettings
from streamguard.ingest.translate import Translation, translate
from streamguard.ingest.types import Owner

__all__ = ("READS_PATH", "IngestEndpoint", "Limits", "build_app", "build_metrics_app", "serve")

logger = logging.getLogger(__name__)

READS_PATH: Final = "/v1/reads/{format}"
_REALM: Final = 'Bearer realm="streamguard-ingest"'


@dataclass(frozen=True, slots=True)
class Limits:
    """What one endpoint allows (from IngestSettings; tests set their own)."""

    max_body_bytes: int = 2 * 1024 * 1024
    max_in_flight: int = 64
    retry_after_seconds: int = 1
    signature_max_age_seconds: int = 300

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> Limits:
        return cls(
            settings.max_body_bytes,
            settings.max_in_flight,
            settings.retry_after_seconds,
            settings.signature_max_age_seconds,
        )


def _refusal(status: int, error: str, detail: str, **headers: str) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status, headers=headers)


class IngestEndpoint:
    """The request handler and its in-flight count (one per process)."""

    def __init__(
        self,
        owners: OwnerRegistry,
        sink: Sink,
        metrics: IngestMetrics,
        limits: Limits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._owners = owners
        self._sink = sink
        self._metrics = metrics
        self._limits = limits
        self._clock = clock
        self._in_flight = 0
        metrics.in_flight_limit.set(limits.max_in_flight)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def handle(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        name = request.match_info.get("format", "")
        if name not in FORMATS:
            self._metrics.observe_request(OTHER, NOT_FOUND, None)
            return _refusal(404, "UNKNOWN_FORMAT", f"formats: {', '.join(FORMAT_NAMES)}")
        response, outcome = await self._answer(request, name)
        self._metrics.observe_request(name, outcome, time.monotonic() - started)
        return response

    async def _answer(self, request: web.Request, name: str) -> tuple[web.Response, str]:
        length = request.content_length
        if length is not None and length > self._limits.max_body_bytes:
            return self._too_large(), "too_large"
        auth = self._owners.check_headers(request.headers)
        if isinstance(auth, AuthFailure):
            return self._unauthorized(auth), "unauthorized"
        if self._in_flight >= self._limits.max_in_flight:
            return self._busy("OVERLOADED", "too many posts in flight; retry later"), "overloaded"
        self._in_flight += 1
        self._metrics.in_flight.inc()
        try:
            return await self._read_and_send(request, name, auth)
        finally:
            self._in_flight -= 1
            self._metrics.in_flight.dec()

    async def _read_and_send(
        self, request: web.Request, name: str, auth: Owner | PendingSignature
    ) -> tuple[web.Response, str]:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(), "too_large"
        now = self._clock()
        if isinstance(auth, PendingSignature):
            checked = self._owners.check_signature(
                auth, raw, now, self._limits.signature_max_age_seconds
            )
            if isinstance(checked, AuthFailure):
                return self._unauthorized(checked), "unauthorized"
            auth = checked
        translation = translate(
            FORMATS[name], auth, raw, request.headers.get("Content-Type"), format_ts(now)
        )
        if translation.messages:
            try:
                await self._sink.send_all(translation.messages)
            except SendFailed as exc:
                logger.warning("ingest %s: %s; answered 503", name, exc)
                busy = self._busy("UNAVAILABLE", "the broker did not acknowledge; retry")
                return busy, "unavailable"
        self._observe(name, translation, now)
        answer = web.json_response(translation.answer, status=translation.status)
        return answer, translation.outcome

    def _observe(self, name: str, translation: Translation, now: float) -> None:
        lags = tuple(now - (parse_ts(r["ts"]) or now) for r in translation.reads)
        self._metrics.observe_sent(name, len(translation.reads), translation.images_dropped, lags)
        if translation.code is not None:
            self._metrics.observe_quarantined(name, translation.code)

    def _too_large(self) -> web.Response:
        return _refusal(
            413, "TOO_LARGE", f"bodies are limited to {self._limits.max_body_bytes} bytes"
        )

    def _unauthorized(self, failure: AuthFailure) -> web.Response:
        self._metrics.observe_auth_failure(failure.reason)
        return _refusal(
            401,
            "UNAUTHORIZED",
            f"a valid camera-owner credential is required ({failure.reason})",
            **{"WWW-Authenticate": _REALM},
        )

    def _busy(self, error: str, detail: str) -> web.Response:
        return _refusal(
            503, error, detail, **{"Retry-After": str(self._limits.retry_after_seconds)}
        )


def build_app(endpoint: IngestEndpoint, max_body_bytes: int) -> web.Application:
    """The camera-facing application: the reads route and nothing else."""
    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post(READS_PATH, endpoint.handle)
    return app


def build_metrics_app(metrics: IngestMetrics) -> web.Application:
    """/metrics and /healthz, for Prometheus and the orchestrator."""

    async def metrics_page(request: web.Request) -> web.Response:
        # Passed as a header: aiohttp refuses a `content_type` argument with a charset.
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/healthz", health)
    return app


def _tls(settings: IngestSettings) -> ssl.SSLContext | None:
    if settings.tls_certfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(settings.tls_certfile), str(settings.tls_keyfile))
    except (OSError, ssl.SSLError) as exc:
        msg = f"cannot load {INGEST_PREFIX}TLS_CERTFILE/TLS_KEYFILE: {type(exc).__name__}"
        raise StreamguardError(msg) from None
    return context


async def serve(
    settings: IngestSettings,
    owners: OwnerRegistry,
    sink: Sink,
    metrics: IngestMetrics,
    stop: asyncio.Event,
) -> None:
    """Serve until `stop` is set, then finish the posts in flight and return."""
    endpoint = IngestEndpoint(owners, sink, metrics, Limits.from_settings(settings))
    runners: list[web.AppRunner] = []
    try:
        for app, host, port, context in (
            (
                build_app(endpoint, settings.max_body_bytes),
                settings.bind,
                settings.port,
                _tls(settings),
            ),
            (build_metrics_app(metrics), settings.metrics_bind, settings.metrics_port, None),
        ):
            # No access log: cameras post several times a second, and 401s are counted instead.
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port, ssl_context=context).start()
        logger.info(
            "ingest serving %s on %s:%d, metrics on %s:%d",
            ", ".join(FORMAT_NAMES),
            settings.bind,
            settings.port,
            settings.metrics_bind,
            settings.metrics_port,
        )
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


async def _run(settings: IngestSettings, owners: OwnerRegistry) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sink = KafkaSink(settings.kafka, settings.send_timeout_ms / 1000)
    await sink.start()
    try:
        await serve(settings, owners, sink, IngestMetrics(), stop)
    finally:
        await sink.stop()


def main_serve(argv: list[str]) -> int:
    """Entry point of `streamguard ingest serve` (settings from the environment only)."""
    parser = argparse.ArgumentParser(
        prog="streamguard ingest serve",
        description="Serve the camera endpoint (settings: STREAMGUARD_INGEST_*; docs/ingest.md).",
    )
    parser.parse_args(argv)
    settings = IngestSettings.from_env()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if settings.owners_path is None:
        msg = f"{INGEST_PREFIX}OWNERS is not set: without it no post can be authenticated"
        raise StreamguardError(msg)
    owners = load_owners(settings.owners_path, settings.default_zone())
    asyncio.run(_run(settings, owners))
    return 0
