"""SQLite look-up index of the archive (by room, anchor, time, category).

The index is derived data: every row comes from applying log leaves in order with
:meth:`EvidenceIndex.apply_many`, and ``meta.applied`` counts the leaves applied (a
batch that does not start exactly there is refused, so a failed write can never be
skipped over). The archive replays whatever the log has beyond it after every commit
and on open, and rebuilds the file from the log when it is ahead of the log, fails
``PRAGMA quick_check`` or raises any SQLite error. Every SQLite error surfaces as
:class:`ArchiveError`. It runs in WAL mode with
``synchronous=FULL``, so a committed row survives power loss.

Times are stored as UTC ISO-8601 strings of one fixed format, so they compare as
text.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.archive.leaves import TIME_FIELDS
from monitor.archive.records import canonical_json, evidence_id_of, iso_utc, parse_iso
from monitor.errors import ArchiveError, ArchiveWriteError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evidence (
    seq INTEGER PRIMARY KEY,
    evidence_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    room_id TEXT,
    anchor_id TEXT,
    category TEXT,
    severity TEXT,
    alert_id TEXT,
    session_id TEXT,
    event_time TEXT,
    recorded_at TEXT NOT NULL,
    retain_until TEXT NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,
    covered_by TEXT,
    purged_at TEXT
);
CREATE TABLE IF NOT EXISTS parts (
    evidence_id TEXT NOT NULL,
    role TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (evidence_id, role)
);
CREATE INDEX IF NOT EXISTS evidence_room ON evidence (room_id, event_time);
CREATE INDEX IF NOT EXISTS evidence_anchor ON evidence (anchor_id, event_time);
CREATE INDEX IF NOT EXISTS evidence_category ON evidence (category, event_time);
CREATE INDEX IF NOT EXISTS evidence_time ON evidence (event_time);
CREATE INDEX IF NOT EXISTS evidence_retention ON evidence (purged_at, retain_until);
CREATE INDEX IF NOT EXISTS parts_sha ON parts (sha256);
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY,
    evidence_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT,
    decided_by TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    leaf TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_evidence ON decisions (evidence_id, seq);
"""


@dataclass(frozen=True)
class EvidenceSummary:
    """One row of the index: an alert or session record and its current state."""

    seq: int
    evidence_id: str
    kind: str
    room_id: str | None
    anchor_id: str | None
    category: str | None
    severity: str | None
    alert_id: str | None
    session_id: str | None
    event_time: str | None
    recorded_at: str
    retain_until: str
    held: bool
    purged_at: str | None


_SUMMARY_COLUMNS = (
    "seq, evidence_id, kind, room_id, anchor_id, category, severity, alert_id, session_id, "
    "event_time, recorded_at, retain_until, held, purged_at"
)


def _summary(row: tuple[Any, ...]) -> EvidenceSummary:
    values = list(row)
    values[12] = bool(values[12])
    return EvidenceSummary(*values)


