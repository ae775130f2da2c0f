"""A fair, bounded worker pool for the rooms' utterances.

Transcription and detection are blocking (CTranslate2, the text engine), so they run
on a ``ThreadPoolExecutor`` of ``Settings.server_workers`` threads shared by every
room. Fairness: each room has at most one utterance in flight, and rooms with work
wait in a round-robin queue, so a room with a backlog gets one turn per round and
cannot starve a room that just started talking. Everything here runs on the event
loop; there is no polling: work is dispatched when it arrives and when a job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

log = logging.getLogger(__name__)


class WorkSource(Protocol):
    """A room as the scheduler sees it."""

    def has_work(self) -> bool:
        """Whether an utterance is waiting."""
        ...

    def take_job(self) -> Callable[[], Any]:
        """Dequeue the next utterance as a blocking callable (runs on a worker thread)."""
        ...

    def job_done(self, future: Future[Any]) -> None:
        """Deliver a finished job's result (or exception) on the event loop."""
        ...


class FairScheduler:
    """Round-robin dispatch of room jobs onto ``workers`` threads, one job per room at a time."""

    def __init__(self, workers: int, *, thread_name_prefix: str = "monitor-worker") -> None:
        self.workers = workers
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name_prefix)
        self._ready: deque[WorkSource] = deque()
        self._busy: set[WorkSource] = set()

    @property
    def in_flight(self) -> int:
        return len(self._busy)

    def notify(self, room: WorkSource) -> None:
        """Call when ``room`` may have new work; dispatches at once if a worker is free."""
        if room not in self._busy and room not in self._ready and room.has_work():
            self._ready.append(room)
        self._dispatch()

    def forget(self, room: WorkSource) -> None:
        """Drop ``room`` from the waiting line (its in-flight job, if any, still completes)."""
        with contextlib.suppress(ValueError):
            self._ready.remove(room)

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while self._ready and len(self._busy) < self.workers:
            room = self._ready.popleft()
            if not room.has_work():
                continue
            job = room.take_job()
            self._busy.add(room)
            future = self.executor.submit(job)
            future.add_done_callback(
                lambda f, room=room: loop.call_soon_threadsafe(self._finished, room, f)  # type: ignore[misc]
            )

    def _finished(self, room: WorkSource, future: Future[Any]) -> None:
        self._busy.discard(room)
        try:
            room.job_done(future)
        except Exception:
            log.exception("delivering a finished job failed")
        if room.has_work() and room not in self._ready:
            self._ready.append(room)
        self._dispatch()

    def run_blocking(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        """Run a one-off blocking call (session records) on the pool, outside the round-robin."""
        return asyncio.get_running_loop().run_in_executor(self.executor, fn)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=False)
