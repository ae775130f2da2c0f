"""Readers for the classifier's example files in ``samples/classifier/``.

* ``train.jsonl`` (written by ``scripts/gen_classifier_data.py``): one JSON object a
  line, ``{"text": str, "labels": [category, ...], "kind": "claim"|"negated"|"neutral"}``.
* ``dev/<category>.txt`` and ``dev/negatives.txt`` (hand-written, held out): one
  utterance a line, ``#`` comment lines, optionally a tab and a comma-separated list
  of extra categories the line also claims.

Both readers raise :class:`~monitor.errors.InputError` naming the file and line of a
malformed example.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import InputError
from monitor.taxonomy import CATEGORIES

NEGATIVES_FILE = "negatives.txt"


@dataclass(frozen=True)
class Example:
    """One labelled utterance; ``labels`` is empty for a negative."""

    text: str
    labels: frozenset[str]
    source: str
    line: int
    kind: str = ""


DevExample = Example


def _check_labels(labels: list[str], source: str, line: int) -> frozenset[str]:
    unknown = [label for label in labels if label not in CATEGORIES]
    if unknown:
        raise InputError(f"{source}:{line}: unknown categories {unknown}")
    return frozenset(labels)


def load_train(path: Path) -> list[Example]:
    """The template training examples of ``path`` (JSON lines), in file order."""
    examples: list[Example] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read training examples: {exc.strerror}") from exc
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            text, labels, kind = record["text"], record["labels"], record.get("kind", "")
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:{number}: not a training example ({exc})") from exc
        examples.append(Example(text, _check_labels(labels, str(path), number), path.name, number, kind))
    return examples


def load_dev(directory: Path) -> list[Example]:
    """The hand-written dev examples: every ``<category>.txt`` then ``negatives.txt``."""
    examples: list[Example] = []
    files: list[tuple[Path, str | None]] = [(directory / f"{c}.txt", c) for c in CATEGORIES]
    files.append((directory / NEGATIVES_FILE, None))
    for path, category in files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"{path}: cannot read dev examples: {exc.strerror}") from exc
        for number, raw in enumerate(lines, start=1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            text, _, extra = raw.partition("\t")
            labels = [category] if category else []
            labels += [label.strip() for label in extra.split(",") if label.strip()]
            examples.append(
                Example(
                    text.strip(),
                    _check_labels(labels, str(path), number),
                    path.name,
                    number,
                    "claim" if labels else "negative",
                )
            )
    return examples
