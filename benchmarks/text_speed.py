"""Characters per second of the whole text engine on one core.

Builds at least 1 MB of transcript text from the sample sets (claims and negatives
interleaved, with homophone noise so the pinyin path is exercised), as utterances of
one to three sample lines each (a VAD-cut utterance of live speech holds 20-70
characters; the sample lines average 16), feeds them through one ComplianceSession
(normalize -> lexicon/pinyin -> context rules -> classifier unless --no-classifier)
and prints chars/s (wall and per CPU-second, pinned to one core). About half of the
sample lines are claims, far denser than a real room: a worst case. Usage:

    .venv/bin/python benchmarks/text_speed.py [--megabytes 1.0] [--no-classifier]

The last line is one JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from homophones import add_homophone_noise

from monitor.config import load_settings
from monitor.detection import ComplianceSession, Detectors, load_detectors
from monitor.room import Utterance

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "transcripts"


def corpus(megabytes: float, seed: int = 0) -> list[str]:
    lines = []
    for name in ("claims.jsonl", "negatives.jsonl"):
        for raw in (SAMPLES / name).read_text(encoding="utf-8").splitlines():
            if raw.strip():
                lines.append(json.loads(raw)["text"])
    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < megabytes * 1_000_000:
        parts = [add_homophone_noise(rng.choice(lines), 0.1, rng) for _ in range(rng.randint(1, 3))]
        utterance = "，".join(parts)
        out.append(utterance)
        size += len(utterance.encode("utf-8"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=1.0)
    parser.add_argument("--no-classifier", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    detectors = load_detectors(load_settings())
    if args.no_classifier:
        detectors = Detectors(text=detectors.text)
    lines = corpus(args.megabytes)
    chars = sum(len(line) for line in lines)
    session = ComplianceSession(detectors)
    alerts = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    for line in lines:
        alerts += len(session.feed(Utterance(line)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    rate = chars / elapsed
    cpu_rate = chars / cpu
    print(f"{len(lines)} lines, {chars} chars ({args.megabytes} MB UTF-8) in {elapsed:.2f} s wall, {cpu:.2f} s CPU")
    print(f"{rate:,.0f} chars/s wall on one core ({cpu_rate:,.0f} chars per CPU-second), {alerts} alerts")
    print(f"{1000 * cpu / len(lines):.3f} ms CPU per utterance (mean {chars / len(lines):.1f} chars)")
    print(
        json.dumps(
            {
                "benchmark": "text_speed",
                "chars": chars,
                "seconds": round(elapsed, 3),
                "chars_per_second": round(rate),
                "chars_per_cpu_second": round(cpu_rate),
                "ms_per_utterance": round(1000 * cpu / len(lines), 4),
                "classifier": not args.no_classifier,
            }
        )
    )


if __name__ == "__main__":
    main()
