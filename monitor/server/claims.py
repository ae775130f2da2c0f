"""Claims on alerts: which moderator is working on which alert, so two never work the same one.

A claim is workflow, not evidence: it lives in this process's memory only (a restart
forgets every claim; decisions, which are evidence, are in the archive). One claim per
``evidence_id``; it ends when its holder releases it, when an admin releases it, or
``ttl_s`` after it was taken or last renewed (the holder renews by claiming again)::

    desk = ClaimDesk(hub, evidence=lambda: resources.evidence, ttl_s=CLAIM_TTL_S)
    claim = await desk.claim(grant, "28d71f18cf2974a2d85100785760f781")   # or ClaimRefused(409, ...)
    await desk.release(grant, claim.evidence_id)

Routes (:func:`add_claim_routes`, documented in docs/CONSOLE.md):

==================================  ============================================================
``POST /v1/claims``                 body ``{"evidence_id"}``: 201 ``{evidence_id, room_id, alert_id,
                                    moderator, claimed_at, expires_at}``; 409 naming the holder
``DELETE /v1/claims/{evidence_id}`` 200 ``{"released": true, ...}``; 403 another's claim
                                    (admins may release any); 404 no claim
``GET /v1/claims``                  every live claim in the token's rooms
==================================  ============================================================

Subscribers of ``/v1/alerts`` with ``include=claims`` get ``{"type":"claim", ...the claim}``
when one is taken or renewed and ``{"type":"claim_released", evidence_id, room_id, alert_id,
moderator, reason: "released"|"expired"}`` when it ends. Expiry is a timer on the event loop
per claim (no polling). Roles ``moderator`` and ``admin`` only; the evidence's room must be
in the token's scope.
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations at run time

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from monitor.config import TokenGrant
from monitor.errors import ArchiveError, ArchiveIntegrityError
from monitor.server.auth import CONSOLE_ROLES, Grant, SessionLookup, api_grant
from monitor.server.evidence import EvidenceWriter
from monitor.server.hub import AlertHub
from monitor.server.responses import Refusal, json_response

CLAIM_TTL_S = 300.0
"""How long a claim lasts after it was taken or last renewed (seconds). A console renews the
claim of the alert on screen; a moderator who walks away frees it after this long.
``Settings.claim_ttl_s`` (``MONITOR_CLAIM_TTL_S``) overrides it when the settings define it."""

MAX_CLAIMS = 100_000
"""Live claims held at most (all moderators); beyond it a new claim is refused (503)."""

EVIDENCE_ID_PATTERN = r"^[0-9a-f]{32}$"


def _iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Claim:
    """One moderator's hold on one alert's evidence record."""

    evidence_id: str
    room_id: str | None
    alert_id: str | None
    moderator: str  # the grant's identity, as recorded with decisions
    holder_key: str  # the grant's client key: who may renew or release it
    claimed_at: float  # Unix seconds
    expires_at: float  # Unix seconds
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def wire(self) -> dict[str, Any]:
        return {
            "evidence_id": self.evidence_id, "room_id": self.room_id, "alert_id": self.alert_id,
            "moderator": self.moderator, "claimed_at": _iso(self.claimed_at), "expires_at": _iso(self.expires_at),
        }


class ClaimRefused(Exception):
    """A claim or release refused: ``status`` is the HTTP answer; ``holder`` the claim in the way (409)."""

    def __init__(self, status: int, message: str, holder: Claim | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.holder = holder


class ClaimDesk:
    """Live claims by evidence id (module docstring). Event-loop only; archive lookups in threads."""

    def __init__(
        self,
        hub: AlertHub,
        evidence: Callable[[], EvidenceWriter | None],
        *,
        ttl_s: float = CLAIM_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"claim ttl_s must be positive, got {ttl_s}")
        self.ttl_s = ttl_s
        self._hub = hub
        self._evidence = evidence
        self._clock = clock
        self._claims: dict[str, Claim] = {}

    def claims(self, grant: Grant) -> list[Claim]:
        """The live claims in ``grant``'s rooms, oldest first."""
        return sorted((c for c in self._claims.values() if grant.may_see(c.room_id)), key=lambda c: c.claimed_at)

    def get(self, evidence_id: str) -> Claim | None:
        return self._claims.get(evidence_id)

    async def claim(self, grant: Grant, evidence_id: str) -> Claim:
        """Take (or, for its holder, renew) the claim on ``evidence_id``; ClaimRefused otherwise."""
        self._check_role(grant)
        held = self._claims.get(evidence_id)
        if held is not None and held.holder_key != grant.client_key:
            raise ClaimRefused(409, f"claimed by {held.moderator} until {_iso(held.expires_at)}", held)
        room_id, alert_id = await self._locate(grant, evidence_id)
        held = self._claims.get(evidence_id)  # the lookup yielded: someone may have claimed it meanwhile
        if held is not None and held.holder_key != grant.client_key:
            raise ClaimRefused(409, f"claimed by {held.moderator} until {_iso(held.expires_at)}", held)
        if held is None and len(self._claims) >= MAX_CLAIMS:
            raise ClaimRefused(503, f"{MAX_CLAIMS} claims held; release some first")
        now = self._clock()
        if held is None:
            held = Claim(evidence_id, room_id, alert_id, grant.identity, grant.client_key, now, now + self.ttl_s)
            self._claims[evidence_id] = held
        else:
            held.expires_at = now + self.ttl_s
        if held.timer is not None:
            held.timer.cancel()
        held.timer = asyncio.get_running_loop().call_later(self.ttl_s, self._expire, held)
        self._hub.publish_event({"type": "claim", **held.wire()})
        return held

    async def release(self, grant: Grant, evidence_id: str) -> Claim:
        """End the claim on ``evidence_id``: its holder or an admin; ClaimRefused(404/403) otherwise."""
        self._check_role(grant)
        held = self._claims.get(evidence_id)
        if held is None or not grant.may_see(held.room_id):
            raise ClaimRefused(404, f"no claim on evidence {evidence_id}")
        if held.holder_key != grant.client_key and grant.role != "admin":
            raise ClaimRefused(403, f"claimed by {held.moderator}; only they or an admin may release it", held)
        self._end(held, "released")
        return held

    def _expire(self, claim: Claim) -> None:
        if self._claims.get(claim.evidence_id) is claim:
            self._end(claim, "expired")

    def _end(self, claim: Claim, reason: str) -> None:
        del self._claims[claim.evidence_id]
        if claim.timer is not None:
            claim.timer.cancel()
        self._hub.publish_event({
            "type": "claim_released", "evidence_id": claim.evidence_id, "room_id": claim.room_id,
            "alert_id": claim.alert_id, "moderator": claim.moderator, "reason": reason,
        })

    @staticmethod
    def _check_role(grant: Grant) -> None:
        if grant.role not in CONSOLE_ROLES:
            raise ClaimRefused(403, f"role {grant.role!r} may not claim alerts; needs moderator or admin")

    async def _locate(self, grant: Grant, evidence_id: str) -> tuple[str | None, str | None]:
        """The record's room and alert id (404 unknown, 403 out of scope, 503 archive unavailable)."""
        evidence = self._evidence()
        if evidence is None:
            raise ClaimRefused(503, "not ready: models loading")
        try:
            archive = evidence.require()
            summary = await asyncio.to_thread(archive.get, evidence_id)
        except ArchiveIntegrityError as exc:
            raise ClaimRefused(503, str(exc)) from exc
        except ArchiveError as exc:
            unavailable = "unavailable" in str(exc)
            raise ClaimRefused(503 if unavailable else 404, str(exc)) from exc
        if not grant.may_see(summary.room_id):
            raise ClaimRefused(403, f"evidence {evidence_id} is outside the token's rooms")
        return summary.room_id, summary.alert_id


