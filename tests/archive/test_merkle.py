"""RFC 6962 hashing: the compact range, audit paths and their verification agree."""

from __future__ import annotations

import hashlib

import pytest

from monitor.archive.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    tree_root,
    verify_consistency,
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


# Known-answer vectors of RFC 6962 trees (the inputs and hashes used by Certificate
# Transparency's and transparency-dev's reference tests).
VECTOR_INPUTS = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
)]
VECTOR_ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
INCLUSION_VECTORS = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
VECTOR_LEAVES = [leaf_hash(data) for data in VECTOR_INPUTS]


def test_known_roots() -> None:
    for size in range(1, 9):
        assert tree_root(VECTOR_LEAVES[:size]) == VECTOR_ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION_VECTORS)
def test_known_inclusion_proofs_and_their_mutations(index: int, size: int, expected: list[str]) -> None:
    proof = inclusion_proof(index, VECTOR_LEAVES[:size])
    assert [node.hex() for node in proof] == expected
    root = VECTOR_ROOTS[size - 1]
    leaf = VECTOR_LEAVES[index]
    assert root_from_inclusion_proof(index, size, leaf, proof) == root
    for mutated in mutations(proof):
        assert _inclusion_fails(index, size, leaf, mutated, root)  # wrong root, or rejected outright
    if size > 1:  # the same proof for a neighbouring index or another tree size must fail
        assert _inclusion_fails(index ^ 1 if (index ^ 1) < size else index - 1, size, leaf, proof, root)
        assert _inclusion_fails(index, size + 1, leaf, proof, VECTOR_ROOTS[min(size, 7)])


def _inclusion_fails(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    try:
        return root_from_inclusion_proof(index, size, leaf, proof) != root
    except ValueError:
        return True


def mutations(proof: list[bytes]) -> list[list[bytes]]:
    """Every way of spoiling a proof: a flipped bit in each node, a node dropped, added, swapped."""
    spoiled: list[list[bytes]] = []
    for i, node in enumerate(proof):
        flipped = bytes([node[0] ^ 1]) + node[1:]
        spoiled.append([*proof[:i], flipped, *proof[i + 1:]])
        spoiled.append([*proof[:i], *proof[i + 1:]])
    spoiled.append([*proof, b"\x00" * 32])
    spoiled.append([b"\x00" * 32, *proof])
    if len(proof) > 1:
        spoiled.append([proof[1], proof[0], *proof[2:]])
    return spoiled


@pytest.mark.parametrize(("old", "new", "expected"), CONSISTENCY_VECTORS)
def test_known_consistency_proofs_and_their_mutations(old: int, new: int, expected: list[str]) -> None:
    proof = consistency_proof(old, VECTOR_LEAVES[:new])
    assert [node.hex() for node in proof] == expected
    old_root, new_root = VECTOR_ROOTS[old - 1], VECTOR_ROOTS[new - 1]
    verify_consistency(old, new, old_root, new_root, proof)
    for mutated in mutations(proof):
        with pytest.raises(ValueError):
            verify_consistency(old, new, old_root, new_root, mutated)
    if old != new:
        with pytest.raises(ValueError):
            verify_consistency(old, new, VECTOR_ROOTS[new - 1], new_root, proof)  # wrong old root
        with pytest.raises(ValueError):
            verify_consistency(old, new, old_root, old_root, proof)  # wrong new root


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 9, 31, 64, 100])
def test_every_consistency_proof_verifies_and_a_rewritten_history_does_not(size: int) -> None:
    hashes = leaves(size)
    for old in range(1, size + 1):
        proof = consistency_proof(old, hashes)
        verify_consistency(old, size, tree_root(hashes[:old]), tree_root(hashes), proof)
        rewritten = [leaf_hash(b"rewritten"), *hashes[1:]]
        if old < size:
            with pytest.raises(ValueError):
                verify_consistency(old, size, tree_root(hashes[:old]), tree_root(rewritten),
                                   consistency_proof(old, rewritten))
