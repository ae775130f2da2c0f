"""A real server and a real headless Chromium (Debian's, driven by Playwright) for the console tests.

Chromium is the system's ``/usr/bin/chromium`` (scripts/setup.sh installs it); Playwright
never downloads a browser here. Tests are skipped, with the reason, when either is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.config import TokenGrant
from tests.server.conftest import RunningServer, claim_audio, server_settings  # noqa: F401  (fixture)

CHROMIUM = os.environ.get("MONITOR_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

TOKENS = {
    "tok-gateway": TokenGrant(role="ingest"),
    "tok-alice": TokenGrant(role="moderator", name="Mod Alice"),
    "tok-bob": TokenGrant(role="moderator", name="Mod Bob"),
    "tok-anchor": TokenGrant(role="anchor", rooms=["room-7"]),
    "tok-inspector": TokenGrant(role="inspector", name="Inspector Li"),
}


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module; large replay and subscriber queues for the 10,000-alert test."""
    server = RunningServer(
        server_settings(
            tmp_path_factory.mktemp("console-archive"),
            tokens=TOKENS,
            replay_buffer_alerts=20_000,
            subscriber_queue_alerts=20_000,
        )
    )
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium; Playwright starts it with a fresh ``--user-data-dir`` in a temp folder,
    and each ``browser.new_context()`` is a separate cookie jar (one per moderator)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: run scripts/setup.sh (apt-get install chromium)")
    manager = sync_api.sync_playwright().start()
    chromium = manager.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
    try:
        yield chromium
    finally:
        chromium.close()
        manager.stop()


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``CONSOLE_SCREENSHOT_DIR`` (e.g. docs/img) or a temp folder."""
    wanted = os.environ.get("CONSOLE_SCREENSHOT_DIR")
    path = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
