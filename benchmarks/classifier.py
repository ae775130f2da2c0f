"""Claim classifier figures: precision and recall per category, false alerts on negatives, latency.

    .venv/bin/python benchmarks/classifier.py [--models models] [--samples samples/classifier]

Two hand-written sets are scored with the shipped model and thresholds:

* ``test/`` — written independently of the training lines, the templates and the
  dev set, and never used to train, calibrate or choose thresholds: the honest
  figure for paraphrases the model has not seen;
* ``dev/`` — held out from training but used (with out-of-fold hand-written training
  lines) to fit the Platt calibration and choose the thresholds, so its figures are
  in-sample for the thresholds.

Per category: the threshold, claims, precision (an alert of a category on a line that
does not claim it counts against it), recall, and alerts of that category on the
negatives. Then micro-averaged precision and recall, the negatives with any alert,
and the latency per utterance on one core (featurize + ONNX, p50/p95 over every
utterance, several passes).

Last, the test set through the whole text pipeline (``ComplianceSession``: lexicons,
pinyin, price rule, then the classifier with the negation and context rules), as
``monitor scan --text`` would see it: claim lines with an alert of their category from
any source, and negatives with any alert. The last line is one JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from monitor.classifier import ClaimClassifier  # noqa: E402
from monitor.classifier.data import Example, load_labelled  # noqa: E402
from monitor.detection import ComplianceSession, Detectors  # noqa: E402
from monitor.room import Utterance  # noqa: E402
from monitor.text.engine import TextEngine  # noqa: E402

LATENCY_PASSES = 5


def _precision_recall(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    tp = int((flagged & truth).sum())
    precision = tp / int(flagged.sum()) if flagged.any() else 1.0
    recall = tp / int(truth.sum()) if truth.any() else 1.0
    return precision, recall


def evaluate(classifier: ClaimClassifier, name: str, examples: list[Example], latencies_ms: list[float]) -> dict:
    """Print and return the figures of one labelled set; append per-utterance latencies."""
    categories = classifier.categories
    truth = np.array([[c in e.labels for c in categories] for e in examples], dtype=bool)
    negative = ~truth.any(axis=1)
    probabilities = np.zeros(truth.shape)
    for pass_number in range(LATENCY_PASSES):
        for i, example in enumerate(examples):
            start = time.perf_counter()
            scores = classifier.scores(example.text)
            latencies_ms.append((time.perf_counter() - start) * 1000.0)
            if pass_number == 0:
                probabilities[i] = scores.probabilities
    thresholds = np.array([classifier.thresholds[c] for c in categories])
    flagged = probabilities >= thresholds

    print(f"\n{name}: {int((~negative).sum())} claims, {int(negative.sum())} negatives")
    print(f"{'category':24s} {'thr':>5s} {'n':>4s} {'prec':>5s} {'recall':>6s} {'negFA':>5s}")
    per_category: dict[str, dict[str, float]] = {}
    for k, category in enumerate(categories):
        precision, recall = _precision_recall(flagged[:, k], truth[:, k])
        negative_alerts = int((flagged[:, k] & negative).sum())
        per_category[category] = {
            "threshold": float(thresholds[k]),
            "claims": int(truth[:, k].sum()),
            "precision": round(precision, 3),
            "recall": round(recall, 3),
            "negative_false_alerts": negative_alerts,
        }
        print(
            f"{category:24s} {thresholds[k]:5.3f} {int(truth[:, k].sum()):4d} {precision:5.2f} {recall:6.2f} "
            f"{negative_alerts:5d}"
        )
    micro_precision, micro_recall = _precision_recall(flagged, truth)
    # A line counts as caught when any of its categories alerts (what a moderator sees).
    caught = (flagged & truth).any(axis=1)[~negative].mean() if (~negative).any() else 1.0
    negatives_alerted = int((flagged.any(axis=1) & negative).sum())
    print(
        f"all categories (micro): precision {micro_precision:.3f} recall {micro_recall:.3f}; "
        f"claim lines caught {caught:.3f}; negatives alerted {negatives_alerted}/{int(negative.sum())}"
    )
    return {
        "claims": int((~negative).sum()),
        "negatives": int(negative.sum()),
        "precision": round(micro_precision, 3),
        "recall": round(micro_recall, 3),
        "lines_caught": round(float(caught), 3),
        "negatives_false_alerts": negatives_alerted,
        "per_category": per_category,
    }


def evaluate_pipeline(detectors: Detectors, examples: list[Example]) -> dict:
    """Claim lines alerted in one of their categories, and negatives with any alert, by source."""
    caught = claims = negatives = alerted = 0
    by_source: dict[str, int] = {}
    for example in examples:
        alerts = ComplianceSession(detectors).feed(Utterance(example.text))
        if example.labels:
            claims += 1
            hits = [a for a in alerts if a.category in example.labels]
            caught += bool(hits)
            for source in {a.source for a in hits}:
                by_source[source] = by_source.get(source, 0) + 1
        else:
            negatives += 1
            alerted += bool(alerts)
    print(
        f"\ntest through the whole pipeline (lexicons + classifier): claim lines caught {caught / claims:.3f} "
        f"({caught}/{claims}; by source {dict(sorted(by_source.items()))}); negatives alerted {alerted}/{negatives}"
    )
    return {"lines_caught": round(caught / claims, 3), "negatives_false_alerts": alerted, "by_source": by_source}


def evaluate_spoken(classifier: ClaimClassifier, path: Path) -> dict:
    """Spoken negatives (samples/spoken/*.txt) the classifier alone alerts on, at its thresholds."""
    text = path.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    alerted = [line for line in lines if classifier.detect(line)]
    highest = max((max(classifier.predict(line).values()) for line in lines), default=0.0)
    print(f"\nspoken negatives {path.parent.name}/{path.name}: {len(alerted)}/{len(lines)} alerted by the classifier")
    return {"negatives": len(lines), "false_alerts": len(alerted), "highest_probability": round(highest, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--samples", type=Path, default=REPO / "samples" / "classifier")
    parser.add_argument("--lexicons", type=Path, default=REPO / "lexicons")
    args = parser.parse_args(argv)

    classifier = ClaimClassifier.load(args.models)
    print(f"model {classifier.version}")
    latencies_ms: list[float] = []
    summary: dict[str, object] = {"benchmark": "classifier", "model_version": classifier.version}
    for name, label in (
        ("test", "test (independent, never trained or calibrated on)"),
        ("dev", "dev (calibration set: thresholds chosen here)"),
    ):
        summary[name] = evaluate(classifier, label, load_labelled(args.samples / name), latencies_ms)
    p50, p95 = (float(v) for v in np.percentile(latencies_ms, [50, 95]))
    print(f"\nlatency per utterance, one thread: p50 {p50:.2f} ms, p95 {p95:.2f} ms ({len(latencies_ms)} calls)")
    summary["latency_ms_p50"] = round(p50, 3)
    summary["latency_ms_p95"] = round(p95, 3)
    detectors = Detectors(text=TextEngine.load(args.lexicons), classifier=classifier)
    summary["test_pipeline"] = evaluate_pipeline(detectors, load_labelled(args.samples / "test"))
    for name in ("dev", "heldout"):
        path = args.samples.parent / "spoken" / f"{name}.txt"
        if path.is_file():
            summary[f"spoken_{name}"] = evaluate_spoken(classifier, path)
    print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
