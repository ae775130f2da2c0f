"""Append-only line files: the record log and the checkpoint log.

Each line is one canonical JSON document followed by ``\\n``. An append is
durable when :meth:`AppendLog.append` returns (``write`` + ``fsync``). The object
remembers the committed length; anything past it on disk is an unacknowledged
tail (a torn write from a crash, or a write whose ``fsync`` failed) and is cut off
before the next append, so a failed append never leaves half a record behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from monitor.archive.store import fsync_dir, write_all
from monitor.errors import ArchiveError, ArchiveWriteError


def read_lines(path: Path, length: int | None = None) -> tuple[list[bytes], int]:
    """The complete lines of ``path`` within its first ``length`` bytes (all when None).

    Returns the lines (without their newline) and the byte length they cover; a
    final fragment without a newline is not returned.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read() if length is None else handle.read(length)
    except FileNotFoundError:
        return [], 0
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc}") from exc
    end = data.rfind(b"\n") + 1
    if end == 0:
        return [], 0
    return data[: end - 1].split(b"\n"), end


class AppendLog:
    """One append-only line file opened for writing by the archive's single writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        existed = path.exists()
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ArchiveWriteError(f"cannot open {path} for appending: {exc}") from exc
        if not existed:
            fsync_dir(path.parent)
        self.length = os.fstat(self._fd).st_size

    def append(self, lines: list[bytes]) -> int:
        """Append ``lines`` durably; returns the length before the append (for rollback).

        Raises ArchiveWriteError naming the file and the OS error; the file is then
        cut back to its previous length (now, or before the next append if the
        disk refuses even that).
        """
        previous = self.length
        self.cut_tail()
        payload = b"".join(line + b"\n" for line in lines)
        try:
            os.lseek(self._fd, previous, os.SEEK_SET)
            write_all(self._fd, payload, self.path)
            os.fsync(self._fd)
        except (OSError, ArchiveWriteError) as exc:
            with contextlib.suppress(ArchiveWriteError):
                self.truncate_to(previous)  # else cut_tail() retries before the next append
            if isinstance(exc, ArchiveWriteError):
                raise
            raise ArchiveWriteError(f"fsync of {self.path} failed: {exc}") from exc
        self.length = previous + len(payload)
        return previous

    def cut_tail(self) -> None:
        """Remove bytes past the committed length (an unacknowledged tail)."""
        try:
            size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise ArchiveWriteError(f"cannot stat {self.path}: {exc}") from exc
        if size != self.length:
            self.truncate_to(self.length)

    def truncate_to(self, length: int) -> None:
        """Cut the file to ``length`` bytes durably and make that the committed length."""
        try:
            os.ftruncate(self._fd, length)
            os.fsync(self._fd)
        except OSError as exc:
            raise ArchiveWriteError(f"cannot truncate {self.path} to {length} bytes: {exc}") from exc
        self.length = length

    def close(self) -> None:
        """Release the file descriptor."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def iter_records(path: Path, length: int | None = None, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """Stream the complete lines of ``path`` from byte ``start`` up to ``length`` bytes in total.

    Yields (end offset just past the newline, line without the newline); a final
    fragment without a newline is not yielded. Memory stays at one line.
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; a generator cannot use with across yields cleanly
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc}") from exc
    with handle:
        handle.seek(start)
        offset = start
        for raw in handle:
            end = offset + len(raw)
            if length is not None and end > length:
                return
            if not raw.endswith(b"\n"):
                return
            offset = end
            yield end, raw[:-1]


def read_last_lines(path: Path, tail_bytes: int = 1 << 16) -> tuple[list[bytes], int]:
    """The complete lines within the last ``tail_bytes`` of ``path`` and the byte length they end at.

    The first line of the window is dropped unless the window starts at the file's start
    (it may be cut). A checkpoint log grows by one line per commit, so recovery reads
    only its end.
    """
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(0, size - tail_bytes)
            handle.seek(start)
            data = handle.read()
    except FileNotFoundError:
        return [], 0
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc}") from exc
    end = data.rfind(b"\n") + 1
    if end == 0:
        return [], start
    lines = data[: end - 1].split(b"\n")
    if start > 0:
        lines = lines[1:]
    return lines, start + end
