"""Checkpoints kept by outside parties (witnesses), and holding the log to them.

An inspector, a regulator or a second machine saves the archive's checkpoints
(``monitor archive checkpoint`` or ``GET /v1/checkpoint``, C2SP signed notes) as
they go by. ``monitor archive verify --witness FILE`` then proves, with RFC 6962
consistency proofs, that the archive's log is an append-only extension of every one
of them. Whoever holds the data directory and its key can rewrite history and re-sign
it, but cannot make the new log consistent with a checkpoint someone else kept: the
roots differ, or the log is shorter (rolled back), and verify names the checkpoint.

:class:`ConsistencyCollector` computes the proofs from the log while ``verify``
streams it (the subtrees a proof needs are known from the two sizes alone), so the
check trusts no derived file.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from monitor.archive.layout import ArchiveLayout, shared_commit_lock
from monitor.archive.merkle import CompactRange, consistency_path, verify_consistency
from monitor.archive.note import NoteError, parse_notes
from monitor.archive.recovery import read_latest_checkpoint
from monitor.archive.signing import Checkpoint
from monitor.errors import ArchiveError


@dataclass(frozen=True)
class Witnessed:
    """One checkpoint read from a witness file; ``error`` says why it cannot be used (bad signature...)."""

    number: int
    checkpoint: Checkpoint | None
    error: str | None = None

    def name(self, source: Path) -> str:
        c = self.checkpoint
        if c is None:
            return f"witnessed checkpoint #{self.number} of {source}"
        root = base64.b64encode(c.root).decode("ascii")
        return f"witnessed checkpoint #{self.number} of {source} (size {c.size}, root {root}, time {c.time})"


def load_witnessed(path: Path, public_key: Ed25519PublicKey) -> list[Witnessed]:
    """Every checkpoint in ``path`` (concatenated signed notes), each checked against ``public_key``.

    Raises ArchiveError when the file cannot be read or holds no checkpoint at all.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"cannot read the witness file {path}: {exc}") from exc
    try:
        notes = parse_notes(text, str(path))
    except NoteError as exc:
        raise ArchiveError(f"the witness file {path} is malformed: {exc}") from exc
    if not notes:
        raise ArchiveError(f"the witness file {path} holds no checkpoint")
    found: list[Witnessed] = []
    for number, note in enumerate(notes, start=1):
        try:
            checkpoint = Checkpoint.from_signed_note(note, f"{path} checkpoint #{number}")
        except NoteError as exc:
            found.append(Witnessed(number, None, f"not a checkpoint of this archive: {exc}"))
            continue
        if not checkpoint.signed_by(public_key):
            found.append(Witnessed(number, checkpoint, "not signed by the archive's key"))
        elif not checkpoint.verify(public_key):
            found.append(Witnessed(number, checkpoint, "its signature does not verify"))
        else:
            found.append(Witnessed(number, checkpoint))
    return found


class ConsistencyCollector:
    """Collects, from a stream of leaf hashes, the subtrees of consistency proofs old -> ``new_size``."""

    def __init__(self, old_sizes: list[int], new_size: int) -> None:
        self.new_size = new_size
        wanted: set[tuple[int, int]] = set()
        for old in old_sizes:
            if 0 < old <= new_size:
                consistency_path(old, new_size, lambda a, b: _record(wanted, a, b))
        self._ranges = sorted(wanted)
        self._next = 0  # the first range not yet started
        self._active: list[tuple[int, int, CompactRange]] = []
        self.hashes: dict[tuple[int, int], bytes] = {}

    def add(self, index: int, leaf: bytes) -> None:
        """Feed leaf hash number ``index`` (in order, from 0)."""
        while self._next < len(self._ranges) and self._ranges[self._next][0] == index:
            start, end = self._ranges[self._next]
            self._active.append((start, end, CompactRange()))
            self._next += 1
        if not self._active:
            return
        still: list[tuple[int, int, CompactRange]] = []
        for start, end, compact in self._active:
            compact.append(leaf)
            if compact.size == end - start:
                self.hashes[(start, end)] = compact.root()
            else:
                still.append((start, end, compact))
        self._active = still

    def proof(self, old_size: int) -> list[bytes]:
        """The consistency proof from ``old_size`` (after every leaf below ``new_size`` was fed)."""
        return consistency_path(old_size, self.new_size, lambda a, b: self.hashes[(a, b)])


def _record(wanted: set[tuple[int, int]], start: int, end: int) -> bytes:
    wanted.add((start, end))
    return b""


def check_consistency(witnessed: Checkpoint, latest: Checkpoint, proof: list[bytes]) -> str | None:
    """Why the log with head ``latest`` is not an append-only extension of ``witnessed`` (None if it is)."""
    if witnessed.size > latest.size:
        return (f"the archive's log has {latest.size} records, fewer than the {witnessed.size} this "
                "checkpoint saw: it was rolled back or truncated")
    try:
        verify_consistency(witnessed.size, latest.size, witnessed.root, latest.root, proof)
    except ValueError as exc:
        return f"the log is not an append-only extension of it (consistency proof: {exc}): history was rewritten"
    return None


def latest_checkpoint_text(data_dir: Path) -> str:
    """The archive's latest checkpoint as a C2SP signed note; reads only (runs next to the server).

    This is what ``monitor archive checkpoint`` prints and ``GET /v1/checkpoint`` serves.
    Raises ArchiveError when there is no archive or no checkpoint in the C2SP format yet.
    """
    layout = ArchiveLayout(Path(data_dir))
    if not layout.checkpoints_log.exists():
        raise ArchiveError(f"no evidence archive in {layout.root} (no {layout.checkpoints_log})")
    with shared_commit_lock(layout):
        checkpoint, _ = read_latest_checkpoint(layout)
    if checkpoint is None:
        raise ArchiveError(f"the archive {layout.root} has no signed checkpoint yet")
    if checkpoint.note is None:
        raise ArchiveError(
            f"the latest checkpoint of {layout.root} is in the pre-C2SP format; opening the archive "
            "for writing once (e.g. starting the server) re-signs it"
        )
    return checkpoint.text()
