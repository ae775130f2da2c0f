"""``GET /v1/checkpoint`` on a real loopback server, and a server refusing to start without its signing key."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.archive import EvidenceArchive
from monitor.archive.signing import Checkpoint
from monitor.config import TokenGrant, load_settings
from monitor.errors import ArchiveKeyError

from .conftest import make_alert

pytestmark = pytest.mark.slow


class LoopbackServer:
    """A MonitorServer on its own event loop thread, models loaded (as ``monitor serve`` runs it)."""

    def __init__(self, data_dir: Path) -> None:
        from monitor.server.app import MonitorServer

        settings = load_settings(host="127.0.0.1", port=0, data_dir=data_dir,
                                 tokens={"anchor-token": TokenGrant(role="anchor", rooms=["r"])})
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = MonitorServer(settings)
        self._call(self.server.start())
        self._call(self.server.loaded.wait(), 180)

    def _call(self, coro, timeout: float = 60):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def get(self, path: str, token: str | None) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.server.port}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def close(self) -> None:
        if self.server.load_error is None:
            self._call(self.server.drain(), 120)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def servers() -> Iterator[list[LoopbackServer]]:
    started: list[LoopbackServer] = []
    yield started
    for server in started:
        server.close()


def test_checkpoint_route_serves_the_c2sp_note_to_any_valid_token(
    tmp_path: Path, servers: list[LoopbackServer]
) -> None:
    with EvidenceArchive.open(tmp_path) as archive:
        archive.record_alert(make_alert(1), clip=None, clip_start=None, transcript="a")
        expected = archive.checkpoint_text()
    server = LoopbackServer(tmp_path)
    servers.append(server)
    assert server.server.load_error is None
    status, text = server.get("/v1/checkpoint", "anchor-token")  # the least privileged role
    assert (status, text) == (200, expected)
    checkpoint = Checkpoint.from_note(text, "served")
    assert checkpoint.size == 1 and checkpoint.origin == text.split("\n")[0]
    assert server.get("/v1/checkpoint", None)[0] == 401
    assert server.get("/v1/checkpoint", "wrong-token")[0] == 401


def test_server_refuses_to_start_when_the_signing_key_is_missing(
    tmp_path: Path, servers: list[LoopbackServer]
) -> None:
    with EvidenceArchive.open(tmp_path) as archive:
        archive.record_alert(make_alert(1), clip=None, clip_start=None, transcript="a")
    public = (tmp_path / "keys" / "public_key.pem").read_bytes()
    (tmp_path / "keys" / "signing_key.pem").unlink()
    server = LoopbackServer(tmp_path)
    servers.append(server)
    assert isinstance(server.server.load_error, ArchiveKeyError)
    assert "signing_key.pem is missing" in str(server.server.load_error)
    assert (tmp_path / "keys" / "public_key.pem").read_bytes() == public
