"""``monitor archive verify|checkpoint|export|purge|hold|decisions export|list`` (PROTOCOL.md).

Every sub-command takes ``--data-dir D`` (default: ``MONITOR_DATA_DIR``).
``verify`` and ``export`` only read, so they run next to a live server;
``purge`` and ``hold`` write and need the archive not to be open by another
process. Exit status: 0 success, 1 verification failed, 2 error (from monitor.cli).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from monitor.archive.archive import EvidenceArchive
from monitor.archive.decisions import export_decisions
from monitor.archive.export import export_evidence
from monitor.archive.index import EvidenceIndex
from monitor.archive.layout import ArchiveLayout
from monitor.archive.records import iso_utc, parse_iso
from monitor.archive.verify import verify_archive
from monitor.archive.witness import latest_checkpoint_text
from monitor.config import load_settings
from monitor.errors import ArchiveError

MAX_PROBLEMS_SHOWN = 20


def register(subparsers: Any) -> None:
    """Add the ``archive`` command and its sub-commands to the ``monitor`` parser."""
    archive = subparsers.add_parser("archive", help="evidence archive: verify, export, purge, hold, decisions, list")
    commands = archive.add_subparsers(dest="archive_command", required=True)

    verify = commands.add_parser("verify", help="check the hash chain, every signature and every stored file")
    _data_dir(verify)
    verify.add_argument("--public-key", type=Path, help="a trusted copy of public_key.pem to verify against")
    verify.add_argument("--witness", type=Path,
                        help="checkpoints saved earlier (C2SP notes): the log must extend every one")
    verify.add_argument("--json", action="store_true", help="print the report as one JSON object")
    verify.set_defaults(run=_run_verify)

    checkpoint = commands.add_parser("checkpoint", help="print the latest signed checkpoint (C2SP signed note)")
    _data_dir(checkpoint)
    checkpoint.set_defaults(run=_run_checkpoint)

    export = commands.add_parser("export", help="write one record and its proof for an inspector")
    export.add_argument("evidence_id")
    export.add_argument("--out", type=Path, required=True, help="directory to write (created)")
    export.add_argument("--witness", type=Path,
                        help="witnessed checkpoints (default: log/witnessed.txt): prove consistency with the newest")
    _data_dir(export)
    export.set_defaults(run=_run_export)

    purge = commands.add_parser("purge", help="delete the content of records past retention and not held")
    _data_dir(purge)
    purge.add_argument("--now", help="ISO-8601 cut-off time (default: now; may not lie in the future)")
    purge.add_argument("evidence_ids", nargs="*", help="purge exactly these (refused if any must be kept)")
    purge.set_defaults(run=_run_purge)

    hold = commands.add_parser("hold", help="place or release a legal hold on one record")
    hold.add_argument("evidence_id")
    hold.add_argument("--release", action="store_true", help="lift the hold instead")
    hold.add_argument("--reason", help="case number or note stored in the log")
    _data_dir(hold)
    hold.set_defaults(run=_run_hold)

    decisions = commands.add_parser("decisions", help="moderators' decisions: export as labeled JSONL")
    decision_commands = decisions.add_subparsers(dest="decisions_command", required=True)
    decisions_export = decision_commands.add_parser(
        "export", help="confirmed and dismissed alerts as labeled JSONL (training data)"
    )
    decisions_export.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    _data_dir(decisions_export)
    decisions_export.set_defaults(run=_run_decisions_export)

    listing = commands.add_parser("list", help="look records up by room, anchor, category and time")
    _data_dir(listing)
    listing.add_argument("--room")
    listing.add_argument("--anchor")
    listing.add_argument("--category")
    listing.add_argument("--kind", choices=["alert", "session", "report"])
    listing.add_argument("--since", help="ISO-8601, inclusive")
    listing.add_argument("--until", help="ISO-8601, exclusive")
    listing.add_argument("--limit", type=int, default=1000)
    listing.set_defaults(run=_run_list)


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="archive directory (default: MONITOR_DATA_DIR)")


def _resolve(args: argparse.Namespace) -> tuple[Path, int]:
    settings = load_settings()
    return (args.data_dir or settings.data_dir), settings.archive_retention_years


def _open_for_writing(args: argparse.Namespace) -> EvidenceArchive:
    data_dir, years = _resolve(args)
    return EvidenceArchive.open(data_dir, retention_years=years, signing_key=load_settings().signing_key)


def _run_verify(args: argparse.Namespace) -> int:
    data_dir, _ = _resolve(args)
    report = verify_archive(data_dir, public_key_path=args.public_key, witness_path=args.witness)
    if args.json:
        print(json.dumps({**report.summary(), "notes": report.notes,
                          "problem_list": [str(p) for p in report.problems]}, ensure_ascii=False))
        return 0 if report.ok else 1
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    summary = (
        f"{report.records} records ({report.alerts} alerts, {report.sessions} sessions, "
        f"{report.decisions} decisions, {report.reports} viewer reports, "
        f"{report.inspection_claims} inspection claims, {report.inspection_outcomes} inspection outcomes, "
        f"{report.purged} purged, {report.held} held), "
        f"{report.checkpoints} checkpoints, "
        + (f"{report.witnessed} witnessed checkpoint(s) extended, " if args.witness else "")
        + f"{report.files_checked} files / {report.bytes_hashed / 1e6:.1f} MB hashed in {report.seconds:.2f} s"
    )
    if report.ok:
        print(f"archive {data_dir}: OK: {summary}")
        return 0
    print(f"archive {data_dir}: FAILED: first bad record: {report.first_problem}")
    for problem in sorted(report.problems, key=lambda p: (p.seq, p.policy))[:MAX_PROBLEMS_SHOWN]:
        print(f"  {problem}")
    if len(report.problems) > MAX_PROBLEMS_SHOWN:
        print(f"  ... and {len(report.problems) - MAX_PROBLEMS_SHOWN} more")
    print(f"checked: {summary}")
    return 1


def _run_checkpoint(args: argparse.Namespace) -> int:
    data_dir, _ = _resolve(args)
    sys.stdout.write(latest_checkpoint_text(data_dir))
    return 0


def _run_export(args: argparse.Namespace) -> int:
    data_dir, _ = _resolve(args)
    proof = export_evidence(data_dir, args.evidence_id, args.out, witness_path=args.witness)
    print(f"exported evidence {args.evidence_id} (record #{proof['leaf_index']} of {proof['tree_size']}) "
          f"to {args.out}")
    if proof["purged"]:
        print(f"its content was purged at {proof['purged']['at']}; record and proof only")
    if proof["consistency"]:
        print(f"with a consistency proof from the witnessed checkpoint of size {proof['consistency']['old_size']}")
    print(f"check it with: python3 {args.out / 'verify_export.py'}")
    return 0


def _run_purge(args: argparse.Namespace) -> int:
    now = parse_iso(args.now) if args.now else None
    with _open_for_writing(args) as archive:
        result = archive.purge(now=now, evidence_ids=args.evidence_ids or None)
    print(f"purged {len(result.evidence_ids)} record(s), {len(result.blobs)} file(s), "
          f"{result.bytes_freed} bytes freed")
    return 0


def _run_hold(args: argparse.Namespace) -> int:
    with _open_for_writing(args) as archive:
        archive.hold(args.evidence_id, reason=args.reason, release=args.release)
    print(f"{'released the hold on' if args.release else 'placed a legal hold on'} {args.evidence_id}")
    return 0


def _run_decisions_export(args: argparse.Namespace) -> int:
    data_dir, _ = _resolve(args)
    counts = export_decisions(data_dir, args.out)
    print(f"wrote {sum(counts.values())} labeled alert(s) to {args.out}: "
          + ", ".join(f"{n} {label}" for label, n in counts.items()))
    return 0


def _run_list(args: argparse.Namespace) -> int:
    data_dir, _ = _resolve(args)
    layout = ArchiveLayout(data_dir)
    if not layout.index.exists():
        raise ArchiveError(f"no archive index at {layout.index}")
    index = EvidenceIndex(layout.index, read_only=True)
    try:
        rows = index.find(
            room_id=args.room, anchor_id=args.anchor, category=args.category, kind=args.kind,
            since=args.since and iso_utc(parse_iso(args.since)),
            until=args.until and iso_utc(parse_iso(args.until)),
            limit=args.limit,
        )
    finally:
        index.close()
    for row in rows:
        print(json.dumps(asdict(row), ensure_ascii=False))
    return 0
