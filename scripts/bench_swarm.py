"""Swarm benchmarks: drone-deploy --swarm flying N simulated vehicles in real time on one shared UDP port, and the
cost of its control loop alone.

    python scripts/bench_swarm.py                          # 4 and 8 vehicles, line formation, 30 s each
    python scripts/bench_swarm.py --counts 8 --formation grid --seconds 60 --realtime
    python scripts/bench_swarm.py --loop --counts 4,8,16     # the loop's tick alone, on synthetic telemetry

--loop: SwarmFlight's tick (deploy/swarm/flight.py) run once every 20 ms, as in flight (--back-to-back: without
the pause), on N vehicles whose telemetry is set in their link state directly (no network, no simulator, nothing
else on the CPU), all under the policy: what one tick costs the laptop, split as the flights report it (compute:
wake-up to the last command sent; the whole tick also writes N log records and the operator snapshot). On this
project's virtual machine a tick after a 20 ms pause costs 2-3x one run back to back: its code and data have left
the caches meanwhile, which a small workload does not show.

Everything runs through the console scripts, as a user would: `drone-sim-vehicle --count N --link shared`
(sensor noise and latency as in bench_deploy.py) and `drone-deploy --swarm --sysids 1-N --duration S`.
The figures come from the flight's swarm.json: the control loop's compute per tick for the whole swarm
(wake-up to the last command sent: N telemetry copies, N C observations, one onnxruntime call, N safety
checks and sends) p50 / p99 / max and its deadline misses, the formation error of the vehicles riding their
slots (mean, p95), when every vehicle was first within 0.5 m of its slot, the smallest distance between any
two airborne vehicles and the separation guard's trips.

The simulated vehicles run on the same machine (2 cores here), four per drone-sim-vehicle process: their physics
(N x 500 Hz) competes with the loop for the CPU, which a real swarm's flight controllers do not. The load average
is printed with the figures, and so are the machine's busy and stolen shares of CPU time over the flight
(/proc/stat): on a virtual machine the hypervisor may take the CPUs away ("steal"), which no priority inside the
machine prevents, and a tick that lost its CPU that way shows a compute time far above its cpu time.
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

from drone_sim.signals import exit_status_of

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


def cpu_jiffies() -> list[int] | None:
    """The machine's CPU time counters (/proc/stat: user, nice, system, idle, iowait, irq, softirq, steal),
    None where there is no /proc."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None


def cpu_share(before: list[int] | None, after: list[int] | None) -> tuple[float | None, float | None]:
    """Busy and stolen percentages of the machine's CPU time between two readings. Steal is time the hypervisor
    gave this virtual machine's CPUs to others: a thread descheduled that way waits without the guest seeing
    why, at any priority."""
    if before is None or after is None:
        return None, None
    d = [a - b for a, b in zip(after, before)]
    total = sum(d)
    if total <= 0:
        return None, None
    busy = d[0] + d[1] + d[2] + d[5] + d[6]
    return round(100.0 * busy / total, 1), round(100.0 * d[7] / total, 1)


