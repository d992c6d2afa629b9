"""Shared set-up for the deploy tests (no tests here): the simulated vehicle on a real pty or UDP socket,
drone-deploy as a real subprocess on it, fault-injecting transports, and ONNX policies edited to misbehave.

The misbehaving policies are the shipped policy's own graph with a few ONNX nodes added, so onnxruntime
really runs them and the fault happens inside the loop, in flight, when a condition on the observation
holds (height above a threshold): before it, the policy flies normally, which preflight checks.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

import drone_sim
from deploy.config import default_policy_path
from deploy.flightlog import read_log
from firmware_bridge.sim.vehicle import SimVehicle, VehicleConfig, SensorNoise
from firmware_bridge.transport import PtyTransport, Transport, UdpTransport
from fb_helpers import free_udp_port  # noqa: F401  (re-exported for the deploy tests)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEPLOY = [str(BIN / "drone-deploy")] if (BIN / "drone-deploy").exists() else [sys.executable, "-m", "deploy.cli"]
REPLAY = [str(BIN / "drone-replay")] if (BIN / "drone-replay").exists() else [sys.executable, "-m", "deploy.replay"]
SIM_VEHICLE = [str(BIN / "drone-sim-vehicle")] if (BIN / "drone-sim-vehicle").exists() else \
    [sys.executable, "-m", "firmware_bridge.sim"]

# what "sensor noise and latency" means in these tests (1-sigma noise; one-way latencies)
NOISE_ARGS = ["--noise-pos", "0.01", "--noise-vel", "0.02", "--noise-att-deg", "0.3", "--noise-gyro", "0.01",
              "--latency-ms", "10", "--telemetry-latency-ms", "10"]
NOISE = SensorNoise(position=0.01, velocity=0.02, attitude=np.radians(0.3), gyro=0.01)
TARGETS = ["0.8,0,1.3", "0.8,0.8,1.3", "0,0.8,1.0"]



# ---------------------------------------------------------------------------------------------- processes

@contextlib.contextmanager
def sim_vehicle_process(endpoint_args: list[str], extra: list[str] = ()):
    """drone-sim-vehicle (the console script) in a subprocess, lockstep, with noise and latency."""
    cmd = SIM_VEHICLE + endpoint_args + ["--lockstep", *NOISE_ARGS, *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        end = time.monotonic() + 15
        while time.monotonic() < end:
            line = proc.stdout.readline()
            if line.startswith("serving on") or not line:
                break
        assert line.startswith("serving on"), f"drone-sim-vehicle did not start: {line!r}"
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def deploy_cmd(port: str, log_dir: Path, *args: str, lockstep: bool = True) -> list[str]:
    base = DEPLOY + ["--port", port, "--baud", "115200", "--log", str(log_dir), "--quiet", "--connect-timeout", "10"]
    return base + (["--lockstep"] if lockstep else []) + list(args)


def run_deploy(port: str, log_dir: Path, *args: str, timeout: float = 120, lockstep: bool = True):
    """drone-deploy to completion; returns (exit code, output, the log read back)."""
    p = subprocess.run(deploy_cmd(port, log_dir, *args, lockstep=lockstep), capture_output=True, text=True,
                       timeout=timeout)
    out = p.stdout + p.stderr
    return p.returncode, out, latest_log(log_dir)


def latest_log(log_dir: Path):
    logs = sorted(Path(log_dir).glob("flight-*.jsonl"))
    return read_log(logs[-1]) if logs else None


def wait_log_phase(log_dir: Path, phase: str, timeout: float, proc=None) -> Path:
    """Wait until the newest flight log in log_dir records `phase` (read as it is written)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        logs = sorted(Path(log_dir).glob("flight-*.jsonl"))
        if logs:
            with open(logs[-1], "rb") as f:
                for raw in f:
                    if b'"kind":"phase"' in raw and f'"phase":"{phase}"'.encode() in raw:
                        return logs[-1]
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"drone-deploy exited ({proc.returncode}) before phase {phase}: "
                                 f"{proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.05)
    raise AssertionError(f"no phase {phase} in the flight log within {timeout} s")


# ---------------------------------------------------------------------------------------------- in-process vehicle

