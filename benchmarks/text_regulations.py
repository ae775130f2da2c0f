"""Recall per category and false alerts on the regulation-grounded sets (issue 17).

Reads ``samples/regulations/<set>/claims.tsv`` (``category[,category]<TAB>utterance``)
and ``negatives.txt`` (one utterance a line, no claim), or for the ``outside`` set (written
by an outside writer who never saw the lexicons, rules or code) ``claims.jsonl``
(``{"text","categories","source"}``) and ``negatives.jsonl`` (``{"text","kind"}``), and runs each line through a
fresh ComplianceSession (no room context, as ``monitor scan --text`` does).
A claim line counts for a category when an alert of that category is raised on it;
a negative line with any alert is a false alert.

Also reads the spoken negatives (``samples/spoken/<set>.txt``: podcast, meeting and
live-room talk) when ``--spoken`` is given.

Usage: .venv/bin/python benchmarks/text_regulations.py [--set heldout|dev] [--no-classifier]
       [--show-misses] [--spoken]
The last line is one JSON summary.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from monitor.config import load_settings
from monitor.detection import ComplianceSession, Detectors, load_detectors
from monitor.room import Utterance
from monitor.taxonomy import CATEGORIES

ROOT = Path(__file__).resolve().parent.parent / "samples"


def read_claims(path: Path) -> list[tuple[list[str], str]]:
    """``(categories, utterance)`` for each claim line of a ``claims.tsv`` file."""
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        field, sep, text = line.partition("\t")
        categories = field.split(",")
        if not sep or set(categories) - set(CATEGORIES):
            raise SystemExit(f"{path}:{number}: expected 'category[,category]<TAB>text', got {line!r}")
        items.append((categories, text))
    return items


def read_jsonl_claims(path: Path) -> list[tuple[list[str], str]]:
    """``(categories, utterance)`` for each line of a ``claims.jsonl`` file."""
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if set(row["categories"]) - set(CATEGORIES):
            raise SystemExit(f"{path}:{number}: unknown category in {row['categories']}")
        items.append((list(row["categories"]), row["text"]))
    return items


def read_set(folder: Path) -> tuple[list[tuple[list[str], str]], list[str]]:
    """A set's claims and negatives, in either format (see the module docstring)."""
    if (folder / "claims.jsonl").exists():
        negatives = [json.loads(line)["text"] for line in (folder / "negatives.jsonl").read_text("utf-8").splitlines()
                     if line.strip()]
        return read_jsonl_claims(folder / "claims.jsonl"), negatives
    return read_claims(folder / "claims.tsv"), read_lines(folder / "negatives.txt")


def read_lines(path: Path) -> list[str]:
    """The utterances of a one-a-line file (``#`` comments and blank lines skipped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def categories_of(detectors: Detectors, text: str, sources: set[str] | None) -> set[str]:
    alerts = ComplianceSession(detectors).feed(Utterance(text))
    return {a.category for a in alerts if sources is None or a.source in sources}


def evaluate(detectors: Detectors, claims, negatives, sources, show: bool, label: str) -> dict:  # type: ignore[no-untyped-def]
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    misses = []
    for categories, text in claims:
        got = categories_of(detectors, text, sources)
        for category in categories:
            total[category] += 1
            if category in got:
                found[category] += 1
            else:
                misses.append((category, text, sorted(got)))
    lines_caught = sum(1 for categories, text in claims if set(categories) & categories_of(detectors, text, sources))
    false_alerts = [(t, sorted(g)) for t in negatives if (g := categories_of(detectors, t, sources))]
    recall = {c: round(found[c] / total[c], 3) for c in CATEGORIES if total[c]}
    overall = round(sum(found.values()) / max(1, sum(total.values())), 3)
    macro = round(sum(recall.values()) / max(1, len(recall)), 3)
    if claims:
        print(f"\n== {label}: {len(claims)} claim lines, {len(negatives)} negatives")
        for category in CATEGORIES:
            if total[category]:
                print(f"  {category:24s} recall {recall[category]:.3f}  ({found[category]}/{total[category]})")
        print(f"  {'all (line, category) pairs':24s} recall {overall:.3f}; per-category mean {macro:.3f}")
        print(f"  claim lines with at least one expected category: {lines_caught}/{len(claims)}")
    else:
        print(f"\n== {label}: {len(negatives)} negatives")
    print(f"  false alerts on negatives: {len(false_alerts)}/{len(negatives)}")
    if show:
        for category, text, got_sorted in misses:
            print(f"    MISS {category}: {text}  (got {got_sorted})")
        for text, got_sorted in false_alerts:
            print(f"    FALSE {got_sorted}: {text}")
    return {
        "recall": overall,
        "per_category_mean": macro,
        "per_category": recall,
        "false_alerts": len(false_alerts),
        "negatives": len(negatives),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--set", default="heldout", choices=["heldout", "dev", "outside", "outside_dev"])
    parser.add_argument("--no-classifier", action="store_true", help="lexicon, pinyin and price rules only")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--spoken", action="store_true", help="also the spoken negatives samples/spoken/<set>.txt")
    args = parser.parse_args()

    detectors = load_detectors(load_settings())
    sources = {"lexicon", "pinyin"} if args.no_classifier else None
    folder = ROOT / "regulations" / args.set
    summary: dict[str, object] = {
        "benchmark": "text_regulations",
        "set": args.set,
        "lexicon_version": detectors.lexicon_version,
        "model_version": detectors.model_version,
        "sources": sorted(sources) if sources else "all",
    }
    claims, negatives = read_set(folder)
    summary["regulations"] = evaluate(
        detectors,
        claims,
        negatives,
        sources,
        args.show_misses,
        f"regulations/{args.set}",
    )
    if args.spoken and (ROOT / "spoken" / f"{args.set}.txt").exists():
        spoken = read_lines(ROOT / "spoken" / f"{args.set}.txt")
        summary["spoken"] = evaluate(detectors, [], spoken, sources, args.show_misses, f"spoken/{args.set}")
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
