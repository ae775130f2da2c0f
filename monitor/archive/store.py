"""Content-addressed blob storage for the evidence archive.

The archive needs only four operations from its storage, so an S3-compatible
object store with object lock (compliance mode) can replace the local disk later
without touching the rest of the archive::

    put(data) -> sha256 hex     (durable before it returns)
    get(sha256) -> bytes
    exists(sha256) -> bool
    delete(sha256) -> None      (only the purge of expired, unheld evidence calls it)

:class:`LocalBlobStore` keeps each blob at ``<root>/<first two hex>/<sha256>`` and
writes it the durable way: temp file in ``<tmp_dir>``, ``fsync`` the file,
``rename`` into place, ``fsync`` the directory. Every failing OS call becomes an
:class:`ArchiveWriteError` naming the path and the OS error.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from monitor.errors import ArchiveError, ArchiveWriteError

HEX_DIGITS = "0123456789abcdef"


@runtime_checkable
class BlobStore(Protocol):
    """Narrow storage interface of the archive; blobs are named by their SHA-256 (hex)."""

    def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its SHA-256 hex digest. Raises ArchiveWriteError."""
        ...

    def get(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``; raises ArchiveError if absent."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether a blob named ``sha256`` is stored."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove the blob durably (no error if already absent)."""
        ...


def fsync_dir(path: Path) -> None:
    """Make the directory entry changes in ``path`` (create, rename, unlink) durable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise ArchiveWriteError(f"cannot open directory {path} to fsync it: {exc}") from exc
    try:
        os.fsync(fd)
    except OSError as exc:
        raise ArchiveWriteError(f"fsync of directory {path} failed: {exc}") from exc
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes, path: Path) -> None:
    """``os.write`` until every byte is written; a short write with no progress is ENOSPC."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError as exc:
            raise ArchiveWriteError(f"write to {path} failed: {exc}") from exc
        if written <= 0:
            raise ArchiveWriteError(f"write to {path} failed: {os.strerror(errno.ENOSPC)}")
        view = view[written:]


def write_file_durably(path: Path, data: bytes, tmp_dir: Path, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically and durably (temp, fsync, rename, fsync dir).

    Either the complete file is at ``path`` afterwards, or the call raised
    :class:`ArchiveWriteError` and ``path`` is unchanged (the temp file is removed when
    the OS lets us).
    """
    tmp = tmp_dir / f"{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise ArchiveWriteError(f"cannot create temp file {tmp} for {path}: {exc}") from exc
    try:
        try:
            write_all(fd, data, tmp)
            os.fsync(fd)
        except OSError as exc:
            raise ArchiveWriteError(f"fsync of {tmp} (for {path}) failed: {exc}") from exc
        finally:
            os.close(fd)
        try:
            os.rename(tmp, path)
        except OSError as exc:
            raise ArchiveWriteError(f"rename of {tmp} to {path} failed: {exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # the disk may still be failing; recovery removes tmp files
        raise
    try:
        fsync_dir(path.parent)
    except ArchiveWriteError:
        # Renamed but not known to be durable: take it back so nothing unacknowledged stays.
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


class LocalBlobStore:
    """Blobs on the local filesystem under ``root`` (see the module docstring)."""

    def __init__(self, root: Path, tmp_dir: Path) -> None:
        self.root = root
        self.tmp_dir = tmp_dir
        try:
            created = False
            for directory in (root, tmp_dir):
                if not directory.is_dir():
                    directory.mkdir(parents=True, exist_ok=True)
                    created = True
            for a in HEX_DIGITS:
                for b in HEX_DIGITS:
                    shard = root / f"{a}{b}"
                    if not shard.is_dir():
                        shard.mkdir(exist_ok=True)
                        created = True
        except OSError as exc:
            raise ArchiveWriteError(f"cannot create blob directories under {root}: {exc}") from exc
        if created:
            fsync_dir(root)
            fsync_dir(root.parent)

    def path_for(self, sha256: str) -> Path:
        """Where the blob named ``sha256`` lives (whether or not it exists)."""
        if len(sha256) != 64 or any(c not in HEX_DIGITS for c in sha256):
            raise ArchiveError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        return self.put_new(data)[0]

    def put_new(self, data: bytes) -> tuple[str, bool]:
        """Like :meth:`put`, also saying whether this call created the file (for rollback)."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
        if path.exists() and self._holds(path, digest):
            return digest, False
        write_file_durably(path, data, self.tmp_dir, mode=0o444)
        return digest, True

    @staticmethod
    def _holds(path: Path, digest: str) -> bool:
        # A file under a content name that does not match its name was damaged;
        # rewriting it with the right content is the only correct move.
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest() == digest
        except OSError:
            return False

    def get(self, sha256: str) -> bytes:
        path = self.path_for(sha256)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ArchiveError(f"blob {sha256} is not stored (expected at {path})") from exc
        except OSError as exc:
            raise ArchiveError(f"cannot read blob {path}: {exc}") from exc

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

    def delete(self, sha256: str) -> None:
        path = self.path_for(sha256)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ArchiveWriteError(f"cannot delete blob {path}: {exc}") from exc
        fsync_dir(path.parent)

    def iter_names(self) -> Iterator[str]:
        """Every file name under the shard directories (blob names, or intruders)."""
        for shard in sorted(self.root.iterdir()):
            if shard.is_dir():
                for entry in sorted(os.listdir(shard)):
                    yield f"{shard.name}/{entry}"
            else:
                yield shard.name

    def clean_tmp(self) -> int:
        """Remove leftover temp files (from a crash); returns how many were removed."""
        removed = 0
        for entry in self.tmp_dir.iterdir():
            try:
                entry.unlink()
                removed += 1
            except OSError:
                pass
        if removed:
            fsync_dir(self.tmp_dir)
        return removed
