"""`streamguard demo`: broker, worker and the Ventura County scenario in one command.

Starts (or reuses) a local Kafka broker, starts a worker as a child process on a topic prefix of
its own, replays `streamguard.local.scenario` through Kafka, reads every output topic until each
input has its audit record, verifies the audit chains and prints a summary. Whatever the demo
started it stops again, on success, on error and on Ctrl-C.

The summary half (`Tally`, `render_summary`) is pure and unit-tested; the rest is plumbing with a
bounded wait at every step. Nothing here prints an event's contents: plates never reach the
terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import logging
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, Final, TextIO

from streamguard import serde
from streamguard.exceptions import StreamguardError, error_line
from streamguard.local.scenario import (
    MIN_EVENTS,
    Message,
    Scenario,
    build_scenario,
    decide_scenario,
)
from streamguard.trail.chain import VerifyReport

__all__ = (
    "Console",
    "DemoError",
    "Expected",
    "Tally",
    "Verdict",
    "agencies_csv",
    "failures",
    "main_demo",
    "metrics_events_total",
    "render_summary",
    "succeeded",
    "with_port_hint",
    "worker_exit_cause",
)

OUTPUT_ROLES: Final = {
    "searches.approved": "approved",
    "reads.shared": "shared",
    "quarantine": "quarantine",
    "alerts": "alerts",
    "audit": "audit",
}
_PARTITIONS: Final = 4  # enough to show several audit chains; few enough to start fast
_TOP_CODES: Final = 12
_LOG_TAIL: Final = 15
_CAUSE_CHARS: Final = 400


class DemoError(StreamguardError):
    """The demo cannot go on; the message says why in one line (and `detail` may follow)."""

    def __init__(self, message: str, detail: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.detail = tuple(detail)


# --- pure: what came out of the worker --------------------------------------------------------


@dataclass
class Tally:
    """Counts of decoded output records, each counted once however often Kafka delivers it.

    `states` maps agency id to state, to tell out-of-state and federal searches on California
    data apart from the rest.
    """

    states: Mapping[str, str] = field(default_factory=dict)
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    outputs: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # the last
    # Every outcome per event id, in order: a replayed control record repeats its original's id.
    history: dict[str, list[str]] = field(default_factory=dict)
    anonymous: int = 0  # audited messages without a readable event id
    foreign_on_ca: int = 0  # out-of-state or federal searches that named California networks
    foreign_reached_ca: int = 0  # ... and were allowed one of them
    _seen: set[tuple[str, str]] = field(default_factory=set)

    @property
    def audited(self) -> int:
        return len(self.outcomes) + self.anonymous

    def add(self, role: str, value: object) -> None:
        """Count one output record of `role` (a key of OUTPUT_ROLES' values)."""
        if not isinstance(value, dict):
            return
        ident = value.get("alert_id") if role == "alerts" else value.get("decision_id")
        if not isinstance(ident, str) or (role, ident) in self._seen:
            return
        self._seen.add((role, ident))
        if role == "alerts":
            self.alerts[str(value.get("kind"))] += 1
        elif role == "audit":
            self._audit(value)
        else:
            self.outputs[role] += 1

    def _audit(self, record: Mapping[str, Any]) -> None:
        kind, outcome = str(record.get("kind")), str(record.get("outcome"))
        codes = tuple(str(c) for c in record.get("codes") or ())
        self.decisions[(kind, outcome)] += 1
        self.codes.update(set(codes))
        event_id = record.get("event_id")
        if isinstance(event_id, str):
            self.outcomes[event_id] = (outcome, codes)
            self.history.setdefault(event_id, []).append(outcome)
        else:
            self.anonymous += 1
        if kind == "search_request":
            self._foreign(record)

    def _foreign(self, record: Mapping[str, Any]) -> None:
        requester = self.states.get(str(record.get("requester")))
        if requester is None or requester == "CA":
            return
        allowed = [a for a in record.get("allowed") or () if self.states.get(a) == "CA"]
        denied = [a for a in record.get("denied") or () if self.states.get(a) == "CA"]
        if allowed or denied:
            self.foreign_on_ca += 1
            self.foreign_reached_ca += bool(allowed)

    def decided(
        self,
        expected_ids: Iterable[str],
        expected_anonymous: int,
        since: Mapping[str, int] | None = None,
        anonymous_since: int = 0,
    ) -> int:
        """How many of the expected inputs (an id once per input) have an audit record so far;
        `since`: how many records each id had before, for a phase that repeats earlier ids."""
        before = since or {}
        found = sum(
            min(len(self.history.get(i, ())) - before.get(i, 0), n)
            for i, n in Counter(expected_ids).items()
        )
        return found + min(self.anonymous - anonymous_since, expected_anonymous)

    def counts(self) -> dict[str, int]:
        """Audit records per event id so far (for `decided`'s `since`)."""
        return {i: len(h) for i, h in self.history.items()}


@dataclass(frozen=True, slots=True)
class Expected:
    """What the pure engine decided for the scenario: the yardstick for the worker."""

    outcomes: Mapping[str, tuple[str, ...]]  # event id -> its outcomes, in order
    anonymous: int  # messages without a readable event id

    @property
    def total(self) -> int:
        return sum(len(o) for o in self.outcomes.values()) + self.anonymous

    @property
    def ids(self) -> list[str]:
        """Each event id once per input that carries it."""
        return [i for i, outcomes in self.outcomes.items() for _ in outcomes]

    @classmethod
    def of(cls, decided: Iterable[tuple[Message, Any]]) -> Expected:
        outcomes: dict[str, list[str]] = {}
        anonymous = 0
        for message, decision in decided:
            if message.event_id is None:
                anonymous += 1
            else:
                outcomes.setdefault(message.event_id, []).append(decision.outcome)
        return cls({i: tuple(o) for i, o in outcomes.items()}, anonymous)

    def disagreements(self, tally: Tally) -> list[str]:
        """Event ids the worker decided otherwise than the engine (or not at all)."""
        return [
            i
            for i, outcomes in self.outcomes.items()
            if tuple(tally.history.get(i, ())) != outcomes
        ]


_KIND_ORDER: Final = ("search_request", "plate_read", "policy_change", "agency", "raw")
_OUTCOME_ORDER: Final = (
    "approved",
    "shared",
    "partial",
    "denied",
    "applied",
    "rejected",
    "upserted",
    "deleted",
    "malformed",
)
_ALERT_MEANING: Final = {
    "out_of_state_attempts": "an owner searched by many out-of-state/federal agencies in an hour",
    "prohibited_purpose": "a requester made several immigration-purpose searches in an hour",
    "violation_burst": "a requester denied many owner networks in an hour",
    "policy_rejected": "a policy change was rejected",
    "policy_widened": "an applied change opened an owner's data further (the owner is told)",
    "registry_changed": "an agency's state or kind changed in the registry",
    "search_rate": "a requester passed its per-minute search limit",
}


def _rank(order: tuple[str, ...], name: str) -> tuple[int, str]:
    return (order.index(name) if name in order else len(order), name)


@dataclass(frozen=True, slots=True)
class Verdict:
    """How the run went, beyond the counts: what the summary's last lines report."""

    flip_id: str
    replay_id: str
    relabel_id: str
    expected: Expected
    audit: VerifyReport | None
    audit_error: str | None
    metrics_url: str | None  # None: the worker is not the demo's (--produce-only)
    metrics_events: float | None
    kept_running: bool  # the worker behind `metrics_url` is left running after the demo


def render_summary(tally: Tally, verdict: Verdict) -> list[str]:
    """The summary lines. Pure: counts, codes, agency kinds; never an event's contents."""
    lines = ["", "Decisions (one audit record per input event)"]
    kinds = sorted({k for k, _ in tally.decisions}, key=lambda k: _rank(_KIND_ORDER, k))
    for kind in kinds:
        cells = sorted(
            ((o, n) for (k, o), n in tally.decisions.items() if k == kind),
            key=lambda c: _rank(_OUTCOME_ORDER, c[0]),
        )
        total = sum(n for _, n in cells)
        text = "  ".join(f"{o} {n:>5}" for o, n in cells)
        lines.append(f"  {kind:<15} {total:>6}   {text}")
    lines += ["", "Top reason codes (events carrying each)"]
    for code, n in tally.codes.most_common(_TOP_CODES):
        lines.append(f"  {code:<32} {n:>6}")
    lines += ["", f"Alerts ({sum(tally.alerts.values())})"]
    for kind, n in sorted(tally.alerts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {kind:<24} {n:>4}   {_ALERT_MEANING.get(kind, '')}".rstrip())
    outputs = tally.outputs
    facts = [
        ("Ventura National Lookup flip", _rejection_fate(tally, verdict.flip_id)),
        ("Replayed signed change", _rejection_fate(tally, verdict.replay_id)),
        ("Registry relabel (Houston)", _rejection_fate(tally, verdict.relabel_id)),
        (
            "Out-of-state/federal on CA",
            f"{tally.foreign_on_ca} searches named California "
            f"networks; {tally.foreign_reached_ca} reached California data",
        ),
        (
            "Outputs",
            f"{outputs['approved']} approved searches, {outputs['shared']} shared "
            f"reads, {outputs['quarantine']} quarantined",
        ),
        ("Worker vs offline engine", _agreement(tally, verdict.expected)),
        ("Audit chains", _audit_fate(verdict)),
        ("Metrics", _metrics_fate(verdict)),
        (
            "Dashboards",
            "`docker compose up --build`: Kafka, worker, Prometheus, Grafana "
            "(http://localhost:3000)",
        ),
    ]
    lines.append("")
    lines += [f"{label + ':':<30}{text}" for label, text in facts]
    return lines


def _rejection_fate(tally: Tally, event_id: str) -> str:
    fate = tally.outcomes.get(event_id)
    if fate is None:
        return "NO DECISION SEEN"
    outcome, codes = fate
    effect = "never took effect" if outcome == "rejected" else "TOOK EFFECT"
    return f"{outcome.upper()} ({', '.join(codes)}), {effect}"


def _agreement(tally: Tally, expected: Expected) -> str:
    differ = expected.disagreements(tally)
    same = sum(len(o) for i, o in expected.outcomes.items() if i not in differ)
    same += min(tally.anonymous, expected.anonymous)
    line = f"same outcome for {same} of {expected.total} inputs"
    return line + (f" ({len(differ)} differ or are missing)" if differ else "")


def _audit_fate(verdict: Verdict) -> str:
    report = verdict.audit
    if report is None:
        return f"NOT VERIFIED ({verdict.audit_error})"
    if report.broken is not None:
        return f"BROKEN: {report.broken}"
    replays = f", {report.duplicates} exact replays" if report.duplicates else ""
    return f"verified ({report.chains} chains, {report.records} records{replays})"


def _metrics_fate(verdict: Verdict) -> str:
    if verdict.metrics_url is None:
        return "not read (--produce-only: the worker is not the demo's)"
    seen = ""
    if verdict.metrics_events is not None:
        seen = f" (streamguard_events_total {verdict.metrics_events:.0f})"
    if verdict.kept_running:
        after = "still served after the demo ends (the worker is left running)"
    else:
        after = "no longer served once the demo ends (it stops the worker; --keep-running keeps it)"
    return f"{verdict.metrics_url}{seen}; {after}"


def failures(tally: Tally, verdict: Verdict) -> list[str]:
    """What keeps the run from passing: every input decided as the engine decides it, the
    flip, the replay and the relabel rejected, no California data out of state, the chains
    intact. Empty when it passed."""
    found: list[str] = []
    differ = len(verdict.expected.disagreements(tally))
    differ += max(verdict.expected.anonymous - tally.anonymous, 0)
    if differ:
        found.append(f"{differ} inputs decided otherwise than the offline engine, or not at all")
    for event_id, what in (
        (verdict.flip_id, "the National Lookup flip"),
        (verdict.replay_id, "the replayed signed change"),
        (verdict.relabel_id, "the registry relabel"),
    ):
        fate = tally.outcomes.get(event_id)
        if fate is None or fate[0] != "rejected":
            found.append(f"{what} was not rejected")
    if tally.foreign_reached_ca:
        found.append("California data reached an out-of-state or federal requester")
    if verdict.audit is None or verdict.audit.broken is not None:
        found.append("the audit chains did not verify")
    return found


def succeeded(tally: Tally, verdict: Verdict) -> bool:
    return not failures(tally, verdict)


def agencies_csv(agencies: Iterable[Mapping[str, str]]) -> str:
    """The registry as the CSV `STREAMGUARD_AGENCIES` loads."""
    out = io.StringIO()
    writer = csv.DictWriter(out, ("agency_id", "name", "state", "kind"), lineterminator="\n")
    writer.writeheader()
    writer.writerows(agencies)
    return out.getvalue()


_TRACEBACK: Final = "Traceback (most recent call last):"
_LOG_RECORD: Final = re.compile(r"\[[^\]]*\] \[\d+\] \[(?P<level>[A-Z]+)\] (?P<message>.*)")
_WORKER_ERROR: Final = error_line("worker", "")


def worker_exit_cause(log: str) -> str | None:
    """The one line of a dead worker's log that says why it stopped; None when no line does.

    The worker's own one-line error first (bad settings), then the exception that ended the
    last traceback (a port taken, a crash), then the last ERROR or CRITICAL record. The lines
    after it are mode's orderly shutdown ("Stopping..." per service) and say nothing.
    """
    lines = [line.rstrip() for line in log.splitlines()]
    own = [line for line in lines if line.startswith(_WORKER_ERROR)]
    if own:
        return own[-1].removeprefix(_WORKER_ERROR)[:_CAUSE_CHARS]
    starts = [i for i, line in enumerate(lines) if line.startswith(_TRACEBACK)]
    if starts:
        # The exception line is the first one after the frames that is not indented.
        for line in lines[starts[-1] + 1 :]:
            if line and not line[0].isspace():
                return line[:_CAUSE_CHARS]
    for line in reversed(lines):
        record = _LOG_RECORD.match(line)
        if record is not None and record["level"] in ("ERROR", "CRITICAL"):
            return record["message"].strip()[:_CAUSE_CHARS]
    return None


def with_port_hint(cause: str, web_port: int) -> str:
    """A dead worker's cause, with what to do when its web port was taken under the demo."""
    # The worker's own line names the setting; a faust of old says only "address already in use".
    if "(STREAMGUARD_WEB_PORT)" in cause or "address already in use" in cause:
        return (
            f"{cause}; port {web_port} was taken after the demo checked it: "
            "choose another --web-port"
        )
    return cause


def metrics_events_total(text: str) -> float | None:
    """Sum of `streamguard_events_total` samples in a Prometheus text page."""
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("streamguard_events_total{")
    ]
    return sum(values) if values else None


# --- console ----------------------------------------------------------------------------------


class Console:
    """Step lines with the time since start; a progress line redrawn in place on a terminal."""

    def __init__(self, out: TextIO, err: TextIO | None = None) -> None:
        self.out = out
        self.err = err if err is not None else out
        self.started = time.monotonic()
        self.tty = out.isatty()
        self._last_progress = 0.0
        self._open = False

    def _elapsed(self) -> str:
        return f"[{time.monotonic() - self.started:6.1f}s]"

    def step(self, text: str) -> None:
        # On a terminal the step line replaces the progress line it concludes.
        lead = "\r" if self._open else ""
        self._open = False
        print(
            f"{lead}{self._elapsed()} {text}\x1b[K" if lead else f"{self._elapsed()} {text}",
            file=self.out,
            flush=True,
        )

    def progress(self, text: str) -> None:
        now = time.monotonic()
        if self.tty:
            print(f"\r{self._elapsed()} {text}\x1b[K", end="", file=self.out, flush=True)
            self._open = True
        elif now - self._last_progress >= 5.0:
            # Logs and CI get a line every few seconds, not one per redraw.
            print(f"{self._elapsed()} {text}", file=self.out, flush=True)
            self._last_progress = now

    def _close(self) -> None:
        if self._open:
            print(file=self.out, flush=True)
            self._open = False

    def lines(self, lines: Iterable[str]) -> None:
        self._close()
        for line in lines:
            print(line, file=self.out)
        self.out.flush()

    def error(self, message: str, detail: Iterable[str] = ()) -> None:
        """`streamguard demo: error: ...` on stderr, then any detail (a log tail) below it."""
        self._close()
        for line in (error_line("demo", message), *detail):
            print(line, file=self.err)
        self.err.flush()


# --- I/O: broker, files, worker ---------------------------------------------------------------


@dataclass
class Run:
    """What this run started and where, so that `cleanup` stops exactly that."""

    port: int
    web_port: int
    data_dir: Path
    temp_dir: bool
    bootstrap: str = ""
    started_broker: bool = False
    worker: Any = None  # streamguard.local.child.WorkerProcess, imported lazily
    prefix: str = ""


def _ensure_broker(run: Run, console: Console) -> None:
    from streamguard.local.broker import broker_is_up, kafka_version, start_broker

    bootstrap = f"localhost:{run.port}"
    if broker_is_up(bootstrap, timeout=3.0):
        run.bootstrap = bootstrap
        console.step(f"Kafka: using the broker already running on {bootstrap} (left running)")
        return
    console.step(
        f"Kafka: starting a local broker on {bootstrap} (the first run fetches "
        f"Kafka {kafka_version()}, which can take a few minutes)"
    )
    handle = start_broker(run.port, run.data_dir / "kafka", timeout=120.0, stage=console.progress)
    run.bootstrap = handle.bootstrap
    run.started_broker = not handle.already_running
    console.step(f"Kafka: broker up on {handle.bootstrap} (pid {handle.pid})")


def _check_web_port(port: int) -> None:
    from streamguard.local.broker import port_in_use

    # A listener, not a closed connection: the demo's own /metrics reads of a run that just
    # ended leave the port in TIME_WAIT for a minute, and the worker binds over those.
    if port_in_use(port):
        raise DemoError(f"web port {port} is already in use (another worker?); choose --web-port")


def _write_inputs(run: Run, scenario: Scenario) -> tuple[Path, Path]:
    agencies = run.data_dir / "agencies.csv"
    keys = run.data_dir / "KEYS.json"
    agencies.write_text(agencies_csv(scenario.agencies), encoding="utf-8")
    # The demo key signs only demo traffic; still, key files are not for other users to read.
    fd = os.open(keys, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(dict(scenario.keys), handle, indent=2)
    return agencies, keys


def _log_tail(path: Path, lines: int = _LOG_TAIL) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return ["  | " + line for line in text.splitlines()[-lines:]]


def _start_worker(run: Run, agencies: Path, keys: Path, console: Console) -> None:
    from streamguard.local.child import WorkerProcess, worker_env

    env = worker_env(
        run.bootstrap,
        run.prefix,
        run.data_dir / "worker",
        agencies=agencies,
        keys=keys,
        web_port=run.web_port,
        partitions=_PARTITIONS,
        plate_salt=secrets.token_hex(16),
        log_level="info",
        web_bind="127.0.0.1",
    )
    run.worker = WorkerProcess(env, run.data_dir / "worker.log")
    run.worker.start()
    console.step(f"worker: started (pid {run.worker.proc.pid}, log {run.worker.log_path})")


def _check_worker(run: Run) -> None:
    worker = run.worker
    if worker is None or worker.alive():
        return
    code = worker.proc.returncode if worker.proc is not None else "?"
    try:
        log = worker.log_text()
    except OSError:
        log = ""
    cause = worker_exit_cause(log)
    if cause is None:
        raise DemoError(
            f"the worker exited (code {code}); the end of {worker.log_path}:",
            _log_tail(worker.log_path),
        )
    raise DemoError(
        f"the worker exited (code {code}): {with_port_hint(cause, run.web_port)} "
        f"(log: {worker.log_path})"
    )


def _fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310 - our localhost URL
            body: bytes = response.read()
            return body.decode("utf-8", "replace")
    except (OSError, urllib.error.URLError):
        return None


# --- I/O: Kafka --------------------------------------------------------------------------------


class Outputs:
    """Reads every output topic from where it stood at start into a Tally, in the background."""

    def __init__(self, bootstrap: str, prefix: str, tally: Tally) -> None:
        self.bootstrap = bootstrap
        self.roles = {prefix + suffix: role for suffix, role in OUTPUT_ROLES.items()}
        self.tally = tally
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        # No consumer group: nothing to commit or clean up, and every partition is read.
        consumer = AIOKafkaConsumer(
            *self.roles,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=2000,
        )
        try:
            await asyncio.wait_for(consumer.start(), 30.0)
        except Exception as exc:
            await consumer.stop()
            raise DemoError(f"cannot read the output topics: {type(exc).__name__}") from None
        tps = [
            TopicPartition(topic, p)
            for topic in self.roles
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.unsubscribe()
        consumer.assign(tps)
        # Pin the end offsets now: records already there belong to an earlier run.
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, records in batch.items():
                role = self.roles[tp.topic]
                for record in records:
                    try:
                        value: object = serde.loads(record.value) if record.value else None
                    except ValueError:
                        value = None
                    self.tally.add(role, value)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def check(self) -> None:
        if self._task is not None and self._task.done() and not self._task.cancelled():
            error = self._task.exception()
            raise DemoError(f"reading the output topics failed: {type(error).__name__}")


async def _send(
    bootstrap: str, prefix: str, messages: Iterable[Message], on_sent: Callable[[int], None]
) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, acks="all")
    await asyncio.wait_for(producer.start(), 30.0)
    try:
        pending: list[asyncio.Future[Any]] = []
        sent = 0
        for message in messages:
            key = message.key.encode() if message.key is not None else None
            pending.append(await producer.send(prefix + message.topic, message.value, key=key))
            if len(pending) >= 500:  # bound what is in flight, and report as batches land
                await asyncio.gather(*pending)
                sent += len(pending)
                pending.clear()
                on_sent(sent)
        await asyncio.gather(*pending)
        on_sent(sent + len(pending))
    finally:
        await producer.stop()


async def _wait_until(
    done: Callable[[], bool],
    timeout: float,
    checks: Iterable[Callable[[], None]],
    on_tick: Callable[[], None] | None = None,
) -> bool:
    deadline = time.monotonic() + timeout
    checks = tuple(checks)
    while not done():
        for check in checks:
            check()
        if on_tick is not None:
            on_tick()
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


# --- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    port: int
    web_port: int
    events: int
    seed: int
    keep_running: bool
    data_dir: Path | None
    timeout: float
    produce_only: bool


def _parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="streamguard demo",
        description="Start a local Kafka broker and a worker, replay a scenario modelled on the "
        "Ventura County ALPR audit, print what StreamGuard decided, and stop again.",
    )
    add = parser.add_argument
    add(
        "--port",
        type=int,
        default=9092,
        help="Kafka port; a broker already there is used and left running (default 9092)",
    )
    add(
        "--web-port",
        type=int,
        default=6066,
        help="port of the worker's /metrics page (default 6066)",
    )
    add(
        "--events",
        type=int,
        default=4000,
        help=f"events in the stream, at least {MIN_EVENTS} (default 4000)",
    )
    add("--seed", type=int, default=2025, help="scenario seed (default 2025)")
    add(
        "--keep-running",
        action="store_true",
        help="leave the worker (and a broker the demo started) running",
    )
    add(
        "--data-dir",
        type=Path,
        help="where inputs, worker state and logs go (default: a new temp dir, removed after "
        "a successful run)",
    )
    add(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the worker at each step (default 300)",
    )
    add(
        "--produce-only",
        action="store_true",
        help="replay into a running broker and worker (STREAMGUARD_BROKER, "
        "STREAMGUARD_TOPIC_PREFIX) without starting either",
    )
    args = parser.parse_args(argv)
    if args.events < MIN_EVENTS:
        parser.error(f"--events must be at least {MIN_EVENTS}")
    for name in ("port", "web_port"):
        if not 0 < getattr(args, name) < 65536:
            parser.error(f"--{name.replace('_', '-')} must be a TCP port")
    return Options(
        args.port,
        args.web_port,
        args.events,
        args.seed,
        args.keep_running,
        args.data_dir,
        args.timeout,
        args.produce_only,
    )


async def _wait_for_metrics(run: Run, timeout: float, console: Console) -> None:
    url = f"http://127.0.0.1:{run.web_port}/metrics"
    started = time.monotonic()
    while await asyncio.to_thread(_fetch, url) is None:
        _check_worker(run)
        if time.monotonic() - started > timeout:
            msg = f"the worker's {url} did not answer within {timeout:.0f} s"
            raise DemoError(msg, _log_tail(run.worker.log_path))
        await asyncio.sleep(0.5)
    console.step(f"worker: serving {url}")


@dataclass
class _Phase:
    """One batch of the scenario on its way through the worker."""

    run: Run
    outputs: Outputs
    timeout: float
    console: Console

    async def __call__(self, messages: tuple[Message, ...], what: str) -> None:
        """Send `messages` while counting the worker's decisions on them, until all have one."""
        ids = [m.event_id for m in messages if m.event_id is not None]
        anonymous = sum(1 for m in messages if m.event_id is None)
        total = len(messages)
        sent = [0]
        tally = self.outputs.tally
        # A phase may repeat ids of an earlier one (the replay and relabel acts): count only
        # the records that arrive from now on.
        since, anonymous_since = tally.counts(), tally.anonymous

        def decided() -> int:
            return tally.decided(ids, anonymous, since, anonymous_since)

        def show() -> None:
            self.console.progress(f"{what}: sent {sent[0]}/{total}, decided {decided()}/{total}")

        def sender_failed() -> None:
            if sender.done() and not sender.cancelled() and sender.exception() is not None:
                error = sender.exception()
                raise DemoError(f"producing to Kafka failed: {type(error).__name__}: {error}")

        run = self.run
        sender = asyncio.create_task(
            _send(run.bootstrap, run.prefix, messages, lambda n: sent.__setitem__(0, n))
        )
        checks = (self.outputs.check, lambda: _check_worker(run), sender_failed)
        try:
            ok = await _wait_until(
                lambda: sender.done() and decided() >= total, self.timeout, checks, show
            )
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
        if not ok:
            tail = _log_tail(run.worker.log_path) if run.worker is not None else []
            raise DemoError(
                f"only {decided()} of {total} {what} were decided within {self.timeout:.0f} s", tail
            )


async def _replay(run: Run, scenario: Scenario, options: Options, console: Console) -> Tally:
    """Produce the scenario in three phases and wait for the worker's decisions on each.

    Registry and settings go first and are waited for: they sit on other topics than the
    stream, and a search decided before the settings it depends on would be decided otherwise.
    """
    tally = Tally(states={a["agency_id"]: a["state"] for a in scenario.agencies})
    outputs = Outputs(run.bootstrap, run.prefix, tally)
    await outputs.start()
    phase = _Phase(run, outputs, options.timeout, console)
    try:
        if run.worker is not None:
            await _wait_for_metrics(run, options.timeout, console)
        await phase(scenario.registry, "agency records")
        console.step(
            f"worker: in its consumer group, registry loaded ({len(scenario.registry)} "
            "agency records decided)"
        )
        await phase(scenario.policy, "signed sharing settings")
        applied = sum(
            1
            for m in scenario.policy
            if tally.outcomes.get(m.event_id or "", ("",))[0] == "applied"
        )
        console.step(f"policy: {applied} of {len(scenario.policy)} signed settings applied")
        started = time.monotonic()
        await phase(scenario.stream, "stream")
        rate = len(scenario.stream) / max(time.monotonic() - started, 1e-3)
        console.step(
            f"stream: {len(scenario.stream)} events sent and decided "
            f"({rate:.0f} events/s end to end)"
        )
    finally:
        await outputs.stop()
    return tally


async def _verify(run: Run, timeout: float) -> tuple[VerifyReport | None, str | None]:
    from streamguard.trail.verify import read_audit, verify_records

    try:
        records = await read_audit(run.bootstrap, run.prefix + "audit", timeout)
    except StreamguardError as exc:
        return None, str(exc)
    return verify_records(records), None


def _settings_from_env() -> tuple[str, str]:
    from streamguard.settings import WorkerSettings

    settings = WorkerSettings.from_env()
    return settings.bootstrap_servers, settings.topic_prefix


def _run(options: Options, run: Run, console: Console) -> int:
    now = time.time()
    scenario = build_scenario(now, options.events, options.seed)
    from streamguard.core.statutes import load_statutes

    expected = Expected.of(decide_scenario(scenario, load_statutes()))
    console.lines(
        [
            "StreamGuard demo: ALPR traffic modelled on the Ventura County audit. Out-of-state and",
            "federal agencies search a California sheriff's data, under 1% of them for "
            "immigration,",
            "and the vendor's National Lookup is switched back on without a signature.",
        ]
    )
    console.step(
        f"scenario: {len(scenario.agencies)} agencies, {len(scenario.policy)} signed settings, "
        f"{len(scenario.stream)} events over the last 100 minutes (seed {options.seed})"
    )
    if options.produce_only:
        run.bootstrap, run.prefix = _settings_from_env()
    else:
        _check_web_port(run.web_port)  # before anything starts: nothing to undo on failure
        _ensure_broker(run, console)
        agencies, keys = _write_inputs(run, scenario)
        console.step(f"inputs: wrote {agencies.name} and {keys.name} to {run.data_dir}")
        run.prefix = (
            f"demo-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{secrets.token_hex(2)}."
        )
        from streamguard.worker.topics import contract_topics, create_topics

        asyncio.run(create_topics(run.bootstrap, contract_topics(run.prefix), _PARTITIONS))
        console.step(f"topics: created under prefix {run.prefix} ({_PARTITIONS} partitions)")
        _start_worker(run, agencies, keys, console)

    async def replay_and_verify() -> tuple[Tally, VerifyReport | None, str | None]:
        tally = await _replay(run, scenario, options, console)
        report, error = await _verify(run, min(options.timeout, 120.0))
        return tally, report, error

    tally, report, error = asyncio.run(replay_and_verify())
    ours = run.worker is not None
    url = f"http://localhost:{run.web_port}/metrics" if ours else None
    page = _fetch(f"http://127.0.0.1:{run.web_port}/metrics") if ours else None
    verdict = Verdict(
        flip_id=scenario.flip_id,
        replay_id=scenario.replay_id,
        relabel_id=scenario.relabel_id,
        expected=expected,
        audit=report,
        audit_error=error,
        metrics_url=url,
        metrics_events=metrics_events_total(page) if page else None,
        kept_running=False,
    )
    problems = failures(tally, verdict)
    # `_cleanup` leaves the worker up only for a run that passed with --keep-running.
    verdict = replace(verdict, kept_running=options.keep_running and not problems)
    console.lines(render_summary(tally, verdict))
    if problems:
        console.error("; ".join(problems))
        return 1
    return 0


def _cleanup(run: Run, options: Options, console: Console, ok: bool) -> None:
    from streamguard.local.broker import stop_broker

    if options.keep_running and ok:
        lines = ["", "Left running (--keep-running):"]
        if run.worker is not None and run.worker.alive():
            pid = run.worker.proc.pid
            lines.append(
                f"  worker pid {pid}: stop with `kill {pid}`; "
                f"metrics http://localhost:{run.web_port}/metrics"
            )
        if run.started_broker:
            lines.append(
                f"  Kafka on {run.bootstrap}: stop with `streamguard kafka stop --port {run.port}`"
            )
        lines.append(f"  files in {run.data_dir}")
        console.lines(lines)
        return
    if run.worker is not None and run.worker.proc is not None:
        was_running = run.worker.alive()
        # SIGTERM, a bounded wait for faust's graceful shutdown, then SIGKILL.
        code = run.worker.stop(timeout=30.0)
        console.step(f"worker: {'stopped' if was_running else 'had exited'} (exit code {code})")
    if run.started_broker:
        stop_broker(run.port)
        console.step(f"Kafka: stopped the broker on {run.bootstrap}")
    if run.temp_dir and ok:
        shutil.rmtree(run.data_dir, ignore_errors=True)
    elif run.worker is not None:
        console.step(f"files kept in {run.data_dir}")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the demo the way Ctrl-C does, so that `finally` stops what it started."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _quiet_client_logs() -> Iterator[None]:
    """Keep aiokafka's retry chatter (a new topic has no leader for a moment) off the terminal;
    a failure that matters reaches the demo as an exception and is reported in one line."""
    client = logging.getLogger("aiokafka")
    previous = client.level
    client.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        client.setLevel(previous)


def main_demo(argv: list[str]) -> int:
    """Entry point of `streamguard demo`; returns the exit code."""
    options = _parse(argv)
    console = Console(sys.stdout, sys.stderr)
    if options.data_dir is not None:
        data_dir, temp = options.data_dir.expanduser().resolve(), False
    else:
        data_dir, temp = Path(tempfile.mkdtemp(prefix="streamguard-demo-")), True
    run = Run(options.port, options.web_port, data_dir, temp)
    ok = False
    with _sigterm_as_interrupt(), _quiet_client_logs():
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            code = _run(options, run, console)
            ok = code == 0
            return code
        except DemoError as exc:
            console.error(str(exc), exc.detail)
            return 1
        except StreamguardError as exc:
            console.error(str(exc))
            return 1
        except OSError as exc:
            console.error(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
            return 1
        except KeyboardInterrupt:
            console.error("interrupted; stopping what the demo started")
            return 130
        finally:
            _cleanup(run, options, console, ok)


if __name__ == "__main__":
    sys.exit(main_demo(sys.argv[1:]))
