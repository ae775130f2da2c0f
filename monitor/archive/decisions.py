"""Moderators' decisions as labeled training data (``monitor archive decisions export``).

Each alert whose decision in force is ``confirm`` or ``dismiss`` becomes one JSON line:
the alert as it was sent (utterance, matched phrase, rule, source, confidence, versions)
plus the label, so the lexicons and the claim classifier can learn from moderators::

    {"label": "violation" | "false_alert", "decision": "confirm" | "dismiss", "reason": ...,
     "decided_by": ..., "decided_at": ..., "evidence_id": ..., "alert": {...alert fields...}}

Alerts sent to inspection are left out (their outcome is not known yet). Reading only
the index (read-only) and the stored alert parts, it runs next to a live server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from monitor.archive.index import EvidenceIndex
from monitor.archive.layout import ArchiveLayout
from monitor.errors import ArchiveError, ArchiveIntegrityError

LABELS = {"confirm": "violation", "dismiss": "false_alert"}
"""Decision in force -> training label."""


def labeled_decisions(index: EvidenceIndex, blob_dir: Path) -> Iterator[dict[str, Any]]:
    """One labeled example per confirmed or dismissed alert, in decision order.

    Raises ArchiveIntegrityError when a stored alert no longer matches its hash.
    Records whose content was purged are skipped.
    """
    for decision in index.latest_decisions(tuple(LABELS)):
        evidence_id = decision["evidence_id"]
        record = index.get(evidence_id)
        if record is None or record.purged_at is not None:
            continue
        sha = index.parts(evidence_id)["alert"]["sha256"]
        path = blob_dir / sha[:2] / sha
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ArchiveIntegrityError(f"evidence {evidence_id}: stored alert unreadable: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != sha:
            raise ArchiveIntegrityError(f"evidence {evidence_id}: stored alert was altered ({path})")
        alert = json.loads(data)
        alert["evidence_id"] = evidence_id
        yield {
            "label": LABELS[decision["decision"]],
            "decision": decision["decision"],
            "reason": decision.get("reason"),
            "decided_by": decision["by"],
            "decided_at": decision["at"],
            "evidence_id": evidence_id,
            "alert": alert,
        }


def open_read_only_index(data_dir: Path) -> EvidenceIndex:
    """The archive's index opened read-only; ArchiveError when there is none."""
    layout = ArchiveLayout(Path(data_dir))
    if not layout.index.exists():
        raise ArchiveError(f"no archive index at {layout.index}")
    return EvidenceIndex(layout.index, read_only=True)


def export_decisions(data_dir: Path, out: Path) -> dict[str, int]:
    """Write the labeled JSONL of the archive in ``data_dir`` to ``out``; counts by label."""
    layout = ArchiveLayout(Path(data_dir))
    index = open_read_only_index(data_dir)
    counts = dict.fromkeys(LABELS.values(), 0)
    try:
        lines = []
        for example in labeled_decisions(index, layout.blob_dir):
            counts[example["label"]] += 1
            lines.append(json.dumps(example, ensure_ascii=False) + "\n")
    finally:
        index.close()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(lines), encoding="utf-8")
    except OSError as exc:
        raise ArchiveError(f"cannot write {out}: {exc}") from exc
    return counts
