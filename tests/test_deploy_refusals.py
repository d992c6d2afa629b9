"""What drone-deploy refuses before anything is armed, each with a clear message naming the problem: policies
whose metadata does not match (layout version, observation size, action mode the firmware cannot fly,
control rate), a vehicle without a GCS failsafe, targets outside the fence, a link with no vehicle, bad
arguments. And the pieces the flight rests on: the log survives a torn last line, the safety checks."""
from __future__ import annotations

import json
import math
import subprocess
import time

import numpy as np
import pytest

import drone_sim
from deploy.config import ConfigError, DeployConfig, SafetyLimits, default_policy_path, parse_vec3
from deploy.estimate import Estimate
from deploy.flightlog import FlightLog, FlightLogError, read_log
from deploy.safety import SafetyMonitor
from deploy.targets import Fence, TargetError, Targeting
from test_deploy_support import (ROOT, deploy_cmd, edited_policy, run_deploy, vehicle_armed, vehicle_in_process,
                                 wait_log_phase)


def test_default_policy_is_the_shipped_hover_policy():
    p = default_policy_path()
    assert p.name == "hover_ctbr.onnx" and p.is_file()


@pytest.mark.parametrize("metadata, message", [
    ({"obs_layout_version": str(drone_sim.OBS_VERSION - 1)},
     f"trained on observation layout version {drone_sim.OBS_VERSION - 1}, expected version {drone_sim.OBS_VERSION}"),
    ({"obs_size": "80"}, f"takes 80 observation values, expected {drone_sim.OBS_SIZE}"),
    ({"env": "pong"}, "a policy for env 'pong', expected 'drone'"),
])
def test_metadata_mismatch_refused_before_connecting(tmp_path, metadata, message):
    pol = edited_policy(tmp_path / "bad.onnx", metadata=metadata)
    # no vehicle on this port: the policy is refused before the link is even opened
    code, out, log = run_deploy("/dev/null-no-such-port", tmp_path / "logs", "--policy", str(pol))
    assert code == 2
    assert "policy refused" in out and message in out and str(pol) in out
    assert log is None  # refused before a flight log was started: nothing happened


def test_wrong_action_mode_for_the_firmware_refused_at_preflight(tmp_path):
    """An rpm policy needs direct motor commands, which ArduPilot never takes: refused, never armed."""
    pol = edited_policy(tmp_path / "rpm.onnx", metadata={"action_mode": "rpm"})
    with vehicle_in_process() as (vehicle, faults, endpoint):
        code, out, log = run_deploy(endpoint, tmp_path / "logs", "--policy", str(pol))
        assert not vehicle_armed(vehicle)
    assert code == 2, out
    assert "command path" in out and "SET_ACTUATOR_CONTROL_TARGET" in out and "ardupilot" in out
    assert log.end["exit_code"] == 2 and not any(s["armed"] for s in log.steps)
    pre = next(e for e in log.events if e["kind"] == "preflight")
    assert pre["ok"] is False and any(c["name"] == "command path" and c["status"] == "FAIL" for c in pre["checks"])


def test_rate_mismatch_and_gcs_failsafe_off_and_target_outside_fence_refused(tmp_path):
    with vehicle_in_process(params={"FS_GCS_ENABLE": 0}) as (vehicle, faults, endpoint):
        code, out, log = run_deploy(endpoint, tmp_path / "logs", "--rate", "100", "--target", "6,0,1")
        assert not vehicle_armed(vehicle)
    assert code == 2, out
    assert "trained at 50 Hz, the loop would run at 100 Hz" in out
    assert "FS_GCS_ENABLE = 0" in out
    assert "outside the fence (5 m radius" in out
    assert log.end["reason"].startswith("refused: preflight refused")


