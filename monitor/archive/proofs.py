"""Inclusion and consistency proofs served from the stored tree hashes, checked before use.

Both the live archive (the console's evidence view) and the read-only commands
(export) build proofs here: O(log n) reads of :class:`~monitor.archive.tree.TreeStore`,
then the proof is checked against the signed root. A proof that does not check (a
damaged or stale tree file) is never returned; the caller rebuilds the tree hashes
from the log, or falls back to walking the log.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from monitor.archive.merkle import root_from_inclusion_proof, verify_consistency
from monitor.archive.signing import Checkpoint, key_id
from monitor.archive.tree import TreeStore
from monitor.errors import ArchiveError

PROOF_FORMAT = "monitor-archive-proof/v2"


def stored_inclusion(tree: TreeStore, index: int, checkpoint: Checkpoint, leaf: bytes) -> list[bytes] | None:
    """The audit path of leaf ``index`` to the checkpoint's root, or None if the stored hashes do not lead there."""
    if checkpoint.size > tree.size:
        return None
    try:
        path = tree.inclusion_proof(index, checkpoint.size)
        if root_from_inclusion_proof(index, checkpoint.size, leaf, path) == checkpoint.root:
            return path
    except (ArchiveError, ValueError):
        pass
    return None


def stored_consistency(tree: TreeStore, old: Checkpoint, new: Checkpoint) -> list[bytes] | None:
    """The consistency proof from ``old`` to ``new``, or None if the stored hashes do not prove it."""
    if new.size > tree.size or old.size > new.size or old.size == 0:
        return None
    try:
        proof = tree.consistency_proof(old.size, new.size)
        verify_consistency(old.size, new.size, old.root, new.root, proof)
    except (ArchiveError, ValueError):
        return None
    return proof


def proof_document(
    evidence_id: str,
    index: int,
    record: bytes,
    leaf: bytes,
    path: list[bytes],
    checkpoint: Checkpoint,
    public_key: Ed25519PublicKey,
) -> dict[str, Any]:
    """What ``proof.json`` holds about one record and the checkpoint that covers it."""
    document: dict[str, Any] = {
        "format": PROOF_FORMAT,
        "evidence_id": evidence_id,
        "kind": json.loads(record)["kind"],
        "leaf_index": index,
        "tree_size": checkpoint.size,
        "record_sha256": hashlib.sha256(record).hexdigest(),
        "leaf_hash": leaf.hex(),
        "inclusion_proof": [node.hex() for node in path],
        "checkpoint": checkpoint.to_json(),
        "checkpoint_text": checkpoint.message().decode("utf-8"),
        "public_key_id": key_id(public_key),
    }
    return document
