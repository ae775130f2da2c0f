"""Which room session a ``start`` frame continues, begins or is refused: the room registry.

A plain object (no sockets, no asyncio): :meth:`RoomRegistry.admit` takes the start frame
and the identity of the token that sent it and returns an :class:`Admission`, or raises
the fatal :class:`~monitor.errors.ProtocolError` the client is answered with. The rules
(PROTOCOL.md, "Connection ends and resume"):

* no session for the room: a new one (``seq`` given: the stream continues at that offset);
* a session whose socket is connected, ``start`` without ``seq``: ``room_busy``;
* a session in its grace period (socket gone), ``start`` without ``seq``: the old session
  is finished (flushed, archived) and a new stream begins;
* ``start`` with ``seq``: a resume, accepted only from the token that opened the session
  or with the session's ``session_id``; otherwise ``room_busy`` and the streaming socket
  is left alone; ``seq`` past what was received is ``seq_ahead``;
* new sessions are bounded per token: at most ``max_sessions_per_token`` open at once and
  ``new_sessions_per_token_per_s`` started per second (``too_many_sessions``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from monitor.errors import ProtocolError
from monitor.server.limits import RateLimits
from monitor.server.protocol import ErrorCode, StartFrame, fatal

NEW_SESSION_BURST = 4.0
"""New sessions a token may start at once above its per-second rate (times the rate, at least 1)."""


class RoomState(Protocol):
    """A room session as the registry sees it."""

    room_id: str
    session_id: str
    opened_by: str
    sample_rate: int

    @property
    def connected(self) -> bool: ...

    @property
    def finishing(self) -> bool: ...

    @property
    def next_seq(self) -> int: ...


@dataclass(frozen=True)
class Admission:
    """What to do with a ``start``: resume ``session``, or open a new one after finishing ``replaces``."""

    resume: RoomState | None = None
    replaces: RoomState | None = None


class RoomRegistry:
    """The open room sessions by ``room_id`` and the admission rules (module docstring)."""

    def __init__(
        self,
        *,
        max_sessions_per_token: int,
        new_sessions_per_token_per_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_sessions_per_token = max_sessions_per_token
        self._new_sessions = RateLimits(
            new_sessions_per_token_per_s, max(1.0, NEW_SESSION_BURST * new_sessions_per_token_per_s), clock=clock
        )
        self._rooms: dict[str, RoomState] = {}

    def __len__(self) -> int:
        return len(self._rooms)

    def __iter__(self) -> Iterator[RoomState]:
        return iter(list(self._rooms.values()))

    def get(self, room_id: str) -> RoomState | None:
        return self._rooms.get(room_id)

    def admit(self, start: StartFrame, token_id: str) -> Admission:
        """Decide ``start`` from the token ``token_id``; raises the fatal ProtocolError that refuses it."""
        room = start.room_id
        existing = self._rooms.get(room)
        if existing is not None and existing.finishing:
            existing = None  # finishing on its own; a new session takes the room's place
        if existing is None:
            # (a resume of a session that has ended goes on as a new session at its seq)
            self._check_new_session(token_id)
            return Admission()
        if start.seq is None:
            if existing.connected:
                raise fatal(
                    ErrorCode.ROOM_BUSY,
                    f"room {room!r} is already streaming; resume with seq (and session_id) or stop it first",
                )
            self._check_new_session(token_id, replacing=existing)
            return Admission(replaces=existing)
        if start.session_id is not None and start.session_id != existing.session_id:
            raise fatal(
                ErrorCode.ROOM_BUSY,
                f"room {room!r} has session {existing.session_id}, not {start.session_id}; "
                "start without seq for a new stream once it ends",
            )
        if start.session_id is None and token_id != existing.opened_by:
            raise fatal(
                ErrorCode.ROOM_BUSY,
                f"room {room!r} is held by a session another token opened; "
                "resume it with that session's session_id",
            )
        if start.sample_rate != existing.sample_rate:
            raise fatal(
                ErrorCode.RESUME_MISMATCH,
                f"resume of room {room!r} at sample_rate={start.sample_rate}, "
                f"but the stream is at {existing.sample_rate}",
            )
        if start.seq > existing.next_seq:
            raise fatal(
                ErrorCode.SEQ_AHEAD,
                f"seq={start.seq} is past what the server received; resume from next_seq={existing.next_seq}",
            )
        return Admission(resume=existing)

    def _check_new_session(self, token_id: str, *, replacing: RoomState | None = None) -> None:
        held = sum(
            1 for s in self._rooms.values() if s.opened_by == token_id and not s.finishing and s is not replacing
        )
        if held >= self.max_sessions_per_token:
            raise _too_many(f"this token already holds {held} room sessions (max_sessions_per_token)")
        if not self._new_sessions.allow(token_id):
            raise _too_many(
                f"new sessions faster than {self._new_sessions.rate_per_s:g} per second for this token "
                "(new_sessions_per_token_per_s)"
            )

    def add(self, session: RoomState) -> None:
        """Register a newly opened session as the room's."""
        self._rooms[session.room_id] = session

    def remove(self, session: RoomState) -> bool:
        """Forget ``session`` if it is still the room's; whether it was."""
        if self._rooms.get(session.room_id) is session:
            del self._rooms[session.room_id]
            return True
        return False


def _too_many(why: str) -> ProtocolError:
    return fatal(ErrorCode.TOO_MANY_SESSIONS, f"{why}; try again later")
