"""The SDK's I/O-free parts: the resend buffer, server frames, URLs (exact, no sockets)."""

from __future__ import annotations

import pytest

from monitor.client.events import Alert, BadServerFrame, OtherFrame, Ready, ServerError, Stopped, parse_server_frame
from monitor.client.ingest import ingest_url
from monitor.client.resend import ResendBuffer


def test_resend_buffer_keeps_the_newest_bytes_by_offset() -> None:
    ring = ResendBuffer(max_bytes=8)
    for frame in (b"aaaa", b"bbbb", b"cccc"):
        ring.append(frame)
    assert (ring.start, ring.end) == (4, 12)  # the oldest frame went first
    assert ring.read_from(4, 6) == [b"bbbbcc", b"cc"]
    assert ring.read_from(6, 100) == [b"bbcccc"]
    with pytest.raises(ValueError, match="before the oldest byte held"):
        ring.read_from(2, 4)


def test_resend_buffer_forgets_what_the_server_confirmed() -> None:
    ring = ResendBuffer(max_bytes=100)
    ring.append(b"aaaa")
    ring.append(b"bbbb")
    ring.discard_before(6)  # mid-frame
    assert (ring.start, ring.end, ring.size) == (6, 8, 2)
    assert ring.read_from(6, 100) == [b"bb"]
    ring.discard_before(100)  # never past what was sent
    assert (ring.start, ring.end) == (8, 8)
    assert ring.read_from(8, 10) == []


def test_resend_buffer_fills_a_gap_with_silence() -> None:
    ring = ResendBuffer(max_bytes=4)
    ring.append(b"aaaa")
    ring.append(b"bbbb")
    assert ring.start == 4
    assert ring.fill_gap(2) == 2
    assert ring.read_from(2, 100) == [b"\x00\x00bbbb"]
    assert ring.fill_gap(10) == 0


def test_server_frames_become_typed_events_and_keep_new_fields() -> None:
    ready = parse_server_frame('{"type":"ready","session_id":"s1","next_seq":64,"stream_time":0.002,"resumed":true}')
    assert ready == Ready(session_id="s1", next_seq=64, stream_time=0.002, resumed=True)
    alert = parse_server_frame(
        '{"type":"alert","alert_id":"a1","category":"absolute_claim","severity":"violation","rule_id":"r",'
        '"matched":"全网最低价","source":"lexicon","confidence":0.9,"text":"t","start":1.0,"end":2.5,'
        '"reminder":"请勿使用","regulation":"广告法","evidence_id":null,"new_field":7}'
    )
    assert isinstance(alert, Alert)
    assert alert.matched == "全网最低价"
    assert alert.fields()["new_field"] == 7 and "type" not in alert.fields()
    error = parse_server_frame('{"type":"error","code":"throttled","message":"slow down","fatal":false}')
    assert error == ServerError(code="throttled", message="slow down", fatal=False)
    assert isinstance(parse_server_frame('{"type":"stopped","next_seq":10,"reason":"shutdown"}'), Stopped)
    assert isinstance(parse_server_frame('{"type":"room","event":"open"}'), OtherFrame)


@pytest.mark.parametrize(
    ("text", "message"),
    [("not json", "not JSON"), ("[1]", "has no type"), ('{"type":"ready"}', "ready frame: ('session_id',)")],
)
def test_unusable_server_frames_are_named(text: str, message: str) -> None:
    with pytest.raises(BadServerFrame, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_server_frame(text)


def test_ingest_url_accepts_a_server_or_a_full_url() -> None:
    assert ingest_url("ws://127.0.0.1:8765") == "ws://127.0.0.1:8765/v1/ingest"
    assert ingest_url("wss://monitor.example/") == "wss://monitor.example/v1/ingest"
    assert ingest_url("ws://h:1/v1/ingest") == "ws://h:1/v1/ingest"
    with pytest.raises(ValueError, match="ws:// or wss://"):
        ingest_url("http://127.0.0.1:8765")