class EvidenceIndex:
    """The index database; call only while holding the archive's writer lock (or read-only)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        try:
            if read_only:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            else:
                self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            with contextlib.suppress(Exception):
                self._db.close()
            raise ArchiveError(f"cannot open the archive index {path}: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise ArchiveError(f"the archive index {self.path} failed: {exc}") from exc

    def check(self) -> None:
        """``PRAGMA quick_check``; ArchiveError saying what SQLite found when it is not ``ok``."""
        rows = self._query("PRAGMA quick_check")
        if [tuple(row) for row in rows] != [("ok",)]:
            found = "; ".join(str(row[0]) for row in rows[:3])
            raise ArchiveError(f"the archive index {self.path} is damaged: {found}")

    def applied(self) -> int:
        """How many log leaves the index reflects."""
        rows = self._query("SELECT value FROM meta WHERE key = 'applied'")
        return int(rows[0][0]) if rows else 0

    def apply(self, seq: int, leaf: dict[str, Any], evidence_id: str | None) -> None:
        """Apply log leaf number ``seq`` (which must be the next one) in one durable transaction."""
        self.apply_many(seq, [(leaf, evidence_id)])

    def apply_many(self, first_seq: int, leaves: list[tuple[dict[str, Any], str | None]]) -> None:
        """Apply consecutive leaves from ``first_seq`` in one durable transaction.

        Raises ArchiveWriteError when SQLite fails and ArchiveError when ``first_seq`` is
        not the next leaf the index lacks (the caller replays from :meth:`applied`).
        """
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT value FROM meta WHERE key = 'applied'").fetchone()
                applied = int(row[0]) if row else 0
                if applied != first_seq:
                    raise ArchiveError(
                        f"the archive index {self.path} holds {applied} leaves; leaf #{first_seq} cannot follow"
                    )
                for offset, (leaf, evidence_id) in enumerate(leaves):
                    try:
                        self._apply(first_seq + offset, leaf, evidence_id)
                    except (KeyError, TypeError, ValueError) as exc:
                        raise ArchiveError(f"log leaf #{first_seq + offset} lacks or mangles {exc}") from exc
                self._db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('applied', ?)",
                    (str(first_seq + len(leaves)),),
                )
                self._db.execute("COMMIT")
            except BaseException:
                # SQLite rolls some failures (SQLITE_FULL, I/O errors) back itself; keep the first error.
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise ArchiveWriteError(f"cannot update the archive index {self.path}: {exc}") from exc

    def _apply(self, seq: int, leaf: dict[str, Any], evidence_id: str | None) -> None:
        kind = leaf["kind"]
        db = self._db
        if kind in ("alert", "session"):
            event_text = leaf.get("emitted_at") if kind == "alert" else leaf.get("started_at")
            event_time = iso_utc(parse_iso(event_text)) if event_text else None
            db.execute(
                "INSERT OR REPLACE INTO evidence (seq, evidence_id, kind, room_id, anchor_id, category, "
                "severity, alert_id, session_id, event_time, recorded_at, retain_until) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq, evidence_id, kind, leaf.get("room_id"), leaf.get("anchor_id"), leaf.get("category"),
                    leaf.get("severity"), leaf.get("alert_id"), leaf.get("session_id"), event_time,
                    leaf["recorded_at"], leaf["retain_until"],
                ),
            )
            for role, info in leaf.get("parts", {}).items():
                db.execute(
                    "INSERT OR REPLACE INTO parts (evidence_id, role, sha256, size, type) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (evidence_id, role, info["sha256"], info["size"], info["type"]),
                )
            for covered in leaf.get("covers", []):
                db.execute(
                    "UPDATE evidence SET covered_by = ?, retain_until = max(retain_until, ?) "
                    "WHERE evidence_id = ?",
                    (evidence_id, leaf["retain_until"], covered),
                )
        elif kind in ("hold", "release"):
            db.execute(
                "UPDATE evidence SET held = ? WHERE evidence_id = ?",
                (1 if kind == "hold" else 0, leaf["evidence_id"]),
            )
        elif kind == "decision":
            db.execute(
                "INSERT OR REPLACE INTO decisions (seq, evidence_id, decision, reason, decided_by, decided_at, "
                "leaf) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (seq, leaf["evidence_id"], leaf["decision"], leaf.get("reason"), leaf["by"], leaf["at"],
                 json.dumps(leaf, ensure_ascii=False)),
            )
        elif kind == "purge":
            db.executemany(
                "UPDATE evidence SET purged_at = ? WHERE evidence_id = ?",
                [(leaf["at"], eid) for eid in leaf["evidence_ids"]],
            )
        elif kind not in TIME_FIELDS:  # a kind of monitor.archive.leaves the index has no rows for passes
            raise ArchiveError(f"log leaf #{seq} has unknown kind {kind!r}")

    def reset(self) -> None:
        """Forget every row (before a rebuild from the log)."""
        try:
            self._db.executescript(
                "BEGIN; DELETE FROM evidence; DELETE FROM parts; DELETE FROM decisions; DELETE FROM meta; COMMIT;"
            )
        except sqlite3.Error as exc:
            raise ArchiveWriteError(f"cannot reset the archive index {self.path}: {exc}") from exc

    def get(self, evidence_id: str) -> EvidenceSummary | None:
        """The record with this evidence id, or None."""
        rows = self._query(f"SELECT {_SUMMARY_COLUMNS} FROM evidence WHERE evidence_id = ?", (evidence_id,))
        return _summary(rows[0]) if rows else None

    def parts(self, evidence_id: str) -> dict[str, dict[str, Any]]:
        """The stored parts of a record: role -> {sha256, size, type}."""
        rows = self._query(
            "SELECT role, sha256, size, type FROM parts WHERE evidence_id = ?", (evidence_id,)
        )
        return {role: {"sha256": sha, "size": size, "type": kind} for role, sha, size, kind in rows}

    def find(
        self,
        *,
        room_id: str | None = None,
        anchor_id: str | None = None,
        category: str | None = None,
        kind: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 1000,
    ) -> list[EvidenceSummary]:
        """Records matching every given filter, oldest event first; times are UTC ISO strings."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("room_id", room_id), ("anchor_id", anchor_id), ("category", category),
                              ("kind", kind)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("event_time >= ?")
            params.append(since)
        if until is not None:
            clauses.append("event_time < ?")
            params.append(until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            f"SELECT {_SUMMARY_COLUMNS} FROM evidence {where} ORDER BY event_time, seq LIMIT ?",
            (*params, limit),
        )
        return [_summary(row) for row in rows]

    def uncovered_alerts(self, room_id: str, since: str) -> list[str]:
        """Alert evidence ids of ``room_id`` recorded at or after ``since`` and not yet in a session."""
        rows = self._query(
            "SELECT evidence_id FROM evidence WHERE kind = 'alert' AND room_id = ? AND recorded_at >= ? "
            "AND covered_by IS NULL ORDER BY seq",
            (room_id, since),
        )
        return [row[0] for row in rows]

    def expired(self, now: str) -> list[str]:
        """Evidence ids past retention, not held and not yet purged."""
        rows = self._query(
            "SELECT evidence_id FROM evidence WHERE purged_at IS NULL AND held = 0 AND retain_until <= ? "
            "ORDER BY seq",
            (now,),
        )
        return [row[0] for row in rows]

    def live_blobs(self) -> set[str]:
        """SHA-256 of every part of a record that is not purged."""
        rows = self._query(
            "SELECT DISTINCT p.sha256 FROM parts p JOIN evidence e ON e.evidence_id = p.evidence_id "
            "WHERE e.purged_at IS NULL"
        )
        return {row[0] for row in rows}

    def blob_users(self, sha256: str) -> list[tuple[str, str | None]]:
        """(evidence id, purged_at) of every record with a part named ``sha256``."""
        rows = self._query(
            "SELECT e.evidence_id, e.purged_at FROM parts p JOIN evidence e ON e.evidence_id = p.evidence_id "
            "WHERE p.sha256 = ?",
            (sha256,),
        )
        return [(row[0], row[1]) for row in rows]


    def decisions(self, evidence_id: str) -> list[dict[str, Any]]:
        """Every decision leaf on one record, oldest first, each with its log ``seq``."""
        rows = self._query(
            "SELECT seq, leaf FROM decisions WHERE evidence_id = ? ORDER BY seq", (evidence_id,)
        )
        return [_decision(seq, leaf) for seq, leaf in rows]

    def latest_decisions(self, decisions: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """The decision in force on each decided record (the last one), oldest first.

        ``decisions`` keeps only records whose decision in force is one of these.
        """
        rows = self._query(
            "SELECT d.seq, d.leaf FROM decisions d JOIN (SELECT evidence_id, max(seq) AS last FROM decisions "
            "GROUP BY evidence_id) l ON d.seq = l.last ORDER BY d.seq"
        )
        found = [_decision(seq, leaf) for seq, leaf in rows]
        return [d for d in found if decisions is None or d["decision"] in decisions]

    def anchor_record(self, *, bucket: str = "day", since: str | None = None) -> list[dict[str, Any]]:
        """Per anchor and time bucket (``day`` or ``hour`` of the alert's UTC ``emitted_at``):
        alerts, and the decisions in force (confirmed, dismissed, sent to inspection).

        Rows ``{"anchor_id", "bucket", "alerts", "confirmed", "dismissed", "inspected"}``,
        ordered by anchor then bucket; alerts without an anchor are grouped under ``None``.
        """
        width = {"day": 10, "hour": 13}.get(bucket)
        if width is None:
            raise ArchiveError(f"bucket {bucket!r} is not 'day' or 'hour'")
        where = "AND e.event_time >= ?" if since else ""
        rows = self._query(
            f"SELECT e.anchor_id, substr(e.event_time, 1, {width}) AS b, count(*), "
            "sum(d.decision = 'confirm'), sum(d.decision = 'dismiss'), sum(d.decision = 'inspect') "
            "FROM evidence e LEFT JOIN (SELECT x.evidence_id, x.decision FROM decisions x JOIN "
            "(SELECT evidence_id, max(seq) AS last FROM decisions GROUP BY evidence_id) l ON x.seq = l.last) d "
            f"ON d.evidence_id = e.evidence_id WHERE e.kind = 'alert' {where} "
            "GROUP BY e.anchor_id, b ORDER BY e.anchor_id, b",
            (since,) if since else (),
        )
        return [
            {"anchor_id": anchor, "bucket": b, "alerts": n, "confirmed": c or 0, "dismissed": d or 0,
             "inspected": i or 0}
            for anchor, b, n, c, d, i in rows
        ]


def _decision(seq: int, stored: str) -> dict[str, Any]:
    """A decision leaf from the index with its log ``seq`` and ``decision_id`` (hash of the leaf bytes)."""
    leaf = json.loads(stored)
    return {**leaf, "decision_id": evidence_id_of(canonical_json(leaf)), "seq": seq}


def leaf_json(line: bytes, where: str) -> dict[str, Any]:
    """Parse one log line; raises ArchiveError naming ``where`` when it is not a JSON object."""
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise ArchiveError(f"{where}: not valid JSON: {exc}") from exc
    if not isinstance(value, dict) or "kind" not in value:
        raise ArchiveError(f"{where}: not a log leaf (JSON object with a 'kind')")
    return value
