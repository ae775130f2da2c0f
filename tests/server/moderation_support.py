"""A real server on loopback with a real evidence archive but no models, for the moderation routes.

:class:`ArchiveServer` is :class:`~tests.server.test_web.BareServer` (models never loaded) whose
resources hold only the archive: the REST routes, ``/v1/alerts`` and the archive behave as in
production; rooms cannot stream (no transcriber). Tests fill the archive directly (alerts,
session records) and put stand-in live sessions in the room registry (:meth:`live_session`),
so timelines, the undetected queue and inspection tickets are driven with exact inputs.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from monitor.alerts import Alert
from monitor.archive import EvidenceArchive
from monitor.room import RoomContext
from monitor.server.evidence import EvidenceWriter
from monitor.server.session import Resources, RoomSession
from tests.server.conftest import server_settings

INSPECTOR = {"inspector-token": {"role": "inspector", "name": "Inspector Li"}}


def make_alert(
    start: float, *, room: str = "room-a", anchor: str = "anchor-1", category: str = "medical_claim",
    severity: str = "warning", text: str = "这个枕头可以治疗失眠",
) -> Alert:
    return Alert(
        room_id=room, anchor_id=anchor, category=category, severity=severity, rule_id=f"rule.{category}",
        matched="治疗", source="lexicon", confidence=0.9, text=text, start=start, end=start + 2.0,
        reminder="请勿宣传医疗功效", regulation="广告法", lexicon_version="lex", model_version="clf",
    )


class ArchiveServer:
    """A MonitorServer on its own loop thread: archive open, models never loaded."""

    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        from monitor.config import TokenGrant
        from monitor.server.app import MonitorServer
        from tests.server.conftest import TOKENS

        tokens = {**TOKENS, **{k: TokenGrant(**v) for k, v in INSPECTOR.items()},
                  "ingest-b-token": TokenGrant(role="ingest", rooms=["room-b"])}
        self.loop = asyncio.new_event_loop()
        import threading

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.settings = server_settings(data_dir, tokens=tokens, **overrides)
        self.server = MonitorServer(self.settings)
        server = self.server
        self.archive = EvidenceArchive.open(data_dir)
        evidence = EvidenceWriter(self.archive, server.metrics)
        stub = SimpleNamespace(model_version="stub", lexicon_version="stub")  # no models: only their versions
        resources = Resources(settings=self.settings, detectors=stub, transcriber=stub,  # type: ignore[arg-type]
                              evidence=evidence, hub=server.hub, metrics=server.metrics, scheduler=server.scheduler)

        def load() -> None:
            server.loader.resources = resources
            server.loader.loaded.set()

        server.loader.start = load  # type: ignore[method-assign]
        self.call(server.start())
        self.data_dir = data_dir

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def on_loop(self, function: Any, *args: Any) -> Any:
        async def run() -> Any:
            return function(*args)

        return self.call(run())

    @property
    def port(self) -> int:
        return self.server.port

    def request(
        self, path: str, *, method: str = "GET", body: Any = None, token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        data = json.dumps(body).encode() if body is not None else None
        sent = {**({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode()

    def json(self, path: str, token: str = "moderator-token", **kwargs: Any) -> tuple[int, Any]:
        status, _, text = self.request(path, token=token, **kwargs)
        return status, json.loads(text) if text else None

    # -- driving the archive and the rooms -------------------------------------------------------
    def archived_session(
        self, session_id: str, *, room: str = "room-a", anchor: str = "anchor-1", alerts: list[Alert],
        transcript: list[dict[str, Any]], started_at: datetime,
    ) -> list[str]:
        """Record ``alerts`` and then the session (which covers them); their evidence ids."""
        ids = []
        for alert in alerts:
            alert.evidence_id = self.archive.record_alert(alert, clip=None, clip_start=None, transcript=alert.text)
            ids.append(alert.evidence_id)
        self.archive.record_session(session_id=session_id, room_id=room, anchor_id=anchor, transcript=transcript,
                                    started_at=started_at, ended_at=datetime.now(UTC))
        return ids

    def live_session(
        self, session_id: str, *, room: str = "room-a", anchor: str = "anchor-1", stream_time: float = 0.0,
        transcript: list[dict[str, Any]] | None = None, context: RoomContext | None = None,
    ) -> RoomSession:
        """A stand-in live session in the room registry: what timelines and reports read of one."""
        session = RoomSession.__new__(RoomSession)
        session.session_id, session.room_id, session.anchor_id = session_id, room, anchor
        session.started_at = datetime.now(UTC)
        session.transcript = list(transcript or [])
        session.context = context or RoomContext()
        session.sample_rate, session.base_seq = 16000, 0
        session.accepted_bytes = int(stream_time * 2 * 16000)
        session.connection, session._finish_task = None, None
        self.on_loop(self.server.rooms.add, session)
        return session

    def send_alerts(self, session: RoomSession, alerts: list[Alert]) -> None:
        """What a live session does once it has sent alerts (archived first, as in production)."""
        for alert in alerts:
            alert.evidence_id = self.archive.record_alert(alert, clip=None, clip_start=None, transcript=alert.text)
        wires = [a.wire() for a in alerts]

        def sent() -> None:
            for wire in wires:
                self.server.hub.publish(wire)
            self.server._alerts_sent(session, wires)

        self.on_loop(sent)

    def end_session(self, session: RoomSession) -> None:
        self.on_loop(self.server.rooms.remove, session)
        self.on_loop(self.server.live_alerts.forget, session.session_id)

    def close(self) -> None:
        for session in self.server.live_sessions():  # stand-ins: nothing to flush
            self.end_session(session)
        self.call(self.server.drain(), timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
