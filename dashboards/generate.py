"""Writes the Grafana dashboards in `dashboards/json/` from one description of their panels.

The JSON files are what Grafana provisions and what users edit; this script is the source they
come from, so every panel shares one datasource, one layout rule and the metric names
of `streamguard.worker.metrics`. `python dashboards/generate.py` rewrites them; `--check` exits 1
when a committed file differs from what the script would write (the unit tests run it).

Queries use Grafana's `$__rate_interval` (rates that survive a missed scrape) and `$__range`
(totals over the time picker's range).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

DATASOURCE: Final = {"type": "prometheus", "uid": "prometheus"}
OUT_DIR: Final = Path(__file__).resolve().parent / "json"
GRID_WIDTH: Final = 24
SCHEMA_VERSION: Final = 39


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str  # timeseries | stat | bargauge | table
    queries: tuple[Query, ...]
    description: str
    width: int = 12
    height: int = 8
    unit: str = "short"
    # Stats and bar gauges read one value per series (the end of the range), not a time series.
    instant: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[dict[str, Any], ...] = ()
    tags: tuple[str, ...] = ("streamguard",)


def q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


def stat(title: str, queries: tuple[Query, ...], description: str, **kw: Any) -> Panel:
    """A headline number: a quarter-width tile reading the value at the end of the range."""
    return Panel(
        title, "stat", queries, description, **({"width": 6, "height": 5} | kw), instant=True
    )


def quantiles(bucket_metric: str, *levels: float) -> tuple[Query, ...]:
    """p50/p99-style queries over a histogram's buckets, summed across workers."""
    return tuple(
        q(
            f"histogram_quantile({level}, sum by (le) (rate({bucket_metric}[$__rate_interval])))",
            f"p{round(level * 100)}",
        )
        for level in levels
    )


COMPLIANCE: Final = Dashboard(
    uid="streamguard-compliance",
    title="StreamGuard / Compliance overview",
    description="What StreamGuard decided and which laws it enforced, across all agencies.",
    panels=(
        stat(
            "Unlawful search attempts",
            (
                q(
                    'sum(increase(streamguard_events_total{kind="search_request",'
                    'outcome=~"denied|partial"}[$__range]))'
                ),
            ),
            "Searches denied outright or stripped of some owner networks in the selected range.",
        ),
        stat(
            "Immigration-purpose blocks",
            (
                q(
                    "sum(increase(streamguard_violations_total"
                    '{code="PROHIBITED_PURPOSE_IMMIGRATION"}[$__range]))'
                ),
            ),
            "Searches blocked because the owner's state forbids immigration enforcement use.",
        ),
        stat(
            "Rejected policy changes",
            (
                q(
                    'sum(increase(streamguard_policy_changes_total{result="rejected"}[$__range]))',
                    "rejected",
                ),
                q(
                    "sum(increase(streamguard_violations_total"
                    '{code="STATUTE_FORBIDS_SETTING"}[$__range]))',
                    "forbidden by statute",
                ),
            ),
            "Policy changes never applied: bad signature, unknown agency, or a setting the "
            "owner's state law forbids (STATUTE_FORBIDS_SETTING).",
        ),
        stat(
            "Alerts raised",
            (q("sum(increase(streamguard_alerts_total[$__range]))"),),
            "Alerts the worker published to the alerts topic in the selected range.",
        ),
        Panel(
            "Decisions by outcome",
            "timeseries",
            (
                q(
                    "sum by (kind, outcome) (rate(streamguard_events_total[$__rate_interval]))",
                    "{{kind}} {{outcome}}",
                ),
            ),
            "Events decided per second, by input kind and outcome.",
            unit="ops",
        ),
        Panel(
            "Owner networks allowed / denied",
            "timeseries",
            (
                q(
                    "sum by (decision) (rate(streamguard_networks_total[$__rate_interval]))",
                    "{{decision}}",
                ),
            ),
            "Owner networks (or read recipients) allowed and denied per second.",
            unit="ops",
        ),
        Panel(
            "Violations by code",
            "bargauge",
            (
                q(
                    "sort_desc(sum by (code) (increase(streamguard_violations_total[$__range])))",
                    "{{code}}",
                ),
            ),
            "Events carrying each reason code in the selected range (each code once per event).",
            instant=True,
        ),
        Panel(
            "Violations by code over time",
            "timeseries",
            (
                q(
                    "sum by (code) (rate(streamguard_violations_total[$__rate_interval])) > 0",
                    "{{code}}",
                ),
            ),
            "Reason codes per second; codes with no events in a step are hidden.",
            unit="ops",
        ),
        Panel(
            "Out-of-state and federal attempts per owner",
            "bargauge",
            (
                q(
                    "sort_desc(sum by (owner_id, kind) "
                    "(increase(streamguard_owner_attempts_total[$__range])))",
                    "{{owner_id}} {{kind}}",
                ),
            ),
            "Search attempts on each owner's network by out-of-state or federal requesters, "
            "counted whether or not the owner shared (attempts, not just leaks).",
            instant=True,
        ),
        Panel(
            "Alerts by kind",
            "timeseries",
            (
                q(
                    "sum by (kind) (increase(streamguard_alerts_total[$__rate_interval]))",
                    "{{kind}}",
                ),
            ),
            "Alerts published per kind.",
        ),
        Panel(
            "Most active requesters (current hour)",
            "bargauge",
            (q('topk(10, streamguard_agency_searches{window="1h"})', "{{agency_id}}"),),
            "Searches per requesting agency in the current one-hour window.",
            instant=True,
        ),
        Panel(
            "Policy changes",
            "timeseries",
            (
                q(
                    "sum by (result) "
                    "(increase(streamguard_policy_changes_total[$__rate_interval]))",
                    "{{result}}",
                ),
            ),
            "Signed policy changes applied and rejected.",
        ),
    ),
)

