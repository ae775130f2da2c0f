"""C2SP checkpoints, witnesses and consistency proofs: history cannot be rewritten or rolled back unseen."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from monitor.archive import EvidenceArchive, verify_archive
from monitor.archive.export import export_evidence
from monitor.archive.merkle import CompactRange, leaf_hash
from monitor.archive.records import parse_iso
from monitor.archive.signing import Checkpoint, sign_checkpoint, sign_legacy_checkpoint
from monitor.cli import main

from .conftest import Clock, make_alert, make_clip


def add_alerts(data_dir: Path, clock: Clock, numbers: range) -> list[str]:
    with EvidenceArchive.open(data_dir, clock=clock) as archive:
        return [archive.record_alert(make_alert(n), clip=make_clip(0.2, seed=n), clip_start=0.0,
                                     transcript=f"words {n}") for n in numbers]


def checkpoint_text(data_dir: Path, capsys) -> str:
    capsys.readouterr()
    assert main(["archive", "checkpoint", "--data-dir", str(data_dir)]) == 0
    return capsys.readouterr().out


def private_key(data_dir: Path):
    return serialization.load_pem_private_key((data_dir / "keys" / "signing_key.pem").read_bytes(), None)


def test_checkpoint_is_a_c2sp_signed_note(tmp_path: Path, clock: Clock, capsys) -> None:
    add_alerts(tmp_path, clock, range(3))
    text = checkpoint_text(tmp_path, capsys)
    body, blank, signatures = text.partition("\n\n")
    origin, size, root = body.split("\n")
    assert blank and size == "3" and len(base64.b64decode(root)) == 32
    key = private_key(tmp_path).public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    lines = signatures.strip("\n").split("\n")
    assert all(line.startswith(f"\u2014 {origin} ") for line in lines)
    plain = base64.b64decode(lines[0].rsplit(" ", 1)[1])
    assert plain[:4] == hashlib.sha256(origin.encode() + b"\n\x01" + raw).digest()[:4]  # C2SP key hash
    key.verify(plain[4:], (body + "\n").encode())
    stamped = base64.b64decode(lines[1].rsplit(" ", 1)[1])
    timestamp = int.from_bytes(stamped[4:12], "big")
    key.verify(stamped[12:], f"cosignature/v1\ntime {timestamp}\n{body}\n".encode())
    roots = CompactRange()
    for line in (tmp_path / "log" / "records.log").read_bytes().splitlines():
        roots.append(leaf_hash(line))
    assert base64.b64decode(root) == roots.root()


def test_verify_with_witness_accepts_an_extended_log_and_names_a_rollback(
    tmp_path: Path, clock: Clock, capsys
) -> None:
    data_dir = tmp_path / "archive"
    add_alerts(data_dir, clock, range(5))
    early = checkpoint_text(data_dir, capsys)
    rolled_back = tmp_path / "copy"
    shutil.copytree(data_dir, rolled_back)
    add_alerts(data_dir, clock, range(5, 9))
    late = checkpoint_text(data_dir, capsys)
    witness = tmp_path / "saved.notes"
    witness.write_text(early + late)

    assert main(["archive", "verify", "--data-dir", str(data_dir), "--witness", str(witness)]) == 0
    assert "2 witnessed checkpoint(s) extended" in capsys.readouterr().out

    report = verify_archive(rolled_back, witness_path=witness)
    assert [str(p) for p in report.problems] == [
        f"witnessed checkpoint #2 of {witness} (size 9, root {late.split(chr(10))[2]}, "
        f"time {Checkpoint.from_note(late, 'x').time}): the archive's log has 5 records, fewer than the 9 "
        "this checkpoint saw: it was rolled back or truncated"
    ]
    assert verify_archive(rolled_back).ok  # on its own the rolled-back copy looks fine


def rewrite_and_resign(data_dir: Path, edit) -> None:
    """What whoever holds the data dir can do: edit records, re-sign every checkpoint with the key on disk."""
    log = data_dir / "log" / "records.log"
    lines = edit(log.read_bytes().splitlines())
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    key = private_key(data_dir)
    cp_path = data_dir / "log" / "checkpoints.log"
    resigned = []
    for line in cp_path.read_bytes().splitlines():
        old = Checkpoint.from_line(line, "test")
        tree = CompactRange()
        for leaf in lines[: old.size]:
            tree.append(leaf_hash(leaf))
        resigned.append(sign_checkpoint(key, old.size, tree.root(), int(parse_iso(old.time).timestamp())).to_line())
    cp_path.write_bytes(b"".join(line + b"\n" for line in resigned))


def test_history_rewritten_and_resigned_with_the_archive_key_fails_against_a_witness(
    tmp_path: Path, clock: Clock, capsys
) -> None:
    add_alerts(tmp_path, clock, range(6))
    witness = tmp_path / "saved.notes"
    witness.write_text(checkpoint_text(tmp_path, capsys))
    add_alerts(tmp_path, clock, range(6, 8))
    rewrite_and_resign(tmp_path, lambda ls: [ls[0], ls[1].replace(b"absolute_claim", b"false_price"), *ls[2:]])
    assert verify_archive(tmp_path).ok  # self-consistent forgery: the key on disk signed it
    report = verify_archive(tmp_path, witness_path=witness)
    assert not report.ok
    (problem,) = report.problems
    assert str(problem).startswith(f"witnessed checkpoint #1 of {witness} (size 6,")
    assert "not an append-only extension" in str(problem) and "history was rewritten" in str(problem)
    assert main(["archive", "verify", "--data-dir", str(tmp_path), "--witness", str(witness)]) == 1


def test_verify_reports_policy_violations_by_record_even_when_resigned(tmp_path: Path, clock: Clock) -> None:
    ids = add_alerts(tmp_path, clock, range(4))

    def forge(lines: list[bytes]) -> list[bytes]:
        short = json.loads(lines[1])
        short["retain_until"] = "2024-06-01T00:00:00.000000Z"  # 3 months, not 3 years
        back = json.loads(lines[2])
        back["recorded_at"] = "2023-01-01T00:00:00.000000Z"  # before record #1
        purge = {"v": 1, "kind": "purge", "at": "2099-01-01T00:00:00.000000Z",
                 "recorded_at": "2099-01-01T00:00:00.000000Z", "evidence_ids": [ids[0]], "blobs": []}
        encode = lambda leaf: json.dumps(leaf, sort_keys=True, separators=(",", ":"),  # noqa: E731
                                         ensure_ascii=False).encode()
        return [lines[0], encode(short), encode(back), lines[3], encode(purge)]

    rewrite_and_resign(tmp_path, forge)
    with open(tmp_path / "log" / "checkpoints.log", "ab") as handle:  # cover the added purge leaf
        lines = (tmp_path / "log" / "records.log").read_bytes().splitlines()
        tree = CompactRange()
        for line in lines:
            tree.append(leaf_hash(line))
        handle.write(sign_checkpoint(private_key(tmp_path), 5, tree.root(), 1_800_000_000).to_line() + b"\n")
    problems = [str(p) for p in verify_archive(tmp_path).problems]
    assert any(p.startswith("record #1: retain_until 2024-06-01T00:00:00.000000Z is less than 3 years after")
               for p in problems), problems
    assert any(p.startswith("record #2: recorded_at 2023-01-01T00:00:00.000000Z goes back before") for p in problems)
    assert any(p.startswith("record #4: purge dated 2099-01-01T00:00:00.000000Z, after the checkpoint")
               for p in problems), problems


def test_export_carries_a_consistency_proof_and_its_own_checker(tmp_path: Path, clock: Clock, capsys) -> None:
    data_dir = tmp_path / "archive"
    ids = add_alerts(data_dir, clock, range(5))
    saved = tmp_path / "inspector.notes"
    saved.write_text(checkpoint_text(data_dir, capsys))
    (data_dir / "log" / "witnessed.txt").write_text(saved.read_text())  # a witness returned it
    ids += add_alerts(data_dir, clock, range(5, 12))
    out = tmp_path / "export"
    proof = export_evidence(data_dir, ids[2], out)
    assert proof["consistency"]["old_size"] == 5 and proof["consistency"]["new_size"] == 12
    assert (out / "verify_export.py").exists() and (out / "witnessed.note").read_text() == saved.read_text()

    def checker(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-I", "verify_export.py", *extra], cwd=out,
                              capture_output=True, text=True, timeout=60)

    result = checker("--witness", str(saved))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "extends the witnessed checkpoint of size 5" in result.stdout
    other = tmp_path / "other.notes"
    other.write_text(checkpoint_text(data_dir, capsys))
    assert "not one of the checkpoints saved" in checker("--witness", str(other)).stdout

    pristine = (out / "proof.json").read_text()
    forged = json.loads(pristine)
    forged["consistency"]["proof"][0] = "00" * 32
    (out / "proof.json").write_text(json.dumps(forged))
    result = checker()
    assert result.returncode == 1 and "consistency proof from the witnessed checkpoint (size 5)" in result.stdout


def test_archive_written_before_c2sp_checkpoints_still_verifies_and_is_migrated(
    tmp_path: Path, clock: Clock, capsys
) -> None:
    add_alerts(tmp_path, clock, range(3))
    key = private_key(tmp_path)
    cp_path = tmp_path / "log" / "checkpoints.log"
    legacy = [sign_legacy_checkpoint(key, c.size, c.root, c.time).to_line()
              for c in (Checkpoint.from_line(line, "t") for line in cp_path.read_bytes().splitlines())]
    cp_path.write_bytes(b"".join(line + b"\n" for line in legacy))
    assert json.loads(legacy[0])["key_id"]  # the old line format
    assert verify_archive(tmp_path).ok
    assert main(["archive", "checkpoint", "--data-dir", str(tmp_path)]) == 2  # no C2SP checkpoint yet
    EvidenceArchive.open(tmp_path, clock=clock).close()  # the writer re-signs the tree as a C2SP note
    lines = cp_path.read_bytes().splitlines()
    assert len(lines) == 4 and Checkpoint.from_line(lines[-1], "t").size == 3
    assert verify_archive(tmp_path).ok
    assert checkpoint_text(tmp_path, capsys).split("\n")[1] == "3"
