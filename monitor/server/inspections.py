"""Purity and authenticity inspection: tickets opened by ``info`` purity/gem claims, and their outcomes.

An ``info``-level ``precious_metal_claim`` or ``gem_authenticity_claim`` alert (the anchor
claimed a purity, a naturalness or a grade that must be checked: the lexicon's ``info``
entries, and claims lowered to ``info`` because the product's attribute is certified) puts
the claim on the inspection ticket of the room's product (``start.context.product``) in
that session, opening one when none is open. Tickets live in the evidence archive (an
``inspection_claim`` leaf per claim, an ``inspection_outcome`` leaf per outcome), so they
survive a restart and ``monitor archive verify`` checks them.

=============================================================  ==============================
route                                                          who
=============================================================  ==============================
``GET /v1/inspections[?status=open|closed]``                   ``inspector``, ``moderator``, ``admin``
``GET /v1/inspections/{ticket_id}``                            ``inspector``, ``moderator``, ``admin``
``GET /v1/inspections/{ticket_id}/claims/{evidence_id}/clip``  ``inspector``, ``moderator``, ``admin``
``POST /v1/inspections/{ticket_id}/outcome``                   ``inspector``, ``admin``
=============================================================  ==============================
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations at run time

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from monitor.archive.records import INSPECTION_CATEGORIES, MAX_REASON_CHARS
from monitor.errors import ArchiveError, ArchiveWriteError
from monitor.server.auth import Grant, api_grant
from monitor.server.reports import in_thread, open_archive, require_role
from monitor.server.responses import Refusal, json_response, respond

if TYPE_CHECKING:
    from monitor.archive import EvidenceArchive
    from monitor.server.app import MonitorServer
    from monitor.server.session import RoomSession

log = logging.getLogger(__name__)

READ_ROLES = frozenset({"inspector", "moderator", "admin"})
"""Roles that may read inspection tickets."""

OUTCOME_ROLES = frozenset({"inspector", "admin"})
"""Roles that may record an inspection's outcome."""

TICKETS_DEFAULT = 100
TICKETS_MAX = 1000
"""Bounds of ``GET /v1/inspections`` (``limit``)."""

ID_PATTERN = r"^[0-9a-f]{32}$"


def opens_inspection(alert: dict[str, Any]) -> bool:
    """Whether a sent alert (wire form) goes to inspection: an archived ``info`` purity/gem claim."""
    return (
        alert.get("severity") == "info"
        and alert.get("category") in INSPECTION_CATEGORIES
        and alert.get("evidence_id") is not None
    )


class OutcomeRequest(BaseModel):
    """The JSON body of ``POST /v1/inspections/{ticket_id}/outcome``."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["consistent", "inconsistent"] = Field(
        description="consistent: the goods are what was claimed; inconsistent: they are not"
    )
    certificate: str | None = Field(default=None, max_length=MAX_REASON_CHARS, description="the certificate number")
    note: str | None = Field(default=None, max_length=MAX_REASON_CHARS, description="free text")


class TicketList(BaseModel):
    """``GET /v1/inspections``: tickets, newest first."""

    inspections: list[dict[str, Any]]


class InspectionDesk:
    """Opens tickets from sent alerts and records outcomes. Event-loop only; archive work in threads."""

    def __init__(self, server: "MonitorServer") -> None:
        self._server = server
        self._pending: set[asyncio.Task[None]] = set()

    def on_alerts(self, session: "RoomSession", alerts: list[dict[str, Any]]) -> None:
        """A session sent ``alerts``: put the purity/gem ``info`` claims on their tickets (in a thread,
        after the anchor has them)."""
        claims = [a for a in alerts if opens_inspection(a)]
        if not claims:
            return
        context = session.context
        task = asyncio.get_running_loop().create_task(
            self._claim(claims, session_id=session.session_id, product=context.product, room_category=context.category)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _claim(
        self, claims: list[dict[str, Any]], *, session_id: str, product: str | None, room_category: str | None
    ) -> None:
        resources = self._server.resources
        if resources is None:
            return
        for alert in claims:
            try:
                archive = resources.evidence.require()
                leaf = await asyncio.to_thread(
                    archive.record_inspection_claim, alert["evidence_id"], session_id=session_id, product=product,
                    room_category=room_category,
                )
            except (ArchiveError, OSError) as exc:
                self._server.metrics.archive_errors.inc()
                log.error("alert %s not put on an inspection ticket: %s", alert.get("alert_id"), exc)
                continue
            self._server.metrics.archive_writes.inc()
            log.info("inspection ticket %s: claim %s (%s)", leaf["ticket_id"], alert.get("alert_id"), product)

    async def wait_idle(self) -> None:
        """Wait for the claims being written (a drain does, before the archive closes)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


