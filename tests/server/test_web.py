"""The HTTP side on FastAPI/uvicorn: OpenAPI, methods, 400 bodies, the REST decision route, the
header timer on keep-alive connections, and back-pressure on a room that stopped reading.

The first tests run a real server on loopback whose models are never loaded (fast: the
routes that need no models answer, the others say 503); the last ones load the real models.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.routing import Route
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.server.conftest import RunningServer, auth, open_ingest, pcm, read_all, server_settings, silence
from tests.server.test_server import alerts_of, http_get, stream_and_stop


class BareServer:
    """A MonitorServer listening on loopback on its own loop thread, its models never loaded."""

    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        from monitor.server.app import MonitorServer

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = MonitorServer(server_settings(data_dir, **overrides))
        self.server.loader.start = lambda: None  # type: ignore[method-assign]  # stays "loading models"
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)

    def request(
        self, path: str, *, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.server.port}{path}", data=data, method=method,
            headers={**({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.drain(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BareServer]:
    server = BareServer(tmp_path_factory.mktemp("bare"), handshake_timeout_s=0.5)
    yield server
    server.close()


# -- OpenAPI and the routes ------------------------------------------------------------------------


def test_openapi_lists_every_http_route(bare: BareServer) -> None:
    status, _, text = bare.request("/openapi.json")
    assert status == 200
    paths = json.loads(text)["paths"]
    http_routes = [r for r in bare.server.app.routes if isinstance(r, Route) and r.path != "/openapi.json"]
    assert len(http_routes) >= 15
    for route in http_routes:
        assert route.path in paths, f"{route.path} is served but not in /openapi.json"
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in paths[route.path], f"{method} {route.path} not in /openapi.json"
    decisions = paths["/v1/decisions"]["post"]
    assert {"201", "400", "401", "403", "404", "429", "503"} <= set(decisions["responses"])
    assert decisions["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/DecisionRequest")
    # and nothing documented that is not served
    assert set(paths) == {r.path for r in http_routes}


def test_unknown_paths_and_methods(bare: BareServer) -> None:
    assert bare.request("/nowhere")[::2] == (404, "no route /nowhere; see docs/PROTOCOL.md\n")
    status, headers, _ = bare.request("/console/logout")  # sign-out is a POST now
    assert status == 405 and headers["allow"] == "POST"
    assert bare.request("/healthz", method="POST")[0] == 405

    async def upgrade(path: str) -> int:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"ws://127.0.0.1:{bare.server.port}{path}"):
                pass
        return info.value.response.status_code

    assert asyncio.run(upgrade("/v1/nowhere")) == 404
    # a websocket route asked without the upgrade: the same refusals as the handshake
    status, headers, body = bare.request("/v1/ingest")
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="monitor"' and "token" in body
    assert bare.request("/v1/alerts?category=gossip", headers=auth("moderator-token"))[0] == 400
    assert bare.request("/v1/alerts", headers=auth("moderator-token"))[0] == 503  # models loading


def test_decision_body_errors_are_400_naming_the_field(bare: BareServer) -> None:
    moderator = auth("moderator-token")
    cases = [
        ({"evidence_id": "ab" * 16, "decision": "approve"}, "decision"),
        ({"decision": "confirm"}, "evidence_id"),
        ({"evidence_id": "ab" * 16, "decision": "confirm", "room": "r"}, "room"),
        ({"evidence_id": "ab" * 16, "decision": "dismiss", "reason": "x" * 1001}, "reason"),
    ]
    for body, field in cases:
        status, headers, text = bare.request("/v1/decisions", method="POST", body=body, headers=moderator)
        answer = json.loads(text)
        assert status == 400 and headers["content-type"].startswith("application/json"), (body, text)
        assert answer["error"] == "bad_request" and field in answer["fields"] and field in answer["message"]
    status, _, text = bare.request("/v1/decisions", method="POST", headers=moderator)  # no body at all
    assert status == 400 and "body" in json.loads(text)["message"]


def test_decision_route_checks_the_credential_before_the_body(bare: BareServer) -> None:
    body = {"evidence_id": "ab" * 16, "decision": "nonsense"}
    status, headers, text = bare.request("/v1/decisions", method="POST", body=body)
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="monitor"'
    assert json.loads(text)["error"] == "unauthorized"
    status, _, text = bare.request("/v1/decisions", method="POST", body=body, headers=auth("wrong"))
    assert status == 401
    valid = {"evidence_id": "ab" * 16, "decision": "confirm"}
    status, _, text = bare.request("/v1/decisions", method="POST", body=valid, headers=auth("anchor-a-token"))
    assert status == 403 and "role 'anchor' may not decide" in json.loads(text)["message"]
    status, _, text = bare.request("/v1/decisions", method="POST", body=valid, headers=auth("moderator-token"))
    assert status == 503 and "loading" in json.loads(text)["message"]


def test_console_session_cookie_and_sign_out(bare: BareServer) -> None:
    status, headers, _ = bare.request("/console/session", headers=auth("moderator-token"))
    assert status == 200
    cookie = headers["set-cookie"].split(";")[0]
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    host = f"127.0.0.1:{bare.server.port}"
    assert bare.request("/v1/rooms", headers={"Cookie": cookie})[0] == 200
    assert bare.request("/v1/rooms", headers={"Cookie": cookie, "Origin": "http://evil.example"})[0] == 403
    # a cross-site sign-out (or decision) is refused; the page's own sign-out ends the session
    assert bare.request("/console/logout", method="POST", headers={"Cookie": cookie, "Origin": "http://evil.example"})[
        0
    ] == 403
    valid = {"evidence_id": "ab" * 16, "decision": "confirm"}
    status, _, _ = bare.request(
        "/v1/decisions", method="POST", body=valid, headers={"Cookie": cookie, "Origin": "http://evil.example"}
    )
    assert status == 403
    status, headers, _ = bare.request(
        "/console/logout", method="POST", headers={"Cookie": cookie, "Origin": f"http://{host}"}
    )
    assert status == 200 and "Max-Age=0" in headers["set-cookie"]
    assert bare.request("/console/session", headers={"Cookie": cookie})[0] == 401


def test_keep_alive_connection_gets_the_header_timer_for_each_request(bare: BareServer) -> None:
    with socket.create_connection(("127.0.0.1", bare.server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b"loading models\n"):  # head and body may come in separate segments
            chunk = sock.recv(4096)
            assert chunk, first
            first += chunk
        assert first.startswith(b"HTTP/1.1 503")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the second request's headers never end
        began = time.monotonic()
        assert sock.recv(4096) == b""  # dropped by the server
        assert time.monotonic() - began < 4.0  # handshake_timeout_s=0.5, not the keep-alive 5 s
    # read on the server's loop, after the dropped connection's connection_lost has run
    counts = asyncio.run_coroutine_threadsafe(_gate_counts(bare), bare.loop).result(10)
    assert counts == (0, 0)


async def _gate_counts(bare: BareServer) -> tuple[int, int]:
    return bare.server.gate.open_sockets, bare.server.gate.pending_handshakes


# -- with the real models ----------------------------------------------------------------------------


@pytest.mark.slow
def test_post_decision_records_broadcasts_and_is_rate_limited(
    make_server: Any, claim_audio: dict[str, np.ndarray]
) -> None:
    server = make_server(decisions_per_moderator_per_s=0.5)  # bursts of 2
    alerts = alerts_of(asyncio.run(stream_and_stop(server, pcm(claim_audio["absolute_claim"], silence(0.8)))))
    evidence_id = alerts[0]["evidence_id"]

    def post(body: dict[str, Any], token: str = "moderator-token") -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            server.http + "/v1/decisions", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", **auth(token)},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    async def scenario() -> tuple[list[tuple[int, dict[str, Any]]], dict[str, Any]]:
        watcher = await connect(server.url("/v1/alerts?include=decisions"), additional_headers=auth("admin-token"))
        answers = [
            await asyncio.to_thread(post, {"evidence_id": "0" * 32, "decision": "confirm"}),
            await asyncio.to_thread(
                post, {"evidence_id": evidence_id, "decision": "confirm", "request_id": "r1"}
            ),
            await asyncio.to_thread(post, {"evidence_id": evidence_id, "decision": "dismiss"}),
        ]
        seen = {}
        async with asyncio.timeout(20):
            while seen.get("type") != "decision":
                seen = json.loads(await watcher.recv())
        await watcher.close()
        return answers, seen

    (unknown, recorded, limited), broadcast = asyncio.run(scenario())
    assert unknown[0] == 404 and "no evidence with id" in unknown[1]["message"]
    assert recorded[0] == 201
    record = recorded[1]
    assert (record["evidence_id"], record["decision"], record["by"], record["request_id"]) == (
        evidence_id, "confirm", "unnamed moderator", "r1",
    )
    assert record["kind"] == "decision" and len(record["decision_id"]) == 32 and record["alert_id"] == alerts[0][
        "alert_id"
    ]
    assert limited[0] == 429 and limited[1]["error"] == "rate_limited"
    assert broadcast["decision_id"] == record["decision_id"]
    _, view = http_get(server, f"/v1/evidence/{evidence_id}", auth("moderator-token"))
    assert [d["decision"] for d in json.loads(view)["decisions"]] == ["confirm"]


@pytest.mark.slow
def test_a_room_waiting_for_capacity_stops_reading_its_socket(make_server: Any) -> None:
    """Back-pressure (PROTOCOL.md, max_pending_audio_s): while the room has no capacity the server
    reads nothing more from its socket, so the client's sends block instead of the server buffering;
    every byte is taken once capacity returns."""
    server: RunningServer = make_server()
    frame = b"\x00\x01" * 48000  # 1 s at 48 kHz
    total_bytes = 24 * 2**20  # far more than the kernel's socket buffers hold

    async def scenario() -> tuple[int, int, int, dict[str, Any]]:
        ws = await open_ingest(server, room_id="room-pushback", sample_rate=48000)
        assert json.loads(await ws.recv())["type"] == "ready"
        session = next(s for s in server.server._sessions() if s.room_id == "room-pushback")
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_clear(session.capacity), server.loop))
        sent = 0

        async def sender() -> None:
            nonlocal sent
            while sent < total_bytes:
                chunk = frame[: min(len(frame), total_bytes - sent)]
                await ws.send(chunk)
                sent += len(chunk)

        sending = asyncio.create_task(sender())
        await asyncio.sleep(2.5)
        stalled_at = sent
        await asyncio.sleep(1.5)
        assert not sending.done(), "the client sent everything although the server stopped reading"
        assert sent == stalled_at, "the client could still send: the server kept reading"
        taken_while_paused = session.next_seq
        server.loop.call_soon_threadsafe(session.capacity.set)
        await asyncio.wait_for(sending, 120)
        await ws.send(json.dumps({"type": "stop"}))
        frames, code, _ = await read_all(ws, timeout=180)
        assert code == 1000
        return stalled_at, taken_while_paused, sent, frames[-1]

    stalled_at, taken_while_paused, sent, stopped = asyncio.run(scenario())
    assert stalled_at < total_bytes // 2 and taken_while_paused == 0
    assert stopped["type"] == "stopped" and stopped["next_seq"] == sent == total_bytes  # nothing lost
    _, metrics = http_get(server, "/metrics")
    assert 'monitor_frames_throttled_total{reason="backlog"}' in metrics


async def _clear(event: asyncio.Event) -> None:
    event.clear()


@pytest.mark.slow
def test_frames_over_twice_the_limit_are_cut_off_by_the_websocket_layer(make_server: Any) -> None:
    """PROTOCOL.md: up to twice max_frame_bytes is read and answered with frame_too_large;
    beyond that the websocket layer closes with 1009 before the frame reaches the room."""
    server = make_server(max_frame_bytes=40_000)  # read up to max(2 x 40 000, 65 536) = 80 000 bytes

    async def send_one(size: int) -> tuple[list[dict[str, Any]], int | None]:
        ws = await open_ingest(server, room_id=f"room-big-{size}")
        assert json.loads(await ws.recv())["type"] == "ready"
        await ws.send(b"\x00" * size)
        frames, code, _ = await read_all(ws)
        return frames, code

    answered, code = asyncio.run(send_one(60_000))
    assert code == 1009 and answered[-1]["code"] == "frame_too_large"
    cut_off, code = asyncio.run(send_one(200_000))
    assert code == 1009 and not [f for f in cut_off if f["type"] == "error"]
