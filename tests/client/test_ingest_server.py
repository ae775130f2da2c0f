"""The SDK and ``monitor push`` against a real server on loopback (real models, real archive).

A dropped connection is a TCP proxy that resets both sides mid-stream: the stream must resume
the same session by itself and deliver every alert exactly once, as a run without a drop does.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from monitor.client import (
    Alert,
    HandshakeRefused,
    IngestClient,
    Ready,
    Reconnecting,
    ServerUnreachable,
    Stopped,
    StreamRefused,
    Transcript,
)

pytestmark = pytest.mark.slow

EXPECTED_CATEGORIES = {"absolute_claim", "medical_claim", "cosmetic_efficacy"}
REPO = Path(__file__).resolve().parents[2]


async def odd_chunks(pcm: bytes, size: int = 777) -> AsyncIterator[bytes]:
    """The audio in chunks that split samples (the stream re-cuts them into whole frames)."""
    for offset in range(0, len(pcm), size):
        yield pcm[offset : offset + size]


async def collect(stream: Any) -> list[Any]:
    async with asyncio.timeout(180):
        async with stream:
            return [event async for event in stream]


def alert_keys(events: list[Any]) -> list[tuple[str, float]]:
    return sorted((e.rule_id, round(e.start, 1)) for e in events if isinstance(e, Alert))


@pytest.fixture(scope="module")
def baseline(running_server: Any, show_pcm: bytes) -> list[Any]:
    """What a stream without any drop gets (PCM of our own, as fast as the server reads)."""
    client = IngestClient(running_server.url(""), token="ingest-token")
    return asyncio.run(collect(client.stream("room-base", odd_chunks(show_pcm), context={"category": "cosmetics"})))


def test_a_stream_gets_transcripts_alerts_and_stopped(baseline: list[Any], show_pcm: bytes) -> None:
    assert isinstance(baseline[0], Ready) and baseline[0].next_seq == 0 and not baseline[0].resumed
    alerts = [e for e in baseline if isinstance(e, Alert)]
    assert {a.category for a in alerts} >= EXPECTED_CATEGORIES
    assert all(a.room_id == "room-base" and a.evidence_id for a in alerts)
    transcripts = [e for e in baseline if isinstance(e, Transcript)]
    assert len(transcripts) >= 3
    assert [t.end for t in transcripts] == sorted(t.end for t in transcripts)
    stopped = baseline[-1]
    assert isinstance(stopped, Stopped) and stopped.reason == "stop"
    assert stopped.next_seq == len(show_pcm)  # every byte arrived, odd chunks re-cut into whole samples
    assert stopped.alerts == len(alerts)


def test_a_dropped_connection_is_resumed_and_no_alert_is_lost_or_repeated(
    running_server: Any, make_proxy: Any, show_wav: Path, show_pcm: bytes, baseline: list[Any]
) -> None:
    # reset the connection halfway through the second claim: the first claim's utterance is then
    # still with the server, which must hand its alert to the resumed connection
    proxy = make_proxy(running_server.server.port, drop_after=len(show_pcm) // 2)
    client = IngestClient(proxy.url, token="ingest-token")
    events = asyncio.run(collect(client.push_file("room-drop", show_wav, speed=0, context={"category": "cosmetics"})))
    assert proxy.dropped == 1 and proxy.connections == 2
    readies = [e for e in events if isinstance(e, Ready)]
    assert len(readies) == 2
    assert readies[1].resumed and readies[1].session_id == readies[0].session_id
    assert 0 < readies[1].next_seq <= len(show_pcm)
    assert any(isinstance(e, Reconnecting) and "connection lost" in e.reason for e in events)
    alerts = [e for e in events if isinstance(e, Alert)]
    assert len({a.alert_id for a in alerts}) == len(alerts)  # none twice
    assert alert_keys(events) == alert_keys(baseline)  # none lost: the same as without a drop
    stopped = events[-1]
    assert isinstance(stopped, Stopped) and stopped.next_seq == len(show_pcm)
    assert stopped.alerts == len(alerts)


def test_refused_token_and_unreachable_server_raise_clear_errors(running_server: Any, show_pcm: bytes) -> None:
    async def first_error(client: IngestClient) -> BaseException:
        with pytest.raises(Exception) as caught:
            await collect(client.stream("room-x", odd_chunks(show_pcm[:32000])))
        return caught.value

    refused = asyncio.run(first_error(IngestClient(running_server.url(""), token="wrong")))
    assert isinstance(refused, HandshakeRefused) and refused.status == 401
    forbidden = asyncio.run(first_error(IngestClient(running_server.url(""), token="anchor-a-token")))
    assert isinstance(forbidden, StreamRefused) and forbidden.code == "forbidden_room"
    unreachable = asyncio.run(first_error(IngestClient("ws://127.0.0.1:9", token="ingest-token")))
    assert isinstance(unreachable, ServerUnreachable) and "cannot connect to ws://127.0.0.1:9/v1/ingest" in str(
        unreachable
    )


def monitor_push(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", "push", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env=env,
    )


def test_monitor_push_prints_alerts_and_resumes_after_a_drop(
    running_server: Any, make_proxy: Any, show_wav: Path, show_pcm: bytes, tmp_path: Path
) -> None:
    proxy = make_proxy(running_server.server.port, drop_after=len(show_pcm) // 3)
    token_file = tmp_path / "token"
    token_file.write_text("ingest-token\n")
    done = monitor_push(
        str(show_wav),
        "--server",
        proxy.url,
        "--room",
        "room-cli",
        "--token-file",
        str(token_file),
        "--speed",
        "0",
        "--room-category",
        "cosmetics",
        "--jsonl",
    )
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    assert {a["category"] for a in alerts} >= EXPECTED_CATEGORIES
    assert all(a["room_id"] == "room-cli" and "type" not in a for a in alerts)
    assert len({a["alert_id"] for a in alerts}) == len(alerts)
    assert "reconnecting" in done.stderr and proxy.dropped == 1


def test_monitor_push_failures_are_one_line_and_non_zero(running_server: Any, show_wav: Path, tmp_path: Path) -> None:
    server = running_server.url("")
    refused = monitor_push(str(show_wav), "--server", server, "--room", "r", "--token", "wrong")
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1
    assert refused.stderr.startswith(f"monitor push: {server}/v1/ingest: the server answered HTTP 401 (")
    unreachable = monitor_push(str(show_wav), "--server", "ws://127.0.0.1:9", "--room", "r", "--token", "t")
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("monitor push: cannot connect to ws://127.0.0.1:9/v1/ingest")
    assert len(unreachable.stderr.strip().splitlines()) == 1
    garbage = tmp_path / "notes.mp3"
    garbage.write_text("not audio")
    unreadable = monitor_push(str(garbage), "--server", server, "--room", "r", "--token", "ingest-token")
    assert unreadable.returncode == 1
    assert unreadable.stderr.strip().splitlines() == [
        f"monitor push: {garbage}: not a readable audio or video file (Invalid data found when processing input)"
    ]
