"""Deploy benchmarks in real time: the three-target flight, and the control loop's timing at 50 and 100 Hz.

    python scripts/bench_deploy.py                       # both, figures to stdout and --out (JSON, logs, PNGs)
    python scripts/bench_deploy.py flight                # drone-sim-vehicle on a pty, real time, noise + latency
    python scripts/bench_deploy.py timing --seconds 60 --rates 50,100

Everything runs through the console scripts, as a user would: `drone-sim-vehicle --pty` (real time, not
lockstep: the loop is paced by the wall clock and its deadlines are real) and `drone-deploy` on that pty.

flight: take off, fly three targets in turn holding each within 0.3 m for 5 s, land (the acceptance flight of
        tests/test_deploy_e2e.py, here in real time). Figures: time to each target, the error while held,
        the tracking and one-step prediction errors from drone-replay, loop timing, and the replay PNGs.
timing: hover under the policy for --seconds at each rate. Figures: ticks, deadline misses, and the loop's
        own compute per tick (wake-up to command sent: telemetry copy, C observation, onnxruntime, safety
        checks, mapping, send) p50 / p99 / max, and the wake-up lateness. The shipped policy is trained at
        50 Hz; the 100 Hz run flies it at 100 Hz with --allow-rate-mismatch, which changes nothing in what
        a tick computes (the figure of interest), only how the policy's commands are spaced.

The machine's load average is printed with the figures: on a shared machine the wall-clock figures
(misses, lateness, p99) are the machine's as much as the program's. The simulated vehicle stands for
separate hardware, so it runs at SCHED_FIFO when allowed; drone-deploy only with --realtime (the
`realtime` column).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.flightlog import read_log  # noqa: E402
from deploy.replay import Replay, plot  # noqa: E402
from drone_sim.signals import exit_status_of  # noqa: E402

BIN = Path(sys.executable).parent
NOISE = ["--noise-pos", "0.01", "--noise-vel", "0.02", "--noise-att-deg", "0.3", "--noise-gyro", "0.01",
         "--latency-ms", "10", "--telemetry-latency-ms", "10"]
TARGETS = ["0.8,0,1.3", "0.8,0.8,1.3", "0,0.8,1.0"]


def _exe(name: str, module: str) -> list[str]:
    p = BIN / name
    return [str(p)] if p.exists() else [sys.executable, "-m", module]


def endpoint(kind: str, tmp: Path) -> tuple[list[str], str]:
    """(drone-sim-vehicle endpoint arguments, the port drone-deploy opens)."""
    if kind == "udp":
        import socket

        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return ["--udp", f"127.0.0.1:{port}"], f"udpin:127.0.0.1:{port}"
    tty = str(tmp / "ttySIM")
    return ["--pty", tty], tty


def start_vehicle(ep_args: list[str], extra: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(_exe("drone-sim-vehicle", "firmware_bridge.sim") + [*ep_args, *NOISE, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while True:
        line = proc.stdout.readline()
        if not line or line.startswith("serving on"):
            break
    if not line:
        raise RuntimeError("drone-sim-vehicle did not start")
    try:  # the simulated vehicle stands for separate hardware: keep other programs from starving it
        os.sched_setscheduler(proc.pid, os.SCHED_FIFO, os.sched_param(5))
    except (OSError, AttributeError) as exc:
        print(f"(drone-sim-vehicle at normal priority: {exc})", file=sys.stderr)
    return proc


def deploy(tty: str, log_dir: Path, args: list[str], timeout: float) -> tuple[int, str]:
    cmd = _exe("drone-deploy", "deploy.cli") + ["--port", tty, "--baud", "115200", "--log", str(log_dir), "--quiet",
                                                *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def _policy_timing(log) -> dict:
    import numpy as np

    pol = [s for s in log.steps if s["phase"] == "policy"]
    if not pol:
        return {"ticks": 0}
    c = np.array([s["timing"]["compute_ms"] for s in pol])
    u = np.array([s["timing"].get("cpu_ms", np.nan) for s in pol])
    late = np.array([s["timing"]["late_ms"] for s in pol])
    miss = sum(bool(s["timing"]["miss"]) for s in pol)
    vt = [s["vt"] for s in pol]
    return {"ticks": len(pol), "policy_s": round(vt[-1] - vt[0], 2) if pol else 0, "deadline_misses": miss,
            "compute_p50_ms": round(float(np.percentile(c, 50)), 3), "compute_p99_ms": round(float(np.percentile(c, 99)), 3),
            "compute_max_ms": round(float(c.max()), 3), "cpu_p50_ms": round(float(np.percentile(u, 50)), 3),
            "cpu_p99_ms": round(float(np.percentile(u, 99)), 3), "cpu_max_ms": round(float(u.max()), 3), "late_p99_ms": round(float(np.percentile(late, 99)), 3),
            "late_max_ms": round(float(late.max()), 3),
            "skipped": log.end["summary"]["timing"]["skipped"] if log.end else None}


def bench_flight(out: Path, kind: str = "pty", realtime: bool = False) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    ep_args, port = endpoint(kind, tmp)
    veh = start_vehicle(ep_args, [])
    t0 = time.monotonic()
    try:
        code, text = deploy(port, tmp / "logs", sum((["--target", t] for t in TARGETS), [])
                            + (["--realtime"] if realtime else []), timeout=300)
    finally:
        veh.send_signal(signal.SIGTERM)
        veh.wait(10)
    wall = time.monotonic() - t0
    log_path = sorted((tmp / "logs").glob("flight-*.jsonl"))[-1]
    out.mkdir(parents=True, exist_ok=True)
    name = "realtime-flight" + ("-udp" if kind == "udp" else "")
    kept = out / f"{name}.jsonl"
    shutil.copy(log_path, kept)
    log = read_log(kept)
    rp = Replay(log)
    s = rp.summary()
    pngs = plot(rp, out / name)
    res = {"exit_code": code, "reason": log.end["reason"] if log.end else None, "wall_s": round(wall, 1),
           "targets": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in t.items()
                        if k in ("position", "time_to_reach_s", "held_s", "window_max_error_m", "window_mean_error_m",
                                 "completed")} for t in log.end["summary"]["targets"]],
           "tracking_error_m": s["tracking_error_m"], "prediction_error": s["prediction_error"],
           "timing": _policy_timing(log), "pngs": [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)
                                                   for p in pngs],
           "log": str(kept.relative_to(ROOT)) if kept.is_relative_to(ROOT) else str(kept)}
    if code != 0:
        res["output"] = text[-2000:]
    shutil.rmtree(tmp, ignore_errors=True)
    return res


def bench_timing(rate: float, seconds: float, out: Path, realtime: bool = False, kind: str = "pty") -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    ep_args, tty = endpoint(kind, tmp)
    veh = start_vehicle(ep_args, ["--loop-hz", str(max(100.0, rate))])
    args = ["--duration", str(seconds), "--rate", str(rate), "--target", "0,0,1.0"]
    if abs(rate - 50.0) > 1e-9:
        args.append("--allow-rate-mismatch")
    if realtime:
        args.append("--realtime")
    try:
        code, text = deploy(tty, tmp / "logs", args, timeout=seconds + 120)
    finally:
        veh.send_signal(signal.SIGTERM)
        veh.wait(10)
    log = read_log(sorted((tmp / "logs").glob("flight-*.jsonl"))[-1])
    res = {"rate_hz": rate, "realtime": realtime, "endpoint": kind, "exit_code": code, "reason": log.end["reason"] if log.end else None,
           **_policy_timing(log)}
    out.mkdir(parents=True, exist_ok=True)
    plot(Replay(log), out / f"timing-{kind}-{int(rate)}hz{'-rt' if realtime else ''}")
    if code != 0:
        res["output"] = text[-2000:]
    shutil.rmtree(tmp, ignore_errors=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", nargs="?", default="all", choices=["all", "flight", "timing"])
    ap.add_argument("--seconds", type=float, default=60.0, help="timing: policy flight per rate (default 60)")
    ap.add_argument("--rates", default="50,100", help="timing: loop rates in Hz (default 50,100)")
    ap.add_argument("--realtime", choices=["off", "on", "both"], default="both",
                    help="timing: drone-deploy --realtime (SCHED_FIFO) off, on or both (default both)")
    ap.add_argument("--endpoint", choices=["pty", "udp"], default="pty", help="how drone-deploy reaches the vehicle")
    ap.add_argument("--out", default=str(ROOT / "deploy" / "figures"), help="JSON, logs and PNGs go here")
    args = ap.parse_args(argv)
    out = Path(args.out)
    res: dict = {"load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    if args.what in ("all", "flight"):
        print("bench_deploy: flight (drone-sim-vehicle and drone-deploy, real time) ...", file=sys.stderr, flush=True)
        res["flight"] = bench_flight(out, args.endpoint, args.realtime == "on")
        print(json.dumps(res["flight"], indent=1), flush=True)
    if args.what in ("all", "timing"):
        res["timing"] = []
        modes = {"off": [False], "on": [True], "both": [False, True]}[args.realtime]
        for rt in modes:
            for r in (float(x) for x in args.rates.split(",")):
                print(f"bench_deploy: timing at {r:g} Hz{', --realtime' if rt else ''} ...", file=sys.stderr, flush=True)
                t = bench_timing(r, args.seconds, out, rt, args.endpoint)
                res["timing"].append(t)
                print(json.dumps(t), flush=True)
    res["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bench-{args.what}-{args.endpoint}.json").write_text(json.dumps(res, indent=1))
    print(f"load average before/after: {res['load_average']} / {res['load_average_after']} on {res['cpus']} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status_of(main, "bench_deploy"))
