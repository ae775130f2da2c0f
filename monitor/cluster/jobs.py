"""Utterance jobs and their results as they travel between gateways and workers.

A job is one speech segment of one room session: its exact float32 16 kHz audio (so a
worker hears what the single-process server would), where it lies in the stream, and the
room category (for the transcriber's biasing). Its ``key`` is stable: the segment's first
and last sample in the session's stream, so a gateway that takes a room over and cuts the
same segment again finds the job (and its result) already there instead of a second one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from monitor.asr.rescore import Rewrite
from monitor.asr.transcriber import Transcript
from monitor.asr.vad import SpeechSegment
from monitor.cluster.broker import BrokerError, frame, safe_token, unframe
from monitor.stream.keys import segment_key

__all__ = ["UtteranceDone", "UtteranceJob", "job_subject", "result_subject", "segment_key"]


def job_subject(session_id: str, key: str) -> str:
    return f"monitor.jobs.{safe_token(session_id)}.{key}"


def result_subject(session_id: str, key: str) -> str:
    return f"monitor.results.{safe_token(session_id)}.{key}"


@dataclass(frozen=True)
class UtteranceJob:
    session_id: str
    room_id: str
    key: str
    start: float
    end: float
    room_category: str | None
    created_ms: int
    """Wall-clock ms when the gateway first cut the segment (alert ids begin with it)."""

    def encode(self, audio: np.ndarray) -> bytes:
        return frame(asdict(self), np.ascontiguousarray(audio, dtype="<f4").tobytes())

    @classmethod
    def decode(cls, data: bytes, *, subject: str = "") -> tuple[UtteranceJob, SpeechSegment]:
        meta, payload = unframe(data, subject=subject)
        try:
            job = cls(**meta)
        except TypeError as exc:
            raise BrokerError(f"malformed job on {subject}: {exc}") from None
        if len(payload) % 4:
            raise BrokerError(f"malformed job on {subject}: audio of {len(payload)} bytes is not float32")
        audio = np.frombuffer(payload, dtype="<f4").astype(np.float32)
        return job, SpeechSegment(start=job.start, end=job.end, audio=audio)


@dataclass(frozen=True)
class UtteranceDone:
    """A worker's answer: the transcript (``None``: no speech) and who made it, in what batch."""

    key: str
    created_ms: int
    transcript: Transcript | None
    worker: str
    batch_size: int

    def encode(self) -> bytes:
        meta: dict[str, Any] = {
            "key": self.key,
            "created_ms": self.created_ms,
            "worker": self.worker,
            "batch_size": self.batch_size,
            "transcript": None if self.transcript is None else asdict(self.transcript),
        }
        return frame(meta)

    @classmethod
    def decode(cls, data: bytes, *, subject: str = "") -> UtteranceDone:
        meta, _ = unframe(data, subject=subject)
        try:
            raw = meta["transcript"]
            transcript = None
            if raw is not None:
                rewrites = tuple(Rewrite(**r) for r in raw.pop("rewrites", ()))
                transcript = Transcript(**raw, rewrites=rewrites)
            return cls(meta["key"], int(meta["created_ms"]), transcript, str(meta["worker"]), int(meta["batch_size"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BrokerError(f"malformed result on {subject}: {exc}") from None
