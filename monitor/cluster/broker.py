"""The broker (NATS JetStream) as the cluster uses it: names, framing, and the few patterns.

Streams and buckets (created idempotently by :meth:`Broker.ensure`):

=======================  ===================================  ===========================================
``MONITOR_JOBS``         ``monitor.jobs.<session>.<key>``     utterances to transcribe (audio + context);
                                                              one durable pull consumer shared by workers
``MONITOR_RESULTS``      ``monitor.results.<session>.<key>``  transcripts, one per job (last per subject)
``MONITOR_ARCHIVE``      ``monitor.archive.write``            writes for the archiver (alerts, sessions,
                                                              decisions), deduplicated by message id
``MONITOR_ARCHIVED``     ``monitor.archived.<request id>``    the archiver's answer to each write
``MONITOR_EVENTS``       ``monitor.events``                   alerts and events fanned out to every gateway
KV ``monitor_leases``    room id -> owner                     room ownership, expires unless renewed
KV ``monitor_sessions``  session id -> checkpoint             what another gateway needs to take a room over
KV ``monitor_fences``    session id -> epoch                  the archiver refuses writes of older epochs
=======================  ===================================  ===========================================

The broker is transport and replay cache, never the evidence record: JetStream acknowledges
before fsync, so the archive (written only by the archiver) stays the source of truth.

Messages are framed as ``<4-byte big-endian length><JSON meta><binary payload>`` so audio
travels as raw bytes next to its metadata.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from monitor.errors import MonitorError

JOBS_STREAM = "MONITOR_JOBS"
RESULTS_STREAM = "MONITOR_RESULTS"
ARCHIVE_STREAM = "MONITOR_ARCHIVE"
ARCHIVED_STREAM = "MONITOR_ARCHIVED"
EVENTS_STREAM = "MONITOR_EVENTS"
WORKERS_CONSUMER = "workers"
ARCHIVER_CONSUMER = "archiver"
LEASES_BUCKET = "monitor_leases"
SESSIONS_BUCKET = "monitor_sessions"
FENCES_BUCKET = "monitor_fences"
ARCHIVE_WRITE_SUBJECT = "monitor.archive.write"
ARCHIVE_READ_SUBJECT = "monitor.archive.read"
EVENTS_SUBJECT = "monitor.events"

JOB_RETENTION_S = 15 * 60.0
"""Jobs, results and archive answers kept this long (a takeover re-reads them)."""
EVENTS_RETENTION_S = 60 * 60.0
"""Fanned-out events kept this long (a gateway that starts late replays them for ``since=``)."""
LEASE_TTL_S = 2.0
"""A room's lease expires this long after its owner last renewed it (a dead gateway's rooms free up)."""
LEASE_RENEW_S = 0.5
"""How often an owner renews its leases."""
JOB_ACK_WAIT_S = 3.0
"""A job a worker took but did not finish (killed) is handed to another worker after this."""
ARCHIVE_ACK_WAIT_S = 3.0
"""Likewise for the archiver's writes."""
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
"""Largest message (a checkpoint with a long transcript); the local broker is started with it."""


class BrokerError(MonitorError):
    """The broker is unreachable or answered something unusable (names the subject)."""


def frame(meta: dict[str, Any], payload: bytes = b"") -> bytes:
    """``meta`` (JSON) and ``payload`` (raw bytes) in one message body."""
    head = json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode()
    return len(head).to_bytes(4, "big") + head + payload


def unframe(data: bytes, *, subject: str = "") -> tuple[dict[str, Any], bytes]:
    """The meta and payload of a :func:`frame` body; BrokerError naming the subject if malformed."""
    try:
        size = int.from_bytes(data[:4], "big")
        meta = json.loads(data[4 : 4 + size])
    except (ValueError, IndexError) as exc:
        raise BrokerError(f"malformed message on {subject or 'a subject'}: {exc}") from None
    if not isinstance(meta, dict) or len(data) < 4 + size:
        raise BrokerError(f"malformed message on {subject or 'a subject'}: truncated or not an object")
    return meta, data[4 + size :]


def safe_token(text: str) -> str:
    """``text`` as one subject token / KV key (hex of its UTF-8 when it has other characters)."""
    if text and all(c.isalnum() or c in "-_" for c in text) and text.isascii():
        return text
    return "x" + text.encode().hex()