class FaultTransport(Transport):
    """A vehicle transport whose faults a test switches on: garbage bytes and corrupted frames both ways,
    or dropped telemetry messages (everything else, heartbeats included, still goes)."""

    def __init__(self, inner: Transport, seed: int = 0):
        self.inner = inner
        self.name = f"fault({inner.name})"
        self.rng = random.Random(seed)
        self.garbage = 0.0          # probability per frame of a burst of random bytes after it, and of a flipped byte
        self.drop_ids: set[int] = set()
        self.garbage_bytes = 0
        self.dropped = 0

    @property
    def path(self):
        return getattr(self.inner, "path", None)

    def _msgid(self, data: bytes) -> int | None:
        if len(data) >= 10 and data[0] == 0xFD:
            return data[7] | data[8] << 8 | data[9] << 16
        if len(data) >= 6 and data[0] == 0xFE:
            return data[5]
        return None

    def _mess(self, data: bytes) -> bytes:
        if self.garbage <= 0:
            return data
        out = bytearray(data)
        if out and self.rng.random() < self.garbage:
            i = self.rng.randrange(len(out))
            out[i] ^= 1 << self.rng.randrange(8)
            self.garbage_bytes += 1
        if self.rng.random() < self.garbage:
            junk = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 40)))
            out += junk
            self.garbage_bytes += len(junk)
        return bytes(out)

    def write(self, data: bytes) -> bool:
        if self.drop_ids and self._msgid(data) in self.drop_ids:
            self.dropped += 1
            return True
        return self.inner.write(self._mess(data))

    def read(self, timeout: float) -> bytes:
        data = self.inner.read(timeout)
        return self._mess(data) if data else data

    def close(self) -> None:
        self.inner.close()


@contextlib.contextmanager
def vehicle_in_process(kind: str = "pty", params: dict | None = None, **config):
    """SimVehicle in this process (its thread) behind a FaultTransport; yields (vehicle, faults, endpoint)."""
    if kind == "pty":
        inner = PtyTransport(None)
        endpoint = inner.path
    else:
        port = free_udp_port()
        inner = UdpTransport(None, ("127.0.0.1", port), f"udp->{port}")
        endpoint = f"udpin:127.0.0.1:{port}"
    faults = FaultTransport(inner)
    cfg = VehicleConfig(lockstep=True, noise=NOISE, command_latency_s=0.01, telemetry_latency_s=0.01,
                        ekf_init_s=0.2, params=dict(params or {}), **config)
    vehicle = SimVehicle(faults, cfg)
    vehicle.start()
    try:
        yield vehicle, faults, endpoint
    finally:
        vehicle.close()


def vehicle_armed(vehicle) -> bool:
    with vehicle._lock:
        return bool(vehicle.ap.armed)


def vehicle_height(vehicle) -> float:
    with vehicle._lock:
        return float(vehicle.ap.state()[2])


# ---------------------------------------------------------------------------------------------- policies

