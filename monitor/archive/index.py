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
CREATE INDEX IF NOT EXISTS evidence_alert ON evidence (alert_id);
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
CREATE TABLE IF NOT EXISTS reports (
    evidence_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    room_id TEXT NOT NULL,
    anchor_id TEXT,
    session_id TEXT,
    stream_time REAL,
    placed TEXT NOT NULL,
    category TEXT,
    reported_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_room ON reports (room_id, seq);
CREATE INDEX IF NOT EXISTS reports_session ON reports (session_id, stream_time);
CREATE TABLE IF NOT EXISTS inspections (
    ticket_id TEXT PRIMARY KEY,
    opened_seq INTEGER NOT NULL,
    room_id TEXT,
    anchor_id TEXT,
    session_id TEXT,
    product TEXT,
    room_category TEXT,
    opened_at TEXT NOT NULL,
    outcome TEXT,
    outcome_at TEXT
);
CREATE INDEX IF NOT EXISTS inspections_open ON inspections (session_id, product, outcome);
CREATE TABLE IF NOT EXISTS inspection_claims (
    seq INTEGER PRIMARY KEY,
    ticket_id TEXT NOT NULL,
    evidence_id TEXT NOT NULL,
    leaf TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inspection_claims_ticket ON inspection_claims (ticket_id, seq);
CREATE TABLE IF NOT EXISTS inspection_outcomes (
    seq INTEGER PRIMARY KEY,
    ticket_id TEXT NOT NULL,
    leaf TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inspection_outcomes_ticket ON inspection_outcomes (ticket_id, seq);
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
        if kind in ("alert", "session", "report"):
            event_text = leaf.get({"alert": "emitted_at", "session": "started_at", "report": "reported_at"}[kind])
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
            if kind == "report":
                db.execute(
                    "INSERT OR REPLACE INTO reports (evidence_id, seq, room_id, anchor_id, session_id, stream_time, "
                    "placed, category, reported_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (evidence_id, seq, leaf["room_id"], leaf.get("anchor_id"), leaf.get("session_id"),
                     leaf.get("stream_time"), leaf["placed"], leaf.get("category"), leaf["reported_at"],
                     leaf["recorded_at"]),
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
        elif kind == "inspection_claim":
            db.execute(
                "INSERT OR IGNORE INTO inspections (ticket_id, opened_seq, room_id, anchor_id, session_id, product, "
                "room_category, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (leaf["ticket_id"], seq, leaf.get("room_id"), leaf.get("anchor_id"), leaf.get("session_id"),
                 leaf.get("product"), leaf.get("room_category"), leaf["at"]),
            )
            db.execute(
                "INSERT OR REPLACE INTO inspection_claims (seq, ticket_id, evidence_id, leaf) VALUES (?, ?, ?, ?)",
                (seq, leaf["ticket_id"], leaf["evidence_id"], json.dumps(leaf, ensure_ascii=False)),
            )
        elif kind == "inspection_outcome":
            db.execute(
                "INSERT OR REPLACE INTO inspection_outcomes (seq, ticket_id, leaf) VALUES (?, ?, ?)",
                (seq, leaf["ticket_id"], json.dumps(leaf, ensure_ascii=False)),
            )
            db.execute(
                "UPDATE inspections SET outcome = ?, outcome_at = ? WHERE ticket_id = ?",
                (leaf["outcome"], leaf["at"], leaf["ticket_id"]),
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
                "BEGIN; DELETE FROM evidence; DELETE FROM parts; DELETE FROM decisions; DELETE FROM reports; "
                "DELETE FROM inspections; DELETE FROM inspection_claims; DELETE FROM inspection_outcomes; "
                "DELETE FROM meta; COMMIT;"
            )
        except sqlite3.Error as exc:
            raise ArchiveWriteError(f"cannot reset the archive index {self.path}: {exc}") from exc

    def get(self, evidence_id: str) -> EvidenceSummary | None:
        """The record with this evidence id, or None."""
        rows = self._query(f"SELECT {_SUMMARY_COLUMNS} FROM evidence WHERE evidence_id = ?", (evidence_id,))
        return _summary(rows[0]) if rows else None

    def evidence_of(self, *, kind: str, alert_id: str | None = None, session_id: str | None = None) -> str | None:
        """The evidence id of the ``kind`` record of this alert or session, if archived (the
        cluster's archiver uses it to make a replayed write a no-op)."""
        column, value = ("alert_id", alert_id) if alert_id is not None else ("session_id", session_id)
        rows = self._query(
            f"SELECT evidence_id FROM evidence WHERE kind = ? AND {column} = ? LIMIT 1", (kind, value)
        )
        return str(rows[0][0]) if rows else None

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
        alerts, and the decisions in force (confirmed, dismissed, sent to inspection); viewer
        reports (by ``reported_at``); inspection tickets (by when they opened) and their outcome
        in force (``inspections_consistent``, ``inspections_inconsistent``; else still open).

        Rows ``{"anchor_id", "bucket", "alerts", "confirmed", "dismissed", "inspected", "reports",
        "inspections", "inspections_consistent", "inspections_inconsistent"}``, ordered by anchor
        then bucket; records without an anchor are grouped under ``None``.
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
        found: dict[tuple[str | None, str], dict[str, Any]] = {}

        def row(anchor: str | None, b: str) -> dict[str, Any]:
            return found.setdefault((anchor, b), {
                "anchor_id": anchor, "bucket": b, "alerts": 0, "confirmed": 0, "dismissed": 0, "inspected": 0,
                "reports": 0, "inspections": 0, "inspections_consistent": 0, "inspections_inconsistent": 0,
            })

        for anchor, b, n, c, d, i in rows:
            row(anchor, b).update(alerts=n, confirmed=c or 0, dismissed=d or 0, inspected=i or 0)
        reports = self._query(
            f"SELECT e.anchor_id, substr(e.event_time, 1, {width}) AS b, count(*) FROM evidence e "
            f"WHERE e.kind = 'report' {where} GROUP BY e.anchor_id, b",
            (since,) if since else (),
        )
        for anchor, b, n in reports:
            row(anchor, b)["reports"] = n
        opened_since = "WHERE opened_at >= ?" if since else ""
        tickets = self._query(
            f"SELECT anchor_id, substr(opened_at, 1, {width}) AS b, count(*), sum(outcome = 'consistent'), "
            f"sum(outcome = 'inconsistent') FROM inspections {opened_since} GROUP BY anchor_id, b",
            (since,) if since else (),
        )
        for anchor, b, n, consistent, inconsistent in tickets:
            row(anchor, b).update(inspections=n, inspections_consistent=consistent or 0,
                                  inspections_inconsistent=inconsistent or 0)
        return sorted(found.values(), key=lambda r: (r["anchor_id"] is not None, r["anchor_id"] or "", r["bucket"]))

    # -- viewer reports ----------------------------------------------------------------------------
    def reports(
        self, *, room_id: str | None = None, session_id: str | None = None, sessionless: bool = False,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Viewer reports, newest first: ``{"report_id", "room_id", "anchor_id", "session_id",
        "stream_time", "placed", "category", "reported_at", "recorded_at", "purged_at"}``.

        ``sessionless`` keeps only reports not placed in any session (``session_id`` null)."""
        clauses: list[str] = []
        params: list[Any] = []
        if room_id is not None:
            clauses.append("r.room_id = ?")
            params.append(room_id)
        if session_id is not None:
            clauses.append("r.session_id = ?")
            params.append(session_id)
        if sessionless:
            clauses.append("r.session_id IS NULL")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            "SELECT r.evidence_id, r.room_id, r.anchor_id, r.session_id, r.stream_time, r.placed, r.category, "
            "r.reported_at, r.recorded_at, e.purged_at FROM reports r JOIN evidence e ON e.evidence_id = "
            f"r.evidence_id {where} ORDER BY r.seq DESC LIMIT ?",
            (*params, limit),
        )
        keys = ("report_id", "room_id", "anchor_id", "session_id", "stream_time", "placed", "category",
                "reported_at", "recorded_at", "purged_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def latest_sessions(self, room_id: str, limit: int) -> list[EvidenceSummary]:
        """The room's last ``limit`` session records, oldest first."""
        rows = self._query(
            f"SELECT {_SUMMARY_COLUMNS} FROM evidence WHERE kind = 'session' AND room_id = ? "
            "ORDER BY event_time DESC, seq DESC LIMIT ?",
            (room_id, limit),
        )
        return [_summary(row) for row in reversed(rows)]

    def session_record(self, session_id: str) -> EvidenceSummary | None:
        """The session record of ``session_id`` (a room session's id), or None."""
        rows = self._query(
            f"SELECT {_SUMMARY_COLUMNS} FROM evidence WHERE kind = 'session' AND session_id = ? "
            "ORDER BY seq DESC LIMIT 1",
            (session_id,),
        )
        return _summary(rows[0]) if rows else None

    def session_alerts(self, session_record_id: str) -> list[EvidenceSummary]:
        """The alert records a session record covers (those of its session), oldest first."""
        rows = self._query(
            f"SELECT {_SUMMARY_COLUMNS} FROM evidence WHERE kind = 'alert' AND covered_by = ? ORDER BY seq",
            (session_record_id,),
        )
        return [_summary(row) for row in rows]

    # -- inspection tickets --------------------------------------------------------------------
    def open_ticket(self, session_id: str | None, product: str | None) -> str | None:
        """The open ticket (no outcome yet) of ``product`` in room session ``session_id``, or None."""
        rows = self._query(
            "SELECT ticket_id FROM inspections WHERE session_id IS ? AND product IS ? AND outcome IS NULL "
            "ORDER BY opened_seq DESC LIMIT 1",
            (session_id, product),
        )
        return rows[0][0] if rows else None

    def tickets(self, *, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Inspection tickets, newest first, with their claim count: ``status`` ``open`` (no outcome)
        or ``closed`` (an outcome recorded), ``None`` for both."""
        where = {"open": "WHERE i.outcome IS NULL", "closed": "WHERE i.outcome IS NOT NULL", None: ""}.get(status)
        if where is None:
            raise ArchiveError(f"status {status!r} is not 'open' or 'closed'")
        rows = self._query(
            "SELECT i.ticket_id, i.room_id, i.anchor_id, i.session_id, i.product, i.room_category, i.opened_at, "
            "i.outcome, i.outcome_at, (SELECT count(*) FROM inspection_claims c WHERE c.ticket_id = i.ticket_id) "
            f"FROM inspections i {where} ORDER BY i.opened_seq DESC LIMIT ?",
            (limit,),
        )
        keys = ("ticket_id", "room_id", "anchor_id", "session_id", "product", "room_category", "opened_at",
                "outcome", "outcome_at", "claims")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def ticket(self, ticket_id: str) -> dict[str, Any] | None:
        """One ticket with every claim leaf and outcome leaf (oldest first), or None."""
        rows = self._query(
            "SELECT ticket_id, room_id, anchor_id, session_id, product, room_category, opened_at, outcome, "
            "outcome_at FROM inspections WHERE ticket_id = ?",
            (ticket_id,),
        )
        if not rows:
            return None
        keys = ("ticket_id", "room_id", "anchor_id", "session_id", "product", "room_category", "opened_at",
                "outcome", "outcome_at")
        found = dict(zip(keys, rows[0], strict=True))
        claims = self._query("SELECT leaf FROM inspection_claims WHERE ticket_id = ? ORDER BY seq", (ticket_id,))
        outcomes = self._query("SELECT leaf FROM inspection_outcomes WHERE ticket_id = ? ORDER BY seq", (ticket_id,))
        found["claims"] = [json.loads(leaf) for (leaf,) in claims]
        found["outcomes"] = [
            {**json.loads(leaf), "outcome_id": evidence_id_of(canonical_json(json.loads(leaf)))} for (leaf,) in outcomes
        ]
        return found


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
