"""Bearer-token and console-cookie checks for the endpoints, decided before the upgrade.

Tokens come from ``Settings.tokens`` (``MONITOR_TOKENS``): each maps to a role and,
optionally, the rooms it is limited to. A token is presented only in the
``Authorization: Bearer`` header (never in the URL, which ends up in logs); a browser,
which cannot set that header on a websocket, trades it once at ``/console/session``
for a session cookie (:mod:`monitor.server.console_sessions`, which this module does
not import: it is reached through the :class:`SessionLookup` protocol). :func:`authorize`
turns a websocket handshake into a :class:`Grant` or a :class:`Denial` that the route
answers with HTTP 401 (no or unknown credential) or 403 (known, wrong role or room);
:func:`authenticate_request` does the same for the plain HTTP routes. Each request is
decided once; the :class:`Grant` then travels with the connection.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request

from monitor.config import TokenGrant
from monitor.server.responses import BEARER_CHALLENGE, Refusal

INGEST_PATH = "/v1/ingest"
ALERTS_PATH = "/v1/alerts"

INGEST_ROLES = frozenset({"ingest", "anchor", "admin"})
"""Roles that may stream a room's audio on ``/v1/ingest`` (anchor and ingest: scoped rooms only)."""

SUBSCRIBE_ROLES = frozenset({"anchor", "moderator", "admin"})
"""Roles that may watch alerts on ``/v1/alerts``."""

ALL_ROOMS_ROLES = frozenset({"moderator", "admin", "inspector"})
"""Roles that see every room whatever their ``rooms`` list says."""

CONSOLE_ROLES = frozenset({"moderator", "admin"})
"""Roles that may sign in to the console, read evidence and record decisions."""


@dataclass(frozen=True)
class Grant:
    """What an accepted token allows: ``rooms is None`` means every room.

    ``name`` is the token's holder from ``MONITOR_TOKENS`` (``None`` when not configured);
    ``via_cookie`` is true when the request authenticated with a console session cookie.
    """

    role: str
    rooms: frozenset[str] | None
    name: str | None = None
    via_cookie: bool = False
    token_id: str = ""
    anchor_id: str | None = None

    @property
    def client_key(self) -> str:
        """Who this is for limits and session ownership: the token's fingerprint, else the holder."""
        return self.token_id or f"{self.role}:{self.identity}"

    @property
    def identity(self) -> str:
        """Who acts, as recorded with a decision: the configured name, else the role."""
        return self.name or f"unnamed {self.role}"

    def may_see(self, room_id: str | None) -> bool:
        """Whether alerts and audio of ``room_id`` are within this token's scope."""
        return self.rooms is None or (room_id is not None and room_id in self.rooms)


class SessionLookup(Protocol):
    """The console's sign-in sessions as auth sees them (:class:`~monitor.server.console_sessions.ConsoleSessions`)."""

    def grant_for_cookie(self, cookie_header: str) -> Grant | None:
        """The grant of the live session a ``Cookie`` header names, or None."""
        ...


@dataclass(frozen=True)
class Denial:
    """Why a handshake is refused: the HTTP status and a one-line reason for the body."""

    status: int
    reason: str


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token from ``Authorization: Bearer <t>``; None when absent or malformed.

    A token in the URL (``?access_token=``) is not accepted: URLs end up in access logs.
    """
    header = headers.get("Authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


def _lookup(tokens: Mapping[str, TokenGrant], presented: str) -> TokenGrant | None:
    found = None
    # compare against every token so timing does not reveal which prefix matched
    for token, grant in tokens.items():
        if hmac.compare_digest(token.encode(), presented.encode()):
            found = grant
    return found


def token_fingerprint(token: str) -> str:
    """A stable, non-secret name of a token (16 hex digits of its SHA-256), for ownership and limits."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def grant_of(token_grant: TokenGrant, *, via_cookie: bool = False, token_id: str = "") -> Grant:
    """The :class:`Grant` of a configured token: role, room scope, holder's name and, for an
    anchor, its own ``anchor_id`` (the entry's ``anchor_id``, else its ``name``, else
    ``anchor-<fingerprint>``)."""
    role = token_grant.role
    if role in ALL_ROOMS_ROLES:
        rooms: frozenset[str] | None = None
    elif token_grant.rooms is not None:
        rooms = frozenset(token_grant.rooms)
    else:
        # an ingest gateway without a list streams any room; an anchor without one sees none
        rooms = None if role == "ingest" else frozenset()
    anchor_id = None
    if role == "anchor":
        anchor_id = token_grant.anchor_id or token_grant.name or f"anchor-{token_id or 'unnamed'}"
    return Grant(
        role=role, rooms=rooms, name=token_grant.name, via_cookie=via_cookie, token_id=token_id, anchor_id=anchor_id
    )


