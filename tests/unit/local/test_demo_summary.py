"""The demo's pure half: counting the worker's output records and the summary printed from them;
and what it says when the web port is taken or the worker dies."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamguard import serde
from streamguard.core.models import Decision
from streamguard.core.registry import load_agencies_csv
from streamguard.core.statutes import load_statutes
from streamguard.local.demo import (
    Console,
    DemoError,
    Expected,
    Tally,
    Verdict,
    _check_web_port,
    agencies_csv,
    failures,
    metrics_events_total,
    render_summary,
    succeeded,
    with_port_hint,
    worker_exit_cause,
)
from streamguard.local.scenario import Message, Scenario, build_scenario, decide_scenario
from streamguard.stream.outputs import (
    audit_fields,
    decision_id,
    quarantine_kind,
    raw_original,
    route,
)
from streamguard.trail.chain import ChainBreak, VerifyReport
from tests.helpers import NOW as _NOW

assert _NOW is not None
NOW: float = _NOW
STATES = {"ca-ventura-county-so": "CA", "ca-oxnard-pd": "CA", "tx-houston-pd": "TX", "us-hsi": "US"}


def audit(
    event_id: str | None, kind: str, outcome: str, *codes: str, **extra: Any
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "kind": kind,
        "outcome": outcome,
        "codes": list(codes),
        "decision_id": f"d-{event_id}-{extra.pop('n', 0)}",
        **extra,
    }


def verdict(expected: Expected, flip_id: str = "flip", **changes: Any) -> Verdict:
    values: dict[str, Any] = {
        "flip_id": flip_id,
        "replay_id": "replay",
        "relabel_id": "relabel",
        "expected": expected,
        "audit": VerifyReport(chains=3, records=10, duplicates=0, broken=None),
        "audit_error": None,
        "metrics_url": "http://localhost:6066/metrics",
        "metrics_events": 10.0,
        "kept_running": False,
    }
    values.update(changes)
    return Verdict(**values)


def acts(scenario: Scenario) -> dict[str, str]:
    """The ids of the replay and relabel acts, for `verdict`."""
    return {"replay_id": scenario.replay_id, "relabel_id": scenario.relabel_id}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(NOW, 400, seed=11)


def worker_like_outputs(scenario: Scenario) -> Iterator[tuple[str, dict[str, Any]]]:
    """What a worker writes for the scenario, built from the pure engine with the worker's own
    record builders (no Kafka): (role, value) per output message."""
    decided: Iterator[tuple[Message, Decision]] = decide_scenario(scenario, load_statutes())
    for n, (message, decision) in enumerate(decided):
        try:
            original: Any = serde.loads(message.value)
        except ValueError:
            original = raw_original(message.value)
        event_id = decision.event_id
        # By position, as the worker names replayed control records (their ids repeat).
        did = decision_id(quarantine_kind(decision), f"{event_id}@{n}") if event_id else f"raw-{n}"
        at = "2025-03-01T12:00:00Z"
        yield "audit", audit_fields(original, decision, did, at, None)
        for out in route(original, decision, did, at, fallback_key=did):
            yield out.role, out.value


def test_a_redelivered_record_counts_once() -> None:
    """At-least-once delivery repeats records; counts follow decision and alert ids."""
    tally = Tally(states=STATES)
    record = audit("s1", "search_request", "denied", "NOT_SHARED", "OUT_OF_STATE_RECIPIENT")
    alert = {"alert_id": "a1", "kind": "policy_rejected"}
    for _ in range(2):
        tally.add("audit", record)
        tally.add("alerts", alert)
        tally.add("quarantine", {"decision_id": "d-s1-0"})
    assert tally.decisions == {("search_request", "denied"): 1}
    assert tally.codes == {"NOT_SHARED": 1, "OUT_OF_STATE_RECIPIENT": 1}
    assert tally.alerts == {"policy_rejected": 1}
    assert tally.outputs == {"quarantine": 1}
    assert tally.audited == 1


def test_records_without_ids_or_objects_are_not_counted_as_decisions() -> None:
    tally = Tally()
    tally.add("audit", None)
    tally.add("audit", ["not", "an", "object"])
    tally.add("approved", {"no": "decision id"})
    assert tally.audited == 0 and not tally.outputs
    tally.add("audit", audit(None, "raw", "malformed", "MALFORMED_EVENT"))
    assert (tally.anonymous, tally.audited) == (1, 1)


def test_decided_counts_expected_ids_and_caps_anonymous_ones() -> None:
    tally = Tally()
    for i in range(3):
        tally.add("audit", audit(None, "raw", "malformed", "MALFORMED_EVENT", n=i))
    tally.add("audit", audit("s1", "search_request", "approved"))
    tally.add("audit", audit("other-run", "search_request", "approved"))
    assert tally.decided(["s1", "s2"], expected_anonymous=2) == 3


def test_foreign_searches_on_california_and_whether_they_reached_it() -> None:
    tally = Tally(states=STATES)
    for event_id, requester, allowed, denied in (
        ("s1", "tx-houston-pd", [], ["ca-ventura-county-so"]),
        ("s2", "us-hsi", ["ca-oxnard-pd"], ["ca-ventura-county-so"]),
        ("s3", "ca-oxnard-pd", ["ca-ventura-county-so"], []),
        ("s4", "tx-houston-pd", ["tx-houston-pd"], []),
    ):
        record = audit(
            event_id,
            "search_request",
            "partial",
            requester=requester,
            allowed=allowed,
            denied=denied,
        )
        tally.add("audit", record)
    assert (tally.foreign_on_ca, tally.foreign_reached_ca) == (2, 1)


def test_worker_outputs_for_the_scenario_match_the_engine(scenario: Scenario) -> None:
    """Records shaped by the worker's own builders tally to full agreement and a pass."""
    tally = Tally(states={a["agency_id"]: a["state"] for a in scenario.agencies})
    for role, value in worker_like_outputs(scenario):
        tally.add(role, value)
    expected = Expected.of(decide_scenario(scenario, load_statutes()))
    assert expected.total == len(scenario.messages)
    assert expected.disagreements(tally) == []
    assert tally.decided(expected.ids, expected.anonymous) == expected.total
    done = verdict(expected, scenario.flip_id, **acts(scenario))
    assert succeeded(tally, done)
    text = "\n".join(render_summary(tally, done))
    assert f"same outcome for {expected.total} of {expected.total} inputs" in text
    assert "REJECTED (UNSIGNED_CHANGE, STATUTE_FORBIDS_SETTING), never took effect" in text
    assert "Replayed signed change:       REJECTED (REPLAYED_CHANGE), never took effect" in text
    assert "Registry relabel (Houston):   REJECTED (KEY_NOT_AUTHORIZED), never took effect" in text
    assert "0 reached California data" in text
    assert "Audit chains:                 verified (3 chains, 10 records)" in text
    for outcome in ("approved", "partial", "denied", "shared", "applied", "rejected"):
        assert f" {outcome} " in text, outcome
    plates = {
        serde.loads(m.value).get("plate")
        for m in scenario.stream
        if m.topic == "reads" and m.event_id
    } - {None}
    assert plates and not any(p in text for p in plates)  # plates never reach the terminal


