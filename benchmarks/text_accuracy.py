"""Recall per category and false alerts on negatives for the text stages.

Reads samples/transcripts/claims.jsonl (lines with their expected categories) and
negatives.jsonl (ordinary selling talk and traps), runs every line through a fresh
ComplianceSession (no room context), clean and after homophone noise, and prints:

- recall per category (a claim line counts for a category when an alert of that
  category is raised on it);
- false alerts: negative lines with any alert;
- the same on noisy copies (``--noise-rate`` of CJK characters swapped for
  homophones, ``--noise-copies`` seeded copies per line).

Usage: .venv/bin/python benchmarks/text_accuracy.py [--show-misses] [--no-classifier]
The last line is one JSON summary.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from homophones import add_homophone_noise

from monitor.config import load_settings
from monitor.detection import ComplianceSession, Detectors, load_detectors
from monitor.room import Utterance
from monitor.taxonomy import CATEGORIES

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "transcripts"


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _categories(detectors: Detectors, text: str, sources: set[str] | None) -> set[str]:
    alerts = ComplianceSession(detectors).feed(Utterance(text))
    return {a.category for a in alerts if sources is None or a.source in sources}


def evaluate(detectors, claims, negatives, sources, show_misses: bool, label: str) -> dict:
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    misses = []
    for item in claims:
        got = _categories(detectors, item["text"], sources)
        for category in item["categories"]:
            total[category] += 1
            if category in got:
                found[category] += 1
            else:
                misses.append((category, item["text"], sorted(got)))
    false_alerts = []
    for item in negatives:
        got = _categories(detectors, item["text"], sources)
        if got:
            false_alerts.append((item["text"], sorted(got)))
    recall = {c: round(found[c] / total[c], 3) for c in CATEGORIES if total[c]}
    overall = round(sum(found.values()) / max(1, sum(total.values())), 3)
    print(f"\n== {label}: {len(claims)} claim lines, {len(negatives)} negatives")
    for category in CATEGORIES:
        if total[category]:
            print(f"  {category:24s} recall {recall[category]:.3f}  ({found[category]}/{total[category]})")
    print(f"  {'overall':24s} recall {overall:.3f}")
    print(f"  false alerts on negatives: {len(false_alerts)}/{len(negatives)}")
    if show_misses:
        for category, text, got in misses:
            print(f"    MISS {category}: {text}  (got {got})")
        for text, got in false_alerts:
            print(f"    FALSE {got}: {text}")
    return {"recall": overall, "per_category": recall, "false_alerts": len(false_alerts), "negatives": len(negatives)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--no-classifier", action="store_true", help="lexicon, pinyin and price rules only")
    parser.add_argument("--noise-rate", type=float, default=0.15)
    parser.add_argument("--noise-copies", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    detectors = load_detectors(load_settings())
    sources = {"lexicon", "pinyin"} if args.no_classifier else None
    claims = _read(SAMPLES / "claims.jsonl")
    negatives = _read(SAMPLES / "negatives.jsonl")
    clean = evaluate(detectors, claims, negatives, sources, args.show_misses, "clean text")

    rng = random.Random(args.seed)
    noisy_claims = [
        {**item, "text": add_homophone_noise(item["text"], args.noise_rate, rng)}
        for item in claims
        for _ in range(args.noise_copies)
    ]
    noisy_negatives = [
        {**item, "text": add_homophone_noise(item["text"], args.noise_rate, rng)}
        for item in negatives
        for _ in range(args.noise_copies)
    ]
    label = f"homophone noise {args.noise_rate:.0%} x{args.noise_copies}"
    noisy = evaluate(detectors, noisy_claims, noisy_negatives, sources, args.show_misses, label)
    print(
        json.dumps(
            {
                "benchmark": "text_accuracy",
                "lexicon_version": detectors.lexicon_version,
                "sources": sorted(sources) if sources else "all",
                "clean": clean,
                "noisy": {"rate": args.noise_rate, **noisy},
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
