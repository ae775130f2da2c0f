"""The moderator console end to end in a real headless Chromium against a real server.

Sign in, stream real speech into ``/v1/ingest``, see the alerts appear, play the archived
clip, confirm and dismiss (two moderators, each seeing the other's decision at once),
reload, export; refused credentials; no credential in any log line; 10,000 alerts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from monitor.alerts import Alert
from monitor.archive import verify_archive
from monitor.server.client import stream_room
from tests.server.conftest import RunningServer, pcm, silence

pytestmark = pytest.mark.slow

WAIT_MS = 90_000


def open_console(browser: Any, server: RunningServer, token: str) -> tuple[Any, Any]:
    """A new cookie jar and page, signed in with ``token`` and connected (status 'live')."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(server.http + "/console")
    page.fill("#token", token)
    page.click("#sign-in-button")
    page.wait_for_selector("#sign-in", state="hidden")
    page.wait_for_function("() => document.getElementById('conn').textContent === 'live'", timeout=WAIT_MS)
    return context, page


class HeldRoom:
    """A room that stays live (room tone at real time) until :meth:`stop`: the rooms strip shows it."""

    def __init__(self, server: RunningServer, room_id: str, anchor_id: str) -> None:
        self.server, self.room_id, self.anchor_id = server, room_id, anchor_id
        self._stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()

    async def _run(self) -> None:
        start = {"type": "start", "room_id": self.room_id, "anchor_id": self.anchor_id, "sample_rate": 16000,
                 "encoding": "pcm_s16le", "channels": 1}
        async with connect(self.server.url("/v1/ingest"),
                           additional_headers={"Authorization": "Bearer tok-gateway"}) as ws:
            await ws.send(json.dumps(start))
            await ws.recv()
            frame = bytes(3200)  # 100 ms of silence
            while not self._stop.is_set():
                await ws.send(frame)
                await asyncio.sleep(0.1)
            await ws.send(json.dumps({"type": "stop"}))
            async for _ in ws:
                pass

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(60)


def run_async(coro: Any, timeout: float = 120) -> Any:
    """Run a coroutine to completion in its own thread (Playwright's sync API owns this thread's loop)."""
    box: dict[str, Any] = {}

    def run() -> None:
        box["value"] = asyncio.run(coro)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout)
    return box["value"]


def stream_claims(server: RunningServer, audio: np.ndarray) -> list[dict[str, Any]]:
    """Stream one room's speech through the reference client, as fast as the server reads; its alerts."""
    result = run_async(stream_room(
        server.url("/v1/ingest"), "tok-gateway", room_id="room-7", anchor_id="anchor-7", pcm=pcm(audio), speed=0,
    ))
    return result.alerts


