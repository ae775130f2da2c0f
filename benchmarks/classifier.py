"""Claim classifier figures on the hand-written, held-out dev set.

    .venv/bin/python benchmarks/classifier.py [--models models] [--samples samples/classifier]

Prints, per category, precision and recall of ``ClaimClassifier.detect`` on the dev
set with the shipped thresholds; false alerts on the dev negatives (utterances with
no claim); latency per utterance on one core (featurize + ONNX, p50/p95 over every
dev utterance, several passes); and, because the shipped thresholds and calibration
were fitted on this same dev set, a two-fold cross-fitted estimate: Platt scaling and
thresholds are fitted on one half of the dev set (even lines) and measured on the
other (odd lines), then the other way round. The last line is one JSON summary.
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
from monitor.classifier.calibration import choose_threshold, fit_platt, sigmoid  # noqa: E402
from monitor.classifier.data import load_dev  # noqa: E402

LATENCY_PASSES = 5


def _precision_recall(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float, int]:
    tp = int((flagged & truth).sum())
    precision = tp / int(flagged.sum()) if flagged.any() else 1.0
    recall = tp / int(truth.sum()) if truth.any() else 1.0
    return precision, recall, tp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--samples", type=Path, default=REPO / "samples" / "classifier")
    args = parser.parse_args(argv)

    classifier = ClaimClassifier.load(args.models)
    dev = load_dev(args.samples / "dev")
    categories = classifier.categories
    truth = np.array([[c in d.labels for c in categories] for d in dev], dtype=bool)
    negative = ~truth.any(axis=1)

    latencies_ms: list[float] = []
    probabilities = np.zeros(truth.shape)
    logits = np.zeros(truth.shape)
    for pass_number in range(LATENCY_PASSES):
        for i, example in enumerate(dev):
            start = time.perf_counter()
            scores = classifier.scores(example.text)
            latencies_ms.append((time.perf_counter() - start) * 1000.0)
            if pass_number == 0:
                probabilities[i], logits[i] = scores.probabilities, scores.logits
    thresholds = np.array([classifier.thresholds[c] for c in categories])
    flagged = probabilities >= thresholds

    print(f"model {classifier.version}; dev: {int((~negative).sum())} claims, {int(negative.sum())} negatives")
    print(f"{'category':24s} {'thr':>5s} {'n':>3s} {'prec':>5s} {'recall':>6s} {'negFA':>5s}   "
          f"{'cf-prec':>7s} {'cf-rec':>6s} {'cf-negFA':>8s}")
    per_category: dict[str, dict[str, float]] = {}
    halves = np.arange(len(dev)) % 2
    cf_flagged = np.zeros_like(flagged)
    for k, category in enumerate(categories):
        precision, recall, _ = _precision_recall(flagged[:, k], truth[:, k])
        negative_alerts = int((flagged[:, k] & negative).sum())
        for fit_half in (0, 1):
            fit, held = halves == fit_half, halves != fit_half
            a, b = fit_platt(logits[fit, k], truth[fit, k])
            threshold = choose_threshold(sigmoid(a * logits[fit, k] + b), truth[fit, k], negative[fit])
            cf_flagged[held, k] = sigmoid(a * logits[held, k] + b) >= threshold
        cf_precision, cf_recall, _ = _precision_recall(cf_flagged[:, k], truth[:, k])
        cf_negative_alerts = int((cf_flagged[:, k] & negative).sum())
        per_category[category] = {
            "threshold": float(thresholds[k]),
            "precision": round(precision, 3),
            "recall": round(recall, 3),
            "negative_false_alerts": negative_alerts,
            "crossfit_precision": round(cf_precision, 3),
            "crossfit_recall": round(cf_recall, 3),
            "crossfit_negative_false_alerts": cf_negative_alerts,
        }
        print(f"{category:24s} {thresholds[k]:5.3f} {int(truth[:, k].sum()):3d} {precision:5.2f} {recall:6.2f} "
              f"{negative_alerts:5d}   {cf_precision:7.2f} {cf_recall:6.2f} {cf_negative_alerts:8d}")

    micro_precision, micro_recall, _ = _precision_recall(flagged, truth)
    cf_micro_precision, cf_micro_recall, _ = _precision_recall(cf_flagged, truth)
    negatives_alerted = int((flagged.any(axis=1) & negative).sum())
    cf_negatives_alerted = int((cf_flagged.any(axis=1) & negative).sum())
    p50, p95 = (float(v) for v in np.percentile(latencies_ms, [50, 95]))
    print(f"all categories (micro): precision {micro_precision:.3f} recall {micro_recall:.3f}; "
          f"dev negatives alerted: {negatives_alerted}/{int(negative.sum())}")
    print(f"cross-fitted (honest):  precision {cf_micro_precision:.3f} recall {cf_micro_recall:.3f}; "
          f"dev negatives alerted: {cf_negatives_alerted}/{int(negative.sum())}")
    print(f"latency per utterance, one thread: p50 {p50:.2f} ms, p95 {p95:.2f} ms "
          f"({len(latencies_ms)} calls)")
    summary = {
        "benchmark": "classifier",
        "model_version": classifier.version,
        "dev_claims": int((~negative).sum()),
        "dev_negatives": int(negative.sum()),
        "precision": round(micro_precision, 3),
        "recall": round(micro_recall, 3),
        "negatives_false_alerts": negatives_alerted,
        "crossfit_precision": round(cf_micro_precision, 3),
        "crossfit_recall": round(cf_micro_recall, 3),
        "crossfit_negatives_false_alerts": cf_negatives_alerted,
        "latency_ms_p50": round(p50, 3),
        "latency_ms_p95": round(p95, 3),
        "per_category": per_category,
    }
    print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
