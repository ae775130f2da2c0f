"""Bearer-token checks for the websocket endpoints, decided before the upgrade.

Tokens come from ``Settings.tokens`` (``MONITOR_TOKENS``): each maps to a role and,
optionally, the rooms it is limited to. :func:`authorize` turns the handshake request
into a :class:`Grant` or a :class:`Denial` that ``process_request`` answers with
HTTP 401 (no or unknown token) or 403 (known token, wrong role or room).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from monitor.config import TokenGrant

INGEST_ROLES = frozenset({"ingest", "anchor", "admin"})
"""Roles that may stream a room's audio on ``/v1/ingest`` (anchor and ingest: scoped rooms only)."""

SUBSCRIBE_ROLES = frozenset({"anchor", "moderator", "admin"})
"""Roles that may watch alerts on ``/v1/alerts``."""

ALL_ROOMS_ROLES = frozenset({"moderator", "admin"})
"""Roles that see every room whatever their ``rooms`` list says."""


@dataclass(frozen=True)
class Grant:
    """What an accepted token allows: ``rooms is None`` means every room."""

    role: str
    rooms: frozenset[str] | None

    def may_see(self, room_id: str | None) -> bool:
        """Whether alerts and audio of ``room_id`` are within this token's scope."""
        return self.rooms is None or (room_id is not None and room_id in self.rooms)


@dataclass(frozen=True)
class Denial:
    """Why a handshake is refused: the HTTP status and a one-line reason for the body."""

    status: int
    reason: str


def bearer_token(headers: Mapping[str, str], query: str) -> str | None:
    """The token from ``Authorization: Bearer <t>``, else from ``?access_token=<t>`` (browsers)."""
    header = headers.get("Authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    values = parse_qs(query).get("access_token")
    return values[0] if values else None


def _lookup(tokens: Mapping[str, TokenGrant], presented: str) -> TokenGrant | None:
    found = None
    # compare against every token so timing does not reveal which prefix matched
    for token, grant in tokens.items():
        if hmac.compare_digest(token.encode(), presented.encode()):
            found = grant
    return found


def authorize(tokens: Mapping[str, TokenGrant], headers: Mapping[str, str], path: str) -> Grant | Denial:
    """Decide a handshake on ``path`` (``/v1/ingest`` or ``/v1/alerts``, query string included).

    401 when no token or an unknown one is presented; 403 when the role may not use the
    endpoint, or when ``/v1/alerts?room=R`` names a room outside the token's scope.
    """
    parts = urlsplit(path)
    presented = bearer_token(headers, parts.query)
    if not presented:
        return Denial(401, "missing bearer token: send 'Authorization: Bearer <token>'")
    token_grant = _lookup(tokens, presented)
    if token_grant is None:
        return Denial(401, "unknown bearer token")
    role = token_grant.role
    if role in ALL_ROOMS_ROLES:
        rooms: frozenset[str] | None = None
    elif token_grant.rooms is not None:
        rooms = frozenset(token_grant.rooms)
    else:
        # an ingest gateway without a list streams any room; an anchor without one sees none
        rooms = None if role == "ingest" else frozenset()
    grant = Grant(role=role, rooms=rooms)
    if parts.path == "/v1/ingest" and role not in INGEST_ROLES:
        return Denial(403, f"role {role!r} may not stream audio; needs one of {sorted(INGEST_ROLES)}")
    if parts.path == "/v1/alerts":
        if role not in SUBSCRIBE_ROLES:
            return Denial(403, f"role {role!r} may not watch alerts; needs one of {sorted(SUBSCRIBE_ROLES)}")
        for room in parse_qs(parts.query).get("room", []):
            if not grant.may_see(room):
                return Denial(403, f"token is not scoped to room {room!r}")
    return grant
