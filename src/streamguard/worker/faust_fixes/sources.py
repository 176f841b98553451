"""The one table of faust and aiokafka sources the fixes in this package depend on.

Every private name of faust or aiokafka that StreamGuard touches (an attribute it reads or sets,
a method it overrides, calls or replaces) and every upstream function it copies is listed here,
with the sha256 of the source that gives it its meaning in faust-streaming 0.15.3 and aiokafka
0.14.0. `check_sources` compares them with what is installed; the worker runs it once, before
it builds its app (`streamguard.worker.faust_fixes.create_app`), and refuses to start when any
of them changed: a fix written for one version of faust must not run silently against another.

What to do when it refuses (an upgrade): docs/faust-fixes.md, "Upgrading faust or aiokafka".
"""

from __future__ import annotations

import hashlib
import inspect
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import aiokafka
import faust

from streamguard.exceptions import StreamguardError

__all__ = (
    "GUARDED",
    "FaustChangedError",
    "Guarded",
    "changed_sources",
    "check_sources",
    "source_sha256",
)

# The versions the hashes below were taken from.
FAUST_VERSION: Final = "0.15.3"
AIOKAFKA_VERSION: Final = "0.14.0"


class FaustChangedError(StreamguardError):
    """faust or aiokafka is not the version the fixes in `streamguard.worker.faust_fixes` were
    written for.

    Operator action: run the faust-streaming and aiokafka versions pinned in pyproject.toml.
    Whoever upgrades them follows docs/faust-fixes.md, "Upgrading faust or aiokafka".
    """


@dataclass(frozen=True, slots=True)
class Guarded:
    """One upstream function a fix depends on, and what the fix touches through it."""

    source: str  # "module:Qualified.name", as `pkgutil.resolve_name` reads it
    sha256: str  # of `inspect.getsource` in the versions above
    fix: str  # the module of this package that depends on it
    touches: tuple[str, ...] = ()  # the private names whose meaning this source defines


def _g(source: str, sha256: str, fix: str, *touches: str) -> Guarded:
    return Guarded(source, sha256, fix, touches)


_RECOVERY: Final = "recovery"
_CONSUMER: Final = "consumer"
_STORES: Final = "stores"
_CONTEXT: Final = "context"
_PRODUCER: Final = "producer"
_MONITOR: Final = "monitor"
_DRAIN: Final = "drain"
_BATCHES: Final = "batches"
_CONDUCTOR: Final = "conductor"
_PROMETHEUS: Final = "faust.sensors.prometheus:PrometheusMonitor"
_MONITOR_BASE: Final = "faust.sensors.monitor:Monitor"