AGENCY: Final = Dashboard(
    uid="streamguard-agency",
    title="StreamGuard / Agency drill-down",
    description="One agency's searches in the current windows and the attempts on its network.",
    variables=(
        {
            "name": "agency_id",
            "label": "Agency",
            "type": "query",
            "datasource": DATASOURCE,
            "query": {
                "query": "label_values(streamguard_agency_searches, agency_id)",
                "refId": "agency_id",
            },
            "definition": "label_values(streamguard_agency_searches, agency_id)",
            "refresh": 2,
            "sort": 1,
            "includeAll": False,
            "multi": False,
        },
    ),
    panels=(
        stat(
            "Searches in the current windows",
            (q('streamguard_agency_searches{agency_id="$agency_id"}', "{{window}}"),),
            "Searches by this agency in each current window (1m, 1h, 24h).",
            width=12,
        ),
        stat(
            "Share of all searches (current hour)",
            (
                q(
                    'sum(streamguard_agency_searches{agency_id="$agency_id",window="1h"}) / '
                    'sum(streamguard_agency_searches{window="1h"})'
                ),
            ),
            "This agency's fraction of every search in the current one-hour window.",
            width=12,
            unit="percentunit",
        ),
        Panel(
            "Searches per window over time",
            "timeseries",
            (q('streamguard_agency_searches{agency_id="$agency_id"}', "{{window}}"),),
            "The windowed count as the worker publishes it; it drops when a window rolls over.",
            width=24,
        ),
        Panel(
            "Out-of-state and federal attempts on this agency's network",
            "timeseries",
            (
                q(
                    "sum by (kind) (increase(streamguard_owner_attempts_total"
                    '{owner_id="$agency_id"}[$__rate_interval]))',
                    "{{kind}}",
                ),
            ),
            "Search attempts reaching for this agency's data from out of state or federal "
            "requesters, whether or not they were shared.",
            width=24,
        ),
    ),
)