def _on_cpus(cpus: set[int] | None):
    """preexec_fn that pins the child process to `cpus` (as `taskset` does); None: no pinning."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def fly(count: int, formation: str, seconds: float, realtime: bool, out: Path, policy: str | None,
        pin: bool = False) -> dict:
    port = free_udp_port()
    spacing = 1.5
    # at most PER_PROCESS vehicles per simulator process (each vehicle's physics runs at 500 Hz in Python: more
    # than four in one interpreter fall behind real time on this machine), side by side on one field, all
    # sending to the one ground-station port
    # --pin: the simulators on the last CPU, drone-deploy on the others (taskset's effect, for a user)
    cpus = sorted(os.sched_getaffinity(0)) if pin else []
    sim_cpus, loop_cpus = ({cpus[-1]}, set(cpus[:-1])) if len(cpus) > 1 else (None, None)
    procs = []
    for first in range(0, count, PER_PROCESS):
        n = min(PER_PROCESS, count - first)
        procs.append(subprocess.Popen(_exe("drone-sim-vehicle", "firmware_bridge.sim") + [
            "--count", str(n), "--sysid", str(first + 1), "--home-offset", f"0,{first * spacing}", "--link", "shared",
            "--spacing", str(spacing), "--port", f"udpout:127.0.0.1:{port}", "--seed", str(first), *NOISE],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_on_cpus(sim_cpus)))
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
    jiffies0 = cpu_jiffies()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30 * count + 120,
                             preexec_fn=_on_cpus(loop_cpus))
    finally:
        for veh in procs:
            veh.terminate()
        for veh in procs:
            veh.wait(20)
    load = os.getloadavg()[0]
    busy, steal = cpu_share(jiffies0, cpu_jiffies())
    dirs = sorted(logs.glob("swarm-*"))
    if res.returncode not in (0, 1) or not dirs:   # 1: a safety trigger ended it, which is a result to report
        print(res.stdout[-3000:], res.stderr[-2000:])
        raise SystemExit(f"drone-deploy --swarm exited {res.returncode} with {count} vehicles")
    s = json.loads((dirs[-1] / "swarm.json").read_text())
    t, fe, sep = s["timing"], s["formation_error_m"] or {}, s["separation"]
    return {"vehicles": count, "formation": formation, "seconds": seconds, "realtime": realtime, "pinned": bool(sim_cpus),
            "exit": res.returncode,
            "triggers": [f"{t['vehicle']}:{t['kind']}" for t in s["triggers"]],
            "compute_p50_ms": t["compute_p50_ms"], "compute_p99_ms": t["compute_p99_ms"],
            "compute_max_ms": t["compute_max_ms"], "cpu_p99_ms": t["cpu_p99_ms"], "misses": t["misses"],
            "ticks": t["ticks"], "formation_error_mean_m": fe.get("mean"), "formation_error_p95_m": fe.get("p95"),
            "reached_s": s["formation_reached_s"], "min_distance_m": sep["min_distance_m"], "guard_trips": sep["trips"],
            "load_avg": round(load, 2), "busy_pct": busy, "steal_pct": steal, "log": str(dirs[-1])}


def synthetic_swarm(count: int, policy: str | None, logs: Path):
    """A SwarmFlight of `count` vehicles in formation under the policy, on links that are never opened: each
    vehicle's telemetry is set in its link state directly (the caller refreshes its time stamps per tick),
    its commands are counted as dropped. For --loop, and for tests of the tick itself."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from deploy.command_map import CommandMapper
    from deploy.config import DeployConfig, default_policy_path
    from deploy.flight import load_policy
    from deploy.flightlog import FlightLog
    from deploy.safety import SafetyMonitor
    from deploy.swarm.config import SwarmConfig
    from deploy.swarm.flight import SwarmFlight
    from deploy.swarm.formation import Formation
    from deploy.swarm.member import Member
    from deploy.swarm.operator import FormationTargeting
    from deploy.targets import Fence
    from deploy.timing import TimingStats
    from firmware_bridge import MavLink
    from firmware_bridge.modes import Firmware

    path = policy or str(default_policy_path(swarm=True))
    cfg = SwarmConfig(DeployConfig(task="swarm", policy=path), ports=["synthetic"])
    f = SwarmFlight(cfg, say=lambda s: None)
    f.policy = load_policy(path)
    f.formation = Formation.shape("line", count, 1.2, (0.6 * (count - 1), 0.0, 1.5))
    f.fence = Fence.around((0.6 * (count - 1), 0.0, 0.0), cfg.deploy.limits)
    f.targeting = FormationTargeting(f.formation, f.fence)
    f.rate = 50.0
    f.timing = TimingStats(1.0 / f.rate)

    class NoWait:
        stalled_s, lockstep = 0.0, False

        def wait(self, stop):
            now = time.monotonic()
            return now, now, now + 1.0 / f.rate, 0

        def reset(self):
            pass

    f.clock = NoWait()
    for k in range(count):
        link = MavLink("udpout:127.0.0.1:9", target_system=k + 1)   # never opened: sends are counted as dropped
        link.info.firmware, link.info.system_id, link.info.component_id = Firmware.ARDUPILOT, k + 1, 1
        st = link._state
        st.position_ned = np.array([0.0, 1.2 * k, -1.5])
        st.stale, st.armed, st.mode, st.battery_voltage, st.battery_remaining = False, True, "GUIDED", 16.0, 0.9
        m = Member(k, link, FlightLog(logs / f"vehicle-{k + 1}.jsonl"))
        m.sysid, m.phase, m.slot, m.attached = k + 1, "policy", k, True
        m.leash = np.array([1.2 * k, 0.0, 1.5])
        m.safety = SafetyMonitor(cfg.deploy.limits, f.fence, 4)
        m.mapper = CommandMapper(link.commands, "ctbr", f.policy.max_rate)
        f.members.append(m)
    f.form_t0 = time.monotonic()
    return f


def fresh_telemetry(f) -> None:
    """Marks every synthetic vehicle's telemetry as just received."""
    now = time.monotonic()
    for m in f.members:
        s = m.link._state
        s.t_attitude = s.t_position = s.t_last_message = s.t_heartbeat = now


