"""``monitor serve`` as a real process: SIGTERM drains open rooms before it exits."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect

from tests.server.conftest import auth, pcm, read_all, silence, start_frame

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


class ServeProcess:
    """``python -m monitor serve --port 0`` with the test tokens; lines of stdout in a queue."""

    def __init__(self, data_dir: Path, *, inject: str | None = None) -> None:
        """``inject``: Python run in the server process before it starts (fault injection)."""
        tokens = {"ingest-token": {"role": "ingest"}, "moderator-token": {"role": "moderator"}}
        env = {**os.environ, "MONITOR_TOKENS": json.dumps(tokens), "MONITOR_DATA_DIR": str(data_dir)}
        entry = ["-m", "monitor.cli"]
        if inject is not None:
            entry = ["-c", f"{inject}\nimport sys\nfrom monitor.cli import main\nsys.exit(main(sys.argv[1:]))"]
        self.proc = subprocess.Popen(
            [sys.executable, *entry, "serve", "--host", "127.0.0.1", "--port", "0"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.port = 0
        while True:
            line = self.next_line(120)
            if "listening on" in line:
                self.port = int(line.rsplit(":", 1)[1])
            if line.endswith("ready"):
                break

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("<eof>")

    def next_line(self, timeout: float) -> str:
        line = self.lines.get(timeout=timeout)
        if line == "<eof>":
            raise AssertionError(f"monitor serve exited early: {self.proc.wait()} {self.proc.stderr.read()}")  # type: ignore[union-attr]
        return line

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


def assert_archive_verifies(data_dir: Path) -> None:
    """``monitor archive verify`` (a separate process, as an inspector runs it) passes."""
    verify = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "archive", "verify", "--data-dir", str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_sigterm_flushes_sends_and_archives_before_exit(tmp_path: Path, claim_audio: dict[str, np.ndarray]) -> None:
    data_dir = tmp_path / "archive"
    server = ServeProcess(data_dir)

    async def scenario() -> tuple[Any, ...]:
        watcher = await connect(server.url("/v1/alerts"), additional_headers=auth("moderator-token"))
        ingest = await connect(server.url("/v1/ingest"), additional_headers=auth("ingest-token"))
        await ingest.send(start_frame(room_id="room-term"))
        assert json.loads(await ingest.recv())["type"] == "ready"
        # the claim with no silence after it: still inside the segmenter when SIGTERM comes
        audio = pcm(silence(0.3), claim_audio["absolute_claim"])
        for offset in range(0, len(audio), 3200):
            await ingest.send(audio[offset : offset + 3200])
        await asyncio.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        ingest_frames, ingest_code, _ = await read_all(ingest, timeout=60)
        watcher_frames, watcher_code, _ = await read_all(watcher, timeout=60)
        return ingest_frames, ingest_code, watcher_frames, watcher_code

    ingest_frames, ingest_code, watcher_frames, watcher_code = asyncio.run(scenario())
    assert server.proc.wait(60) == 0
    alerts = [f for f in ingest_frames if f["type"] == "alert"]
    assert [a["category"] for a in alerts] == ["absolute_claim"] and alerts[0]["evidence_id"]
    stopped = ingest_frames[-1]
    assert stopped["type"] == "stopped" and stopped["reason"] == "shutdown" and stopped["transcript_record"]
    assert ingest_code == 1001
    assert [f["alert_id"] for f in watcher_frames] == [a["alert_id"] for a in alerts]
    assert watcher_code == 1001
    assert_archive_verifies(data_dir)
