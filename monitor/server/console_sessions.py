"""Console sign-in sessions: a bearer token traded once for an HttpOnly cookie.

Browsers cannot put an ``Authorization`` header on a websocket, and a token in a URL
ends up in logs. So the console page sends the token once, in the header of
``GET /console/session``; the server answers with a cookie holding a random session
id (256 bits), kept in this process's memory with the grant it stands for and its
expiry. The page's ``/v1/alerts`` socket and evidence fetches then authenticate with
that cookie (``HttpOnly``: page scripts cannot read it; ``SameSite=Strict``: other
sites cannot make the browser send it)::

    sessions = ConsoleSessions(ttl_s=12 * 3600)
    session_id, expires_at = sessions.create(grant)       # after the bearer token checked out
    headers["Set-Cookie"] = sessions.cookie(session_id)
    grant = sessions.grant_for_cookie(request_cookie_header)  # None: unknown or expired

Sessions live only in memory: a restart signs everyone out. Session ids are never
logged (only the holder's name is).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.cookies import CookieError, SimpleCookie

from monitor.server.auth import Grant

COOKIE_NAME = "monitor_session"
MAX_SESSIONS = 10_000
"""Sessions held at once; signing in beyond it ends the oldest session."""


@dataclass(frozen=True)
class ConsoleSession:
    """One signed-in browser: what it may do and until when (``time.time()`` seconds)."""

    grant: Grant
    expires_at: float


class ConsoleSessions:
    """The server-side map from session id to grant; bounded, expiring. Event-loop only."""

    def __init__(self, *, ttl_s: float, secure: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self.secure = secure
        self._clock = clock
        self._sessions: OrderedDict[str, ConsoleSession] = OrderedDict()

    def create(self, grant: Grant) -> tuple[str, float]:
        """A new session for ``grant``: its id and expiry (Unix seconds)."""
        self._expire()
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.popitem(last=False)
        session_id = secrets.token_urlsafe(32)
        expires_at = self._clock() + self.ttl_s
        self._sessions[session_id] = ConsoleSession(replace(grant, via_cookie=True), expires_at)
        return session_id, expires_at

    def get(self, session_id: str) -> ConsoleSession | None:
        """The live session with this id, or None (unknown or expired)."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._sessions[session_id]
            return None
        return session

    def session_id_from(self, cookie_header: str) -> str | None:
        """The session id in a ``Cookie`` request header, or None."""
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(cookie_header)
        except CookieError:
            return None
        morsel = jar.get(COOKIE_NAME)
        return morsel.value if morsel is not None and morsel.value else None

    def grant_for_cookie(self, cookie_header: str) -> Grant | None:
        """The grant of the session named by a ``Cookie`` header, or None."""
        session_id = self.session_id_from(cookie_header)
        session = self.get(session_id) if session_id else None
        return session.grant if session is not None else None

    def end(self, cookie_header: str) -> bool:
        """Sign out the session named by a ``Cookie`` header; whether there was one."""
        session_id = self.session_id_from(cookie_header)
        return session_id is not None and self._sessions.pop(session_id, None) is not None

    def cookie(self, session_id: str) -> str:
        """The ``Set-Cookie`` value that hands ``session_id`` to the browser."""
        return self._cookie(session_id, int(self.ttl_s))

    def clearing_cookie(self) -> str:
        """The ``Set-Cookie`` value that removes the session cookie."""
        return self._cookie("", 0)

    def _cookie(self, value: str, max_age_s: int) -> str:
        secure = "; Secure" if self.secure else ""
        return f"{COOKIE_NAME}={value}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{secure}"

    def _expire(self) -> None:
        now = self._clock()
        for session_id in [sid for sid, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[session_id]

    def __len__(self) -> int:
        return len(self._sessions)