def test_a_telemetry_dip_during_preflight_is_measured_again_not_refused(tmp_path):
    """0.6 s without attitude and position in the first 1 s window (a busy laptop, a radio burst) used to refuse
    the flight; the second window sees the link at its rate."""
    logs = tmp_path / "logs"
    with vehicle_in_process() as (vehicle, faults, endpoint):
        proc = subprocess.Popen(deploy_cmd(endpoint, logs, "--dry-run", "--duration", "1", lockstep=False),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_log_phase(logs, "preflight", 60, proc)
            faults.drop_ids = {31, 32}          # ATTITUDE_QUATERNION, LOCAL_POSITION_NED
            time.sleep(0.6)
            faults.drop_ids = set()
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert faults.dropped > 10
    assert proc.returncode == 0, out
    assert "[  ok] telemetry" in out


def test_a_link_too_slow_for_the_loop_is_still_refused(tmp_path):
    with vehicle_in_process(speed=0.5) as (vehicle, faults, endpoint):   # 50 Hz streams at half real time
        code, out, log = run_deploy(endpoint, tmp_path / "logs", "--dry-run", "--duration", "1", lockstep=False)
    assert code == 2, out
    assert "need >= 40 Hz for a 50 Hz loop" in out


def test_no_vehicle_on_the_port_is_a_clear_refusal(tmp_path):
    from firmware_bridge.transport import PtyTransport

    silent = PtyTransport(None)  # a port with nothing talking on it
    try:
        code, out, log = run_deploy(silent.path, tmp_path / "logs", "--connect-timeout", "1")
    finally:
        silent.close()
    assert code == 2 and "no vehicle heartbeat within 1 s" in out


@pytest.mark.parametrize("args, message", [
    (["--target", "1,2"], "expected three finite numbers"),
    (["--target", "1,nan,2"], "expected three finite numbers"),
    (["--rate", "0"], "--rate must be between 1 and 1000 Hz"),
    (["--safety", "max_tilt_deg=120"], "max_tilt_deg must be below 90"),
    (["--safety", "no_such=1"], "unknown safety setting 'no_such'"),
    (["--safety", "response.fence=explode"], "safety response for fence must be one of"),
    (["--takeoff-alt", "5"], "takeoff altitude 5 m must be between"),
    (["--lockstep", "--telemetry-latency-ms", "10"], "the delay model runs on the wall clock"),
])
def test_bad_arguments_name_the_option(tmp_path, args, message):
    code, out, _ = run_deploy("/dev/null-no-such-port", tmp_path / "logs", *args)
    assert code == 2 and message in out, out


# ---------------------------------------------------------------------------------------------- units

def test_flight_log_reads_back_after_a_torn_write(tmp_path):
    log = FlightLog(tmp_path / "f.jsonl")
    log.header(config={})
    for k in range(5):
        log.write({"type": "step", "k": k, "action": [math.nan, 1.0, 0.0, 0.0]})
    log.close()
    with open(tmp_path / "f.jsonl", "a") as f:
        f.write('{"type": "step", "k": 5, "act')  # the process died mid-line
    data = read_log(tmp_path / "f.jsonl")
    assert [s["k"] for s in data.steps] == list(range(5)) and data.torn_lines == 1 and data.end is None
    assert math.isnan(data.steps[0]["action"][0])  # a NaN action is kept, not lost
    (tmp_path / "x.jsonl").write_text(json.dumps({"type": "step"}) + "\n")
    with pytest.raises(FlightLogError, match="no drone-flight-log/1 header"):
        read_log(tmp_path / "x.jsonl")


def _est(pos=(0, 0, 1), vel=(0, 0, 0), quat=(1, 0, 0, 0), age=0.01, link_age=0.01, stale=False):
    return Estimate(0.0, 0.0, np.array(pos, float), np.array(vel, float), np.array(quat, float), np.zeros(3), age, age,
                    link_age, stale, True, "GUIDED", 2, 16.0, 0.9, True)


def test_safety_checks_fire_on_their_limits():
    lim = SafetyLimits().validate()
    sm = SafetyMonitor(lim, Fence.around((0, 0, 0), lim), cells=4)
    assert sm.check_link(_est()) is None and sm.check_state(_est()) is None
    assert sm.check_state(_est(pos=(5.1, 0, 1))).kind == "fence"
    assert sm.check_state(_est(pos=(0, 0, 3.2))).kind == "altitude"
    tilt = math.radians(61)
    assert sm.check_state(_est(quat=(math.cos(tilt / 2), math.sin(tilt / 2), 0, 0))).kind == "tilt"
    assert sm.check_state(_est(vel=(3.5, 0, 0))).kind == "speed"
    assert sm.check_link(_est(age=0.3)).kind == "stale_telemetry"
    assert sm.check_link(_est(link_age=1.5, stale=True)).kind == "link_lost"
    assert sm.check_action(np.array([0, 0, math.nan, 0]), _est()).kind == "action_nonfinite"
    assert sm.check_action(np.array([0, 1.2, 0, 0]), _est()).kind == "action_range"
    assert sm.check_action(np.zeros(4), _est()) is None
    assert sm.check_state(_est(pos=(math.nan, 0, 1))).kind == "observation_nonfinite"
    for _ in range(lim.max_consecutive_misses - 1):
        assert sm.check_deadline(True, _est(), 0.0) is None
    assert sm.check_deadline(True, _est(), 0.0).kind == "deadline"
    assert sm.check_state(_est(pos=(5.1, 0, 1))).response == "return"


def test_the_swarm_checks_all_rows_at_once_with_the_single_checks_verdicts():
    """A swarm's tick checks every vehicle's observation and action in one call (policy_rows_pass) and asks the
    single checks only about a row that fails: the two must agree row for row, at the limits too."""
    lim = SafetyLimits().validate()
    sm = SafetyMonitor(lim, Fence.around((0, 0, 0), lim), cells=4)
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(9, 12)).astype(np.float32)
    act = rng.uniform(-1, 1, size=(9, 4))
    edge = 1.0 + lim.action_tolerance
    act[1, 2] = math.nan
    act[2, 0] = edge                       # exactly at the tolerance: passes
    act[3, 3] = -np.nextafter(edge, 2.0)   # just past it: fails
    act[4, 1] = math.inf
    obs[5, 7] = math.nan
    obs[6, 0] = -math.inf
    act[7] = [1.0, -1.0, 1.0, -1.0]
    rows = sm.policy_rows_pass(obs, act, 4)
    single = [sm.check_observation(o, _est()) is None and sm.check_action(a, _est()) is None for o, a in zip(obs, act)]
    assert rows.tolist() == single == [True, False, True, False, False, False, False, True, True]
    assert not sm.policy_rows_pass(obs, act[:, :3], 4).any()   # a policy with the wrong action size fails every row


