"""``monitor archive export`` round trip, checked by the standalone scripts/verify_export.py."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from monitor.archive import EvidenceArchive
from monitor.cli import main

from .conftest import Clock, make_alert, make_clip

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "monitor" / "archive" / "verify_export.py"


def run_checker(export_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    # -I: isolated mode, so the checker cannot pick the monitor package up from the working directory.
    return subprocess.run([sys.executable, "-I", str(SCRIPT), str(export_dir), *extra],
                          capture_output=True, text=True, timeout=60, cwd=export_dir)


def test_checker_uses_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module}
    assert roots <= {"__future__", "argparse", "base64", "datetime", "hashlib", "json", "sys", "pathlib", "typing",
                     "cryptography"}


def test_export_round_trip_is_verified_by_the_independent_script(filled, tmp_path: Path, capsys) -> None:
    data_dir, ids = filled
    out = tmp_path / "export"
    assert main(["archive", "export", ids[2], "--out", str(out), "--data-dir", str(data_dir)]) == 0
    assert f"exported evidence {ids[2]} (record #2 of 7)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "SHA256SUMS", "alert.json", "checkpoint.note", "checkpoint.sig", "checkpoint.txt", "clip.flac",
        "proof.json", "public_key.pem", "record.json", "transcript.txt", "verify_export.py",
    ]
    alert = json.loads((out / "alert.json").read_bytes())
    assert alert["room_id"] == "r1" and alert["matched"] == "全网最低价"

    result = run_checker(out, "--public-key", str(data_dir / "keys" / "public_key.pem"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"OK: evidence {ids[2]} is record #2 of a signed log of 7 records" in result.stdout

    sums = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    assert sums.returncode == 0 and "clip.flac: OK" in sums.stdout
    if shutil.which("openssl"):
        sig = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "public_key.pem", "-rawin",
                              "-in", "checkpoint.txt", "-sigfile", "checkpoint.sig"],
                             cwd=out, capture_output=True, text=True)
        assert sig.returncode == 0 and "Signature Verified Successfully" in sig.stdout


def test_checker_rejects_an_altered_clip_record_or_proof(filled, tmp_path: Path) -> None:
    data_dir, ids = filled
    out = tmp_path / "export"
    main(["archive", "export", ids[0], "--out", str(out), "--data-dir", str(data_dir)])
    pristine = {p.name: p.read_bytes() for p in out.iterdir()}

    clip = bytearray(pristine["clip.flac"])
    clip[100] ^= 0xFF
    (out / "clip.flac").write_bytes(bytes(clip))
    result = run_checker(out)
    assert result.returncode == 1 and "FAIL: clip.flac: SHA-256" in result.stdout
    (out / "clip.flac").write_bytes(pristine["clip.flac"])

    # A consistent edit of record.json (new hash for an edited transcript) breaks the inclusion proof.
    edited = "这款不是全网最低价".encode()
    (out / "transcript.txt").write_bytes(edited)
    record = json.loads(pristine["record.json"])
    record["parts"]["transcript"]["sha256"] = hashlib.sha256(edited).hexdigest()
    (out / "record.json").write_bytes(json.dumps(record, sort_keys=True, separators=(",", ":"),
                                                 ensure_ascii=False).encode())
    result = run_checker(out)
    assert result.returncode == 1 and "inclusion proof does not lead to the checkpoint root" in result.stdout
    for name, data in pristine.items():
        (out / name).write_bytes(data)

    proof = json.loads(pristine["proof.json"])
    proof["checkpoint"]["time"] = "2099-01-01T00:00:00.000000Z"
    (out / "proof.json").write_text(json.dumps(proof))
    result = run_checker(out)
    assert result.returncode == 1 and "signed time is missing or differs" in result.stdout

    proof = json.loads(pristine["proof.json"])
    proof["checkpoint"]["note"] = proof["checkpoint"]["note"].replace("\n7\n", "\n8\n")
    (out / "proof.json").write_text(json.dumps(proof))
    result = run_checker(out)
    assert result.returncode == 1 and "checkpoint signature does not verify" in result.stdout


def test_export_of_a_purged_record_still_proves_its_existence(tmp_path: Path, clock: Clock) -> None:
    clock.now = datetime(2019, 1, 1, tzinfo=UTC)
    with EvidenceArchive.open(tmp_path / "a", clock=clock) as archive:
        eid = archive.record_alert(make_alert(1), clip=make_clip(0.5), clip_start=0.0, transcript="old")
        clock.now = datetime.now(UTC)
        archive.purge()
    out = tmp_path / "export"
    assert main(["archive", "export", eid, "--out", str(out), "--data-dir", str(tmp_path / "a")]) == 0
    assert not (out / "clip.flac").exists()
    result = run_checker(out)
    assert result.returncode == 0 and "purged after retention" in result.stdout
