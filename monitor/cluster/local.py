"""A NATS JetStream server on loopback for tests, benchmarks and ``monitor demo --cluster``.

Runs the pinned binary that ``scripts/setup.sh`` installs at ``.venv/bin/nats-server``
(``requirements/broker.txt``) on a free port with a store directory of its own::

    with LocalBroker(tmp_path / "nats") as broker:
        settings = load_settings(broker_url=broker.url)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from monitor.cluster.broker import MAX_PAYLOAD_BYTES, BrokerError

START_TIMEOUT_S = 10.0
"""How long the server may take to write its ports file."""


def nats_server_binary() -> Path:
    """``.venv/bin/nats-server`` beside this interpreter (or on PATH); BrokerError if missing."""
    beside = Path(sys.executable).with_name("nats-server")
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise BrokerError("nats-server not found: run scripts/setup.sh (installs requirements/broker.txt)")


class LocalBroker:
    """``nats-server -js`` on 127.0.0.1 and a free port; :attr:`url` once started."""

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = Path(store_dir)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> LocalBroker:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        ports_dir = self.store_dir / "ports"
        ports_dir.mkdir(exist_ok=True)
        config = self.store_dir / "nats.conf"
        config.write_text(f"max_payload: {MAX_PAYLOAD_BYTES}\n", encoding="utf-8")
        log = open(self.store_dir / "nats.log", "ab")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen(
            [str(nats_server_binary()), "-c", str(config), "-js", "-a", "127.0.0.1", "-p", "-1",
             "--store_dir", str(self.store_dir / "js"), "--ports_file_dir", str(ports_dir)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        ports_file = ports_dir / f"nats-server_{self.process.pid}.ports"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"nats-server exited with {self.process.returncode}; see {self.store_dir}/nats.log")
            if ports_file.exists() and ports_file.stat().st_size:
                import json

                ports = json.loads(ports_file.read_text())
                self.url = ports["nats"][0]
                return self
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"nats-server did not report its port within {START_TIMEOUT_S:g} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
