"""The log writer: the one place that appends to ``log/``, ``tree/`` and ``blobs/``.

One commit is: stored parts written (temp, fsync, rename, fsync dir) -> leaves
appended to ``log/records.log`` and fsynced -> their tree hashes stored (derived,
no fsync) -> a checkpoint over the new tree signed and appended to
``log/checkpoints.log`` and fsynced. The commit is acknowledged only after the
checkpoint is durable; on any failure the log files are cut back to their previous
length, the tree hashes cut back, the new blobs removed, and
:class:`~monitor.errors.ArchiveWriteError` names the path and the OS error.

Times never go back: :meth:`LogWriter.now` (for leaves) holds at the last time it
returned when the clock steps back, and a checkpoint's signed time is at least the
previous checkpoint's (the clock's shortfall is recorded as ``observed_skew_s``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from monitor.archive.layout import ArchiveLayout
from monitor.archive.leaves import leaf_time
from monitor.archive.merkle import leaf_hash
from monitor.archive.proofs import stored_inclusion
from monitor.archive.records import iso_utc, parse_iso
from monitor.archive.recovery import RecoveredLog, iter_leaves, rebuild_tree
from monitor.archive.signing import Checkpoint, sign_checkpoint
from monitor.archive.store import LocalBlobStore
from monitor.archive.tree import TreeStore
from monitor.errors import ArchiveError, ArchiveIntegrityError, ArchiveWriteError

log = logging.getLogger(__name__)

CLOCK_STEP_WARN_S = 1.0
"""A clock found this far behind the last recorded time is logged as stepped back (seconds)."""


class LogWriter:
    """Durable appends under signed checkpoints, for one open archive (its writer lock held)."""

    def __init__(
        self,
        layout: ArchiveLayout,
        key: Ed25519PrivateKey,
        blobs: LocalBlobStore,
        tree_store: TreeStore,
        recovered: RecoveredLog,
        clock: Callable[[], datetime],
        commit_lock: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self.layout = layout
        self.key = key
        self.blobs = blobs
        self.tree_store = tree_store
        self._log = recovered.log
        self._checkpoints = recovered.checkpoints
        self._tree = recovered.tree
        self.last_checkpoint: Checkpoint | None = recovered.checkpoint
        self._clock = clock
        self._commit_lock = commit_lock
        self._last_time = leaf_time(recovered.last_leaf) if recovered.last_leaf is not None else None
        self._tree_ok = True  # the stored tree hashes follow the log
        self.pending_deletes: set[str] = set()

    @property
    def size(self) -> int:
        """Committed leaves."""
        return self._tree.size

    # ---- time ------------------------------------------------------------------------------

    def _clock_utc(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)

    def now(self) -> datetime:
        """The clock, held at the last time recorded if it stepped back (leaf times never go back)."""
        now = self._clock_utc()
        if self._last_time is not None and now < self._last_time:
            behind = (self._last_time - now).total_seconds()
            if behind >= CLOCK_STEP_WARN_S:
                log.warning("the clock is %.3f s behind the last archive record; holding time at %s",
                            behind, iso_utc(self._last_time))
            return self._last_time
        self._last_time = now
        return now

    def _checkpoint_time(self) -> tuple[int, float]:
        """The unix time to sign (never before the previous checkpoint's) and how far the clock was behind it."""
        now = self._clock_utc()
        wanted = math.ceil(max(now, self._last_time or now).timestamp())
        previous = self.last_checkpoint
        if previous is None or not previous.time:
            return wanted, 0.0
        previous_s = parse_iso(previous.time).timestamp()
        return max(wanted, math.ceil(previous_s)), max(0.0, previous_s - now.timestamp())

    # ---- committing ------------------------------------------------------------------------

    def commit(self, leaves: list[bytes], parts: list[bytes]) -> Checkpoint:
        """Durably store ``parts`` and append ``leaves`` under a new signed checkpoint."""
        self.retry_pending_deletes()
        created: list[str] = []
        with self._commit_lock():
            try:
                for data in parts:
                    sha, new = self.blobs.put_new(data)
                    if new:
                        created.append(sha)
                previous = self._log.append(leaves)
                tree = self._tree.copy()
                hashes = []
                end = previous
                for line in leaves:
                    hashed = leaf_hash(line)
                    tree.append(hashed)
                    end += len(line) + 1
                    hashes.append((hashed, end))
                self._store_tree(hashes)
                timestamp, skew = self._checkpoint_time()
                if skew >= CLOCK_STEP_WARN_S:
                    log.warning("the clock is %.3f s behind the last checkpoint; signing at its time", skew)
                checkpoint = sign_checkpoint(self.key, tree.size, tree.root(), timestamp, observed_skew_s=skew)
                try:
                    self._checkpoints.append([checkpoint.to_line()])
                except ArchiveWriteError:
                    self._rollback_log(previous)
                    raise
            except ArchiveWriteError:
                self.discard_blobs(created)
                raise
            self._tree = tree
            self.last_checkpoint = checkpoint
        return checkpoint

    def _store_tree(self, hashes: list[tuple[bytes, int]]) -> None:
        """Store the new leaves' tree hashes before the checkpoint is signed (readers rely on it)."""
        if not self._tree_ok:
            return
        try:
            if self.tree_store.size != self._tree.size:
                self.tree_store.truncate(self._tree.size)
            self.tree_store.append(hashes)
        except (ArchiveError, ValueError) as exc:
            self._tree_ok = False
            log.error("stored tree hashes not updated (%s); proofs will rebuild them from the log", exc)

    def _rollback_log(self, previous: int) -> None:
        try:
            self._log.truncate_to(previous)
        except ArchiveWriteError:
            self._log.length = previous  # the tail is cut before the next append
        if self._tree_ok:
            try:
                self.tree_store.truncate(self._tree.size)
            except ArchiveError:
                self._tree_ok = False

    def discard_blobs(self, shas: list[str]) -> None:
        """Delete blobs (of a failed commit, or a purge); those the disk refuses are retried later."""
        for sha in shas:
            try:
                self.blobs.delete(sha)
            except ArchiveWriteError:
                self.pending_deletes.add(sha)

    def retry_pending_deletes(self) -> None:
        for sha in list(self.pending_deletes):
            try:
                self.blobs.delete(sha)
            except ArchiveWriteError:
                continue
            self.pending_deletes.discard(sha)

    # ---- reading ---------------------------------------------------------------------------

    def leaves(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """(seq, leaf bytes) of committed records ``start`` to ``end - 1``."""
        return iter_leaves(self.layout, self.tree_store, start, end)

    def read_record(self, seq: int) -> bytes:
        """The leaf bytes of record ``seq`` (one read at the offset the tree store keeps)."""
        if self._tree_ok and seq < self.tree_store.size:
            try:
                start, end = self.tree_store.record_span(seq)
                with open(self.layout.records_log, "rb") as handle:
                    handle.seek(start)
                    data = handle.read(end - start)
                if len(data) == end - start and data.endswith(b"\n"):
                    return data[:-1]
            except (ArchiveError, OSError) as exc:
                log.warning("record #%d not found through the tree offsets (%s); reading the log", seq, exc)
        for _, line in self.leaves(seq, seq + 1):
            return line
        raise ArchiveError(f"{self.layout.records_log} has no record #{seq}")

    def inclusion(self, seq: int, leaf: bytes) -> tuple[list[bytes], Checkpoint]:
        """The audit path of leaf ``seq`` to the latest checkpoint, checked against its signed root.

        Stored hashes that do not lead to the root are rebuilt from the log once; raises
        ArchiveIntegrityError if the log itself does not.
        """
        checkpoint = self.last_checkpoint
        if checkpoint is None:
            raise ArchiveError(f"the archive {self.layout.root} has no signed checkpoint yet")
        path = stored_inclusion(self.tree_store, seq, checkpoint, leaf) if self._tree_ok else None
        if path is None:
            log.warning("stored tree hashes do not prove record #%d; rebuilding them from the log", seq)
            rebuild_tree(self.layout, self.tree_store, self.size)
            self._tree_ok = True
            path = stored_inclusion(self.tree_store, seq, checkpoint, leaf)
        if path is None:
            raise ArchiveIntegrityError(
                f"{self.layout.records_log} does not match the latest signed checkpoint; run 'monitor archive verify'"
            )
        return path, checkpoint

    def close(self) -> None:
        """fsync the tree hashes (best effort) and release the files."""
        try:
            self.tree_store.sync()
        except ArchiveError as exc:
            log.warning("stored tree hashes not synced (%s); checked against the log on the next open", exc)
        self.tree_store.close()
        self._log.close()
        self._checkpoints.close()
