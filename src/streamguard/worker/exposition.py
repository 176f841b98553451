"""The /metrics page: prometheus-client's text format, byte for byte, at half its cost.

`generate_latest` formats every sample's name and labels again on every scrape (sorting,
escaping and joining the labels): about 17 µs per line, 25-60 ms of the worker's event loop
for a page of a few thousand series (agencies x windows, owners), a stall for every batch
waiting behind it. A series keeps its name and labels between scrapes, so `MetricsPage` keeps
each sample's formatted `name{labels} ` and formats only its value. The output is tested to be
identical to `generate_latest` (prometheus-client is pinned: its format is part of what the
test compares).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, cast

from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import (
    UNDERSCORES,
    escape_label_name,
    escape_metric_name,
)
from prometheus_client.utils import floatToGoString as _untyped_go_string

__all__ = ("MetricsPage",)

_go_string = cast(Callable[[float], str], _untyped_go_string)

# Series come and go (agencies leave the current window); past this many formatted prefixes
# the cache starts again rather than keep every series ever seen.
_MAX_PREFIXES: Final = 100_000
# prometheus-client's Prometheus-format names of the OpenMetrics types.
_TYPE_NAMES: Final = {
    "info": "gauge",
    "stateset": "gauge",
    "gaugehistogram": "histogram",
    "unknown": "untyped",
}
_OM_SUFFIXES: Final = ("_created", "_gsum", "_gcount")


def _label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


class MetricsPage:
    """`generate_latest(registry)`, with each series' name and labels formatted once."""

    __slots__ = ("_prefixes", "_registry")

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def _prefix(self, name: str, labels: dict[str, str]) -> str:
        key = (name, tuple(labels.items()))
        prefix = self._prefixes.get(key)
        if prefix is None:
            if len(self._prefixes) >= _MAX_PREFIXES:
                self._prefixes.clear()
            text = escape_metric_name(name, UNDERSCORES)
            if labels:
                pairs = ",".join(
                    f'{escape_label_name(k, UNDERSCORES)}="{_label_value(v)}"'
                    for k, v in sorted(labels.items())
                )
                text = f"{text}{{{pairs}}}"
            prefix = self._prefixes[key] = text + " "
        return prefix

    def render(self) -> bytes:
        output: list[str] = []
        prefix = self._prefix
        for metric in self._registry.collect():
            try:
                name, kind = metric.name, metric.type
                if kind == "counter":
                    name += "_total"
                elif kind == "info":
                    name += "_info"
                kind = _TYPE_NAMES.get(kind, kind)
                shown = escape_metric_name(name, UNDERSCORES)
                output.append(f"# HELP {shown} {_help(metric.documentation)}\n")
                output.append(f"# TYPE {shown} {kind}\n")
                # OpenMetrics-only samples go to gauges of their own after the family.
                om_names = {metric.name + suffix: suffix for suffix in _OM_SUFFIXES}
                extra: dict[str, list[str]] = {}
                for sample in metric.samples:
                    line = prefix(sample.name, sample.labels) + _go_string(sample.value)
                    if sample.timestamp is not None:
                        line += f" {int(float(sample.timestamp) * 1000):d}"
                    line += "\n"
                    suffix = om_names.get(sample.name)
                    if suffix is None:
                        output.append(line)
                    else:
                        extra.setdefault(suffix, []).append(line)
            except Exception as exc:
                exc.args = (exc.args or ("",)) + (metric,)
                raise
            for suffix, lines in sorted(extra.items()):
                shown = escape_metric_name(metric.name + suffix, UNDERSCORES)
                output.append(f"# HELP {shown} {_help(metric.documentation)}\n")
                output.append(f"# TYPE {shown} gauge\n")
                output.extend(lines)
        return "".join(output).encode("utf-8")
