"""Opening an archive after a crash: the record log is the only truth.

:func:`recover_log` reads the end of ``log/checkpoints.log`` (a torn final line is
an unacknowledged commit and is dropped), streams ``log/records.log`` once (cutting
off anything past the latest checkpoint, checking the RFC 6962 root against it, and
bringing the stored tree hashes of :mod:`monitor.archive.tree` up to date where they
differ or are missing), and, after an unclean stop, collects which stored files the
log still references.

:func:`open_index` opens the SQLite index and rebuilds it from the log when it fails
``PRAGMA quick_check``, raises any SQLite error or is ahead of the log; then it is
replayed from the log up to the committed size. Neither a damaged index nor a damaged
tree file can stop the archive from opening, and nothing is ever deleted because the
index lacks it: :func:`remove_orphans` decides from the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.archive.index import EvidenceIndex, leaf_json
from monitor.archive.layout import ArchiveLayout
from monitor.archive.leaves import EVIDENCE_KINDS
from monitor.archive.log import AppendLog, iter_records, read_last_lines
from monitor.archive.merkle import CompactRange, leaf_hash
from monitor.archive.records import evidence_id_of
from monitor.archive.signing import Checkpoint
from monitor.archive.store import LocalBlobStore, fsync_dir
from monitor.archive.tree import TreeStore
from monitor.errors import ArchiveError, ArchiveIntegrityError

log = logging.getLogger(__name__)

TREE_BATCH = 4096
INDEX_BATCH = 2000


def blob_key(sha256: str) -> int:
    """A compact set key for a blob name (its first 64 bits); a collision only ever keeps a file."""
    return int(sha256[:16], 16)


@dataclass
class RecoveredLog:
    """What the log says after recovery."""

    checkpoint: Checkpoint | None
    log: AppendLog
    checkpoints: AppendLog
    tree: CompactRange
    last_leaf: bytes | None
    live_blobs: set[int] | None = None  # blob keys still referenced; only after an unclean stop
    notes: list[str] = field(default_factory=list)


def read_latest_checkpoint(layout: ArchiveLayout) -> tuple[Checkpoint | None, int]:
    """The latest well-formed checkpoint and the byte length of the checkpoint log up to it."""
    lines, end = read_last_lines(layout.checkpoints_log)
    while lines:
        try:
            return Checkpoint.from_line(lines[-1], f"{layout.checkpoints_log} (last line)"), end
        except ArchiveIntegrityError:
            # A torn final line is an unacknowledged commit: drop it.
            log.warning("dropping a malformed final checkpoint line of %s", layout.checkpoints_log)
            end -= len(lines.pop()) + 1
    return None, end


def recover_log(layout: ArchiveLayout, tree: TreeStore, *, collect_blobs: bool) -> RecoveredLog:
    """Cut unacknowledged tails, check the log against its latest checkpoint, sync the tree hashes.

    Raises ArchiveIntegrityError when the log is shorter than its checkpoint or its root
    differs (records altered or removed): ``monitor archive verify`` says which.
    """
    checkpoint, checkpoint_end = read_latest_checkpoint(layout)
    checkpoints = AppendLog(layout.checkpoints_log)
    if checkpoints.length != checkpoint_end:
        checkpoints.truncate_to(checkpoint_end)
    committed = checkpoint.size if checkpoint else 0
    if tree.size > committed:
        tree.truncate(committed)

    compact = CompactRange()
    stored = tree.iter_leaf_entries()
    tree_ok_below = tree.size
    pending: list[tuple[bytes, int]] = []
    live: set[int] | None = set() if collect_blobs else None
    committed_bytes = 0
    last_leaf: bytes | None = None
    for end, line in iter_records(layout.records_log):
        if compact.size == committed:
            break
        leaf = leaf_hash(line)
        seq = compact.size
        compact.append(leaf)
        committed_bytes, last_leaf = end, line
        if live is not None:
            _track_blobs(line, live)
        if seq < tree_ok_below:
            if next(stored) == (leaf, end):
                continue
            log.warning("stored tree hashes differ from the log at record #%d; rewriting them", seq)
            tree.truncate(seq)
            tree_ok_below = seq
        pending.append((leaf, end))
        if len(pending) >= TREE_BATCH:
            tree.append(pending)
            pending = []
    tree.append(pending)
    if compact.size < committed:
        raise ArchiveIntegrityError(
            f"{layout.records_log} holds {compact.size} records but the latest checkpoint covers "
            f"{committed}: the log was truncated; run 'monitor archive verify'"
        )
    records = AppendLog(layout.records_log)
    if records.length != committed_bytes:
        log.warning("cutting %d unacknowledged bytes past the last checkpoint off %s",
                    records.length - committed_bytes, layout.records_log)
        records.truncate_to(committed_bytes)
    if checkpoint is not None and compact.root() != checkpoint.root:
        raise ArchiveIntegrityError(
            f"{layout.records_log} does not match the latest signed checkpoint (size {checkpoint.size}); "
            "records were altered; run 'monitor archive verify'"
        )
    if checkpoint is not None and tree.root(committed) != checkpoint.root:
        log.warning("stored tree hashes of %s do not lead to the signed root; rebuilding them", layout.root)
        rebuild_tree(layout, tree, committed)
    return RecoveredLog(checkpoint, records, checkpoints, compact, last_leaf, live)


def _track_blobs(line: bytes, live: set[int]) -> None:
    """Replay one leaf's effect on which blobs are referenced (purges remove what they deleted)."""
    if b'"parts"' not in line and b'"purge"' not in line:
        return
    leaf = json.loads(line)
    if leaf.get("kind") == "purge":
        for sha in leaf.get("blobs", []):
            live.discard(blob_key(sha))
    else:  # alert and session records, and any later kind that stores parts
        for info in leaf.get("parts", {}).values():
            live.add(blob_key(info["sha256"]))


