"""The streaming server end to end: real server on loopback, real websockets clients, real models."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.server.conftest import (
    RunningServer,
    auth,
    open_ingest,
    pcm,
    read_all,
    read_until,
    silence,
    start_frame,
)

pytestmark = pytest.mark.slow

CHUNK_BYTES = 3200  # 100 ms at 16 kHz


async def send_audio(ws: Any, data: bytes) -> None:
    for offset in range(0, len(data), CHUNK_BYTES):
        await ws.send(data[offset : offset + CHUNK_BYTES])


async def stream_and_stop(server: RunningServer, data: bytes, **start: Any) -> list[dict[str, Any]]:
    """Stream ``data`` into a room, stop, and return every frame up to the close (close checked)."""
    ws = await open_ingest(server, **start)
    ready = json.loads(await ws.recv())
    assert ready["type"] == "ready"
    await send_audio(ws, data)
    await ws.send(json.dumps({"type": "stop"}))
    frames, code, reason = await read_all(ws)
    assert (code, reason) == (1000, "stopped")
    return [ready, *frames]


def http_get(server: RunningServer, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(server.http + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def alerts_of(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == "alert"]


# -- HTTP routes and auth -----------------------------------------------------------------------


def test_healthz_and_metrics(shared_server: RunningServer) -> None:
    assert http_get(shared_server, "/healthz") == (200, "ok\n")
    status, text = http_get(shared_server, "/metrics")
    assert status == 200
    for name in (
        "monitor_open_rooms",
        "monitor_audio_seconds_total",
        "monitor_real_time_factor",
        "monitor_alert_latency_seconds_bucket",
        "monitor_archive_errors_total",
    ):
        assert name in text
    assert http_get(shared_server, "/nowhere")[0] == 404


@pytest.mark.parametrize(
    ("path", "token", "status"),
    [
        ("/v1/ingest", None, 401),
        ("/v1/ingest", "wrong-token", 401),
        ("/v1/alerts", None, 401),
        ("/v1/ingest", "moderator-token", 403),
        ("/v1/alerts", "ingest-token", 403),
        ("/v1/alerts?room=room-b", "anchor-a-token", 403),
        ("/v1/alerts?min_severity=loud", "moderator-token", 400),
    ],
)
def test_handshake_refused_before_upgrade(
    shared_server: RunningServer, path: str, token: str | None, status: int
) -> None:
    async def attempt() -> int:
        headers = auth(token) if token else {}
        with pytest.raises(InvalidStatus) as info:
            async with connect(shared_server.url(path), additional_headers=headers):
                pass
        return info.value.response.status_code

    assert asyncio.run(attempt()) == status
    if status == 401:
        code, body = http_get(shared_server, path, auth(token) if token else None)
        assert code == 401 and "token" in body


def test_anchor_token_may_not_ingest_another_room(shared_server: RunningServer) -> None:
    async def attempt() -> tuple[list[dict[str, Any]], int | None, str]:
        ws = await open_ingest(shared_server, token="anchor-a-token", room_id="room-b")
        return await read_all(ws)

    frames, code, reason = asyncio.run(attempt())
    assert frames[0]["code"] == "forbidden_room" and frames[0]["fatal"] is True
    assert code == 1008 and reason.startswith("forbidden_room")


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "code", "close"),
    [
        (b"\x00\x00" * 100, "expected_start", 1008),
        ('{"type": "start", ', "bad_start", 1008),
        ('{"type":"start","room_id":"r","sample_rate":16000}', "bad_start", 1008),
        (start_frame(sample_rate=11025), "unsupported_sample_rate", 1003),
        (start_frame(encoding="mulaw"), "unsupported_encoding", 1003),
        (start_frame(channels=2), "unsupported_channels", 1003),
        (start_frame(seq=3), "bad_start", 1008),
    ],
)
def test_bad_first_frame_is_fatal_with_code(shared_server: RunningServer, first: Any, code: str, close: int) -> None:
    async def attempt() -> tuple[list[dict[str, Any]], int | None, str]:
        async with connect(shared_server.url("/v1/ingest"), additional_headers=auth("ingest-token")) as ws:
            await ws.send(first)
            return await read_all(ws)

    frames, close_code, reason = asyncio.run(attempt())
    assert [(f["type"], f["code"], f["fatal"]) for f in frames] == [("error", code, True)]
    assert frames[0]["message"]
    assert close_code == close and reason.startswith(code)


def test_recoverable_errors_keep_the_session(shared_server: RunningServer) -> None:
    async def scenario() -> list[dict[str, Any]]:
        ws = await open_ingest(shared_server, room_id="room-recover")
        assert json.loads(await ws.recv())["next_seq"] == 0
        await ws.send(b"\x00\x00" * 800)
        await ws.send(b"\x00" * 3)  # odd length: dropped
        await ws.send('{"type":"pause"}')  # only stop is valid
        await ws.send("not json at all")
        await ws.send(b"\x00\x00" * 800)
        await ws.send(json.dumps({"type": "stop"}))
        frames, code, _ = await read_all(ws)
        assert code == 1000
        return frames

    frames = asyncio.run(scenario())
    errors = [(f["code"], f["fatal"]) for f in frames if f["type"] == "error"]
    assert errors == [("odd_frame", False), ("unexpected_text", False), ("unexpected_text", False)]
    stopped = frames[-1]
    assert stopped["type"] == "stopped" and stopped["next_seq"] == 3200  # the odd frame was not counted
    assert stopped["stream_time"] == pytest.approx(0.1)


def test_oversized_frame_is_fatal_1009(make_server: Any) -> None:
    server = make_server(max_frame_bytes=4000)

    async def scenario() -> tuple[list[dict[str, Any]], int | None, str]:
        ws = await open_ingest(server)
        await ws.recv()
        await ws.send(b"\x00" * 6000)
        return await read_all(ws)

    frames, code, reason = asyncio.run(scenario())
    assert frames[-1]["code"] == "frame_too_large" and "6000 bytes" in frames[-1]["message"]
    assert code == 1009 and reason.startswith("frame_too_large")


def test_flood_of_tiny_frames_is_slowed_and_told(make_server: Any) -> None:
    server = make_server(max_messages_per_s=50)

    async def scenario() -> tuple[list[dict[str, Any]], float]:
        ws = await open_ingest(server)
        await ws.recv()
        loop = asyncio.get_running_loop()
        began = loop.time()
        for _ in range(100):
            await ws.send(b"\x00\x00")
        await ws.send(json.dumps({"type": "stop"}))
        frames, _, _ = await read_all(ws)
        return frames, loop.time() - began

    frames, elapsed = asyncio.run(scenario())
    assert any(f["type"] == "error" and f["code"] == "flood" and not f["fatal"] for f in frames)
    assert frames[-1]["type"] == "stopped" and frames[-1]["next_seq"] == 200  # nothing dropped
    assert elapsed >= 0.9  # 100 messages at 50 per second, after a burst of 50


def test_start_timeout(make_server: Any) -> None:
    server = make_server(start_timeout_s=0.3)

    async def scenario() -> tuple[list[dict[str, Any]], int | None, str]:
        async with connect(server.url("/v1/ingest"), additional_headers=auth("ingest-token")) as ws:
            return await read_all(ws)

    frames, code, _ = asyncio.run(scenario())
    assert frames[0]["code"] == "start_timeout" and code == 1008


def test_keepalive_closes_a_peer_that_never_answers_pings(make_server: Any) -> None:
    server = make_server(ping_interval_s=0.2, ping_timeout_s=0.3)
    sock = socket.create_connection(("127.0.0.1", server.server.port), timeout=10)
    sock.sendall(
        b"GET /v1/alerts HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Authorization: Bearer moderator-token\r\n\r\n"
    )
    received = b""
    while True:  # read the 101, the pings we never answer, until the server drops us
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    sock.close()
    assert received.startswith(b"HTTP/1.1 101")
    assert b"\x89" in received  # at least one ping frame was sent


# -- the pipeline ------------------------------------------------------------------------------


def test_stop_flushes_the_utterance_and_sends_its_alert_first(
    shared_server: RunningServer, claim_audio: dict[str, np.ndarray]
) -> None:
    # no trailing silence: only the stop's flush can end the utterance
    frames = asyncio.run(
        stream_and_stop(shared_server, pcm(silence(0.5), claim_audio["medical_claim"]), room_id="room-flush")
    )
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "ready" and kinds[-1] == "stopped"
    transcripts = [f for f in frames if f["type"] == "transcript"]
    assert transcripts and all(t["final"] is True for t in transcripts)
    assert "失眠" in "".join(t["text"] for t in transcripts)
    alerts = alerts_of(frames)
    assert {a["category"] for a in alerts} == {"medical_claim"}
    alert = next(a for a in alerts if "治疗失眠" in a["matched"])
    assert alert["room_id"] == "room-flush" and alert["anchor_id"] == "anchor-1"
    assert alert["evidence_id"] and alert["model_version"]
    assert 0.2 <= alert["start"] < alert["end"] <= 0.5 + claim_audio["medical_claim"].size / 16000 + 0.01
    stopped = frames[-1]
    assert stopped["alerts"] == len(alerts) and stopped["utterances"] == len(transcripts)
    assert stopped["transcript_record"]


def test_resume_with_seq_continues_stream_time_without_duplicates(
    make_server: Any, claim_audio: dict[str, np.ndarray]
) -> None:
    server = make_server()
    first_claim = pcm(silence(1.0), claim_audio["absolute_claim"], silence(1.0))
    second_claim = pcm(claim_audio["cosmetic_efficacy"], silence(1.0))
    total = len(first_claim) + len(second_claim)

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        ws = await open_ingest(server, room_id="room-resume")
        ready = json.loads(await ws.recv())
        await send_audio(ws, first_claim)
        before = await read_until(ws, "alert")  # the first claim's reminder arrives
        ws.transport.abort()  # drop the connection without stop or close handshake
        await asyncio.sleep(0.2)
        resend_from = len(first_claim) - 8000  # the client resends 0.25 s it is unsure of
        ws2 = await open_ingest(server, room_id="room-resume", seq=resend_from)
        resumed = json.loads(await ws2.recv())
        assert resumed["type"] == "ready" and resumed["resumed"] is True
        assert resumed["session_id"] == ready["session_id"] and resumed["next_seq"] == len(first_claim)
        await send_audio(ws2, first_claim[resend_from:] + second_claim)
        await ws2.send(json.dumps({"type": "stop"}))
        after, code, _ = await read_all(ws2)
        assert code == 1000
        return before, after, resumed

    before, after, _ = asyncio.run(scenario())
    everything = alerts_of(before) + alerts_of(after)
    assert [a["category"] for a in everything] == ["absolute_claim", "cosmetic_efficacy"]
    assert len({a["alert_id"] for a in everything}) == 2
    cosmetic = alerts_of(after)[-1]
    first_len_s = (len(first_claim) / 2) / 16000
    assert cosmetic["start"] >= first_len_s - 0.3  # stream time continued across the reconnect
    stopped = after[-1]
    assert stopped["next_seq"] == total and stopped["stream_time"] == pytest.approx(total / 2 / 16000)


def test_seq_ahead_and_room_busy(make_server: Any) -> None:
    server = make_server()

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        ws = await open_ingest(server, room_id="room-busy")
        await ws.recv()
        await ws.send(b"\x00\x00" * 1600)
        busy = await open_ingest(server, room_id="room-busy")
        busy_frames, busy_code, _ = await read_all(busy)
        assert busy_code == 1013
        ahead = await open_ingest(server, room_id="room-busy", seq=10**6)
        ahead_frames, ahead_code, _ = await read_all(ahead)
        assert ahead_code == 1008
        await ws.close()
        return busy_frames[0], ahead_frames[0]

    busy, ahead = asyncio.run(scenario())
    assert busy["code"] == "room_busy"
    assert ahead["code"] == "seq_ahead" and "next_seq=3200" in ahead["message"]


def test_two_rooms_at_once_and_routing_to_subscribers(make_server: Any, claim_audio: dict[str, np.ndarray]) -> None:
    server = make_server()

    async def scenario() -> tuple[Any, ...]:
        moderator = await connect(server.url("/v1/alerts"), additional_headers=auth("moderator-token"))
        anchor = await connect(server.url("/v1/alerts"), additional_headers=auth("anchor-a-token"))
        severe = await connect(
            server.url("/v1/alerts?min_severity=violation&category=medical_claim"),
            additional_headers=auth("admin-token"),
        )
        room_a, room_b = await asyncio.gather(
            stream_and_stop(server, pcm(claim_audio["absolute_claim"], silence(0.8)), room_id="room-a"),
            stream_and_stop(server, pcm(claim_audio["medical_claim"], silence(0.8)), room_id="room-b"),
        )
        expected = len(alerts_of(room_a)) + len(alerts_of(room_b))
        seen = [json.loads(await asyncio.wait_for(moderator.recv(), 10)) for _ in range(expected)]
        anchor_seen = [json.loads(await asyncio.wait_for(anchor.recv(), 10)) for _ in range(len(alerts_of(room_a)))]
        with pytest.raises(TimeoutError):  # nothing of room-b reaches the room-a anchor
            await asyncio.wait_for(anchor.recv(), 0.5)
        severe_seen = []
        with pytest.raises(TimeoutError):
            while True:
                severe_seen.append(json.loads(await asyncio.wait_for(severe.recv(), 0.5)))
        since = await connect(
            server.url(f"/v1/alerts?since={seen[0]['alert_id']}"), additional_headers=auth("moderator-token")
        )
        replayed = [json.loads(await asyncio.wait_for(since.recv(), 5)) for _ in range(expected - 1)]
        for ws in (moderator, anchor, severe, since):
            await ws.close()
        return room_a, room_b, seen, anchor_seen, severe_seen, replayed

    room_a, room_b, seen, anchor_seen, severe_seen, replayed = asyncio.run(scenario())
    assert {a["category"] for a in alerts_of(room_a)} == {"absolute_claim"}
    assert {a["category"] for a in alerts_of(room_b)} == {"medical_claim"}
    assert {a["room_id"] for a in alerts_of(room_a)} == {"room-a"}
    assert {a["alert_id"] for a in seen} == {a["alert_id"] for a in alerts_of(room_a) + alerts_of(room_b)}
    assert {a["room_id"] for a in anchor_seen} == {"room-a"}
    assert all(a["category"] == "medical_claim" and a["severity"] == "violation" for a in severe_seen)
    assert [a["alert_id"] for a in replayed] == [a["alert_id"] for a in seen[1:]]


def test_same_rule_within_dedup_window_is_one_reminder(make_server: Any, claim_audio: dict[str, np.ndarray]) -> None:
    twice = pcm(claim_audio["cosmetic_efficacy"], silence(1.0), claim_audio["cosmetic_efficacy"], silence(1.0))
    deduped = make_server(dedup_window_s=30.0)
    undeduped = make_server(dedup_window_s=0.0)
    once = alerts_of(asyncio.run(stream_and_stop(deduped, twice)))
    both = alerts_of(asyncio.run(stream_and_stop(undeduped, twice)))
    assert len(both) == 2 and len(once) == 1
    _, metrics = http_get(deduped, "/metrics")
    assert 'monitor_alerts_deduplicated_total{category="cosmetic_efficacy"} 1.0' in metrics


def test_archive_unavailable_alert_still_sent(
    make_server: Any, claim_audio: dict[str, np.ndarray], tmp_path: Any
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the archive folder should be")
    server = make_server(data_dir=blocker / "archive")
    alerts = alerts_of(asyncio.run(stream_and_stop(server, pcm(claim_audio["absolute_claim"], silence(0.8)))))
    assert alerts and all(a["evidence_id"] is None for a in alerts)
    _, metrics = http_get(server, "/metrics")
    errors = next(line for line in metrics.splitlines() if line.startswith("monitor_archive_errors_total"))
    assert float(errors.split()[-1]) >= len(alerts) + 1  # every alert and the session record


def test_silent_subscriber_does_not_delay_a_room(make_server: Any, claim_audio: dict[str, np.ndarray]) -> None:
    server = make_server(subscriber_queue_alerts=1)

    async def scenario() -> float:
        # never reads, and holds its socket's buffers small so sends back up quickly
        stuck = await connect(server.url("/v1/alerts"), additional_headers=auth("moderator-token"), max_queue=1)
        loop = asyncio.get_running_loop()
        began = loop.time()
        frames = await stream_and_stop(
            server, pcm(claim_audio["absolute_claim"], silence(0.6), claim_audio["medical_claim"], silence(0.6))
        )
        assert len(alerts_of(frames)) >= 2
        elapsed = loop.time() - began
        stuck.transport.abort()  # it would not read the close handshake either
        return elapsed

    assert asyncio.run(scenario()) < 20


def test_resampled_input_rate(shared_server: RunningServer, claim_audio: dict[str, np.ndarray]) -> None:
    import av

    # the claim at 48 kHz, as a browser would capture it
    audio = np.concatenate([claim_audio["absolute_claim"], silence(0.8)])
    frame = av.AudioFrame.from_ndarray(audio.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = 16000
    resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
    up = np.concatenate([f.to_ndarray().reshape(-1) for f in resampler.resample(frame) + resampler.resample(None)])
    frames = asyncio.run(stream_and_stop(shared_server, pcm(up), room_id="room-48k", sample_rate=48000))
    assert [a["category"] for a in alerts_of(frames)] == ["absolute_claim"]
    assert frames[-1]["stream_time"] == pytest.approx(up.size / 48000, abs=1e-3)
