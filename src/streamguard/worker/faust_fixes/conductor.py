"""The conductor's per-partition callback, with a direct put for a partition of one raw topic.

faust 0.15.3 hands each fetched message to the agents through two coroutines: the conductor's
`on_message` (an `asyncio.Lock` held around a dict lookup) and the callback compiled for the
message's partition (`ConductorCompiler.build`: it awaits flow control and the producer
buffer, then decodes the message through the topic's schema, the serializer registry and two
codecs, each reading faust's settings object, and puts the event on every subscribed
channel's queue). For a partition whose only subscriber is one topic with raw bytes keys and
values, as every input of the worker is, the decode is the identity and none of it needs to
wait unless flow control is suspended, the producer buffer is over its limit or the queue is
full.

`DirectConductor` builds faust's callback as before and wraps it in a `DirectHandler` when
the partition has exactly that one subscriber: calling it is calling faust's callback;
`DirectHandler.put` delivers a message without a coroutine when faust's callback would not
wait (flow active, producer buffer within its limit, room in the queue): one reference, one
`faust.Event`, one `put_nowait_enhanced` with the same pressure callbacks faust's closure
passes. When faust's callback would wait, `put` returns False having done nothing, and the
caller hands the message to faust's callback (`faust_fixes.drain`). Guarded in `sources`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, MutableSet
from typing import Any

import faust
from faust.serializers import codecs
from faust.serializers.registry import Registry
from faust.transport.conductor import Conductor
from faust.types import TP

__all__ = ("DirectConductor", "DirectHandler", "direct_handler")


def _raw_bytes_topic(app: Any, channel: Any) -> bool:
    """True if faust's decode of `channel`'s messages returns their key and value unchanged."""
    if type(channel) is not faust.Topic:
        return False
    schema = channel.schema
    return (
        type(schema) is faust.Schema
        and schema.key_type is bytes
        and schema.value_type is bytes
        and schema.key_serializer == "raw"
        and schema.value_serializer == "raw"
        and type(app.serializers) is Registry
        and type(codecs.get_codec("raw")) is codecs.raw
        # `App.create_event` builds `conf.Event`; a subclass may build something else.
        and type(app).create_event is faust.App.create_event
        and not app.conf.producer_threaded
    )


class DirectHandler:
    """faust's callback for one partition (`__call__`), and a put that never waits (`put`)."""

    __slots__ = (
        "_app",
        "_buffer",
        "_callback",
        "_channel",
        "_event",
        "_flow_is_active",
        "_on_pressure_drop",
        "_on_pressure_high",
        "tp",
    )

    def __init__(self, conductor: Any, tp: TP, channel: Any, callback: Any) -> None:
        app = conductor.app
        self.tp = tp
        self._app = app
        self._callback = callback
        self._channel = channel
        self._event = app.conf.Event
        self._flow_is_active = app.flow_control.is_active
        self._buffer = app.producer.buffer
        on_topic_buffer_full = app.sensors.on_topic_buffer_full
        on_buffer_full = app.consumer.on_buffer_full
        on_buffer_drop = app.consumer.on_buffer_drop

        # The pressure callbacks of faust's compiled closure, for this partition.
        def on_pressure_high() -> None:
            on_topic_buffer_full(tp)
            on_buffer_full(tp)

        def on_pressure_drop() -> None:
            on_buffer_drop(tp)

        self._on_pressure_high = on_pressure_high
        self._on_pressure_drop = on_pressure_drop

    def __call__(self, message: Any) -> Coroutine[Any, Any, None]:
        return self._callback(message)  # type: ignore[no-any-return]

    def put(self, message: Any) -> bool:
        """Deliver `message` as faust's callback would, if that would not wait; else False."""
        if not self._flow_is_active():  # faust's callback waits in `flow_control.acquire`
            return False
        buffer = self._buffer
        if buffer.pending.qsize() > buffer.max_messages:  # ... in `wait_until_ebb`
            return False
        queue = self._channel.queue  # read per message, as faust's closure does
        if queue.full():  # ... in `channel.put`
            return False
        # `message.incref()` without its lock: nothing else holds this new message yet.
        message.refcount += 1
        queue.put_nowait_enhanced(
            self._event(self._app, message.key, message.value, message.headers, message),
            on_pressure_high=self._on_pressure_high,
            on_pressure_drop=self._on_pressure_drop,
        )
        return True


def direct_handler(conductor: Any, tp: TP) -> DirectHandler | None:
    """The `DirectHandler` of `tp`, or None (no direct put, or faust is updating its index)."""
    if conductor._tp_to_callback_lock.locked():  # faust's `on_message` would wait for it
        return None
    handler = conductor._tp_to_callback.get(tp)
    return handler if type(handler) is DirectHandler else None


class DirectConductor(Conductor):
    """faust's conductor whose callbacks for raw single-topic partitions are `DirectHandler`s."""

    def _build_handler(self, tp: TP, channels: MutableSet[Any]) -> Callable[..., Any]:
        callback = super()._build_handler(tp, channels)
        if len(channels) == 1:
            (channel,) = channels
            if _raw_bytes_topic(self.app, channel):
                return DirectHandler(self, tp, channel, callback)
        return callback
