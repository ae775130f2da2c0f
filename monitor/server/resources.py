"""Loading what every room shares: models, lexicons, the evidence archive (off the event loop).

:class:`ResourceLoader` loads once per server, in a worker thread, and then keeps retrying an
archive that failed to open (alerts go out with ``evidence_id: null`` meanwhile)::

    loader = ResourceLoader(settings, hub=hub, metrics=metrics, scheduler=scheduler)
    loader.start()                 # returns at once; the port is already open
    await loader.loaded.wait()     # set on success and on failure
    loader.resources               # None until loaded (or when loading failed: see load_error)
    loader.stop_loading()          # drain begins: stop loading and retrying the archive
    loader.close()                 # close the archive (after the rooms are flushed)

A missing or wrong signing key refuses to start (:class:`~monitor.errors.ArchiveKeyError`
in ``load_error``): it would orphan every checkpoint. Any other archive failure serves on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np

from monitor.config import Settings
from monitor.errors import ArchiveError, ArchiveKeyError
from monitor.server.evidence import EvidenceWriter
from monitor.server.hub import AlertHub
from monitor.server.metrics import ServerMetrics
from monitor.server.scheduler import FairScheduler
from monitor.server.session import Resources

log = logging.getLogger(__name__)


class ResourceLoader:
    """Loads :class:`~monitor.server.session.Resources` once, in the background; see the module docstring."""

    def __init__(
        self, settings: Settings, *, hub: AlertHub, metrics: ServerMetrics, scheduler: FairScheduler
    ) -> None:
        self.settings = settings
        self._hub = hub
        self._metrics = metrics
        self._scheduler = scheduler
        self.resources: Resources | None = None
        self.load_error: BaseException | None = None
        self.loaded = asyncio.Event()
        self._load_task: asyncio.Task[None] | None = None
        self._archive_retry: asyncio.Task[None] | None = None
        self._closing = False
        self.gateway: Any = None  # cluster mode: a monitor.cluster.gateway.Gateway (workers and archiver remote)

    def start(self) -> None:
        """Begin loading in a worker thread; :attr:`loaded` is set when it ends either way."""
        self._load_task = asyncio.create_task(self._load(), name="load-resources")

    async def _load(self) -> None:
        try:
            self.resources = await asyncio.get_running_loop().run_in_executor(None, self._load_blocking)
        except Exception as exc:  # reported by whoever waits on `loaded` (serve exits non-zero)
            self.load_error = exc
            log.error("models failed to load: %s", exc)
        finally:
            self.loaded.set()
        if self.resources is not None and not self.resources.evidence.available and not self._closing:
            self._archive_retry = asyncio.create_task(self._retry_archive(self.resources.evidence))

    def _load_blocking(self) -> Resources:
        from monitor.asr.transcriber import load_transcriber
        from monitor.asr.vad import StreamingSegmenter
        from monitor.detection import load_detectors

        settings = self.settings
        detectors = load_detectors(settings)  # loaded and warmed once per process
        StreamingSegmenter().feed(np.zeros(16000, dtype=np.float32))  # loads the shared Silero model
        if self.gateway is not None:  # cluster mode: `monitor worker` transcribes, `monitor archiver` archives
            transcriber = None
            evidence: Any = self.gateway.evidence
        else:
            transcriber = load_transcriber(settings, lexicon=detectors.lexicon)  # lexicons parsed once
            evidence = self._open_archive()
        return Resources(
            settings=settings,
            detectors=detectors,
            transcriber=transcriber,
            evidence=evidence,
            hub=self._hub,
            metrics=self._metrics,
            scheduler=self._scheduler,
        )

    def _open_archive(self) -> EvidenceWriter:
        from monitor.archive.archive import EvidenceArchive

        try:
            archive = EvidenceArchive.open(self.settings.data_dir, signing_key=self.settings.signing_key)
        except ArchiveKeyError:
            raise  # a missing or wrong signing key would orphan every checkpoint: refuse to start
        except (ArchiveError, OSError) as exc:
            # alerts matter more than their evidence: serve anyway, evidence_id null, errors counted
            log.error(
                "evidence archive %s unavailable, alerts go out without evidence: %s",
                self.settings.data_dir,
                exc,
            )
            return EvidenceWriter(None, self._metrics, why_missing=str(exc))
        return EvidenceWriter(archive, self._metrics)

    async def _retry_archive(self, evidence: EvidenceWriter) -> None:
        """Try to open the archive every ``archive_retry_s`` until it opens (``/healthz`` says
        ``degraded`` meanwhile; alerts go out with ``evidence_id: null``)."""
        from monitor.archive.archive import EvidenceArchive

        while not self._closing:
            await asyncio.sleep(self.settings.archive_retry_s)
            try:
                archive = await asyncio.to_thread(
                    EvidenceArchive.open, self.settings.data_dir, signing_key=self.settings.signing_key
                )
            except (ArchiveError, OSError) as exc:
                evidence.set_missing(str(exc))
                self._metrics.archive_errors.inc()
                log.warning("evidence archive %s still unavailable: %s", self.settings.data_dir, exc)
                continue
            if self._closing:
                await asyncio.to_thread(archive.close)
                return
            evidence.attach(archive)
            log.info("evidence archive %s opened; alerts are archived again", self.settings.data_dir)
            return

    def stop_loading(self) -> None:
        """Drain begins: cancel a load still in progress and stop retrying the archive."""
        self._closing = True
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        if self._archive_retry is not None:
            self._archive_retry.cancel()

    def close(self) -> None:
        """Close the archive (after every room has written its last records)."""
        if self.resources is not None:
            self.resources.evidence.close()
