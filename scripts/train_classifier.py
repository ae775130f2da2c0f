"""Train the claim classifier and export it to ONNX (deterministic: same inputs, same bytes).

    .venv/bin/python scripts/gen_classifier_data.py        # (re)writes samples/classifier/train.jsonl
    .venv/bin/python scripts/train_classifier.py           # writes models/claim_classifier.{onnx,json}
    .venv/bin/python scripts/train_classifier.py --out /tmp/m   # elsewhere (tests use this)

Method (see docs/CLASSIFIER.md): one binary logistic regression per TAXONOMY.md
category (one-vs-rest, liblinear, fixed seed) over the hashed character n-gram and
jieba word features of :mod:`monitor.classifier.features`; Platt scaling per category
fitted on the held-out hand-written dev set; per-category thresholds chosen on the
calibrated dev scores for precision (above every dev item that lacks the category).
The ONNX graph holds the weights, the Platt parameters and the sigmoid; its input
is the sparse feature vector (``indices`` int64, ``values`` float32).

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
from sklearn.linear_model import LogisticRegression  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.classifier.calibration import MIN_PRECISION, choose_threshold, fit_platt, sigmoid  # noqa: E402
from monitor.classifier.data import DevExample, load_dev, load_train  # noqa: E402
from monitor.classifier.features import Featurizer, FeaturizerConfig  # noqa: E402
from monitor.taxonomy import CATEGORIES  # noqa: E402
from monitor.text.normalize import normalize  # noqa: E402

MAX_ITER = 3000
SEED = 1123
C_REGULARIZATION = 50.0
NEGATIVE_WEIGHT = 1.0
POSITIVE_WEIGHT = 3.0
OPSET = 17
IR_VERSION = 8
MODEL_NAME = "claim_classifier"
REFERENCE_EVERY = 15


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


def check_disjoint(train_texts: list[str], dev: list[DevExample]) -> None:
    """Refuse to train when a dev utterance equals a training one after normalization."""
    seen = {normalize(t).text for t in train_texts}
    leaks = [d for d in dev if normalize(d.text).text in seen]
    if leaks:
        listed = "; ".join(f"{d.source}:{d.line}: {d.text}" for d in leaks[:5])
        raise SystemExit(f"{len(leaks)} dev utterances also appear in the training set: {listed}")


def build_onnx(weights: np.ndarray, bias: np.ndarray, platt_a: np.ndarray, platt_b: np.ndarray) -> bytes:
    """The scoring graph: gather rows of W by index, weight, sum, add bias, Platt, sigmoid."""
    n_classes = weights.shape[1]
    initializers = [
        numpy_helper.from_array(weights.astype(np.float32), "W"),
        numpy_helper.from_array(bias.astype(np.float32), "bias"),
        numpy_helper.from_array(platt_a.astype(np.float32), "platt_a"),
        numpy_helper.from_array(platt_b.astype(np.float32), "platt_b"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
    ]
    nodes = [
        helper.make_node("Gather", ["W", "indices"], ["rows"], axis=0),
        helper.make_node("Unsqueeze", ["values", "axis1"], ["values_col"]),
        helper.make_node("Mul", ["rows", "values_col"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axis0"], ["dot"], keepdims=0),
        helper.make_node("Add", ["dot", "bias"], ["logits"]),
        helper.make_node("Mul", ["logits", "platt_a"], ["scaled"]),
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
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, [n_classes]),
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
    """sha256 over the training file and the dev files (names and bytes, sorted)."""
    digest = hashlib.sha256()
    paths = [samples_dir / "train.jsonl", *sorted((samples_dir / "dev").glob("*.txt"))]
    for path in paths:
        digest.update(path.relative_to(samples_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def train(samples_dir: Path, out_dir: Path) -> dict[str, object]:
    """Train, calibrate, export; write ``claim_classifier.{onnx,json}`` into ``out_dir``.

    BLAS runs on one thread throughout: a threaded dot product sums in a different
    order, which changes the last bits of the weights (and the file's bytes).
    """
    with threadpool_limits(limits=1):
        return _train(samples_dir, out_dir)


def _train(samples_dir: Path, out_dir: Path) -> dict[str, object]:
    train_set = load_train(samples_dir / "train.jsonl")
    dev = load_dev(samples_dir / "dev")
    check_disjoint([t.text for t in train_set], dev)

    config = FeaturizerConfig()
    featurizer = Featurizer(config)
    x_train = _matrix(featurizer, [t.text for t in train_set])
    y_train = _label_matrix([t.labels for t in train_set])
    x_dev = _matrix(featurizer, [d.text for d in dev])
    y_dev = _label_matrix([d.labels for d in dev])

    n_classes = len(CATEGORIES)
    weights = np.zeros((config.n_features, n_classes), dtype=np.float64)
    bias = np.zeros(n_classes, dtype=np.float64)
    platt_a = np.zeros(n_classes)
    platt_b = np.zeros(n_classes)
    thresholds: dict[str, float] = {}
    reference_texts = [d.text for d in dev[::REFERENCE_EVERY]]
    x_reference = _matrix(featurizer, reference_texts)
    reference = np.zeros((len(reference_texts), n_classes))
    for k, category in enumerate(CATEGORIES):
        target = y_train[:, k]
        sample_weight = np.where(target, POSITIVE_WEIGHT, NEGATIVE_WEIGHT)
        # liblinear visits coordinates in a random order: fixed seed.
        model = LogisticRegression(
            C=C_REGULARIZATION, solver="liblinear", max_iter=MAX_ITER, tol=1e-6, random_state=SEED
        )
        model.fit(x_train, target, sample_weight=sample_weight)
        # Round-trip through float32 so the reference scores are those of the exported weights.
        weights[:, k] = model.coef_[0].astype(np.float32)
        bias[k] = np.float32(model.intercept_[0])
        dev_logits = np.asarray(x_dev @ weights[:, k]).ravel() + bias[k]
        platt_a[k], platt_b[k] = fit_platt(dev_logits, y_dev[:, k])
        dev_probabilities = sigmoid(platt_a[k] * dev_logits + platt_b[k])
        # Reference scores of the training-time (float64 scikit-learn) model, which the
        # exported float32 ONNX graph must reproduce (tests/classifier).
        reference[:, k] = sigmoid(platt_a[k] * model.decision_function(x_reference) + platt_b[k])
        thresholds[category] = choose_threshold(dev_probabilities, y_dev[:, k], ~y_dev.any(axis=1))

    onnx_bytes = build_onnx(weights, bias, platt_a, platt_b)
    onnx_sha = _sha256(onnx_bytes)
    metadata: dict[str, object] = {
        "format": 1,
        "categories": list(CATEGORIES),
        "thresholds": thresholds,
        "calibration": {
            "method": "platt on hand-written dev set",
            "min_precision": MIN_PRECISION,
            "a": [round(float(v), 8) for v in platt_a],
            "b": [round(float(v), 8) for v in platt_b],
        },
        "featurizer": config.to_dict(),
        "training": {
            "C": C_REGULARIZATION,
            "positive_weight": POSITIVE_WEIGHT,
            "solver": "liblinear",
            "seed": SEED,
            "train_examples": len(train_set),
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
    for category, threshold in metadata["thresholds"].items():  # type: ignore[union-attr]
        print(f"  {category:24s} threshold {threshold:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
