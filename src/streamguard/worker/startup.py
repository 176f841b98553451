"""How `streamguard worker` starts and fails: wait for the broker, then one line for what ended it.

faust (through mode) reports the exception that stops a worker as an ERROR record with its
traceback, then one INFO line per service it stops, and exits 1 with no summary. The worker's
command instead ends with one `streamguard worker: error: <cause>` line; the traceback and the
shutdown lines are kept for a debug log level.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from pathlib import Path
from typing import Final

from streamguard.exceptions import StreamguardError
from streamguard.settings import ENV_PREFIX, WorkerSettings

__all__ = ("BrokerUnreachableError", "FatalRecordFilter", "describe_failure", "wait_for_broker")

log = logging.getLogger("streamguard.worker")

# The messages mode logs (with the traceback) for the exception that ends a worker:
# Worker.execute_from_commandline, Service.crash and Worker._shutdown_loop's re-raise.
_FATAL_SUFFIXES: Final = (
    "Error: %r",
    "Crashed reason=%r",
    "We experienced a crash! Reraising original exception...",
)
_RETRY_SECONDS: Final = 1.0


class BrokerUnreachableError(StreamguardError):
    """No broker of STREAMGUARD_BROKER answered within STREAMGUARD_BROKER_WAIT_SECONDS.

    Operator action: start the broker or fix STREAMGUARD_BROKER (or its security settings).
    """


class FatalRecordFilter(logging.Filter):
    """A handler filter: holds back mode's report of the exception that ends the worker.

    It keeps that exception (`failure`) for the one-line error, demotes its record to DEBUG and
    lets it through only at a debug log level; from then on INFO and DEBUG records (mode's
    "Stopping..." per service) pass only at a debug log level too. Warnings and errors logged
    while stopping still pass: they are news.
    """

    def __init__(self, *, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose
        self.failure: BaseException | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        if message.endswith(_FATAL_SUFFIXES):
            if self.failure is None and record.exc_info and record.exc_info[1] is not None:
                self.failure = record.exc_info[1]
            elif self.failure is None and record.args:
                first = record.args[0] if isinstance(record.args, tuple) else None
                if isinstance(first, BaseException):
                    self.failure = first
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.verbose
        if self.failure is not None and record.levelno < logging.WARNING:
            return self.verbose
        return True


def describe_failure(exc: BaseException, settings: WorkerSettings) -> str:
    """One line for the exception that stopped the worker, naming the setting to look at."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    if name == "KafkaConnectionError":
        return f"cannot reach the Kafka broker {settings.broker} ({ENV_PREFIX}BROKER): {text}"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return (
            f"web port {settings.web_port} on {settings.web_bind} is already in use "
            f"({ENV_PREFIX}WEB_PORT)"
        )
    if isinstance(exc, OSError) and exc.filename is not None:
        path = Path(str(exc.filename))
        reason = exc.strerror or name
        if path == settings.data_dir or settings.data_dir in path.parents:
            return f"cannot use {ENV_PREFIX}DATA_DIR {settings.data_dir}: {reason}: {path}"
        return f"{reason}: {path}"
    if name.startswith("Kafka") or name.endswith(("Kafka", "KafkaError")):
        return f"Kafka at {settings.broker}: {name}: {text}" if text else f"Kafka: {name}"
    return f"{name}: {text}" if text else name


def wait_for_broker(settings: WorkerSettings) -> None:
    """Return once a broker of the settings answers a metadata request; raise after the wait.

    A broker still starting refuses connections: retried every second. One that accepts the
    connection and never answers (a wrong port, a TLS listener spoken to in plaintext) is
    bounded too, where the producer faust starts would wait its 20-minute request timeout.
    """
    wait = float(settings.broker_wait_seconds)
    deadline = time.monotonic() + wait
    last = "no answer"
    announced = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            msg = (
                f"no Kafka broker of {settings.broker} ({ENV_PREFIX}BROKER) answered within "
                f"{settings.broker_wait_seconds} s ({ENV_PREFIX}BROKER_WAIT_SECONDS): {last}"
            )
            raise BrokerUnreachableError(msg)
        # A loop of its own, never set as the current one: faust's worker takes that one next.
        loop = asyncio.new_event_loop()
        try:
            reason = loop.run_until_complete(_metadata_round_trip(settings, left))
        finally:
            loop.close()
        if reason is None:
            return
        last = reason
        if not announced:
            log.warning(
                "waiting up to %s s for the Kafka broker %s (%sBROKER_WAIT_SECONDS)",
                settings.broker_wait_seconds,
                settings.broker,
                ENV_PREFIX,
            )
            announced = True
        time.sleep(min(_RETRY_SECONDS, max(0.0, deadline - time.monotonic())))


async def _metadata_round_trip(settings: WorkerSettings, timeout: float) -> str | None:
    """None when a broker answered; else why not, in a few words."""
    from aiokafka.admin import AIOKafkaAdminClient

    client = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        # Longer than the wait below, so a broker that never answers is reported as such
        # rather than as aiokafka's "Unable to bootstrap" when its own timeout wins the race.
        request_timeout_ms=int(timeout * 1000) + 1000,
        **settings.kafka_client_options(),
    )
    # aiokafka logs each failed bootstrap at ERROR; the one line this command ends with says it.
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        await asyncio.wait_for(client.start(), timeout)
    except TimeoutError:
        return f"no answer within {timeout:.0f} s"
    except Exception as exc:  # any failure to connect is the reason given
        return str(exc) or type(exc).__name__
    finally:
        client_log.setLevel(level)
        with contextlib.suppress(Exception):  # one that never started has nothing to close
            await client.close()
    return None
