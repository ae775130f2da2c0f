"""Readers for the classifier's example files in ``samples/classifier/``.

* ``train.jsonl`` (written by ``scripts/gen_classifier_data.py``): one JSON object a
  line, ``{"text": str, "labels": [category, ...], "kind": "claim"|"negated"|"neutral"}``.
* hand-written folders, read by :func:`load_labelled`: ``handwritten/`` (trained on),
  ``dev/`` (held out; thresholds and calibration) and ``test/`` (held out, written
  independently; only measured). Each has one ``<category>.txt`` per category and one
  or more ``negatives*.txt``: one utterance a line, ``#`` comment lines, optionally a
  tab and a comma-separated list of extra categories the line also claims.

Both readers raise :class:`~monitor.errors.InputError` naming the file and line of a
malformed example.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import InputError
from monitor.taxonomy import CATEGORIES

NEGATIVES_GLOB = "negatives*.txt"


@dataclass(frozen=True)
class Example:
    """One labelled utterance; ``labels`` is empty for a negative."""

    text: str
    labels: frozenset[str]
    source: str
    line: int
    kind: str = ""


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


def _file_category(path: Path) -> str | None:
    """The category a file's lines claim: ``<category>.txt`` or ``<anything>_<category>.txt``."""
    for category in CATEGORIES:
        if path.stem == category or path.stem.endswith(f"_{category}"):
            return category
    raise InputError(
        f"{path}: file name names no category (expected <category>.txt, <prefix>_<category>.txt or {NEGATIVES_GLOB})"
    )


def load_labelled(directory: Path) -> list[Example]:
    """The hand-written examples of ``directory``: its claim files, then its ``negatives*.txt``.

    A claim file is ``<category>.txt`` or ``<prefix>_<category>.txt`` (several authors
    may add files for one category); files are read in name order. Every category needs
    at least one file and the folder at least one negatives file: a folder that silently
    lacks a category would train or measure less than it claims.
    """
    negatives = sorted(directory.glob(NEGATIVES_GLOB))
    if not negatives:
        raise InputError(f"{directory}: no {NEGATIVES_GLOB} file of negative examples")
    claim_files = [path for path in sorted(directory.glob("*.txt")) if path not in negatives]
    files: list[tuple[Path, str | None]] = [(path, _file_category(path)) for path in claim_files]
    missing = [c for c in CATEGORIES if c not in {category for _, category in files}]
    if missing:
        raise InputError(f"{directory}: no claim file for categories {missing}")
    files.sort(key=lambda item: (CATEGORIES.index(item[1]), item[0].name))  # type: ignore[arg-type]
    files += [(path, None) for path in negatives]
    examples: list[Example] = []
    for path, category in files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"{path}: cannot read labelled examples: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
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
                    f"{directory.name}/{path.name}",
                    number,
                    "claim" if labels else "negative",
                )
            )
    return examples
