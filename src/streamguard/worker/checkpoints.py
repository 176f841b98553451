"""The worker's transparency log: checkpoints of its audit chains, sent and served.

After a batch's audit records are acknowledged, `Transparency.delivered` adds them to their
chains' trees (`streamguard.trail.checkpointer`) and signs what is due: a chain with at least
`every_records` new records, or new records older than `every_seconds` (a 1 s timer checks).
Each signed checkpoint goes to the checkpoints topic keyed by chain, and the last ones of every
chain are served at `/tlog/checkpoints` on the worker's web server for witnesses to poll, with
the public key at `/tlog/key` (docs/transparency.md).

The first time after (re)assignment that a chain grows, its tree is taken up from the chain's
last checkpoint on the checkpoints topic and the audit records after it (both read backwards
with `AuditTail`). A checkpoint of another key, or none, means reading the chain's whole
partition once. If the trail does not continue the signed tree, or a checkpoint cannot be
delivered, the worker stops (exit 70) rather than sign a history it cannot stand behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from streamguard import serde
from streamguard.exceptions import InputFileError, StreamguardError
from streamguard.trail.checkpoint import ED25519, NoteError, SignerKey, verify_note
from streamguard.trail.checkpointer import Checkpointer, CheckpointerError, leaf_fields
from streamguard.trail.proofs import CheckpointEntry
from streamguard.trail.tail import AuditTail

if TYPE_CHECKING:
    from faust.types import AppT
    from faust.types.web import Request, View
    from faust.types.web import Response as WebResponse

    from streamguard.worker.app import StreamguardWorker

__all__ = ("Transparency", "install_transparency")

_UNSIGNED: Final = (
    "this worker has no STREAMGUARD_CHECKPOINT_KEY: its audit trail is not checkpointed, and "
    "whoever can write to the audit topic can rewrite it undetected"
)

log = logging.getLogger("streamguard.worker")


class Transparency:
    """Checkpoints of the chains this worker writes (module docstring)."""

    def __init__(
        self,
        key: SignerKey,
        *,
        topic: str,
        audit_topic: str,
        bootstrap: str,
        client_options: Mapping[str, Any],
        every_records: int,
        every_seconds: float,
        producer: Callable[[], Any],
        on_fatal: Callable[[str], None],
        clock: Callable[[], float],
    ) -> None:
        self.key = key
        self.topic = topic
        self.checkpointer = Checkpointer(key, every_records, every_seconds)
        self._producer = producer
        self._on_fatal = on_fatal
        self._clock = clock
        self._audit = AuditTail(bootstrap, audit_topic, client_options)
        self._checkpoints = AuditTail(bootstrap, topic, client_options)
        self._lock: asyncio.Lock | None = None
        self._halted = False

    def halt(self) -> None:
        """Sign nothing more: a batch was not delivered (the worker is stopping)."""
        self._halted = True

    def _locked(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def delivered(self, audit: Iterable[tuple[str, bytes]]) -> None:
        """Add acknowledged audit records (chain, JSON) to their trees; sign what is due."""
        if self._halted:
            return
        by_chain: dict[str, list[tuple[int, str]]] = {}
        for chain, value in audit:
            by_chain.setdefault(chain, []).append(leaf_fields(value))
        if not by_chain:
            return
        async with self._locked():
            try:
                for chain, leaves in by_chain.items():
                    if not self.checkpointer.knows(chain):
                        await self._resume(chain, leaves[0][0])
                    self.checkpointer.extend_hashes(chain, leaves)
            except CheckpointerError as exc:
                self._on_fatal(f"audit chain and checkpoints disagree: {exc}")
                raise
            await self._send(self.checkpointer.due(self._clock()))

    async def tick(self) -> None:
        """Sign the chains whose new records waited `every_seconds` (run by a timer)."""
        if self._halted:
            return
        async with self._locked():
            await self._send(self.checkpointer.due(self._clock()))

    def forget(self) -> None:
        """After a rebalance another worker may append to a chain: take it up again later."""
        for chain in list(self.checkpointer.chains()):
            self.checkpointer.forget(chain)

    async def stop(self) -> None:
        await self._audit.stop()
        await self._checkpoints.stop()

    async def _resume(self, chain: str, first_seq: int) -> None:
        last = await self._last_checkpoint(chain)
        after = last.checkpoint.size if last is not None else 0
        if after >= first_seq:
            msg = (
                f"chain {chain!r}: a checkpoint of size {after} exists but the chain continues "
                f"at seq {first_seq}: the trail lost records that were signed"
            )
            raise CheckpointerError(msg)
        records = await self._audit.records_after(chain, after, first_seq)
        self.checkpointer.resume(chain, last, records, self._clock())
        log.info(
            "transparency: chain %s continues its tree at size %d (%d records since the last "
            "checkpoint)",
            chain,
            after,
            len(records),
        )

    async def _last_checkpoint(self, chain: str) -> CheckpointEntry | None:
        raw = await self._checkpoints.last_record(chain, None)
        if raw is None:
            return None
        raw.pop("offset", None)
        try:
            entry = CheckpointEntry.from_dict(raw)
            verify_note(entry.note, [self.key.verifier()])
        except NoteError as exc:
            # Another key (rotated) or an unreadable entry: the tree is rebuilt from the
            # chain's records, which the new checkpoints then cover.
            log.warning(
                "transparency: the last checkpoint of %s is not usable with this key (%s); "
                "rebuilding its tree from the audit topic",
                chain,
                exc,
            )
            return None
        return entry

    async def _send(self, entries: Sequence[CheckpointEntry]) -> None:
        if not entries:
            return
        producer = self._producer()
        try:
            pending = [
                await producer.send(
                    self.topic, e.chain.encode(), serde.dumps(e.as_dict()), None, None, None
                )
                for e in entries
            ]
            outcomes = await asyncio.gather(*pending, return_exceptions=True)
        except Exception as exc:  # not queued: the next entry's previous_size would dangle
            self.halt()
            self._on_fatal(f"checkpoint not delivered: {type(exc).__name__}")
            raise
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            self.halt()
            self._on_fatal(f"{len(failed)} checkpoint(s) not delivered: {type(failed[0]).__name__}")
            return
        for entry in entries:
            log.info(
                "transparency: signed %s at size %d", entry.checkpoint.origin, entry.checkpoint.size
            )

    def page(self) -> dict[str, Any]:
        """The body of /tlog/checkpoints."""
        return {
            "log_key": self.key.verifier().encode(),
            "checkpoints": [e.as_dict() for e in self.checkpointer.recent()],
        }

    def mount(self, app: AppT) -> None:
        """Serve /tlog/checkpoints and /tlog/key on faust's web server."""

        @app.page("/tlog/checkpoints")
        async def checkpoints_page(view: View, request: Request) -> WebResponse:
            return view.bytes(
                serde.dumps(self.page()), headers={"Content-Type": "application/json"}
            )

        @app.page("/tlog/key")
        async def key_page(view: View, request: Request) -> WebResponse:
            body = (self.key.verifier().encode() + "\n").encode()
            return view.bytes(body, headers={"Content-Type": "text/plain; charset=utf-8"})


