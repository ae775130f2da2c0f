"""Read-only verification of a whole archive (``monitor archive verify``).

It trusts nothing but the public key (the archive's own ``keys/public_key.pem``,
or a copy the caller keeps elsewhere) and checks, in one pass:

1. every checkpoint (C2SP signed notes, or the earlier line format): its signature
   and signed time, its key, sizes never going back (a re-signed equal size must
   keep its root), times not going back;
2. the log against the checkpoints: the RFC 6962 root after ``size`` leaves must
   equal each checkpoint's root, and no leaf may lie past the latest checkpoint
   (altered, deleted, reordered or added records, or a truncated log);
3. every leaf: well-formed, and hold/release/purge/decision entries refer to
   earlier records; a decision only on an alert record not purged, naming who and
   when; an inspection claim only of an earlier purity/gem alert record, an
   inspection outcome only on an earlier ticket, with a known outcome, who and when;
   the policy: a purge only of records past retention and not on hold, and
   not dated after the checkpoint that first covers it; ``retain_until`` at least
   ``recorded_at`` + 3 years; leaf times (``recorded_at``/``at``) never going back;
4. every stored part of every record not purged: present and hashing to its name;
   no file in ``blobs/`` that no record references (an added file);
5. with ``witness``: every checkpoint saved earlier by an outside party is signed by
   the archive's key and the log is an append-only extension of it (an RFC 6962
   consistency proof from its size to the latest checkpoint, built from the log
   itself, verifies), so a log rolled back or rewritten and re-signed fails.

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
from monitor.archive.leaves import TIME_FIELDS
from monitor.archive.log import iter_records, read_lines
from monitor.archive.merkle import CompactRange, leaf_hash
from monitor.archive.records import (
    DECISIONS,
    INSPECTION_CATEGORIES,
    INSPECTION_OUTCOMES,
    evidence_id_of,
    iso_utc,
    min_retain_until,
    parse_iso,
)
from monitor.archive.signing import Checkpoint, load_public_key
from monitor.archive.witness import ConsistencyCollector, Witnessed, check_consistency, load_witnessed
from monitor.errors import ArchiveError, ArchiveIntegrityError

NO_RECORD = 1 << 62
RECENT_FILE_S = 120
"""An unreferenced blob this young is a write in progress when a writer is active."""


@dataclass(frozen=True)
class Problem:
    """One finding: the leaf index it concerns (``NO_RECORD`` for archive-wide ones) and what is wrong."""

    seq: int
    message: str
    policy: bool = False  # a policy violation (retention, hold, time order), listed after integrity faults
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
    reports: int = 0
    inspection_claims: int = 0
    inspection_outcomes: int = 0
    checkpoints: int = 0
    witnessed: int = 0
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
        return min(self.problems, key=lambda p: (p.seq, p.policy)) if self.problems else None

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "alerts": self.alerts,
            "sessions": self.sessions,
            "purged": self.purged,
            "held": self.held,
            "decisions": self.decisions,
            "reports": self.reports,
            "inspection_claims": self.inspection_claims,
            "inspection_outcomes": self.inspection_outcomes,
            "checkpoints": self.checkpoints,
            "witnessed": self.witnessed,
            "files_checked": self.files_checked,
            "bytes_hashed": self.bytes_hashed,
            "seconds": round(self.seconds, 3),
            "first_problem": str(self.first_problem) if self.problems else None,
            "problems": len(self.problems),
        }


def verify_archive(
    data_dir: Path, *, public_key_path: Path | None = None, witness_path: Path | None = None
) -> VerifyReport:
    """Verify the archive in ``data_dir`` (see the module docstring); never modifies it.

    ``public_key_path``: a trusted copy of the public key (default: the archive's own).
    ``witness_path``: checkpoints saved earlier (C2SP notes, concatenated); each one the
    log is not an append-only extension of is a problem naming it. Raises ArchiveError
    only when there is no archive to verify or the witness file cannot be read.
    """
    started = time.perf_counter()
    layout = ArchiveLayout(Path(data_dir))
    if not layout.records_log.exists() and not layout.checkpoints_log.exists():
        raise ArchiveError(f"no evidence archive in {layout.root} (no {layout.records_log})")
    public_key = load_public_key(public_key_path or layout.public_key)
    witnessed = load_witnessed(witness_path, public_key) if witness_path else []
    report = VerifyReport()
    live = writer_active(layout)
    with shared_commit_lock(layout):
        snapshot_time = time.time()
        log_length = layout.records_log.stat().st_size if layout.records_log.exists() else 0
        cp_length = layout.checkpoints_log.stat().st_size if layout.checkpoints_log.exists() else 0
    checkpoints = _check_checkpoints(layout, cp_length, public_key, report)
    latest = checkpoints[-1] if checkpoints else None
    collector = ConsistencyCollector(
        [w.checkpoint.size for w in witnessed if w.checkpoint is not None and w.error is None],
        latest.size if latest else 0,
    )
    chain = _check_chain(layout.records_log, log_length, checkpoints, report, collector)
    if witness_path is not None:
        _check_witnessed(witness_path, witnessed, latest, collector, report)
    _check_files(layout, chain, report, live, snapshot_time)
    report.seconds = time.perf_counter() - started
    return report


def _check_witnessed(
    source: Path,
    witnessed: list[Witnessed],
    latest: Checkpoint | None,
    collector: ConsistencyCollector,
    report: VerifyReport,
) -> None:
    for item in witnessed:
        checkpoint = item.checkpoint
        why = item.error
        if why is None and checkpoint is not None:
            if latest is None:
                why = "the archive has no signed checkpoint: it was rolled back or emptied"
            elif checkpoint.size > latest.size:
                why = check_consistency(checkpoint, latest, [])
            elif checkpoint.size == 0:
                why = None
            else:
                why = check_consistency(checkpoint, latest, collector.proof(checkpoint.size))
        if why is None:
            report.witnessed += 1
        else:
            report.problems.append(Problem(NO_RECORD, f"{item.name(source)}: {why}"))


def _check_checkpoints(
    layout: ArchiveLayout, length: int, public_key: Ed25519PublicKey, report: VerifyReport
) -> list[Checkpoint]:
    lines, covered = read_lines(layout.checkpoints_log, length)
    if covered != length:
        report.notes.append(f"{layout.checkpoints_log} ends in an incomplete line (crash; removed on open)")
    checkpoints: list[Checkpoint] = []
    for number, line in enumerate(lines, start=1):
        where = f"{layout.checkpoints_log} line {number}"
        try:
            checkpoint = Checkpoint.from_line(line, where)
        except ArchiveIntegrityError as exc:
            report.problems.append(Problem(NO_RECORD, str(exc)))
            continue
        seq = max(checkpoint.size - 1, 0)
        if not checkpoint.signed_by(public_key):
            report.problems.append(Problem(
                seq, f"{where}: signed by key {checkpoint.key_id}, not {checkpoint.expected_key_id(public_key)}"
            ))
        elif not checkpoint.verify(public_key):
            report.problems.append(
                Problem(seq, f"{where}: checkpoint signature is invalid (size {checkpoint.size})")
            )
        if checkpoints and checkpoint.size < checkpoints[-1].size:
            report.problems.append(
                Problem(seq, f"{where}: size {checkpoint.size} below the previous {checkpoints[-1].size}")
            )
            continue
        if checkpoints and checkpoint.size == checkpoints[-1].size and checkpoint.root != checkpoints[-1].root:
            report.problems.append(
                Problem(seq, f"{where}: a second root for size {checkpoint.size} (the log forked)")
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
    tickets: set[str] = field(default_factory=set)  # inspection tickets opened so far
    last_time: tuple[int, str] | None = None  # (seq, time) of the latest leaf time seen


def _check_chain(
    records_log: Path,
    log_length: int,
    checkpoints: list[Checkpoint],
    report: VerifyReport,
    collector: ConsistencyCollector,
) -> _Chain:
    """Check roots and leaf semantics in one streaming pass; returns the records and blobs the log describes."""
    tree = CompactRange()
    pending = iter(checkpoints)
    next_checkpoint = next(pending, None)
    last_checked = 0
    chain = _Chain()
    covered_bytes = 0
    for end, line in iter_records(records_log, log_length):
        seq = tree.size
        covered_bytes = end
        hashed = leaf_hash(line)
        tree.append(hashed)
        collector.add(seq, hashed)
        covering = next_checkpoint
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
        _check_leaf(seq, line, chain, report, covering)
    if covered_bytes != log_length:
        report.notes.append(
            f"{records_log} ends in {log_length - covered_bytes} bytes of an incomplete record "
            "(a write interrupted by a crash; removed on the next open)"
        )
    count = tree.size
    report.records = count
    while next_checkpoint is not None and next_checkpoint.size == 0:
        next_checkpoint = next(pending, None)
    if next_checkpoint is not None:
        report.problems.append(
            Problem(count, f"the log holds {count} records but a signed checkpoint covers "
                           f"{next_checkpoint.size}: records were removed (log truncated)")
        )
    covered = checkpoints[-1].size if checkpoints else 0
    if count > covered:
        report.problems.append(
            Problem(covered, f"{count - covered} record(s) from #{covered} on are not covered by any "
                             "signed checkpoint (added, or left by a crash: the next open discards them)")
        )
    report.purged = sum(1 for r in chain.records.values() if r.purged_at)
    report.held = sum(1 for r in chain.records.values() if r.held)
    return chain


def _violation(seq: int, message: str) -> Problem:
    return Problem(seq, message, policy=True)


def _check_policy(seq: int, leaf: dict[str, Any], chain: _Chain, report: VerifyReport,
                  covering: Checkpoint | None) -> None:
    """Times never go back; retention at least 3 years from recording; no purge dated after its checkpoint."""
    kind = leaf["kind"]
    field_name = TIME_FIELDS.get(kind)
    written = leaf.get(field_name) if field_name else None
    if isinstance(written, str):
        if chain.last_time is not None and written < chain.last_time[1]:
            report.problems.append(_violation(
                seq, f"{field_name} {written} goes back before {chain.last_time[1]} of record #{chain.last_time[0]}"
            ))
        else:
            chain.last_time = (seq, written)
    if kind in ("alert", "session", "report"):
        floor = iso_utc(min_retain_until(parse_iso(leaf["recorded_at"])))
        if leaf["retain_until"] < floor:
            report.problems.append(_violation(
                seq, f"retain_until {leaf['retain_until']} is less than 3 years after recorded_at "
                     f"{leaf['recorded_at']} (at least {floor})"
            ))
    if kind == "purge" and covering is not None and covering.time and leaf["at"] > covering.time:
        report.problems.append(_violation(
            seq, f"purge dated {leaf['at']}, after the checkpoint that covers it ({covering.time}): "
                 "a clock moved forward to cut retention short"
        ))


def _check_leaf(seq: int, line: bytes, chain: _Chain, report: VerifyReport, covering: Checkpoint | None) -> None:
    records = chain.records
    try:
        leaf = json.loads(line)
        kind = leaf["kind"]
    except (ValueError, KeyError, TypeError) as exc:
        report.problems.append(Problem(seq, f"not a valid log entry: {exc}"))
        return
    try:
        _check_policy(seq, leaf, chain, report, covering)
        if kind in ("alert", "session", "report"):
            eid = evidence_id_of(line)
            parts = leaf["parts"]
            records[eid] = _RecordState(seq, kind, leaf["retain_until"], parts)
            if kind == "alert":
                report.alerts += 1
            elif kind == "report":
                report.reports += 1
                if "report" not in parts or not leaf["room_id"] or not leaf["recorded_at"]:
                    report.problems.append(Problem(seq, "report does not say which room, when, or what was said"))
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
        elif kind == "inspection_claim":
            target = records.get(leaf["evidence_id"])
            if target is None:
                report.problems.append(Problem(seq, f"inspection claim of unknown evidence {leaf['evidence_id']}"))
            elif target.kind != "alert":
                report.problems.append(
                    Problem(seq, f"inspection claim of {target.kind} record {leaf['evidence_id']}")
                )
            elif target.purged_at:
                report.problems.append(
                    Problem(seq, f"inspection claim of evidence {leaf['evidence_id']} after its purge")
                )
            elif leaf["category"] not in INSPECTION_CATEGORIES:
                report.problems.append(Problem(seq, f"inspection claim of a {leaf['category']!r} alert"))
            elif not leaf["ticket_id"] or not leaf["at"]:
                report.problems.append(Problem(seq, "inspection claim does not name its ticket and time"))
            else:
                chain.tickets.add(leaf["ticket_id"])
                report.inspection_claims += 1
        elif kind == "inspection_outcome":
            if leaf["ticket_id"] not in chain.tickets:
                report.problems.append(Problem(seq, f"inspection outcome on unknown ticket {leaf['ticket_id']}"))
            elif leaf["outcome"] not in INSPECTION_OUTCOMES:
                report.problems.append(
                    Problem(seq, f"inspection outcome {leaf['outcome']!r} is not one of {list(INSPECTION_OUTCOMES)}")
                )
            elif not leaf["by"] or not leaf["at"]:
                report.problems.append(Problem(seq, "inspection outcome does not say who found it and when"))
            else:
                report.inspection_outcomes += 1
        elif kind == "purge":
            for eid in leaf["evidence_ids"]:
                target = records.get(eid)
                if target is None:
                    report.problems.append(Problem(seq, f"purge of unknown evidence {eid}"))
                elif target.held:
                    report.problems.append(_violation(seq, f"purge of evidence {eid} while under legal hold"))
                elif target.retain_until > leaf["at"]:
                    report.problems.append(
                        _violation(seq, f"purge of evidence {eid} at {leaf['at']} before its retention "
                                        f"ends ({target.retain_until})")
                    )
                else:
                    target.purged_at = leaf["at"]
        elif kind in TIME_FIELDS:  # a kind of monitor.archive.leaves with no rule here: time (above) and parts
            parts = leaf.get("parts", {})
            if parts:
                records[evidence_id_of(line)] = _RecordState(seq, kind, leaf.get("retain_until", ""), parts)
            for info in parts.values():
                chain.referenced.setdefault(info["sha256"], seq)
        else:
            report.problems.append(Problem(seq, f"unknown entry kind {kind!r}"))
    except (KeyError, TypeError, ArchiveError) as exc:
        report.problems.append(Problem(seq, f"{kind} entry lacks or mangles field {exc}"))


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