class ClaimRequest(BaseModel):
    """The JSON body of ``POST /v1/claims``."""

    model_config = ConfigDict(extra="forbid")

    evidence_id: str = Field(pattern=EVIDENCE_ID_PATTERN, description="the alert's evidence_id (32 hex digits)")


def add_claim_routes(
    app: FastAPI, desk: ClaimDesk, tokens: Mapping[str, TokenGrant], sessions: SessionLookup
) -> None:
    """``POST /v1/claims``, ``DELETE /v1/claims/{evidence_id}``, ``GET /v1/claims`` (JSON errors)."""

    grant = api_grant(tokens, sessions)

    granted = Annotated[Grant, Depends(grant)]
    tags: list[Any] = ["claims"]

    def refusal(exc: ClaimRefused) -> Response:
        body: dict[str, Any] = {"error": "claimed" if exc.status == 409 else "claim_refused", "message": str(exc)}
        if exc.holder is not None:
            body.update(exc.holder.wire())
        return json_response(exc.status, body)

    @app.post(
        "/v1/claims", status_code=201, tags=tags, summary="Claim an alert (by evidence id) for this moderator",
        responses={
            201: {"description": "claimed (or renewed): the claim"},
            409: {"description": "another moderator holds it: the holder's claim"},
            403: {"description": "role, or evidence outside the token's rooms"},
            404: {"description": "no evidence with that id"},
        },
    )
    async def post_claim(who: granted, body: ClaimRequest) -> Response:
        try:
            claim = await desk.claim(who, body.evidence_id)
        except ClaimRefused as exc:
            return refusal(exc)
        return json_response(201, claim.wire())

    @app.delete(
        "/v1/claims/{evidence_id}", tags=tags, summary="Release a claim (its holder, or an admin)",
        responses={403: {"description": "another moderator's claim"}, 404: {"description": "no claim"}},
    )
    async def delete_claim(
        who: granted, evidence_id: Annotated[str, Path(pattern=EVIDENCE_ID_PATTERN)]
    ) -> Response:
        try:
            claim = await desk.release(who, evidence_id)
        except ClaimRefused as exc:
            return refusal(exc)
        return json_response(200, {"released": True, **claim.wire()})

    @app.get("/v1/claims", tags=tags, summary="Live claims in the token's rooms")
    async def list_claims(who: granted) -> Response:
        if who.role not in CONSOLE_ROLES:
            raise Refusal(403, f"role {who.role!r} may not see claims", as_json=True, code="forbidden")
        return json_response(200, {"ttl_s": desk.ttl_s, "claims": [c.wire() for c in desk.claims(who)]})