@dataclass
class Broker:
    """A connection to the cluster's NATS server with its JetStream context and buckets."""

    nc: Client
    js: JetStreamContext
    leases: KeyValue
    sessions: KeyValue
    fences: KeyValue

    @classmethod
    async def connect(cls, url: str, *, name: str) -> Broker:
        """Connect to ``url`` (``nats://host:port``), create streams and buckets when missing."""
        try:
            nc = await nats.connect(
                url, name=name, connect_timeout=5, max_reconnect_attempts=-1, reconnect_time_wait=0.5
            )
        except Exception as exc:  # nats-py raises several unrelated types for one cause
            raise BrokerError(f"cannot reach the broker at {url}: {exc}") from None
        js = nc.jetstream(timeout=10)
        await _ensure_streams(js)
        leases = await _bucket(js, LEASES_BUCKET, ttl=LEASE_TTL_S, history=1)
        sessions = await _bucket(js, SESSIONS_BUCKET, ttl=JOB_RETENTION_S * 4, history=1)
        fences = await _bucket(js, FENCES_BUCKET, ttl=JOB_RETENTION_S * 4, history=1)
        return cls(nc, js, leases, sessions, fences)

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.drain()

    async def publish(self, subject: str, body: bytes, *, msg_id: str | None = None) -> None:
        """Publish to a stream (stored before this returns); ``msg_id`` makes repeats a no-op."""
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        await self.js.publish(subject, body, headers=headers)

    async def last(self, stream: str, subject: str) -> bytes | None:
        """The last stored message of ``subject`` in ``stream``, or None."""
        try:
            msg = await self.js.get_last_msg(stream, subject)
        except NotFoundError:
            return None
        return msg.data or b""

    async def wait_for(self, stream: str, subject: str, timeout: float) -> bytes:
        """The message on ``subject``: already stored, or the next one published (TimeoutError)."""
        arrived: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def on_msg(msg: Msg) -> None:
            if not arrived.done():
                arrived.set_result(msg.data)

        sub = await self.nc.subscribe(subject, cb=on_msg)
        try:
            stored = await self.last(stream, subject)
            if stored is not None:
                return stored
            return await asyncio.wait_for(arrived, timeout)
        finally:
            await sub.unsubscribe()

    async def subscribe(self, subject: str, handler: Callable[[Msg], Awaitable[None]]) -> Any:
        """A plain (core NATS) subscription: every message published from now on."""
        return await self.nc.subscribe(subject, cb=handler)


async def _ensure_streams(js: JetStreamContext) -> None:
    def config(name: str, subjects: list[str], max_age: float, **extra: Any) -> StreamConfig:
        return StreamConfig(
            name=name,
            subjects=subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=max_age,
            duplicate_window=min(max_age, 120.0),
            max_msg_size=MAX_PAYLOAD_BYTES,
            **extra,
        )

    streams = [
        config(JOBS_STREAM, ["monitor.jobs.>"], JOB_RETENTION_S, max_msgs_per_subject=1),
        config(RESULTS_STREAM, ["monitor.results.>"], JOB_RETENTION_S, max_msgs_per_subject=1),
        config(ARCHIVE_STREAM, [ARCHIVE_WRITE_SUBJECT], JOB_RETENTION_S),
        config(ARCHIVED_STREAM, ["monitor.archived.>"], JOB_RETENTION_S, max_msgs_per_subject=1),
        config(EVENTS_STREAM, [EVENTS_SUBJECT], EVENTS_RETENTION_S),
    ]
    for stream in streams:
        try:
            await js.add_stream(stream)
        except Exception:  # exists with another config (an older version): update in place
            await js.update_stream(stream)
    for stream_name, durable, ack_wait in (
        (JOBS_STREAM, WORKERS_CONSUMER, JOB_ACK_WAIT_S),
        (ARCHIVE_STREAM, ARCHIVER_CONSUMER, ARCHIVE_ACK_WAIT_S),
    ):
        await js.add_consumer(
            stream_name,
            ConsumerConfig(
                durable_name=durable,
                ack_wait=ack_wait,
                deliver_policy=DeliverPolicy.ALL,
                max_ack_pending=10_000,
                max_deliver=-1,
            ),
        )


async def _bucket(js: JetStreamContext, name: str, *, ttl: float, history: int) -> KeyValue:
    try:
        return await js.key_value(name)
    except Exception:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=name, ttl=ttl, history=history, storage=StorageType.FILE, max_value_size=MAX_PAYLOAD_BYTES
            )
        )
