"""A real Prometheus scraping a real StreamGuard worker and a real camera ingest process, both
on a real Kafka broker.

The end-to-end promise is "the first unlawful search is on a dashboard within seconds and an
alert fires within minutes". This test starts the Debian `prometheus` binary on a free port with
the repository's alert rules and scrape jobs, runs a worker and `streamguard ingest serve`
against the test broker, produces lawful and unlawful traffic, posts camera bodies (accepted,
refused for their credential, quarantined), and then asks Prometheus every query of every
dashboard panel (with each dashboard's own variables substituted, range queries for
time-series panels and instant queries for stats, as Grafana sends them). Every query must
return data; the compliance panels must show the unlawful traffic, the camera ingest panels
the posts, and the compliance alerts must be firing.

The promtool checks of prometheus/ run here too: they need the binary, not a broker.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamguard import serde
from streamguard.local.testing import (
    Deployment,
    TestRegistry,
    WorkerProcess,
    free_port,
    plate_read,
    policy_change,
    scrape,
    search_request,
    wait_for,
)
from tests.helpers import Deploy, poll, unavailable
from tests.unit.ingest import samples

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "prometheus"
DASHBOARD_DIR = ROOT / "dashboards" / "json"
# The scrape jobs of prometheus/prometheus.yml this test keeps (their targets made local).
WORKER_JOB = "streamguard"
INGEST_JOB = "streamguard-ingest"
PORT_RANGE = range(9400, 9500)  # the ports this project's observability tests may use
REGISTRY = TestRegistry(
    b"integration-secret-k1",
    ["ca-ventura-county-so", "ca-oxnard-pd", "tx-houston-pd", "tx-dallas-pd", "us-ice-ero"],
)
KEYS = REGISTRY.keys
# Bounded waits (seconds): each is a deadline on polling, never an assertion about speed.
PARTITIONS = 4
PROCESS_START_S = 90.0
DATA_WAIT_S = 180.0
GAUGE_WAIT_S = 30.0


def binary(name: str) -> str:
    """Path of a Prometheus binary: a failure under CI, a skip on a laptop without it."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"`{name}`", "not on PATH (apt-get install prometheus)")
    return path


