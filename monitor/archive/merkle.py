"""RFC 6962 / RFC 9162 Merkle tree hashing, as used by Certificate Transparency.

- leaf hash: ``SHA-256(0x00 || leaf bytes)``
- node hash: ``SHA-256(0x01 || left || right)``
- the tree of ``n`` leaves splits at the largest power of two below ``n``.

:class:`CompactRange` keeps only the roots of the perfect subtrees of an append-only
log (at most log2(n) hashes), so the writer and the verifier can compute the root
after every append in O(log n) without holding every leaf.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash of one record's bytes."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


class CompactRange:
    """The right frontier of an append-only Merkle tree: append leaves, read the root."""

    def __init__(self) -> None:
        self._size = 0
        self._peaks: list[tuple[int, bytes]] = []  # (height, subtree root), left to right

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf: bytes) -> None:
        """Append one leaf *hash* (not the raw record)."""
        height, node = 0, leaf
        while self._peaks and self._peaks[-1][0] == height:
            _, left = self._peaks.pop()
            node = node_hash(left, node)
            height += 1
        self._peaks.append((height, node))
        self._size += 1

    def copy(self) -> CompactRange:
        """An independent copy (to extend tentatively before a commit succeeds)."""
        clone = CompactRange()
        clone._size = self._size
        clone._peaks = list(self._peaks)
        return clone

    def root(self) -> bytes:
        """The RFC 6962 tree head of the leaves appended so far."""
        if not self._peaks:
            return EMPTY_ROOT
        node = self._peaks[-1][1]
        for _, left in reversed(self._peaks[:-1]):
            node = node_hash(left, node)
        return node


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes (RFC 6962 section 2.1)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _largest_power_of_two_below(n)
    return node_hash(tree_root(leaves[:k]), tree_root(leaves[k:]))


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path PATH(index, D[n]) of RFC 6962 section 2.1.1, leaf-to-root order."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} outside a tree of {n} leaves")
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if index < k:
        return [*inclusion_proof(index, leaves[:k]), tree_root(leaves[k:])]
    return [*inclusion_proof(index - k, leaves[k:]), tree_root(leaves[:k])]


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by ``proof`` (RFC 9162 section 2.1.3.2); raises ValueError on a bad shape."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside a tree of {size} leaves")
    fn, sn, node = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise ValueError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("inclusion proof is shorter than the tree is deep")
    return node