GUARDED: Final[tuple[Guarded, ...]] = (
    # recovery: faust's end of table recovery, copied with two steps swapped.
    _g(
        "faust.tables.recovery:Recovery.on_recovery_completed",
        "6ef567acf072e46da3fccbccc6d662371f634f622c3d510972d5df81f70ae3ac",
        _RECOVERY,
        "_set_recovery_ended",
        "_wait",
        "_is_changelog_tp",
        "_fetcher",
    ),
    # recovery: wrapped (given a never-falsy view of the active partitions) ...
    _g(
        "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._fetch_records",
        "39a2c6c79fc1455a199629912b533458a720c64983bc957420a42feef6593baa",
        _RECOVERY,
        "_fetch_records",
    ),
    # ... because of how this aiokafka method filters by that set.
    _g(
        "aiokafka.consumer.fetcher:Fetcher.fetched_records",
        "be4348896b9b66afe048de954e2be91c546f4e96c94cb120d5764ec77ce8f19e",
        _RECOVERY,
    ),
    # consumer: faust's revoke, rewritten to commit before it forgets the acked offsets.
    _g(
        "faust.transport.drivers.aiokafka:Consumer.on_partitions_revoked",
        "d04b7ae72c6fc206924a2879d6c90dd383f3e8ba6f4b10a19ca99a921eb8f4db",
        _CONSUMER,
        "_active_partitions",
        "_paused_partitions",
        "_on_partitions_revoked",
        "_gap",
        "_acked",
        "_acked_index",
        "_read_offset",
        "_committed_offset",
    ),
    # consumer: the hooks through which the app gets that consumer and its fetch wait.
    _g(
        "faust.app.base:App._new_transport",
        "42db531312dd776fc3937154a32f19eeb9ad7d4ebc2722a92d081a2d271baea1",
        _CONSUMER,
        "_new_transport",
    ),
    _g(
        "faust.transport.drivers.aiokafka:Consumer._new_consumer_thread",
        "0870ec53dea75083995e3565c0f0a25a1c63ecceaeb238e92e2585e3623af5a9",
        _CONSUMER,
        "_new_consumer_thread",
    ),
    _g(
        "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._create_worker_consumer",
        "c2701bfc3e6f6cad95c2be36d6a255a86e2c57d18d36cc1082b5fb5c482d99d7",
        _CONSUMER,
        "_create_worker_consumer",
    ),
    # consumer: where aiokafka reads the fetch wait the consumer thread overrides.
    _g(
        "aiokafka.consumer.consumer:AIOKafkaConsumer.start",
        "2f1ba70443327538800d348e61042cdedd5a5e6306f40ebe1a06dddba7494c45",
        _CONSUMER,
        "_fetch_max_wait_ms",
    ),
    # drain: faust's drain loop, copied with the per-message `wait_first` made a direct step
    # while the flow is not suspended; the race it falls back to.
    _g(
        "faust.transport.consumer:Consumer._drain_messages",
        "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
        _DRAIN,
        "_drain_messages",
        "_stopped",
        "_commit_every",
        "_add_gap",
        "_n_acked",
    ),
    _g(
        "mode.services:Service.wait_first",
        "feade6a31f8a67897cf687c54c66f5f4535288050bbaac07249ce2063d36ae2e",
        _DRAIN,
    ),
    # drain: faust's fetch generator, inlined into the drain loop, and what it calls.
    _g(
        "faust.transport.consumer:Consumer.getmany",
        "4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e",
        _DRAIN,
    ),
    _g(
        "faust.transport.consumer:Consumer._wait_next_records",
        "6218e1969a636b3ff504ad1b8e7ad58a113572e43d746cc96d684ed5153032c6",
        _DRAIN,
        "_wait_next_records",
    ),
    _g(
        "faust.transport.drivers.aiokafka:Consumer._to_message",
        "7c24f6511b2fcef7cbfe73526e78de033bfe0df211f1fd30509d699c9deb6ce4",
        _DRAIN,
        "_to_message",
    ),
    _g(
        "faust.transport.consumer:Consumer.on_buffer_full",
        "c8961679e0bcdce5c23b07143d687ec8814492012e176332552e81b8feb7862c",
        _DRAIN,
        "_buffered_partitions",
    ),
    # conductor: faust's per-partition callback, which `DirectHandler.put` does without a
    # coroutine when it would not wait, and the index it is found in ...
    _g(
        "faust.transport.conductor:ConductorCompiler.build",
        "837cf521368c1ee4b22c235a2b137f665eca03d0e3e01b5ddedb65232ee73bf2",
        _CONDUCTOR,
    ),
    _g(
        "faust.transport.conductor:Conductor._compile_message_handler",
        "9fbc0538097aa4eca6113b99df8d17605ae72a6b5030482f041a183f4cc34df1",
        _CONDUCTOR,
        "_tp_to_callback_lock",
        "_tp_to_callback",
    ),
    _g(
        "faust.transport.conductor:Conductor._build_handler",
        "5c071d1277988c57e4bb62e25551981babd67d6544d85db9b14bdb0d8aa1b56d",
        _CONDUCTOR,
        "_build_handler",
    ),
    _g(
        "faust.transport.conductor:Conductor._update_callback_map",
        "37598771880d27baf413d0f0c939fc885be437d24a22c00509865c2dfbb283e0",
        _CONDUCTOR,
    ),
    _g(
        "faust.transport.base:Transport.create_conductor",
        "eeedfbe95f17eff1047c94cd9670c2a3121914a0e0dd379cccc7f494cd4e0c5e",
        _CONDUCTOR,
    ),
    # ... what it waits on (flow control, the producer buffer) and counts (the reference) ...
    _g(
        "mode.utils.queues:FlowControlEvent.acquire",
        "ed0208e866e64d0b8c677054eb1e6988aea3e9cb248f81b040b30e749fb11cd6",
        _CONDUCTOR,
    ),
    _g(
        "faust.transport.producer:ProducerBuffer.wait_until_ebb",
        "758dd5744044071bbc79609fa8e5bfc339818f186bc19b723de2c4c877412e00",
        _CONDUCTOR,
    ),
    _g(
        "faust.transport.producer:ProducerBuffer.size.fget",
        "b543a978fdece62e7d7c434eea6e842995d67cc1d3288434f5f26ad72c10a779",
        _CONDUCTOR,
    ),
    _g(
        "faust.types.tuples:Message.incref",
        "78d34df830d3089b463d2bbc6e06892fa49b427f5b9340e0f69032e825ef7cbf",
        _CONDUCTOR,
    ),
    # ... and the decode of a raw bytes topic, the identity it skips.
    _g(
        "faust.serializers.schemas:Schema.compile",
        "d46eec5ce3195b2c6752cb860a10946cee66ddf6a955f2ea44ac1568c0ecb9ad",
        _CONDUCTOR,
    ),
    _g(
        "faust.serializers.schemas:Schema.loads_key",
        "9adc30303f20915c764a93dc48721210cd66c15e151669e7a9f6881bce3530d7",
        _CONDUCTOR,
    ),
    _g(
        "faust.serializers.schemas:Schema.loads_value",
        "61a4628b4e0966e6fc5602c1b9a13de3f1746e576986a43f12afaaf61f062a5f",
        _CONDUCTOR,
    ),
    _g(
        "faust.serializers.registry:Registry.loads_key",
        "75262a2361a3bd256c346fcfa432182468dac4328afe48bcd0e62a9b6e3573be",
        _CONDUCTOR,
    ),
    _g(
        "faust.serializers.registry:Registry.loads_value",
        "a9a8d9f63e03744fb9fcfbb3dfc03acd949032c0515fa2384c7b8c1d40378059",
        _CONDUCTOR,
    ),
    _g(
        "faust.serializers.registry:Registry._prepare_payload",
        "0740e90d2a9088faaaf2626f4366e44b8d65f80d40e05c9842991b4284fc94e7",
        _CONDUCTOR,
    ),
    _g(
        "faust.serializers.codecs:raw._loads",
        "783f6612c00294b56f637640bae060c835c507e107e77a70e29466725b741b5b",
        _CONDUCTOR,
    ),
    _g(
        "faust.app.base:App.create_event",
        "15fea3d1e95e6625b2f6a969e9ce4bbed786bed15fde58f0c6518f6e461f7a10",
        _CONDUCTOR,
    ),
    # batches: faust's per-event iterator and take_events, replaced for the worker's agents ...
    _g(
        "faust.streams:Stream._py_aiter",
        "3a48ee257a65435b482d51edb74f2993a67867949b1ef89b49fea893769e0614",
        _BATCHES,
        "_processors",
    ),
    _g(
        "faust.streams:Stream._c_aiter",
        "fa44582a5882e9df5240199eabc475668bcd3c13b1816c45805dc746145b80bf",
        _BATCHES,
    ),
    _g(
        "faust.streams:Stream.take_events",
        "607d48aead118ba8ea868718a0df87de1c5fcecd10ec542c659b448796728e08",
        _BATCHES,
    ),
    # ... with the consumer's tracking and ack bookkeeping done as faust does it ...
    _g(
        "faust.transport.consumer:Consumer.track_message",
        "217d7f1399a4cd8e15a43a64ecf50413b9b738058e5433e057f0dc3927a3fc03",
        _BATCHES,
        "_unacked_messages",
    ),
    _g(
        "faust.transport.consumer:Consumer.ack",
        "5fcf41cf45153475de3790dc56fec1b83335956dc8b3bf7ff6bbb2b57627f03f",
        _BATCHES,
        "_committed_offset",
        "_acked_index",
        "_acked",
        "_n_acked",
        "_waiting_for_ack",
    ),
    _g(
        "faust.types.tuples:Message.ack",
        "4751b72c4ed84153a7b6c14fdfe41cc92e477b38a6c6089cb785532ef5771688",
        _BATCHES,
    ),
    _g(
        "faust.transport.consumer:Consumer.wait_empty",
        "e4662fe24f094819add590b2d75f233840e77823b432aea6504539768572102f",
        _BATCHES,
    ),
    # ... waiting on the stream's stop event with a future of its own ...
    _g(
        "mode.utils.locks:Event.set",
        "ae17140f18d1f75f1fbed04fe67a3f405f1748f8bce95136e237239b398f319a",
        _BATCHES,
        "_waiters",
    ),
    # ... and the conductor's set of topics whose messages are tracked and acked.
    _g(
        "faust.transport.conductor:Conductor._update_indices",
        "619b3247b96ac7d508b9b571e30fdaceb00378b77c79e4aee12a5d8ee3f41d34",
        _BATCHES,
        "_acking_topics",
    ),
    # context: how faust sets and reads the current event that `as_current` sets.
    _g(
        "faust.streams:current_event",
        "3b821f1a78d86a58234dfe781fbf539775b00e66fdac9489c1c398a2d81d7e9d",
        _CONTEXT,
        "_current_event",
    ),
    _g(
        "faust.streams:Stream._set_current_event",
        "b9a41294b605ac08c44529e087ad0b907a11c587b2e0fcbecf9ad667a4633e61",
        _CONTEXT,
        "_set_current_event",
    ),
    # stores: acknowledged changelog records written to a table's store as faust writes them.
    _g(
        "faust.stores.rocksdb:Store._set",
        "4227e561e288d9413bf663a3a67940fd4976f5484e70e49445858ce4d400d26e",
        _STORES,
        "_set",
        "_key_index",
    ),
    _g(
        "faust.stores.rocksdb:Store._del",
        "07f42ff3caefffddb002ba3c316120ee8a608a15021fa226fd8e9ba2635004a9",
        _STORES,
        "_del",
    ),
    _g(
        "faust.stores.rocksdb:Store._db_for_partition",
        "cb7e67d5f9efc4bced7b7ab09a55fe717c352daad5b693594e3f7ca52a98787f",
        _STORES,
        "_db_for_partition",
    ),
    _g(
        "faust.stores.rocksdb:Store.apply_changelog_batch",
        "ea3344d369fc4ab5e3cdace30565691136035a463acb7b2551fdc0b8af71643b",
        _STORES,
    ),
    _g(
        "faust.tables.base:Collection._on_changelog_sent",
        "60122c86a120d82cffa95da4c22323e12d67fa82f3112f08ac7f8edde7c47826",
        _STORES,
    ),
    # producer: the aiokafka producer behind faust's, and what its `send` does per message.
    _g(
        "faust.transport.drivers.aiokafka:Producer.on_start",
        "219c9a7a785d77b29016a7f32a12b29645eb9a84f4dd320eee420415eec54120",
        _PRODUCER,
        "_producer",
    ),
    _g(
        "aiokafka.client:AIOKafkaClient._wait_on_metadata",
        "52b0a5ee78ef3aa0c21c82b69baa20eb6983d9e5871e9e66784198cb2f1bf256",
        _PRODUCER,
        "_wait_on_metadata",
    ),
    _g(
        "aiokafka.producer.producer:AIOKafkaProducer._partition",
        "e45fa9c539d431d1a8af1efb94604c35e9108132a28f6a1e5b03977a0c67beaa",
        _PRODUCER,
        "_partitioner",
    ),
    # monitor: faust's Prometheus sensor, its broken metrics replaced and hot paths copied.
    _g(
        f"{_PROMETHEUS}.__init__",
        "c0d8ca8cca0a20a199b85e8d74de775a98f35bcfeffd431e753c94942ae238ef",
        _MONITOR,
        "_metrics",
    ),
    _g(
        f"{_PROMETHEUS}._stream_label",
        "4753db036cdfceab89ea4aa3abde555c7eb78211e71e2aa304be8253e46c229f",
        _MONITOR,
        "_stream_label",
    ),
    _g(
        f"{_PROMETHEUS}._clear_partition_related_metrics",
        "f733982878e5c883218e71621ec05556e8583b13ab144150a495acbbb8fa348f",
        _MONITOR,
        "_clear_partition_related_metrics",
    ),
    _g(
        f"{_PROMETHEUS}.on_message_in",
        "ca24793cbc41deb7998cef2c78cf95604dbe96de13e1ae599d8d66797920470d",
        _MONITOR,
    ),
    _g(
        f"{_PROMETHEUS}.on_stream_event_in",
        "f592409433679cf8cd15ec9e37aa0f2a9678d56dc1b36973cf3ae7b0a10c7522",
        _MONITOR,
    ),
    _g(
        f"{_PROMETHEUS}.track_tp_end_offset",
        "85f7fca946f5c2be97a61d160d015c22d683c7fc6bdb6525b47433f999cba185",
        _MONITOR,
    ),
    _g(
        f"{_PROMETHEUS}.on_rebalance_return",
        "4dbe3534a64504755340d61656d684c5ed3ea34f7937b4164800ec59ec959a40",
        _MONITOR,
    ),
    _g(
        f"{_PROMETHEUS}.on_rebalance_end",
        "33ac613ec7131708638074b32b5f961bfb03d20734e8ca2680e30fa20830c45c",
        _MONITOR,
    ),
    _g(
        f"{_PROMETHEUS}.on_web_request_end",
        "470b3a4f4e75c7fd125b8787359ffd0fbef72bf48c8d6c1d72d1a29c91405c2d",
        _MONITOR,
    ),
    # monitor: the per-event sensor calls `record_batch_in` / `record_batch_out` make once per
    # batch for faust's `Monitor` and the worker's monitor (what they record, per event).
    _g(
        f"{_MONITOR_BASE}.on_message_in",
        "b2a9a9045b2f456cc736fdbf99f47f4f45335896050c9e48703dfc8146ca51ea",
        _MONITOR,
    ),
    _g(
        f"{_MONITOR_BASE}.on_stream_event_in",
        "df6d2e5f6397ce441d1fdeb83cb7cb5893a33e507e5e0c8caad38e6a916d838d",
        _MONITOR,
    ),
    _g(
        f"{_MONITOR_BASE}.on_stream_event_out",
        "2d2277a6dbda754cd655207496c08adb6b9141e59556cd9373593c1ef28a18bd",
        _MONITOR,
    ),
    _g(
        f"{_MONITOR_BASE}.on_message_out",
        "7c4054247cde96c35740d0f5876b90d67549eed0af16f19cdcb3337e719a6c3b",
        _MONITOR,
    ),
    _g(
        f"{_PROMETHEUS}.on_stream_event_out",
        "8dce2fcf20165d4d127d64b3513617b357a5614efbd4487308b6ad0442679c75",
        _MONITOR,
    ),
    _g(
        f"{_PROMETHEUS}.on_message_out",
        "347089e00334fd7546abf1575e47741961403cdb2022ff71a923d13ad487fc1d",
        _MONITOR,
    ),
)