# --- promtool ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts.test.yml"),
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool_accepts_the_config_rules_and_rule_tests(args: tuple[str, ...]) -> None:
    """promtool validates prometheus.yml and alerts.yml and passes every alert unit test."""
    result = subprocess.run(
        [binary("promtool"), *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


# --- processes --------------------------------------------------------------------------------


@contextlib.contextmanager
def running(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a process for the duration of the block; stop it (TERM, then KILL) afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def http_get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body: bytes = response.read()
            return body
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@dataclass
class Prometheus:
    url: str

    def api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params)
        body = http_get(f"{self.url}/api/v1/{path}?{query}")
        assert body is not None, f"Prometheus did not answer /api/v1/{path}"
        data = json.loads(body)
        assert data["status"] == "success", data
        return data["data"]

    def instant(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        result: list[dict[str, Any]] = self.api("query", **params)["result"]
        return result

    def range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api(
            "query_range", query=expr, start=start, end=end, step=step
        )["result"]
        return result

    def scalar(self, expr: str) -> float:
        result = self.instant(expr)
        return float(result[0]["value"][1]) if result else 0.0


# --- traffic ----------------------------------------------------------------------------------


def now_ts() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def search(requester: str, networks: list[str], reason: str) -> dict[str, Any]:
    now = now_ts()
    return search_request(
        requester, networks=networks, reason=reason, ts=now, query_window=(now, now)
    )


def traffic() -> list[tuple[str, str, dict[str, Any] | bytes]]:
    """(topic role, key, value): lawful and unlawful searches, reads, policy changes, garbage."""
    out: list[tuple[str, str, dict[str, Any] | bytes]] = []
    for _ in range(3):
        # Immigration enforcement on California data from Texas: denied, out of state.
        out.append(
            (
                "searches",
                "tx-houston-pd",
                search("tx-houston-pd", ["ca-ventura-county-so", "tx-dallas-pd"], "ICE warrant"),
            )
        )
        # A federal agency reaching for California data: denied, federal recipient.
        out.append(
            (
                "searches",
                "us-ice-ero",
                search("us-ice-ero", ["ca-ventura-county-so"], "assist ERO with removal"),
            )
        )
        # An agency searching its own network for a burglary: approved.
        out.append(
            (
                "searches",
                "tx-houston-pd",
                search("tx-houston-pd", ["tx-houston-pd"], "burglary 459 PC case 25-000123"),
            )
        )
        out.append(
            (
                "reads",
                "ca-ventura-county-so",
                plate_read("ca-ventura-county-so", ["ca-oxnard-pd"], ts=now_ts()),
            )
        )
    # California law forbids national lookup: rejected with STATUTE_FORBIDS_SETTING.
    out.append(
        (
            "policy",
            "ca-ventura-county-so",
            policy_change("ca-ventura-county-so", "national_lookup", True, keys=KEYS, ts=now_ts()),
        )
    )
    # A lawful change: applied.
    out.append(
        (
            "policy",
            "tx-houston-pd",
            policy_change("tx-houston-pd", "statewide_lookup", True, keys=KEYS, ts=now_ts()),
        )
    )
    out.append(("searches", "x", b"not json at all"))
    return out


# --- camera posts -----------------------------------------------------------------------------


@contextlib.contextmanager
def ingest_process(
    deployment: Deployment, tmp: Path, port: int, metrics_port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """`streamguard ingest serve` on the deployment's topics, the test owner's camera shared
    with Oxnard; running (its /healthz answers) for the duration of the block."""
    owners = samples.write_owners_file(tmp / "owners.json")
    data = json.loads(owners.read_text(encoding="utf-8"))
    data[samples.OWNER_ID]["share_to"] = ["ca-oxnard-pd"]
    owners.write_text(json.dumps(data), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")} | {
        "STREAMGUARD_BROKER": f"kafka://{deployment.bootstrap}",
        "STREAMGUARD_TOPIC_PREFIX": deployment.prefix,
        "STREAMGUARD_INGEST_OWNERS": str(owners),
        "STREAMGUARD_INGEST_PORT": str(port),
        "STREAMGUARD_INGEST_METRICS_BIND": "127.0.0.1",
        "STREAMGUARD_INGEST_METRICS_PORT": str(metrics_port),
        "STREAMGUARD_INGEST_LOG_LEVEL": "warning",
    }
    log = tmp / "ingest.log"
    argv = [sys.executable, "-m", "streamguard", "ingest", "serve"]
    with running(argv, log, env) as process:

        def healthy() -> bool:
            assert process.poll() is None, f"ingest exited:\n{tail(log)}"
            return http_get(f"http://127.0.0.1:{metrics_port}/healthz") is not None

        poll("the ingest process's /healthz", healthy, PROCESS_START_S)
        yield process


def post(port: int, name: str, body: dict[str, Any] | bytes, token: str | None) -> int:
    """POST one vendor body to the camera endpoint; the answer's status."""
    data = body if isinstance(body, bytes) else serde.dumps(body)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/reads/{name}", data=data, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            status: int = reply.status
            return status
    except urllib.error.HTTPError as refused:
        return refused.code


def camera_posts() -> list[tuple[str, dict[str, Any] | bytes, str | None, int]]:
    """(format, body, token, expected status): one fresh read of each vendor (camera time now,
    so the read lag is small), a body that is not JSON, one that cannot be mapped, a wrong
    token and no credential at all."""
    now_ms = int(time.time() * 1000)
    iso_now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now_ms / 1000))
    token = samples.TOKEN
    return [
        (
            "openalpr",
            samples.openalpr_group(
                epoch_start=now_ms, best_uuid=f"{samples.AGENT_UID}-1234567-{now_ms}"
            ),
            token,
            202,
        ),
        ("axis", samples.axis_event(capture_timestamp=str(now_ms), carID=str(now_ms)), token, 202),
        (
            "genetec",
            samples.genetec_visits(samples.genetec_record(visit_id=now_ms, start_date=iso_now)),
            token,
            202,
        ),
        ("openalpr", b"not json at all", token, 400),
        ("openalpr", samples.openalpr_group(best_plate_number="8AB*123"), token, 422),
        ("axis", samples.axis_event(), "not-a-camera-token", 401),
        ("genetec", samples.genetec_visits(), None, 401),
    ]


# --- the end-to-end test ----------------------------------------------------------------------


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref: str
    expr: str
    instant: bool


def panel_queries(variables: dict[str, dict[str, str]]) -> list[PanelQuery]:
    """Every target of every dashboard, with that dashboard's `$name` variables replaced
    (longest name first)."""
    out = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        values = variables[dashboard["uid"]]
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for name in sorted(values, key=len, reverse=True):
                    expr = expr.replace(f"${name}", values[name])
                assert "$" not in expr, (path.name, panel["title"], expr)
                out.append(
                    PanelQuery(
                        dashboard["uid"],
                        panel["title"],
                        target["refId"],
                        expr,
                        bool(target.get("instant")),
                    )
                )
    return out


def variable_values(prometheus: Prometheus) -> dict[str, dict[str, str]]:
    """Per dashboard uid, a value for each of its template variables, read the way Grafana
    reads it (the camera ingest dashboard's `$job` is not the worker dashboards')."""
    values: dict[str, dict[str, str]] = {}
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        values[dashboard["uid"]] = {}
        for var in dashboard["templating"]["list"]:
            if var["type"] != "query":
                continue  # the data source variable: this test queries one Prometheus
            metric, label = var["definition"].removeprefix("label_values(").rstrip(")").split(", ")
            found = prometheus.api(f"label/{label}/values", **{"match[]": metric})
            assert found, f"template variable {var['name']}: no {label} values on {metric}"
            # Prefer the requester the traffic made busiest, for a meaningful drill-down.
            chosen = "tx-houston-pd" if "tx-houston-pd" in found else found[0]
            values[dashboard["uid"]][var["name"]] = chosen
    return values


def write_prometheus_config(tmp: Path, worker_port: int, ingest_metrics_port: int) -> Path:
    """prometheus.yml of the repo with a 1 s scrape and only the worker and ingest jobs, their
    targets on this machine (the job names and paths stay the repository's)."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    # A short interval keeps the test's waits short; the rules are the repository's own.
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_DIR / "alerts.yml")]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    local = {WORKER_JOB: worker_port, INGEST_JOB: ingest_metrics_port}
    config["scrape_configs"] = [
        jobs[name] | {"static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
        for name, port in local.items()
    ]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_every_dashboard_panel_shows_real_worker_data_in_real_prometheus(
    deploy: Deploy, tmp_path: Path
) -> None:
    """Real broker -> real worker and ingest process -> real Prometheus: every panel query
    returns data."""
    prometheus_bin = binary("prometheus")
    worker_port = free_port(PORT_RANGE)
    deployment = deploy("sg-prom-", partitions=PARTITIONS, registry=REGISTRY)
    # Stopped by `deploy` at the end, after Prometheus.
    worker = deployment.add_worker(
        worker_port,
        store="memory://",
        plate_salt="integration-test-salt-0123456789",
        # One immigration search per hour is enough for the worker's own alert to fire.
        alert_immigration_per_hour="1",
    )
    prometheus_log = tmp_path / "prometheus.log"

    def worker_metrics() -> str:
        assert worker.alive(), f"worker exited:\n{tail(worker.log_path)}"
        return scrape(worker_port)

    poll("the worker's /metrics", worker_metrics, PROCESS_START_S)

    # Chosen one after the other: free_port() names the first free port until something binds.
    camera_port = free_port(PORT_RANGE)
    ingest_metrics_port = free_port(p for p in PORT_RANGE if p != camera_port)
    with contextlib.ExitStack() as stack:
        stack.enter_context(ingest_process(deployment, tmp_path, camera_port, ingest_metrics_port))
        prom_port = free_port(PORT_RANGE)
        config = write_prometheus_config(tmp_path, worker_port, ingest_metrics_port)
        prometheus_argv = [
            prometheus_bin,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ]
        prometheus_process = stack.enter_context(running(prometheus_argv, prometheus_log))
        check_dashboards_and_alerts(
            Prometheus(f"http://127.0.0.1:{prom_port}"),
            prometheus_process,
            prometheus_log,
            deployment,
            worker,
            camera_port,
        )


def check_dashboards_and_alerts(
    prometheus: Prometheus,
    prometheus_process: subprocess.Popen[bytes],
    prometheus_log: Path,
    deployment: Deployment,
    worker: WorkerProcess,
    camera_port: int,
) -> None:
    """Traffic and camera posts in, then every panel, the numbers they show and the alerts."""

    def scraped_twice() -> float:
        assert prometheus_process.poll() is None, tail(prometheus_log)
        if http_get(f"{prometheus.url}/-/ready") is None:
            return 0.0
        # Two scrapes of the zero state of both processes, so increase() sees the traffic
        # as an increase.
        return prometheus.scalar(
            f'sum(count_over_time(up{{job="{WORKER_JOB}"}}[1m])) >= 2 '
            f'and on() sum(up{{job="{WORKER_JOB}"}}) == 1 '
            f'and on() sum(count_over_time(up{{job="{INGEST_JOB}"}}[1m])) >= 2 '
            f'and on() sum(up{{job="{INGEST_JOB}"}}) == 1'
        )

    poll("two successful scrapes of the worker and ingest", scraped_twice, PROCESS_START_S)
    start = time.time()
    deployment.send_mixed(traffic(), acks="all")
    answered = [
        (name, post(camera_port, name, body, token), status)
        for name, body, token, status in camera_posts()
    ]
    assert [got for _n, got, _s in answered] == [want for _n, _g, want in answered], answered

    def traffic_decided() -> float:
        assert worker.alive(), f"worker exited:\n{tail(worker.log_path)}"
        return prometheus.scalar(
            'sum(streamguard_events_total{kind="search_request",outcome="denied"}) >= 6 '
            'and on() sum(streamguard_policy_changes_total{result="rejected"}) >= 1 '
            "and on() sum(streamguard_consumer_lag_messages) >= 0"
        )

    poll("the decisions to reach Prometheus", traffic_decided, DATA_WAIT_S)

    def posts_scraped() -> float:
        return prometheus.scalar(
            f'sum(streamguard_ingest_reads_total{{job="{INGEST_JOB}"}}) >= 3 '
            "and on() sum(streamguard_ingest_auth_failures_total) >= 2 "
            "and on() sum(streamguard_ingest_quarantined_total) >= 2"
        )

    poll("the camera posts to reach Prometheus", posts_scraped, DATA_WAIT_S)

    def empty_panels() -> list[str]:
        grafana = {
            "__range": f"{max(int(time.time() - start) + 60, 60)}s",
            "__rate_interval": "15s",
            "__interval": "2s",
        }
        variables = {uid: grafana | own for uid, own in variable_values(prometheus).items()}
        end = time.time()
        empty = []
        for query in panel_queries(variables):
            if query.instant:
                result = prometheus.instant(query.expr, at=end)
                values = [series["value"][1] for series in result]
            else:
                result = prometheus.range(query.expr, start - 60, end, step=2)
                values = [value for series in result for _ts, value in series["values"]]
            # NaN is what Grafana draws as nothing: a quantile of buckets that never moved.
            if not any(value != "NaN" for value in values):
                empty.append(f"{query.dashboard} / {query.panel} [{query.ref}]: {query.expr}")
        return empty

    # Rates need two samples after the traffic: wait (bounded) until every panel shows a
    # number.
    empty = wait_for(empty_panels, DATA_WAIT_S, until=lambda e: not e, interval=2.0)
    assert empty == [], "panels without data:\n" + "\n".join(empty)

    # The unlawful traffic is visible, not merely present as zeros.
    violations = 'streamguard_violations_total{code="%s"}'
    assert prometheus.scalar(f"sum({violations % 'PROHIBITED_PURPOSE_IMMIGRATION'})") >= 3
    assert prometheus.scalar(f"sum({violations % 'OUT_OF_STATE_RECIPIENT'})") >= 3
    assert prometheus.scalar(f"sum({violations % 'STATUTE_FORBIDS_SETTING'})") >= 1
    assert (
        prometheus.scalar('sum(streamguard_owner_attempts_total{owner_id="ca-ventura-county-so"})')
        >= 6
    )
    assert prometheus.scalar('sum(streamguard_events_total{outcome="approved"})') >= 3
    # The windowed gauge must come to count all six searches of the burst, including
    # the last batch, even though no traffic follows it.
    poll(
        "the current-hour gauge to count all 6 searches",
        lambda: prometheus.scalar(
            'sum(streamguard_agency_searches{agency_id="tx-houston-pd",window="1h"}) >= 6'
        ),
        GAUGE_WAIT_S,
    )

    def firing() -> set[str]:
        alerts = prometheus.api("alerts")["alerts"]
        names = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
        wanted = {"StreamguardProhibitedPurposeSearch", "StreamguardForbiddenPolicyChange"}
        return names if wanted <= names else set()

    # The camera posts, as the ingest panels count them: one read per vendor, each refusal
    # under its own outcome, reason and code, and fresh reads with a small lag.
    job = f'job="{INGEST_JOB}"'
    for name in ("openalpr", "axis", "genetec"):
        reads = f'sum(streamguard_ingest_reads_total{{{job},format="{name}"}})'
        assert prometheus.scalar(reads) == 1, name
    outcomes = {
        "accepted": 3,
        "malformed": 1,
        "schema_invalid": 1,
        "unauthorized": 2,
        "overloaded": 0,
        "unavailable": 0,
    }
    for outcome, count in outcomes.items():
        posts = f'sum(streamguard_ingest_requests_total{{{job},outcome="{outcome}"}})'
        assert prometheus.scalar(posts) == count, outcome
    for reason in ("invalid", "missing"):
        refused = f'sum(streamguard_ingest_auth_failures_total{{{job},reason="{reason}"}})'
        assert prometheus.scalar(refused) == 1, reason
    for code in ("MALFORMED_EVENT", "SCHEMA_INVALID"):
        kept = f'sum(streamguard_ingest_quarantined_total{{{job},code="{code}"}})'
        assert prometheus.scalar(kept) == 1, code
    assert prometheus.scalar(f"max(streamguard_ingest_in_flight_limit{{{job}}})") == 64
    lag_p99 = prometheus.scalar(
        "histogram_quantile(0.99, sum by (le) "
        f"(increase(streamguard_ingest_read_lag_seconds_bucket{{{job}}}[10m])))"
    )
    assert 0 < lag_p99 <= 60, lag_p99  # camera time was now: seconds, not months
    post_p99 = prometheus.scalar(
        "histogram_quantile(0.99, sum by (le) "
        f"(increase(streamguard_ingest_request_seconds_bucket{{{job}}}[10m])))"
    )
    assert 0 < post_p99 <= 30, post_p99  # every post answered, none near the send timeout

    names = poll("the compliance alerts to fire", firing, DATA_WAIT_S)
    assert "StreamguardWorkerDown" not in names
    assert "StreamguardIngestDown" not in names
    assert "StreamguardIngestAuthFailureBurst" not in names  # two 401s are not a burst
