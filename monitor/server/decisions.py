"""Moderators' decisions on alerts: one desk, reached by ``POST /v1/decisions`` and on ``/v1/alerts``.

:meth:`DecisionDesk.decide` checks the role, the per-moderator rate, the record and its
room scope, appends the decision to the evidence archive (fsync and a signed checkpoint
before anyone is told), then hands it to every subscriber that asked for decisions::

    desk = DecisionDesk(settings, metrics, hub, evidence=lambda: resources.evidence)
    leaf = await desk.decide(grant, DecisionRequest(evidence_id=..., decision="confirm"))

A refusal is a :class:`DecisionRefused` carrying the HTTP status the REST route answers
(400 bad request, 403 role or scope, 404 unknown record, 429 rate, 503 archive) and the
recoverable error code the websocket answers (``decision_refused``, ``rate_limited``);
docs/PROTOCOL.md lists both.
"""

# no `from __future__ import annotations`: FastAPI reads the route's annotations at run time

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from monitor.config import Settings, TokenGrant
from monitor.errors import ArchiveError, ArchiveIntegrityError, ArchiveWriteError, ProtocolError
from monitor.server.auth import CONSOLE_ROLES, Grant, SessionLookup, api_grant
from monitor.server.evidence import EvidenceWriter
from monitor.server.hub import AlertHub, Subscriber
from monitor.server.limits import RateLimits
from monitor.server.metrics import ServerMetrics
from monitor.server.protocol import ErrorCode, error_frame, parse_decision, recoverable
from monitor.server.responses import Refusal, json_response

log = logging.getLogger(__name__)

DECISION_BURST = 4.0
"""Decisions a moderator may send at once above the per-second rate (times the rate, at least 1)."""


class DecisionRequest(BaseModel):
    """The JSON body of ``POST /v1/decisions`` (the websocket's ``decision`` frame without ``type``)."""

    model_config = ConfigDict(extra="forbid")

    evidence_id: str = Field(min_length=1, max_length=64, description="the alert's evidence_id")
    decision: Literal["confirm", "dismiss", "inspect"] = Field(
        description="confirm: a violation; dismiss: a false alert (reason required); "
        "inspect: goods to inspection (precious_metal_claim, gem_authenticity_claim only)"
    )
    reason: str | None = Field(default=None, max_length=1000, description="free text; required to dismiss")
    request_id: str | None = Field(default=None, max_length=64, description="echoed in the answer")


class DecisionRefused(Exception):
    """A decision not recorded: ``status`` for HTTP, ``code`` for the websocket's error frame."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class DecisionDesk:
    """Records moderators' decisions (module docstring). Event-loop only; archive work in threads."""

    def __init__(
        self,
        settings: Settings,
        metrics: ServerMetrics,
        hub: AlertHub,
        evidence: Callable[[], EvidenceWriter | None],
    ) -> None:
        self._rate_per_s = settings.decisions_per_moderator_per_s
        self._metrics = metrics
        self._hub = hub
        self._evidence = evidence
        self._limits = RateLimits(self._rate_per_s, max(1.0, DECISION_BURST * self._rate_per_s))

    async def decide(self, grant: Grant, request: DecisionRequest) -> dict[str, Any]:
        """Record ``request`` for ``grant``; the decision leaf (with ``decision_id``), already published."""
        if grant.role not in CONSOLE_ROLES:
            raise DecisionRefused(
                403, ErrorCode.DECISION_REFUSED, f"role {grant.role!r} may not decide alerts; needs moderator or admin"
            )
        if not self._limits.allow(grant.client_key):
            self._metrics.limit_refusals.labels(limit="decisions_per_moderator_per_s").inc()
            raise DecisionRefused(
                429,
                ErrorCode.RATE_LIMITED,
                f"more than {self._rate_per_s:g} decisions per second; this one was not recorded, send it again",
            )
        evidence = self._evidence()
        if evidence is None:
            raise DecisionRefused(503, ErrorCode.DECISION_REFUSED, "not ready: models loading")
        if not evidence.available:
            raise DecisionRefused(
                503, ErrorCode.DECISION_REFUSED, f"the evidence archive is unavailable: {evidence.why_missing}"
            )
        try:
            summary = await asyncio.to_thread(evidence.summary, request.evidence_id)
        except ArchiveIntegrityError as exc:
            raise DecisionRefused(503, ErrorCode.DECISION_REFUSED, str(exc)) from exc
        except ArchiveError as exc:
            raise DecisionRefused(404, ErrorCode.DECISION_REFUSED, str(exc)) from exc
        if not grant.may_see(summary.room_id):
            raise DecisionRefused(
                403, ErrorCode.DECISION_REFUSED, f"evidence {request.evidence_id} is outside the token's rooms"
            )
        try:
            leaf = await asyncio.to_thread(
                evidence.record_decision,
                request.evidence_id,
                decision=request.decision,
                by=grant.identity,
                reason=request.reason,
            )
        except ArchiveWriteError as exc:
            raise DecisionRefused(503, ErrorCode.DECISION_REFUSED, str(exc)) from exc
        except ArchiveError as exc:  # purged, a dismissal without reason, inspection of another category
            raise DecisionRefused(400, ErrorCode.DECISION_REFUSED, str(exc)) from exc
        log.info("decision %s on evidence %s by %s", leaf["decision"], leaf["evidence_id"], leaf["by"])
        self._hub.publish_event({"type": "decision", **leaf})
        return leaf

    async def answer_message(self, grant: Grant, subscriber: Subscriber, message: str | bytes) -> None:
        """A client message on ``/v1/alerts``: a ``decision`` frame, answered through the subscriber's
        queue with ``decision_recorded`` or a recoverable error (docs/PROTOCOL.md)."""
        request_id = None
        try:
            frame = parse_decision(message)
            request_id = frame.request_id
            try:
                leaf = await self.decide(
                    grant,
                    DecisionRequest(
                        evidence_id=frame.evidence_id, decision=frame.decision, reason=frame.reason,
                        request_id=frame.request_id,
                    ),
                )
            except DecisionRefused as exc:
                raise recoverable(exc.code, str(exc)) from exc
        except ProtocolError as exc:
            subscriber.offer({**error_frame(exc), "request_id": request_id})
            return
        subscriber.offer({"type": "decision_recorded", "request_id": request_id, "decision_id": leaf["decision_id"]})


def add_decision_route(
    app: FastAPI, desk: DecisionDesk, tokens: Mapping[str, TokenGrant], sessions: SessionLookup
) -> None:
    """``POST /v1/decisions``: the REST door to :meth:`DecisionDesk.decide` (JSON errors)."""

    grant = api_grant(tokens, sessions)

    @app.post(
        "/v1/decisions",
        status_code=201,
        tags=["decisions"],
        summary="Record a moderator's decision on an archived alert",
        responses={
            201: {"description": "the decision record as appended to the archive's log"},
            400: {"description": "a bad field (named), or a decision the record does not allow"},
            401: {"description": "no or unknown token or console session"},
            403: {"description": "role other than moderator/admin, or evidence outside the token's rooms"},
            404: {"description": "no evidence with that id"},
            429: {"description": "more than decisions_per_moderator_per_s"},
            503: {"description": "models loading or archive unavailable"},
        },
    )
    async def post_decision(who: Annotated[Grant, Depends(grant)], body: DecisionRequest) -> Response:
        try:
            leaf = await desk.decide(who, body)
        except DecisionRefused as exc:
            raise Refusal(exc.status, str(exc), code=exc.code.value, as_json=True) from exc
        return json_response(201, {**leaf, "request_id": body.request_id})
