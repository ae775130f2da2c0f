"""Webhooks with a real HTTP receiver on loopback: signatures, retries across an outage and a
restart (the queue on disk), dead letters, and a hanging receiver never delaying alerts."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import connect

from monitor.config import WebhookTarget
from monitor.server.webhooks import WebhookDispatcher, backoff_s, delivery_id, wanted
from tests.server.conftest import auth
from tests.server.moderation_support import ArchiveServer, make_alert

SECRET = "s3cret-s3cret-s3cret"


class Receiver:
    """A minimal HTTP/1.1 server: records each POST (headers, raw body), answers ``status`` or hangs."""

    def __init__(self, port: int = 0, status: int = 204) -> None:
        self.port = port
        self.status = status
        self.hang = False
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._hanging: list[asyncio.StreamWriter] = []

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._hanging:
            writer.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?x=1"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "POST /hook?x=1 HTTP/1.1", lines[0]
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers["content-length"]))
        self.received.append((headers, body))
        self.arrived.set()
        if self.hang:
            self._hanging.append(writer)
            return
        writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def verify(headers: dict[str, str], body: bytes, secret: str = SECRET) -> bool:
    """What a receiver does: recompute the HMAC over "<t>.<raw body>" and compare."""
    fields = dict(part.split("=", 1) for part in headers["x-monitor-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 300


def dispatcher(data_dir: Path, url: str, **options: Any) -> WebhookDispatcher:
    target = WebhookTarget(url=url, secret=SECRET, rooms=options.pop("rooms", None),
                           categories=options.pop("categories", None),
                           min_severity=options.pop("min_severity", "info"))
    options.setdefault("backoff_max_s", 0.2)
    options.setdefault("timeout_s", 2.0)
    return WebhookDispatcher([target], data_dir, CollectorRegistry(), **options)


def alert_message(alert_id: str = "0190000000000000000000000000000a", **changes: Any) -> dict[str, Any]:
    return {"type": "alert", **make_alert(10.0).wire(), "alert_id": alert_id, **changes}


async def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def count(d: WebhookDispatcher, outcome: str) -> float:
    return d.metrics.deliveries.labels(outcome=outcome)._value.get()


def gauge(metric: Any) -> float:
    return float(metric.collect()[0].samples[0].value)


def test_what_a_target_wants_and_the_back_off() -> None:
    target = WebhookTarget(url="http://h/x", secret=SECRET, rooms=["room-a"], categories=["medical_claim"],
                           min_severity="warning")
    assert wanted(target, alert_message())
    assert not wanted(target, alert_message(room_id="room-b"))
    assert not wanted(target, alert_message(category="absolute_claim"))
    assert not wanted(target, alert_message(severity="info"))
    decision = {"type": "decision", "decision_id": "d1", "room_id": "room-a", "category": "medical_claim",
                "severity": "violation"}
    assert wanted(target, decision)
    report = {"type": "report", "report_id": "r1", "room_id": "room-a", "category": None}
    assert wanted(target, report) and not wanted(target, {**report, "category": "superstition"})
    assert not wanted(target, {"type": "room", "room_id": "room-a"})
    assert delivery_id("http://h/x", decision) == delivery_id("http://h/x", dict(decision))
    assert delivery_id("http://h/x", decision) != delivery_id("http://h/y", decision)
    assert [backoff_s(n, 600, jitter=0) for n in (1, 2, 3, 11, 40)] == [1, 2, 4, 600, 600]


def test_signed_deliveries_verified_by_the_receiver(tmp_path: Path) -> None:
    async def scenario() -> None:
        receiver = await Receiver().start()
        hooks = dispatcher(tmp_path, receiver.url, rooms=["room-a"])
        await hooks.start()
        hooks.observe(alert_message())
        hooks.observe(alert_message("0190000000000000000000000000000b", room_id="room-b"))  # not wanted
        hooks.observe({"type": "room", "event": "open", "room_id": "room-a"})  # not a webhook message
        await wait_until(lambda: count(hooks, "delivered") == 1)
        await asyncio.sleep(0.2)
        await hooks.stop()
        await receiver.stop()
        ((headers, body),) = receiver.received
        assert verify(headers, body) and not verify(headers, body, secret="another-secret-entirely")
        assert not verify(headers, body.replace(b"room-a", b"room-x"))  # the body is what is signed
        message = json.loads(body)
        assert message["type"] == "alert" and message["alert_id"] == "0190000000000000000000000000000a"
        assert headers["x-monitor-delivery"] == delivery_id(receiver.url, message)
        assert headers["content-type"] == "application/json"
        assert gauge(hooks.metrics.queue_depth) == 0

    asyncio.run(scenario())


def test_a_receiver_outage_is_retried_and_delivered_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        port = free_port()
        hooks = dispatcher(tmp_path, f"http://127.0.0.1:{port}/hook?x=1")
        await hooks.start()
        hooks.observe(alert_message())
        await wait_until(lambda: count(hooks, "failed") >= 2)  # connection refused, retried
        assert gauge(hooks.metrics.queue_depth) == 1
        assert gauge(hooks.metrics.oldest_pending) > 0
        receiver = await Receiver(port).start()
        await wait_until(lambda: count(hooks, "delivered") == 1)
        await asyncio.sleep(0.5)  # no second copy arrives
        await hooks.stop()
        await receiver.stop()
        assert len(receiver.received) == 1
        assert receiver.received[0][0]["x-monitor-delivery"] == delivery_id(receiver.url, alert_message())

    asyncio.run(scenario())


def test_the_queue_on_disk_survives_a_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        port = free_port()
        url = f"http://127.0.0.1:{port}/hook?x=1"
        first = dispatcher(tmp_path, url, backoff_max_s=30.0)
        await first.start()
        report = {"type": "report", "report_id": "f" * 32, "room_id": "room-a", "reason": "治失眠"}
        first.observe(report)
        await wait_until(lambda: count(first, "failed") >= 1)
        await first.stop()  # the process ends with the delivery still queued

        receiver = await Receiver(port).start()
        second = dispatcher(tmp_path, url)  # a new process on the same data dir
        await second.start()
        await wait_until(lambda: count(second, "delivered") == 1, timeout=40)
        await second.stop()
        await receiver.stop()
        ((headers, body),) = receiver.received
        assert headers["x-monitor-delivery"] == delivery_id(url, report) and json.loads(body) == report
        assert verify(headers, body)

    asyncio.run(scenario())


def test_a_delivery_failing_past_the_retry_window_is_dead_lettered(tmp_path: Path) -> None:
    async def scenario() -> None:
        receiver = await Receiver(status=500).start()
        hooks = dispatcher(tmp_path, receiver.url, retry_for_s=0.5, backoff_max_s=0.1)
        await hooks.start()
        hooks.observe(alert_message())
        await wait_until(lambda: count(hooks, "dead") == 1)
        assert hooks._queue is not None
        (dead,) = await hooks._call(hooks._queue.dead_letters)
        await hooks.stop()
        await receiver.stop()
        assert dead["last_error"] == "answered HTTP 500" and dead["attempts"] == len(receiver.received) >= 2
        assert gauge(hooks.metrics.dead_letters) == 1 and gauge(hooks.metrics.queue_depth) == 0

    asyncio.run(scenario())


@pytest.fixture
def hanging() -> Iterator[tuple[asyncio.AbstractEventLoop, Receiver]]:
    """A receiver that takes every request and never answers, on its own loop thread."""
    import threading

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    receiver = Receiver()
    receiver.hang = True
    asyncio.run_coroutine_threadsafe(receiver.start(), loop).result(10)
    yield loop, receiver
    asyncio.run_coroutine_threadsafe(receiver.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    with contextlib.suppress(Exception):
        loop.close()


def test_a_hanging_receiver_never_delays_alerts_or_reports(tmp_path: Path, hanging: Any) -> None:
    receiver_loop, receiver = hanging
    served = ArchiveServer(
        tmp_path / "archive", webhooks=[{"url": receiver.url, "secret": SECRET}], webhook_timeout_s=60,
        webhook_max_in_flight=1,
    )
    try:
        session = served.live_session("s-live", stream_time=30.0)

        async def watch() -> tuple[float, dict[str, Any]]:
            url = f"ws://127.0.0.1:{served.port}/v1/alerts"
            async with connect(url, additional_headers=auth("moderator-token")) as ws:
                served.send_alerts(session, [make_alert(10.0)])  # the first webhook request hangs
                began = time.monotonic()
                await asyncio.to_thread(
                    asyncio.run_coroutine_threadsafe(asyncio.wait_for(receiver.arrived.wait(), 10),
                                                     receiver_loop).result
                )
                served.send_alerts(session, [make_alert(20.0, category="absolute_claim")])
                first = json.loads(await asyncio.wait_for(ws.recv(), 5))
                second = json.loads(await asyncio.wait_for(ws.recv(), 5))
                return time.monotonic() - began, second | {"first": first["alert_id"]}

        took, second = asyncio.run(watch())
        assert second["category"] == "absolute_claim" and took < 3.0  # while a delivery hangs
        began = time.monotonic()
        status, _, _ = served.request("/v1/reports", method="POST", token="ingest-token",
                                      body={"room_id": "room-a", "viewer_id": "v", "reason": "假货"})
        assert status == 202 and time.monotonic() - began < 3.0
        assert len(receiver.received) == 1  # the first one is still under way; the rest wait their turn
        deadline = time.monotonic() + 5
        while "monitor_webhook_queue_depth 3.0" not in (metrics := served.request("/metrics")[2]):
            assert time.monotonic() < deadline, metrics
            time.sleep(0.05)
        assert "monitor_webhook_oldest_pending_seconds" in metrics
    finally:
        served.close()
