"""deploy/: the Dockerfile, compose file, Prometheus and Grafana provisioning, the systemd unit.

Docker is not run here; the files are parsed and checked against the code: every metric the
dashboard queries is one monitor/server/metrics.py exports (with the labels it has), every
MONITOR_* name is a setting, the drain fits in the stop timeouts, and the files refer to
each other (service names, ports, mounted paths, the datasource uid) consistently.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import Settings, TokenGrant
from monitor.server.metrics import ServerMetrics

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "monitor.json"
DRAIN_S = Settings.model_fields["drain_timeout_s"].default
SETTING_NAMES = {f"MONITOR_{name.upper()}" for name in Settings.model_fields} | {"MONITOR_CONFIG"}


def exported_metrics() -> dict[str, set[str]]:
    """Every series name GET /metrics can carry -> its label names (prometheus_client's naming)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
    }
    names: dict[str, set[str]] = {}
    for metric in vars(ServerMetrics()).values():
        if not hasattr(metric, "_labelnames"):
            continue
        labels = set(metric._labelnames)
        for suffix in suffixes[metric._type]:
            names[metric._name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_metric_the_dashboard_queries_is_exported_with_those_labels(dashboard: dict[str, Any]) -> None:
    exported = exported_metrics()
    assert "monitor_alerts_total" in exported and "monitor_alert_latency_seconds_bucket" in exported
    for expr in queries(dashboard):
        used = set(re.findall(r"\bmonitor_[a-z0-9_]+\b", expr))
        assert used, expr
        for name in used:
            assert name in exported, f"{expr!r}: {name} is not exported by monitor/server/metrics.py"
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            for label in (part.strip() for part in group.split(",")):
                assert any(label in exported[name] for name in used), f"{expr!r}: no metric has label {label!r}"


def test_dashboard_has_the_operations_panels(dashboard: dict[str, Any]) -> None:
    titles = " | ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in (
        "open rooms",
        "real-time factor",
        "alert latency",
        "alerts by category",
        "archive",
        "limit",
        "errors",
    ):
        assert topic in titles
    latency = " ".join(e for e in queries(dashboard) if "alert_latency" in e)
    assert "histogram_quantile(0.5," in latency and "histogram_quantile(0.95," in latency
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard(
    dashboard: dict[str, Any], compose: dict[str, Any]
) -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"][0]
    assert source["type"] == "prometheus"
    port = compose["services"]["prometheus"]["ports"][0].split(":")[-1]
    assert source["url"] == f"http://prometheus:{port}"
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    uids |= {t["datasource"]["uid"] for panel in dashboard["panels"] for t in panel["targets"]}
    assert uids == {source["uid"]}
    provider = yaml.safe_load((provisioning / "dashboards" / "monitor.yaml").read_text())["providers"][0]
    mounts = dict(
        volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"] if volume.startswith("./")
    )
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]


def test_prometheus_scrapes_the_monitor_service(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    port = compose["services"]["monitor"]["ports"][0].split(":")[-1]
    assert job["static_configs"][0]["targets"] == [f"monitor:{port}"]
    mounted = [v for v in compose["services"]["prometheus"]["volumes"] if v.startswith("./prometheus.yml:")]
    assert mounted and f"--config.file={mounted[0].split(':')[1]}" in compose["services"]["prometheus"]["command"]


def test_compose_builds_the_dockerfile_and_waits_for_the_drain(compose: dict[str, Any]) -> None:
    monitor = compose["services"]["monitor"]
    assert (DEPLOY / monitor["build"]["context"] / monitor["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert monitor["stop_signal"] == "SIGTERM"
    assert int(monitor["stop_grace_period"].rstrip("s")) > DRAIN_S
    for path in [
        v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", []) if v.startswith("./")
    ]:
        assert (DEPLOY / path).exists(), path
    assert (DEPLOY / monitor["env_file"]).with_suffix(".env.example").exists()


def test_dockerfile_builds_with_setup_sh_and_serves_with_a_healthcheck() -> None:
    lines = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    instructions = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert re.fullmatch(r"FROM python:3\.1[12]-slim", instructions[0])
    run = " ".join(i for i in instructions if i.startswith("RUN "))
    assert "apt-get install" in run and "ffmpeg" in run and "scripts/setup.sh" in run
    health = next(i for i in instructions if i.startswith("HEALTHCHECK "))
    assert "/healthz" in health
    cmd = json.loads(next(i for i in instructions if i.startswith("CMD "))[4:])
    assert cmd[-1] == "serve" and cmd[-2].endswith("monitor")
    assert "STOPSIGNAL SIGTERM" in instructions
    assert any(i.startswith("EXPOSE 8765") for i in instructions)
    assert any(i.startswith("USER ") and "root" not in i for i in instructions)


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values


def test_every_monitor_variable_is_a_setting_and_the_example_tokens_are_valid() -> None:
    example = env_file(DEPLOY / "monitor.env.example")
    unit = (DEPLOY / "monitor.service").read_text()
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    used = set(example) | set(re.findall(r"\bMONITOR_[A-Z0-9_]+", unit + dockerfile))
    assert used - SETTING_NAMES == set(), "the settings refuse unknown MONITOR_* variables"
    for grant in json.loads(example["MONITOR_TOKENS"]).values():
        TokenGrant.model_validate(grant)


def test_systemd_unit_serves_restarts_and_drains() -> None:
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    text = (DEPLOY / "monitor.service").read_text()
    unit.read_string(re.sub(r"^Environment=.*\n", "", text, flags=re.M))  # repeated keys are fine in systemd
    service = unit["Service"]
    program, command = service["ExecStart"].split()[-2:]
    assert program.endswith("/monitor") and command == "serve"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > DRAIN_S
    assert service["EnvironmentFile"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
