"""The fixes in `streamguard.worker.faust_fixes.recovery`, and the source check that guards
them with every other faust fix (`streamguard.worker.faust_fixes.sources`).

Nothing fetched is lost when partitions resume.

Fault 1: faust's real `Recovery` service runs `on_recovery_completed` (faust's own, then the
fixed one) against a consumer that stands in for faust's: while the flow is open it delivers the
next record of each resumed input partition into an agent queue every millisecond, as faust's
`Consumer._drain_messages` and Conductor do, and `perform_seek` takes two broker round trips.
The queue is faust's own `FlowControlQueue(clear_on_resume=True)`, the kind agents read from.

Fault 2: aiokafka's real `Fetcher.fetched_records`, called through faust's real
`_fetch_records`, on prefetched records of an input partition that faust has paused.

No broker: the crash test (`tests/integration/test_worker_crash.py`) runs both against Kafka.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import os
import types
from pathlib import Path
from typing import Any

import faust
import faust.stores.rocksdb as faust_rocksdb
import faust.streams
import pytest
from aiokafka.consumer.fetcher import Fetcher, FetchResult
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from streamguard.worker import faust_fixes
from streamguard.worker.faust_fixes import consumer, drain, monitor, recovery, sources, stores
from streamguard.worker.faust_fixes.sources import GUARDED, FaustChangedError
from streamguard.worker.main import main_worker

INPUT = TP("sg.searches", 0)
COMMITTED = 10  # the group's committed offset: where the seek puts the fetch position
STALE = 50  # where the fetch position was before the seek (a partition kept across a rebalance)


class Fetching:
    """The consumer as `on_recovery_completed` uses it, with the Fetcher's deliveries."""

    def __init__(self, app: faust.App, queue: Any) -> None:
        self.app = app
        self.queue = queue
        self.paused = {INPUT}
        self.position = STALE
        self.fetched_after_seek: list[int] = []
        self.seeked = False

    def assignment(self) -> set[TP]:
        return {INPUT}

    def resume_partitions(self, tps: Any) -> None:
        self.paused -= set(tps)

    def resume_flow(self) -> None:
        return None

    async def perform_seek(self) -> None:
        await asyncio.sleep(0.01)  # OffsetFetch to the broker (from the consumer thread)
        self.position, self.seeked = COMMITTED, True
        await asyncio.sleep(0.01)  # the answer's way back to the event loop

    async def run(self) -> None:
        """Deliver a record every millisecond while the partition and the flow are open."""
        while True:
            await asyncio.sleep(0.001)
            if INPUT not in self.paused and self.app.flow_control.is_active():
                self.queue.put_nowait(self.position)
                if self.seeked:
                    self.fetched_after_seek.append(self.position)
                self.position += 1


class FaustFetcher:
    async def maybe_start(self) -> None:
        await asyncio.sleep(0)


async def complete_recovery(app: faust.App) -> tuple[list[int], list[int]]:
    """Run the app's `on_recovery_completed` as after a changelog replay.

    Returns (records fetched after the seek, records in the agent's queue).
    """
    queue = app.FlowControlQueue(maxsize=10_000, clear_on_resume=True)
    consumer = Fetching(app, queue)
    app.consumer = consumer
    app.__dict__["_fetcher"] = FaustFetcher()  # faust's cached_property keeps its value here
    # As `Recovery._restart_recovery` leaves it after replaying changelogs: flow open, Fetcher
    # running, input partitions paused.
    app.flow_control.resume()
    fetching = asyncio.ensure_future(consumer.run())
    try:
        await app.tables.recovery.on_recovery_completed(0)
        await asyncio.sleep(0.01)  # a few more deliveries after the worker is ready
    finally:
        fetching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetching
    queued = []
    while not queue.empty():
        queued.append(queue.get_nowait())
    return consumer.fetched_after_seek, queued


def app_named(name: str) -> faust.App:
    return faust.App(name, broker="kafka://localhost:1", store="memory://")


async def test_faust_drops_what_it_fetched_during_the_seek() -> None:
    """The fault the fix is for, shown with faust's own method: fetched records are cleared."""
    fetched, queued = await complete_recovery(app_named("sg-recovery-faust"))
    assert fetched[0] == COMMITTED
    assert set(fetched) - set(queued), "faust's method no longer drops fetched records"


