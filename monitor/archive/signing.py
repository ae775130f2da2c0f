"""Ed25519 signing key of the archive and the signed checkpoints (tree heads).

The private key is generated on the first open of a new data directory and kept in
``keys/signing_key.pem`` (PKCS#8, mode 0600), or read from ``MONITOR_SIGNING_KEY``
(a path outside the data directory). Its public key is exported as
``keys/public_key.pem`` (SubjectPublicKeyInfo) for third parties. A missing private
key is never replaced while the archive has a public key or checkpoints (that would
orphan every old checkpoint): :class:`ArchiveKeyError` names the file instead, and
the server refuses to start.

Checkpoints are C2SP signed notes (:mod:`monitor.archive.note`); the origin and key
name is ``monitor-archive/<key id>``, with ``key id`` the first 16 hex digits of
SHA-256 over the raw 32-byte public key. Archives written before that keep their
lines in the earlier format, which still verifies; it signed exactly::

    monitor-archive checkpoint v1
    key <key_id>
    size <tree size>
    root <tree root, lowercase hex>
    time <UTC ISO-8601>
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from monitor.archive.note import NoteError, SignedNote, checkpoint_body, note_key_hash, parse_notes, sign_note
from monitor.archive.store import fsync_dir, write_file_durably
from monitor.errors import ArchiveError, ArchiveIntegrityError, ArchiveKeyError

PRIVATE_KEY_FILE = "signing_key.pem"
PUBLIC_KEY_FILE = "public_key.pem"
CHECKPOINT_HEADER = "monitor-archive checkpoint v1"


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key: 16 hex digits of SHA-256 over its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def origin_of(public_key: Ed25519PublicKey) -> str:
    """The checkpoint origin (and signed-note key name) of the log signed by ``public_key``."""
    return f"monitor-archive/{key_id(public_key)}"


def load_or_create_signing_key(
    key_dir: Path, tmp_dir: Path, *, external: Path | None = None, has_history: bool = False
) -> Ed25519PrivateKey:
    """The archive's signing key; generated (and the public PEM exported) only for a new archive.

    ``external``: the key file named by ``MONITOR_SIGNING_KEY`` (never created here).
    ``has_history``: the archive already holds checkpoints. Raises ArchiveKeyError, naming
    the file, when the key is missing for an archive that had one, readable by group or
    others, not Ed25519, or not the key of the archive's ``public_key.pem``.
    """
    private_path = external or key_dir / PRIVATE_KEY_FILE
    public_path = key_dir / PUBLIC_KEY_FILE
    if private_path.exists():
        key = _load_private(private_path)
        _ensure_public_pem(key_dir, tmp_dir, key.public_key())
        return key
    if external is not None:
        raise ArchiveKeyError(f"the signing key {external} (MONITOR_SIGNING_KEY) does not exist")
    if public_path.exists() or has_history:
        raise ArchiveKeyError(
            f"the archive signing key {private_path} is missing, but the archive has "
            f"{'its public key ' + str(public_path) if public_path.exists() else 'signed checkpoints'}: "
            "restore the key file (or point MONITOR_SIGNING_KEY at it); a new key would orphan every "
            "earlier checkpoint, so none is made"
        )
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


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        mode = path.stat().st_mode & 0o777
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ArchiveKeyError(f"cannot load the archive signing key {path}: {exc}") from exc
    if mode & 0o077:
        raise ArchiveKeyError(
            f"the archive signing key {path} is readable by group or others (mode {mode:04o}); "
            f"run 'chmod 600 {path}'"
        )
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ArchiveKeyError(f"{path} does not hold an Ed25519 private key")
    return loaded


def _ensure_public_pem(key_dir: Path, tmp_dir: Path, public_key: Ed25519PublicKey) -> None:
    public_path = key_dir / PUBLIC_KEY_FILE
    pem = public_pem(public_key)
    if public_path.exists():
        if public_path.read_bytes() != pem:
            raise ArchiveKeyError(
                f"the signing key is not the key of {public_path} (key {key_id(public_key)}): "
                "wrong MONITOR_SIGNING_KEY, or a replaced key; the public key is left unchanged"
            )
        return
    key_dir.mkdir(parents=True, exist_ok=True)
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
    """A signed tree head: the log had ``size`` records with Merkle root ``root`` at ``time``.

    ``note`` is the C2SP signed note (None for a checkpoint in the earlier format, whose
    ``signature`` covers :func:`signed_message`). ``key_id`` names the signing key:
    the 8 hex digits of the note key hash, or the 16-hex fingerprint of the old format.
    ``observed_skew_s``: how far the clock was behind the previous checkpoint when this
    one was signed (its time was held at the previous one's instead).
    """

    size: int
    root: bytes
    time: str
    key_id: str
    signature: bytes
    note: SignedNote | None = None
    origin: str | None = None
    observed_skew_s: float = 0.0

    def message(self) -> bytes:
        """The exact bytes the log's signature covers (the note body, or the old text)."""
        if self.note is not None:
            return self.note.body.encode()
        return signed_message(self.key_id, self.size, self.root, self.time)

    def text(self) -> str:
        """The C2SP checkpoint (signed note); ArchiveError for an old-format checkpoint."""
        if self.note is None:
            raise ArchiveError(f"checkpoint of size {self.size} is in the pre-C2SP format")
        return self.note.text()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "key_id": self.key_id,
            "root": self.root.hex(),
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "size": self.size,
            "time": self.time,
        }
        if self.note is not None:
            data["note"] = self.note.text()
            data["origin"] = self.origin
        return data

    def to_line(self) -> bytes:
        """One line of ``log/checkpoints.log``."""
        if self.note is None:
            data = self.to_json()
        else:
            data = {"note": self.note.text(), "observed_skew_s": self.observed_skew_s}
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_line(cls, line: bytes, where: str) -> Checkpoint:
        """Parse a checkpoint line (either format); ArchiveIntegrityError naming ``where`` if malformed."""
        try:
            data = json.loads(line)
            if "note" in data:
                checkpoint = cls.from_note(str(data["note"]), where)
                skew = float(data.get("observed_skew_s", 0.0))
                return cls(checkpoint.size, checkpoint.root, checkpoint.time, checkpoint.key_id,
                           checkpoint.signature, checkpoint.note, checkpoint.origin, skew)
            return cls(
                size=int(data["size"]),
                root=bytes.fromhex(data["root"]),
                time=str(data["time"]),
                key_id=str(data["key_id"]),
                signature=base64.b64decode(data["signature"], validate=True),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ArchiveIntegrityError(f"{where}: malformed checkpoint: {exc}") from exc

    @classmethod
    def from_note(cls, text: str, where: str) -> Checkpoint:
        """A checkpoint from its C2SP text (signatures not checked yet: see :meth:`verify`)."""
        try:
            notes = parse_notes(text, where)
            if len(notes) != 1:
                raise NoteError(f"{where}: expected one checkpoint, found {len(notes)}")
            return cls.from_signed_note(notes[0], where)
        except NoteError as exc:
            raise ArchiveIntegrityError(f"{where}: malformed checkpoint: {exc}") from exc

    @classmethod
    def from_signed_note(cls, note: SignedNote, where: str) -> Checkpoint:
        """A checkpoint from a parsed note; NoteError when it is not one of this log's form."""
        origin, size, root = note.checkpoint()
        own = [sig for sig in note.signatures if sig.name == origin and len(sig.payload) == 64]
        if not own:
            raise NoteError(f"{where}: no signature line named {origin!r}")
        timestamp = note.claimed_time(origin)
        time = iso_utc_seconds(timestamp) if timestamp is not None else ""
        return cls(size, root, time, own[0].key_hash.hex(), own[0].payload, note, origin)

    def signed_by(self, public_key: Ed25519PublicKey) -> bool:
        """Whether the checkpoint names ``public_key`` as its signer (signature not checked)."""
        if self.note is None:
            return self.key_id == key_id(public_key)
        return self.origin == origin_of(public_key) and self.key_id == note_key_hash(
            origin_of(public_key), public_key
        ).hex()

    def expected_key_id(self, public_key: Ed25519PublicKey) -> str:
        """How this checkpoint's format names ``public_key`` (for messages)."""
        if self.note is None:
            return key_id(public_key)
        return note_key_hash(origin_of(public_key), public_key).hex()

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        """Whether the signature (and, for a note, the signed time) is valid under ``public_key``."""
        if self.note is not None:
            name = origin_of(public_key)
            if self.origin != name or not self.note.verify(name, public_key):
                return False
            timestamp = self.note.signed_time(name, public_key)
            return timestamp is not None and iso_utc_seconds(timestamp) == self.time
        try:
            public_key.verify(self.signature, self.message())
        except InvalidSignature:
            return False
        return True


def iso_utc_seconds(timestamp: int) -> str:
    """A unix time as the archive's UTC ISO-8601 text."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def signed_message(kid: str, size: int, root: bytes, time: str) -> bytes:
    """The text an old-format checkpoint signed."""
    return f"{CHECKPOINT_HEADER}\nkey {kid}\nsize {size}\nroot {root.hex()}\ntime {time}\n".encode()


def sign_checkpoint(
    key: Ed25519PrivateKey, size: int, root: bytes, timestamp: int, *, observed_skew_s: float = 0.0
) -> Checkpoint:
    """Sign the tree head (``size``, ``root``) as a C2SP checkpoint time-stamped ``timestamp`` (unix s)."""
    origin = origin_of(key.public_key())
    note = sign_note(key, origin, checkpoint_body(origin, size, root), timestamp)
    checkpoint = Checkpoint.from_signed_note(note, "new checkpoint")
    return Checkpoint(size, root, checkpoint.time, checkpoint.key_id, checkpoint.signature, note, origin,
                      round(observed_skew_s, 6))


def sign_legacy_checkpoint(key: Ed25519PrivateKey, size: int, root: bytes, time: str) -> Checkpoint:
    """A checkpoint in the pre-C2SP format (to test that old archives still verify)."""
    kid = key_id(key.public_key())
    return Checkpoint(size, root, time, kid, key.sign(signed_message(kid, size, root, time)))
