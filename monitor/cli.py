"""The ``monitor`` command line (PROTOCOL.md, "Command line").

Each subsystem registers its own sub-commands through a ``register(subparsers)``
function; this module only assembles them and maps errors to exit statuses.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from monitor import scan
from monitor.archive import commands as archive_commands
from monitor.client import command as push_command
from monitor.cluster import commands as cluster_commands
from monitor.errors import MonitorError
from monitor.server import commands as server_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monitor", description="Live-stream speech compliance monitor")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", required=True)
    scan.register(subparsers)
    push_command.register(subparsers)
    server_commands.register(subparsers)
    archive_commands.register(subparsers)
    cluster_commands.register(subparsers)
    _accept_verbose_anywhere(parser)
    return parser


def _accept_verbose_anywhere(parser: argparse.ArgumentParser) -> None:
    """``-v`` works after a sub-command too (``monitor serve -v``), at any depth."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if not any("-v" in a.option_strings for a in sub._actions):
                    sub.add_argument(
                        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress to stderr"
                    )
                _accept_verbose_anywhere(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        status: int = args.run(args)
    except MonitorError as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
