"""What a gateway uses instead of local models and a local archive: the broker's workers and
archiver, behind the same small interfaces (``transcribe``; ``record_alert`` ...).

Both are called from the gateway's worker threads (the session's utterance jobs) and block
on the event loop's broker calls; they never run on the event loop itself.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from monitor.alerts import Alert
from monitor.asr.transcriber import Transcript
from monitor.asr.vad import SpeechSegment
from monitor.cluster.broker import (
    ARCHIVE_READ_SUBJECT,
    ARCHIVE_WRITE_SUBJECT,
    ARCHIVED_STREAM,
    JOBS_STREAM,
    RESULTS_STREAM,
    Broker,
    frame,
    unframe,
)
from monitor.cluster.jobs import UtteranceDone, UtteranceJob, job_subject, result_subject, segment_key
from monitor.errors import ArchiveError

if TYPE_CHECKING:
    from monitor.archive.index import EvidenceSummary

T = TypeVar("T")

RESULT_WAIT_S = 600.0
"""How long a room waits for a worker (none running: the room's queue fills and reads pause)."""
ARCHIVE_WAIT_S = 600.0
"""How long an alert waits for the archiver before the room reports the failure."""
READ_TIMEOUT_S = 10.0
"""Console reads answered by the archiver."""


class LoopBridge:
    """Runs broker coroutines on the gateway's event loop from worker threads."""

    def __init__(self, broker: Broker, loop: asyncio.AbstractEventLoop) -> None:
        self.broker = broker
        self.loop = loop

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise TimeoutError(f"no answer from the cluster within {timeout:g} s") from None


class RemoteTranscriber:
    """``transcribe(segment)`` by a worker: publish the job (once per key), wait for its result."""

    def __init__(self, bridge: LoopBridge, *, session_id: str, room_id: str, model_version: str) -> None:
        self.bridge = bridge
        self.session_id = session_id
        self.room_id = room_id
        self.model_version = model_version
        self.created_ms: dict[str, int] = {}  # segment key -> when its job was first cut

    def transcribe(self, segment: SpeechSegment, *, room_category: str | None = None) -> Transcript | None:
        key = segment_key(segment)
        done = self.bridge.call(self._run(segment, key, room_category), RESULT_WAIT_S)
        self.created_ms[key] = done.created_ms
        if len(self.created_ms) > 256:
            self.created_ms.pop(next(iter(self.created_ms)))
        return done.transcript

    async def _run(self, segment: SpeechSegment, key: str, room_category: str | None) -> UtteranceDone:
        broker = self.bridge.broker
        subject = result_subject(self.session_id, key)
        waiting = asyncio.ensure_future(broker.wait_for(RESULTS_STREAM, subject, RESULT_WAIT_S))
        try:
            stored_job = await broker.last(JOBS_STREAM, job_subject(self.session_id, key))
            if stored_job is None:  # the first time this segment is cut (else: a takeover cut it again)
                job = UtteranceJob(
                    session_id=self.session_id, room_id=self.room_id, key=key, start=segment.start,
                    end=segment.end, room_category=room_category, created_ms=time.time_ns() // 1_000_000,
                )  # fmt: skip
                await broker.publish(job_subject(self.session_id, key), job.encode(segment.audio),
                                     msg_id=f"job.{self.session_id}.{key}")  # fmt: skip
            data = await waiting
        finally:
            waiting.cancel()
        return UtteranceDone.decode(data, subject=subject)


class BrokerEvidence:
    """The archive as a gateway sees it: writes go to the archiver (and are waited for),
    reads are asked of it. Same methods as :class:`~monitor.server.evidence.EvidenceWriter`."""

    available = True
    why_missing = ""

    def __init__(self, bridge: LoopBridge) -> None:
        self.bridge = bridge

    # -- writes -----------------------------------------------------------------------
    def record_alert(
        self, alert: Alert, *, clip: np.ndarray | None, clip_start: float | None, transcript: str,
        fence: tuple[str, int] | None = None,
    ) -> str | None:  # fmt: skip
        meta: dict[str, Any] = {
            "request_id": f"alert.{alert.alert_id}", "kind": "alert", "alert": alert.wire(),
            "clip_start": clip_start, "transcript": transcript,
        }  # fmt: skip
        if fence is not None:
            meta["session_id"], meta["epoch"] = fence
        payload = b"" if clip is None else np.ascontiguousarray(clip, dtype="<f4").tobytes()
        return str(self._write(meta, payload)["evidence_id"])

    def record_session(
        self, *, session_id: str, room_id: str, anchor_id: str | None, transcript: list[dict[str, Any]],
        started_at: datetime, ended_at: datetime, fence: tuple[str, int] | None = None,
    ) -> str | None:  # fmt: skip
        meta: dict[str, Any] = {
            "request_id": f"session.{session_id}", "kind": "session", "session_id": session_id,
            "room_id": room_id, "anchor_id": anchor_id, "transcript": transcript,
            "started_at": started_at.isoformat(), "ended_at": ended_at.isoformat(),
        }  # fmt: skip
        if fence is not None:
            meta["epoch"] = fence[1]
        return str(self._write(meta)["evidence_id"])

    def record_decision(self, evidence_id: str, *, decision: str, by: str, reason: str | None) -> dict[str, Any]:
        import uuid

        meta = {"request_id": f"decision.{uuid.uuid4().hex}", "kind": "call", "method": "record_decision",
                "kwargs": {"evidence_id": evidence_id, "decision": decision, "by": by, "reason": reason}}  # fmt: skip
        result = self._write(meta)["result"]
        assert isinstance(result, dict)
        return result

    def _write(self, meta: dict[str, Any], payload: bytes = b"") -> dict[str, Any]:
        answer = self.bridge.call(self._send(meta, payload), ARCHIVE_WAIT_S)
        if not answer.get("ok"):
            raise ArchiveError(f"the archiver refused {meta['request_id']}: {answer.get('error')}")
        return answer

    async def _send(self, meta: dict[str, Any], payload: bytes) -> dict[str, Any]:
        from monitor.cluster.archiver import answer_subject

        broker = self.bridge.broker
        subject = answer_subject(meta["request_id"])
        waiting = asyncio.ensure_future(broker.wait_for(ARCHIVED_STREAM, subject, ARCHIVE_WAIT_S))
        try:
            await broker.publish(ARCHIVE_WRITE_SUBJECT, frame(meta, payload), msg_id=meta["request_id"])
            data = await waiting
        finally:
            waiting.cancel()
        answer, _ = unframe(data, subject=subject)
        return answer

    # -- reads (asked of the archiver) -----------------------------------------------------
    def _read(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def ask() -> dict[str, Any]:
            msg = await self.bridge.broker.nc.request(
                ARCHIVE_READ_SUBJECT, frame({"method": method, "args": list(args), "kwargs": kwargs}),
                timeout=READ_TIMEOUT_S,
            )  # fmt: skip
            reply, _ = unframe(msg.data, subject=ARCHIVE_READ_SUBJECT)
            return reply

        try:
            reply = self.bridge.call(ask(), READ_TIMEOUT_S + 1)
        except Exception as exc:  # no archiver answering
            raise ArchiveError(f"the archiver did not answer {method}: {exc}") from None
        if not reply.get("ok"):
            raise ArchiveError(str(reply.get("error")))
        return reply["result"]

    def summary(self, evidence_id: str) -> EvidenceSummary:
        from monitor.archive.index import EvidenceSummary

        return EvidenceSummary(**self._read("summary", evidence_id))

    def evidence_view(self, evidence_id: str) -> dict[str, Any]:
        return dict(self._read("evidence_view", evidence_id))

    def labeled_decisions(self) -> list[dict[str, Any]]:
        return list(self._read("labeled_decisions"))

    def anchor_record(self, *, bucket: str, since: str | None) -> list[dict[str, Any]]:
        return list(self._read("anchor_record", bucket=bucket, since=since))

    def alerts_after(self, since: str, *, limit: int) -> list[dict[str, Any]]:
        try:
            return list(self._read("alerts_after", since, limit=limit))
        except ArchiveError:
            return []  # replay from memory only (as with no archive)

    def read_clip(self, evidence_id: str) -> bytes:
        return base64.b64decode(self._read("read_clip", evidence_id)["base64"])

    def require(self) -> RemoteArchive:
        """The archive as the moderation routes use it (reports, timelines, inspections, claims),
        its reads and writes carried out by the archiver."""
        return RemoteArchive(self)

    def attach(self, archive: Any) -> None:  # the archive lives with the archiver
        return None

    def set_missing(self, why: str) -> None:
        return None

    def close(self) -> None:
        return None




ARCHIVE_READS = frozenset({
    "get", "read_part", "find", "reports", "tickets", "ticket", "decisions", "proof_status",
    "reader.require", "reader.read_part", "reader.find", "reader.reports", "reader.tickets", "reader.ticket",
    "reader.latest_sessions", "reader.session_record", "reader.uncovered_alerts", "reader.session_alerts",
})  # fmt: skip
"""EvidenceArchive reads a gateway may ask of the archiver (``reader.*``: its ArchiveReader)."""
ARCHIVE_WRITES = frozenset({"record_report", "record_inspection_claim", "record_inspection_outcome"})
"""EvidenceArchive writes a gateway may send to the archiver (durably, like alerts)."""


def encode_value(value: Any) -> Any:
    """An archive answer as JSON: summaries and bytes marked so :func:`decode_value` restores them."""
    from monitor.archive.index import EvidenceSummary

    if isinstance(value, EvidenceSummary):
        from dataclasses import asdict

        return {"__summary__": asdict(value)}
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    if isinstance(value, dict):
        return {k: encode_value(v) for k, v in value.items()}
    return value


def decode_value(value: Any) -> Any:
    from monitor.archive.index import EvidenceSummary

    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        if "__summary__" in value:
            return EvidenceSummary(**value["__summary__"])
        if "__bytes__" in value:
            return base64.b64decode(value["__bytes__"])
        if "__datetime__" in value:
            return datetime.fromisoformat(value["__datetime__"])
        return {k: decode_value(v) for k, v in value.items()}
    return value


class RemoteArchive:
    """The few :class:`~monitor.archive.archive.EvidenceArchive` methods the moderation routes call,
    answered by the archiver: reads by request/reply, writes through the durable archive stream."""

    def __init__(self, evidence: BrokerEvidence, prefix: str = "") -> None:
        self._evidence = evidence
        self._prefix = prefix

    @property
    def reader(self) -> RemoteArchive:
        return RemoteArchive(self._evidence, "reader.")

    def __getattr__(self, name: str) -> Any:
        method = self._prefix + name
        if method in ARCHIVE_WRITES:
            return lambda *args, **kwargs: self._write(method, args, kwargs)
        if method in ARCHIVE_READS:
            return lambda *args, **kwargs: decode_value(
                self._evidence._read("archive." + method, *encode_value(list(args)), **encode_value(kwargs))
            )
        raise AttributeError(f"the archive's {method} is not available to cluster gateways")

    def _write(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        import uuid

        meta = {"request_id": f"{method}.{uuid.uuid4().hex}", "kind": "call", "method": "archive." + method,
                "args": encode_value(list(args)), "kwargs": encode_value(kwargs)}  # fmt: skip
        return decode_value(self._evidence._write(meta)["result"])