def test_a_changed_decision_a_lost_flip_or_a_broken_chain_fail_the_run(scenario: Scenario) -> None:
    tally = Tally()
    for role, value in worker_like_outputs(scenario):
        tally.add(role, value)
    expected = Expected.of(decide_scenario(scenario, load_statutes()))
    assert failures(tally, verdict(expected, "no-such-change", **acts(scenario))) == [
        "the National Lookup flip was not rejected"
    ]
    broken = VerifyReport(3, 10, 0, ChainBreak("searches-0", 4, "prev_hash does not match"))
    assert failures(tally, verdict(expected, scenario.flip_id, **acts(scenario), audit=broken)) == [
        "the audit chains did not verify"
    ]
    assert "BROKEN: chain 'searches-0' breaks at seq 4" in "\n".join(
        render_summary(tally, verdict(expected, scenario.flip_id, **acts(scenario), audit=broken))
    )
    unverified = verdict(
        expected, scenario.flip_id, **acts(scenario), audit=None, audit_error="timed out"
    )
    assert not succeeded(tally, unverified)
    assert "NOT VERIFIED (timed out)" in "\n".join(render_summary(tally, unverified))
    some_id = next(iter(expected.outcomes))
    tally.history[some_id] = ["something else"]
    assert failures(tally, verdict(expected, scenario.flip_id, **acts(scenario))) == [
        "1 inputs decided otherwise than the offline engine, or not at all"
    ]
    assert "(1 differ or are missing)" in "\n".join(
        render_summary(tally, verdict(expected, scenario.flip_id, **acts(scenario)))
    )


