"""Cluster mode on NATS JetStream (``MONITOR_BROKER_URL``): gateways, workers, one archiver.

::

    anchors / ingest servers ──ws──> monitor serve (gateway) ×N ──┐      ┌──> monitor worker ×M
    moderators ─────────────ws/http─> (any gateway)               ├─NATS─┤     (transcription)
                                                                  │      └──> monitor archiver ×1
                                                                  │           (the evidence archive)

- ``gateway``: sockets and what must stay with a room (VAD, detection, dedup, outbox), leases,
  checkpoints, takeover;
- ``remote``: the worker and the archiver behind the transcriber and evidence interfaces;
- ``worker``, ``archiver``: the other two processes; ``fanout``: events to every gateway;
- ``broker``: streams, buckets, framing; ``jobs``, ``checkpoint``: what travels; ``local``: a
  loopback ``nats-server`` for tests and benchmarks.
"""
