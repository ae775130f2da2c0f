"""The streaming server (``monitor serve``): the only package that knows websockets.

Modules, in the order a frame meets them: :mod:`~monitor.server.app` (HTTP routes, auth,
room registry, drain), :mod:`~monitor.server.auth` (tokens), :mod:`~monitor.server.protocol`
(client frames, error codes), :mod:`~monitor.server.connection` (one socket),
:mod:`~monitor.server.session` (one room's pipeline), :mod:`~monitor.server.scheduler`
(fair worker pool), :mod:`~monitor.server.hub` (alert routing and replay),
:mod:`~monitor.server.evidence` (archive writes), :mod:`~monitor.server.metrics`.
docs/PROTOCOL.md is the wire documentation; docs/SERVER.md how to run it.
"""