def test_relative_targets_follow_the_heading_and_the_fence_refuses():
    lim = SafetyLimits().validate()
    tg = Targeting(Fence.around((0, 0, 0), lim), "relative")
    yaw = math.pi / 2  # facing north (ENU +y)
    q = (math.cos(yaw / 2), 0, 0, math.sin(yaw / 2))
    p = tg.set_target((1.0, 0.5, 0.2), position=np.array([1.0, 1.0, 1.0]), quaternion=np.array(q))
    assert np.allclose(p, [0.5, 2.0, 1.2])  # 1 m forward = north, 0.5 m left = west
    with pytest.raises(TargetError, match="outside the fence"):
        tg.set_target((5.0, 0, 0), position=np.array([1.0, 1.0, 1.0]), quaternion=np.array(q))
    assert np.allclose(tg.target, [0.5, 2.0, 1.2])  # the target in force is kept


def test_a_target_with_a_negative_first_coordinate_parses_as_written():
    from deploy.cli import attach_vector_values, build_parser, config_from_args
    argv = ["--port", "/dev/ttyUSB0", "--target", "-1,0.5,1", "--target", "1,-2,1.5", "--baud", "115200"]
    assert attach_vector_values(argv)[2] == "--target=-1,0.5,1"
    cfg = config_from_args(build_parser().parse_args(attach_vector_values(argv)))
    assert [tuple(t) for t in cfg.targets] == [(-1.0, 0.5, 1.0), (1.0, -2.0, 1.5)]


def test_config_parsing():
    assert parse_vec3("1, -2,3.5") == (1.0, -2.0, 3.5)
    with pytest.raises(ConfigError):
        parse_vec3("1,2,3,4")
    with pytest.raises(ConfigError, match="stale_after_s must be shorter"):
        DeployConfig(limits=SafetyLimits(stale_after_s=2.0)).validate()


def test_course_outside_the_fence_refused(tmp_path, data_dir):
    pol = str(ROOT / "policies" / "pretrained" / "multitask_ctbr.onnx")  # trained on race
    with vehicle_in_process() as (vehicle, faults, endpoint):
        code, out, log = run_deploy(endpoint, tmp_path / "logs", "--dry-run", "--task", "race", "--policy", pol,
                                    "--course", str(data_dir / "course_example.json"))
    assert code == 2 and "course ring 1: target (10.00, 0.00, 2.00) is 10.00 m from home, outside the fence" in out


