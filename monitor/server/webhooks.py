"""Webhooks: alerts, decisions and viewer reports POSTed to the platform, from a queue on disk.

Every message the hub publishes (:meth:`~monitor.server.hub.AlertHub.observe`) that a
``MONITOR_WEBHOOKS`` target wants (:func:`wanted`) becomes one delivery: a row in a SQLite
queue in the data dir (``webhooks.sqlite3``, WAL, ``synchronous=FULL``), written on the
queue's own thread, so publishing an alert never waits for it. :class:`WebhookDispatcher`
then POSTs each due delivery on its own task, at most ``webhook_max_in_flight`` at once,
each bounded by ``webhook_timeout_s``::

    POST <url>
    Content-Type: application/json
    X-Monitor-Delivery: <32 hex digits, the same on every attempt>
    X-Monitor-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

    {"type": "alert"|"decision"|"report", ...}

A 2xx answer delivers it (the row is deleted); anything else (connection refused, timeout,
another status) is retried after an exponential back-off (1 s, 2 s, 4 s ... capped at
``webhook_backoff_max_s``) until ``webhook_retry_for_s`` after it was queued, then it is
dead-lettered (kept in the file, counted). The queue survives restarts: what was pending
is sent when the server is back. A delivery's id is derived from the target and the
message (its ``alert_id``, ``decision_id`` or ``report_id``), so a message queued twice
is one delivery and a receiver can drop repeats by id.

The HTTP client is h11 (already a dependency through uvicorn) over asyncio streams, one
connection per attempt (``Connection: close``), TLS for ``https://``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import sqlite3
import ssl
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11
from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.config import Settings, WebhookTarget
from monitor.taxonomy import Severity

log = logging.getLogger(__name__)

QUEUE_FILE = "webhooks.sqlite3"
"""The delivery queue's file in the data dir."""

BACKOFF_INITIAL_S = 1.0
"""Pause before the second attempt; doubled after each failure up to ``webhook_backoff_max_s``."""

BACKOFF_JITTER = 0.1
"""Each pause is stretched or shrunk by up to this share, so retries of many deliveries spread out."""

LEASE_SLACK_S = 30.0
"""A delivery under way is leased for ``webhook_timeout_s`` plus this (a process that died mid-attempt
leaves it to be retried once the lease ends)."""

MAX_IDLE_WAIT_S = 60.0
"""Longest the dispatcher waits before looking at the queue again when nothing wakes it."""

MAX_ERROR_CHARS = 300
"""Length of the last error kept with a delivery."""

MAX_ANSWER_BYTES = 65536
"""Bytes of a receiver's answer read before its status line must have arrived."""

MESSAGE_IDS = {"alert": "alert_id", "decision": "decision_id", "report": "report_id"}
"""Message types sent to webhooks -> the field that names the message."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    leased_until REAL NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_at);
"""


def wanted(target: WebhookTarget, message: dict[str, Any]) -> bool:
    """Whether ``target`` wants ``message``: an alert or decision of its rooms, categories and at
    least its severity; a viewer report of its rooms (and of its categories, when it names one)."""
    kind = message.get("type")
    if kind not in MESSAGE_IDS:
        return False
    if target.rooms is not None and message.get("room_id") not in target.rooms:
        return False
    category = message.get("category")
    if target.categories is not None and category is not None and category not in target.categories:
        return False
    if kind == "report":
        return True
    if target.categories is not None and category is None:
        return False
    try:
        return Severity(str(message.get("severity"))).rank >= Severity(target.min_severity).rank
    except ValueError:
        return False


