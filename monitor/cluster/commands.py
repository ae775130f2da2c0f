"""``monitor worker`` and ``monitor archiver``: the cluster's other processes (docs/CLUSTER.md).

Both read the same settings as ``monitor serve`` (``MONITOR_BROKER_URL`` is required);
``monitor serve`` with ``MONITOR_BROKER_URL`` set is a gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any, Protocol

from monitor.config import Settings, load_settings

if TYPE_CHECKING:  # the CLI imports this module on every command: no NATS client until one runs
    from monitor.cluster.broker import Broker
    from monitor.cluster.metrics import ClusterMetrics

log = logging.getLogger(__name__)


class ClusterProcess(Protocol):
    """A worker or the archiver: runs on the broker until stopped."""

    async def run(self, broker: Broker) -> None: ...

    def stop(self) -> None: ...


def broker_url_of(settings: Settings, command: str) -> str | None:
    """``MONITOR_BROKER_URL``, or None after logging why ``command`` cannot run without it."""
    if not settings.broker_url:
        log.error("monitor %s needs MONITOR_BROKER_URL (the cluster's NATS server)", command)
    return settings.broker_url


async def run_until_stopped(
    process: ClusterProcess, broker: Broker, metrics: ClusterMetrics, settings: Settings
) -> None:
    """Run ``process`` until SIGTERM/SIGINT, its metrics served on ``MONITOR_CLUSTER_METRICS_PORT``;
    the metrics server and the broker connection are closed either way."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, process.stop)
    metrics_server: Any = metrics.serve(settings.host, settings.cluster_metrics_port)
    try:
        await process.run(broker)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        await broker.close()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = subparsers.add_parser(
        "worker", help="cluster mode: transcribe utterance jobs from the broker (any number of processes)"
    )
    worker.set_defaults(run=_run_worker)
    archiver = subparsers.add_parser(
        "archiver", help="cluster mode: the single writer of the evidence archive (MONITOR_DATA_DIR)"
    )
    archiver.set_defaults(run=_run_archiver)


def _run_worker(args: argparse.Namespace) -> int:
    from monitor.cluster.worker import run_worker

    return asyncio.run(run_worker(load_settings()))


def _run_archiver(args: argparse.Namespace) -> int:
    from monitor.cluster.archiver import run_archiver

    return asyncio.run(run_archiver(load_settings()))