def ticket_view(archive: "EvidenceArchive", ticket: dict[str, Any]) -> dict[str, Any]:
    """A ticket with its claims as spoken (each alert's stored text, phrase, times, explanation and
    its clip's URL) and its outcomes (the last one in force). Blocking: call in a thread."""
    claims = []
    for leaf in ticket["claims"]:
        evidence_id = leaf["evidence_id"]
        try:
            alert = json.loads(archive.read_part(evidence_id, "alert"))
        except ArchiveError:
            alert = None  # purged
        claims.append({
            "evidence_id": evidence_id,
            "alert_id": leaf["alert_id"],
            "category": leaf["category"],
            "severity": leaf["severity"],
            "claimed_at": leaf["at"],
            "text": alert.get("text") if alert else None,
            "matched": alert.get("matched") if alert else None,
            "rule_id": alert.get("rule_id") if alert else None,
            "start": alert.get("start") if alert else None,
            "end": alert.get("end") if alert else None,
            "explanation": alert.get("explanation") if alert else None,
            "clip_url": (f"/v1/inspections/{ticket['ticket_id']}/claims/{evidence_id}/clip" if alert else None),
        })
    status = "open" if ticket["outcome"] is None else "closed"
    return {**{k: v for k, v in ticket.items() if k != "claims"}, "status": status, "claims": claims}


def add_inspection_routes(app: FastAPI, server: "MonitorServer") -> None:
    """The routes of the module docstring, on ``app``."""
    granted = Annotated[Grant, Depends(api_grant(server.settings.tokens, server.sessions))]
    ticket_param = Annotated[str, Path(pattern=ID_PATTERN, description="32 hex digits")]
    answers: dict[int | str, dict[str, Any]] = {
        400: {"description": "a bad field or parameter, named"},
        401: {"description": "no or unknown token or console session (WWW-Authenticate: Bearer)"},
        403: {"description": "role"},
        503: {"description": "models loading, or the evidence archive unavailable"},
    }

    async def ticket_of(who: Grant, ticket_id: str) -> tuple["EvidenceArchive", dict[str, Any]]:
        require_role(who, READ_ROLES, "read inspection tickets")
        archive = open_archive(server)
        ticket = await in_thread(archive.ticket, ticket_id)
        if ticket is None or not who.may_see(ticket["room_id"]):
            raise Refusal(404, f"no inspection ticket {ticket_id}", code="not_found", as_json=True)
        return archive, ticket

    @app.get("/v1/inspections", tags=["inspections"], response_model=TicketList, responses=answers,
             summary="Inspection tickets opened by info-level purity and gem claims, newest first")
    async def tickets(
        who: granted,
        status: Annotated[Literal["open", "closed"] | None, Query(description="default: both")] = None,
        limit: Annotated[int, Query(ge=1, le=TICKETS_MAX)] = TICKETS_DEFAULT,
    ) -> Response:
        require_role(who, READ_ROLES, "read inspection tickets")
        archive = open_archive(server)
        found = await in_thread(archive.tickets, status=status, limit=limit)
        shown = [
            {**t, "status": "open" if t["outcome"] is None else "closed"} for t in found if who.may_see(t["room_id"])
        ]
        return json_response(200, {"inspections": shown})

    @app.get("/v1/inspections/{ticket_id}", tags=["inspections"],
             responses={200: {"description": "the ticket, its claims as spoken, its outcomes"},
                        404: {"description": "no such ticket"}, **answers},
             summary="One inspection ticket: room, anchor, product, the claims as spoken, outcomes")
    async def ticket(who: granted, ticket_id: ticket_param) -> Response:
        archive, found = await ticket_of(who, ticket_id)
        return json_response(200, await in_thread(ticket_view, archive, found))

    @app.get("/v1/inspections/{ticket_id}/claims/{evidence_id}/clip", tags=["inspections"], response_class=Response,
             responses={200: {"content": {"audio/flac": {}}}, 404: {"description": "not a claim of this ticket"},
                        **answers},
             summary="The archived FLAC clip of one claim on the ticket")
    async def claim_clip(
        who: granted, ticket_id: ticket_param, evidence_id: Annotated[str, Path(pattern=ID_PATTERN)]
    ) -> Response:
        archive, found = await ticket_of(who, ticket_id)
        if evidence_id not in {c["evidence_id"] for c in found["claims"]}:
            raise Refusal(404, f"evidence {evidence_id} is not a claim of ticket {ticket_id}", code="not_found",
                          as_json=True)
        try:
            data = await asyncio.to_thread(archive.read_part, evidence_id, "clip")
        except ArchiveError as exc:
            raise Refusal(404, str(exc), code="not_found", as_json=True) from exc
        return respond(200, data, "audio/flac", {"Content-Disposition": f'inline; filename="{evidence_id}.flac"'})

    @app.post("/v1/inspections/{ticket_id}/outcome", status_code=201, tags=["inspections"],
              responses={201: {"description": "the outcome record as appended to the archive's log"},
                         404: {"description": "no such ticket"}, **answers},
              summary="Record an inspection's outcome (consistent/inconsistent); archived, on the anchor record")
    async def outcome(who: granted, ticket_id: ticket_param, body: OutcomeRequest) -> Response:
        require_role(who, OUTCOME_ROLES, "record inspection outcomes")
        archive, _ = await ticket_of(who, ticket_id)
        try:
            leaf = await asyncio.to_thread(
                archive.record_inspection_outcome, ticket_id, outcome=body.outcome, by=who.identity,
                certificate=body.certificate, note=body.note,
            )
        except (ArchiveWriteError, OSError) as exc:
            server.metrics.archive_errors.inc()
            raise Refusal(503, str(exc), code="unavailable", as_json=True) from exc
        except ArchiveError as exc:
            raise Refusal(400, str(exc), code="outcome_refused", as_json=True) from exc
        server.metrics.archive_writes.inc()
        log.info("inspection ticket %s: %s by %s", ticket_id, leaf["outcome"], leaf["by"])
        return json_response(201, leaf)