def delivery_id(url: str, message: dict[str, Any]) -> str:
    """32 hex digits naming one message's delivery to one target (the same however often it is queued)."""
    kind = message["type"]
    name = message.get(MESSAGE_IDS[kind]) or hashlib.sha256(json.dumps(message, sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(f"{url}\n{kind}\n{name}".encode()).hexdigest()[:32]


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Monitor-Signature`` value: ``t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def backoff_s(attempts: int, cap_s: float, *, jitter: float = BACKOFF_JITTER) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: 1, 2, 4 ... at most ``cap_s``."""
    base = min(cap_s, BACKOFF_INITIAL_S * 2 ** min(attempts - 1, 62))
    return base * (1 + random.uniform(-jitter, jitter)) if jitter else base


@dataclass(frozen=True)
class Delivery:
    """One queued delivery: where, what (the raw body, signed as is), since when, how often tried."""

    delivery_id: str
    url: str
    body: bytes
    created_at: float
    attempts: int


class DeliveryQueue:
    """The SQLite queue (blocking; the dispatcher calls it from one thread). Times are Unix seconds."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def enqueue(self, rows: Iterable[tuple[str, str, bytes]], now: float) -> int:
        """Queue ``(delivery_id, url, body)`` rows due at once (an id already queued is kept as it is);
        how many were new. Durable when it returns."""
        before = self._db.total_changes
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO deliveries (delivery_id, url, body, created_at, next_at) VALUES (?, ?, ?, ?, ?)",
                [(d, url, body, now, now) for d, url, body in rows],
            )
        return self._db.total_changes - before

    def take_due(self, now: float, limit: int, lease_s: float) -> list[Delivery]:
        """Up to ``limit`` pending deliveries due by ``now`` and not leased, oldest first, leased for ``lease_s``."""
        with self._db:
            rows = self._db.execute(
                "SELECT delivery_id, url, body, created_at, attempts FROM deliveries WHERE state = 'pending' "
                "AND next_at <= ? AND leased_until <= ? ORDER BY next_at, created_at LIMIT ?",
                (now, now, limit),
            ).fetchall()
            self._db.executemany(
                "UPDATE deliveries SET leased_until = ? WHERE delivery_id = ?", [(now + lease_s, r[0]) for r in rows]
            )
        return [Delivery(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]

    def delivered(self, delivery_id: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM deliveries WHERE delivery_id = ?", (delivery_id,))

    def retry(self, delivery_id: str, *, attempts: int, next_at: float, error: str) -> None:
        with self._db:
            self._db.execute(
                "UPDATE deliveries SET attempts = ?, next_at = ?, leased_until = 0, last_error = ? "
                "WHERE delivery_id = ?",
                (attempts, next_at, error[:MAX_ERROR_CHARS], delivery_id),
            )

    def dead_letter(self, delivery_id: str, *, attempts: int, error: str) -> None:
        with self._db:
            self._db.execute(
                "UPDATE deliveries SET state = 'dead', attempts = ?, leased_until = 0, last_error = ? "
                "WHERE delivery_id = ?",
                (attempts, error[:MAX_ERROR_CHARS], delivery_id),
            )

    def release(self, delivery_ids: Iterable[str]) -> None:
        """End the leases of deliveries this process will not finish (shutting down)."""
        with self._db:
            self._db.executemany(
                "UPDATE deliveries SET leased_until = 0 WHERE delivery_id = ?", [(d,) for d in delivery_ids]
            )

    def stats(self) -> tuple[int, float | None, int, float | None]:
        """(pending, oldest pending's created_at, dead-lettered, next due time of a pending one)."""
        pending, oldest, due = self._db.execute(
            "SELECT count(*), min(created_at), min(max(next_at, leased_until)) FROM deliveries "
            "WHERE state = 'pending'"
        ).fetchone()
        (dead,) = self._db.execute("SELECT count(*) FROM deliveries WHERE state = 'dead'").fetchone()
        return pending, oldest, dead, due

    def dead_letters(self) -> list[dict[str, Any]]:
        """The dead-lettered deliveries (id, url, attempts, last error, body)."""
        rows = self._db.execute(
            "SELECT delivery_id, url, attempts, last_error, body FROM deliveries WHERE state = 'dead' "
            "ORDER BY created_at"
        ).fetchall()
        return [{"delivery_id": r[0], "url": r[1], "attempts": r[2], "last_error": r[3], "body": bytes(r[4])}
                for r in rows]


class WebhookMetrics:
    """``monitor_webhook_*`` in the server's registry (docs/PROTOCOL.md lists them)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "monitor_webhook_deliveries", "Webhook delivery attempts by outcome: delivered, failed (retried), dead",
            ["outcome"], registry=registry,
        )
        self.queue_depth = Gauge("monitor_webhook_queue_depth", "Webhook deliveries waiting to be sent",
                                 registry=registry)
        self.dead_letters = Gauge("monitor_webhook_dead_letters", "Webhook deliveries given up on, kept on disk",
                                  registry=registry)
        self.oldest_created: float | None = None
        self.oldest_pending = Gauge(
            "monitor_webhook_oldest_pending_seconds", "Age of the oldest webhook delivery still waiting",
            registry=registry,
        )
        self.oldest_pending.set_function(
            lambda: max(0.0, time.time() - self.oldest_created) if self.oldest_created is not None else 0.0
        )


async def post_json(url: str, body: bytes, headers: list[tuple[str, str]], *, timeout_s: float) -> int:
    """POST ``body`` to ``url`` (one connection, h11); the answer's status. Raises OSError,
    TimeoutError or h11's errors when there is no answer."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ssl.create_default_context() if secure else None
        )
        try:
            connection = h11.Connection(h11.CLIENT)
            request = h11.Request(method="POST", target=target, headers=[
                ("Host", parts.netloc), ("User-Agent", "monitor-webhooks/1"), ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))), ("Connection", "close"), *headers,
            ])
            writer.write(connection.send(request) + connection.send(h11.Data(data=body))
                         + connection.send(h11.EndOfMessage()))
            await writer.drain()
            received = 0
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    chunk = await reader.read(16384)
                    received += len(chunk)
                    if received > MAX_ANSWER_BYTES:
                        raise ConnectionError(f"no status line in the first {MAX_ANSWER_BYTES} bytes")
                    connection.receive_data(chunk)
                elif isinstance(event, h11.Response):
                    return int(event.status_code)
                elif isinstance(event, h11.ConnectionClosed):
                    raise ConnectionError("closed without an answer")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class WebhookDispatcher:
    """Queues matching messages and delivers them (module docstring). ``observe`` on the event loop;
    :meth:`start` opens the queue and starts the delivery task, :meth:`stop` ends it."""

    def __init__(
        self,
        targets: list[WebhookTarget],
        data_dir: Path,
        registry: CollectorRegistry,
        *,
        timeout_s: float = 10.0,
        max_in_flight: int = 8,
        retry_for_s: float = 86400.0,
        backoff_max_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.targets = {t.url: t for t in targets}
        self.path = Path(data_dir) / QUEUE_FILE
        self.metrics = WebhookMetrics(registry)
        self._timeout_s = timeout_s
        self._max_in_flight = max_in_flight
        self._retry_for_s = retry_for_s
        self._backoff_max_s = backoff_max_s
        self._clock = clock
        self._queue: DeliveryQueue | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-queue")
        self._wake = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._enqueues: set[Future[int]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: Settings, registry: CollectorRegistry) -> WebhookDispatcher:
        return cls(
            settings.webhooks, settings.data_dir, registry, timeout_s=settings.webhook_timeout_s,
            max_in_flight=settings.webhook_max_in_flight, retry_for_s=settings.webhook_retry_for_s,
            backoff_max_s=settings.webhook_backoff_max_s,
        )

    async def _call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function`` on the queue's thread (every SQLite call goes there, one at a time)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, partial(function, *args, **kwargs))

    # -- in ------------------------------------------------------------------------------------
    def observe(self, message: dict[str, Any]) -> None:
        """A published message (hub observer, event loop): queue one delivery per target that wants it.
        The write runs on the queue's thread; nothing here waits for it."""
        if self._queue is None or message.get("type") not in MESSAGE_IDS:
            return
        rows = [(delivery_id(t.url, message), t.url, json.dumps(message, ensure_ascii=False).encode())
                for t in self.targets.values() if wanted(t, message)]
        if not rows:
            return
        future = self._thread.submit(self._queue.enqueue, rows, self._clock())
        self._enqueues.add(future)
        loop = self._loop
        future.add_done_callback(lambda done: self._queued(done, loop))

    def _queued(self, future: Future[int], loop: asyncio.AbstractEventLoop | None) -> None:
        self._enqueues.discard(future)
        if future.exception() is not None:
            log.error("webhook deliveries not queued (%s): %s", self.path, future.exception())
        elif loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the queue (creating it) and start delivering what it holds."""
        self._loop = asyncio.get_running_loop()
        self._queue = await self._call(DeliveryQueue, self.path)
        await self._refresh()
        self._runner = asyncio.create_task(self._run(), name="webhooks")

    async def stop(self) -> None:
        """Stop delivering: queued writes finish, deliveries under way are cancelled (they stay
        queued and are sent after the next start), the queue closes."""
        for future in list(self._enqueues):
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(future)
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        unfinished = list(self._in_flight)
        for task in list(self._in_flight.values()):
            task.cancel()
        await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        if self._queue is not None:
            await self._call(self._queue.release, unfinished)
            await self._call(self._queue.close)
            self._queue = None
        self._thread.shutdown(wait=True)

    # -- delivering ----------------------------------------------------------------------------
    async def _refresh(self) -> float | None:
        """Update the gauges; when the next pending delivery is due."""
        assert self._queue is not None
        pending, oldest, dead, due = await self._call(self._queue.stats)
        self.metrics.queue_depth.set(pending)
        self.metrics.dead_letters.set(dead)
        self.metrics.oldest_created = oldest
        return float(due) if due is not None else None

    async def _run(self) -> None:
        queue = self._queue
        assert queue is not None
        lease_s = self._timeout_s + LEASE_SLACK_S
        while True:
            self._wake.clear()
            try:
                free = self._max_in_flight - len(self._in_flight)
                if free > 0:
                    for delivery in await self._call(queue.take_due, self._clock(), free, lease_s):
                        task = asyncio.create_task(self._deliver(delivery), name=f"webhook-{delivery.delivery_id}")
                        self._in_flight[delivery.delivery_id] = task
                        task.add_done_callback(partial(self._done, delivery.delivery_id))
                due = await self._refresh()
            except sqlite3.Error as exc:
                log.error("webhook queue %s failed: %s", self.path, exc)
                due = None
            if len(self._in_flight) >= self._max_in_flight or due is None:
                wait = MAX_IDLE_WAIT_S  # a delivery finishing or a new one queued wakes us
            else:
                wait = min(MAX_IDLE_WAIT_S, max(0.0, due - self._clock()))
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            else:
                await asyncio.sleep(0)  # due now: go round, letting the deliveries just started run

    def _done(self, delivery_id: str, _task: asyncio.Task[None] | None = None) -> None:
        self._in_flight.pop(delivery_id, None)
        self._wake.set()

    async def _deliver(self, delivery: Delivery) -> None:
        queue = self._queue
        assert queue is not None
        target = self.targets.get(delivery.url)
        attempts = delivery.attempts + 1
        if target is None:
            await self._call(queue.dead_letter, delivery.delivery_id, attempts=delivery.attempts,
                             error="target no longer configured in MONITOR_WEBHOOKS")
            self.metrics.deliveries.labels(outcome="dead").inc()
            return
        timestamp = int(time.time())
        headers = [("X-Monitor-Delivery", delivery.delivery_id),
                   ("X-Monitor-Signature", signature(target.secret, timestamp, delivery.body))]
        try:
            status = await post_json(delivery.url, delivery.body, headers, timeout_s=self._timeout_s)
            error = None if 200 <= status < 300 else f"answered HTTP {status}"
        except TimeoutError:
            error = f"no answer within {self._timeout_s:g} s"
        except (OSError, h11.ProtocolError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            await self._call(queue.delivered, delivery.delivery_id)
            self.metrics.deliveries.labels(outcome="delivered").inc()
            return
        now = self._clock()
        if now - delivery.created_at >= self._retry_for_s:
            await self._call(queue.dead_letter, delivery.delivery_id, attempts=attempts, error=error)
            self.metrics.deliveries.labels(outcome="dead").inc()
            log.error("webhook delivery %s to %s given up after %d attempts: %s", delivery.delivery_id,
                      delivery.url, attempts, error)
            return
        pause = backoff_s(attempts, self._backoff_max_s)
        await self._call(queue.retry, delivery.delivery_id, attempts=attempts, next_at=now + pause, error=error)
        self.metrics.deliveries.labels(outcome="failed").inc()
        log.warning("webhook delivery %s to %s failed (%s); attempt %d in %.1f s", delivery.delivery_id,
                    delivery.url, error, attempts + 1, pause)
