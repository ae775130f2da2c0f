"""Export one record with the proofs an inspector checks without the monitor package.

``export_evidence(data_dir, evidence_id, out_dir)`` writes into ``out_dir``:

- ``record.json``      the exact log leaf bytes (metadata + SHA-256 of every part)
- ``alert.json``, ``transcript.txt``, ``clip.flac`` (alert) or ``transcript.json``
  (session): the stored parts, absent once purged
- ``proof.json``       leaf index, tree size, record/leaf hash, RFC 6962 inclusion
  proof, the covering signed checkpoint, and (when a witnessed checkpoint is known)
  the RFC 6962 consistency proof from it to the covering one
- ``checkpoint.note``  the covering checkpoint as a C2SP signed note
- ``witnessed.note``   the newest witnessed checkpoint the log is consistent with, if any
- ``checkpoint.txt`` / ``checkpoint.sig``: the signed bytes and raw Ed25519 signature
  (``openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin ...``)
- ``public_key.pem``   the archive's public key
- ``verify_export.py`` the inspector's checker (standard library + ``cryptography``)
- ``SHA256SUMS``       for ``sha256sum -c``

Witnessed checkpoints come from ``--witness FILE`` or ``log/witnessed.txt`` (C2SP
notes an outside party kept or cosigned). Proofs come from the stored tree hashes
(O(log n)) and are checked against the signed roots; if those files are missing or
damaged, the log is walked instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
from itertools import islice
from pathlib import Path
from typing import Any

from monitor.archive.index import EvidenceIndex
from monitor.archive.layout import ArchiveLayout, shared_commit_lock
from monitor.archive.log import iter_records
from monitor.archive.merkle import inclusion_proof, leaf_hash, root_from_inclusion_proof, verify_consistency
from monitor.archive.proofs import proof_document, stored_consistency, stored_inclusion
from monitor.archive.records import EXPORT_NAMES, SESSION_EXPORT_NAMES, evidence_id_of
from monitor.archive.recovery import read_latest_checkpoint
from monitor.archive.signing import Checkpoint, load_public_key
from monitor.archive.tree import TreeStore
from monitor.archive.witness import load_witnessed
from monitor.errors import ArchiveError, ArchiveIntegrityError

log = logging.getLogger(__name__)

CHECKER = Path(__file__).with_name("verify_export.py")


def build_proof(
    data_dir: Path, evidence_id: str, *, witness_path: Path | None = None
) -> tuple[bytes, dict[str, Any], Checkpoint]:
    """The record bytes of ``evidence_id``, its proof, and the latest signed checkpoint.

    The proof dict holds ``leaf_index``, ``tree_size``, ``record_sha256``, ``leaf_hash``,
    ``inclusion_proof``, the ``checkpoint`` (its signature checked), ``public_key_id``,
    ``purged`` (None, or when the content was purged) and ``consistency`` (None, or the
    proof from the newest witnessed checkpoint). Reads only; runs next to a live writer.
    Raises ArchiveError for an unknown id and ArchiveIntegrityError when the log does not
    match its signed checkpoint.
    """
    layout = ArchiveLayout(Path(data_dir))
    public_key = load_public_key(layout.public_key)
    with shared_commit_lock(layout):
        checkpoint, _ = read_latest_checkpoint(layout)
    if checkpoint is None:
        raise ArchiveError(f"the archive {layout.root} has no signed checkpoint yet")
    if not checkpoint.verify(public_key):
        raise ArchiveIntegrityError(f"{layout.checkpoints_log}: the latest checkpoint's signature is invalid")
    tree = TreeStore(layout.tree_dir, writable=False)
    try:
        seq, record = _find_record(layout, tree, evidence_id, checkpoint.size)
        leaf = leaf_hash(record)
        path = stored_inclusion(tree, seq, checkpoint, leaf)
        if path is None:
            log.warning("stored tree hashes of %s do not prove record #%d; walking the log", layout.root, seq)
            path = _inclusion_from_log(layout, seq, checkpoint)
        if root_from_inclusion_proof(seq, checkpoint.size, leaf, path) != checkpoint.root:
            raise ArchiveIntegrityError(
                f"{layout.records_log} does not match the latest signed checkpoint; run 'monitor archive verify'"
            )
        proof = proof_document(evidence_id, seq, record, leaf, path, checkpoint, public_key)
        proof["purged"] = _purge_of(layout, seq, checkpoint.size, evidence_id)
        proof["consistency"] = _consistency(layout, tree, checkpoint, public_key, witness_path)
    finally:
        tree.close()
    return record, proof, checkpoint


def _find_record(layout: ArchiveLayout, tree: TreeStore, evidence_id: str, size: int) -> tuple[int, bytes]:
    """(seq, leaf bytes) of an alert/session record: the index names it, the log confirms it."""
    seq: int | None = None
    if layout.index.exists():
        try:
            index = EvidenceIndex(layout.index, read_only=True)
            try:
                summary = index.get(evidence_id)
            finally:
                index.close()
            seq = summary.seq if summary is not None else None
        except ArchiveError as exc:
            log.warning("archive index unusable (%s); searching the log", exc)
    if seq is not None and seq < min(size, tree.size):
        try:
            start, end = tree.record_span(seq)
            with open(layout.records_log, "rb") as handle:
                handle.seek(start)
                data = handle.read(end - start)
            if data.endswith(b"\n") and evidence_id_of(data[:-1]) == evidence_id:
                return seq, data[:-1]
        except (ArchiveError, OSError) as exc:
            log.warning("record #%d not readable through the tree offsets (%s); searching the log", seq, exc)
    for number, (_, line) in enumerate(iter_records(layout.records_log)):
        if number >= size:
            break
        if b'"parts"' in line and evidence_id_of(line) == evidence_id:
            return number, line
    raise ArchiveError(f"no evidence with id {evidence_id!r} in {layout.root}")


def _inclusion_from_log(layout: ArchiveLayout, seq: int, checkpoint: Checkpoint) -> list[bytes]:
    leaves = [leaf_hash(line) for _, line in islice(iter_records(layout.records_log), checkpoint.size)]
    if len(leaves) < checkpoint.size:
        raise ArchiveIntegrityError(
            f"{layout.records_log} holds {len(leaves)} records, the latest checkpoint {checkpoint.size}"
        )
    return inclusion_proof(seq, leaves)


def _consistency(
    layout: ArchiveLayout, tree: TreeStore, checkpoint: Checkpoint, public_key: Any, witness_path: Path | None
) -> dict[str, Any] | None:
    """The consistency proof from the newest witnessed checkpoint the log extends, or None."""
    source = witness_path or layout.witness_file
    if not source.exists():
        if witness_path is not None:
            raise ArchiveError(f"the witness file {witness_path} does not exist")
        return None
    usable = [w.checkpoint for w in load_witnessed(source, public_key)
              if w.error is None and w.checkpoint is not None and 0 < w.checkpoint.size <= checkpoint.size]
    for witnessed in sorted(usable, key=lambda c: c.size, reverse=True):
        proof = stored_consistency(tree, witnessed, checkpoint)
        if proof is None:
            continue
        verify_consistency(witnessed.size, checkpoint.size, witnessed.root, checkpoint.root, proof)
        return {
            "old_size": witnessed.size,
            "new_size": checkpoint.size,
            "proof": [node.hex() for node in proof],
            "witnessed_note": witnessed.text(),
        }
    log.warning("no witnessed checkpoint in %s is consistent with the log; exported without one", source)
    return None


def export_evidence(
    data_dir: Path, evidence_id: str, out_dir: Path, *, witness_path: Path | None = None
) -> dict[str, Any]:
    """Write the export of ``evidence_id`` into ``out_dir`` (created); returns ``proof.json``'s content.

    ``witness_path``: checkpoints kept by outside parties (default ``log/witnessed.txt``
    when present); the export proves the log's consistency with the newest one.

    Raises ArchiveError if the id is unknown, and ArchiveIntegrityError if the log
    does not match its latest checkpoint or a stored part does not match its hash
    (an export never vouches for altered evidence).
    """
    layout = ArchiveLayout(Path(data_dir))
    record, built, checkpoint = build_proof(data_dir, evidence_id, witness_path=witness_path)
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
    if checkpoint.note is not None:
        files["checkpoint.note"] = checkpoint.text().encode("utf-8")
    if proof["consistency"] is not None:
        files["witnessed.note"] = proof["consistency"]["witnessed_note"].encode("utf-8")
    files["public_key.pem"] = layout.public_key.read_bytes()
    files["verify_export.py"] = CHECKER.read_bytes()
    sums = "".join(
        f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n"
        for name in sorted(files)
        if name in ("record.json", *names.values())
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


def _purge_of(layout: ArchiveLayout, seq: int, size: int, evidence_id: str) -> dict[str, str] | None:
    """When the record's content was purged (from the log after it), or None."""
    for number, (_, line) in enumerate(iter_records(layout.records_log)):
        if number >= size:
            break
        if number <= seq or b'"purge"' not in line:
            continue
        leaf = json.loads(line)
        if leaf.get("kind") == "purge" and evidence_id in leaf.get("evidence_ids", []):
            return {"at": leaf["at"], "recorded_at": leaf["recorded_at"]}
    return None
