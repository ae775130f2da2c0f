"""The claim classifier: catches risk claims phrased without any lexicon word.

    clf = ClaimClassifier.load(settings.models_dir)       # once per process; ModelError if unusable
    clf.detect("这个茶能把血管里的垃圾清干净")            # [("medical_claim", 0.97)]
    clf.predict(text)                                    # {category: calibrated probability}
    clf.version                                          # "clf-<hash12>", for alerts' model_version

A linear softmax model (categories + "no claim") over hashed character n-grams and jieba words
(:mod:`monitor.classifier.features`), exported to ONNX by
``scripts/train_classifier.py`` and run with onnxruntime on one thread, so many
rooms can share the cores. Probabilities are Platt-calibrated per category on the
hand-written dev set plus out-of-fold scores of the hand-written training lines;
``thresholds`` were chosen there for precision. Input text is raw (the featurizer
normalizes it). See docs/CLASSIFIER.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.classifier.features import Featurizer, FeaturizerConfig
from monitor.errors import ModelError
from monitor.taxonomy import CATEGORIES

MODEL_NAME = "claim_classifier"
METADATA_FORMAT = 1

__all__ = ["MODEL_NAME", "ClaimClassifier", "Scores"]


@dataclass(frozen=True)
class Scores:
    """Both outputs of the graph for one utterance, in ``categories`` order."""

    probabilities: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    """Uncalibrated scores: each category's log-probability under the model's softmax."""


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(
            f"{path}: claim classifier metadata is missing (run scripts/setup.sh, "
            f"or scripts/train_classifier.py to rebuild it)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: claim classifier metadata is unreadable: {exc}") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != METADATA_FORMAT:
        raise ModelError(f"{path}: not claim classifier metadata of format {METADATA_FORMAT}")
    for key in ("version", "categories", "thresholds", "featurizer", "onnx_file", "onnx_sha256"):
        if key not in metadata:
            raise ModelError(f"{path}: claim classifier metadata lacks {key!r}")
    return metadata


class ClaimClassifier:
    """Multi-label claim classifier over the TAXONOMY.md categories (ONNX, one thread)."""

    version: str
    thresholds: dict[str, float]
    categories: tuple[str, ...]

    def __init__(self, session: Any, metadata: dict[str, Any], featurizer: Featurizer) -> None:
        self._session = session
        self._featurizer = featurizer
        self.metadata = metadata
        self.version = str(metadata["version"])
        self.categories = tuple(metadata["categories"])
        self.thresholds = {c: float(metadata["thresholds"][c]) for c in self.categories}

    @classmethod
    def load(cls, models_dir: Path) -> ClaimClassifier:
        """Load ``claim_classifier.json`` and the ``.onnx`` it names from ``models_dir``.

        Raises :class:`ModelError` naming the file when a file is missing, the model's
        sha256 differs from the metadata (corrupt or replaced), the metadata does not
        match this code (categories, featurizer), or onnxruntime cannot load the graph.
        The model is warmed up with one prediction before it is returned.
        """
        import onnxruntime as ort

        metadata_path = Path(models_dir) / f"{MODEL_NAME}.json"
        metadata = _read_metadata(metadata_path)
        onnx_path = Path(models_dir) / str(metadata["onnx_file"])
        try:
            onnx_bytes = onnx_path.read_bytes()
        except OSError as exc:
            raise ModelError(f"{onnx_path}: claim classifier model cannot be read: {exc.strerror}") from exc
        actual = hashlib.sha256(onnx_bytes).hexdigest()
        if actual != metadata["onnx_sha256"]:
            raise ModelError(
                f"{onnx_path}: sha256 {actual[:16]}... does not match {metadata_path.name} "
                f"({str(metadata['onnx_sha256'])[:16]}...): the model file is corrupt or was replaced"
            )
        unknown = [c for c in metadata["categories"] if c not in CATEGORIES]
        missing = [c for c in metadata["categories"] if c not in metadata["thresholds"]]
        if unknown or missing:
            raise ModelError(
                f"{metadata_path}: categories unknown to the taxonomy {unknown} or without threshold {missing}"
            )
        try:
            config = FeaturizerConfig(**metadata["featurizer"])
            featurizer = Featurizer(config)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{metadata_path}: featurizer parameters not usable: {exc}") from exc

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{onnx_path}: onnxruntime cannot load the claim classifier: {exc}") from exc
        inputs = {i.name: i.shape for i in session.get_inputs()}
        outputs = {o.name: o.shape for o in session.get_outputs()}
        if set(inputs) != {"indices", "values"} or "probabilities" not in outputs:
            raise ModelError(f"{onnx_path}: unexpected graph signature inputs={inputs} outputs={outputs}")
        classifier = cls(session, metadata, featurizer)
        classifier.predict("欢迎来到直播间")  # warm-up: first run allocates
        return classifier

    def scores(self, text: str) -> Scores:
        """Calibrated probabilities and raw scores of ``text`` (one utterance, raw text)."""
        indices, values = self._featurizer.features(text)
        if len(indices) == 0:
            # ReduceSum over zero rows is zeros: the bias alone decides, as in training.
            indices, values = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.float32)
        probabilities, scores = self._session.run(["probabilities", "scores"], {"indices": indices, "values": values})
        return Scores(probabilities=probabilities, scores=scores)

    def predict(self, text: str) -> dict[str, float]:
        """Calibrated probability (0..1) per category id for one utterance."""
        probabilities = self.scores(text).probabilities
        return {c: float(p) for c, p in zip(self.categories, probabilities, strict=True)}

    def detect(self, text: str) -> list[tuple[str, float]]:
        """``(category, probability)`` for every category at or above its threshold, best first."""
        found = [(c, p) for c, p in self.predict(text).items() if p >= self.thresholds[c]]
        return sorted(found, key=lambda item: (-item[1], item[0]))
