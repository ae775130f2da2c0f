"""A room session's checkpoint: what another gateway needs to continue it exactly.

Taken at an utterance boundary where everything is consistent: the VAD segmenter as it was
right after it cut utterance *k* (with the stream position ``next_seq`` it had read up to),
and detection, dedup, transcript and counters right after utterance *k* was delivered. A
gateway taking the room over restores it and asks the client to send again from
``next_seq``; utterances after *k* are cut again identically (same keys), so their jobs,
results and archived alerts are found instead of being made twice.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from monitor.asr.vad import SegmenterState
from monitor.cluster.broker import BrokerError, frame, unframe

_ARRAYS = ("vad_h", "vad_c", "vad_context", "audio", "unscored")


def _encode_segmenter(state: SegmenterState) -> dict[str, Any]:
    data = asdict(state)
    for name in _ARRAYS:
        data[name] = base64.b64encode(np.ascontiguousarray(data[name], dtype="<f4").tobytes()).decode()
    return data


def _decode_segmenter(data: dict[str, Any]) -> SegmenterState:
    values = dict(data)
    for name in _ARRAYS:
        values[name] = np.frombuffer(base64.b64decode(values[name]), dtype="<f4").astype(np.float32)
    return SegmenterState(**values)


@dataclass
class SessionCheckpoint:
    session_id: str
    room_id: str
    anchor_id: str | None
    sample_rate: int
    context: dict[str, Any]
    opened_by: str
    started_at: str
    next_seq: int
    segmenter: SegmenterState
    detection: dict[str, Any]
    transcript: list[dict[str, Any]] = field(default_factory=list)
    alerts_sent: int = 0
    epoch: int = 0
    gateway: str = ""

    def encode(self) -> bytes:
        meta = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "segmenter"}
        meta["segmenter"] = _encode_segmenter(self.segmenter)
        return frame(meta)

    @classmethod
    def decode(cls, data: bytes) -> SessionCheckpoint:
        meta, _ = unframe(data, subject="a session checkpoint")
        try:
            meta["segmenter"] = _decode_segmenter(meta["segmenter"])
            return cls(**meta)
        except (KeyError, TypeError, ValueError) as exc:
            raise BrokerError(f"malformed session checkpoint: {exc}") from None