def test_summary_lists_decisions_top_codes_and_alerts() -> None:
    tally = Tally()
    tally.add("audit", audit("s1", "search_request", "denied", "NOT_SHARED", "VAGUE_PURPOSE"))
    tally.add("audit", audit("s2", "search_request", "approved"))
    tally.add("audit", audit("r1", "plate_read", "shared"))
    tally.add("alerts", {"alert_id": "a1", "kind": "prohibited_purpose"})
    tally.add("alerts", {"alert_id": "a2", "kind": "prohibited_purpose"})
    lines = render_summary(tally, verdict(Expected({}, 0)))
    assert "  search_request       2   approved     1  denied     1" in lines
    assert "  plate_read           1   shared     1" in lines
    assert any(line.split() == ["NOT_SHARED", "1"] for line in lines)
    assert "Alerts (2)" in lines
    assert any(line.split()[:2] == ["prohibited_purpose", "2"] for line in lines)
    assert any("NO DECISION SEEN" in line for line in lines)
    metrics = [line for line in lines if line.startswith("Metrics:")]
    assert metrics == [
        "Metrics:                      http://localhost:6066/metrics "
        "(streamguard_events_total 10); no longer served once the demo ends "
        "(it stops the worker; --keep-running keeps it)"
    ]


def test_summary_says_whether_the_metrics_url_outlives_the_demo() -> None:
    """Kept (--keep-running and a pass), stopped, or not the demo's worker (--produce-only)."""

    def metrics_line(**changes: Any) -> str:
        lines = render_summary(Tally(), verdict(Expected({}, 0), **changes))
        return next(line for line in lines if line.startswith("Metrics:")).split(None, 1)[1]

    assert metrics_line(kept_running=True) == (
        "http://localhost:6066/metrics (streamguard_events_total 10); "
        "still served after the demo ends (the worker is left running)"
    )
    assert metrics_line(metrics_events=None) == (
        "http://localhost:6066/metrics; no longer served once the demo ends "
        "(it stops the worker; --keep-running keeps it)"
    )
    assert metrics_line(metrics_url=None, metrics_events=None) == (
        "not read (--produce-only: the worker is not the demo's)"
    )


def test_agencies_csv_loads_back_as_the_registry(tmp_path: Path, scenario: Scenario) -> None:
    path = tmp_path / "agencies.csv"
    path.write_text(agencies_csv(scenario.agencies), encoding="utf-8")
    loaded = load_agencies_csv(path)
    assert [(a.agency_id, a.name, a.state, a.kind) for a in loaded] == [
        (a["agency_id"], a["name"], a["state"], a["kind"]) for a in scenario.agencies
    ]


def test_events_total_is_summed_from_the_metrics_page() -> None:
    page = (
        "# HELP streamguard_events_total events decided\n"
        'streamguard_events_total{kind="search_request",outcome="approved"} 7.0\n'
        'streamguard_events_total{kind="plate_read",outcome="shared"} 3.0\n'
        'streamguard_events_created{kind="plate_read",outcome="shared"} 1.7e9\n'
    )
    assert metrics_events_total(page) == 10.0
    assert metrics_events_total("# nothing yet\n") is None


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_redraws_progress_on_a_terminal_and_throttles_it_in_logs() -> None:
    tty = _Tty()
    console = Console(tty)
    console.progress("stream: sent 1/2")
    console.progress("stream: sent 2/2")
    console.step("stream: done")
    shown = tty.getvalue()
    assert shown.count("\n") == 1  # progress redrawn in place, replaced by the step line
    assert shown.rstrip("\n").rsplit("\r", 1)[1].endswith("stream: done\x1b[K")

    log = io.StringIO()
    console = Console(log)
    for i in range(50):
        console.progress(f"stream: sent {i}/50")
    console.step("stream: done")
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in log.getvalue() and "\x1b" not in log.getvalue()


# --- the web port and a dead worker ----------------------------------------------------------

