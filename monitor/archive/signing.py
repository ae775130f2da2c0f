"""Ed25519 signing key of the archive and the signed checkpoints (tree heads).

The private key is generated on the first open of a data directory and kept in
``keys/signing_key.pem`` (PKCS#8, mode 0600); the public key is exported next to
it as ``keys/public_key.pem`` (SubjectPublicKeyInfo) so third parties verify
checkpoints without the private key.

A checkpoint signs exactly these bytes (UTF-8, each line ends with ``\\n``)::

    monitor-archive checkpoint v1
    key <key_id>
    size <tree size>
    root <tree root, lowercase hex>
    time <UTC ISO-8601>

where ``key_id`` is the first 16 hex digits of SHA-256 over the raw 32-byte
public key. ``openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin`` checks it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from monitor.archive.store import fsync_dir, write_file_durably
from monitor.errors import ArchiveError, ArchiveIntegrityError

PRIVATE_KEY_FILE = "signing_key.pem"
PUBLIC_KEY_FILE = "public_key.pem"
CHECKPOINT_HEADER = "monitor-archive checkpoint v1"


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key: 16 hex digits of SHA-256 over its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_or_create_signing_key(key_dir: Path, tmp_dir: Path) -> Ed25519PrivateKey:
    """The archive's signing key; generated (and the public PEM exported) on first use."""
    private_path = key_dir / PRIVATE_KEY_FILE
    if private_path.exists():
        try:
            loaded = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ArchiveError(f"cannot load the archive signing key {private_path}: {exc}") from exc
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ArchiveError(f"{private_path} does not hold an Ed25519 private key")
        if (private_path.stat().st_mode & 0o077) != 0:
            os.chmod(private_path, 0o600)
        _ensure_public_pem(key_dir, tmp_dir, loaded.public_key())
        return loaded
    key_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(key_dir, 0o700)
    fsync_dir(key_dir.parent)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_file_durably(private_path, pem, tmp_dir, mode=0o600)
    _ensure_public_pem(key_dir, tmp_dir, key.public_key())
    return key


def _ensure_public_pem(key_dir: Path, tmp_dir: Path, public_key: Ed25519PublicKey) -> None:
    public_path = key_dir / PUBLIC_KEY_FILE
    pem = public_pem(public_key)
    if not public_path.exists() or public_path.read_bytes() != pem:
        write_file_durably(public_path, pem, tmp_dir, mode=0o644)


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    """The public key as a SubjectPublicKeyInfo PEM (what ``openssl`` reads)."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read ``public_key.pem``; raises ArchiveError if it is missing or not Ed25519."""
    try:
        loaded = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"cannot load the archive public key {path}: {exc}") from exc
    if not isinstance(loaded, Ed25519PublicKey):
        raise ArchiveError(f"{path} does not hold an Ed25519 public key")
    return loaded


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: the log had ``size`` records with Merkle root ``root`` at ``time``."""

    size: int
    root: bytes
    time: str
    key_id: str
    signature: bytes

    def message(self) -> bytes:
        """The exact bytes the signature covers (see the module docstring)."""
        return signed_message(self.key_id, self.size, self.root, self.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "root": self.root.hex(),
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "size": self.size,
            "time": self.time,
        }

    def to_line(self) -> bytes:
        """One line of ``log/checkpoints.log``."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_line(cls, line: bytes, where: str) -> Checkpoint:
        """Parse a checkpoint line; raises ArchiveIntegrityError naming ``where`` if malformed."""
        try:
            data = json.loads(line)
            return cls(
                size=int(data["size"]),
                root=bytes.fromhex(data["root"]),
                time=str(data["time"]),
                key_id=str(data["key_id"]),
                signature=base64.b64decode(data["signature"], validate=True),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ArchiveIntegrityError(f"{where}: malformed checkpoint: {exc}") from exc

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        """Whether the signature is valid under ``public_key``."""
        try:
            public_key.verify(self.signature, self.message())
        except InvalidSignature:
            return False
        return True


def signed_message(kid: str, size: int, root: bytes, time: str) -> bytes:
    """The checkpoint text that is signed."""
    return f"{CHECKPOINT_HEADER}\nkey {kid}\nsize {size}\nroot {root.hex()}\ntime {time}\n".encode()


def sign_checkpoint(key: Ed25519PrivateKey, size: int, root: bytes, time: str) -> Checkpoint:
    """Sign the tree head (``size``, ``root``) at ``time`` (UTC ISO-8601)."""
    kid = key_id(key.public_key())
    return Checkpoint(size, root, time, kid, key.sign(signed_message(kid, size, root, time)))
