"""Cluster metrics: consumer lag, redeliveries, lease changes, per-worker batch sizes.

Gateways register them on the server's registry (served on its ``/metrics``); workers and
the archiver on their own, served on ``MONITOR_CLUSTER_METRICS_PORT`` when set.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class ClusterMetrics:
    def __init__(self, *, role: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.role = role
        self.jobs = Counter("monitor_cluster_jobs", "Utterance jobs finished by this worker", registry=r)
        self.job_seconds = Histogram(
            "monitor_cluster_job_seconds", "Wall seconds per job on a worker", registry=r,
            buckets=(0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4),
        )  # fmt: skip
        self.batch_size = Histogram(
            "monitor_cluster_batch_size", "Jobs taken per fetch by a worker", registry=r,
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32),
        )  # fmt: skip
        self.redeliveries = Counter(
            "monitor_cluster_redeliveries", "Jobs or archive writes delivered again (a worker or archiver died)",
            registry=r,
        )  # fmt: skip
        self.consumer_lag = Gauge(
            "monitor_cluster_consumer_lag", "Messages not yet delivered to a consumer", ["consumer"], registry=r
        )
        self.lease_changes = Counter(
            "monitor_cluster_lease_changes", "Room leases taken, taken over, lost or released", ["change"], registry=r
        )
        self.archive_writes = Counter(
            "monitor_cluster_archive_writes", "Archive writes by the archiver", ["kind", "outcome"], registry=r
        )

    def serve(self, host: str, port: int | None) -> Any:
        """Serve this registry's /metrics on ``port`` (None: not served); the server (``shutdown()`` it)."""
        if port is None:
            return None
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server


LAG_EVERY_S = 5.0
"""How often a worker or the archiver asks the broker how far behind its consumer is."""


async def report_lag(pull: Any, metrics: ClusterMetrics, consumer: str, last_checked: float) -> float:
    """Set ``monitor_cluster_consumer_lag{consumer}`` (messages waiting, not yet delivered) at most
    every ``LAG_EVERY_S``; returns when it was last checked (monotonic)."""
    import time

    now = time.monotonic()
    if now - last_checked < LAG_EVERY_S:
        return last_checked
    try:
        info = await pull.consumer_info()
    except Exception:  # the broker is briefly away: the next round tries again
        return last_checked
    metrics.consumer_lag.labels(consumer=consumer).set(info.num_pending)
    return now
