"""``verify`` passes on an untouched archive and names the first bad record after each kind of tampering."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from monitor.archive import EvidenceArchive, verify_archive
from monitor.archive.records import parse_iso
from monitor.archive.signing import Checkpoint, sign_checkpoint
from monitor.cli import main
from monitor.errors import ArchiveIntegrityError


def records_log(data_dir: Path) -> Path:
    return data_dir / "log" / "records.log"


def checkpoints_log(data_dir: Path) -> Path:
    return data_dir / "log" / "checkpoints.log"


def blob_of(data_dir: Path, seq: int, role: str) -> Path:
    leaf = json.loads(records_log(data_dir).read_bytes().splitlines()[seq])
    sha = leaf["parts"][role]["sha256"]
    return data_dir / "blobs" / sha[:2] / sha


def rewrite(path: Path, data: bytes) -> None:
    os.chmod(path, 0o644)
    path.write_bytes(data)


def edit_lines(path: Path, edit) -> None:
    lines = path.read_bytes().splitlines()
    rewrite(path, b"".join(line + b"\n" for line in edit(lines)))


def first_problem(data_dir: Path) -> str:
    report = verify_archive(data_dir)
    assert not report.ok
    return str(report.first_problem)


def test_untouched_archive_verifies_and_cli_exits_0(filled, capsys) -> None:
    data_dir, _ = filled
    report = verify_archive(data_dir)
    assert report.ok, report.problems
    assert (report.records, report.alerts, report.sessions, report.held) == (7, 5, 1, 1)
    assert report.files_checked == 5 * 3 + 1
    assert main(["archive", "verify", "--data-dir", str(data_dir)]) == 0
    assert "OK: 7 records" in capsys.readouterr().out


def test_flipped_byte_in_a_clip_is_named(filled, capsys) -> None:
    data_dir, ids = filled
    path = blob_of(data_dir, 2, "clip")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    rewrite(path, bytes(data))
    assert first_problem(data_dir) == f"record #2: evidence {ids[2]}: stored clip was altered ({path} " \
        f"hashes to {__import__('hashlib').sha256(bytes(data)).hexdigest()})"
    assert main(["archive", "verify", "--data-dir", str(data_dir)]) == 1
    assert f"first bad record: record #2: evidence {ids[2]}" in capsys.readouterr().out


def test_edited_transcript_file_is_named(filled) -> None:
    data_dir, ids = filled
    path = blob_of(data_dir, 3, "transcript")
    rewrite(path, "这款不是全网最低价".encode())
    assert first_problem(data_dir).startswith(f"record #3: evidence {ids[3]}: stored transcript was altered")


def test_edited_record_metadata_breaks_the_chain_at_that_record(filled) -> None:
    data_dir, _ = filled
    edit_lines(records_log(data_dir),
               lambda lines: [*lines[:1], lines[1].replace(b"absolute_claim", b"false_price"), *lines[2:]])
    assert first_problem(data_dir).startswith("record #1: Merkle root after 2 records differs")


def test_deleted_record_is_detected(filled) -> None:
    data_dir, _ = filled
    edit_lines(records_log(data_dir), lambda lines: lines[:2] + lines[3:])
    assert first_problem(data_dir).startswith("record #2: Merkle root after 3 records differs")


def test_reordered_records_are_detected(filled) -> None:
    data_dir, _ = filled
    edit_lines(records_log(data_dir), lambda lines: [lines[0], lines[2], lines[1], *lines[3:]])
    assert first_problem(data_dir).startswith("record #1: Merkle root")


def test_truncated_log_is_detected_and_refused_by_the_writer(filled) -> None:
    data_dir, _ = filled
    edit_lines(records_log(data_dir), lambda lines: lines[:-2])
    assert first_problem(data_dir) == (
        "record #5: the log holds 5 records but a signed checkpoint covers 6: records were removed (log truncated)"
    )
    with pytest.raises(ArchiveIntegrityError, match="the log was truncated"):
        EvidenceArchive.open(data_dir)


def test_added_record_is_detected(filled) -> None:
    data_dir, _ = filled
    edit_lines(records_log(data_dir), lambda lines: [*lines, lines[0].replace(b"r1", b"r9")])
    assert first_problem(data_dir).startswith("record #7: 1 record(s) from #7 on are not covered")


def test_replaced_checkpoint_is_detected(filled) -> None:
    data_dir, _ = filled
    lines = checkpoints_log(data_dir).read_bytes().splitlines()
    forged = json.loads(lines[3])
    origin, size, _root, *rest = forged["note"].split("\n")
    forged["note"] = "\n".join([origin, size, base64.b64encode(b"\0" * 32).decode(), *rest])
    edit_lines(checkpoints_log(data_dir),
               lambda ls: [*ls[:3], json.dumps(forged).encode(), *ls[4:]])
    assert "checkpoint signature is invalid (size 4)" in first_problem(data_dir)


def test_checkpoint_signed_by_another_key_is_detected(filled) -> None:
    data_dir, _ = filled
    lines = checkpoints_log(data_dir).read_bytes().splitlines()
    original = Checkpoint.from_line(lines[-1], "test")
    forged = sign_checkpoint(Ed25519PrivateKey.generate(), original.size, original.root,
                             int(parse_iso(original.time).timestamp()))
    edit_lines(checkpoints_log(data_dir), lambda ls: [*ls[:-1], forged.to_line()])
    assert f"signed by key {forged.key_id}" in first_problem(data_dir)


def test_swapped_public_key_is_caught_with_a_trusted_copy(filled, tmp_path: Path) -> None:
    data_dir, _ = filled
    trusted = tmp_path / "trusted.pem"
    trusted.write_bytes((data_dir / "keys" / "public_key.pem").read_bytes())
    rogue = Ed25519PrivateKey.generate()
    lines = checkpoints_log(data_dir).read_bytes().splitlines()
    resigned = []
    for line in lines:
        c = Checkpoint.from_line(line, "test")
        resigned.append(sign_checkpoint(rogue, c.size, c.root, int(parse_iso(c.time).timestamp())).to_line())
    edit_lines(checkpoints_log(data_dir), lambda _: resigned)
    from monitor.archive.signing import public_pem

    rewrite(data_dir / "keys" / "public_key.pem", public_pem(rogue.public_key()))
    assert verify_archive(data_dir).ok  # self-consistent forgery ...
    assert not verify_archive(data_dir, public_key_path=trusted).ok  # ... caught by the published key


def test_deleted_and_added_stored_files_are_detected(filled) -> None:
    data_dir, ids = filled
    blob_of(data_dir, 4, "alert").unlink()
    assert first_problem(data_dir).startswith(f"record #4: evidence {ids[4]}: stored alert is missing")
    intruder = data_dir / "blobs" / "ab" / ("ab" + "0" * 62)
    intruder.write_bytes(b"planted")
    report = verify_archive(data_dir)
    assert any("stored file that no record references" in str(p) and str(intruder) in str(p)
               for p in report.problems)
