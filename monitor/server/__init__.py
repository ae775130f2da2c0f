"""The streaming server (``monitor serve``): the only package that speaks HTTP and websockets
(besides the client SDK in monitor/client).

Modules, in the order a request meets them:

- :mod:`~monitor.server.transport` (uvicorn in this event loop, the TCP-level bounds) and
  :mod:`~monitor.server.web` (every route, FastAPI; handshakes decided before the upgrade);
- :mod:`~monitor.server.auth` (tokens, console cookies), :mod:`~monitor.server.protocol`
  (client frames, error codes), :mod:`~monitor.server.rooms` (open / resume / busy);
- :mod:`~monitor.server.connection` (one websocket), :mod:`~monitor.server.session` (one live
  room around its :class:`~monitor.stream.RoomPipeline`), :mod:`~monitor.server.scheduler`
  (fair worker pool), :mod:`~monitor.server.pull` (rooms the server pulls from a URL);
- :mod:`~monitor.server.hub` (alert routing and replay), :mod:`~monitor.server.evidence`
  (archive writes), :mod:`~monitor.server.webhooks` (signed callbacks);
- moderators: :mod:`~monitor.server.decisions`, :mod:`~monitor.server.claims`,
  :mod:`~monitor.server.console_routes`, :mod:`~monitor.server.reports`,
  :mod:`~monitor.server.timeline`, :mod:`~monitor.server.inspections`;
- :mod:`~monitor.server.app` composes them (start-up, sessions' lifecycle, drain) and
  :mod:`~monitor.server.resources` loads the models and the archive.

docs/PROTOCOL.md is the wire documentation; docs/SERVER.md how to run it.
"""
