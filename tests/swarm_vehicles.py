"""A simulated swarm in its own process for the swarm deploy tests, driven by lines on stdin.

    python tests/swarm_vehicles.py ENDPOINT COUNT shared|separate [NAME=VALUE ...]

It prints one JSON line with the endpoints a ground station opens, then answers each command with a JSON
line: `state` (each vehicle's armed, landed, mode, position), `garbage N` (N random bytes on the shared link,
in the vehicles' stream towards the ground station), `unplug K` / `replug K` (vehicle K's own pty, counted
from 1: its radio's USB cable), `param K NAME VALUE` (set a parameter on vehicle K), `quit`.
Why a separate process: the vehicles' physics runs at 500 Hz each, and sharing the interpreter lock with the
laptop's control loop would make the test measure the test harness.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from firmware_bridge.sim.swarm import SimSwarm, describe
from firmware_bridge.sim.vehicle import VehicleConfig


def main() -> None:
    endpoint, count, link = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    params = dict((kv.split("=")[0], float(kv.split("=")[1])) for kv in sys.argv[4:])
    swarm = SimSwarm(endpoint, count, VehicleConfig(ekf_init_s=0.2, params=params), shared=link == "shared",
                     spacing=2.0)
    swarm.start()
    rng = np.random.default_rng(0)
    print(json.dumps({"endpoints": [describe(t) for t in swarm.endpoints]}), flush=True)
    try:
        for line in sys.stdin:
            cmd = line.split()
            if not cmd:
                continue
            if cmd[0] == "quit":
                break
            if cmd[0] == "state":
                out = [{"sysid": v.sysid, "armed": bool(v.ap.armed), "landed": bool(v.ap.landed),
                        "mode": v.ap.mode,
                        "pos": [round(float(x), 3) for x in v.ap.state()[0:3]]} for v in swarm.vehicles]
            elif cmd[0] == "garbage":
                data = rng.integers(0, 256, int(cmd[1]), dtype=np.uint8).tobytes()
                out = {"sent": bool(swarm._shared.write(data))}
            elif cmd[0] in ("unplug", "replug"):
                t = swarm.vehicles[int(cmd[1]) - 1].transport
                out = {"path": t.unplug() if cmd[0] == "unplug" else t.replug()}
            elif cmd[0] == "param":
                swarm.vehicles[int(cmd[1]) - 1].params.set(cmd[2], float(cmd[3]))
                out = {"ok": True}
            else:
                out = {"error": f"unknown command {cmd[0]}"}
            print(json.dumps(out), flush=True)
    finally:
        swarm.close()


if __name__ == "__main__":
    main()
