"""How hard the policy works its thrust while holding a target: in the training simulator, and flown by
drone-deploy on drone-sim-vehicle with and without sensor noise and link latency.

    python scripts/thrust_smoothness.py [--policy policies/pretrained/hover_ctbr.onnx]
    python scripts/thrust_smoothness.py --swarm [--policy policies/pretrained/swarm_ctbr.onnx]

Why: a policy that holds its position in the simulator by switching its collective thrust between extremes
flies, but on a real quadcopter that heats the motors and shakes the frame. The figures say where such
switching comes from: the policy itself (it would show in the simulator) or what deploy adds on top
(observation noise, command and telemetry latency beyond what training randomized).

Figures: the standard deviation of the thrust action and its mean absolute change per control step, over
the holding part of the flight (the last two thirds of the policy's ticks), lockstep (the vehicle advances
20 ms per setpoint, so the machine's load does not enter).

--swarm holds formation slots instead of a hover target, for a policy that flies only the swarm task (which
drone-deploy refuses to fly a hover target with): 32 drones in the simulator, and drone-deploy --swarm flying
4 drone-sim-vehicle drones in a line for 15 s. A swarm flight paces itself by the wall clock (it has no
lockstep), so its figures are taken on whatever else the machine is doing; run it on an idle machine.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import drone_sim  # noqa: E402
from drone_sim.signals import exit_status_of  # noqa: E402
from deploy.config import default_policy_path  # noqa: E402
from deploy.flightlog import read_log  # noqa: E402
from firmware_bridge.sim.vehicle import SensorNoise, SimVehicle, VehicleConfig  # noqa: E402
from firmware_bridge.transport import PtyTransport  # noqa: E402
from policies.onnx_policy import OnnxPolicy  # noqa: E402

from bench_swarm import free_udp_port  # noqa: E402  (scripts/, beside this one)

NOISE = SensorNoise(position=0.01, velocity=0.02, attitude=np.radians(0.3), gyro=0.01)  # the deploy tests' noise


def figures(thrust: np.ndarray) -> tuple[float, float]:
    """(per-drone std over time, averaged over drones; mean |change| per step) of the holding part."""
    held = thrust[len(thrust) // 3:]
    return float(np.mean(held.std(axis=0))), float(np.abs(np.diff(held, axis=0)).mean())


def in_simulator(policy: Path, dr: str, task: str = "hover") -> tuple[float, float]:
    """32 drones holding hover targets (or formation slots, 4 drones per formation) for 8 s in the training env
    (its own noise and latency under `dr`)."""
    p = OnnxPolicy(policy, action_mode="ctbr")
    per_env = 4 if task == "swarm" else 8
    env = drone_sim.make(tasks=task, num_envs=32 // per_env, agents_per_env=per_env, action_mode="ctbr", seed=3,
                         dr=dr, evaluation=True)
    obs, _ = env.reset(3)
    thrust = []
    for _ in range(400):
        a = p(obs)
        thrust.append(a[:, 0].copy())
        obs, *_ = env.step(a)
    return figures(np.array(thrust))


def deployed(policy: Path, noise: SensorNoise, latency_s: float) -> tuple[float, float]:
    """drone-deploy flying one target for 8 s on a lockstep drone-sim-vehicle (a pty), then landing."""
    transport = PtyTransport(None)
    vehicle = SimVehicle(transport, VehicleConfig(lockstep=True, ekf_init_s=0.2, noise=noise,
                                                  command_latency_s=latency_s, telemetry_latency_s=latency_s))
    vehicle.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            exe = Path(sys.executable).parent / "drone-deploy"
            cmd = [str(exe), "--port", transport.path, "--baud", "115200", "--lockstep", "--quiet", "--log", tmp,
                   "--policy", str(policy), "--target", "0.5,0,1.2", "--hold", "8", "--then", "land"]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            logs = sorted(Path(tmp).glob("*.jsonl"))
            if res.returncode != 0 or not logs:
                raise SystemExit(f"drone-deploy exit {res.returncode}:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
            steps = [s for s in read_log(logs[-1]).steps if s["phase"] == "policy" and s.get("action")]
            return figures(np.array([s["action"][0] for s in steps]))
    finally:
        vehicle.close()


def deployed_swarm(policy: Path, noise: SensorNoise, latency_s: float, seconds: float = 15.0) -> tuple[float, float]:
    """drone-deploy --swarm flying 4 drone-sim-vehicle drones (one shared UDP link) in a line for `seconds` once
    the formation is started, then landing them; the figures over all four vehicles' policy ticks."""
    port = free_udp_port()
    bin_dir = Path(sys.executable).parent
    sim = [str(bin_dir / "drone-sim-vehicle"), "--count", "4", "--link", "shared", "--udp", f"127.0.0.1:{port}",
           "--noise-pos", str(noise.position), "--noise-vel", str(noise.velocity),
           "--noise-att-deg", str(np.degrees(noise.attitude)), "--noise-gyro", str(noise.gyro),
           "--latency-ms", str(1000 * latency_s), "--telemetry-latency-ms", str(1000 * latency_s)]
    vehicles = subprocess.Popen(sim, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [str(bin_dir / "drone-deploy"), "--swarm", "--port", f"udpin:127.0.0.1:{port}", "--sysids", "1-4",
                   "--formation", "line", "--duration", str(seconds), "--quiet", "--log", tmp, "--policy", str(policy)]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            logs = sorted(Path(tmp).glob("swarm-*/vehicle-*.jsonl"))
            if res.returncode != 0 or len(logs) != 4:
                raise SystemExit(f"drone-deploy --swarm exit {res.returncode}:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
            per_vehicle = [[s["action"][0] for s in read_log(log).steps if s["phase"] == "policy" and s.get("action")]
                           for log in logs]
            n = min(len(t) for t in per_vehicle)   # vehicles' tick counts differ by a tick or two
            return figures(np.array([t[:n] for t in per_vehicle]).T)
    finally:
        vehicles.terminate()
        vehicles.wait(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", type=Path, default=None,
                    help="ONNX policy (default: what drone-deploy flies, or with --swarm what drone-deploy --swarm flies)")
    ap.add_argument("--swarm", action="store_true", help="hold formation slots rather than a hover target")
    args = ap.parse_args()
    if args.swarm:
        args.policy = args.policy or default_policy_path(swarm=True)
        flights = [("simulator, nominal drones (no noise, no latency), swarm",
                    lambda: in_simulator(args.policy, "nominal", "swarm")),
                   ("simulator, randomized drones (noise, 0-20 ms latency), swarm",
                    lambda: in_simulator(args.policy, "default", "swarm")),
                   ("drone-deploy --swarm, 4 vehicles, no noise, no latency",
                    lambda: deployed_swarm(args.policy, SensorNoise(), 0.0)),
                   ("drone-deploy --swarm, 4 vehicles, sensor noise, 10 ms command + 10 ms telemetry latency",
                    lambda: deployed_swarm(args.policy, NOISE, 0.01))]
    else:
        args.policy = args.policy or default_policy_path()
        flights = [("simulator, nominal drone (no noise, no latency)", lambda: in_simulator(args.policy, "nominal")),
                   ("simulator, randomized drones (noise, 0-20 ms latency)",
                    lambda: in_simulator(args.policy, "default")),
                   ("drone-deploy, no noise, no latency", lambda: deployed(args.policy, SensorNoise(), 0.0)),
                   ("drone-deploy, sensor noise", lambda: deployed(args.policy, NOISE, 0.0)),
                   ("drone-deploy, sensor noise, 10 ms command + 10 ms telemetry latency",
                    lambda: deployed(args.policy, NOISE, 0.01))]
    rows = []
    for label, fly in flights:     # minutes in all: say which flight is under way
        print(f"thrust_smoothness: {label} ...", file=sys.stderr, flush=True)
        rows.append((label, fly()))
    print(f"policy {args.policy}\n")
    print("| flight | thrust std | mean abs change per step |")
    print("|---|---:|---:|")
    for label, (std, delta) in rows:
        print(f"| {label} | {std:.3f} | {delta:.3f} |")


if __name__ == "__main__":
    sys.exit(exit_status_of(main, "thrust_smoothness"))
