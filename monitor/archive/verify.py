"""Read-only verification of a whole archive (``monitor archive verify``).

It trusts nothing but the public key (the archive's own ``keys/public_key.pem``,
or a copy the caller keeps elsewhere) and checks, in one pass:

1. every checkpoint: its signature, its key, sizes strictly increasing, times
   not going back;
2. the log against the checkpoints: the RFC 6962 root after ``size`` leaves must
   equal each checkpoint's root, and no leaf may lie past the latest checkpoint
   (altered, deleted, reordered or added records, or a truncated log);
3. every leaf: well-formed, and hold/release/purge/decision entries refer to
   earlier records; a purge only of records past retention and not on hold; a
   decision only on an alert record not purged, naming who and when;
4. every stored part of every record not purged: present and hashing to its name;
   no file in ``blobs/`` that no record references (an added file).

It reads the log under the commit lock only long enough to note its length, so
it runs next to a live writer. The first problem (lowest leaf index) is the
"first bad record".
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from monitor.archive.layout import ArchiveLayout, shared_commit_lock, writer_active
from monitor.archive.log import read_lines
from monitor.archive.merkle import CompactRange, leaf_hash
from monitor.archive.records import DECISIONS, evidence_id_of
from monitor.archive.signing import Checkpoint, key_id, load_public_key
from monitor.errors import ArchiveError, ArchiveIntegrityError

NO_RECORD = 1 << 62
RECENT_FILE_S = 120
"""An unreferenced blob this young is a write in progress when a writer is active."""


@dataclass(frozen=True)
class Problem:
    """One finding: the leaf index it concerns (``NO_RECORD`` for archive-wide ones) and what is wrong."""

    seq: int
    message: str

    def __str__(self) -> str:
        return self.message if self.seq == NO_RECORD else f"record #{self.seq}: {self.message}"


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_archive`; ``ok`` when ``problems`` is empty."""

    records: int = 0
    alerts: int = 0
    sessions: int = 0
    purged: int = 0
    held: int = 0
    decisions: int = 0
    checkpoints: int = 0
    files_checked: int = 0
    bytes_hashed: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        """The problem with the lowest leaf index (the first bad record)."""
        return min(self.problems, key=lambda p: p.seq) if self.problems else None

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "alerts": self.alerts,
            "sessions": self.sessions,
            "purged": self.purged,
            "held": self.held,
            "decisions": self.decisions,
            "checkpoints": self.checkpoints,
            "files_checked": self.files_checked,
            "bytes_hashed": self.bytes_hashed,
            "seconds": round(self.seconds, 3),
            "first_problem": str(self.first_problem) if self.problems else None,
            "problems": len(self.problems),
        }


def verify_archive(data_dir: Path, *, public_key_path: Path | None = None) -> VerifyReport:
    """Verify the archive in ``data_dir`` (see the module docstring); never modifies it.

    ``public_key_path``: a trusted copy of the public key (default: the archive's own).
    Raises ArchiveError only when there is no archive to verify.
    """
    started = time.perf_counter()
    layout = ArchiveLayout(Path(data_dir))
    if not layout.records_log.exists() and not layout.checkpoints_log.exists():
        raise ArchiveError(f"no evidence archive in {layout.root} (no {layout.records_log})")
    public_key = load_public_key(public_key_path or layout.public_key)
    report = VerifyReport()
    live = writer_active(layout)
    with shared_commit_lock(layout):
        snapshot_time = time.time()
        log_length = layout.records_log.stat().st_size if layout.records_log.exists() else 0
        cp_length = layout.checkpoints_log.stat().st_size if layout.checkpoints_log.exists() else 0
    checkpoints = _check_checkpoints(layout, cp_length, public_key, report)
    lines, covered = read_lines(layout.records_log, log_length)
    if covered != log_length:
        report.notes.append(
            f"{layout.records_log} ends in {log_length - covered} bytes of an incomplete record "
            "(a write interrupted by a crash; removed on the next open)"
        )
    chain = _check_chain(lines, checkpoints, report)
    _check_files(layout, chain, report, live, snapshot_time)
    report.seconds = time.perf_counter() - started
    return report


