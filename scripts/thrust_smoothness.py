"""How hard the policy works its thrust while holding a target: in the training simulator, and flown by
drone-deploy on drone-sim-vehicle with and without sensor noise and link latency.

    python scripts/thrust_smoothness.py [--policy policies/pretrained/hover_ctbr.onnx]

Why: a policy that holds its position in the simulator by switching its collective thrust between extremes
flies, but on a real quadcopter that heats the motors and shakes the frame. The figures say where such
switching comes from: the policy itself (it would show in the simulator) or what deploy adds on top
(observation noise, command and telemetry latency beyond what training randomized).

Figures: the standard deviation of the thrust action and its mean absolute change per control step, over
the holding part of the flight (the last two thirds of the policy's ticks), lockstep (the vehicle advances
20 ms per setpoint, so the machine's load does not enter).
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
from deploy.config import default_policy_path  # noqa: E402
from deploy.flightlog import read_log  # noqa: E402
from firmware_bridge.sim.vehicle import SensorNoise, SimVehicle, VehicleConfig  # noqa: E402
from firmware_bridge.transport import PtyTransport  # noqa: E402
from policies.onnx_policy import OnnxPolicy  # noqa: E402

NOISE = SensorNoise(position=0.01, velocity=0.02, attitude=np.radians(0.3), gyro=0.01)  # the deploy tests' noise


def figures(thrust: np.ndarray) -> tuple[float, float]:
    """(per-drone std over time, averaged over drones; mean |change| per step) of the holding part."""
    held = thrust[len(thrust) // 3:]
    return float(np.mean(held.std(axis=0))), float(np.abs(np.diff(held, axis=0)).mean())


def in_simulator(policy: Path, dr: str) -> tuple[float, float]:
    """32 drones holding hover targets for 8 s in the training env (its own noise and latency under `dr`)."""
    p = OnnxPolicy(policy, action_mode="ctbr")
    env = drone_sim.make(tasks="hover", num_envs=4, agents_per_env=8, action_mode="ctbr", seed=3, dr=dr,
                         evaluation=True)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", type=Path, default=default_policy_path())
    args = ap.parse_args()
    rows = [("simulator, nominal drone (no noise, no latency)", in_simulator(args.policy, "nominal")),
            ("simulator, randomized drones (noise, 0-20 ms latency)", in_simulator(args.policy, "default")),
            ("drone-deploy, no noise, no latency", deployed(args.policy, SensorNoise(), 0.0)),
            ("drone-deploy, sensor noise", deployed(args.policy, NOISE, 0.0)),
            ("drone-deploy, sensor noise, 10 ms command + 10 ms telemetry latency", deployed(args.policy, NOISE, 0.01))]
    print(f"policy {args.policy}\n")
    print("| flight | thrust std | mean abs change per step |")
    print("|---|---:|---:|")
    for label, (std, delta) in rows:
        print(f"| {label} | {std:.3f} | {delta:.3f} |")


if __name__ == "__main__":
    main()
