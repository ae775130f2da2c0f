#!/usr/bin/env python3
"""Check an evidence export (``monitor archive export``) without the monitor package.

Usage: python3 verify_export.py EXPORT_DIR [--public-key TRUSTED.pem]

Needs only the Python standard library and ``cryptography``. It checks that
1. every exported file hashes to the SHA-256 that record.json lists for it;
2. the evidence id is the first 32 hex digits of SHA-256(record.json);
3. the RFC 6962 leaf hash SHA-256(0x00 || record.json) and the inclusion proof
   lead to the root of the checkpoint;
4. the checkpoint text is exactly size/root/time of proof.json, and its Ed25519
   signature verifies under the public key (pass --public-key with the copy the
   platform published, or compare the printed key fingerprint out of band).
Exit status 0 when everything holds, 1 with the failed check otherwise.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


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


def check(export_dir: Path, trusted_key: Path | None) -> list[str]:
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

    checkpoint = proof["checkpoint"]
    try:
        root = root_from_proof(proof["leaf_index"], checkpoint["size"], leaf_hash,
                               [bytes.fromhex(h) for h in proof["inclusion_proof"]])
        if root.hex() != checkpoint["root"]:
            failures.append("inclusion proof does not lead to the checkpoint root")
    except ValueError as exc:
        failures.append(f"inclusion proof malformed: {exc}")
    if proof["tree_size"] != checkpoint["size"]:
        failures.append("tree_size differs from the checkpoint size")

    text = (
        f"monitor-archive checkpoint v1\nkey {checkpoint['key_id']}\nsize {checkpoint['size']}\n"
        f"root {checkpoint['root']}\ntime {checkpoint['time']}\n"
    ).encode()
    if (export_dir / "checkpoint.txt").read_bytes() != text:
        failures.append("checkpoint.txt is not the checkpoint of proof.json")
    key_path = trusted_key or export_dir / "public_key.pem"
    public_key = serialization.load_pem_public_key(key_path.read_bytes())
    if not isinstance(public_key, Ed25519PublicKey):
        return [*failures, f"{key_path} is not an Ed25519 public key"]
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    fingerprint = hashlib.sha256(raw).hexdigest()[:16]
    if fingerprint != checkpoint["key_id"]:
        failures.append(f"checkpoint names key {checkpoint['key_id']}, the public key is {fingerprint}")
    try:
        public_key.verify(base64.b64decode(checkpoint["signature"]), text)
    except InvalidSignature:
        failures.append("checkpoint signature does not verify")
    print(f"public key fingerprint: {fingerprint} (compare with the one the platform published)")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("--public-key", type=Path, help="trusted copy of the archive public key (PEM)")
    args = parser.parse_args()
    failures = check(args.export_dir, args.public_key)
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
