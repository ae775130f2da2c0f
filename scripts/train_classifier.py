"""Train the claim classifier and export it to ONNX (deterministic: same inputs, same bytes).

    .venv/bin/python scripts/gen_classifier_data.py        # (re)writes samples/classifier/train.jsonl
    .venv/bin/python scripts/train_classifier.py           # writes models/claim_classifier.{onnx,json}
    .venv/bin/python scripts/train_classifier.py --out /tmp/m   # elsewhere (tests use this)

Method (see docs/CLASSIFIER.md): one multinomial (softmax) logistic regression over
the TAXONOMY.md categories plus a "no claim" class (L-BFGS, deterministic), over the
hashed character n-gram and jieba word features of :mod:`monitor.classifier.features`;
a line claiming two categories is one training row per category. A category's score
is its log-probability under the softmax, so categories compete with "no claim"
(which ranks paraphrases better than one-vs-rest models). Trained on the template
sentences of ``train.jsonl`` plus the hand-written ``handwritten/`` folder (weighted
up: its phrasings are the realistic ones). Platt scaling and precision-first
thresholds per category are fitted on the calibration items: the held-out
hand-written ``dev/`` set plus out-of-fold scores of the hand-written training lines
(each fold scored by a model trained without it), so thresholds sit above well over
a thousand realistic negatives. ``test/`` is never read here except to check that no
line of it is trained on or calibrated on.
The ONNX graph holds the weights, the log-softmax, the Platt parameters and the
sigmoid; its input is the sparse feature vector (``indices`` int64, ``values``
float32), its outputs ``probabilities`` (calibrated) and ``scores`` (log-probabilities).

Needs the ``dev`` extra (scikit-learn, onnx); the runtime needs only onnxruntime.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

# Single-threaded BLAS when run as a script (train() also limits it when imported):
# summation order, hence the weights' bytes, must not depend on the core count.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from scipy.special import logsumexp  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.classifier.calibration import (  # noqa: E402
    MAX_FALSE_RATE,
    MIN_PRECISION,
    choose_threshold,
    fit_platt,
    sigmoid,
)
from monitor.classifier.data import Example, load_labelled, load_train  # noqa: E402
from monitor.classifier.features import Featurizer, FeaturizerConfig  # noqa: E402
from monitor.taxonomy import CATEGORIES  # noqa: E402
from monitor.text.normalize import normalize  # noqa: E402

MAX_ITER = 3000
TOLERANCE = 1e-4
C_REGULARIZATION = 20.0
NEGATIVE_WEIGHT = 1.0
POSITIVE_WEIGHT = 3.0
OPSET = 17
IR_VERSION = 8
MODEL_NAME = "claim_classifier"
REFERENCE_EVERY = 15
HANDWRITTEN_WEIGHT = 3.0
"""Sample weight of a hand-written training line relative to a template line."""
SPOKEN_TRAINING = Path("spoken") / "train.txt"
"""Ordinary spoken Chinese with no claim, trained on like the hand-written negatives (the other
training lines are written selling talk; transcribed speech is its own register)."""
SPOKEN_NEGATIVES = Path("spoken") / "dev.txt"
"""Ordinary spoken Chinese with no claim (podcast, meeting, live-room small talk), relative to
the samples folder's parent: no threshold may admit one of them (calibration.choose_threshold)."""
OUT_OF_FOLD = 5
"""Folds over the hand-written training lines for out-of-fold calibration scores."""


def _matrix(featurizer: Featurizer, texts: list[str]) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for row, text in enumerate(texts):
        indices, values = featurizer.features(text)
        rows.append(np.full(len(indices), row, dtype=np.int64))
        cols.append(indices)
        vals.append(values.astype(np.float64))
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(texts), featurizer.config.n_features),
    )


def _label_matrix(labels: list[frozenset[str]]) -> np.ndarray:
    return np.array([[c in row for c in CATEGORIES] for row in labels], dtype=bool)