def source_sha256(source: str) -> str | None:
    """sha256 of the installed source of `source` ("module:Qualified.name"); None if it is gone.

    A function replaced by one of the fixes declares faust's original as `__wrapped__`, so the
    check reads faust's source, not the fix's, after the fix is installed.
    """
    try:
        func = inspect.unwrap(pkgutil.resolve_name(source))
        text = inspect.getsource(func)
    except (AttributeError, ImportError, OSError, TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def changed_sources(guarded: Iterable[Guarded] = GUARDED) -> list[Guarded]:
    """The entries of `guarded` whose installed source is not the one they were written for."""
    return [g for g in guarded if source_sha256(g.source) != g.sha256]


def check_sources(guarded: Iterable[Guarded] = GUARDED) -> None:
    """Raise `FaustChangedError` (one line, naming every changed source) if any changed."""
    changed = changed_sources(guarded)
    if changed:
        names = ", ".join(f"{g.source} ({g.fix})" for g in changed)
        msg = (
            f"faust-streaming {faust.__version__} / aiokafka {aiokafka.__version__} changed "
            f"{len(changed)} source(s) the faust fixes were written against (faust-streaming "
            f"{FAUST_VERSION} / aiokafka {AIOKAFKA_VERSION}): {names}; "
            "see docs/faust-fixes.md before refreshing streamguard.worker.faust_fixes.sources"
        )
        raise FaustChangedError(msg)
