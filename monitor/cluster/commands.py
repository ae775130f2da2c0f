"""``monitor worker`` and ``monitor archiver``: the cluster's other processes (docs/CLUSTER.md).

Both read the same settings as ``monitor serve`` (``MONITOR_BROKER_URL`` is required);
``monitor serve`` with ``MONITOR_BROKER_URL`` set is a gateway.
"""

from __future__ import annotations

import argparse
import asyncio

from monitor.config import load_settings


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
