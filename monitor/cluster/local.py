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


GATEWAY_READY_TIMEOUT_S = 120.0
"""How long a gateway or worker may take to load its models and answer /healthz."""


class LocalCluster:
    """A whole cluster on this machine, each process a real ``monitor`` subprocess: the broker,
    one archiver, ``workers`` workers and ``gateways`` gateways (for tests, benchmarks, demos).

    ``env`` holds the settings every process shares (``MONITOR_TOKENS``...); ``kill(name)``
    sends SIGKILL (the fault runs) and ``restart(name)`` starts the same process again.
    """

    def __init__(self, root: Path, *, gateways: int = 2, workers: int = 2, env: dict[str, str] | None = None) -> None:
        self.root = Path(root)
        self.broker = LocalBroker(self.root / "nats")
        self.env = dict(env or {})
        self.specs: dict[str, list[str]] = {"archiver": ["archiver"]}
        self.specs.update({f"worker{i}": ["worker"] for i in range(1, workers + 1)})
        self.specs.update({f"gateway{i}": ["serve"] for i in range(1, gateways + 1)})
        self.ports: dict[str, int] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def data_dir(self) -> Path:
        return self.root / "archive"

    def gateway_urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{port}" for name, port in sorted(self.ports.items()) if name.startswith("gateway")]

    def start(self) -> LocalCluster:
        self.broker.start()
        for name in self.specs:
            self._spawn(name)
        for name in self.specs:
            self.wait_ready(name)
        return self

    def _spawn(self, name: str) -> None:
        import socket

        env = {**os.environ, **self.env, "MONITOR_BROKER_URL": self.broker.url,
               "MONITOR_DATA_DIR": str(self.data_dir)}  # fmt: skip
        if name.startswith("gateway"):
            if name not in self.ports:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", 0))
                    self.ports[name] = probe.getsockname()[1]
            env.update(MONITOR_PORT=str(self.ports[name]), MONITOR_GATEWAY_ID=name)
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 (closed below; the child keeps its copy)
        monitor = Path(sys.executable).with_name("monitor")
        self.processes[name] = subprocess.Popen(
            [str(monitor), "-v", *self.specs[name]], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()

    def wait_ready(self, name: str) -> None:
        """Until a gateway answers /healthz 200, or a worker/archiver logs that it is taking work."""
        import urllib.request

        deadline = time.monotonic() + GATEWAY_READY_TIMEOUT_S
        marker = {"archiver": "archiver writing", "worker": "taking jobs"}
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                raise BrokerError(f"{name} exited with {process.returncode}; see {self.root}/{name}.log")
            if name.startswith("gateway"):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[name]}/healthz", timeout=1) as answer:
                        if answer.status == 200:
                            return
                except OSError:
                    pass
            else:
                text = (self.root / f"{name}.log").read_text(errors="replace")
                if marker["archiver" if name == "archiver" else "worker"] in text.split("-- restart --")[-1]:
                    return
            time.sleep(0.1)
        raise BrokerError(f"{name} not ready within {GATEWAY_READY_TIMEOUT_S:g} s; see {self.root}/{name}.log")

    def kill(self, name: str) -> None:
        """SIGKILL ``name`` (no drain, no goodbye: a crashed machine)."""
        process = self.processes[name]
        process.kill()
        process.wait(10)

    def restart(self, name: str, *, wait: bool = True) -> None:
        with open(self.root / f"{name}.log", "ab") as log:
            log.write(b"\n-- restart --\n")
        self._spawn(name)
        if wait:
            self.wait_ready(name)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.broker.stop()

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
