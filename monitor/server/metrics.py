"""Prometheus metrics of one server (served as text on ``GET /metrics``).

Each :class:`ServerMetrics` owns its own ``CollectorRegistry`` so several servers in
one process (tests) never share counters. docs/PROTOCOL.md lists every name.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0, 20.0)
"""Buckets of the alert-latency histogram, in seconds after the end of the utterance's audio arrived."""


class ServerMetrics:
    """The counters, gauges and histograms of the streaming server; thread-safe to update."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
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
            "Processing seconds per second of audio accepted, since start (below 1 keeps up)",
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
        self._lock = threading.Lock()
        self._audio_total_s = 0.0
        self._processing_total_s = 0.0

    def add_audio(self, seconds: float) -> None:
        """Count ``seconds`` of accepted room audio."""
        self.audio_seconds.inc(seconds)
        with self._lock:
            self._audio_total_s += seconds
            self._update_rtf()

    def add_processing(self, speech_s: float, wall_s: float) -> None:
        """Count one utterance of ``speech_s`` seconds that took ``wall_s`` to process."""
        self.utterances.inc()
        self.speech_seconds.inc(speech_s)
        self.processing_seconds.inc(wall_s)
        with self._lock:
            self._processing_total_s += wall_s
            self._update_rtf()

    def _update_rtf(self) -> None:
        if self._audio_total_s > 0:
            self.real_time_factor.set(self._processing_total_s / self._audio_total_s)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