def loop_cost(count: int, ticks: int, policy: str | None, paced: bool = True) -> dict:
    """The tick's cost on synthetic telemetry (see --loop). paced: one tick every 20 ms, as in flight; else back to
    back, which on this project's virtual machine costs a third to a half as much per tick (warm caches)."""
    import numpy as np

    f = synthetic_swarm(count, policy, Path(tempfile.mkdtemp(prefix="bench_swarm_loop-")))
    from deploy.timing import TimingStats

    whole = []
    for i in range(ticks + 50):
        if paced:
            time.sleep(max(0.0, 1.0 / f.rate - time.monotonic() % (1.0 / f.rate)))
        fresh_telemetry(f)
        t0 = time.perf_counter()
        f._tick()
        if i >= 50:
            whole.append(time.perf_counter() - t0)
        if i == 49:
            f.timing = TimingStats(1.0 / f.rate)
    for m in f.members:
        m.log.close()
    sent = sum(m.link.stats.send_dropped for m in f.members)   # the links are never opened: every send counted here
    w = np.array(whole) * 1e3
    t = f.timing.summary()
    return {"vehicles": count, "ticks": ticks, "compute_p50_ms": t["compute_p50_ms"], "compute_p99_ms": t["compute_p99_ms"],
            "compute_max_ms": t["compute_max_ms"], "tick_p50_ms": round(float(np.percentile(w, 50)), 3),
            "tick_p99_ms": round(float(np.percentile(w, 99)), 3), "load_avg": round(os.getloadavg()[0], 2),
            "commands_per_tick": round(sent / (ticks + 50), 2), "paced": paced}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="4,8")
    ap.add_argument("--formation", default="line")
    ap.add_argument("--seconds", type=float, default=30.0, help="formation flight per run (after the takeoffs)")
    ap.add_argument("--realtime", action="store_true", help="drone-deploy --realtime (SCHED_FIFO)")
    ap.add_argument("--pin", action="store_true",
                    help="the simulators on the last CPU, drone-deploy on the others (as `taskset` would)")
    ap.add_argument("--policy", help="ONNX policy (default: the shipped swarm_ctbr.onnx, as drone-deploy --swarm)")
    ap.add_argument("--out", default=None, help="where the flight logs go (default: a temporary directory)")
    ap.add_argument("--loop", action="store_true", help="the control loop's tick alone, on synthetic telemetry")
    ap.add_argument("--ticks", type=int, default=3000, help="--loop: ticks per count")
    ap.add_argument("--back-to-back", action="store_true",
                    help="--loop: ticks back to back instead of one every 20 ms (warm caches: the cost's floor)")
    args = ap.parse_args()
    if args.loop:
        rows = [loop_cost(int(n), args.ticks, args.policy, not args.back_to_back) for n in args.counts.split(",")]
        print("| vehicles | ticks | paced | commands per tick | compute p50 / p99 / max ms | whole tick (with logs) p50 / "
              "p99 ms | load avg |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['vehicles']} | {r['ticks']} | {'50 Hz' if r['paced'] else 'no'} | {r['commands_per_tick']} | "
                  f"{r['compute_p50_ms']:.2f} / "
                  f"{r['compute_p99_ms']:.2f} / {r['compute_max_ms']:.2f} | {r['tick_p50_ms']:.2f} / "
                  f"{r['tick_p99_ms']:.2f} | {r['load_avg']} |")
        return
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_swarm-"))
    rows = [fly(int(n), args.formation, args.seconds, args.realtime, out, args.policy, args.pin)
            for n in args.counts.split(",")]
    print("| vehicles | formation | compute p50 / p99 / max ms | cpu p99 ms | misses / ticks | formation error "
          "mean / p95 m | reached after s | min distance m | guard trips | exit, triggers | load avg | CPU busy / stolen % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['vehicles']} | {r['formation']} | {r['compute_p50_ms']:.2f} / {r['compute_p99_ms']:.2f} / "
              f"{r['compute_max_ms']:.2f} | {r['cpu_p99_ms']:.2f} | {r['misses']} / {r['ticks']} | "
              f"{r['formation_error_mean_m']} / {r['formation_error_p95_m']} | {r['reached_s']} | "
              f"{r['min_distance_m']} | {r['guard_trips']} | {r['exit']} {' '.join(r['triggers'][:3]) or '-'} | "
              f"{r['load_avg']} | {r['busy_pct']} / {r['steal_pct']} |")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(exit_status_of(main, "bench_swarm"))
