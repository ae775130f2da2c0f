"""``monitor worker``: transcribe utterance jobs from the broker, any number of processes.

Each worker pulls from one durable consumer shared by all workers, so a job goes to one
worker. It takes what is waiting, up to ``MONITOR_WORKER_BATCH_SIZE`` jobs (default 1 on CPU, 8 on
a GPU), and transcribes
them in one batched decoder search (:meth:`~monitor.asr.transcriber.Transcriber.transcribe_batch`:
utterances of several rooms, one search), then asks again: a busy cluster gets larger
batches, an idle one answers each utterance at once. More throughput: more worker processes
(one per core, or per GPU). A job is acknowledged only after its result is stored:
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
from monitor.asr.vad import SpeechSegment
from monitor.cluster.broker import JOB_ACK_WAIT_S, JOBS_STREAM, RESULTS_STREAM, WORKERS_CONSUMER, Broker, BrokerError
from monitor.cluster.jobs import UtteranceDone, UtteranceJob, result_subject
from monitor.cluster.metrics import ClusterMetrics, report_lag
from monitor.config import Settings
from monitor.detection import load_detectors

log = logging.getLogger(__name__)

CPU_BATCH = 1
"""Default batch on CPU: measured (benchmarks/cluster.py, 4 rooms, 2 workers) batches of up to 4 cost
x1.076 CPU and +0.145 s p95 against x1.023 and +0.057 s one at a time; alone, 4 utterances decode
~10 % cheaper batched, but live rooms rarely fill a batch on CPU."""
GPU_BATCH = 8
"""Default batch on a GPU, where one batched search is the main lever (not measured here: no GPU)."""
FETCH_WAIT_S = 1.0
"""How long one fetch waits for jobs before asking again (also how fast a stop is noticed)."""


class Worker:
    """One worker process's loop; :meth:`run` until :meth:`stop`."""

    def __init__(self, settings: Settings, transcriber: Transcriber, metrics: ClusterMetrics) -> None:
        self.settings = settings
        self.transcriber = transcriber
        self.metrics = metrics
        self.name = f"worker-{socket.gethostname()}-{os.getpid()}"
        self.batch_max = settings.worker_batch_size or (GPU_BATCH if settings.asr_device == "cuda" else CPU_BATCH)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="asr")
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, broker: Broker) -> None:
        pull = await broker.js.pull_subscribe("monitor.jobs.>", durable=WORKERS_CONSUMER, stream=JOBS_STREAM)
        log.info("%s taking jobs (batches of up to %d)", self.name, self.batch_max)
        lag_checked = 0.0
        while not self._stopping.is_set():
            lag_checked = await report_lag(pull, self.metrics, "workers", lag_checked)
            try:
                msgs = await pull.fetch(self.batch_max, timeout=FETCH_WAIT_S)
            except (TimeoutError, NatsTimeout):
                continue
            await self._batch(broker, msgs)

    async def _batch(self, broker: Broker, msgs: list[Msg]) -> None:
        """Transcribe the jobs taken at once in one batched decode, store each result, then ack."""
        jobs: list[tuple[Msg, UtteranceJob, SpeechSegment]] = []
        for msg in msgs:
            if msg.metadata.num_delivered > 1:
                self.metrics.redeliveries.inc()
            try:
                job, segment = UtteranceJob.decode(msg.data, subject=msg.subject)
            except BrokerError as exc:
                log.error("dropping a malformed job: %s", exc)
                await msg.term()
                continue
            if await broker.last(RESULTS_STREAM, result_subject(job.session_id, job.key)) is not None:
                await msg.ack()  # finished before a crash or a redelivery: nothing to do
                continue
            jobs.append((msg, job, segment))
        if not jobs:
            return
        self.metrics.batch_size.observe(len(jobs))
        began = time.perf_counter()
        work = asyncio.get_running_loop().run_in_executor(
            self._pool,
            self.transcriber.transcribe_batch,
            [segment for _, _, segment in jobs],
            [job.room_category for _, job, _ in jobs],
        )
        while True:  # keep the jobs ours while the decoder works
            done, _ = await asyncio.wait({work}, timeout=JOB_ACK_WAIT_S / 3)
            if done:
                break
            await asyncio.gather(*(msg.in_progress() for msg, _, _ in jobs))
        try:
            transcripts = work.result()
        except Exception:
            log.exception("a batch of %d jobs failed; they will be retried", len(jobs))
            await asyncio.gather(*(msg.nak(delay=1.0) for msg, _, _ in jobs))
            return
        elapsed = time.perf_counter() - began
        for (msg, job, _), transcript in zip(jobs, transcripts, strict=True):
            self.metrics.jobs.inc()
            self.metrics.job_seconds.observe(elapsed)
            done_msg = UtteranceDone(job.key, job.created_ms, transcript, self.name, len(jobs))
            await broker.publish(result_subject(job.session_id, job.key), done_msg.encode(),
                                 msg_id=f"result.{job.session_id}.{job.key}")  # fmt: skip
            await msg.ack()


async def run_worker(settings: Settings) -> int:
    """``monitor worker``: load the models, take jobs until SIGTERM/SIGINT; exit status."""
    from monitor.cluster.commands import broker_url_of, run_until_stopped

    url = broker_url_of(settings, "worker")
    if url is None:
        return 2
    metrics = ClusterMetrics(role="worker")
    detectors = load_detectors(settings)
    transcriber = await asyncio.to_thread(load_transcriber, settings, detectors.lexicon)
    broker = await Broker.connect(url, name="monitor-worker")
    await run_until_stopped(Worker(settings, transcriber, metrics), broker, metrics, settings)
    return 0
