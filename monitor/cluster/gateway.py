"""``monitor serve`` in cluster mode: a gateway. Same endpoints and protocol; the work is shared.

A gateway keeps what must stay with a room (its socket, the VAD segmenter, detection state,
dedup, the outbox) and hands out the rest: utterances to ``monitor worker`` processes,
archive writes to ``monitor archiver`` (see :mod:`monitor.cluster.remote`), alerts and events
to every gateway (:mod:`monitor.cluster.fanout`).

Rooms are owned through leases in the ``monitor_leases`` bucket (:class:`Leases`): created
with compare-and-set, renewed every ``LEASE_RENEW_S``, gone ``LEASE_TTL_S`` after the owner
died. The lease's revision is the session's *epoch*; a gateway that takes a room over
writes it to ``monitor_fences`` first, and the archiver refuses writes of older epochs, so a
cut-off gateway cannot keep writing. Each session is checkpointed at utterance boundaries
(:mod:`monitor.cluster.checkpoint`); a client whose gateway died resumes on any gateway with
``start`` + ``seq`` + ``session_id`` and is asked to send again from the checkpoint.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nats.js.errors import KeyWrongLastSequenceError

from monitor.alerts import Alert
from monitor.asr.vad import SegmenterState
from monitor.cluster.broker import LEASE_RENEW_S, LEASE_TTL_S, Broker, safe_token
from monitor.cluster.checkpoint import SessionCheckpoint
from monitor.cluster.fanout import Fanout
from monitor.cluster.jobs import segment_key
from monitor.cluster.metrics import ClusterMetrics
from monitor.cluster.remote import BrokerEvidence, LoopBridge, RemoteTranscriber
from monitor.server.protocol import ErrorCode, fatal

if TYPE_CHECKING:
    from monitor.server.hub import AlertHub
    from monitor.stream import RoomPipeline, UtteranceResult

log = logging.getLogger(__name__)

TAKEOVER_WAIT_S = LEASE_TTL_S + 1.5
"""How long a resume waits for a dead gateway's lease to expire before answering room_busy."""
START_KEY = "start"
"""The boundary key of a session's opening checkpoint."""


def default_gateway_id() -> str:
    return f"gw-{socket.gethostname()}-{os.getpid()}"


def stable_alert_id(created_ms: int, session_id: str, key: str, alert: Alert) -> str:
    """An alert id that is the same however often the utterance is processed (takeovers,
    redeliveries): the job's time (ids still sort by time), then a hash of what makes it unique."""
    digest = hashlib.sha256(f"{session_id}|{key}|{alert.rule_id}|{alert.category}".encode()).hexdigest()
    return f"{created_ms:012x}{digest[:20]}"


@dataclass
class Lease:
    room_id: str
    session_id: str
    epoch: int
    revision: int


