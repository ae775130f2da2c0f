"""Prometheus metrics of one server (served as text on ``GET /metrics``).

Each :class:`ServerMetrics` owns its own ``CollectorRegistry`` so several servers in
one process (tests) never share counters. docs/PROTOCOL.md lists every name.

Besides the server's own metrics the registry holds the process's (``process_*``: CPU
seconds, resident memory, open file descriptors; ``python_info``) and
``monitor_build_info{version, model_version, lexicon_version}``, whose model and lexicon
versions are ``loading`` until the models are loaded.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from monitor import __version__

RTF_WINDOW_S = 60.0
"""``monitor_real_time_factor`` is measured over the last this many seconds (wall clock)."""

RTF_BUCKET_S = 1.0
"""Resolution of that window: its sums are kept per this many seconds."""

LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0, 20.0)
"""Buckets of the alert-latency histogram, in seconds after the end of the utterance's audio arrived."""


class ServerMetrics:
    """The counters, gauges and histograms of the streaming server; thread-safe to update."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.open_rooms = Gauge(
            "monitor_open_rooms", "Room sessions open (connected or in resume grace)", registry=r
        )
        self.ingest_connections = Gauge("monitor_ingest_connections", "Open /v1/ingest sockets", registry=r)
        self.subscribers = Gauge("monitor_alert_subscribers", "Open /v1/alerts sockets", registry=r)
        self.audio_seconds = Counter(
            "monitor_audio_seconds", "Seconds of room audio accepted (stream time)", registry=r
        )
        self.speech_seconds = Counter(
            "monitor_speech_seconds", "Seconds of utterance audio transcribed", registry=r
        )
        self.processing_seconds = Counter(
            "monitor_processing_seconds",
            "Wall seconds spent transcribing and detecting utterances",
            registry=r,
        )
        self.real_time_factor = Gauge(
            "monitor_real_time_factor",
            f"Processing seconds per second of audio accepted, over the last {RTF_WINDOW_S:g} s "
            "(below 1 keeps up; 0 when no audio came in that window)",
            registry=r,
        )
        self.pending_audio_seconds = Gauge(
            "monitor_pending_audio_seconds", "Speech queued for transcription, all rooms", registry=r
        )
        self.utterances = Counter("monitor_utterances", "Utterances transcribed", registry=r)
        self.alert_latency = Histogram(
            "monitor_alert_latency_seconds",
            "Wall time from the arrival of an utterance's last sample to its alert being sent",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.alerts = Counter("monitor_alerts", "Alerts sent", ["category", "severity"], registry=r)
        self.alerts_deduplicated = Counter(
            "monitor_alerts_deduplicated",
            "Alerts folded into an earlier reminder (dedup window)",
            ["category"],
            registry=r,
        )
        self.archive_writes = Counter(
            "monitor_archive_writes", "Evidence and session records written", registry=r
        )
        self.archive_errors = Counter(
            "monitor_archive_errors",
            "Archive writes that failed (alert sent with evidence_id null)",
            registry=r,
        )
        self.frames_dropped = Counter(
            "monitor_frames_dropped", "Client frames discarded", ["reason"], registry=r
        )
        self.frames_throttled = Counter(
            "monitor_frames_throttled",
            "Frames whose reading was delayed (back-pressure)",
            ["reason"],
            registry=r,
        )
        self.limit_refusals = Counter(
            "monitor_limit_refusals",
            "Clients refused or slowed by a configured bound (open_sockets, pending_handshakes, "
            "sessions_per_token, decisions_per_moderator_per_s)",
            ["limit"],
            registry=r,
        )
        self.protocol_errors = Counter("monitor_protocol_errors", "Error frames sent", ["code"], registry=r)
        self.subscriber_disconnects = Counter(
            "monitor_subscriber_disconnects", "Subscribers cut off by the server", ["reason"], registry=r
        )
        self.outbox_dropped = Counter(
            "monitor_outbox_dropped", "Frames dropped from a full ingest outbox", ["type"], registry=r
        )
        # pull mode (POST /v1/rooms, monitor/server/pull.py)
        self.pulled_rooms = Gauge(
            "monitor_pulled_rooms", "Pulled rooms by source state (connecting, streaming, retrying, failed)",
            ["state"], registry=r,
        )
        self.pull_reconnects = Counter(
            "monitor_pull_reconnects", "Pulled sources retried after a failed connect or a dropped stream",
            registry=r,
        )
        self.pull_failures = Counter(
            "monitor_pull_failures", "Pulled sources given up (unreachable, undecodable, too many failures)",
            registry=r,
        )
        self.pull_dropped_audio_seconds = Counter(
            "monitor_pull_dropped_audio_seconds",
            "Live pulled audio dropped (oldest first) because its room could not keep up; fed as silence",
            registry=r,
        )
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.build = BuildInfo()
        r.register(self.build)
        self._audio_window = WindowSum(RTF_WINDOW_S, RTF_BUCKET_S, clock)
        self._processing_window = WindowSum(RTF_WINDOW_S, RTF_BUCKET_S, clock)
        self.real_time_factor.set_function(self.windowed_rtf)

    def add_audio(self, seconds: float) -> None:
        """Count ``seconds`` of accepted room audio."""
        self.audio_seconds.inc(seconds)
        self._audio_window.add(seconds)

    def add_processing(self, speech_s: float, wall_s: float) -> None:
        """Count one utterance of ``speech_s`` seconds that took ``wall_s`` to process."""
        self.utterances.inc()
        self.speech_seconds.inc(speech_s)
        self.processing_seconds.inc(wall_s)
        self._processing_window.add(wall_s)

    def windowed_rtf(self) -> float:
        """Processing seconds per audio second over the last :data:`RTF_WINDOW_S` (0 without audio)."""
        audio_s = self._audio_window.total()
        return self._processing_window.total() / audio_s if audio_s > 0 else 0.0

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class WindowSum:
    """A thread-safe sum of the values added in the last ``window_s`` seconds, in buckets of
    ``bucket_s`` (so it may count up to one bucket more than the window); ``clock`` for tests."""

    def __init__(self, window_s: float, bucket_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.bucket_s = bucket_s
        self._clock = clock
        self._buckets: deque[list[float]] = deque()  # [bucket index, sum], oldest first
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        index = int(self._clock() // self.bucket_s)
        with self._lock:
            if self._buckets and self._buckets[-1][0] == index:
                self._buckets[-1][1] += value
            else:
                self._buckets.append([index, value])
            self._expire(index)

    def total(self) -> float:
        index = int(self._clock() // self.bucket_s)
        with self._lock:
            self._expire(index)
            return sum(value for _, value in self._buckets)

    def _expire(self, index: int) -> None:
        oldest = index - int(self.window_s // self.bucket_s)
        while self._buckets and self._buckets[0][0] < oldest:
            self._buckets.popleft()


class BuildInfo(Collector):
    """``monitor_build_info{version, model_version, lexicon_version} 1``; the versions are read at
    scrape time from :attr:`versions` (``(model_version, lexicon_version)``), ``loading`` until set."""

    # described like prometheus_client's own metrics, for code that lists what /metrics exports
    _name = "monitor_build_info"
    _type = "gauge"
    _labelnames = ("version", "model_version", "lexicon_version")

    def __init__(self) -> None:
        self.versions: Callable[[], tuple[str, str] | None] = lambda: None

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "monitor_build_info", "The monitor's version and the model and lexicon versions it serves with",
            labels=list(self._labelnames),
        )
        model_version, lexicon_version = self.versions() or ("loading", "loading")
        family.add_metric([__version__, model_version, lexicon_version], 1.0)
        yield family
