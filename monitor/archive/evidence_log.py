"""The archive's append-only log, open for writing: locks, recovery on open, commits, index sync.

:class:`EvidenceLog` is the one writer of a data directory. Opening it takes
``writer.lock`` (one writing process; ArchiveError naming the holder's pid otherwise)
and, under ``commit.lock`` (which readers such as ``export`` share), recovers from any
crash (:mod:`monitor.archive.recovery`): the log is cut back to its latest checkpoint,
the tree hashes and the index are checked against it, and after an unclean stop
(``DIRTY`` present) temp files and blobs the log no longer references are removed.

:meth:`EvidenceLog.append` writes typed records (:mod:`monitor.archive.leaves`)::

    with evidence_log.lock:                      # decide and write under one lock
        now = evidence_log.now()                 # never before the previous leaf's time
        line, = evidence_log.append(Decision.on(summary, decision="confirm", by="m1", at=now))

One append is one commit of :class:`~monitor.archive.writer.LogWriter` (blobs, leaves,
tree hashes, signed checkpoint, all durable before it returns), then the index is
replayed from wherever it stopped (rebuilt from the log when that fails), so a failed
index write is made good by the next commit. What to write and when (retention, holds,
purges) and the reads live elsewhere: :mod:`monitor.archive.retention`,
:mod:`monitor.archive.reads`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from monitor.archive.index import EvidenceIndex
from monitor.archive.layout import ArchiveLayout
from monitor.archive.leaves import LogRecord
from monitor.archive.recovery import open_index, recover_log, remove_index_files, remove_orphans, replay_index
from monitor.archive.signing import Checkpoint, key_id, load_or_create_signing_key
from monitor.archive.store import LocalBlobStore, fsync_dir, write_file_durably
from monitor.archive.tree import TreeStore
from monitor.archive.writer import LogWriter
from monitor.errors import ArchiveError, ArchiveIntegrityError, ArchiveWriteError

log = logging.getLogger(__name__)


def _lock_file(path: Path, *, blocking: bool | None) -> int:
    """Open ``path`` and take an exclusive flock (``blocking=None``: open only)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ArchiveWriteError(f"cannot open lock file {path}: {exc}") from exc
    if blocking is None:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError as exc:
        holder = path.read_text(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ArchiveError(
            f"the archive {path.parent} is open for writing by another process (pid {holder}); "
            "stop it (e.g. the server) first"
        ) from exc
    return fd


class EvidenceLog:
    """The open, writable log of one data directory; build it with :meth:`open`.

    ``lock`` (re-entrant) serialises every decision and write of this process; hold it
    from reading the index or clock to :meth:`append`, so the decision stands when written.
    """

    def __init__(self, layout: ArchiveLayout, clock: Callable[[], datetime], signing_key: Path | None) -> None:
        self.layout = layout
        self.lock = threading.RLock()
        self.closed = True
        self._clock = clock
        self._signing_key_path = signing_key
        self._writer_fd = -1
        self._commit_fd = -1

    @classmethod
    def open(cls, layout: ArchiveLayout, *, clock: Callable[[], datetime],
             signing_key: Path | None = None) -> EvidenceLog:
        """Take the writer lock, recover from any crash and open the index (see the module doc).

        Raises ArchiveKeyError (signing key missing, exposed or foreign), ArchiveError
        (another process writes), ArchiveIntegrityError (the log does not match its latest
        checkpoint) and ArchiveWriteError (a directory or lock file cannot be made).
        """
        evidence_log = cls(layout, clock, signing_key)
        evidence_log._open()
        return evidence_log

    def _open(self) -> None:
        layout = self.layout
        try:
            for directory in (layout.root, layout.log_dir, layout.tmp_dir):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveWriteError(f"cannot create the archive directory {layout.root}: {exc}") from exc
        self._writer_fd = _lock_file(layout.writer_lock, blocking=False)
        try:
            os.ftruncate(self._writer_fd, 0)
            os.write(self._writer_fd, f"{os.getpid()}\n".encode())
            self._commit_fd = _lock_file(layout.commit_lock, blocking=None)
            with self._commit_lock():
                self._recover()
        except BaseException:
            os.close(self._writer_fd)
            raise
        self.closed = False
        if self.writer.last_checkpoint is not None and self.writer.last_checkpoint.note is None:
            with self.lock:
                log.warning("re-signing the latest checkpoint of %s in the C2SP signed-note format", layout.root)
                self._commit([], [])

    @contextmanager
    def _commit_lock(self) -> Iterator[None]:
        fcntl.flock(self._commit_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._commit_fd, fcntl.LOCK_UN)

    def _recover(self) -> None:
        layout = self.layout
        was_dirty = layout.dirty_marker.exists()
        if not was_dirty:
            write_file_durably(layout.dirty_marker, b"open\n", layout.tmp_dir)
        self.blobs = LocalBlobStore(layout.blob_dir, layout.tmp_dir)
        has_history = layout.checkpoints_log.exists() and layout.checkpoints_log.stat().st_size > 0
        self.key: Ed25519PrivateKey = load_or_create_signing_key(
            layout.key_dir, layout.tmp_dir, external=self._signing_key_path, has_history=has_history
        )
        tree_store = self._open_tree_store()
        recovered = recover_log(layout, tree_store, collect_blobs=was_dirty)
        last = recovered.checkpoint
        if last is not None and not last.verify(self.key.public_key()):
            raise ArchiveIntegrityError(
                f"{layout.checkpoints_log}: the latest checkpoint (size {last.size}) does not verify under "
                f"the signing key {key_id(self.key.public_key())}; run 'monitor archive verify'"
            )
        self.writer = LogWriter(layout, self.key, self.blobs, tree_store, recovered, self._clock, self._commit_lock)
        self.index = open_index(layout, self.writer.size, self.writer.leaves)
        self.index_behind = False
        # Temp files are always leftovers here: this process holds the writer lock.
        removed_tmp = self.blobs.clean_tmp()
        if removed_tmp:
            log.warning("removed %d leftover temp file(s) from %s", removed_tmp, layout.tmp_dir)
        if recovered.live_blobs is not None:
            removed = remove_orphans(self.blobs, recovered.live_blobs, layout.blob_dir)
            if removed:
                log.warning("crash recovery removed %d file(s) no log record references", removed)

    def _open_tree_store(self) -> TreeStore:
        try:
            return TreeStore(self.layout.tree_dir, writable=True)
        except ArchiveError as exc:
            log.warning("rebuilding the stored tree hashes %s: %s", self.layout.tree_dir, exc)
            for path in self.layout.tree_dir.glob("*"):
                path.unlink(missing_ok=True)
            return TreeStore(self.layout.tree_dir, writable=True)

    # ---- writing ---------------------------------------------------------------------------

    def now(self) -> datetime:
        """The time to write in a leaf: the clock, held at the last leaf's time if it stepped back."""
        return self.writer.now()

    def append(self, *records: LogRecord) -> list[bytes]:
        """Durably append ``records`` (their stored parts first) in one commit; their leaf lines.

        Returns once the signed checkpoint covering them is durable; the index follows.
        Raises ArchiveError when closed and ArchiveWriteError (nothing acknowledged) when a
        write fails.
        """
        lines = [record.line() for record in records]
        parts = [data for record in records for data in record.stored_parts()]
        with self.lock:
            self._commit(lines, parts)
        return lines

    def _commit(self, lines: list[bytes], parts: list[bytes]) -> Checkpoint:
        if self.closed:
            raise ArchiveError(f"the archive {self.layout.root} is closed")
        checkpoint = self.writer.commit(lines, parts)
        self.sync_index(strict=False)
        return checkpoint

    def sync_index(self, *, strict: bool) -> None:
        """Replay every committed leaf the index lacks; a damaged index is rebuilt from the log.

        ``strict``: raise ArchiveError when the index cannot be brought up to date (before
        a hold or purge is decided); otherwise log it and try again after the next commit.
        """
        with self.lock:
            try:
                replay_index(self.index, self.index.applied(), self.writer.size, self.writer.leaves)
                self.index_behind = False
                return
            except ArchiveError as exc:
                log.error("archive index update failed (%s); rebuilding it from the log", exc)
            try:
                self.index.close()
                remove_index_files(self.layout)
                self.index = EvidenceIndex(self.layout.index)
                replay_index(self.index, 0, self.writer.size, self.writer.leaves)
                self.index_behind = False
            except (ArchiveError, OSError) as exc:
                self.index_behind = True
                log.error("the archive index %s could not be rebuilt: %s", self.layout.index, exc)
                if strict:
                    raise ArchiveError(
                        f"the archive index {self.layout.index} cannot follow the log ({exc}); "
                        "nothing is decided from a stale index"
                    ) from exc

    def discard_blobs(self, shas: list[str]) -> None:
        """Delete blobs (a purge's, after its leaf is durable); those the disk refuses are retried later."""
        self.writer.discard_blobs(shas)

    # ---- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release files and locks; a clean close removes the ``DIRTY`` marker."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.writer.retry_pending_deletes()
            self.index.close()
            self.writer.close()
            if not self.writer.pending_deletes:
                try:
                    self.layout.dirty_marker.unlink(missing_ok=True)
                    fsync_dir(self.layout.root)
                except (OSError, ArchiveWriteError):
                    log.warning("could not remove %s; the next open will scan for orphans",
                                self.layout.dirty_marker)
            os.close(self._commit_fd)
            os.close(self._writer_fd)

    def abandon(self) -> None:
        """Release the files and locks as a killed process would (DIRTY stays): for crash tests."""
        with self.lock:
            self.index.close()
            self.writer.tree_store.close()
            os.close(self._commit_fd)
            os.close(self._writer_fd)
            self.closed = True
