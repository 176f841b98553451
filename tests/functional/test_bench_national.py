"""benchmarks/bench_national.py at a tiny size, as a process: it runs and prints every figure
docs/scaling.md is recomputed from. Structure only, never timings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_national.py"
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"
CLASSES = ("read", "networks", "statewide", "national")


@pytest.fixture(scope="module")
def output() -> str:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            *("--agencies", "400", "--national-pool", "40"),
            *("--reads", "150", "--searches", "150", "--national-share", "0.1"),
            *("--runs", "1", "--batch", "50"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def topics_of(line: str) -> dict[str, tuple[float, float]]:
    """`topic 1.00 msg 540 B, ...` -> {topic: (messages, bytes)} per event."""
    found = re.findall(rf"([a-z.-]+) ({NUMBER}) msg ({NUMBER}) B", line)
    return {t: (float(m), float(b.replace(",", ""))) for t, m, b in found}


def assert_audited_once(topics: dict[str, tuple[float, float]]) -> None:
    """Every decision writes one audit record, every input is read once from its topic."""
    assert topics["audit"][0] == pytest.approx(1.0)
    assert topics.get("reads", (0.0,))[0] + topics.get("searches", (0.0,))[0] == pytest.approx(1.0)
    assert all(size > 0 for _, size in topics.values())


def topics_under(output: str, pattern: str) -> dict[str, tuple[float, float]]:
    """The per-event figures by topic on the line after the first line that `pattern` matches
    (from the line's start), checked to show every decision audited once and every input read
    once."""
    lines = output.splitlines()
    index = next((i for i, line in enumerate(lines) if re.match(pattern, line)), None)
    assert index is not None and index + 1 < len(lines), f"no line {pattern!r} in:\n{output}"
    topics = topics_of(lines[index + 1])
    assert_audited_once(topics)
    return topics


def test_the_workload_has_the_asked_for_national_pool(output: str) -> None:
    workload = next(line for line in output.splitlines() if line.startswith("[workload]"))
    assert "400 agencies" in workload
    assert "national pool 40 owners" in workload
    assert "150 reads, 150 searches" in workload
    assert "warning" not in output  # every signed settings change was applied


@pytest.mark.parametrize("name", CLASSES)
def test_each_class_prints_its_rate_ratio_and_bytes_per_topic(output: str, name: str) -> None:
    topics = topics_under(
        output,
        rf"  {name}: {NUMBER} events, {NUMBER} decisions/s, {NUMBER} µs/event; "
        rf"orjson loop {NUMBER}/s, ratio [0-9.e-]+$",
    )
    assert ("reads" in topics) == (name == "read")


def test_the_day_and_the_memory_are_printed(output: str) -> None:
    topics = topics_under(output, rf"\[day\] 300 events in ts order: {NUMBER} decisions/s")
    assert topics["reads"][0] == pytest.approx(0.5)
    memory = re.search(
        rf"^\[memory\] tracemalloc: registry \+ policy state built from the tables ({NUMBER}) MiB; "
        rf"after the day .* ({NUMBER}) MiB, peak ({NUMBER}) MiB; process RSS",
        output,
        re.M,
    )
    assert memory is not None, output
    settled, _, peak = (float(g.replace(",", "")) for g in memory.groups())
    assert 0 < settled <= peak


def test_the_sizing_gives_workers_partitions_and_broker_figures(output: str) -> None:
    assert "[real network] 20,000,000,000 reads and 1,100,000 searches a month" in output
    workers = re.search(r"= (\d+) workers; partitions (\d+) \(>= 3 x workers", output)
    assert workers is not None, output
    assert int(workers.group(2)) >= 3 * int(workers.group(1)) >= 3
    assert re.search(rf"broker writes .*: {NUMBER} MB/s average, {NUMBER} MB/s peak", output)
    per_day = re.search(r"per day \(TB, before replication\): (.*)$", output, re.M)
    assert per_day is not None and "audit" in per_day.group(1)
    assert "audit (unlimited retention) grows" in output


def test_no_plate_is_printed(output: str) -> None:
    # The workload's plates are six digits and an X.
    assert re.search(r"\d{6}X", output) is None


def test_table_values_settle_like_the_signed_changes() -> None:
    """`--settle tables` must give the decisions the state the signed changes give."""
    sys.path.insert(0, str(BENCH.parent))
    try:
        import bench_national  # a script, importable only from its directory
        from workload import build_day
    finally:
        sys.path.remove(str(BENCH.parent))
    day = build_day(10, 10, agency_count=300, national_pool=30)
    signed, values = bench_national.settled(day, 4)
    assert values == bench_national.table_values(day)
    loaded = bench_national.from_tables(day, 4, values).state
    assert loaded.settings == signed.state.settings
    assert loaded.national_owners == signed.state.national_owners
    assert len(loaded.national_owners) == 30
    assert dict(loaded.statewide_owners) == dict(signed.state.statewide_owners)
