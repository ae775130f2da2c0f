"""Stored tree hashes: proofs in O(log n) reads that equal the reference, and damage that is repaired, never served."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from monitor.archive import EvidenceArchive, verify_archive
from monitor.archive.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_inclusion_proof,
    tree_root,
)
from monitor.archive.tree import TreeStore

from .conftest import Clock, make_alert


def test_stored_hashes_give_the_reference_proofs_at_every_size(tmp_path: Path) -> None:
    hashes = [leaf_hash(f"record {i}".encode()) for i in range(300)]
    store = TreeStore(tmp_path / "tree", writable=True)
    rng = random.Random(7)
    done = 0
    while done < len(hashes):  # appended in batches of every size, as commits and recovery do
        step = rng.randint(1, 9)
        store.append([(h, 100 * (done + i + 1)) for i, h in enumerate(hashes[done:done + step])])
        done += step
    for size in [1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, 127, 128, 129, 255, 256, 257, 300]:
        assert store.root(size) == tree_root(hashes[:size])
        for index in {0, size // 3, size // 2, size - 1}:
            assert store.inclusion_proof(index, size) == inclusion_proof(index, hashes[:size])
        for old in {1, size // 2 or 1, size - 1 or 1, size}:
            assert store.consistency_proof(old, size) == consistency_proof(old, hashes[:size])
    assert store.record_span(0) == (0, 100) and store.record_span(41) == (4100, 4200)


def test_a_level_lost_in_a_crash_is_recomputed_on_open(tmp_path: Path) -> None:
    hashes = [leaf_hash(bytes([i])) for i in range(100)]
    store = TreeStore(tmp_path / "tree", writable=True)
    store.append([(h, i) for i, h in enumerate(hashes)])
    store.close()
    (tmp_path / "tree" / "level-03").write_bytes(b"")  # written later than level 0, lost
    reopened = TreeStore(tmp_path / "tree", writable=True)
    assert reopened.size == 100 and reopened.root(100) == tree_root(hashes)


@pytest.mark.parametrize("damage", ["flipped", "deleted"])
def test_damaged_tree_files_never_yield_a_wrong_proof(tmp_path: Path, clock: Clock, damage: str) -> None:
    with EvidenceArchive.open(tmp_path, clock=clock) as archive:
        ids = [archive.record_alert(make_alert(n), clip=None, clip_start=None, transcript=str(n))
               for n in range(40)]
        if damage == "flipped":
            level = tmp_path / "tree" / "level-02"
            data = bytearray(level.read_bytes())
            data[0] ^= 0xFF
            level.write_bytes(bytes(data))
        else:
            for path in (tmp_path / "tree").iterdir():
                path.write_bytes(b"")
        proof = archive.proof_status(ids[1])  # the damaged subtree is on this record's path
        checkpoint = archive.last_checkpoint
        assert checkpoint is not None
        path = [bytes.fromhex(h) for h in proof["inclusion_proof"]]
        assert root_from_inclusion_proof(1, checkpoint.size, bytes.fromhex(proof["leaf_hash"]), path) == \
            checkpoint.root
    with EvidenceArchive.open(tmp_path, clock=clock) as archive:
        assert archive.proof_status(ids[39])["leaf_index"] == 39
    assert verify_archive(tmp_path).ok
