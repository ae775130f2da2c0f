"""``monitor serve`` and ``monitor demo`` (registered by :func:`register`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from monitor.config import Settings, load_settings
from monitor.errors import MonitorError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``serve`` and ``demo`` sub-commands to the ``monitor`` parser."""
    serve_parser = subparsers.add_parser(
        "serve",
        help="run the streaming server (/v1/ingest, /v1/alerts, /healthz, /metrics)",
        description="Streaming compliance server; configuration from MONITOR_* variables (docs/SERVER.md).",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve_parser.add_argument("--host", help="address to listen on (default: MONITOR_HOST or 127.0.0.1)")
    serve_parser.add_argument(
        "--port", type=int, help="TCP port, 0 for any free one (default: MONITOR_PORT or 8765)"
    )
    serve_parser.set_defaults(run=run_serve)

    from monitor.server import demo

    demo.register(subparsers)


def settings_help() -> str:
    """Every setting: its variable, its default on this machine (units are in the names) and meaning."""
    from monitor.config import Settings

    lines = ["settings (environment variables, or keys of the MONITOR_CONFIG JSON/YAML file):"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "{}" if isinstance(default, dict) and not default else str(default)
        lines.append(f"  MONITOR_{name.upper():<36} default {shown}")
        if field.description:
            lines.append(f"      {field.description}")
    lines.append("  MONITOR_CONFIG                               path of a JSON/YAML file of settings")
    lines.append("Unknown MONITOR_* variables, config keys and token keys are refused (exit 2).")
    return "\n".join(lines)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT, then drain. Prints ``listening on ws://H:P`` and ``ready`` on stdout."""
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = load_settings(**overrides)
    if not settings.tokens:
        print(
            "monitor serve: warning: MONITOR_TOKENS is empty, every websocket will get 401", file=sys.stderr
        )
    return asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> int:
    from monitor.server.app import MonitorServer

    server = MonitorServer(settings)
    await server.start()
    print(f"monitor serve: listening on ws://{settings.host}:{server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loaded = asyncio.create_task(server.loaded.wait())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({loaded, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if server.load_error is not None:
        await server.drain()
        error = server.load_error
        print(f"monitor serve: {error}", file=sys.stderr)
        return 2 if isinstance(error, MonitorError) else 1
    if server.resources is not None:
        print("monitor serve: ready", flush=True)
    await stopping
    print("monitor serve: draining", flush=True)
    await server.drain()
    print("monitor serve: stopped", flush=True)
    return 0
