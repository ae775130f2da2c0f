"""The server under ordinary and hostile clients (issue: no locked rooms, no lost alerts, bounds).

Real server on loopback, real websockets clients and raw TCP sockets, the real models.
Each test names the contract line it checks (shared PROTOCOL.md, "Contract v2 additions").
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect

from monitor.archive.archive import EvidenceArchive
from monitor.config import TokenGrant
from tests.server.conftest import (
    TOKENS,
    RunningServer,
    auth,
    open_ingest,
    pcm,
    read_all,
    silence,
)
from tests.server.test_server import alerts_of, http_get, send_audio, stream_and_stop

pytestmark = pytest.mark.slow


def room_info(server: RunningServer, room_id: str) -> dict[str, Any] | None:
    status, body = http_get(server, "/v1/rooms", auth("moderator-token"))
    assert status == 200
    return next((r for r in json.loads(body)["rooms"] if r["room_id"] == room_id), None)


async def end_socket(ws: Any, how: str) -> None:
    """End an ingest socket without ``stop``, the way real clients do."""
    if how in ("1000", "1001"):
        await ws.close(int(how), "gateway restarting")
    elif how == "abort":
        ws.transport.abort()
    elif how == "reset":  # a TCP RST: linger 0, then close
        sock = ws.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.transport.abort()


# -- 1. any end of the socket without stop puts the session in grace --------------------------------


@pytest.mark.parametrize("how", ["1000", "1001", "abort", "reset"])
def test_socket_end_without_stop_never_locks_the_room(make_server: Any, how: str) -> None:
    server = make_server(resume_grace_s=30.0)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        ws = await open_ingest(server, room_id="room-close")
        ready = json.loads(await ws.recv())
        await send_audio(ws, pcm(silence(2.0)))
        await asyncio.sleep(0.3)
        await end_socket(ws, how)
        for _ in range(50):  # the server notices the end
            info = room_info(server, "room-close")
            if info is not None and not info["connected"]:
                break
            await asyncio.sleep(0.1)
        assert info is not None and info["connected"] is False, info  # in grace, not connected
        # a new stream (start without seq) is accepted at once, never room_busy
        ws2 = await open_ingest(server, room_id="room-close")
        again = json.loads(await ws2.recv())
        await ws2.send(json.dumps({"type": "stop"}))
        _, code, _ = await read_all(ws2)
        assert code == 1000
        return ready, again

    ready, again = asyncio.run(scenario())
    assert again["type"] == "ready" and again["session_id"] != ready["session_id"]


def test_resume_after_clean_close_keeps_the_session(make_server: Any) -> None:
    server = make_server()

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        ws = await open_ingest(server, room_id="room-resume-1001")
        ready = json.loads(await ws.recv())
        await send_audio(ws, pcm(silence(1.0)))
        await asyncio.sleep(0.3)
        await ws.close(1001)
        await asyncio.sleep(0.3)
        ws2 = await open_ingest(server, room_id="room-resume-1001", seq=ready["next_seq"])
        resumed = json.loads(await ws2.recv())
        await ws2.send(json.dumps({"type": "stop"}))
        await read_all(ws2)
        return ready, resumed

    ready, resumed = asyncio.run(scenario())
    assert resumed["resumed"] is True and resumed["session_id"] == ready["session_id"]
    assert resumed["next_seq"] == 32000


# -- 2. resume only by the opening token or with the session's id; anchors' trusted fields ---------


def test_takeover_by_another_token_is_refused_and_the_stream_goes_on(make_server: Any) -> None:
    tokens = {**TOKENS, "gateway-2": TokenGrant(role="ingest")}
    server = make_server(tokens=tokens)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        ws = await open_ingest(server, room_id="room-takeover")
        assert json.loads(await ws.recv())["type"] == "ready"
        await send_audio(ws, pcm(silence(1.0)))
        intruder = await open_ingest(server, "gateway-2", room_id="room-takeover", seq=0)
        refused, code, _ = await read_all(intruder)
        assert code == 1013
        # the gateway's socket is untouched: it streams on and stops normally
        await send_audio(ws, pcm(silence(0.5)))
        await ws.send(json.dumps({"type": "stop"}))
        frames, close, _ = await read_all(ws)
        assert close == 1000
        # with the session's id another token in scope may resume (a second gateway taking over)
        ws3 = await open_ingest(server, room_id="room-takeover-2")
        ready3 = json.loads(await ws3.recv())
        await send_audio(ws3, pcm(silence(0.5)))
        await ws3.close(1001)
        await asyncio.sleep(0.3)
        other = await open_ingest(
            server, "gateway-2", room_id="room-takeover-2", seq=ready3["next_seq"], session_id=ready3["session_id"]
        )
        resumed = json.loads(await other.recv())
        await other.send(json.dumps({"type": "stop"}))
        await read_all(other)
        return refused[0], resumed, frames

    refused, resumed, frames = asyncio.run(scenario())
    assert refused["code"] == "room_busy" and "session_id" in refused["message"]
    assert frames[-1]["type"] == "stopped" and frames[-1]["stream_time"] == pytest.approx(1.5)
    assert resumed["type"] == "ready" and resumed["resumed"] is True


def test_anchor_token_cannot_set_anchor_id_or_certified(
    make_server: Any, claim_audio: dict[str, np.ndarray]
) -> None:
    tokens = {**TOKENS, "anchor-z-token": TokenGrant(role="anchor", rooms=["room-z"], anchor_id="anchor-z")}
    server = make_server(tokens=tokens)
    context = {"category": "cosmetics", "certified": ["cosmetic_efficacy", "absolute_claim", "medical_claim"]}
    frames = asyncio.run(
        stream_and_stop(
            server,
            pcm(claim_audio["cosmetic_efficacy"], silence(0.8)),
            token="anchor-z-token",
            room_id="room-z",
            anchor_id="someone-else",
            context=context,
        )
    )
    ignored = [f for f in frames if f["type"] == "error" and f["code"] == "ignored_field"]
    assert {("anchor_id" in f["message"], "certified" in f["message"]) for f in ignored} == {
        (True, False),
        (False, True),
    }
    assert all(not f["fatal"] for f in ignored)
    alerts = alerts_of(frames)
    assert alerts and all(a["anchor_id"] == "anchor-z" for a in alerts)
    assert all(a["severity"] != "info" for a in alerts)  # the claimed certification lowered nothing


# -- 3. malformed frames get their specific codes, never internal -----------------------------------


@pytest.mark.parametrize(
    "first",
    [
        '{"type":"start","room_id":"r","sample_rate":16000,"encoding":"pcm_s16le","context":' + "[" * 5000 + "]" * 5000
        + "}",
        '{"type":"start","room_id":"r","sample_rate":16000,"encoding":"pcm_s16le","seq":' + "7" * 5000 + "}",
        '{"type":"start","room_id":{"a":[1,2,{"b":null}]},"sample_rate":"16000","encoding":5}',
        "[" * 3000,
    ],
    ids=["nested", "huge-seq", "wrong-types", "unterminated"],
)
def test_malformed_start_is_bad_start_1008(shared_server: RunningServer, first: str) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        ws = await connect(shared_server.url("/v1/ingest"), additional_headers=auth("ingest-token"))
        await ws.send(first)
        frames, code, _ = await read_all(ws)
        return frames, code

    frames, code = asyncio.run(scenario())
    assert code == 1008 and frames[0]["code"] in ("bad_start", "expected_start")


def test_fuzzed_frames_never_reach_internal(shared_server: RunningServer) -> None:
    """Random bytes and JSON on every socket kind: only documented codes come back."""
    rng = np.random.default_rng(7)
    garbage: list[str | bytes] = [
        "[" * 4000,
        '{"type":"stop","x":' + "1" * 5000 + "}",
        '{"type":"decision","evidence_id":' + "[" * 3000 + "}",
        "\u0000\u2028{}",
        '{"type":"start"}',
        "null",
        "1e999999",
    ]
    garbage += [bytes(rng.integers(0, 256, size=int(n), dtype=np.uint8)) for n in rng.integers(1, 400, size=10)]

    async def scenario() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        ingest = await open_ingest(shared_server, room_id="room-fuzz")
        assert json.loads(await ingest.recv())["type"] == "ready"
        watcher = await connect(shared_server.url("/v1/alerts"), additional_headers=auth("moderator-token"))
        for message in garbage:
            if isinstance(message, str):
                await ingest.send(message)
            await watcher.send(message)
            if isinstance(message, str):
                seen.append(json.loads(await asyncio.wait_for(watcher.recv(), 10)))
        await ingest.send(json.dumps({"type": "stop"}))
        frames, code, _ = await read_all(ingest)
        assert code == 1000
        await watcher.close()
        return seen + frames

    frames = asyncio.run(scenario())
    errors = [f for f in frames if f["type"] == "error"]
    assert errors and all(f["code"] in ("unexpected_text", "bad_decision", "odd_frame") for f in errors), errors
    _, metrics = http_get(shared_server, "/metrics")
    assert 'code="internal"' not in metrics


# -- 4. bounds, each a setting, refused clearly, counted ---------------------------------------------


def raw_http_status(port: int, send: bytes | None = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if send:
            sock.sendall(send)
        return sock.recv(200).decode("latin-1").split("\r\n")[0]


def limit_count(server: RunningServer, limit: str) -> float:
    _, metrics = http_get(server, "/metrics")
    for line in metrics.splitlines():
        if line.startswith(f'monitor_limit_refusals_total{{limit="{limit}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_stalled_handshakes_and_open_sockets_are_bounded(make_server: Any) -> None:
    server = make_server(max_pending_handshakes=3, max_open_sockets=6, handshake_timeout_s=1.5)
    stalled = [socket.create_connection(("127.0.0.1", server.server.port)) for _ in range(3)]
    status = raw_http_status(server.server.port)
    assert status.startswith("HTTP/1.1 503"), status
    # the stalled ones are dropped after handshake_timeout_s, and the server serves again
    for sock in stalled:
        sock.settimeout(5)
        assert sock.recv(10) == b""  # closed by the server
        sock.close()
    assert http_get(server, "/healthz")[0] == 200
    assert limit_count(server, "pending_handshakes") >= 1

    async def hold_sockets() -> str:
        held = [
            await connect(server.url("/v1/alerts"), additional_headers=auth("moderator-token")) for _ in range(6)
        ]
        status = await asyncio.to_thread(raw_http_status, server.server.port)
        for ws in held:
            await ws.close()
        return status

    assert asyncio.run(hold_sockets()).startswith("HTTP/1.1 503")
    assert limit_count(server, "open_sockets") >= 1


def test_sessions_per_token_and_churn_are_bounded(make_server: Any) -> None:
    server = make_server(max_sessions_per_token=2, new_sessions_per_token_per_s=0.5)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        held = []
        for room in ("room-s1", "room-s2"):
            ws = await open_ingest(server, room_id=room)
            assert json.loads(await ws.recv())["type"] == "ready"
            held.append(ws)
        third = await open_ingest(server, room_id="room-s3")
        too_many, code, _ = await read_all(third)
        assert code == 1013
        for ws in held:
            await ws.send(json.dumps({"type": "stop"}))
            await read_all(ws)
        # churn: start/stop empty sessions; the burst is 4 x 0.5 = 2 (already spent above)
        churn = await open_ingest(server, room_id="room-churn")
        churned, code, _ = await read_all(churn)
        assert code == 1013
        return too_many[0], churned[0]

    too_many, churned = asyncio.run(scenario())
    assert too_many["code"] == "too_many_sessions" and "max_sessions_per_token" in too_many["message"]
    assert churned["code"] == "too_many_sessions" and "per second" in churned["message"]
    assert limit_count(server, "sessions_per_token") >= 2


def test_empty_sessions_write_no_archive_record(make_server: Any) -> None:
    server = make_server()

    async def scenario() -> dict[str, Any]:
        ws = await open_ingest(server, room_id="room-empty")
        await ws.recv()
        await ws.send(json.dumps({"type": "stop"}))
        frames, _, _ = await read_all(ws)
        return frames[-1]

    stopped = asyncio.run(scenario())
    assert stopped["type"] == "stopped" and stopped["transcript_record"] is None
    evidence = server.server.resources.evidence
    assert evidence.require().find(kind="session") == []


def test_decisions_are_rate_limited(make_server: Any, claim_audio: dict[str, np.ndarray]) -> None:
    server = make_server(decisions_per_moderator_per_s=0.5)
    alerts = alerts_of(asyncio.run(stream_and_stop(server, pcm(claim_audio["medical_claim"], silence(0.8)))))
    evidence_id = alerts[0]["evidence_id"]

    async def scenario() -> list[dict[str, Any]]:
        ws = await connect(server.url("/v1/alerts"), additional_headers=auth("moderator-token"))
        replies = []
        for n in range(4):  # burst 4 x 0.5 = 2 allowed at once
            await ws.send(json.dumps({"type": "decision", "evidence_id": evidence_id, "decision": "confirm",
                                      "request_id": str(n)}))
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
        await ws.close()
        return replies

    replies = asyncio.run(scenario())
    kinds = [r.get("code", r["type"]) for r in replies]
    assert kinds[:2] == ["decision_recorded", "decision_recorded"]
    assert "rate_limited" in kinds[2:] and replies[-1]["request_id"] == "3"


# -- 5. moderator work never blocks detection ----------------------------------------------------------


def test_decisions_export_does_not_wait_for_the_archive_writer(
    make_server: Any, claim_audio: dict[str, np.ndarray]
) -> None:
    server = make_server()
    alerts = alerts_of(asyncio.run(stream_and_stop(server, pcm(claim_audio["absolute_claim"], silence(0.8)))))

    async def decide() -> None:
        ws = await connect(server.url("/v1/alerts"), additional_headers=auth("moderator-token"))
        await ws.send(json.dumps({"type": "decision", "evidence_id": alerts[0]["evidence_id"], "decision": "confirm"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 20))["type"] == "decision_recorded"
        await ws.close()

    asyncio.run(decide())
    archive = server.server.resources.evidence.require()
    writer_busy = threading.Event()
    release = threading.Event()

    def long_commit() -> None:  # the writer holds the archive's lock (a long commit in a room)
        with archive._lock:
            writer_busy.set()
            release.wait(30)

    holder = threading.Thread(target=long_commit)
    holder.start()
    writer_busy.wait(10)
    try:
        status, body = http_get(server, "/v1/decisions.jsonl", auth("moderator-token"))
    finally:
        release.set()
        holder.join()
    assert status == 200
    rows = [json.loads(line) for line in body.splitlines()]
    assert [r["evidence_id"] for r in rows] == [alerts[0]["evidence_id"]] and rows[0]["label"] == "violation"


# -- 6. drain, replaced sessions, the archive retried, since= from the archive ------------------------


def test_drain_flushes_every_room_even_if_one_fails(make_server: Any, claim_audio: dict[str, np.ndarray]) -> None:
    server = make_server(resume_grace_s=60.0)

    async def scenario() -> list[dict[str, Any]]:
        good = await open_ingest(server, room_id="room-good")
        await good.recv()
        bad = await open_ingest(server, room_id="room-bad")
        await bad.recv()
        await send_audio(good, pcm(claim_audio["absolute_claim"]))  # no trailing silence: flushed by drain
        await send_audio(bad, pcm(silence(1.0)))
        await asyncio.sleep(0.5)
        sessions = {s.room_id: s for s in server.server._sessions()}

        def broken_flush() -> list[Any]:
            raise RuntimeError("injected: this room's segmenter fails while flushing")

        bad_session = sessions["room-bad"]
        # the room's I/O-free pipeline (monitor.stream) or, before it, its segmenter flushes the last utterance
        flushing = getattr(bad_session, "pipeline", None) or bad_session._segmenter
        flushing.flush = broken_flush  # type: ignore[method-assign]
        # a replaced session: its socket dropped, then a new stream for the room
        replaced = await open_ingest(server, room_id="room-replaced")
        await replaced.recv()
        await send_audio(replaced, pcm(silence(1.0)))
        await asyncio.sleep(0.3)
        replaced.transport.abort()
        await asyncio.sleep(0.3)
        newer = await open_ingest(server, room_id="room-replaced")
        await newer.recv()
        drain = asyncio.create_task(asyncio.to_thread(server.drain))
        frames, _, _ = await read_all(good)
        bad_frames, _, _ = await read_all(bad)  # the failing room still ends
        assert bad_frames[-1]["type"] == "stopped"
        await drain
        await newer.close()
        return frames

    frames = asyncio.run(scenario())
    assert alerts_of(frames) and frames[-1]["type"] == "stopped" and frames[-1]["transcript_record"]
    with EvidenceArchive.open(server.server.settings.data_dir) as archive:
        sessions = archive.find(kind="session")
    # the good room and the replaced session were archived although the bad room failed
    assert {s.room_id for s in sessions} >= {"room-good", "room-replaced"}


def test_archive_opened_later_and_healthz_degraded_meanwhile(
    make_server: Any, claim_audio: dict[str, np.ndarray], tmp_path: Any
) -> None:
    blocker = tmp_path / "not-yet"
    blocker.write_text("a file where the archive's parent folder should be")
    server = make_server(data_dir=blocker / "archive", archive_retry_s=0.5)
    status, body = http_get(server, "/healthz")  # alive and serving (contract v1: 200 once loaded) ...
    assert status == 200 and body.startswith("degraded: evidence archive unavailable")
    assert http_get(server, "/readyz")[0] == 503  # ... but not ready for new rooms
    before = alerts_of(asyncio.run(stream_and_stop(server, pcm(claim_audio["absolute_claim"], silence(0.8)))))
    assert before and before[0]["evidence_id"] is None  # the reminder still went out
    blocker.unlink()  # the operator fixes the disk
    for _ in range(100):
        if http_get(server, "/readyz")[0] == 200:
            break
        asyncio.run(asyncio.sleep(0.1))
    assert http_get(server, "/healthz") == (200, "ok\n")
    assert http_get(server, "/readyz") == (200, "ok\n")
    after = alerts_of(asyncio.run(stream_and_stop(server, pcm(claim_audio["absolute_claim"], silence(0.8)))))
    assert after and after[0]["evidence_id"]


def test_since_replays_from_the_archive_after_a_restart(
    make_server: Any, claim_audio: dict[str, np.ndarray], tmp_path: Any
) -> None:
    data_dir = tmp_path / "shared-archive"
    first = make_server(data_dir=data_dir)
    alerts = alerts_of(
        asyncio.run(
            stream_and_stop(
                first, pcm(claim_audio["absolute_claim"], silence(0.8), claim_audio["medical_claim"], silence(0.8))
            )
        )
    )
    assert len(alerts) >= 2
    first.close()
    second = make_server(data_dir=data_dir)

    async def replay(since: str) -> list[dict[str, Any]]:
        ws = await connect(second.url(f"/v1/alerts?since={since}"), additional_headers=auth("moderator-token"))
        got = []
        with pytest.raises(TimeoutError):
            while True:
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 3)))
        await ws.close()
        return got

    replayed = asyncio.run(replay(alerts[0]["alert_id"]))
    assert [a["alert_id"] for a in replayed] == [a["alert_id"] for a in alerts[1:]]
    assert [a["evidence_id"] for a in replayed] == [a["evidence_id"] for a in alerts[1:]]
    everything = asyncio.run(replay("0"))
    assert [a["alert_id"] for a in everything] == [a["alert_id"] for a in alerts]

