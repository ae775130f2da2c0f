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
from collections.abc import Callable, Sequence

RangeHash = Callable[[int, int], bytes]
"""``hash_of(start, end)``: MTH of leaves ``[start, end)`` (a perfect or right-edge subtree)."""

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
    """The largest power of two strictly below ``n`` (n >= 2): RFC 6962's split point."""
    return 1 << ((n - 1).bit_length() - 1)


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
    return inclusion_path(index, len(leaves), lambda a, b: tree_root(leaves[a:b]))


def inclusion_path(index: int, size: int, hash_of: RangeHash) -> list[bytes]:
    """PATH(index, D[size]) from subtree hashes: O(log n) calls of ``hash_of``, leaf-to-root order.

    Every range asked for is a perfect subtree or the right edge of one, so a store of
    perfect-subtree hashes answers each in O(log n) reads (:class:`monitor.archive.tree.TreeStore`).
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside a tree of {size} leaves")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            path.append(hash_of(lo + k, hi))
            hi = lo + k
        else:
            path.append(hash_of(lo, lo + k))
            lo += k
    return path[::-1]


def consistency_path(old_size: int, new_size: int, hash_of: RangeHash) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 section 2.1.2 (SUBPROOF), from subtree hashes.

    Empty when the sizes are equal; raises ValueError unless 0 < old_size <= new_size.
    """
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")

    def subproof(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        if m == hi - lo:
            return [] if complete else [hash_of(lo, hi)]
        k = _largest_power_of_two_below(hi - lo)
        if m <= k:
            return [*subproof(m, lo, lo + k, complete), hash_of(lo + k, hi)]
        return [*subproof(m - k, lo + k, hi, False), hash_of(lo, lo + k)]

    return subproof(old_size, 0, new_size, True)


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, D[n]) over a list of leaf hashes (reference implementation for tests)."""
    return consistency_path(old_size, len(leaves), lambda a, b: tree_root(leaves[a:b]))


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof (RFC 9162 section 2.1.4.2); raises ValueError saying why it fails.

    Passing means the tree of ``new_size`` leaves with ``new_root`` is an append-only
    extension of the tree of ``old_size`` leaves with ``old_root``.
    """
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == new_size:
        if proof:
            raise ValueError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ValueError("equal sizes with different roots")
        return
    nodes = list(proof)
    if old_size & (old_size - 1) == 0:
        nodes.insert(0, old_root)
    if not nodes:
        raise ValueError("consistency proof is empty")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for sibling in nodes[1:]:
        if sn == 0:
            raise ValueError("consistency proof is longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr = node_hash(sibling, fr)
            sr = node_hash(sibling, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("consistency proof is shorter than the trees are deep")
    if fr != old_root:
        raise ValueError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ValueError("consistency proof does not lead to the new root")


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
