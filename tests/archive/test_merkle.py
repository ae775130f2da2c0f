"""RFC 6962 hashing: the compact range, audit paths and their verification agree."""

from __future__ import annotations

import hashlib

import pytest

from monitor.archive.merkle import (
    EMPTY_ROOT,
    CompactRange,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    tree_root,
)


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(f"record {i}".encode()) for i in range(n)]


def test_leaf_and_node_hashes_use_the_rfc_6962_prefixes() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    assert CompactRange().root() == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_three_leaf_tree_splits_at_the_largest_power_of_two() -> None:
    a, b, c = leaves(3)
    assert tree_root([a, b, c]) == node_hash(node_hash(a, b), c)


@pytest.mark.parametrize("n", range(1, 70))
def test_compact_range_matches_the_recursive_definition(n: int) -> None:
    hashes = leaves(n)
    compact = CompactRange()
    for h in hashes:
        compact.append(h)
    assert compact.size == n
    assert compact.root() == tree_root(hashes)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 31, 32, 33])
def test_every_inclusion_proof_leads_to_the_root_and_a_wrong_leaf_does_not(n: int) -> None:
    hashes = leaves(n)
    root = tree_root(hashes)
    for index in range(n):
        proof = inclusion_proof(index, hashes)
        assert root_from_inclusion_proof(index, n, hashes[index], proof) == root
        assert root_from_inclusion_proof(index, n, leaf_hash(b"forged"), proof) != root


def test_proof_of_the_wrong_length_is_rejected() -> None:
    hashes = leaves(8)
    proof = inclusion_proof(3, hashes)
    with pytest.raises(ValueError, match="shorter"):
        root_from_inclusion_proof(3, 8, hashes[3], proof[:-1])
    with pytest.raises(ValueError, match="longer"):
        root_from_inclusion_proof(3, 8, hashes[3], [*proof, proof[0]])