def test_console_end_to_end(
    console_server: RunningServer, browser: Any, claim_audio: dict[str, np.ndarray],
    screenshot_dir: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = console_server

    # a wrong token, and a role that may not moderate, are refused on the sign-in form
    refused = browser.new_context()
    page = refused.new_page()
    page.goto(server.http + "/console")
    page.fill("#token", "tok-wrong")
    page.click("#sign-in-button")
    page.wait_for_function("() => document.getElementById('sign-in-error').textContent.includes('401')")
    page.fill("#token", "tok-anchor")
    page.click("#sign-in-button")
    page.wait_for_function("() => document.getElementById('sign-in-error').textContent.includes('403')")
    assert page.is_visible("#sign-in") and refused.cookies() == []
    refused.close()

    alice_context, alice = open_console(browser, server, "tok-alice")
    bob_context, bob = open_console(browser, server, "tok-bob")
    held = HeldRoom(server, "room-9", "anchor-9")
    try:
        alice.wait_for_selector('#rooms .chip[data-room-id="room-9"]', timeout=WAIT_MS)

        audio = np.concatenate([
            silence(0.5), claim_audio["absolute_claim"], silence(1.0), claim_audio["medical_claim"],
            silence(1.0), claim_audio["cosmetic_efficacy"], silence(1.0),
        ])
        alerts = stream_claims(server, audio)
        assert len(alerts) >= 2, alerts
        by_category = {a["category"]: a for a in alerts}
        assert {"absolute_claim", "medical_claim"} <= set(by_category)

        # the alerts appear, newest first, the matched phrase highlighted
        alice.wait_for_function(f"() => Number(document.getElementById('alert-count').dataset.count) >= {len(alerts)}",
                                timeout=WAIT_MS)
        newest = max(alerts, key=lambda a: a["alert_id"])
        assert alice.get_attribute("#alert-list .row >> nth=0", "data-alert-id") is not None
        first_ids = alice.eval_on_selector_all(
            "#alert-list .row", "rows => rows.sort((a, b) => a.offsetTop - b.offsetTop).map(r => r.dataset.alertId)"
        )
        assert first_ids[0] == newest["alert_id"]
        absolute = by_category["absolute_claim"]
        row = f'#alert-list .row[data-alert-id="{absolute["alert_id"]}"]'
        assert alice.text_content(f"{row} mark") == absolute["matched"]

        # evidence: proof status and the clip plays
        alice.click(row)
        alice.wait_for_selector('#detail .proof[data-covered="true"]', timeout=WAIT_MS)
        assert absolute["reminder"] in alice.text_content("#detail .d-fields")
        assert alice.text_content("#detail .transcript") == absolute["text"]
        alice.click("#detail .play-clip")
        alice.wait_for_function(
            "() => { const a = document.querySelector('#detail .clip-audio');"
            " return a && a.duration > 0 && (a.currentTime > 0 || a.ended); }", timeout=30_000)
        duration = alice.eval_on_selector("#detail .clip-audio", "a => a.duration")
        assert 1.0 < duration < 30.0

        # Alice confirms; Bob sees it at once. Bob dismisses another with a reason; Alice sees it.
        alice.click("#detail .decide-confirm")
        alice.wait_for_selector("#detail .decision-history li.confirm", timeout=WAIT_MS)
        assert "by Mod Alice" in alice.text_content("#detail .decision-history")
        bob.wait_for_selector(f'{row} .badge.dec.confirm', timeout=WAIT_MS)
        medical = by_category["medical_claim"]
        medical_row = f'#alert-list .row[data-alert-id="{medical["alert_id"]}"]'
        bob.click(medical_row)
        bob.click("#detail .decide-dismiss")  # no reason: refused in the page
        assert "reason" in bob.text_content("#detail .decision-status")
        bob.fill("#detail .dismiss-reason", "product is a plain pillow; no therapy claim in context")
        bob.click("#detail .decide-dismiss")
        bob.wait_for_selector("#detail .decision-history li.dismiss", timeout=WAIT_MS)
        alice.wait_for_selector(f'{medical_row} .badge.dec.dismiss', timeout=WAIT_MS)

        # a reload keeps the session (cookie) and shows the decisions
        alice.reload()
        alice.wait_for_function("() => document.getElementById('conn').textContent === 'live'", timeout=WAIT_MS)
        alice.wait_for_selector(f'{row} .badge.dec.confirm', timeout=WAIT_MS)
        alice.click(row)
        alice.wait_for_selector('#detail .proof[data-covered="true"]', timeout=WAIT_MS)
        alice.wait_for_selector("#detail .decision-history li.confirm")
        alice.screenshot(path=str(screenshot_dir / "console-alerts.png"))
        alice.click('.tab[data-view="anchors-view"]')
        alice.wait_for_selector("#anchor-chart svg rect.bar-confirmed", timeout=WAIT_MS)
        assert alice.text_content('#anchor-table tr[data-anchor-id="anchor-7"] td:nth-child(3)') == "1"
        alice.screenshot(path=str(screenshot_dir / "console-anchor-record.png"))

        # labeled export through the page's session
        export = alice.request.get(server.http + "/v1/decisions.jsonl")
        assert export.status == 200
        labels = {json.loads(line)["evidence_id"]: json.loads(line)["label"] for line in export.text().splitlines()}
        assert labels == {absolute["evidence_id"]: "violation", medical["evidence_id"]: "false_alert"}
    finally:
        held.stop()

    # the session cookie: HttpOnly, SameSite=Strict; useless from another origin or for ingest
    (cookie,) = [c for c in alice_context.cookies() if c["name"] == "monitor_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    session_cookie = f"monitor_session={cookie['value']}"

    async def handshake_status(path: str, headers: dict[str, str]) -> int:
        try:
            async with connect(server.url(path), additional_headers=headers):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert run_async(handshake_status("/v1/alerts", {"Cookie": session_cookie})) == 101
    assert run_async(handshake_status("/v1/alerts", {"Cookie": session_cookie, "Origin": "http://evil.example"})) == 403
    assert run_async(handshake_status("/v1/ingest", {"Cookie": session_cookie})) == 403
    assert run_async(handshake_status("/v1/alerts?access_token=tok-alice", {})) == 401

    # the decisions are in the archive's signed chain
    report = verify_archive(server.server.settings.data_dir)
    assert report.ok, report.problems
    assert report.decisions == 2

    # no token and no session id in any server log line (the handshake's headers are logged at DEBUG);
    # the test's own client logger ("websockets.client") is not the server's
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("websockets.client"))
    assert "< cookie: [redacted]" in logged.lower()  # uvicorn hands the handshake on with lower-case names
    for secret in ("tok-alice", "tok-bob", "tok-gateway", "tok-wrong", "tok-anchor", cookie["value"]):
        assert secret not in logged
    # "Sign out" (a POST from the page) ends Bob's session on the server, not only in the page
    bob.click("#sign-out")
    bob.wait_for_function("() => !document.getElementById('sign-in').hidden", timeout=WAIT_MS)
    assert "Signed out" in bob.text_content("#sign-in-error")
    assert bob.request.get(server.http + "/console/session").status == 401
    alice_context.close()
    bob_context.close()


def test_console_with_10000_alerts(console_server: RunningServer, browser: Any, capsys: Any) -> None:
    server = console_server
    context, page = open_console(browser, server, "tok-alice")
    already = page.evaluate("window.consoleStats.alerts")
    categories = ["absolute_claim", "medical_claim", "false_price", "private_transaction", "superstition"]
    alerts = [
        Alert(
            room_id=f"load-room-{i % 20}", anchor_id=f"load-anchor-{i % 7}", category=categories[i % 5],
            severity=("info", "warning", "violation")[i % 3], rule_id=f"load.{i % 5}", matched="全网最低价",
            source="lexicon", confidence=0.9, text=f"第{i}句：今天全网最低价，大家放心拍。", start=float(i),
            end=float(i) + 2.5, reminder="请勿使用绝对化用语", regulation="广告法 art. 9(3)",
        ).wire()
        for i in range(10_000)
    ]

    async def publish() -> None:
        for alert in alerts:
            server.server.hub.publish(alert)

    started = time.perf_counter()
    server.call(publish())
    page.wait_for_function(f"() => window.consoleStats.alerts >= {already + 10_000}", timeout=WAIT_MS)
    page.wait_for_function(f"() => Number(document.getElementById('alert-count').dataset.count) >= {already + 10_000}")
    received_s = time.perf_counter() - started

    measured = page.evaluate("""async () => {
        const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
        const stats = window.consoleStats;
        const select = document.getElementById('f-category');
        let t0 = performance.now();
        select.value = 'medical_claim';
        select.dispatchEvent(new Event('change'));
        await frame(); await frame();
        const filterToPaintMs = performance.now() - t0;
        const filterMs = stats.lastFilterMs, filteredRenderMs = stats.lastRenderMs, shown = stats.visible;
        const domRowsFiltered = document.querySelectorAll('#alert-list .row').length;
        select.value = '';
        select.dispatchEvent(new Event('change'));
        await frame(); await frame();
        const list = document.getElementById('alert-list');
        t0 = performance.now();
        list.scrollTop = list.scrollHeight / 2;
        list.dispatchEvent(new Event('scroll'));
        await frame(); await frame();
        return {filterToPaintMs, filterMs, filteredRenderMs, shown, domRowsFiltered,
                scrollToPaintMs: performance.now() - t0, scrollRenderMs: stats.lastRenderMs,
                domRows: document.querySelectorAll('#alert-list .row').length, total: stats.visible};
    }""")
    expected_medical = sum(1 for a in alerts if a["category"] == "medical_claim")
    assert measured["shown"] >= expected_medical  # plus any medical alerts of the first test
    assert measured["total"] >= already + 10_000
    assert measured["domRows"] < 100 and measured["domRowsFiltered"] < 100  # the DOM holds only rows in view
    figures = {
        "alerts_loaded": measured["total"],
        "receive_and_render_10000_s": round(received_s, 2),
        "filter_ms": round(measured["filterMs"], 1),
        "filter_to_paint_ms": round(measured["filterToPaintMs"], 1),
        "render_ms": round(measured["filteredRenderMs"], 1),
        "scroll_to_paint_ms": round(measured["scrollToPaintMs"], 1),
        "dom_rows": measured["domRows"],
    }
    with capsys.disabled():
        print(f"\nconsole with 10,000 alerts: {json.dumps(figures)}")
    context.close()


def test_decision_messages_refused_with_reasons(
    console_server: RunningServer, claim_audio: dict[str, np.ndarray]
) -> None:
    """The decision protocol without a browser: bad frames, wrong category, wrong role (docs/PROTOCOL.md)."""
    server = console_server
    alert = run_async(stream_room(
        server.url("/v1/ingest"), "tok-gateway", room_id="room-7", anchor_id="anchor-7",
        pcm=pcm(silence(0.3), claim_audio["absolute_claim"], silence(0.8)), speed=0,
    )).alerts[0]
    assert alert["evidence_id"]

    async def exchange(token: str, messages: list[str]) -> list[dict[str, Any]]:
        answers = []
        async with connect(server.url("/v1/alerts?room=room-7"),
                           additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            for message in messages:
                await ws.send(message)
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        return answers

    def decision(kind: str, **extra: Any) -> str:
        return json.dumps({"type": "decision", "evidence_id": alert["evidence_id"], "decision": kind,
                           "request_id": kind, **extra})

    bad, inspect, approve, confirmed = run_async(exchange("tok-bob", [
        "not json", decision("inspect"), decision("approve"), decision("confirm"),
    ]))
    assert (bad["type"], bad["code"], bad["fatal"]) == ("error", "bad_decision", False)
    assert inspect["code"] == "decision_refused" and "inspection is for" in inspect["message"]
    assert inspect["request_id"] == "inspect"
    assert approve["code"] == "bad_decision" and "decision" in approve["message"]
    assert confirmed["type"] == "decision_recorded" and confirmed["request_id"] == "confirm"
    (anchor,) = run_async(exchange("tok-anchor", [decision("confirm")]))
    assert anchor["code"] == "decision_refused" and "role 'anchor' may not decide" in anchor["message"]