def _rows(labels: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Softmax training rows: (example index, class, sample weight); class ``len(CATEGORIES)`` is "no claim"."""
    index, target, sample_weight = [], [], []
    for i, row in enumerate(labels):
        claimed = np.flatnonzero(row)
        for k in claimed if len(claimed) else [len(CATEGORIES)]:
            index.append(i)
            target.append(k)
            sample_weight.append(weight[i] * (POSITIVE_WEIGHT if len(claimed) else NEGATIVE_WEIGHT))
    return np.array(index), np.array(target), np.array(sample_weight)


def _fit(x: sp.csr_matrix, labels: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softmax weights (n_features, classes) and biases, rounded to float32 as exported."""
    index, target, sample_weight = _rows(labels, weight)
    model = LogisticRegression(C=C_REGULARIZATION, solver="lbfgs", max_iter=MAX_ITER, tol=TOLERANCE)
    model.fit(x[index], target, sample_weight=sample_weight)
    return model.coef_.T.astype(np.float32).astype(np.float64), model.intercept_.astype(np.float32).astype(np.float64)


def _scores(x: sp.csr_matrix, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Per-category log-probabilities (float64), the "no claim" class dropped."""
    logits = np.asarray(x @ weights) + bias
    return (logits - logsumexp(logits, axis=1, keepdims=True))[:, : len(CATEGORIES)]


def load_spoken(path: Path) -> list[Example]:
    """The spoken negatives (one utterance a line, ``#`` comments), or none if the file is absent."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        Example(line, frozenset(), path.name, number, "neutral")
        for number, line in enumerate(lines, 1)
        if line.strip() and not line.startswith("#")
    ]


def check_disjoint(trained: list[Example], held_out: dict[str, list[Example]]) -> None:
    """Refuse to train when a held-out utterance equals a trained (or other held-out) one after normalization."""
    owner = {normalize(t.text).text: f"{t.source}:{t.line}" for t in trained}
    leaks: list[str] = []
    for examples in held_out.values():
        for example in examples:
            key = normalize(example.text).text
            if key in owner:
                leaks.append(f"{example.source}:{example.line} = {owner[key]}: {example.text}")
        owner.update({normalize(e.text).text: f"{e.source}:{e.line}" for e in examples})
    if leaks:
        raise SystemExit(f"{len(leaks)} held-out utterances also appear elsewhere: " + "; ".join(leaks[:5]))


def build_onnx(weights: np.ndarray, bias: np.ndarray, platt_a: np.ndarray, platt_b: np.ndarray) -> bytes:
    """The scoring graph: gather rows of W by index, weight, sum, add bias, log-softmax, Platt, sigmoid."""
    n_classes = len(platt_a)
    initializers = [
        numpy_helper.from_array(weights.astype(np.float32), "W"),
        numpy_helper.from_array(bias.astype(np.float32), "bias"),
        numpy_helper.from_array(platt_a.astype(np.float32), "platt_a"),
        numpy_helper.from_array(platt_b.astype(np.float32), "platt_b"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        numpy_helper.from_array(np.array([n_classes], dtype=np.int64), "n_categories"),
    ]
    nodes = [
        helper.make_node("Gather", ["W", "indices"], ["rows"], axis=0),
        helper.make_node("Unsqueeze", ["values", "axis1"], ["values_col"]),
        helper.make_node("Mul", ["rows", "values_col"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axis0"], ["dot"], keepdims=0),
        helper.make_node("Add", ["dot", "bias"], ["logits"]),
        helper.make_node("LogSoftmax", ["logits"], ["log_probabilities"], axis=0),
        helper.make_node("Slice", ["log_probabilities", "axis0", "n_categories"], ["scores"]),
        helper.make_node("Mul", ["scores", "platt_a"], ["scaled"]),
        helper.make_node("Add", ["scaled", "platt_b"], ["calibrated_logits"]),
        helper.make_node("Sigmoid", ["calibrated_logits"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        MODEL_NAME,
        inputs=[
            helper.make_tensor_value_info("indices", TensorProto.INT64, ["n"]),
            helper.make_tensor_value_info("values", TensorProto.FLOAT, ["n"]),
        ],
        outputs=[
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [n_classes]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [n_classes]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        producer_name="live-compliance-monitor/train_classifier",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_hash(samples_dir: Path) -> str:
    """sha256 over the training file and the hand-written and dev files (names and bytes, sorted)."""
    digest = hashlib.sha256()
    paths = [
        samples_dir / "train.jsonl",
        *sorted((samples_dir / "handwritten").glob("*.txt")),
        *sorted((samples_dir / "dev").glob("*.txt")),
    ]
    spoken = [samples_dir.parent / SPOKEN_TRAINING, samples_dir.parent / SPOKEN_NEGATIVES]
    paths.extend(path for path in spoken if path.is_file())
    for path in paths:
        name = path.relative_to(samples_dir.parent if path in spoken else samples_dir).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def train(samples_dir: Path, out_dir: Path) -> dict[str, object]:
    """Train, calibrate, export; write ``claim_classifier.{onnx,json}`` into ``out_dir``.

    BLAS runs on one thread throughout: a threaded dot product sums in a different
    order, which changes the last bits of the weights (and the file's bytes).
    """
    with threadpool_limits(limits=1):
        return _train(samples_dir, out_dir)


def _train(samples_dir: Path, out_dir: Path) -> dict[str, object]:
    templates = load_train(samples_dir / "train.jsonl")
    handwritten = load_labelled(samples_dir / "handwritten") + load_spoken(samples_dir.parent / SPOKEN_TRAINING)
    dev = load_labelled(samples_dir / "dev")
    held_out = {"dev": dev}
    if (samples_dir / "test").is_dir():
        held_out["test"] = load_labelled(samples_dir / "test")
    spoken = load_spoken(samples_dir.parent / SPOKEN_NEGATIVES)
    held_out["spoken"] = spoken
    check_disjoint(templates + handwritten, held_out)

    config = FeaturizerConfig()
    featurizer = Featurizer(config)
    train_set = templates + handwritten
    x_train = _matrix(featurizer, [t.text for t in train_set])
    y_train = _label_matrix([t.labels for t in train_set])
    is_handwritten = np.arange(len(train_set)) >= len(templates)
    x_dev = _matrix(featurizer, [d.text for d in dev])
    # Calibration items: dev, then the hand-written training lines scored out of fold.
    y_calibration = _label_matrix([e.labels for e in dev + handwritten])
    fold = np.where(is_handwritten, np.arange(len(train_set)) % OUT_OF_FOLD, -1)

    weight = np.where(is_handwritten, HANDWRITTEN_WEIGHT, 1.0)
    weights, bias = _fit(x_train, y_train, weight)
    out_of_fold = np.zeros((int(is_handwritten.sum()), len(CATEGORIES)))
    for f in range(OUT_OF_FOLD):
        keep, held = fold != f, fold == f
        fold_weights, fold_bias = _fit(x_train[keep], y_train[keep], weight[keep])
        out_of_fold[fold[is_handwritten] == f] = _scores(x_train[held], fold_weights, fold_bias)
    calibration_scores = np.vstack([_scores(x_dev, weights, bias), out_of_fold])
    spoken_scores = _scores(_matrix(featurizer, [e.text for e in spoken]), weights, bias) if spoken else None
    negative = np.logical_not(y_calibration.any(axis=1))

    n_classes = len(CATEGORIES)
    platt_a = np.zeros(n_classes)
    platt_b = np.zeros(n_classes)
    thresholds: dict[str, float] = {}
    for k, category in enumerate(CATEGORIES):
        platt_a[k], platt_b[k] = fit_platt(calibration_scores[:, k], y_calibration[:, k])
        probabilities = sigmoid(platt_a[k] * calibration_scores[:, k] + platt_b[k])
        strict = sigmoid(platt_a[k] * spoken_scores[:, k] + platt_b[k]) if spoken_scores is not None else None
        thresholds[category] = choose_threshold(
            probabilities, y_calibration[:, k], negative, max_false_rate=MAX_FALSE_RATE, strict_negatives=strict
        )
    reference_texts = [d.text for d in dev[::REFERENCE_EVERY]]
    # Reference scores of the training-time (float64) model, which the exported float32
    # ONNX graph must reproduce (tests/classifier).
    reference = sigmoid(platt_a * _scores(_matrix(featurizer, reference_texts), weights, bias) + platt_b)

    onnx_bytes = build_onnx(weights, bias, platt_a, platt_b)
    onnx_sha = _sha256(onnx_bytes)
    metadata: dict[str, object] = {
        "format": 1,
        "categories": list(CATEGORIES),
        "thresholds": thresholds,
        "calibration": {
            "method": f"platt on hand-written dev set and {OUT_OF_FOLD}-fold out-of-fold hand-written training lines",
            "min_precision": MIN_PRECISION,
            "max_false_rate": MAX_FALSE_RATE,
            "strict_negatives": f"{SPOKEN_NEGATIVES.as_posix()} ({len(spoken)} lines, none admitted)",
            "a": [round(float(v), 8) for v in platt_a],
            "b": [round(float(v), 8) for v in platt_b],
        },
        "featurizer": config.to_dict(),
        "training": {
            "C": C_REGULARIZATION,
            "positive_weight": POSITIVE_WEIGHT,
            "handwritten_weight": HANDWRITTEN_WEIGHT,
            "out_of_fold": OUT_OF_FOLD,
            "model": "multinomial logistic regression, categories + no-claim class",
            "solver": "lbfgs",
            "train_examples": len(templates),
            "handwritten_examples": len(handwritten),
            "dev_examples": len(dev),
            "data_sha256": data_hash(samples_dir),
            "versions": {
                "scikit-learn": sklearn.__version__,
                "numpy": np.__version__,
                "onnx": onnx.__version__,
            },
        },
        "reference_scores": {
            "texts": reference_texts,
            "probabilities": [[round(float(v), 9) for v in row] for row in reference],
        },
        "onnx_file": f"{MODEL_NAME}.onnx",
        "onnx_sha256": onnx_sha,
    }
    content = json.dumps(metadata, ensure_ascii=False, sort_keys=True).encode()
    metadata["version"] = "clf-" + _sha256(content)[:12]

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{MODEL_NAME}.onnx").write_bytes(onnx_bytes)
    (out_dir / f"{MODEL_NAME}.json").write_text(
        json.dumps(metadata, ensure_ascii=False, sort_keys=True, indent=2) + "\n", encoding="utf-8"
    )
    return metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=REPO / "samples" / "classifier")
    parser.add_argument("--out", type=Path, default=REPO / "models")
    args = parser.parse_args(argv)
    metadata = train(args.samples, args.out)
    print(f"wrote {args.out / (MODEL_NAME + '.onnx')} ({metadata['version']})", file=sys.stderr)
    for category, threshold in metadata["thresholds"].items():  # type: ignore[attr-defined]
        print(f"  {category:24s} threshold {threshold:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