def _check_checkpoints(
    layout: ArchiveLayout, length: int, public_key: Ed25519PublicKey, report: VerifyReport
) -> list[Checkpoint]:
    lines, covered = read_lines(layout.checkpoints_log, length)
    if covered != length:
        report.notes.append(f"{layout.checkpoints_log} ends in an incomplete line (crash; removed on open)")
    expected_key = key_id(public_key)
    checkpoints: list[Checkpoint] = []
    for number, line in enumerate(lines, start=1):
        where = f"{layout.checkpoints_log} line {number}"
        try:
            checkpoint = Checkpoint.from_line(line, where)
        except ArchiveIntegrityError as exc:
            report.problems.append(Problem(NO_RECORD, str(exc)))
            continue
        seq = max(checkpoint.size - 1, 0)
        if checkpoint.key_id != expected_key:
            report.problems.append(
                Problem(seq, f"{where}: signed by key {checkpoint.key_id}, not {expected_key}")
            )
        elif not checkpoint.verify(public_key):
            report.problems.append(
                Problem(seq, f"{where}: checkpoint signature is invalid (size {checkpoint.size})")
            )
        if checkpoints and checkpoint.size <= checkpoints[-1].size:
            report.problems.append(
                Problem(seq, f"{where}: size {checkpoint.size} not above the previous {checkpoints[-1].size}")
            )
            continue
        if checkpoints and checkpoint.time < checkpoints[-1].time:
            report.problems.append(Problem(seq, f"{where}: time {checkpoint.time} goes back"))
        checkpoints.append(checkpoint)
    report.checkpoints = len(lines)
    return checkpoints


@dataclass
class _RecordState:
    seq: int
    kind: str
    retain_until: str
    parts: dict[str, dict[str, Any]]
    held: bool = False
    purged_at: str | None = None


@dataclass
class _Chain:
    """What the log says: evidence id -> record state, blob sha256 -> first leaf using it."""

    records: dict[str, _RecordState] = field(default_factory=dict)
    referenced: dict[str, int] = field(default_factory=dict)


def _check_chain(lines: list[bytes], checkpoints: list[Checkpoint], report: VerifyReport) -> _Chain:
    """Check roots and leaf semantics; returns the records and blobs the log describes."""
    tree = CompactRange()
    pending = iter(checkpoints)
    next_checkpoint = next(pending, None)
    last_checked = 0
    chain = _Chain()
    report.records = len(lines)
    for seq, line in enumerate(lines):
        tree.append(leaf_hash(line))
        while next_checkpoint is not None and next_checkpoint.size == seq + 1:
            if tree.root() != next_checkpoint.root:
                first = last_checked
                span = f"#{first}" if first == seq else f"one of #{first}..#{seq}"
                report.problems.append(
                    Problem(first, f"Merkle root after {seq + 1} records differs from the signed checkpoint: "
                                   f"record {span} was altered, removed, reordered or inserted")
                )
            last_checked = seq + 1
            next_checkpoint = next(pending, None)
        _check_leaf(seq, line, chain, report)
    if next_checkpoint is not None:
        report.problems.append(
            Problem(len(lines), f"the log holds {len(lines)} records but a signed checkpoint covers "
                                f"{next_checkpoint.size}: records were removed (log truncated)")
        )
    covered = checkpoints[-1].size if checkpoints else 0
    if len(lines) > covered:
        report.problems.append(
            Problem(covered, f"{len(lines) - covered} record(s) from #{covered} on are not covered by any "
                             "signed checkpoint (added, or left by a crash: the next open discards them)")
        )
    report.purged = sum(1 for r in chain.records.values() if r.purged_at)
    report.held = sum(1 for r in chain.records.values() if r.held)
    return chain


