"""Swarm benchmark: drone-deploy --swarm flying N simulated vehicles in real time on one shared UDP port.

    python scripts/bench_swarm.py                          # 4 and 8 vehicles, line formation, 30 s each
    python scripts/bench_swarm.py --counts 8 --formation grid --seconds 60 --realtime

Everything runs through the console scripts, as a user would: `drone-sim-vehicle --count N --link shared`
(sensor noise and latency as in bench_deploy.py) and `drone-deploy --swarm --sysids 1-N --duration S`.
The figures come from the flight's swarm.json: the control loop's compute per tick for the whole swarm
(wake-up to the last command sent: N telemetry copies, N C observations, one onnxruntime call, N safety
checks and sends) p50 / p99 / max and its deadline misses, the formation error of the vehicles riding their
slots (mean, p95), when every vehicle was first within 0.5 m of its slot, the smallest distance between any
two airborne vehicles and the separation guard's trips.

The simulated vehicles run on the same machine (2 cores here), four per drone-sim-vehicle process: their physics
(N x 500 Hz) competes with the loop for the CPU, which a real swarm's flight controllers do not. The load average
is printed with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
PER_PROCESS = 4
NOISE = ["--noise-pos", "0.01", "--noise-vel", "0.02", "--noise-att-deg", "0.3", "--noise-gyro", "0.01",
         "--latency-ms", "10", "--telemetry-latency-ms", "10"]


def _exe(name: str, module: str) -> list[str]:
    p = BIN / name
    return [str(p)] if p.exists() else [sys.executable, "-m", module]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fly(count: int, formation: str, seconds: float, realtime: bool, out: Path, policy: str | None) -> dict:
    port = free_udp_port()
    spacing = 1.5
    # at most PER_PROCESS vehicles per simulator process (each vehicle's physics runs at 500 Hz in Python: more
    # than four in one interpreter fall behind real time on this machine), side by side on one field, all
    # sending to the one ground-station port
    procs = []
    for first in range(0, count, PER_PROCESS):
        n = min(PER_PROCESS, count - first)
        procs.append(subprocess.Popen(_exe("drone-sim-vehicle", "firmware_bridge.sim") + [
            "--count", str(n), "--sysid", str(first + 1), "--home-offset", f"0,{first * spacing}", "--link", "shared",
            "--spacing", str(spacing), "--port", f"udpout:127.0.0.1:{port}", "--seed", str(first), *NOISE],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    logs = out / f"{formation}-{count}"
    # the homes stand `spacing` apart in a row: the fence must hold the row, the ceiling a 3-row grid
    fence = max(5.0, 0.5 * spacing * (count - 1) + 2.0)
    cmd = _exe("drone-deploy", "deploy.cli") + [
        "--swarm", "--port", f"udpin:127.0.0.1:{port}", "--sysids", f"1-{count}", "--formation", formation,
        "--duration", str(seconds), "--log", str(logs), "--quiet", "--fence", str(fence), "--max-alt", "5"]
    if realtime:
        cmd.append("--realtime")
    if policy:
        cmd += ["--policy", policy]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30 * count + 120)
    finally:
        for veh in procs:
            veh.terminate()
        for veh in procs:
            veh.wait(20)
    load = os.getloadavg()[0]
    dirs = sorted(logs.glob("swarm-*"))
    if res.returncode != 0 or not dirs:
        print(res.stdout[-3000:], res.stderr[-2000:])
        raise SystemExit(f"drone-deploy --swarm exited {res.returncode} with {count} vehicles")
    s = json.loads((dirs[-1] / "swarm.json").read_text())
    t, fe, sep = s["timing"], s["formation_error_m"] or {}, s["separation"]
    return {"vehicles": count, "formation": formation, "seconds": seconds, "realtime": realtime,
            "compute_p50_ms": t["compute_p50_ms"], "compute_p99_ms": t["compute_p99_ms"],
            "compute_max_ms": t["compute_max_ms"], "cpu_p99_ms": t["cpu_p99_ms"], "misses": t["misses"],
            "ticks": t["ticks"], "formation_error_mean_m": fe.get("mean"), "formation_error_p95_m": fe.get("p95"),
            "reached_s": s["formation_reached_s"], "min_distance_m": sep["min_distance_m"], "guard_trips": sep["trips"],
            "load_avg": round(load, 2), "log": str(dirs[-1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="4,8")
    ap.add_argument("--formation", default="line")
    ap.add_argument("--seconds", type=float, default=30.0, help="formation flight per run (after the takeoffs)")
    ap.add_argument("--realtime", action="store_true", help="drone-deploy --realtime (SCHED_FIFO)")
    ap.add_argument("--policy", help="ONNX policy (default: the shipped multi-task policy)")
    ap.add_argument("--out", default=None, help="where the flight logs go (default: a temporary directory)")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_swarm-"))
    rows = [fly(int(n), args.formation, args.seconds, args.realtime, out, args.policy) for n in args.counts.split(",")]
    print("| vehicles | formation | compute p50 / p99 / max ms | cpu p99 ms | misses / ticks | formation error "
          "mean / p95 m | reached after s | min distance m | guard trips | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['vehicles']} | {r['formation']} | {r['compute_p50_ms']:.2f} / {r['compute_p99_ms']:.2f} / "
              f"{r['compute_max_ms']:.2f} | {r['cpu_p99_ms']:.2f} | {r['misses']} / {r['ticks']} | "
              f"{r['formation_error_mean_m']} / {r['formation_error_p95_m']} | {r['reached_s']} | "
              f"{r['min_distance_m']} | {r['guard_trips']} | {r['load_avg']} |")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
