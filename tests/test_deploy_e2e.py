"""End to end, no hardware: drone-sim-vehicle (the console script) on a real pty and on UDP, with sensor noise
and latency, and drone-deploy (the console script) flying the shipped policy to three targets in turn,
holding each within 0.3 m for 5 s, and landing. Both in lockstep (the vehicle advances one control period
per setpoint), so a flight takes seconds; the real-time run is scripts/bench_deploy.py (BENCHMARKS.md)."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

import drone_sim
from test_deploy_support import (REPLAY, ROOT, TARGETS, assert_ended_on_ground, assert_log_intact, free_udp_port,
                                 run_deploy, safety_kinds, sim_vehicle_process, steps_of)


def _check_three_targets(log, out: str) -> None:
    assert_log_intact(log)
    assert log.end["exit_code"] == 0 and log.end["reason"] == "mission complete", out[-2000:]
    targets = log.end["summary"]["targets"]
    assert len(targets) == 3, targets
    want = [tuple(float(v) for v in t.split(",")) for t in TARGETS]
    for t, w in zip(targets, want):
        assert t["completed"], t
        assert np.allclose(t["position"], w, atol=1e-6), (t["position"], w)
        assert t["held_s"] >= 5.0 - 1e-6
        assert t["window_max_error_m"] <= 0.3
    # the measured positions, tick by tick, agree: every target was held within 0.3 m for 5 s of vehicle time
    pol = steps_of(log, "policy")
    vt = np.array([s["vt"] for s in pol])
    err = np.array([np.linalg.norm(np.subtract(s["pos"], s["target"])) for s in pol])
    lab = [s["target_label"] for s in pol]
    for i in range(3):
        m = np.array([x == f"mission {i + 1}" for x in lab])
        inside = (err <= 0.3) & m
        best, run_start = 0.0, None
        for j in np.flatnonzero(m):
            if inside[j]:
                run_start = vt[j] if run_start is None else run_start
                best = max(best, vt[j] - run_start)
            else:
                run_start = None
        assert best >= 5.0 - 0.05, f"target {i + 1}: longest stay within 0.3 m {best:.2f} s"
    # and held with a steady thrust: under this link's noise and 10 + 10 ms latency a policy past its delay
    # margin holds by switching its thrust between extremes (the first shipped hover policy: std 0.36 here;
    # the current one about 0.06), which a real quadcopter's motors and frame do not take well
    thrust = np.array([s["action"][0] for s in pol])[err <= 0.3]
    assert thrust.std() < 0.15, f"thrust std {thrust.std():.3f} while holding: bang-bang thrust"
    assert safety_kinds(log) == []
    # ArduCopter's takeoff is left alone until it reports IN_AIR: a position target sent while it is still
    # landed replaces the takeoff and keeps the vehicle on the ground (mode_guided.cpp)
    takeoff = steps_of(log, "takeoff")
    first_sent = next(i for i, s in enumerate(takeoff) if s["sent"])
    assert first_sent > 0 and takeoff[first_sent]["pos"][2] > 0.5, takeoff[first_sent]
    landing = steps_of(log, "landing")
    assert landing and landing[-1]["pos"][2] < 0.15, "did not come down"
    assert_ended_on_ground(log)
    # the prediction was logged every policy tick, and the commands were really sent
    assert all(s["pred"] is not None and s["sent"] for s in pol)
    assert all(s["cmd"]["msg"] == "SET_ATTITUDE_TARGET" for s in pol)


def test_three_targets_on_a_pty(tmp_path):
    tty = str(tmp_path / "ttySIM")
    with sim_vehicle_process(["--pty", tty]):
        code, out, log = run_deploy(tty, tmp_path / "logs", *sum((["--target", t] for t in TARGETS), []))
    assert code == 0, out[-3000:]
    _check_three_targets(log, out)
    assert "[  ok] policy" in out and "mission complete" in out
    # GUID_OPTIONS was set for the flight and put back once the vehicle had disarmed
    params = [e for e in log.events if e.get("kind") == "param"]
    assert params == [{**params[0], "name": "GUID_OPTIONS", "restored": True, "value": 0.0}], params
    assert "GUID_OPTIONS restored to 0" in out and log.end["summary"]["params_not_restored"] == {}
    # drone-replay on this flight: plots and figures
    p = subprocess.run(REPLAY + [str(log.path), "--out", str(tmp_path / "replay")], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "replay.png").stat().st_size > 20000
    assert (tmp_path / "replay-timing.png").stat().st_size > 10000
    assert "one-step prediction error, position: rms" in p.stdout and "deadline misses: 0" in p.stdout


def test_three_targets_on_udp_relative_frame(tmp_path):
    """UDP the way SITL and ground stations do it (the vehicle sends to the laptop's port); targets given
    relative to the pose when each is set, so each one is the previous arrival point plus an offset."""
    port = free_udp_port()
    offsets = ["0.8,0,0.3", "0,0.8,0", "-0.8,0,-0.3"]
    with sim_vehicle_process(["--udp", f"127.0.0.1:{port}"]):
        code, out, log = run_deploy(f"udpin:127.0.0.1:{port}", tmp_path / "logs", "--frame", "relative",
                                    *[f"--target={t}" for t in offsets])
    assert code == 0, out[-3000:]
    assert_log_intact(log)
    targets = log.end["summary"]["targets"]
    assert [t["completed"] for t in targets] == [True, True, True]
    assert all(t["held_s"] >= 5.0 - 1e-6 and t["window_max_error_m"] <= 0.3 for t in targets)
    # relative: each target = the pose when it was set + the offset turned by the heading then
    pol = steps_of(log, "policy")
    first = {}
    for s in pol:
        first.setdefault(s["target_label"], s)
    for i, off in enumerate(offsets):
        s = first[f"mission {i + 1}"]
        d = np.subtract(s["target"], s["pos"])
        assert abs(np.linalg.norm(d) - np.linalg.norm([float(v) for v in off.split(",")])) < 0.1, (d, off)
        assert abs(d[2] - float(off.split(",")[2])) < 0.1
    assert_ended_on_ground(log)


def test_dry_run_sends_nothing_and_logs_what_it_would(tmp_path):
    """Also: the observation says what the --drone file says the drone is (size, hover thrust)."""
    tty = str(tmp_path / "ttySIM")
    params = ROOT / "calibration" / "examples" / "params_5inch.json"
    with sim_vehicle_process(["--pty", tty]):
        code, out, log = run_deploy(tty, tmp_path / "logs", "--dry-run", "--duration", "2", "--target", "0.5,0,1.2",
                                    "--drone", str(params))
    assert code == 0, out[-3000:]
    radius, hover = drone_sim.obs_self(drone_sim.load_drone_params(params))
    r0, h0 = drone_sim.OBS_LAYOUT["radius"][0], drone_sim.OBS_LAYOUT["hover_thrust"][0]
    assert_log_intact(log)
    dry = steps_of(log, "dry_run")
    assert len(dry) > 50
    assert all(s["dry"] and not s["sent"] and s["cmd"]["msg"] == "SET_ATTITUDE_TARGET" for s in dry)
    assert all(np.all(np.isfinite(s["action"])) for s in dry)
    assert all(s["obs"][r0] == pytest.approx(radius / 0.5, abs=1e-4) and s["obs"][h0] == pytest.approx(hover, abs=1e-4)
               for s in dry)
    assert hover != pytest.approx(drone_sim.hover_thrust_fraction(drone_sim.NOMINAL_DRONE), abs=1e-3)
    assert not any(s["armed"] for s in log.steps)
    assert "GUID_OPTIONS bit 3 is clear" in out  # a dry run writes no parameter either


@pytest.mark.parametrize("firmware", ["px4"])
def test_px4_offboard_flight(tmp_path, firmware):
    """PX4: setpoint stream before OFFBOARD, arm, climb on position setpoints, the policy, AUTO.LAND."""
    tty = str(tmp_path / "ttySIM")
    with sim_vehicle_process(["--pty", tty, "--firmware", firmware]):
        code, out, log = run_deploy(tty, tmp_path / "logs", "--target", "0.5,0.5,1.2", "--hold", "2", "--then", "land")
    assert code == 0, out[-3000:]
    assert_log_intact(log)
    assert [t["completed"] for t in log.end["summary"]["targets"]] == [True]
    modes = {s["mode"] for s in steps_of(log, "policy")}
    assert modes == {"OFFBOARD"}
    assert any(s["mode"] == "AUTO.LAND" for s in steps_of(log, "landing"))
    assert_ended_on_ground(log)


def test_rpm_policy_maps_to_motor_commands_on_px4_1_13(tmp_path):
    """The rpm command path: PX4 1.13 takes SET_ACTUATOR_CONTROL_TARGET, so preflight passes and the dry
    run logs motor throttles 0..1 (motors 1-4) for the policy's four outputs. (No rpm policy is shipped: the
    file is the ctbr policy relabelled, so it is only dry-run, never flown.)"""
    from test_deploy_support import edited_policy

    pol = edited_policy(tmp_path / "rpm.onnx", metadata={"action_mode": "rpm"})
    tty = str(tmp_path / "ttySIM")
    with sim_vehicle_process(["--pty", tty, "--firmware", "px4"]):
        code, out, log = run_deploy(tty, tmp_path / "logs", "--dry-run", "--duration", "1", "--policy", str(pol))
    assert code == 0, out[-3000:]
    assert "rpm -> SET_ACTUATOR_CONTROL_TARGET" in out
    dry = steps_of(log, "dry_run")
    assert dry and all(s["cmd"]["msg"] == "SET_ACTUATOR_CONTROL_TARGET" for s in dry)
    for s in dry:
        assert np.allclose(s["cmd"]["throttles"], 0.5 * (np.clip(s["action"], -1, 1) + 1.0), atol=1e-4)


def test_target_switch_mid_flight_is_immediate(tmp_path):
    """The operator handle (deploy.control.FlightControl, what a UI holds): a new target takes effect at
    the next tick, the drone flies there; a target outside the fence is refused and the old one kept."""
    import threading
    import time

    from deploy.config import DeployConfig
    from deploy.control import FlightControl
    from deploy.flight import Flight
    from deploy.flightlog import read_log
    from deploy.targets import TargetError
    from test_deploy_support import vehicle_in_process

    with vehicle_in_process() as (vehicle, faults, endpoint):
        control = FlightControl()
        cfg = DeployConfig(port=endpoint, baud=115200, lockstep=True, log_dir=str(tmp_path / "logs"))
        flight = Flight(cfg, control, say=lambda line: None)
        t = threading.Thread(target=flight.run, daemon=True)
        t.start()
        end = time.monotonic() + 40
        while time.monotonic() < end and not (control.snapshot() and control.snapshot().phase == "policy"):
            time.sleep(0.02)
        time.sleep(0.5)
        vt_call = control.snapshot().vt
        control.set_target((0.6, -0.4, 1.4), frame="home")
        with pytest.raises(TargetError, match="outside the fence"):
            control.set_target((9.0, 0.0, 1.0), frame="home")
        end = time.monotonic() + 30
        def there():
            snap = control.snapshot()
            return np.allclose(snap.target, (0.6, -0.4, 1.4)) and snap.distance_to_target < 0.15

        while time.monotonic() < end and not there():
            time.sleep(0.02)
        control.request_land("test")
        t.join(60)
    assert flight.exit_code == 0, flight.reason
    log = read_log(flight.log.path)
    pol = [s for s in log.steps if s["phase"] == "policy"]
    first = next(s for s in pol if np.allclose(s["target"], [0.6, -0.4, 1.4], atol=1e-6))
    assert first["vt"] - vt_call <= 0.02 + 0.021, (first["vt"], vt_call)  # the next tick (one period)
    assert not any(np.allclose(s["target"], [9.0, 0.0, 1.0]) for s in log.steps)
    assert min(np.linalg.norm(np.subtract(s["pos"], [0.6, -0.4, 1.4])) for s in pol) < 0.15
    assert log.end["reason"] == "operator: test" and log.end["summary"]["armed_at_end"] is False