def _check_leaf(seq: int, line: bytes, chain: _Chain, report: VerifyReport) -> None:
    records = chain.records
    try:
        leaf = json.loads(line)
        kind = leaf["kind"]
    except (ValueError, KeyError, TypeError) as exc:
        report.problems.append(Problem(seq, f"not a valid log entry: {exc}"))
        return
    try:
        if kind in ("alert", "session"):
            eid = evidence_id_of(line)
            parts = leaf["parts"]
            records[eid] = _RecordState(seq, kind, leaf["retain_until"], parts)
            if kind == "alert":
                report.alerts += 1
            else:
                report.sessions += 1
                for covered in leaf.get("covers", []):
                    target = records.get(covered)
                    if target is None:
                        report.problems.append(Problem(seq, f"session covers unknown evidence {covered}"))
                    else:
                        target.retain_until = max(target.retain_until, leaf["retain_until"])
            for info in parts.values():
                chain.referenced.setdefault(info["sha256"], seq)
        elif kind in ("hold", "release"):
            target = records.get(leaf["evidence_id"])
            if target is None:
                report.problems.append(Problem(seq, f"{kind} of unknown evidence {leaf['evidence_id']}"))
            else:
                target.held = kind == "hold"
        elif kind == "decision":
            target = records.get(leaf["evidence_id"])
            if target is None:
                report.problems.append(Problem(seq, f"decision on unknown evidence {leaf['evidence_id']}"))
            elif target.kind != "alert":
                report.problems.append(Problem(seq, f"decision on {target.kind} record {leaf['evidence_id']}"))
            elif target.purged_at:
                report.problems.append(Problem(seq, f"decision on evidence {leaf['evidence_id']} after its purge"))
            elif leaf["decision"] not in DECISIONS:
                report.problems.append(Problem(seq, f"decision {leaf['decision']!r} is not one of {list(DECISIONS)}"))
            elif not leaf["by"] or not leaf["at"]:
                report.problems.append(Problem(seq, "decision does not say who made it and when"))
            else:
                report.decisions += 1
        elif kind == "purge":
            for eid in leaf["evidence_ids"]:
                target = records.get(eid)
                if target is None:
                    report.problems.append(Problem(seq, f"purge of unknown evidence {eid}"))
                elif target.held:
                    report.problems.append(Problem(seq, f"purge of evidence {eid} while under legal hold"))
                elif target.retain_until > leaf["at"]:
                    report.problems.append(
                        Problem(seq, f"purge of evidence {eid} at {leaf['at']} before its retention "
                                     f"ends ({target.retain_until})")
                    )
                else:
                    target.purged_at = leaf["at"]
        else:
            report.problems.append(Problem(seq, f"unknown entry kind {kind!r}"))
    except (KeyError, TypeError) as exc:
        report.problems.append(Problem(seq, f"{kind} entry lacks field {exc}"))


def _check_files(
    layout: ArchiveLayout,
    chain: _Chain,
    report: VerifyReport,
    live_writer: bool,
    snapshot_time: float,
) -> None:
    # Parts are checked against the files once every purge is known.
    needed: dict[str, tuple[int, str, str]] = {}  # sha -> (seq, evidence id, role) of a live user
    for eid, state in chain.records.items():
        if state.purged_at:
            continue
        for role, info in state.parts.items():
            needed.setdefault(info["sha256"], (state.seq, eid, role))
    for sha, (seq, eid, role) in needed.items():
        path = layout.blob_dir / sha[:2] / sha
        try:
            with open(path, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
                report.bytes_hashed += handle.tell()
        except FileNotFoundError:
            report.problems.append(Problem(seq, f"evidence {eid}: stored {role} is missing ({path})"))
            continue
        except OSError as exc:
            report.problems.append(Problem(seq, f"evidence {eid}: cannot read stored {role} {path}: {exc}"))
            continue
        report.files_checked += 1
        if digest != sha:
            report.problems.append(
                Problem(seq, f"evidence {eid}: stored {role} was altered ({path} hashes to {digest})")
            )
    if not layout.blob_dir.is_dir():
        return
    for shard in sorted(layout.blob_dir.iterdir()):
        entries = sorted(shard.iterdir()) if shard.is_dir() else [shard]
        for path in entries:
            if path.name in chain.referenced and path.parent.name == path.name[:2]:
                continue
            try:
                young = path.stat().st_mtime >= snapshot_time - RECENT_FILE_S
            except OSError:
                continue
            if live_writer and young:
                report.notes.append(f"{path}: not yet referenced (a write in progress)")
                continue
            report.problems.append(
                Problem(NO_RECORD, f"{path}: stored file that no record references (added)")
            )
    leftovers = list(layout.tmp_dir.iterdir()) if layout.tmp_dir.is_dir() else []
    if leftovers and not live_writer:
        report.notes.append(
            f"{len(leftovers)} temp file(s) in {layout.tmp_dir} (from a crash; removed on open)"
        )