WORKER: Final = Dashboard(
    uid="streamguard-worker",
    title="StreamGuard / Worker health",
    description="Throughput, latency, Kafka consumer lag and rebalances of the workers.",
    panels=(
        stat(
            "Workers up",
            (q('sum(up{job="streamguard"})'),),
            "Worker /metrics endpoints Prometheus scraped successfully.",
        ),
        stat(
            "Consumer lag (messages)",
            (q("sum(streamguard_consumer_lag_messages)"),),
            "Messages on input partitions not yet committed, all workers.",
        ),
        stat(
            "Rebalances",
            (q("sum(increase(streamguard_rebalances_total[$__range]))"),),
            "Consumer-group rebalances started in the selected range.",
        ),
        stat(
            "Rebalance in progress",
            (q("max(streamguard_rebalance_in_progress)"),),
            "1 while any worker is rebalancing or recovering tables.",
        ),
        Panel(
            "Throughput: events decided",
            "timeseries",
            (
                q("sum by (kind) (rate(streamguard_events_total[$__rate_interval]))", "{{kind}}"),
                q(
                    "sum(rate(streamguard_faust_messages_received_total[$__rate_interval]))",
                    "messages received",
                ),
            ),
            "Decisions per second by kind, beside raw Kafka messages received.",
            unit="ops",
        ),
        Panel(
            "Decision latency (arrival to decision)",
            "timeseries",
            quantiles("streamguard_decision_seconds_bucket", 0.5, 0.99),
            "Seconds from an event's arrival at the worker to its decision.",
            unit="s",
        ),
        Panel(
            "Event lag (event time to decision)",
            "timeseries",
            quantiles("streamguard_event_lag_seconds_bucket", 0.5, 0.99),
            "Seconds from the event's own timestamp to its decision; high during replays.",
            unit="s",
        ),
        Panel(
            "Consumer lag by topic",
            "timeseries",
            (q("sum by (topic) (streamguard_consumer_lag_messages)", "{{topic}}"),),
            "End offset minus committed offset, summed over each topic's partitions.",
        ),
        Panel(
            "Kafka producer send latency",
            "timeseries",
            quantiles("streamguard_faust_producer_send_latency_bucket", 0.99),
            "faust producer send latency, milliseconds.",
            unit="ms",
        ),
        Panel(
            "Offset commit latency",
            "timeseries",
            quantiles("streamguard_faust_consumer_commit_latency_bucket", 0.99),
            "faust consumer offset commit latency, milliseconds.",
            unit="ms",
        ),
        Panel(
            "Rebalances over time",
            "timeseries",
            (q("sum(increase(streamguard_rebalances_total[$__rate_interval]))", "started"),),
            "Rebalances started; frequent ones mean workers are flapping or timing out.",
        ),
        Panel(
            "Worker memory",
            "timeseries",
            (q('process_resident_memory_bytes{job="streamguard"}', "{{instance}}"),),
            "Resident memory of each worker process.",
            unit="bytes",
        ),
    ),
)

DASHBOARDS: Final = (COMPLIANCE, AGENCY, WORKER)


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "instant": panel.instant,
            "range": not panel.instant,
        }
        for i, query in enumerate(panel.queries)
    ]
    options: dict[str, Any] = {}
    if panel.kind in ("stat", "bargauge"):
        options["reduceOptions"] = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if panel.kind == "bargauge":
        options["orientation"] = "horizontal"
        options["displayMode"] = "basic"
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": options | panel.extra,
        "targets": targets,
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    """The Grafana JSON model of one dashboard (panels laid out left to right, row by row)."""
    panels: list[dict[str, Any]] = []
    x = y = row_height = 0
    for panel_id, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel_json(panel, panel_id, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": list(dashboard.tags),
        "editable": True,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "utc",
        "templating": {"list": list(dashboard.variables)},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def render(dashboard: Dashboard) -> str:
    return json.dumps(dashboard_json(dashboard), indent=2, sort_keys=True) + "\n"


def path_of(dashboard: Dashboard) -> Path:
    return OUT_DIR / f"{dashboard.uid}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for dashboard in DASHBOARDS:
        path, text = path_of(dashboard), render(dashboard)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        names = ", ".join(stale)
        print(f"out of date (run python dashboards/generate.py): {names}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
