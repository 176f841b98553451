"""A real Prometheus scraping a real StreamGuard worker fed through a real Kafka broker.

The end-to-end promise is "the first unlawful search is on a dashboard within seconds and an
alert fires within minutes". This test starts the Debian `prometheus` binary on a free port with
the repository's alert rules, runs a worker against the test broker, produces lawful
and unlawful traffic, and then asks Prometheus every query of every dashboard panel (with
Grafana's variables substituted, range queries for time-series panels and instant queries for
stats, as Grafana sends them). Every query must return data; the compliance panels must show
the unlawful traffic, and the compliance alerts must be firing.

The promtool checks of prometheus/ run here too: they need the binary, not a broker.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
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

from streamguard.local.testing import (
    TestKeys,
    agency_ids,
    free_port,
    plate_read,
    policy_change,
    scrape,
    search_request,
    wait_for,
    write_agencies,
    write_keys,
)
from tests.helpers import Deploy, poll, unavailable

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "prometheus"
DASHBOARD_DIR = ROOT / "dashboards" / "json"
PORT_RANGE = range(9400, 9500)  # the ports this project's observability tests may use
AGENCIES = """agency_id,name,state,kind
ca-ventura-county-so,Ventura County Sheriff's Office,CA,county
ca-oxnard-pd,Oxnard Police Department,CA,local
tx-houston-pd,Houston Police Department,TX,local
tx-dallas-pd,Dallas Police Department,TX,local
us-ice-ero,U.S. Immigration and Customs Enforcement ERO,US,federal
"""
# One Ed25519 key per agency (and the registry's), derived from a seed.
KEYS = TestKeys(b"integration-secret-k1", agency_ids(AGENCIES))
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
def running(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a process for the duration of the block; stop it (TERM, then KILL) afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
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


# --- the end-to-end test ----------------------------------------------------------------------


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref: str
    expr: str
    instant: bool


def panel_queries(variables: dict[str, str]) -> list[PanelQuery]:
    """Every target of every dashboard, with `$name` variables replaced (longest name first)."""
    out = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for name in sorted(variables, key=len, reverse=True):
                    expr = expr.replace(f"${name}", variables[name])
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


def variable_values(prometheus: Prometheus) -> dict[str, str]:
    """A value for each dashboard template variable, read the way Grafana reads it."""
    values = {}
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        for var in json.loads(path.read_text(encoding="utf-8"))["templating"]["list"]:
            if var["type"] != "query":
                continue  # the data source variable: this test queries one Prometheus
            metric, label = var["definition"].removeprefix("label_values(").rstrip(")").split(", ")
            found = prometheus.api(f"label/{label}/values", **{"match[]": metric})
            assert found, f"template variable {var['name']}: no {label} values on {metric}"
            # Prefer the requester the traffic made busiest, for a meaningful drill-down.
            values[var["name"]] = "tx-houston-pd" if "tx-houston-pd" in found else found[0]
    return values


def write_prometheus_config(tmp: Path, worker_port: int) -> Path:
    """prometheus.yml of the repo with the worker target replaced and a 1 s scrape."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    # A short interval keeps the test's waits short; the rules are the repository's own.
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_DIR / "alerts.yml")]
    config["scrape_configs"] = [
        {"job_name": "streamguard", "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]}
    ]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_every_dashboard_panel_shows_real_worker_data_in_real_prometheus(
    deploy: Deploy, tmp_path: Path
) -> None:
    """Real broker -> real worker -> real Prometheus: every panel query returns data."""
    prometheus_bin = binary("prometheus")
    worker_port = free_port(PORT_RANGE)
    deployment = deploy("sg-prom-", partitions=PARTITIONS)
    # Stopped by `deploy` at the end, after Prometheus.
    worker = deployment.add_worker(
        worker_port,
        agencies=write_agencies(tmp_path, AGENCIES),
        keys=write_keys(tmp_path, KEYS),
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

    prom_port = free_port(PORT_RANGE)
    config = write_prometheus_config(tmp_path, worker_port)
    prometheus_argv = [
        prometheus_bin,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
    ]
    with running(prometheus_argv, prometheus_log) as prometheus_process:
        prometheus = Prometheus(f"http://127.0.0.1:{prom_port}")

        def scraped_twice() -> float:
            assert prometheus_process.poll() is None, tail(prometheus_log)
            if http_get(f"{prometheus.url}/-/ready") is None:
                return 0.0
            # Two scrapes of the zero state, so increase() sees the traffic as an increase.
            return prometheus.scalar(
                'sum(count_over_time(up{job="streamguard"}[1m])) >= 2 '
                'and sum(up{job="streamguard"}) == 1'
            )

        poll("two successful scrapes of the worker", scraped_twice, PROCESS_START_S)
        start = time.time()
        deployment.send_mixed(traffic(), acks="all")

        def traffic_decided() -> float:
            assert worker.alive(), f"worker exited:\n{tail(worker.log_path)}"
            return prometheus.scalar(
                'sum(streamguard_events_total{kind="search_request",outcome="denied"}) >= 6 '
                'and on() sum(streamguard_policy_changes_total{result="rejected"}) >= 1 '
                "and on() sum(streamguard_consumer_lag_messages) >= 0"
            )

        poll("the decisions to reach Prometheus", traffic_decided, DATA_WAIT_S)

        def empty_panels() -> list[str]:
            variables = {
                "__range": f"{max(int(time.time() - start) + 60, 60)}s",
                "__rate_interval": "15s",
                "__interval": "2s",
            }
            variables |= variable_values(prometheus)
            end = time.time()
            empty = []
            for query in panel_queries(variables):
                if query.instant:
                    result = prometheus.instant(query.expr, at=end)
                else:
                    result = prometheus.range(query.expr, start - 60, end, step=2)
                if not result:
                    empty.append(f"{query.dashboard} / {query.panel} [{query.ref}]: {query.expr}")
            return empty

        # Rates need two samples after the traffic: wait (bounded) until no panel is empty.
        empty = wait_for(empty_panels, DATA_WAIT_S, until=lambda e: not e, interval=2.0)
        assert empty == [], "panels without data:\n" + "\n".join(empty)

        # The unlawful traffic is visible, not merely present as zeros.
        violations = 'streamguard_violations_total{code="%s"}'
        assert prometheus.scalar(f"sum({violations % 'PROHIBITED_PURPOSE_IMMIGRATION'})") >= 3
        assert prometheus.scalar(f"sum({violations % 'OUT_OF_STATE_RECIPIENT'})") >= 3
        assert prometheus.scalar(f"sum({violations % 'STATUTE_FORBIDS_SETTING'})") >= 1
        assert (
            prometheus.scalar(
                'sum(streamguard_owner_attempts_total{owner_id="ca-ventura-county-so"})'
            )
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

        names = poll("the compliance alerts to fire", firing, DATA_WAIT_S)
        assert "StreamguardWorkerDown" not in names
