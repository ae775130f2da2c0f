"""Operations: JSON log lines that name their room, process metrics and ``monitor_build_info``
on ``/metrics``, and a real-time factor that reflects the last minute, not the whole uptime."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from monitor.server.logs import JsonLogFormatter, bind_room, bound_room, use_log_format
from monitor.server.metrics import RTF_WINDOW_S, ServerMetrics, WindowSum
from tests.server.conftest import open_ingest, pcm, read_all, silence


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- real-time factor over a sliding window ---------------------------------------------------------


def test_window_sum_forgets_what_is_older_than_its_window() -> None:
    clock = FakeClock()
    window = WindowSum(60.0, 1.0, clock)
    window.add(5.0)
    clock.now += 30
    window.add(2.0)
    assert window.total() == 7.0
    clock.now += 31  # the first value is 61 s old
    assert window.total() == 2.0
    clock.now += 60
    assert window.total() == 0.0


def sample(metrics: ServerMetrics, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", metrics.render().decode(), re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


def test_real_time_factor_reflects_the_last_window_not_the_lifetime() -> None:
    clock = FakeClock()
    metrics = ServerMetrics(clock=clock)
    assert sample(metrics, "monitor_real_time_factor") == 0.0  # no audio yet
    metrics.add_audio(60.0)
    metrics.add_processing(speech_s=40.0, wall_s=30.0)  # a slow minute: 0.5
    assert sample(metrics, "monitor_real_time_factor") == pytest.approx(0.5)
    clock.now += RTF_WINDOW_S + 5  # the slow minute is over; the server keeps up now
    metrics.add_audio(10.0)
    metrics.add_processing(speech_s=5.0, wall_s=1.0)
    assert sample(metrics, "monitor_real_time_factor") == pytest.approx(0.1)  # the lifetime average is 0.44
    assert sample(metrics, "monitor_audio_seconds_total") == 70.0  # counters still count everything
    assert sample(metrics, "monitor_processing_seconds_total") == 31.0
    clock.now += RTF_WINDOW_S + 5
    assert sample(metrics, "monitor_real_time_factor") == 0.0  # idle


def test_metrics_include_the_process_and_the_build() -> None:
    text = ServerMetrics().render().decode()
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "python_info"):
        assert re.search(rf"^{name}[ {{]", text, re.MULTILINE), name
    assert re.search(
        r'^monitor_build_info\{lexicon_version="loading",model_version="loading",version="0\.1\.0"\} 1\.0$',
        text, re.MULTILINE,
    )


@pytest.mark.slow
def test_build_info_names_the_loaded_models(shared_server: Any) -> None:
    resources = shared_server.server.resources
    text = urllib.request.urlopen(shared_server.http + "/metrics", timeout=10).read().decode()
    info = re.search(r'^monitor_build_info\{lexicon_version="([^"]+)",model_version="([^"]+)",version="([^"]+)"\} 1',
                     text, re.MULTILINE)
    assert info is not None
    lexicon_version, model_version, version = info.groups()
    assert lexicon_version == resources.detectors.lexicon_version
    assert model_version.startswith(resources.transcriber.model_version)  # as alerts' model_version
    assert version == "0.1.0"


# -- JSON logs ------------------------------------------------------------------------------------------


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logging.getLogger("tests.json_log")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.StreamHandler(stream))
    use_log_format("json", logger)
    yield logger, stream
    logger.handlers.clear()


def test_json_log_lines_carry_time_level_logger_message(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    logger.warning("archive %s unavailable: %s", "/data", "报错\nsecond line")
    (line,) = json_lines(stream)
    assert set(line) == {"time", "level", "logger", "message"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert (line["level"], line["logger"]) == ("WARNING", "tests.json_log")
    assert line["message"] == "archive /data unavailable: 报错\nsecond line"
    assert len(stream.getvalue().splitlines()) == 1  # one line, whatever the message holds


def test_json_log_lines_name_their_room(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    logger.info("from a thread", extra={"room_id": "r7", "session_id": "s1"})
    with bound_room("r8", "s2"):
        logger.info("inside a room's task")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    logger.info("outside")
    lines = json_lines(stream)
    assert [(x.get("room_id"), x.get("session_id")) for x in lines] == [
        ("r7", "s1"), ("r8", "s2"), ("r8", "s2"), (None, None)
    ]
    assert "ValueError: boom" in lines[2]["exception"]


def test_a_task_bound_to_a_room_tags_the_tasks_it_creates(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log

    async def connection() -> None:
        bind_room("r9", "s9")
        await asyncio.create_task(asyncio.sleep(0, result=None))
        await asyncio.create_task(_log(logger))

    async def main() -> None:
        await asyncio.create_task(connection())
        logger.info("another task")

    asyncio.run(main())
    assert [(x["message"], x.get("room_id")) for x in json_lines(stream)] == [
        ("in a child task", "r9"), ("another task", None)
    ]


async def _log(logger: logging.Logger) -> None:
    logger.info("in a child task")


def test_text_format_leaves_handlers_alone() -> None:
    logger = logging.getLogger("tests.text_log")
    handler = logging.StreamHandler(io.StringIO())
    formatter = logging.Formatter("%(message)s")
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    try:
        use_log_format("text", logger)
        assert handler.formatter is formatter
        use_log_format("json", logger)
        assert isinstance(handler.formatter, JsonLogFormatter)
    finally:
        logger.removeHandler(handler)


@pytest.mark.slow
def test_serve_with_json_logs_tags_a_room_s_lines(make_server: Any, claim_audio: Any) -> None:
    root = logging.getLogger()
    saved = [(h, h.formatter) for h in root.handlers]
    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    root.addHandler(capture)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        server = make_server(log_format="json")

        async def stream_room() -> dict[str, Any]:
            ws = await open_ingest(server, room_id="room-json")
            ready = json.loads(await ws.recv())
            audio = pcm(claim_audio["absolute_claim"], silence(1.0))
            for at in range(0, len(audio), 32000):
                await ws.send(audio[at:at + 32000])
            await ws.send(json.dumps({"type": "stop"}))
            frames, _, _ = await read_all(ws)
            assert frames[-1]["type"] == "stopped", frames
            return dict(ready)

        ready = asyncio.run(stream_room())
    finally:
        root.removeHandler(capture)
        root.setLevel(level)
        for handler, formatter in saved:
            handler.setFormatter(formatter)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    finished = [x for x in lines if "finished" in x["message"] and x.get("room_id") == "room-json"]
    assert finished, lines
    assert finished[0]["session_id"] == ready["session_id"]
    assert finished[0]["logger"] == "monitor.server.session"
    print(f"{len(lines)} JSON log lines", file=sys.stderr)
