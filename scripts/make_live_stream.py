"""Builds a long live-room stream with ground truth for the live-server benchmarks.

Clean clips from ``samples/audio/manifest.jsonl`` are joined with pauses of
0.8-2.0 s (the speaker changes every few utterances, as anchor and assistant take
turns), over a synthesized music bed that runs through the whole stream, including
a few seconds of music alone at the start and the end. The output is 16 kHz mono
FLAC plus a JSON file listing every utterance with its expected categories and its
``start``/``end`` in stream seconds: ``start`` is where its speech begins and ``end``
where it stops, so alert latency can be measured from ``end`` of each claim.

Run from the repository root (project venv; needs the clips made by
``scripts/make_audio_samples.py``)::

    .venv/bin/python scripts/make_live_stream.py                      # samples/audio/live/stream_01.*
    .venv/bin/python scripts/make_live_stream.py --duration 300 --seed 7 --name stream_02

The stream is a deterministic function of the manifest's clips and the arguments.
Ground-truth JSON layout::

    {"audio": "stream_01.flac", "sample_rate": 16000, "duration": s, "seed": n,
     "music_snr_db": db, "voices": [...], "n_claims": n, "n_negatives": n,
     "utterances": [{"index": i, "start": s, "end": s, "kind": "claim|negative",
                     "categories": [...], "text": "...", "sentence_id": "...",
                     "voice": "...", "clip": "clean/<voice>/<id>.opus"}, ...]}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_audio_samples import (  # a sibling script, not a package
    SAMPLE_RATE,
    SPEECH_LEVEL_DBFS,
    db_to_gain,
    decode,
    encode,
    limit_peak,
    synth_music,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
PAUSE_RANGE_S = (0.8, 2.0)
INTRO_S = 3.0
OUTRO_S = 3.0
CLAIM_SHARE = 0.5
"""Fraction of utterances that are claims; the rest is ordinary selling talk."""
TURN_RANGE = (3, 7)
"""A speaker says this many utterances (inclusive range) before another takes over."""
DEFAULT_SEED = 20261124


def speech_bounds(x: np.ndarray, floor_db: float = -45.0) -> tuple[int, int]:
    """Sample indices ``[start, end)`` of the audible speech in a clip (10 ms frames)."""
    n = SAMPLE_RATE // 100
    frames = x[: len(x) // n * n].reshape(-1, n)
    energy = np.sqrt(np.mean(frames**2, axis=1))
    voiced = np.nonzero(energy > energy.max() * db_to_gain(floor_db))[0]
    return int(voiced[0] * n), int((voiced[-1] + 1) * n)


def build_stream(manifest: list[dict], voices: list[str], duration_s: float, music_snr_db: float,
                 seed: int, samples_dir: Path) -> tuple[np.ndarray, list[dict]]:
    """Returns the stream (float32, 16 kHz) and its utterance list (stream seconds)."""
    rng = np.random.default_rng(seed)
    clean = [r for r in manifest if r["variant"] == "clean" and r["voice"] in voices]
    if not clean:
        raise SystemExit(f"no clean clips of voices {voices} in the manifest")
    by_kind: dict[str, list[str]] = {"claim": [], "negative": []}
    for r in clean:
        if r["sentence_id"] not in by_kind[r["kind"]]:
            by_kind[r["kind"]].append(r["sentence_id"])
    clip_of = {(r["voice"], r["sentence_id"]): r for r in clean}
    queues = {k: list(rng.permutation(v)) for k, v in by_kind.items()}

    pieces: list[tuple[int, np.ndarray]] = []  # (stream sample offset, clip audio)
    utterances: list[dict] = []
    cursor = int(INTRO_S * SAMPLE_RATE)
    end_limit = int((duration_s - OUTRO_S) * SAMPLE_RATE)
    voice = voices[int(rng.integers(len(voices)))]
    turn_left = int(rng.integers(TURN_RANGE[0], TURN_RANGE[1] + 1))
    while True:
        if turn_left == 0:
            others = [v for v in voices if v != voice] or voices
            voice = others[int(rng.integers(len(others)))]
            turn_left = int(rng.integers(TURN_RANGE[0], TURN_RANGE[1] + 1))
        kind = "claim" if rng.random() < CLAIM_SHARE else "negative"
        if not queues[kind]:
            queues[kind] = list(rng.permutation(by_kind[kind]))
        sentence_id = str(queues[kind].pop())
        row = clip_of[(voice, sentence_id)]
        audio = decode(samples_dir / row["file"])
        if cursor + len(audio) > end_limit:
            break
        start, end = speech_bounds(audio)
        pieces.append((cursor, audio))
        utterances.append({
            "index": len(utterances),
            "start": round((cursor + start) / SAMPLE_RATE, 3),
            "end": round((cursor + end) / SAMPLE_RATE, 3),
            "kind": row["kind"],
            "categories": row["categories"],
            "text": row["text"],
            "sentence_id": sentence_id,
            "voice": voice,
            "clip": row["file"],
        })
        turn_left -= 1
        cursor += len(audio) + int(rng.uniform(*PAUSE_RANGE_S) * SAMPLE_RATE)

    total = int(duration_s * SAMPLE_RATE)
    speech = np.zeros(total, np.float32)
    for offset, audio in pieces:
        speech[offset : offset + len(audio)] += audio
    bed = synth_music(total, rng) * db_to_gain(SPEECH_LEVEL_DBFS - music_snr_db)
    return limit_peak(speech + bed), utterances


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=REPO_ROOT / "samples/audio/manifest.jsonl")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "samples/audio/live")
    parser.add_argument("--name", default="stream_01", help="file stem of the .flac and .json")
    parser.add_argument("--duration", type=float, default=300.0, help="stream length in seconds")
    parser.add_argument("--music-snr-db", type=float, default=15.0,
                        help="speech level over the music bed (dB)")
    parser.add_argument("--voices", default="", help="comma-separated voice ids (default: every voice of the manifest)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)

    manifest = [json.loads(line) for line in args.manifest.read_text(encoding="utf-8").splitlines() if line]
    voices = [v for v in args.voices.split(",") if v] or sorted({r["voice"] for r in manifest if r["voice"]})
    stream, utterances = build_stream(manifest, voices, args.duration, args.music_snr_db, args.seed,
                                      args.manifest.parent)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    flac = args.out_dir / f"{args.name}.flac"
    encode(flac, stream, codec="flac")
    truth = {
        "audio": flac.name,
        "sample_rate": SAMPLE_RATE,
        "duration": round(len(stream) / SAMPLE_RATE, 3),
        "seed": args.seed,
        "music_snr_db": args.music_snr_db,
        "voices": voices,
        "n_claims": sum(u["kind"] == "claim" for u in utterances),
        "n_negatives": sum(u["kind"] == "negative" for u in utterances),
        "utterances": utterances,
    }
    (args.out_dir / f"{args.name}.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n",
                                                  encoding="utf-8")
    print(json.dumps({k: v for k, v in truth.items() if k != "utterances"}
                     | {"bytes": flac.stat().st_size}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
