"""The evidence archive: durable, content-addressed, Merkle-logged, signed, retained.

Call it like this (the live server does, from worker threads)::

    archive = EvidenceArchive.open(settings.data_dir)          # recovers after a crash
    evidence_id = archive.record_alert(alert, clip=samples, clip_start=12.3,
                                       transcript="...")       # durable when it returns
    alert.evidence_id = evidence_id
    archive.record_session(session_id=..., room_id=..., anchor_id=..., transcript=[...],
                           started_at=..., ended_at=...)
    archive.close()

A moderator's decision on an alert (``record_decision``) is a log record too, so it
is covered by the same signed checkpoints and checked by ``verify``.

One commit (one ``record_*``, ``hold``, ``release`` or ``purge``) is:
stored parts written (temp, fsync, rename, fsync dir) -> leaf appended to
``log/records.log`` and fsynced -> a checkpoint over the new tree signed and
appended to ``log/checkpoints.log`` and fsynced -> index row committed. A record is
acknowledged (the call returns) only after the checkpoint is durable; on any
failure the log files are cut back to their previous length and the new blobs
removed, and :class:`ArchiveWriteError` names the path and the OS error.

The record log is the only truth; the SQLite index and the stored tree hashes are
derived from it. On open (:mod:`monitor.archive.recovery`) anything the log holds
beyond the last checkpoint (an unacknowledged tail) is cut off, the tree hashes are
checked against the log, the index is checked (``quick_check``), rebuilt if damaged
and replayed from the log, and after an unclean shutdown (``DIRTY`` marker present)
temp files and blobs the *log* no longer references are removed. After every commit
the index is replayed from wherever it stopped, so a failed index write is made good
by the next one; holds and purges are decided only once the index has every leaf.

Times never go back: a leaf's ``recorded_at``/``at`` and a checkpoint's signed time
are at least the previous ones (a clock stepped back is logged and recorded in the
checkpoint line as ``observed_skew_s``). Methods are thread-safe; one process at a
time may have the archive open for writing (``writer.lock``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from monitor.alerts import Alert
from monitor.archive.index import EvidenceIndex, EvidenceSummary
from monitor.archive.layout import ArchiveLayout
from monitor.archive.merkle import leaf_hash
from monitor.archive.proofs import proof_document
from monitor.archive.records import (
    FORMAT_VERSION,
    MEDIA_ALERT,
    MEDIA_CLIP,
    MEDIA_SESSION_TRANSCRIPT,
    MEDIA_TRANSCRIPT,
    add_years,
    canonical_json,
    check_retention_years,
    decision_leaf,
    encode_flac,
    evidence_id_of,
    iso_utc,
    min_retain_until,
    part,
)
from monitor.archive.recovery import (
    open_index,
    recover_log,
    remove_index_files,
    remove_orphans,
    replay_index,
)
from monitor.archive.retention import PurgeResult, purge_leaf, purge_targets
from monitor.archive.signing import Checkpoint, key_id, load_or_create_signing_key
from monitor.archive.store import LocalBlobStore, fsync_dir, write_file_durably
from monitor.archive.tree import TreeStore
from monitor.archive.writer import LogWriter
from monitor.errors import ArchiveError, ArchiveIntegrityError, ArchiveWriteError

log = logging.getLogger(__name__)



def _utc_now() -> datetime:
    return datetime.now(UTC)


class EvidenceArchive:
    """A writable evidence archive in one data directory; build it with :meth:`open`."""

    def __init__(
        self,
        layout: ArchiveLayout,
        retention_years: int,
        clock: Callable[[], datetime],
        signing_key: Path | None = None,
    ) -> None:
        self.layout = layout
        self.retention_years = retention_years
        self._clock = clock
        self._signing_key_path = signing_key
        self._lock = threading.RLock()
        self._closed = True

    # ---- opening and recovery -------------------------------------------------------------

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        retention_years: int = 3,
        clock: Callable[[], datetime] | None = None,
        signing_key: Path | None = None,
    ) -> EvidenceArchive:
        """Open (creating if needed) the archive in ``data_dir`` and recover from any crash.

        ``retention_years`` below 3 raises ArchiveError (it may only be raised).
        ``clock`` returns the current UTC time (tests inject one). ``signing_key``: a
        key file outside the data dir (``MONITOR_SIGNING_KEY``), mode 0600. Raises
        ArchiveKeyError when the signing key is missing for an archive that had one,
        exposed, or not the archive's; ArchiveError if another process has the archive
        open for writing; ArchiveIntegrityError if the log no longer matches its latest
        checkpoint. A damaged index never stops it: the index is rebuilt from the log.
        """
        check_retention_years(retention_years)
        archive = cls(ArchiveLayout(Path(data_dir)), retention_years, clock or _utc_now, signing_key)
        archive._open()
        return archive

    def _open(self) -> None:
        layout = self.layout
        try:
            for directory in (layout.root, layout.log_dir, layout.tmp_dir):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveWriteError(f"cannot create the archive directory {layout.root}: {exc}") from exc
        self._writer_fd = self._lock_file(layout.writer_lock, blocking=False)
        try:
            os.ftruncate(self._writer_fd, 0)
            os.write(self._writer_fd, f"{os.getpid()}\n".encode())
            self._commit_fd = self._lock_file(layout.commit_lock, blocking=None)
            with self._commit_lock():
                self._recover()
        except BaseException:
            os.close(self._writer_fd)
            raise
        self._closed = False
        if self.writer.last_checkpoint is not None and self.writer.last_checkpoint.note is None:
            self._migrate_checkpoint()

    @staticmethod
    def _lock_file(path: Path, *, blocking: bool | None) -> int:
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
        self._key = load_or_create_signing_key(
            layout.key_dir, layout.tmp_dir, external=self._signing_key_path, has_history=has_history
        )
        tree_store = self._open_tree_store()
        recovered = recover_log(layout, tree_store, collect_blobs=was_dirty)
        last = recovered.checkpoint
        if last is not None and not last.verify(self._key.public_key()):
            raise ArchiveIntegrityError(
                f"{layout.checkpoints_log}: the latest checkpoint (size {last.size}) does not verify under "
                f"the signing key {key_id(self._key.public_key())}; run 'monitor archive verify'"
            )
        self.writer = LogWriter(layout, self._key, self.blobs, tree_store, recovered, self._clock, self._commit_lock)
        self.index = open_index(layout, self.writer.size, self.writer.leaves)
        self._index_behind = False
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

    def _migrate_checkpoint(self) -> None:
        """Re-sign the current tree as a C2SP checkpoint (an archive written before them)."""
        with self._lock:
            log.warning("re-signing the latest checkpoint of %s in the C2SP signed-note format", self.layout.root)
            self._commit([], [])

    def _sync_index(self, *, strict: bool) -> None:
        """Replay every committed leaf the index lacks; a damaged index is rebuilt from the log.

        ``strict``: raise ArchiveError when the index cannot be brought up to date (before
        a hold or purge is decided); otherwise log it and try again after the next commit.
        """
        try:
            replay_index(self.index, self.index.applied(), self.writer.size, self.writer.leaves)
            self._index_behind = False
            return
        except ArchiveError as exc:
            log.error("archive index update failed (%s); rebuilding it from the log", exc)
        try:
            self.index.close()
            remove_index_files(self.layout)
            self.index = EvidenceIndex(self.layout.index)
            replay_index(self.index, 0, self.writer.size, self.writer.leaves)
            self._index_behind = False
        except (ArchiveError, OSError) as exc:
            self._index_behind = True
            log.error("the archive index %s could not be rebuilt: %s", self.layout.index, exc)
            if strict:
                raise ArchiveError(
                    f"the archive index {self.layout.index} cannot follow the log ({exc}); "
                    "nothing is decided from a stale index"
                ) from exc

    def _commit(self, leaves: list[bytes], parts: list[bytes]) -> Checkpoint:
        """Commit through the log writer, then bring the index up to date (lock held)."""
        if self._closed:
            raise ArchiveError(f"the archive {self.layout.root} is closed")
        checkpoint = self.writer.commit(leaves, parts)
        self._sync_index(strict=False)
        return checkpoint

    # ---- the writer API --------------------------------------------------------------------

    def record_alert(
        self,
        alert: Alert,
        *,
        clip: np.ndarray | None,
        clip_start: float | None,
        sample_rate: int = 16000,
        transcript: str,
        retain_from: datetime | None = None,
    ) -> str:
        """Durably store evidence for one alert and return its evidence id.

        ``clip``: float32 mono samples in [-1, 1] of the utterance with about one
        second of context either side (None when no audio is available);
        ``clip_start``: stream seconds of the clip's first sample; ``transcript``:
        the text heard; ``retain_from``: when the retention period starts (end of
        the stream; default now); a later :meth:`record_session` of the same
        room extends it to the session's end. The stored alert JSON is the alert
        as given (its ``evidence_id`` is normally still null: the id is derived
        from the record). Raises ArchiveWriteError; nothing is acknowledged then.
        """
        alert_bytes = canonical_json(alert.wire())
        transcript_bytes = transcript.encode("utf-8")
        parts: dict[str, Any] = {
            "alert": part(alert_bytes, MEDIA_ALERT),
            "transcript": part(transcript_bytes, MEDIA_TRANSCRIPT),
        }
        blobs = [alert_bytes, transcript_bytes]
        if clip is not None:
            flac = encode_flac(clip, sample_rate)
            parts["clip"] = part(
                flac, MEDIA_CLIP, start=clip_start, sample_rate=sample_rate,
                duration=round(len(clip) / sample_rate, 6),
            )
            blobs.append(flac)
        with self._lock:
            now = self.writer.now()
            retain_until = max(add_years(retain_from or now, self.retention_years), min_retain_until(now))
            leaf = {
                "v": FORMAT_VERSION,
                "kind": "alert",
                "recorded_at": iso_utc(now),
                "retain_until": iso_utc(retain_until),
                "alert_id": alert.alert_id,
                "room_id": alert.room_id,
                "anchor_id": alert.anchor_id,
                "category": alert.category,
                "severity": alert.severity,
                "rule_id": alert.rule_id,
                "source": alert.source,
                "start": alert.start,
                "end": alert.end,
                "emitted_at": alert.emitted_at,
                "lexicon_version": alert.lexicon_version,
                "model_version": alert.model_version,
                "parts": parts,
            }
            line = canonical_json(leaf)
            self._commit([line], blobs)
            return evidence_id_of(line)

    def record_session(
        self,
        *,
        session_id: str,
        room_id: str,
        anchor_id: str | None,
        transcript: list[dict[str, Any]],
        started_at: datetime,
        ended_at: datetime,
    ) -> str:
        """Durably store one room session's final transcript; returns its evidence id.

        ``transcript``: the committed segments (JSON-serialisable dicts, e.g.
        ``{"start": s, "end": s, "text": ...}``). Retention runs to ``ended_at`` +
        retention years, and the session extends the retention of the room's
        alerts recorded since ``started_at`` to the same date. Raises ArchiveWriteError.
        """
        try:
            transcript_bytes = canonical_json(transcript)
        except (TypeError, ValueError) as exc:
            raise ArchiveError(f"session {session_id}: transcript is not JSON-serialisable: {exc}") from exc
        with self._lock:
            now = self.writer.now()
            retain_until = max(add_years(ended_at, self.retention_years), min_retain_until(now))
            try:
                covers = self.index.uncovered_alerts(room_id, iso_utc(started_at))
            except ArchiveError as exc:
                # The transcript matters more than extending its alerts' retention (each keeps >= 3 years).
                log.error("session %s: alerts to cover unknown (%s); recorded without covers", session_id, exc)
                covers = []
            leaf = {
                "v": FORMAT_VERSION,
                "kind": "session",
                "recorded_at": iso_utc(now),
                "retain_until": iso_utc(retain_until),
                "session_id": session_id,
                "room_id": room_id,
                "anchor_id": anchor_id,
                "started_at": iso_utc(started_at),
                "ended_at": iso_utc(ended_at),
                "covers": covers,
                "parts": {"transcript": part(transcript_bytes, MEDIA_SESSION_TRANSCRIPT)},
            }
            line = canonical_json(leaf)
            self._commit([line], [transcript_bytes])
            return evidence_id_of(line)

    def hold(self, evidence_id: str, *, reason: str | None = None, release: bool = False) -> None:
        """Place (or with ``release`` lift) a legal hold; a held record is never purged."""
        with self._lock:
            self._sync_index(strict=True)
            record = self._require(evidence_id)
            if record.purged_at is not None:
                raise ArchiveError(f"evidence {evidence_id} was purged at {record.purged_at}; cannot hold")
            if record.held != release:
                state = "not held" if release else "already held"
                raise ArchiveError(f"evidence {evidence_id} is {state}")
            leaf = {
                "v": FORMAT_VERSION,
                "kind": "release" if release else "hold",
                "evidence_id": evidence_id,
                "at": iso_utc(self.writer.now()),
                "reason": reason,
            }
            self._commit([canonical_json(leaf)], [])

    def record_decision(
        self,
        evidence_id: str,
        *,
        decision: str,
        by: str,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Durably append a moderator's decision on one alert record; returns the decision leaf.

        ``decision`` is one of :data:`~monitor.archive.records.DECISIONS` (``confirm``: a
        violation; ``dismiss``: a false alert, ``reason`` required; ``inspect``: the goods go
        to inspection, only for purity and gem claims); ``by`` names the moderator. A later
        decision on the same record supersedes the earlier one (both stay in the log).
        The leaf's ``decision_id`` is the first 32 hex digits of SHA-256 over its bytes.
        Raises ArchiveError for an unknown or purged record or an invalid decision, and
        ArchiveWriteError when it could not be stored.
        """
        with self._lock:
            record = self._require(evidence_id)
            leaf = decision_leaf(record, decision=decision, by=by, reason=reason, at=iso_utc(self.writer.now()))
            line = canonical_json(leaf)
            self._commit([line], [])
            return {**leaf, "decision_id": evidence_id_of(line)}

    def decisions(self, evidence_id: str) -> list[dict[str, Any]]:
        """Every decision on one record, oldest first (the last one is in force)."""
        with self._lock:
            return self.index.decisions(evidence_id)

    def anchor_record(self, *, bucket: str = "day", since: str | None = None) -> list[dict[str, Any]]:
        """Alerts and decisions in force per anchor and ``day``/``hour`` bucket (see EvidenceIndex)."""
        with self._lock:
            return self.index.anchor_record(bucket=bucket, since=since)

    def labeled_decisions(self) -> list[dict[str, Any]]:
        """Confirmed and dismissed alerts as labeled examples (monitor.archive.decisions)."""
        from monitor.archive.decisions import labeled_decisions

        with self._lock:
            return list(labeled_decisions(self.index, self.layout.blob_dir))

    def proof_status(self, evidence_id: str) -> dict[str, Any]:
        """Whether a record is committed: its leaf index, record hash and inclusion in the signed tree.

        The RFC 6962 inclusion proof comes from the stored tree hashes (O(log n) reads,
        milliseconds at 10 million records) and is checked against the latest signed
        checkpoint before it is returned; stored hashes that do not lead to the signed
        root are rebuilt from the log first. Raises ArchiveError for an unknown id and
        ArchiveIntegrityError when the log does not hold the record the index names.
        """
        with self._lock:
            summary = self._require(evidence_id)
            record = self.writer.read_record(summary.seq)
            if evidence_id_of(record) != evidence_id:
                raise ArchiveIntegrityError(
                    f"record #{summary.seq} of {self.layout.records_log} is not evidence {evidence_id}; "
                    "run 'monitor archive verify'"
                )
            leaf = leaf_hash(record)
            path, checkpoint = self.writer.inclusion(summary.seq, leaf)
            document = proof_document(evidence_id, summary.seq, record, leaf, path, checkpoint,
                                      self._key.public_key())
        purged = {"at": summary.purged_at} if summary.purged_at else None
        return {**document, "purged": purged, "record": json.loads(record)}

    def checkpoint_text(self) -> str:
        """The latest checkpoint as a C2SP signed note (what ``monitor archive checkpoint`` prints)."""
        with self._lock:
            if self.writer.last_checkpoint is None:
                raise ArchiveError(f"the archive {self.layout.root} has no signed checkpoint yet")
            return self.writer.last_checkpoint.text()

    def purge(self, *, now: datetime | None = None, evidence_ids: list[str] | None = None) -> PurgeResult:
        """Delete the stored content of records past ``retain_until`` and not on hold.

        ``now`` (default: the clock) may lie before the clock but not after it (nor after
        the last recorded time). Decided only once the index holds every log leaf (it is
        replayed or rebuilt from the log first; ArchiveError if that fails).
        With ``evidence_ids``, purges exactly those and refuses (ArchiveError) if
        any is within retention, held or unknown. The purge is itself a log
        record; leaves and Merkle hashes stay, so ``verify`` still checks the chain.
        """
        with self._lock:
            self._sync_index(strict=True)
            clock_now = self.writer.now()
            cutoff = now or clock_now
            if cutoff > clock_now:
                raise ArchiveError(
                    f"purge time {iso_utc(cutoff)} is later than the system clock {iso_utc(clock_now)}; "
                    "retention cannot be shortened by moving the clock forward"
                )
            targets = purge_targets(self.index, iso_utc(cutoff), evidence_ids)
            if not targets:
                return PurgeResult()
            leaf = purge_leaf(self.index, targets, iso_utc(cutoff), iso_utc(clock_now))
            self._commit([canonical_json(leaf)], [])
            result = PurgeResult(evidence_ids=leaf["evidence_ids"], blobs=leaf["blobs"])
            for sha in result.blobs:
                path = self.blobs.path_for(sha)
                with suppress(OSError):
                    result.bytes_freed += path.stat().st_size
                self.writer.discard_blobs([sha])
            return result

    # ---- reading ---------------------------------------------------------------------------

    def _require(self, evidence_id: str) -> EvidenceSummary:
        record = self.index.get(evidence_id)
        if record is None:
            raise ArchiveError(f"no evidence with id {evidence_id!r} in {self.layout.root}")
        return record

    def get(self, evidence_id: str) -> EvidenceSummary:
        """The index entry of one record; raises ArchiveError if unknown."""
        with self._lock:
            return self._require(evidence_id)

    def read_part(self, evidence_id: str, role: str) -> bytes:
        """The stored bytes of one part (``alert``, ``transcript``, ``clip``) after checking its hash."""
        with self._lock:
            record = self._require(evidence_id)
            parts = self.index.parts(evidence_id)
        if role not in parts:
            raise ArchiveError(f"evidence {evidence_id} has no part {role!r} (has {sorted(parts)})")
        if record.purged_at is not None:
            raise ArchiveError(f"evidence {evidence_id} was purged at {record.purged_at}")
        data = self.blobs.get(parts[role]["sha256"])
        if hashlib.sha256(data).hexdigest() != parts[role]["sha256"]:
            raise ArchiveIntegrityError(f"evidence {evidence_id}: stored {role} does not match its hash")
        return data

    def find(self, **filters: Any) -> list[EvidenceSummary]:
        """Look records up by ``room_id``, ``anchor_id``, ``category``, ``kind``, ``since``/``until``
        (UTC ISO strings on the alert's ``emitted_at`` or the session's start) and ``limit``."""
        with self._lock:
            return self.index.find(**filters)

    @property
    def size(self) -> int:
        """Number of leaves in the log (every kind)."""
        return self.writer.size

    @property
    def last_checkpoint(self) -> Checkpoint | None:
        """The latest signed checkpoint (None for an empty archive)."""
        return self.writer.last_checkpoint

    @property
    def tree_store(self) -> TreeStore:
        """The stored tree hashes (derived from the log)."""
        return self.writer.tree_store

    def close(self) -> None:
        """Release files and locks; a clean close removes the ``DIRTY`` marker."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
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

    def __enter__(self) -> EvidenceArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