def rebuild_tree(layout: ArchiveLayout, tree: TreeStore, size: int) -> None:
    """Recompute every stored tree hash of the first ``size`` records from the log."""
    tree.truncate(0)
    batch: list[tuple[bytes, int]] = []
    for seq, (end, line) in enumerate(iter_records(layout.records_log)):
        if seq >= size:
            break
        batch.append((leaf_hash(line), end))
        if len(batch) >= TREE_BATCH:
            tree.append(batch)
            batch = []
    tree.append(batch)


def iter_leaves(layout: ArchiveLayout, tree: TreeStore, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(seq, leaf bytes) of records ``start`` to ``end - 1``, read from the log (seeking by the tree offsets)."""
    if start >= end:
        return
    offset: int | None = None
    if start < tree.size:
        try:
            offset = tree.record_span(start)[0]
        except ArchiveError as exc:
            log.warning("tree offsets unreadable (%s); reading %s from its start", exc, layout.records_log)
    seq = start if offset is not None else 0
    for _, line in iter_records(layout.records_log, start=offset or 0):
        if seq >= end:
            return
        if seq >= start:
            yield seq, line
        seq += 1
    if seq < end:
        raise ArchiveError(f"{layout.records_log} ends at record #{seq}, before #{end}")


LeafReader = Callable[[int, int], Iterator[tuple[int, bytes]]]
"""``leaves(start, end)``: (seq, leaf bytes) of records ``start`` to ``end - 1``."""


def open_index(layout: ArchiveLayout, size: int, leaves: LeafReader) -> EvidenceIndex:
    """The index, checked (``quick_check``), rebuilt when damaged or ahead, and replayed up to ``size``."""
    index: EvidenceIndex | None = None
    try:
        index = EvidenceIndex(layout.index)
        index.check()
        applied = index.applied()
        if applied > size:
            raise ArchiveError(f"the index is ahead of the log ({applied} > {size} leaves)")
        replay_index(index, applied, size, leaves)
        return index
    except ArchiveError as exc:
        log.warning("rebuilding the archive index %s from the log: %s", layout.index, exc)
        if index is not None:
            index.close()
    remove_index_files(layout)
    index = EvidenceIndex(layout.index)
    replay_index(index, 0, size, leaves)
    return index


def remove_index_files(layout: ArchiveLayout) -> None:
    """Delete the index database and its WAL files (it is rebuilt from the log)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{layout.index}{suffix}").unlink(missing_ok=True)


def replay_index(index: EvidenceIndex, start: int, end: int, leaves: LeafReader) -> None:
    """Apply log leaves ``start`` to ``end - 1`` to the index in durable batches."""
    batch: list[tuple[dict[str, Any], str | None]] = []
    first = start
    for seq, line in leaves(start, end):
        leaf = leaf_json(line, f"record #{seq}")
        batch.append((leaf, evidence_id_of(line) if leaf["kind"] in EVIDENCE_KINDS else None))
        if len(batch) >= INDEX_BATCH:
            index.apply_many(first, batch)
            first, batch = seq + 1, []
    if batch:
        index.apply_many(first, batch)


def remove_orphans(blobs: LocalBlobStore, live: set[int], blob_dir: Path) -> int:
    """Delete stored files the log does not reference (an unacknowledged commit's, an
    interrupted purge's); returns how many were removed."""
    removed = 0
    for name in blobs.iter_names():
        sha = name.rsplit("/", 1)[-1]
        try:
            key = blob_key(sha)
        except ValueError:
            continue  # not a blob name: verify reports it, recovery does not guess
        if key in live:
            continue
        path = blob_dir / name
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)
        removed += 1
    return removed
