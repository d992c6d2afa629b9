"""Every number derived from a drone's parameters, every enum and the observation layout have one source.

The C headers own them; the binding exports them; the other packages read them from drone_sim and the
policy's own metadata (through OnnxPolicy's typed accessors) instead of keeping copies that drift.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import drone_sim
from deploy.drone import flown_drone
from deploy.ui import FlightThread
from policies.onnx_policy import OnnxPolicy, OnnxPolicyError
from test_deploy_support import default_policy_path, edited_policy

ROOT = Path(__file__).resolve().parents[1]


def test_enum_names_are_the_c_order():
    """The task names' order is C's: the task one-hot the C observation builds sits at TASKS.index(task)."""
    start, length = drone_sim.OBS_LAYOUT["task"]
    assert length == len(drone_sim.TASKS) == 6
    for i, task in enumerate(drone_sim.TASKS):
        obs = drone_sim.observe(np.zeros(3), np.zeros(3), [1, 0, 0, 0], np.zeros(3), np.zeros(4), [1, 0, 1],
                                task=task, drone=drone_sim.NOMINAL_DRONE)
        assert np.flatnonzero(obs[start:start + length]).tolist() == [i], task
    for i, task in enumerate(drone_sim.TASKS):
        env = drone_sim.make(tasks=task, num_envs=1, agents_per_env=1, seed=0)
        obs, _ = env.reset()
        assert np.flatnonzero(obs[0, start:start + length]).tolist() == [i], task
        env.close()
    assert drone_sim.ACTION_MODES == ("rpm", "ctbr")
    assert set(drone_sim.FORMATIONS) == {"sphere", "orbit", "grid", "line"}


def test_observation_layout_is_exported_from_c_and_tiles_the_vector():
    blocks = sorted(drone_sim.OBS_LAYOUT.values())
    assert blocks[0][0] == 0
    for (a, n), (b, _) in zip(blocks, blocks[1:]):
        assert a + n == b                      # contiguous, no overlap
    assert blocks[-1][0] + blocks[-1][1] == drone_sim.OBS_SIZE
    # the scales mean what observation.h says: a body velocity of 2.5 m/s reads 2.5 / scale
    obs = drone_sim.observe(np.zeros(3), [2.5, 0, 0], [1, 0, 0, 0], [0, 0, 1.0], np.zeros(4), [0, 0, 1], task="hover",
                            drone=drone_sim.NOMINAL_DRONE)
    v0 = drone_sim.OBS_LAYOUT["velocity"][0]
    assert obs[v0] == pytest.approx(2.5 / drone_sim.OBS_SCALES["velocity"])
    r0 = drone_sim.OBS_LAYOUT["body_rates"][0]
    assert obs[r0 + 2] == pytest.approx(1.0 / drone_sim.OBS_SCALES["body_rates"])


def test_thrust_figures_come_from_the_simulator():
    d = dict(drone_sim.NOMINAL_DRONE)
    tmax = 4 * d["k_thrust"] * d["omega_max"] ** 2
    assert drone_sim.GRAVITY == 9.81
    assert drone_sim.max_thrust(d) == pytest.approx(tmax, rel=1e-6)
    assert drone_sim.hover_thrust_fraction(d) == pytest.approx(d["mass"] * 9.81 / tmax, rel=1e-6)
    assert drone_sim.thrust_to_weight(d) == pytest.approx(tmax / (d["mass"] * 9.81), rel=1e-6)
    assert drone_sim.hover_omega(d) == pytest.approx(math.sqrt(d["mass"] * 9.81 / (4 * d["k_thrust"])), rel=1e-6)
    assert drone_sim.hover_action(d, "ctbr") == pytest.approx([2 * drone_sim.hover_thrust_fraction(d) - 1, 0, 0, 0])
    assert drone_sim.hover_action(d, "rpm") == pytest.approx([2 * drone_sim.hover_omega(d) / d["omega_max"] - 1] * 4)
    # the three parameters they depend on are enough (a policy's metadata, a calibration result)
    part = {k: d[k] for k in ("mass", "k_thrust", "omega_max")}
    assert drone_sim.hover_omega(part) == drone_sim.hover_omega(d)
    with pytest.raises(KeyError, match="k_thrust"):
        drone_sim.hover_omega({"mass": 1.0, "omega_max": 100.0})
    with pytest.raises(ValueError, match="positive"):
        drone_sim.max_thrust({**part, "mass": 0.0})
    with pytest.raises(ValueError, match="action mode"):
        drone_sim.hover_action(d, "thrust")


def test_no_copies_of_the_simulators_constants():
    """g and the default body-rate scale are typed once: quadrotor.h and NOMINAL_DRONE (drone_sim/config.py).
    Calibration's standard gravity (a unit definition, kgf) is calibration/rundata.py's."""
    allowed = {"drone_sim/config.py", "calibration/rundata.py"}
    bad = []
    for pkg in ("drone_sim", "policies", "firmware_bridge", "deploy", "calibration", "scripts"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in allowed:
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if "m/s^2" in code:
                    continue                     # a unit in a message or an example, not a computation
                if re.search(r"(?<![\d.])9\.81(?!\d)|9\.80665|7\.0,\s*7\.0,\s*3\.0", code):
                    bad.append(f"{rel}:{n}: {line.strip()}")
    assert not bad, "constants copied instead of read from drone_sim:\n" + "\n".join(bad)


def test_onnx_policy_reads_max_rate_hover_action_and_drone_by_name(tmp_path):
    shipped = OnnxPolicy(default_policy_path(), action_mode="ctbr")
    scaling = shipped.metadata["action_scaling"]
    assert shipped.max_rate.tolist() == pytest.approx(shipped.drone["max_rate"])
    assert shipped.hover_action.tolist() == pytest.approx(scaling["hover_action"])
    assert shipped.hover_action.tolist() == pytest.approx(drone_sim.hover_action(shipped.drone, "ctbr"), abs=1e-6)

    # an explicit max_rate wins; an older file's dims are read by their names, not by their order or a suffix
    legacy = {k: v for k, v in scaling.items() if k != "max_rate"}
    dims = list(reversed(scaling["dims"])) + [{"name": "tilt_rate", "high": 99.0}]
    p = edited_policy(tmp_path / "reordered.onnx", metadata={"action_scaling": json.dumps({**legacy, "dims": dims})})
    assert OnnxPolicy(p).max_rate.tolist() == pytest.approx(shipped.max_rate.tolist())
    p = edited_policy(tmp_path / "explicit.onnx", metadata={"action_scaling": json.dumps({**scaling, "max_rate": [5, 6, 2]})})
    assert OnnxPolicy(p).max_rate.tolist() == [5, 6, 2]
    # no hover action in the file: the simulator's, for the policy's drone
    no_hover = {k: v for k, v in scaling.items() if k != "hover_action"}
    p = edited_policy(tmp_path / "nohover.onnx", metadata={"action_scaling": json.dumps(no_hover)})
    assert OnnxPolicy(p).hover_action.tolist() == pytest.approx(drone_sim.hover_action(shipped.drone, "ctbr"))
    # nothing usable: an error naming the file, not a default
    p = edited_policy(tmp_path / "norates.onnx", metadata={"action_scaling": json.dumps({**legacy, "dims": []})})
    with pytest.raises(OnnxPolicyError, match="norates.onnx.*max_rate"):
        OnnxPolicy(p).max_rate


def test_exported_metadata_carries_max_rate_and_the_simulators_hover_action():
    from policies.export import action_scaling

    d = dict(drone_sim.NOMINAL_DRONE, max_rate=[6.0, 5.0, 2.0])
    s = action_scaling("ctbr", d)
    assert s["max_rate"] == [6.0, 5.0, 2.0]
    assert s["hover_action"] == pytest.approx(drone_sim.hover_action(d, "ctbr"))
    assert action_scaling("rpm", d)["hover_action"] == pytest.approx(drone_sim.hover_action(d, "rpm"))


def test_one_rule_decides_the_drone_deploy_flies(tmp_path):
    policy = OnnxPolicy(default_policy_path())
    measured = dict(drone_sim.load_drone_params(ROOT / "drone_sim" / "data" / "crazyflie2.json"))
    f = tmp_path / "mine.json"
    f.write_text((ROOT / "drone_sim" / "data" / "crazyflie2.json").read_text())
    assert flown_drone(str(f), policy)["mass"] == measured["mass"]          # --drone wins over the policy
    assert flown_drone(None, policy)["mass"] == policy.drone["mass"]          # then the policy's drone
    assert flown_drone(None, None) == dict(drone_sim.NOMINAL_DRONE)          # then the nominal one
    assert policy.drone["mass"] != measured["mass"]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        flown_drone(str(bad), policy)

    # the operator window asks the same rule (it used to prefer the policy's drone over --drone)
    from deploy.config import DeployConfig
    from deploy.flight import Flight

    flight = Flight(DeployConfig(port="/dev/null", drone=str(f)))
    flight.policy = policy
    assert FlightThread(flight).drone_params()["mass"] == measured["mass"]
