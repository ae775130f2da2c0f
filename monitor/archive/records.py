"""What one log entry (a Merkle leaf) holds, and how its parts are encoded.

Every leaf is one canonical JSON object (sorted keys, no spaces, UTF-8) with a
``kind``; :mod:`monitor.archive.leaves` has one typed class per kind (``alert``,
``session``, ``hold``/``release``, ``decision``, ``purge``) and builds the leaves. This
module holds what they share: canonical JSON, times, retention arithmetic, the part
manifest and FLAC encoding.

The leaf holds only metadata and hashes, never the spoken words, so a purge
removes the content while the leaf (and the Merkle chain) stays intact.
The evidence id of an ``alert`` or ``session`` leaf is the first 32 hex digits
of SHA-256 over the leaf bytes, so the id itself commits to the record.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from typing import Any

import av
import numpy as np

from monitor.errors import ArchiveError

FORMAT_VERSION = 1
MIN_RETENTION_YEARS = 3
EVIDENCE_ID_HEX = 32

MEDIA_ALERT = "application/json"
MEDIA_TRANSCRIPT = "text/plain; charset=utf-8"
MEDIA_SESSION_TRANSCRIPT = "application/json"
MEDIA_CLIP = "audio/flac"
MEDIA_REPORT = "application/json"

EXPORT_NAMES = {"alert": "alert.json", "transcript": "transcript.txt", "clip": "clip.flac"}
SESSION_EXPORT_NAMES = {"transcript": "transcript.json"}


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, no insignificant spaces, UTF-8, one line."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def evidence_id_of(leaf: bytes) -> str:
    """The evidence id of an alert/session leaf: 32 hex digits of SHA-256(leaf bytes)."""
    return hashlib.sha256(leaf).hexdigest()[:EVIDENCE_ID_HEX]


def iso_utc(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds and a ``Z`` suffix; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 time (``Z`` or offset; naive means UTC) to an aware datetime."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ArchiveError(f"not an ISO-8601 time: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def add_years(moment: datetime, years: int) -> datetime:
    """``moment`` plus whole calendar years; 29 February moves to 1 March (never shorter)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, month=3, day=1)


def min_retain_until(recorded_at: datetime) -> datetime:
    """The earliest ``retain_until`` the law allows for a record made at ``recorded_at``."""
    return add_years(recorded_at, MIN_RETENTION_YEARS)


def check_retention_years(years: int) -> int:
    """Refuse a retention below the legal minimum of three years."""
    if years < MIN_RETENTION_YEARS:
        raise ArchiveError(
            f"retention_years={years} is below the legal minimum of {MIN_RETENTION_YEARS} years; "
            "retention can only be configured upwards"
        )
    return years


def part(data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
    """The manifest entry of one stored part."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "type": media_type, **extra}


def encode_flac(clip: np.ndarray, sample_rate: int) -> bytes:
    """Encode float32 mono samples in [-1, 1] as 16-bit FLAC bytes.

    Raises ArchiveError for a clip that is not one-dimensional or is empty.
    """
    samples = np.asarray(clip, dtype=np.float32)
    if samples.ndim != 1 or samples.size == 0:
        raise ArchiveError(f"clip must be non-empty float32 mono samples, got shape {samples.shape}")
    if sample_rate <= 0:
        raise ArchiveError(f"sample_rate must be positive, got {sample_rate}")
    pcm = (np.clip(np.nan_to_num(samples), -1.0, 1.0) * 32767.0).round().astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=sample_rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm[np.newaxis, :], format="s16", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def decode_flac(data: bytes) -> tuple[np.ndarray, int]:
    """Decode FLAC bytes to float32 mono samples and their sample rate (for tests and tools)."""
    with av.open(io.BytesIO(data), "r") as container:
        chunks = []
        rate = 0
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            chunks.append(frame.to_ndarray().reshape(-1))
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return pcm.astype(np.float32) / 32767.0, rate


DECISIONS = ("confirm", "dismiss", "inspect")
"""Moderators' decisions: a violation, a false alert (needs a reason), send the goods to inspection."""

INSPECTION_CATEGORIES = ("precious_metal_claim", "gem_authenticity_claim")
"""Categories whose claims can be settled by inspecting the goods (purity and gem claims)."""

MAX_REASON_CHARS = 1000

INSPECTION_OUTCOMES = ("consistent", "inconsistent")
"""An inspector's finding: the goods match what was claimed (purity, naturalness, grade) or not."""
