"""Deterministic hashing featurizer shared by training and inference.

    featurizer = Featurizer(FeaturizerConfig())
    indices, values = featurizer.features("家人们这个茶能清理血管垃圾")

The text is normalized with :func:`monitor.text.normalize.normalize` (t2s, lower
case, half-width, punctuation to ``,``, fillers dropped, Chinese numbers to Arabic),
then described by:

* character n-grams (``char_min``..``char_max``) within each clause, on a copy of the
  text where every number is one ``#`` (so "平时卖890今天99" and "平时卖1200今天120"
  share their n-grams), or one ``9`` when it is made of nines only (999, 99.99: the
  shape of a purity claim), with clause boundary marks ``^``/``$``;
* jieba words and word bigrams (on the text with its real digits, so "9999" remains
  a feature of its own); words after a negation cue (不, 没有, 别, 不是说 ...) up to the
  end of their clause are also emitted as negated words, so "没有任何官方推荐" can
  weigh differently from "官方推荐" while "没有染色" (itself a claim) keeps its n-grams.

Each feature string is hashed with CRC-32 (stable across processes and platforms,
unlike ``hash()``) into ``n_features`` buckets; values are sublinear term
frequencies (``1 + ln tf``), L2-normalized. The output is a sparse vector as sorted
unique ``int64`` indices and ``float32`` values, the ONNX model's input.

A private jieba tokenizer with the stock dictionary is used, so words other parts of
the process add to jieba (lexicon terms) never change the classifier's features; its
HMM is off because jieba's HMM keeps process-global state (``jieba.del_word`` adds
force-split words for every tokenizer), which would make features depend on what
other modules did.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import threading
import zlib
from collections import Counter
from dataclasses import asdict, dataclass

import jieba
import numpy as np
import numpy.typing as npt

from monitor.text.normalize import normalize

jieba.setLogLevel(logging.WARNING)

_DIGIT_RUN = re.compile(r"\d+(?:\.\d+)?")
_CLAUSE_SPLIT = re.compile(r"[,\s]+")
_NEGATION_CUES = ("不", "没", "别", "无", "非", "未", "莫", "勿", "谁说", "谁跟你说")


@dataclass(frozen=True)
class FeaturizerConfig:
    """Featurizer parameters; stored in the model metadata and checked at load."""

    n_features: int = 1 << 17
    char_min: int = 1
    char_max: int = 4
    words: bool = True
    word_bigrams: bool = True
    negation_scope: bool = True

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)


class Featurizer:
    """Text -> sparse hashed feature vector (thread-safe; the jieba tokenizer is shared)."""

    def __init__(self, config: FeaturizerConfig | None = None) -> None:
        self.config = config or FeaturizerConfig()
        if self.config.n_features & (self.config.n_features - 1):
            raise ValueError(f"n_features must be a power of two, got {self.config.n_features}")
        self._mask = self.config.n_features - 1
        self._tokenizer = jieba.Tokenizer()
        self._lock = threading.Lock()
        with self._lock:
            self._tokenizer.initialize()

    def feature_strings(self, text: str) -> list[str]:
        """The (unhashed) feature strings of ``text``, for inspection and tests."""
        normalized = normalize(text).text
        features: list[str] = []
        shaped = _DIGIT_RUN.sub(_digit_shape, normalized)
        for clause in _CLAUSE_SPLIT.split(shaped):
            if not clause:
                continue
            marked = f"^{clause}$"
            for n in range(self.config.char_min, self.config.char_max + 1):
                # Unigrams of the boundary marks alone carry nothing.
                start_text = clause if n == 1 else marked
                for i in range(len(start_text) - n + 1):
                    features.append(f"c{start_text[i : i + n]}")
        if self.config.words:
            with self._lock:
                tokens = list(self._tokenizer.cut(normalized, HMM=False))
            words = [w for w in tokens if w.strip() and w != ","]
            features.extend(f"w{w}" for w in words)
            if self.config.negation_scope:
                features.extend(f"n{w}" for w in _negated_words(tokens))
            if self.config.word_bigrams:
                features.extend(f"b{a}|{b}" for a, b in itertools.pairwise(words))
        return features

    def features(self, text: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Sorted unique bucket indices (int64) and L2-normalized weights (float32) of ``text``.

        An empty text gives empty arrays.
        """
        buckets: Counter[int] = Counter(
            zlib.crc32(feature.encode("utf-8")) & self._mask for feature in self.feature_strings(text)
        )
        if not buckets:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        indices = np.fromiter(sorted(buckets), dtype=np.int64, count=len(buckets))
        weights = np.array([1.0 + math.log(buckets[int(i)]) for i in indices], dtype=np.float64)
        weights /= np.linalg.norm(weights)
        return indices, weights.astype(np.float32)


def _negated_words(tokens: list[str]) -> list[str]:
    """Words that follow a negation cue within the same clause (the cue itself excluded)."""
    negated: list[str] = []
    in_scope = False
    for token in tokens:
        if token == "," or not token.strip():
            in_scope = False
        elif token.startswith(_NEGATION_CUES):
            in_scope = True
        elif in_scope:
            negated.append(token)
    return negated


def _digit_shape(match: re.Match[str]) -> str:
    return "9" if set(match.group(0)) <= {"9", "."} else "#"
