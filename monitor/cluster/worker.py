"""``monitor worker``: transcribe utterance jobs from the broker, any number of processes.

Each worker pulls from one durable consumer shared by all workers, so a job goes to one
worker; it asks for as many jobs as it has decoder slots free (``MONITOR_ASR_WORKERS``),
so a batch follows its capacity. A job is acknowledged only after its result is stored:
a worker killed mid-job loses nothing, the broker hands the job to another worker after
``JOB_ACK_WAIT_S`` (while working, a worker tells the broker it is still busy). Results
are stored under the job's key (last message per subject), so a redelivered job that
was in fact finished changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout

from monitor.asr.transcriber import Transcriber, load_transcriber
from monitor.cluster.broker import JOB_ACK_WAIT_S, JOBS_STREAM, RESULTS_STREAM, WORKERS_CONSUMER, Broker, BrokerError
from monitor.cluster.jobs import UtteranceDone, UtteranceJob, result_subject
from monitor.cluster.metrics import ClusterMetrics
from monitor.config import Settings
from monitor.detection import load_detectors

log = logging.getLogger(__name__)

FETCH_WAIT_S = 1.0
"""How long one fetch waits for jobs before asking again (also how fast a stop is noticed)."""


class Worker:
    """One worker process's loop; :meth:`run` until :meth:`stop`."""

    def __init__(self, settings: Settings, transcriber: Transcriber, metrics: ClusterMetrics) -> None:
        self.settings = settings
        self.transcriber = transcriber
        self.metrics = metrics
        self.name = f"worker-{socket.gethostname()}-{os.getpid()}"
        self.slots = max(1, settings.asr_workers)
        self._pool = ThreadPoolExecutor(self.slots, thread_name_prefix="asr")
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, broker: Broker) -> None:
        pull = await broker.js.pull_subscribe("monitor.jobs.>", durable=WORKERS_CONSUMER, stream=JOBS_STREAM)
        log.info("%s taking jobs (%d at a time)", self.name, self.slots)
        while not self._stopping.is_set():
            try:
                msgs = await pull.fetch(self.slots, timeout=FETCH_WAIT_S)
            except (TimeoutError, NatsTimeout):
                continue
            self.metrics.batch_size.observe(len(msgs))
            await asyncio.gather(*(self._handle(broker, msg, len(msgs)) for msg in msgs))

    async def _handle(self, broker: Broker, msg: Msg, batch_size: int) -> None:
        info = msg.metadata
        if info.num_delivered > 1:
            self.metrics.redeliveries.inc()
        try:
            job, segment = UtteranceJob.decode(msg.data, subject=msg.subject)
        except BrokerError as exc:
            log.error("dropping a malformed job: %s", exc)
            await msg.term()
            return
        subject = result_subject(job.session_id, job.key)
        if await broker.last(RESULTS_STREAM, subject) is not None:
            await msg.ack()  # finished before a crash or a redelivery: nothing to do
            return
        loop = asyncio.get_running_loop()
        began = time.perf_counter()
        work = loop.run_in_executor(
            self._pool, lambda: self.transcriber.transcribe(segment, room_category=job.room_category)
        )
        while True:  # keep the job ours while the decoder works
            done, _ = await asyncio.wait({work}, timeout=JOB_ACK_WAIT_S / 3)
            if done:
                break
            await msg.in_progress()
        try:
            transcript = work.result()
        except Exception:
            log.exception("job %s of session %s failed; it will be retried", job.key, job.session_id)
            await msg.nak(delay=1.0)
            return
        self.metrics.jobs.inc()
        self.metrics.job_seconds.observe(time.perf_counter() - began)
        done_msg = UtteranceDone(job.key, job.created_ms, transcript, self.name, batch_size)
        await broker.publish(subject, done_msg.encode(), msg_id=f"result.{job.session_id}.{job.key}")
        await msg.ack()


async def run_worker(settings: Settings) -> int:
    """``monitor worker``: load the models, take jobs until SIGTERM/SIGINT; exit status."""
    import signal

    if not settings.broker_url:
        log.error("monitor worker needs MONITOR_BROKER_URL (the cluster's NATS server)")
        return 2
    metrics = ClusterMetrics(role="worker")
    detectors = load_detectors(settings)
    transcriber = await asyncio.to_thread(load_transcriber, settings, detectors.lexicon)
    broker = await Broker.connect(settings.broker_url, name="monitor-worker")
    worker = Worker(settings, transcriber, metrics)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    metrics_server = metrics.serve(settings.host, settings.cluster_metrics_port)
    try:
        await worker.run(broker)
    finally:
        if metrics_server is not None:
            metrics_server.close()
        await broker.close()
    return 0
