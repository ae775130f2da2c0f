"""The room registry and the client bounds as plain objects: exact inputs, no sockets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from monitor.errors import ProtocolError
from monitor.server.limits import ConnectionGate, RateLimits, TokenBucket
from monitor.server.protocol import StartFrame
from monitor.server.rooms import RoomRegistry


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Room:
    """A room session as the registry sees it (the real one is RoomSession)."""

    room_id: str
    session_id: str
    opened_by: str
    sample_rate: int = 16000
    connected: bool = True
    finishing: bool = False
    next_seq: int = 3200


def start(room: str = "r1", **extra: object) -> StartFrame:
    return StartFrame.model_validate(
        {"type": "start", "room_id": room, "sample_rate": 16000, "encoding": "pcm_s16le", **extra}
    )


def registry(**overrides: float) -> RoomRegistry:
    values = {"max_sessions_per_token": 10, "new_sessions_per_token_per_s": 100.0, **overrides}
    return RoomRegistry(
        max_sessions_per_token=int(values["max_sessions_per_token"]),
        new_sessions_per_token_per_s=values["new_sessions_per_token_per_s"],
        clock=FakeClock(),
    )


def refused(reg: RoomRegistry, frame: StartFrame, token: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        reg.admit(frame, token)
    assert caught.value.fatal
    return caught.value


def test_empty_room_is_a_new_session() -> None:
    admission = registry().admit(start(), "gw")
    assert admission.resume is None and admission.replaces is None


def test_live_room_without_seq_is_busy() -> None:
    reg = registry()
    reg.add(Room("r1", "s1", "gw"))
    assert refused(reg, start(), "gw").code == "room_busy"


def test_room_in_grace_without_seq_replaces_the_old_session() -> None:
    """PROTOCOL.md v2: a room whose socket is gone is never answered room_busy."""
    reg = registry()
    old = Room("r1", "s1", "gw", connected=False)
    reg.add(old)
    admission = reg.admit(start(), "other-token")
    assert admission.replaces is old and admission.resume is None


def test_resume_by_the_opening_token() -> None:
    reg = registry()
    room = Room("r1", "s1", "gw")
    reg.add(room)
    assert reg.admit(start(seq=0), "gw").resume is room


def test_resume_by_another_token_needs_the_session_id() -> None:
    reg = registry()
    room = Room("r1", "s1", "gw")
    reg.add(room)
    error = refused(reg, start(seq=0), "intruder")
    assert error.code == "room_busy" and "session_id" in str(error)
    assert reg.admit(start(seq=0, session_id="s1"), "second-gateway").resume is room
    assert refused(reg, start(seq=0, session_id="s-other"), "gw").code == "room_busy"


def test_resume_checks_rate_and_seq() -> None:
    reg = registry()
    reg.add(Room("r1", "s1", "gw", next_seq=3200))
    assert refused(reg, start(seq=3202), "gw").code == "seq_ahead"
    mismatch = StartFrame.model_validate(
        {"type": "start", "room_id": "r1", "sample_rate": 8000, "encoding": "pcm_s16le", "seq": 0}
    )
    assert refused(reg, mismatch, "gw").code == "resume_mismatch"


def test_finishing_session_does_not_hold_the_room() -> None:
    reg = registry()
    reg.add(Room("r1", "s1", "gw", finishing=True))
    admission = reg.admit(start(), "gw")
    assert admission.resume is None and admission.replaces is None


def test_sessions_per_token_bound() -> None:
    reg = registry(max_sessions_per_token=2)
    reg.add(Room("r1", "s1", "gw"))
    reg.add(Room("r2", "s2", "gw"))
    error = refused(reg, start("r3"), "gw")
    assert error.code == "too_many_sessions" and "max_sessions_per_token" in str(error)
    reg.admit(start("r3"), "another-token")  # the bound is per token


def test_new_sessions_per_second_bound() -> None:
    clock = FakeClock()
    reg = RoomRegistry(max_sessions_per_token=100, new_sessions_per_token_per_s=1.0, clock=clock)
    for _ in range(4):  # a burst of 4x the rate
        reg.admit(start(), "churner")
    assert refused(reg, start(), "churner").code == "too_many_sessions"
    clock.now += 1.0
    reg.admit(start(), "churner")


def test_remove_only_the_current_session() -> None:
    reg = registry()
    old, new = Room("r1", "s1", "gw"), Room("r1", "s2", "gw")
    reg.add(old)
    reg.add(new)
    assert not reg.remove(old) and reg.get("r1") is new
    assert reg.remove(new) and len(reg) == 0


def test_token_bucket_delay_and_try_take() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, 4.0, clock=clock)
    assert bucket.delay(4) == 0.0
    assert bucket.delay(1) == pytest.approx(0.5)
    assert not bucket.try_take()
    clock.now += 1.0
    assert bucket.try_take()


def test_rate_limits_are_per_key() -> None:
    limits = RateLimits(1.0, 1.0, clock=FakeClock())
    assert limits.allow("mod-a") and not limits.allow("mod-a") and limits.allow("mod-b")


def test_connection_gate_counts_sockets_and_pending_handshakes() -> None:
    gate = ConnectionGate(max_open_sockets=3, max_pending_handshakes=2)
    assert gate.admit() is None and gate.admit() is None
    assert gate.admit() == "pending_handshakes"
    gate.handshake_done()
    assert gate.admit() is None
    assert gate.admit() == "open_sockets"
    gate.closed(handshake_pending=True)
    assert (gate.open_sockets, gate.pending_handshakes) == (2, 1)
