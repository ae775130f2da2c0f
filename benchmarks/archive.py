"""Evidence archive figures: append rate, verify speed, storage per room-hour and per three years.

Usage: .venv/bin/python benchmarks/archive.py [--alerts N] [--threads T] [--dir D]
                                              [--proof-records N ...] [--proofs-only]

``--proof-records``: also build synthetic logs of N leaves in the stored tree-hash
format and time RFC 6962 inclusion and consistency proofs from them (what the console's
evidence view and ``export`` do), with the memory they take (tracemalloc peak of the
proofs, and the process's resident memory).

A "typical room" is modelled as one alert a minute with a 6 s clip (a 4 s
utterance plus 1 s of context either side) of speech-like audio, plus the
session's final transcript (one committed segment every ~4 s of ~25 Chinese
characters). Speech-like audio: a pitch-modulated harmonic voice with syllable
envelope and background noise at about -35 dB; FLAC compresses real speech to a
similar ratio (~50-60 % of 16-bit PCM). Prints figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import tempfile
import threading
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from monitor.alerts import Alert
from monitor.archive import EvidenceArchive, verify_archive
from monitor.archive.merkle import inclusion_proof, root_from_inclusion_proof, verify_consistency
from monitor.archive.signing import Checkpoint
from monitor.archive.tree import TreeStore

SAMPLE_RATE = 16000
CLIP_S = 6.0
ALERTS_PER_HOUR = 60
SEGMENT_S = 4.0


def speech_like(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pitch = 160 + 40 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 2
    signal = 0.2 * voice * syllables + 0.005 * rng.standard_normal(t.size)
    return signal.astype(np.float32)


def make_alert(number: int, room: str) -> Alert:
    return Alert(
        room_id=room, anchor_id=f"anchor-{room}", category="absolute_claim", severity="warning",
        rule_id="absolute.lowest_price", matched="全网最低价", source="lexicon", confidence=0.92,
        text="家人们这款手镯全网最低价今天只要九十九", start=60.0 * number, end=60.0 * number + 4.0,
        reminder="请勿使用“全网最低价”等绝对化用语", regulation="广告法 art. 9(3)",
        lexicon_version="lex-2024.1", model_version="clf-0.3",
    )


def session_transcript(hours: float) -> list[dict[str, object]]:
    text = "家人们看一下这款和田玉手镯的颜色非常漂亮哦"
    return [{"start": i * SEGMENT_S, "end": (i + 1) * SEGMENT_S, "text": text}
            for i in range(int(hours * 3600 / SEGMENT_S))]


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rss_mb() -> float:
    """Resident memory of this process (MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def proof_figures(root: Path, records: int, *, compare_walk: bool) -> dict[str, float]:
    """Build a synthetic tree of ``records`` leaves on disk; time proofs from the stored hashes."""
    store = TreeStore(root / f"tree-{records}", writable=True)
    started = time.perf_counter()
    batch = 1 << 16
    for first in range(0, records, batch):
        count = min(batch, records - first)
        store.append([(hashlib.sha256(b"\x00" + (first + i).to_bytes(8, "big")).digest(), 0)
                      for i in range(count)])
    build_s = time.perf_counter() - started
    disk_mb = dir_bytes(root / f"tree-{records}") / 1e6
    rng = random.Random(records)
    root_hash = store.root(records)
    checkpoint = Checkpoint(records, root_hash, "", "", b"")
    rss_before = rss_mb()
    tracemalloc.start()
    inclusion_ms = []
    for _ in range(1000):
        index = rng.randrange(records)
        t0 = time.perf_counter()
        path = store.inclusion_proof(index, records)
        leaf = store.hash_at(0, index)
        ok = root_from_inclusion_proof(index, records, leaf, path) == checkpoint.root
        inclusion_ms.append((time.perf_counter() - t0) * 1000)
        assert ok
    consistency_ms = []
    for _ in range(200):
        old = rng.randrange(1, records)
        t0 = time.perf_counter()
        proof = store.consistency_proof(old, records)
        verify_consistency(old, records, store.root(old), root_hash, proof)
        consistency_ms.append((time.perf_counter() - t0) * 1000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = rss_mb()
    figures = {
        "records": records,
        "build_s": round(build_s, 1),
        "tree_files_mb": round(disk_mb, 1),
        "inclusion_p50_ms": round(float(np.percentile(inclusion_ms, 50)), 3),
        "inclusion_p99_ms": round(float(np.percentile(inclusion_ms, 99)), 3),
        "consistency_p50_ms": round(float(np.percentile(consistency_ms, 50)), 3),
        "consistency_p99_ms": round(float(np.percentile(consistency_ms, 99)), 3),
        "proof_peak_alloc_kb": round(peak / 1024, 1),
        "rss_mb": round(rss_after, 1),
        "rss_growth_mb": round(rss_after - rss_before, 1),
    }
    print(f"proofs at {records:,} records: inclusion p50 {figures['inclusion_p50_ms']} ms, "
          f"p99 {figures['inclusion_p99_ms']} ms (proof + check, 1000 random leaves); consistency p50 "
          f"{figures['consistency_p50_ms']} ms, p99 {figures['consistency_p99_ms']} ms (200); "
          f"peak allocation {figures['proof_peak_alloc_kb']} kB, process RSS {figures['rss_mb']} MB "
          f"(+{figures['rss_growth_mb']} MB); tree files {disk_mb:.0f} MB built in {build_s:.1f} s")
    if compare_walk:
        # The previous way: every proof re-hashed the whole log's leaves in memory.
        leaves = [store.hash_at(0, i) for i in range(records)]
        tracemalloc.start()
        t0 = time.perf_counter()
        inclusion_proof(records // 3, leaves)
        walk_s = time.perf_counter() - t0
        _, walk_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        figures["walk_proof_s"] = round(walk_s, 2)
        figures["walk_proof_peak_mb"] = round(walk_peak / 1e6, 1)
        print(f"  for comparison, one proof over all {records:,} leaf hashes held in memory (without "
              f"re-reading the log, as before): {walk_s:.2f} s, peak allocation {walk_peak / 1e6:.0f} MB")
    store.close()
    shutil.rmtree(root / f"tree-{records}", ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=600)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--dir", type=Path, help="archive directory (default: a temp dir, removed after)")
    parser.add_argument("--proof-records", type=int, nargs="*", default=[],
                        help="synthetic log sizes for the proof figures, e.g. 1000000 10000000")
    parser.add_argument("--proofs-only", action="store_true", help="skip append, storage and verify figures")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="archive-bench-"))
    data_dir = root / "archive"
    try:
        proofs = [proof_figures(root, n, compare_walk=n <= 1_000_000) for n in args.proof_records]
        if args.proofs_only:
            print(json.dumps({"proofs": proofs}))
            return
        archive = EvidenceArchive.open(data_dir)
        # 1. append rate, several worker threads like the server's to_thread calls
        per_thread = args.alerts // args.threads
        latencies: list[float] = []
        lock = threading.Lock()

        def worker(index: int) -> None:
            for n in range(per_thread):
                clip = speech_like(CLIP_S, seed=index * 100_000 + n)  # unique: no dedup flatters verify
                started = time.perf_counter()
                archive.record_alert(make_alert(n, f"room{index}"), clip=clip,
                                     clip_start=60.0 * n - 1.0, transcript="家人们这款手镯全网最低价今天只要九十九")
                with lock:
                    latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        append_s = time.perf_counter() - started
        appended = per_thread * args.threads
        rate = appended / append_s  # wall time, including synthesising each clip
        p50, p99 = (float(np.percentile(latencies, q)) * 1000 for q in (50, 99))
        print(f"append: {appended} alerts (unique 6 s clip each) in {append_s:.2f} s = {rate:.1f} records/s "
              f"with {args.threads} threads; latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")

        # 2. one room-hour: 60 alerts + the session transcript, measured on disk
        room_dir = root / "room-hour"
        end = datetime.now(UTC)
        with EvidenceArchive.open(room_dir) as room:
            for n in range(ALERTS_PER_HOUR):
                room.record_alert(make_alert(n, "busy"), clip=speech_like(CLIP_S, seed=n), clip_start=60.0 * n - 1,
                                  transcript="家人们这款手镯全网最低价今天只要九十九")
            room.record_session(session_id="s1", room_id="busy", anchor_id="anchor-busy",
                                transcript=session_transcript(1.0), started_at=end - timedelta(hours=1),
                                ended_at=end)
        blob_bytes = dir_bytes(room_dir / "blobs")
        log_bytes = dir_bytes(room_dir / "log")
        index_bytes = sum(p.stat().st_size for p in room_dir.glob("index.sqlite3*"))
        hour_bytes = blob_bytes + log_bytes + index_bytes
        three_years = hour_bytes * 24 * 365 * 3
        print(f"room-hour: {hour_bytes / 1e6:.2f} MB (blobs {blob_bytes / 1e6:.2f}, log+checkpoints "
              f"{log_bytes / 1e3:.0f} kB, index {index_bytes / 1e3:.0f} kB)")
        print(f"one busy room streaming 24 h/day for 3 years: {three_years / 1e9:.1f} GB; "
              f"8 h/day: {three_years / 3 / 1e9:.1f} GB")

        # 3. the console's evidence view: proof from the stored tree hashes, checked against the signature
        ids = [r.evidence_id for r in archive.find(limit=appended)]
        view_ms = []
        for eid in ids[:: max(1, len(ids) // 200)]:
            t0 = time.perf_counter()
            archive.proof_status(eid)
            view_ms.append((time.perf_counter() - t0) * 1000)
        view_p50 = float(np.percentile(view_ms, 50))
        print(f"console proof_status: p50 {view_p50:.2f} ms over {len(view_ms)} records")

        # 4. verify speed over the append benchmark's archive
        archive.close()
        report = verify_archive(data_dir)
        assert report.ok, report.problems
        mb = report.bytes_hashed / 1e6
        print(f"verify: {report.records} records, {report.files_checked} files, {mb:.1f} MB in "
              f"{report.seconds:.2f} s = {report.records / report.seconds:.0f} records/s, "
              f"{mb / report.seconds:.0f} MB/s")
        summary = {
            "append_records_per_s": round(rate, 1),
            "append_threads": args.threads,
            "append_latency_p50_ms": round(p50, 1),
            "append_latency_p99_ms": round(p99, 1),
            "verify_records_per_s": round(report.records / report.seconds),
            "verify_mb_per_s": round(mb / report.seconds, 1),
            "room_hour_bytes": hour_bytes,
            "room_3y_24h_gb": round(three_years / 1e9, 2),
            "room_3y_8h_gb": round(three_years / 3 / 1e9, 2),
            "proof_status_p50_ms": round(view_p50, 2),
            "proofs": proofs,
        }
        print(json.dumps(summary))
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
