#!/usr/bin/env python3
"""Check an evidence export (``monitor archive export``) without the monitor package.

Usage: python3 verify_export.py [EXPORT_DIR] [--public-key TRUSTED.pem] [--witness SAVED.note]

Every export folder carries a copy of this file; run it from there (EXPORT_DIR
defaults to the folder the script is in). It needs only the Python standard library
and ``cryptography``, and checks that
1. every exported file hashes to the SHA-256 that record.json lists for it;
2. the evidence id is the first 32 hex digits of SHA-256(record.json);
3. the RFC 6962 leaf hash SHA-256(0x00 || record.json) and the inclusion proof
   (RFC 9162 section 2.1.3.2) lead to the root of the checkpoint;
4. the checkpoint (a C2SP signed note: origin, size, base64 root) is signed by the
   public key (type 0x01 key hash SHA-256(name || 0x0A || 0x01 || key)[:4]), and its
   signed time (a cosignature/v1 line of the same key) is the one proof.json states;
   checkpoint.txt / checkpoint.sig are exactly those signed bytes and signature;
5. with witnessed.note: that earlier checkpoint is signed by the same key and the
   RFC 6962 consistency proof (RFC 9162 section 2.1.4.2) shows the checkpoint extends
   it; with --witness, witnessed.note must be one of the checkpoints you saved.
Exports made before C2SP checkpoints (proof format v1) are checked as they were.
Pass --public-key with the copy the platform published, or compare the printed
fingerprint out of band. Exit status 0 when everything holds, 1 with the failed checks.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

DASH = "\u2014 "


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_proof(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to."""
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ValueError("proof too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("proof too short")
    return r


def consistent(first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: whether the tree (second, second_root) extends (first, first_root)."""
    if not 0 < first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    nodes = ([first_root] if first & (first - 1) == 0 else []) + proof
    if not nodes:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def parse_note(text: str) -> tuple[str, list[tuple[str, bytes]]]:
    """(body, [(key name, key hash + signature bytes)]) of one signed note."""
    body, sep, signatures = text.partition("\n\n")
    if not sep:
        raise ValueError("no blank line between body and signatures")
    lines = [line for line in signatures.split("\n") if line]
    if not lines or not all(line.startswith(DASH) for line in lines):
        raise ValueError("malformed signature lines")
    parsed = []
    for line in lines:
        name, _, encoded = line[len(DASH):].rpartition(" ")
        parsed.append((name, base64.b64decode(encoded, validate=True)))
    return body + "\n", parsed


def check_note(text: str, key: Ed25519PublicKey) -> tuple[int, bytes, int | None, bytes]:
    """Verify a checkpoint note under ``key``; (size, root, signed unix time, signature). ValueError if not."""
    body, signatures = parse_note(text)
    origin, size, root_b64 = body.split("\n")[:3]
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    plain_id = hashlib.sha256(origin.encode() + b"\n\x01" + raw).digest()[:4]
    stamp_id = hashlib.sha256(origin.encode() + b"\n\x04" + raw).digest()[:4]
    signature, when = None, None
    for name, data in signatures:
        if name != origin:
            continue
        try:
            if data[:4] == plain_id and len(data) == 68:
                key.verify(data[4:], body.encode())
                signature = data[4:]
            elif data[:4] == stamp_id and len(data) == 76:
                stamp = int.from_bytes(data[4:12], "big")
                key.verify(data[12:], f"cosignature/v1\ntime {stamp}\n".encode() + body.encode())
                when = stamp
        except InvalidSignature as exc:
            raise ValueError(f"signature of {origin} does not verify") from exc
    if signature is None:
        raise ValueError(f"no signature by this public key (key name {origin})")
    return int(size), base64.b64decode(root_b64, validate=True), when, signature


def iso_of(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def check(export_dir: Path, trusted_key: Path | None, witness: Path | None) -> list[str]:
    """Return the failed checks (empty when the export is intact)."""
    failures: list[str] = []
    record = (export_dir / "record.json").read_bytes()
    proof = json.loads((export_dir / "proof.json").read_text(encoding="utf-8"))
    leaf = json.loads(record)

    for name, role in proof["files"].items():
        expected = leaf["parts"][role]["sha256"]
        actual = hashlib.sha256((export_dir / name).read_bytes()).hexdigest()
        if actual != expected:
            failures.append(f"{name}: SHA-256 {actual} but record.json lists {expected}")
    if proof["purged"]:
        print(f"note: the content was purged after retention at {proof['purged']['at']}")

    if hashlib.sha256(record).hexdigest()[:32] != proof["evidence_id"]:
        failures.append("evidence id is not SHA-256(record.json)[:32]")
    if hashlib.sha256(record).hexdigest() != proof["record_sha256"]:
        failures.append("record_sha256 does not match record.json")
    leaf_hash = hashlib.sha256(b"\x00" + record).digest()
    if leaf_hash.hex() != proof["leaf_hash"]:
        failures.append("leaf_hash is not SHA-256(0x00 || record.json)")

    key_path = trusted_key or export_dir / "public_key.pem"
    public_key = serialization.load_pem_public_key(key_path.read_bytes())
    if not isinstance(public_key, Ed25519PublicKey):
        return [*failures, f"{key_path} is not an Ed25519 public key"]
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    fingerprint = hashlib.sha256(raw).hexdigest()[:16]

    checkpoint = proof["checkpoint"]
    if "note" in checkpoint:
        try:
            size, root, when, signature = check_note(checkpoint["note"], public_key)
            if (size, root.hex()) != (checkpoint["size"], checkpoint["root"]):
                failures.append("the checkpoint note's size/root differ from proof.json")
            if when is None or iso_of(when) != checkpoint["time"]:
                failures.append("the checkpoint's signed time is missing or differs from proof.json")
            signed = checkpoint["note"].partition("\n\n")[0].encode() + b"\n"
            if (export_dir / "checkpoint.txt").read_bytes() != signed:
                failures.append("checkpoint.txt is not the signed checkpoint body")
            if (export_dir / "checkpoint.sig").read_bytes() != signature:
                failures.append("checkpoint.sig is not the checkpoint's signature")
        except ValueError as exc:
            failures.append(f"checkpoint signature does not verify: {exc}")
    else:
        text = (
            f"monitor-archive checkpoint v1\nkey {checkpoint['key_id']}\nsize {checkpoint['size']}\n"
            f"root {checkpoint['root']}\ntime {checkpoint['time']}\n"
        ).encode()
        if (export_dir / "checkpoint.txt").read_bytes() != text:
            failures.append("checkpoint.txt is not the checkpoint of proof.json")
        if fingerprint != checkpoint["key_id"]:
            failures.append(f"checkpoint names key {checkpoint['key_id']}, the public key is {fingerprint}")
        try:
            public_key.verify(base64.b64decode(checkpoint["signature"]), text)
        except InvalidSignature:
            failures.append("checkpoint signature does not verify")

    try:
        root = root_from_proof(proof["leaf_index"], checkpoint["size"], leaf_hash,
                               [bytes.fromhex(h) for h in proof["inclusion_proof"]])
        if root.hex() != checkpoint["root"]:
            failures.append("inclusion proof does not lead to the checkpoint root")
    except ValueError as exc:
        failures.append(f"inclusion proof malformed: {exc}")
    if proof["tree_size"] != checkpoint["size"]:
        failures.append("tree_size differs from the checkpoint size")

    failures += check_witnessed(export_dir, proof, public_key, witness)
    print(f"public key fingerprint: {fingerprint} (compare with the one the platform published)")
    return failures


def check_witnessed(export_dir: Path, proof: dict[str, Any], key: Ed25519PublicKey, witness: Path | None) -> list[str]:
    """The consistency of the checkpoint with the witnessed one (and with the inspector's saved copy)."""
    consistency = proof.get("consistency")
    note_path = export_dir / "witnessed.note"
    if not consistency:
        return [f"--witness {witness}: the export carries no witnessed checkpoint"] if witness else []
    try:
        text = note_path.read_text(encoding="utf-8")
        old_size, old_root, _, _ = check_note(text, key)
    except (OSError, ValueError) as exc:
        return [f"witnessed.note does not verify: {exc}"]
    checkpoint = proof["checkpoint"]
    nodes = [bytes.fromhex(h) for h in consistency["proof"]]
    failures = []
    if (consistency["old_size"], consistency["new_size"]) != (old_size, checkpoint["size"]):
        failures.append("the consistency proof's sizes differ from the checkpoints")
    elif not consistent(old_size, checkpoint["size"], old_root, bytes.fromhex(checkpoint["root"]), nodes):
        failures.append(f"consistency proof from the witnessed checkpoint (size {old_size}) does not verify")
    else:
        print(f"the log extends the witnessed checkpoint of size {old_size} (RFC 6962 consistency proof)")
    if witness is not None and tuple(text.split("\n")[:3]) not in saved_heads(witness.read_text(encoding="utf-8")):
        failures.append(f"witnessed.note is not one of the checkpoints saved in {witness}")
    return failures


def saved_heads(text: str) -> set[tuple[str, ...]]:
    """(origin, size, root) of every checkpoint in a file of concatenated notes."""
    lines = text.split("\n")
    return {
        tuple(lines[i:i + 3])
        for i in range(len(lines) - 2)
        if (i == 0 or not lines[i - 1] or lines[i - 1].startswith(DASH))
        and lines[i] and not lines[i].startswith(DASH) and lines[i + 1].isdigit()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("export_dir", type=Path, nargs="?", default=Path(__file__).resolve().parent)
    parser.add_argument("--public-key", type=Path, help="trusted copy of the archive public key (PEM)")
    parser.add_argument("--witness", type=Path, help="checkpoints you saved earlier (C2SP notes)")
    args = parser.parse_args()
    failures = check(args.export_dir, args.public_key, args.witness)
    if failures:
        for failure in failures:
            print(f"FAIL: {failure}")
        return 1
    proof = json.loads((args.export_dir / "proof.json").read_text(encoding="utf-8"))
    print(f"OK: evidence {proof['evidence_id']} is record #{proof['leaf_index']} of a signed log of "
          f"{proof['tree_size']} records (checkpoint of {proof['checkpoint']['time']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
