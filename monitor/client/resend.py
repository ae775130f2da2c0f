"""The audio a stream may have to send again after a dropped connection (I/O-free).

The server says how much of the stream it holds only when a connection starts (``ready``'s
``next_seq``), so everything sent since then is unconfirmed: bytes in the kernel's buffers
or on the wire when the connection dropped never arrived. :class:`ResendBuffer` keeps the
newest ``max_bytes`` of them by byte offset (``seq``), so a resume can send again from
wherever the server stopped.
"""

from __future__ import annotations

from collections import deque


class ResendBuffer:
    """Bytes ``[start, end)`` of a PCM stream, at most ``max_bytes`` of them (the oldest go first).

    Offsets are bytes of the room's stream, as ``seq`` in docs/PROTOCOL.md.
    """

    def __init__(self, max_bytes: int, start: int = 0) -> None:
        if max_bytes < 2:
            raise ValueError(f"max_bytes must be at least 2, got {max_bytes}")
        self.max_bytes = max_bytes
        self.start = start
        self.end = start
        self._frames: deque[bytes] = deque()

    @property
    def size(self) -> int:
        """Bytes held (``end - start``)."""
        return self.end - self.start

    def append(self, frame: bytes) -> None:
        """Hold ``frame`` (the stream's next bytes); drop the oldest frames beyond ``max_bytes``."""
        if not frame:
            return
        self._frames.append(frame)
        self.end += len(frame)
        while self.size > self.max_bytes and len(self._frames) > 1:
            self.start += len(self._frames.popleft())

    def discard_before(self, seq: int) -> None:
        """Forget the bytes before ``seq`` (the server confirmed it holds them)."""
        seq = min(max(seq, self.start), self.end)
        while self._frames and self.start + len(self._frames[0]) <= seq:
            self.start += len(self._frames.popleft())
        if self._frames and self.start < seq:
            self._frames[0] = self._frames[0][seq - self.start :]
            self.start = seq

    def fill_gap(self, seq: int) -> int:
        """Start the held bytes at ``seq`` < ``start`` with silence; return the bytes of silence added.

        For a server that is missing audio this buffer already dropped: stream time stays exact.
        """
        gap = self.start - seq
        if gap <= 0:
            return 0
        self._frames.appendleft(bytes(gap))
        self.start = seq
        return gap

    def read_from(self, seq: int, frame_bytes: int) -> list[bytes]:
        """The held bytes from ``seq`` to ``end`` in frames of at most ``frame_bytes`` (even sizes)."""
        if seq < self.start:
            raise ValueError(f"seq {seq} is before the oldest byte held ({self.start})")
        data = b"".join(self._frames)[seq - self.start :]
        step = max(2, frame_bytes - frame_bytes % 2)
        return [data[i : i + step] for i in range(0, len(data), step)]
