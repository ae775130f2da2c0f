"""Platt calibration and precision-first thresholds (pure numpy; used by training and the benchmark).

    a, b = fit_platt(logits, positive)                    # p = sigmoid(a * logit + b)
    threshold = choose_threshold(sigmoid(a * logits + b), positive, negative)

``positive`` marks the items that carry the category, ``negative`` the items that
carry no claim at all (dev negatives); items of other categories are neither.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

THRESHOLD_FLOOR = 0.5
"""No category alerts below a calibrated probability of one half."""
MIN_PRECISION = 0.95
"""Minimum precision on the calibration items, counting other categories' claims as errors."""
MAX_FALSE_RATE = 0.0015
"""Share of the calibration negatives a category's threshold may admit (0.15%: 4 of 2,706).

Zero would let the single hardest negative set every threshold; a denied claim
("它不是最好的") written into the negatives then costs a category most of its recall.
On the independent test set this rate gives 4 false alerts on 450 negatives (see
docs/CLASSIFIER.md for the trade-off measured at other rates)."""

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def sigmoid(x: FloatArray) -> FloatArray:
    """The logistic function, without overflow for large ``|x|``."""
    return np.exp(-np.logaddexp(0.0, -x))


def _platt_loss(a: float, b: float, z: FloatArray, target: FloatArray) -> float:
    f = a * z + b
    return float(np.sum(target * np.logaddexp(0.0, -f) + (1.0 - target) * np.logaddexp(0.0, f)))


def fit_platt(logits: FloatArray, positive: BoolArray, iterations: int = 100) -> tuple[float, float]:
    """Platt scaling: ``(a, b)`` of ``p = sigmoid(a * z + b)``.

    Newton's method with backtracking line search (Lin, Lin and Weng 2007) on Platt's
    (1999) smoothed targets ``(n+ + 1) / (n+ + 2)`` and ``1 / (n- + 2)``, which keep
    the optimum finite when the scores separate the classes. Sums are plain numpy
    reductions (no BLAS), so the result does not depend on the thread count.
    """
    z = np.asarray(logits, dtype=np.float64)
    n_pos = int(positive.sum())
    n_neg = len(z) - n_pos
    target = np.where(positive, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    a, b = 0.0, float(np.log((n_neg + 1.0) / (n_pos + 1.0))) * -1.0
    loss = _platt_loss(a, b, z, target)
    for _ in range(iterations):
        p = sigmoid(a * z + b)
        residual = p - target
        g_a, g_b = float(np.sum(residual * z)), float(np.sum(residual))
        weight = p * (1.0 - p)
        h_aa = float(np.sum(weight * z * z)) + 1e-12
        h_ab = float(np.sum(weight * z))
        h_bb = float(np.sum(weight)) + 1e-12
        det = h_aa * h_bb - h_ab * h_ab
        d_a = -(h_bb * g_a - h_ab * g_b) / det
        d_b = -(-h_ab * g_a + h_aa * g_b) / det
        step = 1.0
        while step >= 1e-10:
            candidate = _platt_loss(a + step * d_a, b + step * d_b, z, target)
            if candidate < loss + 1e-4 * step * (g_a * d_a + g_b * d_b):
                break
            step /= 2.0
        else:
            break
        a, b, loss = a + step * d_a, b + step * d_b, candidate
        if abs(g_a) < 1e-9 and abs(g_b) < 1e-9:
            break
    return a, b


def choose_threshold(
    probabilities: FloatArray,
    positive: BoolArray,
    negative: BoolArray,
    *,
    min_precision: float = MIN_PRECISION,
    floor: float = THRESHOLD_FLOOR,
    max_false_rate: float = 0.0,
    strict_negatives: FloatArray | None = None,
) -> float:
    """The lowest threshold admitting at most ``max_false_rate`` of the negatives, precision >= ``min_precision``.

    With ``max_false_rate`` 0 no negative scores at or above the threshold; otherwise
    the ``floor(max_false_rate * negatives)`` highest-scoring negatives may.

    Items claiming another category count against precision but may score above the
    threshold (an alert with the wrong category still flags a real violation). The
    threshold sits halfway between the highest score it excludes and the lowest
    score it admits, and never below ``floor``.

    ``strict_negatives`` (probabilities of ordinary speech with no claim: podcast,
    meeting, live-room small talk) are never admitted, whatever ``max_false_rate``.
    """
    negatives = np.sort(probabilities[negative])[::-1]
    allowed = int(max_false_rate * len(negatives))
    highest_negative = float(negatives[allowed]) if allowed < len(negatives) else 0.0
    highest_strict = float(strict_negatives.max()) if strict_negatives is not None and len(strict_negatives) else 0.0
    highest_negative = max(highest_negative, highest_strict)
    candidates = sorted({float(p) for p in probabilities[positive & (probabilities > highest_negative)]})
    for candidate in candidates:
        flagged = probabilities >= candidate
        if (flagged & positive).sum() / flagged.sum() >= min_precision:
            below = probabilities[probabilities < candidate]
            threshold = (float(below.max()) + candidate) / 2.0 if len(below) else candidate
            threshold = max(threshold, (highest_strict + candidate) / 2.0)
            return round(max(threshold, floor), 6)
    return round(max(highest_negative + 1e-3, floor), 6)
