"""``monitor archiver``: the single writer of the evidence archive in cluster mode.

Gateways never open the archive for writing; they send each write (an alert with its clip,
a finished session's transcript, a moderator's decision, ...) to the ``MONITOR_ARCHIVE``
stream and wait for the answer on ``monitor.archived.<request id>`` before they send the
alert on ("archived before sent" holds across processes). The archiver:

- acknowledges a write only after the archive committed it, so a killed archiver loses
  nothing: the broker delivers the write again to the next one;
- makes replays no-ops: an alert or session already in the archive (looked up by its
  alert or session id) is answered with its existing evidence id, never stored twice;
- fences: a write that carries an epoch older than the session's current one (its room was
  taken over by another gateway) is refused, so a cut-off gateway cannot keep writing.

Reads the console needs (evidence views, clips, exports, ``since=`` replays) are answered
on ``monitor.archive.read`` by request/reply from the same archive.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout

from monitor.alerts import Alert
from monitor.cluster.broker import (
    ARCHIVE_READ_SUBJECT,
    ARCHIVE_STREAM,
    ARCHIVED_STREAM,
    ARCHIVER_CONSUMER,
    Broker,
    BrokerError,
    frame,
    safe_token,
    unframe,
)
from monitor.cluster.metrics import ClusterMetrics, report_lag
from monitor.cluster.remote import ARCHIVE_READS, ARCHIVE_WRITES, decode_value, encode_value
from monitor.config import Settings
from monitor.server.evidence import EvidenceWriter
from monitor.server.metrics import ServerMetrics

log = logging.getLogger(__name__)

BATCH_WRITES = 32
"""Writes taken per fetch."""
FETCH_WAIT_S = 1.0

READ_METHODS = frozenset(
    {"summary", "evidence_view", "labeled_decisions", "anchor_record", "alerts_after", "read_clip"}
)
"""EvidenceWriter reads a gateway may ask for."""
CALL_METHODS = frozenset({"record_decision"})
"""EvidenceWriter writes sent as generic calls (alerts and sessions have their own kinds)."""


def answer_subject(request_id: str) -> str:
    return f"monitor.archived.{safe_token(request_id)}"


def current_epoch(value: bytes | None) -> int:
    return int(value.decode()) if value else 0


class Archiver:
    """Applies archive writes from the broker to one archive; see the module docstring."""

    def __init__(self, evidence: EvidenceWriter, metrics: ClusterMetrics) -> None:
        self.evidence = evidence
        self.metrics = metrics
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, broker: Broker) -> None:
        await broker.nc.subscribe(ARCHIVE_READ_SUBJECT, queue="archiver", cb=self._read)
        pull = await broker.js.pull_subscribe("monitor.archive.write", durable=ARCHIVER_CONSUMER, stream=ARCHIVE_STREAM)
        log.info("archiver writing %s", "the archive")
        lag_checked = 0.0
        while not self._stopping.is_set():
            lag_checked = await report_lag(pull, self.metrics, "archiver", lag_checked)
            try:
                msgs = await pull.fetch(BATCH_WRITES, timeout=FETCH_WAIT_S)
            except (TimeoutError, NatsTimeout):
                continue
            for msg in msgs:  # in stream order: one writer, one order
                await self._write(broker, msg)

    async def _write(self, broker: Broker, msg: Msg) -> None:
        if msg.metadata.num_delivered > 1:
            self.metrics.redeliveries.inc()
        try:
            meta, payload = unframe(msg.data, subject=msg.subject)
            request_id = str(meta["request_id"])
            kind = str(meta["kind"])
        except (BrokerError, KeyError) as exc:
            log.error("dropping a malformed archive write: %s", exc)
            await msg.term()
            return
        subject = answer_subject(request_id)
        if await broker.last(ARCHIVED_STREAM, subject) is not None:
            await msg.ack()  # answered before (a replay)
            return
        try:
            answer = await self._apply(broker, kind, meta, payload)
        except Exception as exc:  # refused (bad input, fenced) or failed: the gateway is told
            log.warning("archive write %s (%s) refused: %s", request_id, kind, exc)
            self.metrics.archive_writes.labels(kind=kind, outcome="refused").inc()
            answer = {"ok": False, "error": str(exc)}
        await broker.publish(subject, frame(answer), msg_id=f"answer.{request_id}")
        await msg.ack()

    async def _apply(self, broker: Broker, kind: str, meta: dict[str, Any], payload: bytes) -> dict[str, Any]:
        session_id = meta.get("session_id")
        if session_id is not None and "epoch" in meta:
            try:
                fence = current_epoch((await broker.fences.get(safe_token(session_id))).value)
            except Exception:  # no fence yet
                fence = 0
            if int(meta["epoch"]) < fence:
                raise PermissionError(
                    f"session {session_id} was taken over (epoch {fence}); writes of epoch {meta['epoch']} are refused"
                )
        if kind == "alert":
            return await asyncio.to_thread(self._alert, meta, payload)
        if kind == "session":
            return await asyncio.to_thread(self._session, meta)
        if kind == "call" and meta.get("method") in CALL_METHODS:
            result = await asyncio.to_thread(getattr(self.evidence, meta["method"]), **meta.get("kwargs", {}))
            self.metrics.archive_writes.labels(kind=meta["method"], outcome="stored").inc()
            return {"ok": True, "result": result}
        method = str(meta.get("method", ""))
        if kind == "call" and method.startswith("archive.") and method[len("archive."):] in ARCHIVE_WRITES:
            call = self._archive_method(method)
            args, kwargs = decode_value(meta.get("args", [])), decode_value(meta.get("kwargs", {}))
            result = await asyncio.to_thread(call, *args, **kwargs)
            self.metrics.archive_writes.labels(kind=method, outcome="stored").inc()
            return {"ok": True, "result": encode_value(result)}
        raise ValueError(f"unknown archive write kind {kind!r} / method {meta.get('method')!r}")

    def _archive_method(self, method: str) -> Any:
        """``archive.reader.latest_sessions`` -> that bound method of the open archive."""
        target: Any = self.evidence.require()
        for part in method.split(".")[1:]:
            target = getattr(target, part)
        return target

    def _alert(self, meta: dict[str, Any], payload: bytes) -> dict[str, Any]:
        import numpy as np

        alert = Alert(**meta["alert"])
        archive = self.evidence.require()
        existing = archive.index.evidence_of(kind="alert", alert_id=alert.alert_id)
        if existing is not None:
            self.metrics.archive_writes.labels(kind="alert", outcome="replayed").inc()
            return {"ok": True, "evidence_id": existing, "replayed": True}
        clip = np.frombuffer(payload, dtype="<f4").astype(np.float32) if payload else None
        evidence_id = self.evidence.record_alert(
            alert, clip=clip, clip_start=meta.get("clip_start"), transcript=str(meta.get("transcript", ""))
        )
        if evidence_id is None:
            raise OSError("the archive could not store the alert (see the archiver's log)")
        self.metrics.archive_writes.labels(kind="alert", outcome="stored").inc()
        return {"ok": True, "evidence_id": evidence_id}

    def _session(self, meta: dict[str, Any]) -> dict[str, Any]:
        archive = self.evidence.require()
        existing = archive.index.evidence_of(kind="session", session_id=meta["session_id"])
        if existing is not None:
            self.metrics.archive_writes.labels(kind="session", outcome="replayed").inc()
            return {"ok": True, "evidence_id": existing, "replayed": True}
        record_id = self.evidence.record_session(
            session_id=meta["session_id"],
            room_id=meta["room_id"],
            anchor_id=meta.get("anchor_id"),
            transcript=meta["transcript"],
            started_at=datetime.fromisoformat(meta["started_at"]),
            ended_at=datetime.fromisoformat(meta["ended_at"]),
        )
        if record_id is None:
            raise OSError("the archive could not store the session transcript (see the archiver's log)")
        self.metrics.archive_writes.labels(kind="session", outcome="stored").inc()
        return {"ok": True, "evidence_id": record_id}

    async def _read(self, msg: Msg) -> None:
        try:
            meta, _ = unframe(msg.data, subject=msg.subject)
            method = str(meta.get("method"))
            if method.startswith("archive.") and method[len("archive."):] in ARCHIVE_READS:
                call = self._archive_method(method)
            elif method in READ_METHODS:
                call = getattr(self.evidence, method)
            else:
                raise ValueError(f"unknown archive read {method!r}")
            args, kwargs = meta.get("args", []), meta.get("kwargs", {})
            if method.startswith("archive."):
                args, kwargs = decode_value(args), decode_value(kwargs)
            result = await asyncio.to_thread(call, *args, **kwargs)
            if method.startswith("archive."):
                result = encode_value(result)
            if isinstance(result, bytes):
                result = {"base64": base64.b64encode(result).decode()}
            elif dataclasses.is_dataclass(result) and not isinstance(result, type):
                result = dataclasses.asdict(result)
            reply = {"ok": True, "result": result}
        except Exception as exc:
            reply = {"ok": False, "error": str(exc), "error_type": type(exc).__name__}
        await msg.respond(frame(reply))


async def run_archiver(settings: Settings) -> int:
    """``monitor archiver``: open the archive, apply writes until SIGTERM/SIGINT; exit status."""
    from monitor.archive.archive import EvidenceArchive
    from monitor.cluster.commands import broker_url_of, run_until_stopped

    url = broker_url_of(settings, "archiver")
    if url is None:
        return 2
    archive = await asyncio.to_thread(EvidenceArchive.open, settings.data_dir, signing_key=settings.signing_key)
    metrics = ClusterMetrics(role="archiver")
    evidence = EvidenceWriter(archive, ServerMetrics())
    try:
        broker = await Broker.connect(url, name="monitor-archiver")
        await run_until_stopped(Archiver(evidence, metrics), broker, metrics, settings)
    finally:
        await asyncio.to_thread(evidence.close)
    return 0
