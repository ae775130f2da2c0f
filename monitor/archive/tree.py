"""Stored Merkle tree hashes, so proofs cost O(log n) reads instead of a walk of the log.

The archive keeps, next to the record log, one file per tree level under ``tree/``::

    tree/level-00   SHA-256 leaf hashes, 32 bytes each, leaf i at byte 32*i
    tree/level-01   hash of leaves [2j, 2j+2) at byte 32*j
    tree/level-k    hash of the perfect subtree of leaves [j*2^k, (j+1)*2^k) at byte 32*j
    tree/offsets    end offset (8 bytes, big-endian) of record i in log/records.log

This is the "tiles" idea of transparency-dev (every full subtree hash stored once,
written when it completes) in its simplest on-disk form. Any subtree an RFC 6962
inclusion or consistency proof needs is a perfect subtree (one 32-byte read) or the
right edge of one (O(log n) reads), so a proof in a log of 10 million records is
about 50 reads of 32 bytes.

The files are derived data, like the SQLite index: they are written without fsync,
checked against the log when the archive opens (rebuilt from the log where they differ
or are missing), and every proof built from them is checked against the signed root
before anyone sees it, so a damaged file can make a proof fail but never make a wrong
one pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from monitor.archive.merkle import EMPTY_ROOT, consistency_path, inclusion_path, node_hash
from monitor.errors import ArchiveError

HASH_BYTES = 32
OFFSET_BYTES = 8
MAX_LEVELS = 64


class TreeStore:
    """Perfect-subtree hashes of one log on disk (see the module docstring).

    ``size`` is the number of leaves stored. A read-only store (``writable=False``)
    is safe next to the writing process: it only reads subtrees below a size a signed
    checkpoint covers, which the writer stores before it signs that checkpoint.
    """

    def __init__(self, directory: Path, *, writable: bool) -> None:
        self.directory = directory
        self.writable = writable
        self._fds: dict[str, int] = {}
        if writable:
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ArchiveError(f"cannot create {directory}: {exc}") from exc
        self._last: list[bytes] = []  # the last hash written at each level (the left sibling to come)
        self.size = min(self._count("level-00", HASH_BYTES), self._count("offsets", OFFSET_BYTES))
        if writable:
            self.repair()

    # ---- files ---------------------------------------------------------------------------------

    def _fd(self, name: str) -> int:
        fd = self._fds.get(name)
        if fd is None:
            path = self.directory / name
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644) if self.writable else os.open(path, os.O_RDONLY)
            except OSError as exc:
                raise ArchiveError(f"cannot open the tree file {path}: {exc}") from exc
            self._fds[name] = fd
        return fd

    def _count(self, name: str, width: int) -> int:
        path = self.directory / name
        try:
            return path.stat().st_size // width
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise ArchiveError(f"cannot stat the tree file {path}: {exc}") from exc

    def _read(self, name: str, offset: int, width: int) -> bytes:
        try:
            data = os.pread(self._fd(name), width, offset)
        except OSError as exc:
            raise ArchiveError(f"cannot read {self.directory / name}: {exc}") from exc
        if len(data) != width:
            raise ArchiveError(f"{self.directory / name} ends before byte {offset + width}")
        return data

    def _write(self, name: str, offset: int, data: bytes) -> None:
        try:
            written = os.pwrite(self._fd(name), data, offset)
        except OSError as exc:
            raise ArchiveError(f"cannot write {self.directory / name}: {exc}") from exc
        if written != len(data):
            raise ArchiveError(f"short write to {self.directory / name}")

    def _truncate(self, name: str, length: int) -> None:
        """Shrink a file to ``length`` bytes (never grow it: a missing tail is recomputed, not zeroed)."""
        try:
            fd = self._fd(name)
            if os.fstat(fd).st_size > length:
                os.ftruncate(fd, length)
        except OSError as exc:
            raise ArchiveError(f"cannot truncate {self.directory / name}: {exc}") from exc

    # ---- reading -------------------------------------------------------------------------------

    def hash_at(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree of leaves ``[index * 2^level, (index + 1) * 2^level)``."""
        return self._read(f"level-{level:02d}", index * HASH_BYTES, HASH_BYTES)

    def record_span(self, index: int) -> tuple[int, int]:
        """(start, end) byte offsets of record ``index`` in the record log, newline included."""
        end = int.from_bytes(self._read("offsets", index * OFFSET_BYTES, OFFSET_BYTES), "big")
        start = 0 if index == 0 else int.from_bytes(
            self._read("offsets", (index - 1) * OFFSET_BYTES, OFFSET_BYTES), "big"
        )
        return start, end

    def iter_leaf_entries(self, chunk: int = 4096) -> Iterator[tuple[bytes, int]]:
        """(leaf hash, record end offset) of every stored leaf, read sequentially in chunks."""
        for first in range(0, self.size, chunk):
            count = min(chunk, self.size - first)
            hashes = self._read("level-00", first * HASH_BYTES, count * HASH_BYTES)
            ends = self._read("offsets", first * OFFSET_BYTES, count * OFFSET_BYTES)
            for i in range(count):
                yield (hashes[i * HASH_BYTES:(i + 1) * HASH_BYTES],
                       int.from_bytes(ends[i * OFFSET_BYTES:(i + 1) * OFFSET_BYTES], "big"))

    def range_hash(self, start: int, end: int) -> bytes:
        """MTH of leaves ``[start, end)`` where ``start`` is aligned as in every RFC 6962 proof."""
        width = end - start
        if width <= 0 or end > self.size:
            raise ArchiveError(f"no subtree [{start}, {end}) in a stored tree of {self.size} leaves")
        if width & (width - 1) == 0:
            level = width.bit_length() - 1
            if start % width:
                raise ValueError(f"subtree [{start}, {end}) is not aligned")
            return self.hash_at(level, start >> level)
        split = 1 << ((width - 1).bit_length() - 1)
        return node_hash(self.range_hash(start, start + split), self.range_hash(start + split, end))

    def root(self, size: int) -> bytes:
        """The RFC 6962 root of the first ``size`` leaves."""
        return EMPTY_ROOT if size == 0 else self.range_hash(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Audit path of leaf ``index`` in the tree of ``size`` leaves (leaf-to-root order)."""
        return inclusion_path(index, size, self.range_hash)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 6962 consistency proof from ``old_size`` to ``new_size`` leaves."""
        return consistency_path(old_size, new_size, self.range_hash)

    # ---- writing -------------------------------------------------------------------------------

    def repair(self) -> None:
        """Make every level agree with level 0 (cut what lies beyond, add what a crash left out)."""
        self.truncate(self.size)

    def _fill_levels(self) -> None:
        for level in range(1, MAX_LEVELS):
            want = self.size >> level
            if want == 0:
                break
            name = f"level-{level:02d}"
            for index in range(min(self._count(name, HASH_BYTES), want), want):
                left = self.hash_at(level - 1, 2 * index)
                right = self.hash_at(level - 1, 2 * index + 1)
                self._write(name, index * HASH_BYTES, node_hash(left, right))

    def _load_frontier(self) -> None:
        self._last = []
        for level in range(MAX_LEVELS):
            count = self.size >> level
            if count == 0:
                break
            self._last.append(self.hash_at(level, count - 1))

    def append(self, leaves: list[tuple[bytes, int]]) -> None:
        """Append (leaf hash, end offset of the record in the log) pairs; parents are written as they complete."""
        if not leaves:
            return
        pending: dict[int, bytearray] = {}
        first_index: dict[int, int] = {}
        offsets = bytearray()
        for leaf, end_offset in leaves:
            index, level, node = self.size, 0, leaf
            offsets += end_offset.to_bytes(OFFSET_BYTES, "big")
            while True:
                if level not in pending:
                    pending[level] = bytearray()
                    first_index[level] = index
                pending[level] += node
                left = self._last[level] if index & 1 else b""
                if level == len(self._last):
                    self._last.append(node)
                else:
                    self._last[level] = node
                if not index & 1:
                    break
                node = node_hash(left, node)
                index >>= 1
                level += 1
            self.size += 1
        self._write("offsets", (self.size - len(leaves)) * OFFSET_BYTES, bytes(offsets))
        for level, data in pending.items():
            self._write(f"level-{level:02d}", first_index[level] * HASH_BYTES, bytes(data))

    def truncate(self, size: int) -> None:
        """Keep only the first ``size`` leaves (and the subtrees within them)."""
        self._truncate("offsets", size * OFFSET_BYTES)
        for level in range(MAX_LEVELS):
            name = f"level-{level:02d}"
            if level and not (self.directory / name).exists():
                break
            self._truncate(name, (size >> level) * HASH_BYTES)
        self.size = size
        self._fill_levels()
        self._load_frontier()

    def sync(self) -> None:
        """fsync every file (on a clean close; a crash is repaired from the log on open)."""
        for name, fd in self._fds.items():
            try:
                os.fsync(fd)
            except OSError as exc:
                raise ArchiveError(f"fsync of {self.directory / name} failed: {exc}") from exc

    def close(self) -> None:
        """Release the files."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