def install_transparency(worker: StreamguardWorker) -> Transparency | None:
    """Checkpoints for `worker` if STREAMGUARD_CHECKPOINT_KEY is set (fail closed on a bad
    key file: InputFileError before anything connects); without it the worker runs, says so
    once at start, and /tlog/checkpoints answers 503 saying why."""
    from streamguard.trail.tlog_cli import load_signer_key

    settings, app = worker.settings, worker.app
    if settings.checkpoint_key is None:
        log.warning("%s", _UNSIGNED)

        @app.page("/tlog/checkpoints")
        async def unsigned_page(view: View, request: Request) -> WebResponse:
            body = serde.dumps({"error": _UNSIGNED, "checkpoints": []})
            return view.bytes(body, status=503, headers={"Content-Type": "application/json"})

        return None
    try:
        key = load_signer_key(settings.checkpoint_key, ED25519)
    except StreamguardError as exc:
        msg = f"STREAMGUARD_CHECKPOINT_KEY: {exc}"
        raise InputFileError(msg) from None
    transparency = Transparency(
        key,
        topic=worker.topics["checkpoints"],
        audit_topic=worker.topics["audit"],
        bootstrap=settings.bootstrap_servers,
        client_options=settings.kafka_client_options(),
        every_records=settings.checkpoint_every_records,
        every_seconds=float(settings.checkpoint_every_seconds),
        producer=lambda: worker.app.producer,
        on_fatal=worker.on_undeliverable,
        clock=worker.clock,
    )
    app.timer(1.0, name="streamguard.checkpoints")(transparency.tick)
    transparency.mount(app)
    log.info("transparency: signing checkpoints as %s", key.verifier().encode())
    return transparency
