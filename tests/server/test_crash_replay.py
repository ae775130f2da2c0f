"""Fault injection: the server dies between archiving an alert and sending it.

"Archived before sent" means such an alert is in the evidence archive; a subscriber that
reconnects to the restarted server with ``since=`` must get it (replayed from the archive,
since the replay buffer in memory died with the process). PROTOCOL.md: ``since=`` misses nothing.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect

from tests.server.conftest import auth, pcm, silence, start_frame
from tests.server.test_sigterm import ServeProcess, assert_archive_verifies

pytestmark = pytest.mark.slow

CRASH_AFTER_ARCHIVING = """
import os
from monitor.server import session

def _die_before_sending(self, processed):
    result = getattr(processed, "result", processed)  # the worker's result, with its wall time or without
    if result.alerts:  # archived by the worker (evidence ids set), not yet sent to anyone
        with open(os.environ["CRASH_MARK"], "w") as mark:
            mark.write("\\n".join(f"{a.alert_id} {a.evidence_id}" for a in result.alerts))
        os._exit(9)
    return _deliver(self, processed)

_deliver = session.RoomSession._deliver
session.RoomSession._deliver = _die_before_sending
"""


def test_alert_archived_but_never_sent_is_replayed_after_restart(
    tmp_path: Path, claim_audio: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "archive"
    mark = tmp_path / "crashed-with"
    monkeypatch.setenv("CRASH_MARK", str(mark))
    doomed = ServeProcess(data_dir, inject=CRASH_AFTER_ARCHIVING)

    async def stream_until_crash() -> list[dict[str, Any]]:
        watcher = await connect(doomed.url("/v1/alerts"), additional_headers=auth("moderator-token"))
        ingest = await connect(doomed.url("/v1/ingest"), additional_headers=auth("ingest-token"))
        await ingest.send(start_frame(room_id="room-crash"))
        assert json.loads(await ingest.recv())["type"] == "ready"
        audio = pcm(silence(0.3), claim_audio["absolute_claim"], silence(1.0))
        for offset in range(0, len(audio), 3200):
            await ingest.send(audio[offset : offset + 3200])
        seen = []
        try:
            async with asyncio.timeout(120):  # a server that never dies fails the test, never hangs it
                async for message in watcher:
                    seen.append(json.loads(message))
        except TimeoutError:
            raise
        except Exception:  # the connection breaks when the process dies
            pass
        return seen

    seen = asyncio.run(stream_until_crash())
    assert doomed.proc.wait(60) == 9
    assert seen == []  # the moderator never got it
    archived = dict(line.split() for line in mark.read_text().splitlines())
    assert archived and all(archived.values())

    restarted = ServeProcess(data_dir)  # recovery after an unclean stop, then serving again

    async def reconnect() -> list[dict[str, Any]]:
        # the moderator's last seen alert is older than the lost one ("0": nothing seen yet)
        ws = await connect(restarted.url("/v1/alerts?since=0"), additional_headers=auth("moderator-token"))
        got = []
        try:
            while True:
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        except TimeoutError:
            pass
        await ws.close()
        return got

    replayed = asyncio.run(reconnect())
    restarted.proc.terminate()
    assert restarted.proc.wait(60) == 0
    assert {a["alert_id"]: a["evidence_id"] for a in replayed} == archived
    assert all(a["type"] == "alert" and a["room_id"] == "room-crash" for a in replayed)
    assert_archive_verifies(data_dir)
