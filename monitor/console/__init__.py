"""The moderator console: a static web page (``static/``) served by ``monitor serve`` at ``/console``.

Plain HTML, CSS and JavaScript, no build step and nothing loaded from the network;
the routes that serve it and the JSON it reads are in
:mod:`monitor.server.console_routes`. See docs/CONSOLE.md.
"""