def test_delay_model_predicts_the_state_forward_under_the_commands_in_flight():
    """Telemetry `a` old plus latencies: the policy is fed the state the simulator predicts for the moment
    its command acts, with the commands already sent applied at the times they act."""
    from deploy.estimate import DelayModel, SimModel

    model = SimModel("ctbr", None)
    hover = np.array([2 * 0.5 * 9.81 / (4 * 5.47e-7 * 2800.0 ** 2) - 1, 0, 0, 0], dtype=np.float32)
    est = _est(pos=(0, 0, 1), vel=(1.0, 0, 0), age=0.01)
    est.t = 100.0
    assert DelayModel(model).compensate(est, hover) is est  # no latencies: the identity
    dm = DelayModel(model, telemetry_latency_s=0.02, command_latency_s=0.03)
    out = dm.compensate(est, hover)
    h = 0.01 + 0.02 + 0.03
    assert abs(out.position[0] - 1.0 * h) < 0.01 and abs(out.position[2] - 1.0) < 0.005
    # a full-thrust command sent 50 ms ago acts (30 ms latency) for the last 50 ms of the 60 ms horizon:
    # the prediction climbs, the measured state does not
    dm.sent(99.95, np.array([1.0, 0, 0, 0], np.float32))
    up = dm.compensate(est, hover)
    assert up.velocity[2] > 0.1 and out.velocity[2] < 0.02


def test_the_swarm_state_check_never_passes_a_row_the_single_check_would_stop():
    """states_pass screens every vehicle's state at once; the tick runs check_state only on the rows it does not
    pass. So a passed row must be one check_state lets through (at the limits too), and a row well inside every
    limit must pass, or the screen saves nothing."""
    lim = SafetyLimits().validate()
    sm = SafetyMonitor(lim, Fence.around((1.0, -2.0, 0.5), lim), cells=4)
    rng = np.random.default_rng(5)
    n = 400
    pos = np.column_stack([rng.uniform(-6, 8, n), rng.uniform(-9, 5, n), rng.uniform(0, 4, n)])
    vel = rng.normal(scale=2.0, size=(n, 3))
    tilt = np.radians(rng.uniform(0, 90, n))
    axis = rng.normal(size=(n, 3)) * [1, 1, 0]
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    quat = np.column_stack([np.cos(tilt / 2), axis * np.sin(tilt / 2)[:, None]])
    rates = rng.normal(size=(n, 3))
    # rows 0-10: level and still at the fence's centre, then on the limits, just inside and just past them
    pos[:11], vel[:11], quat[:11], rates[:11] = (1.0, -2.0, 1.5), 0.0, (1.0, 0.0, 0.0, 0.0), 0.0
    r, h, t, v = lim.fence_radius_m, lim.max_alt_m, math.radians(lim.max_tilt_deg), lim.max_speed_mps
    pos[0], pos[1] = (1.0 + r, -2.0, 1.0), (1.0 + np.nextafter(r, 9.0), -2.0, 1.0)
    pos[2], pos[3] = (1.0, -2.0, 0.5 + h), (1.0, -2.0, 0.5 + h + 1e-9)
    quat[4] = (math.cos(t / 2), math.sin(t / 2), 0.0, 0.0)
    vel[5], vel[6] = (v, 0.0, 0.0), (0.0, 0.0, -np.nextafter(v, 9.0))
    pos[7, 1], vel[8, 2], quat[9, 0], rates[10, 1] = math.nan, math.inf, math.nan, -math.inf
    ok = np.array(sm.states_pass(pos, vel, quat, rates))
    verdicts = [sm.check_state(Estimate(0.0, 0.0, p, w, q, r_, 0.01, 0.01, 0.01, False, True, "GUIDED", 2, 16.0, 0.9,
                                        True)) for p, w, q, r_ in zip(pos, vel, quat, rates)]
    assert not any(ok[i] and verdicts[i] is not None for i in range(n))
    assert [verdicts[i].kind for i in (1, 3, 6, 7, 8, 9, 10)] == ["fence", "altitude", "speed"] + [
        "observation_nonfinite"] * 4
    assert not ok[:11].any()
    clear = [i for i in range(11, n) if verdicts[i] is None]
    assert len(clear) > 30 and ok[clear].all()   # everything else the single check lets through, the screen passes