# The log of a worker whose web port was taken (`python -m streamguard.worker`, faust 0.15.3),
# trimmed in the middle of the traceback and of the shutdown that follows it.
BIND_ERROR = "error while attempting to bind on address ('127.0.0.1', 6402): address already in use"
SHUTDOWN = (
    *("Worker", "_App", "TableManager", "Fetcher", "Recovery", "Conductor", "AgentManager"),
    *("ReplyConsumer", "LeaderAssignor", "Web", "Server", "CacheBackend", "Producer"),
    *("ProducerBuffer", "StreamguardMonitor"),
)
PORT_TAKEN_LOG = "\n".join(
    (
        "no STREAMGUARD_KEYS: every policy change will be rejected",
        "[2026-12-01 09:35:17,987] [19895] [INFO] [^--Web]: Starting... ",
        "[2026-12-01 09:35:17,993] [19895] [INFO] [^---Server]: Starting... ",
        f'[2026-12-01 09:35:17,994] [19895] [ERROR] [^Worker]: Error: OSError(98, "{BIND_ERROR}") ',
        "Traceback (most recent call last):",
        '  File ".../mode/worker.py", line 264, in execute_from_commandline',
        "    self.loop.run_until_complete(self._starting_fut)",
        '  File ".../aiohttp/web_runner.py", line 138, in start',
        "    self._server = await loop.create_server(",
        "                   ^^^^^^^^^^^^^^^^^^^^^^^^^",
        '  File ".../asyncio/base_events.py", line 1525, in create_server',
        "    raise OSError(err.errno, 'error while attempting '",
        f"OSError: [Errno 98] {BIND_ERROR}",
        *(
            f"[2026-12-01 09:35:18,0{n:02d}] [19895] [INFO] [^--{service}]: Stopping... "
            for n, service in enumerate(SHUTDOWN)
        ),
        "[2026-12-01 09:35:19,025] [19895] [INFO] [^Worker]: Closing event loop ",
    )
)


def test_a_dead_workers_cause_is_the_exception_not_the_shutdown_that_follows() -> None:
    assert worker_exit_cause(PORT_TAKEN_LOG) == f"OSError: [Errno 98] {BIND_ERROR}"


def test_the_workers_own_error_line_and_error_records_are_causes_too() -> None:
    settings = "streamguard worker: error: STREAMGUARD_PARTITIONS must be a positive integer\n"
    assert worker_exit_cause("starting\n" + settings) == (
        "STREAMGUARD_PARTITIONS must be a positive integer"
    )
    record = "[2026-12-01 09:35:17,994] [7] [ERROR] [^Worker]: Error: KafkaConnectionError()\n"
    assert worker_exit_cause(
        record + "[2026-12-01 09:35:18,011] [7] [INFO] [^Worker]: Stopping...\n"
    ) == ("[^Worker]: Error: KafkaConnectionError()")
    assert (
        worker_exit_cause("[2026-12-01 09:35:18,011] [7] [INFO] [^Worker]: Stopping...\n") is None
    )
    assert worker_exit_cause("") is None


def test_the_workers_one_line_is_the_cause_and_a_taken_port_says_what_to_do() -> None:
    line = "web port 6402 on 127.0.0.1 is already in use (STREAMGUARD_WEB_PORT)"
    log = "\n".join((*PORT_TAKEN_LOG.splitlines()[:3], f"streamguard worker: error: {line}"))
    cause = worker_exit_cause(log)
    assert cause == line
    assert with_port_hint(cause, 6402) == (
        f"{line}; port 6402 was taken after the demo checked it: choose another --web-port"
    )
    assert with_port_hint(f"OSError: [Errno 98] {BIND_ERROR}", 6402).endswith("--web-port")
    refused = "no Kafka broker of kafka://localhost:1 (STREAMGUARD_BROKER) answered within 30 s"
    assert with_port_hint(refused, 6402) == refused


def _time_wait_port() -> int:
    """A port whose last connection the server side closed: it stays in TIME_WAIT for 60 s,
    as the worker's port does after the demo's last /metrics read."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port: int = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the server closes first, like the worker's HTTP server after a response
    assert client.recv(1) == b""
    client.close()
    listener.close()
    return port


def test_a_port_in_time_wait_is_free_for_the_next_demo() -> None:
    port = _time_wait_port()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # a probe without SO_REUSEADDR calls it taken
    _check_web_port(port)


def test_a_port_someone_listens_on_is_reported_with_the_way_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(DemoError, match=f"web port {port} is already in use.*--web-port"):
            _check_web_port(port)
