"""Exact tests of the server's pure parts: frame parsing, auth, filters, buffers, hub, scheduler."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.config import TokenGrant
from monitor.errors import ProtocolError
from monitor.server.auth import Denial, Grant, authorize, same_origin
from monitor.server.buffers import ArrivalLog
from monitor.server.hub import END_OF_ALERTS, AlertFilter, AlertHub, parse_alert_filter, parse_subscription
from monitor.server.limits import ConnectionGate, TokenBucket
from monitor.server.metrics import ServerMetrics
from monitor.server.protocol import CloseCode, close_code_for, parse_control, parse_start
from monitor.server.scheduler import FairScheduler
from monitor.stream.ring import AudioRing
from monitor.taxonomy import Severity

START = {
    "type": "start",
    "room_id": "r1",
    "anchor_id": "a1",
    "sample_rate": 16000,
    "encoding": "pcm_s16le",
    "channels": 1,
}


def start_error(frame: Any) -> ProtocolError:
    message = frame if isinstance(frame, (bytes, str)) else json.dumps(frame)
    with pytest.raises(ProtocolError) as info:
        parse_start(message)
    return info.value


# -- start / control frames ---------------------------------------------------------------


def test_valid_start_frame_with_resume_and_context() -> None:
    start = parse_start(json.dumps({**START, "seq": 3200, "context": {"category": "jewelry"}}))
    assert (start.room_id, start.seq, start.context and start.context.category) == ("r1", 3200, "jewelry")


def test_binary_first_frame_is_expected_start_and_fatal() -> None:
    error = start_error(b"\x00\x01")
    assert (error.code, error.fatal, close_code_for(error)) == ("expected_start", True, CloseCode.POLICY_VIOLATION)
    assert "binary (2 bytes)" in str(error)


def test_start_frame_errors_name_the_field() -> None:
    assert start_error("{not json").code == "bad_start"
    assert start_error({**START, "type": "stop"}).code == "expected_start"
    missing = start_error({k: v for k, v in START.items() if k != "room_id"})
    assert missing.code == "bad_start" and "room_id" in str(missing)
    extra = start_error({**START, "sampel_rate": 8000})
    assert "sampel_rate" in str(extra)
    negative = start_error({**START, "seq": -2})
    assert "seq" in str(negative)


@pytest.mark.parametrize(
    ("change", "code", "close"),
    [
        ({"sample_rate": 11025}, "unsupported_sample_rate", CloseCode.UNSUPPORTED_DATA),
        ({"encoding": "opus"}, "unsupported_encoding", CloseCode.UNSUPPORTED_DATA),
        ({"channels": 2}, "unsupported_channels", CloseCode.UNSUPPORTED_DATA),
    ],
)
def test_unsupported_audio_formats(change: dict[str, Any], code: str, close: CloseCode) -> None:
    error = start_error({**START, **change})
    assert (error.code, error.fatal, close_code_for(error)) == (code, True, close)
    assert str(next(iter(change.values()))) in str(error)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
def test_supported_rates(rate: int) -> None:
    assert parse_start(json.dumps({**START, "sample_rate": rate})).sample_rate == rate


def test_control_frames() -> None:
    assert parse_control('{"type":"stop"}').type == "stop"
    for text in ('{"type":"pause"}', "hello", '{"type":"stop","now":true}'):
        with pytest.raises(ProtocolError) as info:
            parse_control(text)
        assert info.value.code == "unexpected_text" and not info.value.fatal


# -- auth ---------------------------------------------------------------------------------

TOKENS = {
    "i": TokenGrant(role="ingest"),
    "a": TokenGrant(role="anchor", rooms=["r1"]),
    "a-none": TokenGrant(role="anchor"),
    "m": TokenGrant(role="moderator", rooms=["ignored"]),
}


def decide(token: str | None, path: str) -> Grant | Denial:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return authorize(TOKENS, headers, path)


def test_auth_statuses() -> None:
    assert decide(None, "/v1/ingest") == Denial(401, "missing bearer token: send 'Authorization: Bearer <token>'")
    assert isinstance(decide("nope", "/v1/ingest"), Denial) and decide("nope", "/v1/ingest").status == 401
    assert decide("i", "/v1/alerts").status == 403  # type: ignore[union-attr]
    assert decide("m", "/v1/ingest").status == 403  # type: ignore[union-attr]
    assert decide("a", "/v1/alerts?room=r2").status == 403  # type: ignore[union-attr]
    # a token in the URL is not accepted (URLs end up in access logs)
    assert authorize(TOKENS, {}, "/v1/alerts?access_token=m") == Denial(
        401, "missing bearer token: send 'Authorization: Bearer <token>'"
    )


def test_grant_scopes() -> None:
    anchor = decide("a", "/v1/alerts?room=r1")
    assert isinstance(anchor, Grant) and anchor.may_see("r1") and not anchor.may_see("r2")
    assert not decide("a-none", "/v1/alerts").may_see("r1")  # type: ignore[union-attr]
    assert decide("i", "/v1/ingest").may_see("any-room")  # type: ignore[union-attr]
    assert decide("m", "/v1/alerts").may_see("r9")  # type: ignore[union-attr]


def test_alert_filter_from_query() -> None:
    grant = Grant(role="moderator", rooms=None)
    flt, since = parse_alert_filter(grant, "room=r1,r2&category=medical_claim&min_severity=warning&since=abc")
    assert since == "abc" and flt.rooms == {"r1", "r2"} and flt.min_severity is Severity.WARNING
    alert = {"room_id": "r1", "category": "medical_claim", "severity": "violation"}
    assert flt.matches(alert)
    assert not flt.matches({**alert, "severity": "info"})
    assert not flt.matches({**alert, "room_id": "r3"})
    assert not flt.matches({**alert, "category": "false_price"})
    with pytest.raises(ValueError, match="min_severity='loud'"):
        parse_alert_filter(grant, "min_severity=loud")
    with pytest.raises(ValueError, match="unknown category 'gossip'"):
        parse_alert_filter(grant, "category=gossip")


def test_subscription_parsed_once_with_include() -> None:
    grant = Grant(role="moderator", rooms=None)
    subscription = parse_subscription(grant, "include=rooms,decisions&since=0&room=r1")
    assert subscription.events == {"room", "decision"} and subscription.since == "0"
    assert subscription.filter.rooms == {"r1"} and subscription.filter.grant is grant
    with pytest.raises(ValueError, match="include='everything'"):
        parse_subscription(grant, "include=everything")


def test_same_origin_and_cross_site_cookie() -> None:
    assert same_origin({"Host": "h:1"}) and same_origin({"Host": "h:1", "Origin": "http://h:1"})
    assert not same_origin({"Host": "h:1", "Origin": "http://evil.example"})
    assert not same_origin({"Host": "h:1", "Origin": "null"})


def test_gate_ticket_counts_a_connection_once_wherever_it_ends() -> None:
    from monitor.server.transport import GateTicket

    gate = ConnectionGate(max_open_sockets=2, max_pending_handshakes=1)
    assert gate.admit() is None
    first = GateTicket(gate)
    assert gate.admit() == "pending_handshakes"  # the first has not sent its request yet
    first.handshake_done()
    first.handshake_done()  # twice (keep-alive requests): counted once
    assert gate.admit() is None
    second = GateTicket(gate)
    assert gate.admit() == "open_sockets"
    second.release()  # dropped before its request: both counts go down
    second.release()
    first.release()
    assert (gate.open_sockets, gate.pending_handshakes) == (0, 0)


# -- buffers and rate limits ----------------------------------------------------------------


def test_audio_ring_clips_by_stream_time_and_forgets_old_audio() -> None:
    ring = AudioRing(origin_s=10.0, capacity_s=2.0)
    ring.append(np.arange(48000, dtype=np.float32))  # 3 s: only the last 2 s are held
    assert ring.end_s == pytest.approx(13.0)
    clip = ring.clip(12.0, 12.5)
    assert clip is not None
    samples, start = clip
    assert start == pytest.approx(12.0) and samples[0] == 32000 and samples.size == 8000
    clamped = ring.clip(9.0, 11.5)  # before the ring: clamped to the oldest held sample (11.0 s)
    assert clamped is not None and clamped[1] == pytest.approx(11.0) and clamped[0][0] == 16000
    assert ring.clip(20.0, 21.0) is None


def test_arrival_log_finds_the_frame_that_carried_a_sample() -> None:
    log = ArrivalLog(horizon_s=5.0)
    for i in range(1, 11):
        log.mark(i * 1.0, arrived=100.0 + i)
    assert log.arrival_of(7.5) == 108.0
    assert log.arrival_of(8.0) == 108.0
    assert log.arrival_of(1.0) is None  # older than the horizon
    assert log.arrival_of(11.0) is None


def test_token_bucket_allows_burst_then_paces() -> None:
    bucket = TokenBucket(rate=10.0, burst=5.0)
    assert bucket.delay(5.0) == 0.0
    wait = bucket.delay(2.0)
    assert 0.15 < wait <= 0.2


# -- hub --------------------------------------------------------------------------------------


def alert(n: int, room: str = "r1", severity: str = "warning") -> dict[str, Any]:
    return {"alert_id": f"{n:04d}", "room_id": room, "category": "absolute_claim", "severity": severity}


def test_hub_replays_after_since_and_filters_by_scope() -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        hub = AlertHub(ServerMetrics(), replay_buffer_alerts=3, subscriber_queue_alerts=10)
        for n in range(1, 6):
            hub.publish(alert(n, room="r1" if n % 2 else "r2"))
        anchor = hub.subscribe(AlertFilter(Grant("anchor", frozenset({"r1"}))), since="0002")
        everyone = hub.subscribe(AlertFilter(Grant("moderator", None)), since="0000")
        hub.publish(alert(6, room="r1"))
        got_anchor = [(await anchor.next_alert())["alert_id"] for _ in range(3)]
        got_all = [(await everyone.next_alert())["alert_id"] for _ in range(4)]
        return got_anchor, got_all

    got_anchor, got_all = asyncio.run(scenario())
    assert got_anchor == ["0003", "0005", "0006"]  # only r1, after 0002
    assert got_all == ["0003", "0004", "0005", "0006"]  # the buffer holds the last 3, then live


def test_slow_subscriber_is_cut_without_blocking_publish_or_others() -> None:
    async def scenario() -> tuple[float, str | None, int, bool, float]:
        metrics = ServerMetrics()
        hub = AlertHub(metrics, replay_buffer_alerts=100, subscriber_queue_alerts=4)
        slow = hub.subscribe(AlertFilter(Grant("moderator", None)))
        fast = hub.subscribe(AlertFilter(Grant("moderator", None)))
        received = 0
        began = time.perf_counter()
        for n in range(50):
            hub.publish(alert(n))
            while not fast.queue.empty():  # the fast one keeps up
                await fast.next_alert()
                received += 1
        elapsed = time.perf_counter() - began
        hub.end_all()
        ended = (await fast.next_alert()) is END_OF_ALERTS
        cut = metrics.subscriber_disconnects.labels(reason="slow")._value.get()
        return elapsed, slow.cut_reason, received, ended, cut

    elapsed, reason, received, ended, cut = asyncio.run(scenario())
    assert reason is not None and "too slow" in reason and "since=" in reason
    assert received == 50 and ended and cut == 1
    assert elapsed < 0.5


# -- scheduler --------------------------------------------------------------------------------


class Room:
    """A work source whose jobs record which room ran, in order."""

    def __init__(self, name: str, jobs: int, log: list[str], gate: Any) -> None:
        self.name, self.jobs, self.log, self.gate = name, jobs, log, gate
        self.done = 0

    def has_work(self) -> bool:
        return self.jobs > 0

    def take_job(self) -> Any:
        self.jobs -= 1

        def job() -> str:
            self.gate.wait(5)
            return self.name

        return job

    def job_done(self, future: Future[str]) -> None:
        self.log.append(future.result())
        self.done += 1


def test_scheduler_is_round_robin_with_one_job_per_room() -> None:
    import threading

    async def scenario() -> list[str]:
        log: list[str] = []
        gate = threading.Event()
        scheduler = FairScheduler(1)
        busy = Room("busy", 4, log, gate)
        late = Room("late", 2, log, gate)
        scheduler.notify(busy)
        scheduler.notify(late)  # arrives while busy's first job runs
        assert scheduler.in_flight == 1
        gate.set()
        while busy.done + late.done < 6:
            await asyncio.sleep(0.01)
        scheduler.shutdown()
        return log

    assert asyncio.run(scenario()) == ["busy", "late", "busy", "late", "busy", "busy"]


def test_replay_from_the_archive_includes_alerts_of_the_same_millisecond(tmp_path: Path) -> None:
    """``since=`` replays read the archive from since's millisecond: alerts created in that very
    millisecond (ids differing only in their random part) are replayed, ``since`` itself is not."""
    from datetime import UTC, datetime

    from monitor.alerts import Alert
    from monitor.archive.archive import EvidenceArchive
    from monitor.server.evidence import EvidenceWriter
    from monitor.server.metrics import ServerMetrics

    moment = datetime(2026, 12, 6, 5, 0, 0, 123000, tzinfo=UTC)
    prefix = f"{int(moment.timestamp() * 1000):012x}"
    ids = [prefix + letter * 20 for letter in "abc"]
    with EvidenceArchive.open(tmp_path / "archive") as archive:
        writer = EvidenceWriter(archive, ServerMetrics())
        for n, alert_id in enumerate(ids):
            alert = Alert(
                alert_id=alert_id, room_id="r1", category="absolute_claim", severity="warning", rule_id="ABS-1",
                matched="全网最低价", source="lexicon", confidence=1.0, text=f"全网最低价 {n}", reminder="r",
                regulation="广告法第九条", emitted_at="2026-12-06T05:00:00.123Z",
            )
            writer.record_alert(alert, clip=np.zeros(1600, dtype=np.float32), clip_start=0.0, transcript="t")
        assert [a["alert_id"] for a in writer.alerts_after(ids[0], limit=10)] == ids[1:]
        assert [a["alert_id"] for a in writer.alerts_after("0", limit=2)] == ids[:2]
        assert all(a["evidence_id"] for a in writer.alerts_after("0", limit=10))
