"""A worker's or the archiver's /metrics: served on its own port, and shut down cleanly."""

from __future__ import annotations

import socket
import urllib.request

from monitor.cluster.metrics import ClusterMetrics


def test_cluster_metrics_are_served_and_the_server_shuts_down() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics = ClusterMetrics(role="worker")
    metrics.consumer_lag.labels(consumer="workers").set(7)
    server = metrics.serve("127.0.0.1", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        assert 'monitor_cluster_consumer_lag{consumer="workers"} 7.0' in text
    finally:
        server.shutdown()
    assert metrics.serve("127.0.0.1", None) is None
