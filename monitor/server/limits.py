"""Bounds on what clients may hold or do, as plain objects (no sockets, injectable clock).

* :class:`TokenBucket`: a rate with a burst (audio seconds, messages, new sessions, decisions).
* :class:`ConnectionGate`: counts open TCP connections and those still in their handshake,
  and says when a new one must be refused (``max_open_sockets``, ``max_pending_handshakes``).

Every refusal is counted by the caller in ``monitor_limit_refusals_total{limit=...}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


class TokenBucket:
    """Rate limit: ``rate`` units per second, bursts up to ``burst`` units."""

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._level = burst
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.burst, self._level + (now - self._at) * self.rate)
        self._at = now

    def delay(self, amount: float) -> float:
        """Take ``amount`` units; the seconds to wait before the taking is within the rate (0 if none)."""
        self._refill()
        self._level -= amount
        return 0.0 if self._level >= 0 else -self._level / self.rate

    def try_take(self, amount: float = 1.0) -> bool:
        """Take ``amount`` units if they are there now; False (nothing taken) otherwise."""
        self._refill()
        if self._level < amount:
            return False
        self._level -= amount
        return True


@dataclass
class RateLimits:
    """One :class:`TokenBucket` per key (a token, a moderator), made on first use; bounded."""

    rate_per_s: float
    burst: float
    max_keys: int = 100_000
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def allow(self, key: str) -> bool:
        """Whether ``key`` may act once more now (and count the act)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()  # forget idle keys rather than grow without bound
            bucket = self._buckets[key] = TokenBucket(self.rate_per_s, self.burst, clock=self.clock)
        return bucket.try_take()


@dataclass
class ConnectionGate:
    """Open sockets and pending handshakes; :meth:`admit` decides a new TCP connection."""

    max_open_sockets: int
    max_pending_handshakes: int
    open_sockets: int = 0
    pending_handshakes: int = 0

    def admit(self) -> str | None:
        """Count a new connection; None if admitted, else the name of the limit it hit (not counted)."""
        if self.open_sockets >= self.max_open_sockets:
            return "open_sockets"
        if self.pending_handshakes >= self.max_pending_handshakes:
            return "pending_handshakes"
        self.open_sockets += 1
        self.pending_handshakes += 1
        return None

    def handshake_done(self) -> None:
        """The connection's HTTP request arrived (it is no longer a stalled handshake)."""
        self.pending_handshakes = max(0, self.pending_handshakes - 1)

    def closed(self, *, handshake_pending: bool) -> None:
        """An admitted connection ended."""
        self.open_sockets = max(0, self.open_sockets - 1)
        if handshake_pending:
            self.handshake_done()