def edited_policy(out: Path, *, metadata: dict | None = None, nan_above_m: float | None = None,
                  raise_above_m: float | None = None, target_offset_world: tuple | None = None) -> Path:
    """The shipped policy with its metadata changed, or with nodes that make it misbehave in flight.

    nan_above_m: every action is NaN once the height observation says above this. raise_above_m: the
    graph fails at run time (a Reshape to 5 values of a 4-value action) above this height.
    target_offset_world: the policy sees its target moved by this offset (m, world frame), so it chases
    a point that keeps running away: a fence breach."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load(str(default_policy_path()))
    g = m.graph
    nodes = list(g.node)
    h_idx = 15  # drone_sim/csrc/observation.h OBS_HEIGHT (height / 5 m)

    def const(name, arr, dtype=TensorProto.FLOAT):
        a = np.asarray(arr)
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_v", dtype, a.shape,
                                                                                  a.flatten().tolist()))

    def height_above(h, tag):
        return [const(f"{tag}_starts", [h_idx], TensorProto.INT64), const(f"{tag}_ends", [h_idx + 1], TensorProto.INT64),
                const(f"{tag}_axes", [1], TensorProto.INT64),
                helper.make_node("Slice", ["obs", f"{tag}_starts", f"{tag}_ends", f"{tag}_axes"], [f"{tag}_h"]),
                const(f"{tag}_thr", [h / 5.0]),
                helper.make_node("Greater", [f"{tag}_h", f"{tag}_thr"], [f"{tag}_cond"])]

    if nan_above_m is not None or raise_above_m is not None:
        for n in nodes:
            n.output[:] = ["action_raw" if o == "action" else o for o in n.output]
        extra = []
        if nan_above_m is not None:
            extra += height_above(nan_above_m, "nan")
            extra += [const("nan_val", [float("nan")]),
                      helper.make_node("Where", ["nan_cond", "nan_val", "action_raw"], ["action"])]
        else:
            extra += height_above(raise_above_m, "err")
            extra += [helper.make_node("Cast", ["err_cond"], ["err_int"], to=TensorProto.INT64),
                      helper.make_node("ReduceMax", ["err_int"], ["err_max"], keepdims=0),
                      const("err_four", 4, TensorProto.INT64),
                      helper.make_node("Add", ["err_four", "err_max"], ["err_n"]),
                      const("err_unsq_axes", [0], TensorProto.INT64),
                      helper.make_node("Unsqueeze", ["err_n", "err_unsq_axes"], ["err_n1"]),
                      const("err_minus1", [-1], TensorProto.INT64),
                      helper.make_node("Concat", ["err_minus1", "err_n1"], ["err_shape"], axis=0),
                      helper.make_node("Reshape", ["action_raw", "err_shape"], ["action"])]
        nodes += extra
    if target_offset_world is not None:
        # body offset (row) = world offset (row) @ R, R = obs[6:15] body-to-world row-major (batch of one)
        w = np.asarray(target_offset_world, dtype=np.float32).reshape(1, 3) / 5.0  # OBS_TARGET_CLIP
        for n in nodes:
            n.input[:] = ["obs_shifted" if i == "obs" else i for i in n.input]
        pre = [const("off_r0", [6], TensorProto.INT64), const("off_r1", [15], TensorProto.INT64),
               const("off_ax", [1], TensorProto.INT64),
               helper.make_node("Slice", ["obs", "off_r0", "off_r1", "off_ax"], ["off_rflat"]),
               const("off_33", [3, 3], TensorProto.INT64),
               helper.make_node("Reshape", ["off_rflat", "off_33"], ["off_R"]),
               const("off_w", w), helper.make_node("MatMul", ["off_w", "off_R"], ["off_body"]),
               const("off_z0", np.zeros((1, 20), np.float32)), const("off_z1", np.zeros((1, drone_sim.OBS_SIZE - 23),
                                                                                      np.float32)),
               helper.make_node("Concat", ["off_z0", "off_body", "off_z1"], ["obs_offset"], axis=1),
               helper.make_node("Add", ["obs", "obs_offset"], ["obs_shifted"])]
        nodes = pre + nodes
    del g.node[:]
    g.node.extend(nodes)
    if metadata:
        props = {p.key: p for p in m.metadata_props}
        for k, v in metadata.items():
            props[k].value = v if isinstance(v, str) else json.dumps(v)
    onnx.save(m, str(out))
    return out


def steps_of(log, phase: str | None = None) -> list[dict]:
    return [s for s in log.steps if phase is None or s["phase"] == phase]


def safety_kinds(log) -> list[str]:
    return [e["trigger"]["kind"] for e in log.events if e.get("kind") == "safety"]


def assert_log_intact(log) -> None:
    """The log reads back whole: a header, ticks, an end record, no corrupt lines."""
    assert log is not None, "no flight log written"
    assert log.header.get("format") == "drone-flight-log/1"
    assert log.steps, "no control ticks logged"
    assert log.end is not None, "no end record"
    assert not log.bad_lines and log.torn_lines == 0
    ks = [s["k"] for s in log.steps]
    assert ks == list(range(len(ks))), "tick records missing or out of order"


def assert_ended_on_ground(log) -> None:
    """Disarmed at the end, on the ground (the last ticks low and slow)."""
    last = log.steps[-1]
    assert last["armed"] is False, f"still armed at the end: {last}"
    assert log.end["summary"]["armed_at_end"] is False