async def test_fixed_recovery_hands_every_record_fetched_after_the_seek_to_the_agents() -> None:
    """In order, from the committed offset, nothing cleared and nothing from before the seek."""
    app = app_named("sg-recovery-fixed")
    recovery.install(app)
    fetched, queued = await complete_recovery(app)
    assert fetched
    assert queued == fetched == list(range(COMMITTED, COMMITTED + len(fetched)))


def test_install_changes_only_the_given_apps_recovery() -> None:
    fixed, other = app_named("sg-recovery-one"), app_named("sg-recovery-two")
    recovery.install(fixed)
    method = fixed.tables.recovery.on_recovery_completed
    assert method.__func__ is recovery.on_recovery_completed
    assert method.__self__ is fixed.tables.recovery
    assert other.tables.recovery.on_recovery_completed.__func__ is Recovery.on_recovery_completed


def test_installed_faust_and_aiokafka_are_the_versions_the_fixes_were_made_for() -> None:
    assert [g.source for g in GUARDED if sources.source_sha256(g.source) is None] == []
    assert sources.changed_sources() == []


def test_create_app_refuses_a_changed_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    """An upgrade that changes a function stops the worker at start, naming the function and
    the fix, before any fix is installed."""

    async def fetched_records(self: Any, partitions: Any, timeout: float = 0, **_: Any) -> Any:
        return {}  # "upstream's new version"

    installed: list[faust.App] = []
    monkeypatch.setattr(Fetcher, "fetched_records", fetched_records)
    monkeypatch.setattr(recovery, "install", installed.append)
    with pytest.raises(FaustChangedError) as caught:
        faust_fixes.create_app("sg-recovery-changed", broker="kafka://localhost:1")
    message = str(caught.value)
    assert "\n" not in message
    assert "changed 1 source(s)" in message
    assert "aiokafka.consumer.fetcher:Fetcher.fetched_records (recovery)" in message
    assert "docs/faust-fixes.md" in message
    assert installed == []


# --- fault 2 ---------------------------------------------------------------------------------

CHANGELOG = TP("sg-worker-counters-changelog", 0)


class PartitionState:
    """aiokafka's per-partition assignment state, as its `FetchResult` reads it."""

    paused = False  # aiokafka's pause: faust never uses it, it pauses in its own set

    def __init__(self) -> None:
        self.position = 0

    def consumed_to(self, offset: int) -> None:
        self.position = offset


class Assignment:
    active = True

    def __init__(self) -> None:
        self.states = {INPUT: PartitionState(), CHANGELOG: PartitionState()}

    def state_value(self, tp: TP) -> PartitionState:
        return self.states[tp]


class PartitionRecords:
    """aiokafka's `PartitionRecords`: records from `next_fetch_offset` on."""

    def __init__(self, offsets: range) -> None:
        self.next_fetch_offset = offsets.start
        self._offsets = iter(offsets)

    def __iter__(self) -> PartitionRecords:
        return self

    def __next__(self) -> int:
        offset = next(self._offsets)
        self.next_fetch_offset = offset + 1
        return offset


class Subscriptions:
    reassignment_in_progress = False

    def is_assigned(self, tp: TP) -> bool:
        return True

    @contextlib.contextmanager
    def fetch_context(self) -> Any:
        yield


class AiokafkaConsumer:
    """aiokafka's consumer with its Fetcher: the real `fetched_records` on prefetched records."""

    _closed = False

    def __init__(self) -> None:
        self.assignment = Assignment()
        fetcher = types.SimpleNamespace(
            _closed=False,
            _subscriptions=Subscriptions(),
            _wait_consume_future=None,
            _notify=lambda future: None,
            _records={
                INPUT: FetchResult(
                    INPUT,
                    assignment=self.assignment,
                    partition_records=PartitionRecords(range(0, 5)),
                    backoff=0,
                )
            },
        )
        fetcher.fetched_records = types.MethodType(Fetcher.fetched_records, fetcher)
        self._fetcher = fetcher


def consumer_thread() -> Any:
    """faust's consumer thread, as `_fetch_records` uses it: its consumer's flow is open."""
    return types.SimpleNamespace(consumer=types.SimpleNamespace(flow_active=True))


async def test_faust_hands_over_paused_partitions_once_its_active_set_empties() -> None:
    """The fault: the changelog paused after recovery, the input still paused, nothing active."""
    consumer = AiokafkaConsumer()
    active = {CHANGELOG}
    active.discard(CHANGELOG)  # faust pauses the set the consumer thread is waiting with
    got = await recovery._FAUST_FETCH_RECORDS(consumer_thread(), consumer, active, timeout=0)
    assert got == {INPUT: [0, 1, 2, 3, 4]}, "faust no longer drains paused partitions"
    assert consumer.assignment.states[INPUT].position == 5  # gone for faust's getmany