def authenticate(
    tokens: Mapping[str, TokenGrant],
    headers: Mapping[str, str],
    sessions: SessionLookup | None = None,
) -> Grant | Denial:
    """Who is asking: the bearer token if one is sent, else a valid console session cookie.

    401 when neither is presented or the one presented is unknown or expired.
    """
    if headers.get("Authorization"):
        presented = bearer_token(headers)
        if not presented:
            return Denial(401, "malformed Authorization header: send 'Authorization: Bearer <token>'")
        token_grant = _lookup(tokens, presented)
        if token_grant is None:
            return Denial(401, "unknown bearer token")
        return grant_of(token_grant, token_id=token_fingerprint(presented))
    if sessions is not None and headers.get("Cookie"):
        grant = sessions.grant_for_cookie(headers["Cookie"])
        if grant is not None:
            return grant
        return Denial(401, "console session expired or unknown: sign in again")
    return Denial(401, "missing bearer token: send 'Authorization: Bearer <token>'")


def same_origin(headers: Mapping[str, str]) -> bool:
    """False when the browser says the request comes from another site (``Origin`` host differs
    from ``Host``); true without an ``Origin`` (scripts, same-origin GETs)."""
    origin = headers.get("Origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == headers.get("Host", "")


def authenticate_request(
    tokens: Mapping[str, TokenGrant],
    headers: Mapping[str, str],
    sessions: SessionLookup | None = None,
) -> Grant | Denial:
    """:func:`authenticate`, and a console cookie sent from another site's page refused (403):
    cross-site request forgery and websocket hijacking ride on the browser's cookie."""
    grant = authenticate(tokens, headers, sessions)
    if isinstance(grant, Grant) and grant.via_cookie and not same_origin(headers):
        return Denial(403, "console cookie sent from another origin")
    return grant


def authorize(
    tokens: Mapping[str, TokenGrant],
    headers: Mapping[str, str],
    path: str,
    sessions: SessionLookup | None = None,
) -> Grant | Denial:
    """Decide a handshake on ``path`` (``/v1/ingest`` or ``/v1/alerts``, query string included).

    ``headers`` is any case-insensitive mapping (Starlette's ``Headers``) or a plain dict.
    401 when no credential or an unknown one is presented; 403 when the role may not use
    the endpoint, when ``/v1/alerts?room=R`` names a room outside the token's scope, when
    a console session cookie is offered on ``/v1/ingest`` (audio sources use tokens) or
    comes from another site's page.
    """
    parts = urlsplit(path)
    grant = authenticate_request(tokens, headers, sessions)
    if isinstance(grant, Denial):
        return grant
    role = grant.role
    if parts.path == INGEST_PATH:
        if grant.via_cookie:
            return Denial(403, "a console session may not stream audio; use a bearer token")
        if role not in INGEST_ROLES:
            return Denial(403, f"role {role!r} may not stream audio; needs one of {sorted(INGEST_ROLES)}")
    if parts.path == ALERTS_PATH:
        if role not in SUBSCRIBE_ROLES:
            return Denial(403, f"role {role!r} may not watch alerts; needs one of {sorted(SUBSCRIBE_ROLES)}")
        for room in parse_qs(parts.query).get("room", []):
            if not grant.may_see(room):
                return Denial(403, f"token is not scoped to room {room!r}")
    return grant


def api_grant(tokens: Mapping[str, TokenGrant], sessions: SessionLookup) -> Callable[[Request], Grant]:
    """FastAPI dependency: the request's grant (bearer token or console cookie), else a JSON 401/403."""

    def grant(request: Request) -> Grant:
        found = authenticate_request(tokens, request.headers, sessions)
        if isinstance(found, Denial):
            raise Refusal(
                found.status, found.reason, code="unauthorized" if found.status == 401 else "forbidden",
                as_json=True, headers=BEARER_CHALLENGE if found.status == 401 else None,
            )
        return found

    return grant
