"""Export one record with the proof an inspector checks without the monitor package.

``export_evidence(data_dir, evidence_id, out_dir)`` writes into ``out_dir``:

- ``record.json``      the exact log leaf bytes (metadata + SHA-256 of every part)
- ``alert.json``, ``transcript.txt``, ``clip.flac`` (alert) or ``transcript.json``
  (session): the stored parts, absent once purged
- ``proof.json``       leaf index, tree size, record/leaf hash, RFC 6962 inclusion
  proof, the covering signed checkpoint
- ``checkpoint.txt`` / ``checkpoint.sig``: the signed text and raw Ed25519 signature
  (``openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin ...``)
- ``public_key.pem``   the archive's public key
- ``SHA256SUMS``       for ``sha256sum -c``

``scripts/verify_export.py`` (hashlib + cryptography only) checks all of it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from monitor.archive.layout import ArchiveLayout, shared_commit_lock
from monitor.archive.log import read_lines
from monitor.archive.merkle import inclusion_proof, leaf_hash, root_from_inclusion_proof
from monitor.archive.records import EXPORT_NAMES, SESSION_EXPORT_NAMES, evidence_id_of
from monitor.archive.signing import Checkpoint, key_id, load_public_key
from monitor.errors import ArchiveError, ArchiveIntegrityError

PROOF_FORMAT = "monitor-archive-proof/v1"


def build_proof(data_dir: Path, evidence_id: str) -> tuple[bytes, dict[str, Any], Checkpoint]:
    """The record bytes of ``evidence_id``, its proof, and the latest signed checkpoint.

    The proof dict holds ``leaf_index``, ``tree_size``, ``record_sha256``, ``leaf_hash``,
    ``inclusion_proof``, the ``checkpoint`` (its signature checked), ``public_key_id``
    and ``purged`` (None, or when the content was purged). Reads only; runs next to a
    live writer. Raises ArchiveError for an unknown id and ArchiveIntegrityError when
    the log does not match its signed checkpoint.
    """
    layout = ArchiveLayout(Path(data_dir))
    public_key = load_public_key(layout.public_key)
    with shared_commit_lock(layout):
        log_length = layout.records_log.stat().st_size if layout.records_log.exists() else 0
        cp_length = layout.checkpoints_log.stat().st_size if layout.checkpoints_log.exists() else 0
    checkpoint_lines, _ = read_lines(layout.checkpoints_log, cp_length)
    if not checkpoint_lines:
        raise ArchiveError(f"the archive {layout.root} has no signed checkpoint yet")
    checkpoint = Checkpoint.from_line(checkpoint_lines[-1], f"{layout.checkpoints_log} (last line)")
    if not checkpoint.verify(public_key):
        raise ArchiveIntegrityError(f"{layout.checkpoints_log}: the latest checkpoint's signature is invalid")
    lines, _ = read_lines(layout.records_log, log_length)
    if len(lines) < checkpoint.size:
        raise ArchiveIntegrityError(
            f"{layout.records_log} holds {len(lines)} records, the latest checkpoint {checkpoint.size}"
        )
    lines = lines[: checkpoint.size]

    seq = next((i for i, line in enumerate(lines) if evidence_id_of(line) == evidence_id
                and b'"parts"' in line), None)
    if seq is None:
        raise ArchiveError(f"no evidence with id {evidence_id!r} in {layout.root}")
    record = lines[seq]
    leaves = [leaf_hash(line) for line in lines]
    path = inclusion_proof(seq, leaves)
    if root_from_inclusion_proof(seq, len(leaves), leaves[seq], path) != checkpoint.root:
        raise ArchiveIntegrityError(
            f"{layout.records_log} does not match the latest signed checkpoint; run 'monitor archive verify'"
        )
    proof = {
        "format": PROOF_FORMAT,
        "evidence_id": evidence_id,
        "kind": json.loads(record)["kind"],
        "leaf_index": seq,
        "tree_size": checkpoint.size,
        "record_sha256": hashlib.sha256(record).hexdigest(),
        "leaf_hash": leaves[seq].hex(),
        "inclusion_proof": [node.hex() for node in path],
        "checkpoint": checkpoint.to_json(),
        "checkpoint_text": checkpoint.message().decode("utf-8"),
        "public_key_id": key_id(public_key),
        "purged": _purge_of(lines[seq + 1 :], evidence_id),
    }
    return record, proof, checkpoint


def export_evidence(data_dir: Path, evidence_id: str, out_dir: Path) -> dict[str, Any]:
    """Write the export of ``evidence_id`` into ``out_dir`` (created); returns ``proof.json``'s content.

    Raises ArchiveError if the id is unknown, and ArchiveIntegrityError if the log
    does not match its latest checkpoint or a stored part does not match its hash
    (an export never vouches for altered evidence).
    """
    layout = ArchiveLayout(Path(data_dir))
    record, built, checkpoint = build_proof(data_dir, evidence_id)
    leaf = json.loads(record)
    purge = built.pop("purged")
    names = EXPORT_NAMES if leaf["kind"] == "alert" else SESSION_EXPORT_NAMES

    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {"record.json": record}
    if purge is None:
        for role, info in leaf["parts"].items():
            blob_path = layout.blob_dir / info["sha256"][:2] / info["sha256"]
            try:
                data = blob_path.read_bytes()
            except OSError as exc:
                raise ArchiveIntegrityError(f"evidence {evidence_id}: {role} unreadable: {exc}") from exc
            if hashlib.sha256(data).hexdigest() != info["sha256"]:
                raise ArchiveIntegrityError(f"evidence {evidence_id}: {role} was altered ({blob_path})")
            files[names.get(role, role)] = data
    proof = {**built, "files": _file_roles(leaf, names, purge is None), "purged": purge}
    files["proof.json"] = json.dumps(proof, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
    files["checkpoint.txt"] = checkpoint.message()
    files["checkpoint.sig"] = checkpoint.signature
    files["public_key.pem"] = layout.public_key.read_bytes()
    sums = "".join(
        f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n"
        for name in sorted(files)
        if name not in ("proof.json", "checkpoint.sig", "checkpoint.txt", "public_key.pem")
    )
    files["SHA256SUMS"] = sums.encode("ascii")
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    return proof


def _file_roles(leaf: dict[str, Any], names: dict[str, str], present: bool) -> dict[str, str]:
    """Exported file name -> the part role whose hash ``record.json`` lists for it."""
    if not present:
        return {}
    return {names.get(role, role): role for role in leaf["parts"]}


def _purge_of(later_lines: list[bytes], evidence_id: str) -> dict[str, str] | None:
    for line in later_lines:
        if b'"purge"' not in line:
            continue
        leaf = json.loads(line)
        if leaf.get("kind") == "purge" and evidence_id in leaf.get("evidence_ids", []):
            return {"at": leaf["at"], "recorded_at": leaf["recorded_at"]}
    return None

