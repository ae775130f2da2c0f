"""C2SP signed notes and checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

A checkpoint is a note whose body is three lines, then a blank line, then signature
lines::

    monitor-archive/0123456789abcdef          <- origin (names the log)
    1234                                      <- tree size
    3q2+7w...=                                <- base64 RFC 6962 root hash

    — monitor-archive/0123456789abcdef <base64(4-byte key hash || Ed25519 signature)>
    — monitor-archive/0123456789abcdef <base64(4-byte key hash || 8-byte time || signature)>

The first signature line is the log's signature over the body (signature type 0x01:
key hash = SHA-256(name || 0x0A || 0x01 || public key)[:4]). The second is a
``cosignature/v1`` timestamped signature by the same key (type 0x04, C2SP
tlog-cosignature) over ``"cosignature/v1\\ntime <unix seconds>\\n" || body``: it
carries the signed time of the checkpoint. Verifiers that only know the log key
(type 0x01) ignore it, as the signed-note format says of unknown keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_PREFIX = "\u2014 "  # em dash and a space
TYPE_ED25519 = 0x01
TYPE_COSIGNATURE = 0x04
COSIGNATURE_HEADER = "cosignature/v1"
ED25519_BYTES = 64
TIMESTAMP_BYTES = 8


class NoteError(ValueError):
    """A note or checkpoint is malformed; the message says where."""


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def note_key_hash(name: str, public_key: Ed25519PublicKey, signature_type: int = TYPE_ED25519) -> bytes:
    """The 4-byte key hash of a signed-note key: SHA-256(name || 0x0A || type || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + raw_public_key(public_key)).digest()[:4]


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """The three-line checkpoint body (with its final newline)."""
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def cosigned_message(timestamp: int, body: str) -> bytes:
    """What a cosignature/v1 signs: header, time line, then the whole body."""
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key hash and the rest (signature, maybe timestamped)."""

    name: str
    key_hash: bytes
    payload: bytes

    def line(self) -> str:
        encoded = base64.b64encode(self.key_hash + self.payload).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True)
class SignedNote:
    """A note body and its signature lines."""

    body: str
    signatures: tuple[NoteSignature, ...]

    def text(self) -> str:
        """The note as transmitted: body, a blank line, signature lines."""
        return self.body + "\n" + "".join(sig.line() for sig in self.signatures)

    def checkpoint(self) -> tuple[str, int, bytes]:
        """(origin, size, root) of a checkpoint body; NoteError if it is not one."""
        lines = self.body.split("\n")[:-1]
        if len(lines) < 3:
            raise NoteError(f"a checkpoint body has at least 3 lines, this one {len(lines)}")
        origin, size_text, root_text = lines[:3]
        if not origin or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise NoteError(f"bad checkpoint origin or size line: {origin!r} / {size_text!r}")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error as exc:
            raise NoteError(f"checkpoint root is not base64: {root_text!r}") from exc
        if len(root) != 32:
            raise NoteError(f"checkpoint root is {len(root)} bytes, not 32")
        return origin, int(size_text), root

    def verify(self, name: str, public_key: Ed25519PublicKey) -> bool:
        """Whether a type-0x01 signature line of key ``name`` verifies over the body."""
        key_hash = note_key_hash(name, public_key, TYPE_ED25519)
        for sig in self.signatures:
            if sig.name == name and sig.key_hash == key_hash and len(sig.payload) == ED25519_BYTES:
                try:
                    public_key.verify(sig.payload, self.body.encode())
                    return True
                except InvalidSignature:
                    return False
        return False

    def signed_time(self, name: str, public_key: Ed25519PublicKey) -> int | None:
        """The time of a valid cosignature/v1 line of key ``name`` (unix seconds), else None."""
        key_hash = note_key_hash(name, public_key, TYPE_COSIGNATURE)
        for sig in self.signatures:
            if sig.name == name and sig.key_hash == key_hash and len(sig.payload) == TIMESTAMP_BYTES + ED25519_BYTES:
                timestamp = int.from_bytes(sig.payload[:TIMESTAMP_BYTES], "big")
                try:
                    public_key.verify(sig.payload[TIMESTAMP_BYTES:], cosigned_message(timestamp, self.body))
                except InvalidSignature:
                    return None
                return timestamp
        return None

    def claimed_time(self, name: str) -> int | None:
        """The time a timestamped line of ``name`` claims (unchecked; for messages and ordering)."""
        for sig in self.signatures:
            if sig.name == name and len(sig.payload) == TIMESTAMP_BYTES + ED25519_BYTES:
                return int.from_bytes(sig.payload[:TIMESTAMP_BYTES], "big")
        return None


def sign_note(key: Ed25519PrivateKey, name: str, body: str, timestamp: int) -> SignedNote:
    """The body signed by ``key`` (type 0x01) and time-stamped by it (cosignature/v1)."""
    public_key = key.public_key()
    plain = NoteSignature(name, note_key_hash(name, public_key, TYPE_ED25519), key.sign(body.encode()))
    stamped = NoteSignature(
        name,
        note_key_hash(name, public_key, TYPE_COSIGNATURE),
        timestamp.to_bytes(TIMESTAMP_BYTES, "big") + key.sign(cosigned_message(timestamp, body)),
    )
    return SignedNote(body, (plain, stamped))


def parse_notes(text: str, where: str) -> list[SignedNote]:
    """Every note in ``text`` (notes may be concatenated, blank lines between them allowed).

    Raises NoteError naming ``where`` and the line for a note without a signature.
    """
    notes: list[SignedNote] = []
    lines = text.split("\n")
    number = 0
    while number < len(lines):
        while number < len(lines) and not lines[number].strip():
            number += 1
        if number >= len(lines):
            break
        start = number
        body: list[str] = []
        while number < len(lines) and lines[number] != "":
            if lines[number].startswith(SIGNATURE_PREFIX):
                raise NoteError(f"{where} line {number + 1}: signature line inside a note body")
            body.append(lines[number])
            number += 1
        number += 1  # the blank separator
        signatures: list[NoteSignature] = []
        while number < len(lines) and lines[number].startswith(SIGNATURE_PREFIX):
            signatures.append(_signature(lines[number], f"{where} line {number + 1}"))
            number += 1
        if not signatures:
            raise NoteError(f"{where} line {start + 1}: note without signature lines")
        notes.append(SignedNote("".join(line + "\n" for line in body), tuple(signatures)))
    return notes


def _signature(line: str, where: str) -> NoteSignature:
    name, _, encoded = line[len(SIGNATURE_PREFIX):].rpartition(" ")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise NoteError(f"{where}: signature is not base64") from exc
    if not name or " " in name or len(raw) < 5:
        raise NoteError(f"{where}: malformed signature line")
    return NoteSignature(name, raw[:4], raw[4:])
