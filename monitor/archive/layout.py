"""Where the archive keeps things inside its data directory (``MONITOR_DATA_DIR``).

::

    <data_dir>/
      log/records.log        one canonical JSON leaf per line (the Merkle log)
      log/checkpoints.log    one signed checkpoint per line (JSON)
      blobs/<ab>/<sha256>    content-addressed stored parts (read-only files)
      tmp/                   temp files of writes in progress (cleaned on open)
      keys/signing_key.pem   Ed25519 private key, mode 0600
      keys/public_key.pem    its public key, for third parties
      index.sqlite3          look-up index (derived from the log, rebuilt if lost)
      tree/level-NN, offsets stored Merkle subtree hashes (derived from the log)
      writer.lock            held (flock) by the one process that may write
      commit.lock            held exclusively during a commit, shared by readers
      DIRTY                  present while a writer has the archive open
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ArchiveLayout:
    """Paths of one archive rooted at ``root``."""

    root: Path

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def records_log(self) -> Path:
        return self.log_dir / "records.log"

    @property
    def checkpoints_log(self) -> Path:
        return self.log_dir / "checkpoints.log"

    @property
    def blob_dir(self) -> Path:
        return self.root / "blobs"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def key_dir(self) -> Path:
        return self.root / "keys"

    @property
    def public_key(self) -> Path:
        return self.key_dir / "public_key.pem"

    @property
    def tree_dir(self) -> Path:
        return self.root / "tree"

    @property
    def witness_file(self) -> Path:
        """Checkpoints witnesses returned (C2SP notes, concatenated): exports prove consistency to the newest."""
        return self.log_dir / "witnessed.txt"

    @property
    def index(self) -> Path:
        return self.root / "index.sqlite3"

    @property
    def writer_lock(self) -> Path:
        return self.root / "writer.lock"

    @property
    def commit_lock(self) -> Path:
        return self.root / "commit.lock"

    @property
    def dirty_marker(self) -> Path:
        return self.root / "DIRTY"


@contextmanager
def shared_commit_lock(layout: ArchiveLayout) -> Iterator[None]:
    """Hold the commit lock shared, so a writer cannot be half-way through a commit."""
    try:
        fd = os.open(layout.commit_lock, os.O_RDONLY)
    except FileNotFoundError:
        yield  # no writer has ever opened this archive
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def writer_active(layout: ArchiveLayout) -> bool:
    """Whether some process holds the archive open for writing right now."""
    try:
        fd = os.open(layout.writer_lock, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