async def test_fixed_fetch_hands_over_only_partitions_active_at_the_time() -> None:
    recovery.install(app_named("sg-recovery-fetch"))
    thread = consumer_thread()
    consumer = AiokafkaConsumer()
    active: set[TP] = set()
    assert await AIOKafkaConsumerThread._fetch_records(thread, consumer, active, timeout=0) == {}
    assert consumer.assignment.states[INPUT].position == 0  # still there for later
    active.add(INPUT)  # resumed: now it comes
    got = await AIOKafkaConsumerThread._fetch_records(thread, consumer, active, timeout=0)
    assert got == {INPUT: [0, 1, 2, 3, 4]}


def test_live_view_follows_the_set_and_is_never_empty() -> None:
    tps = {INPUT}
    view = recovery.LiveActivePartitions(tps)
    assert INPUT in view and CHANGELOG not in view
    tps.clear()
    assert view and INPUT not in view


# --- the source check, for every fix --------------------------------------------------------


def test_the_worker_refuses_to_start_on_a_changed_guarded_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`streamguard worker` with one guarded faust function changed: exit 2 and one line on
    stderr that names the function and the fix depending on it."""

    def current_event() -> Any:  # "upstream's new version" of faust.streams.current_event
        return None

    for name in [n for n in os.environ if n.startswith("STREAMGUARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STREAMGUARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STREAMGUARD_STORE", "memory://")
    monkeypatch.setattr(faust.streams, "current_event", current_event)
    assert main_worker([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("streamguard worker: error: faust-streaming ")
    assert "changed 1 source(s)" in err
    assert "faust.streams:current_event (context)" in err


def test_a_renamed_private_method_counts_as_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(faust_rocksdb.Store, "_db_for_partition")
    changed = [g.source for g in sources.changed_sources()]
    assert changed == ["faust.stores.rocksdb:Store._db_for_partition"]
    with pytest.raises(FaustChangedError, match=r"Store\._db_for_partition \(stores\)"):
        sources.check_sources()


def _defined_here(tree: ast.Module) -> set[str]:
    """Names a StreamGuard module defines itself: functions, classes, module-level names and
    attributes it assigns on `self`."""
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            own.add(node.target.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            own.add(node.attr)
    return own


def _private_names_used(tree: ast.Module) -> set[str]:
    """`x._name` attributes, and `getattr`/`hasattr(x, "_name")`, that are not dunders."""
    used: set[str] = set()
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Attribute):
            name = node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            name = node.args[1].value
        if name is not None and name.startswith("_") and not name.startswith("__"):
            used.add(name)
    return used


def test_private_names_of_faust_and_aiokafka_are_used_only_by_the_fixes_and_all_guarded() -> None:
    """Every private name StreamGuard uses and does not define itself is one the source table
    guards, and is used inside `streamguard.worker.faust_fixes` only."""
    fixes = Path(faust_fixes.__file__).parent
    guarded = {name for g in GUARDED for name in g.touches}
    allowed_elsewhere = {"_exit"}  # os._exit: the standard library, not faust
    package = fixes.parent.parent
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        foreign = _private_names_used(tree) - _defined_here(tree)
        if path.parent == fixes:
            assert foreign <= guarded, f"{path.name}: not in the source table: {foreign - guarded}"
        else:
            assert foreign <= allowed_elsewhere, f"{path}: uses {foreign} outside faust_fixes"


def test_every_private_faust_method_a_fix_overrides_is_guarded() -> None:
    """A method of a faust or aiokafka class that a fix's subclass replaces is in the table."""
    guarded = {name for g in GUARDED for name in g.touches}
    upstream = ("faust", "aiokafka", "mode")
    overridden = set()
    for module in (consumer, drain, monitor, recovery, stores):
        for cls in vars(module).values():
            if not (isinstance(cls, type) and cls.__module__ == module.__name__):
                continue
            for name, value in vars(cls).items():
                private = name.startswith("_") and not name.startswith("__")
                if private and inspect.isfunction(value):
                    bases = [b for b in cls.__mro__[1:] if name in vars(b)]
                    if any(b.__module__.split(".")[0] in upstream for b in bases):
                        overridden.add(name)
    assert overridden == {
        "_new_transport",
        "_new_consumer_thread",
        "_create_worker_consumer",
        "_clear_partition_related_metrics",
        "_drain_messages",
    }
    assert overridden <= guarded