class Leases:
    """This gateway's room leases in the ``monitor_leases`` bucket (see the module docstring)."""

    def __init__(self, broker: Broker, gateway_id: str, metrics: ClusterMetrics) -> None:
        self.broker = broker
        self.gateway_id = gateway_id
        self.metrics = metrics
        self.held: dict[str, Lease] = {}
        self.on_lost: Any = None  # callback(room_id) when another gateway took a room

    def _value(self, room_id: str, session_id: str, epoch: int) -> bytes:
        return json.dumps({"gateway": self.gateway_id, "room_id": room_id, "session_id": session_id,
                           "epoch": epoch}).encode()  # fmt: skip

    async def owner(self, room_id: str) -> dict[str, Any] | None:
        try:
            entry = await self.broker.leases.get(safe_token(room_id))
        except Exception:
            return None
        return json.loads(entry.value) if entry.value else None

    async def acquire(self, room_id: str, session_id: str, *, wait_s: float = 0.0) -> Lease:
        """Own ``room_id`` for ``session_id``; waits up to ``wait_s`` for another owner's lease to
        expire (no event marks an expiry, so this retries with back-off), then room_busy."""
        key = safe_token(room_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        delay = 0.05
        while True:
            try:
                revision = await self.broker.leases.create(key, self._value(room_id, session_id, 0))
            except Exception:  # the key exists: another owner (or ours from before)
                current = await self.owner(room_id)
                if current is not None and current.get("gateway") == self.gateway_id and room_id in self.held:
                    return self.held[room_id]
                if loop.time() >= deadline:
                    holder = current.get("gateway") if current else "another gateway"
                    raise fatal(ErrorCode.ROOM_BUSY, f"room {room_id!r} is streaming through {holder}") from None
                await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
                delay = min(delay * 2, 0.4)
                continue
            lease = Lease(room_id, session_id, epoch=revision, revision=revision)
            lease.revision = await self.broker.leases.update(key, self._value(room_id, session_id, revision),
                                                             last=revision)  # fmt: skip
            await self.broker.fences.put(safe_token(session_id), str(lease.epoch).encode())
            self.held[room_id] = lease
            self.metrics.lease_changes.labels(change="acquired").inc()
            return lease

    async def release(self, room_id: str) -> None:
        lease = self.held.pop(room_id, None)
        if lease is None:
            return
        try:
            await self.broker.leases.delete(safe_token(room_id), last=lease.revision)
        except Exception as exc:  # expired or taken meanwhile: nothing of ours to delete
            log.info("lease of room %s already gone at release: %s", room_id, exc)
        self.metrics.lease_changes.labels(change="released").inc()

    async def renew_forever(self) -> None:
        while True:
            await asyncio.sleep(LEASE_RENEW_S)
            for room_id, lease in list(self.held.items()):
                try:
                    lease.revision = await self.broker.leases.update(
                        safe_token(room_id), self._value(room_id, lease.session_id, lease.epoch), last=lease.revision
                    )
                except KeyWrongLastSequenceError:
                    self._lost(room_id)
                except Exception as exc:  # the broker is briefly unreachable: try again next round
                    log.warning("renewing the lease of room %s failed: %s", room_id, exc)

    def _lost(self, room_id: str) -> None:
        if self.held.pop(room_id, None) is not None:
            self.metrics.lease_changes.labels(change="lost").inc()
            log.warning("room %s was taken over by another gateway; this one stops streaming it", room_id)
            if self.on_lost is not None:
                self.on_lost(room_id)


class ClusterRoom:
    """One session's cluster state on its gateway: lease epoch, remote transcriber, checkpoints."""

    def __init__(self, gateway: Gateway, *, session_id: str, room_id: str, epoch: int) -> None:
        self.gateway = gateway
        self.session_id = session_id
        self.room_id = room_id
        self.epoch = epoch
        self.transcriber = RemoteTranscriber(
            gateway.bridge, session_id=session_id, room_id=room_id, model_version=gateway.model_version
        )
        self._cut: tuple[SegmenterState, int, str] | None = None  # segmenter right after cutting `key`
        self._done: tuple[str, dict[str, Any]] | None = None  # detection right after processing `key`
        self._writing: asyncio.Task[None] | None = None

    @property
    def fence(self) -> tuple[str, int]:
        return self.session_id, self.epoch

    # event loop: the segmenter just cut these segments
    def on_segments(self, pipeline: RoomPipeline, next_seq: int, segments: list[Any]) -> None:
        if segments:
            self._cut = (pipeline.segmenter_state(), next_seq, segment_key(segments[-1]))

    # worker thread: an utterance was processed (before its alerts are archived)
    def after_process(self, pipeline: RoomPipeline, result: UtteranceResult) -> None:
        key = segment_key(result.segment)
        created_ms = self.transcriber.created_ms.get(key, 0)
        for alert in result.alerts + result.deduplicated:
            alert.alert_id = stable_alert_id(created_ms, self.session_id, key, alert)
        self._done = (key, pipeline.detection_state())

    # event loop: the utterance's results were delivered
    def checkpoint(self, checkpoint: SessionCheckpoint | None) -> None:
        """Store ``checkpoint`` (latest wins) unless a write is still in flight."""
        if checkpoint is None or (self._writing is not None and not self._writing.done()):
            return
        self._writing = asyncio.get_running_loop().create_task(self.gateway.store_checkpoint(checkpoint))

    def consistent_state(self, delivered_key: str) -> tuple[SegmenterState, int, dict[str, Any]] | None:
        """Segmenter, stream position and detection state of the boundary ``delivered_key`` (the
        utterance just delivered), when the segmenter has cut nothing since."""
        if self._cut is None or self._done is None or not self._cut[2] == self._done[0] == delivered_key:
            return None
        return self._cut[0], self._cut[1], self._done[1]

    def mark_start(self, pipeline: RoomPipeline, next_seq: int) -> None:
        """The session's first boundary: where it opened (or was restored)."""
        self._cut = (pipeline.segmenter_state(), next_seq, START_KEY)
        self._done = (START_KEY, pipeline.detection_state())


class Gateway:
    """This process's cluster link: broker, leases, fan-out, remote work (cluster mode only)."""

    def __init__(self, broker: Broker, *, gateway_id: str, model_version: str, metrics: ClusterMetrics) -> None:
        self.broker = broker
        self.gateway_id = gateway_id
        self.model_version = model_version
        self.metrics = metrics
        self.bridge = LoopBridge(broker, asyncio.get_running_loop())
        self.evidence = BrokerEvidence(self.bridge)
        self.leases = Leases(broker, gateway_id, metrics)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, hub: AlertHub) -> None:
        fanout = Fanout(self.broker, self.gateway_id, hub.deliver_alert, hub.deliver_event)
        await fanout.start()
        hub.fanout = fanout
        self._tasks.append(asyncio.get_running_loop().create_task(self.leases.renew_forever()))

    def room(self, *, session_id: str, room_id: str, epoch: int) -> ClusterRoom:
        return ClusterRoom(self, session_id=session_id, room_id=room_id, epoch=epoch)

    async def store_checkpoint(self, checkpoint: SessionCheckpoint) -> None:
        try:
            await self.broker.sessions.put(safe_token(checkpoint.session_id), checkpoint.encode())
        except Exception as exc:
            log.warning("checkpoint of session %s not stored: %s", checkpoint.session_id, exc)

    async def load_checkpoint(self, session_id: str) -> SessionCheckpoint | None:
        try:
            entry = await self.broker.sessions.get(safe_token(session_id))
        except Exception:
            return None
        return SessionCheckpoint.decode(entry.value) if entry.value else None

    async def forget_session(self, session_id: str) -> None:
        try:
            await self.broker.sessions.delete(safe_token(session_id))
        except Exception as exc:
            log.info("checkpoint of session %s already gone: %s", session_id, exc)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for room_id in list(self.leases.held):
            await self.leases.release(room_id)
        await self.broker.close()


