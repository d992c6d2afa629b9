"""Failure injection, each ending with the vehicle landed or disarmed and the flight log intact and readable:
link cut mid-flight, garbage bytes on the line, a policy emitting NaN, a fence breach, stale telemetry,
Ctrl-C (SIGINT), the kill key (SIGQUIT), an exception inside the loop.

The vehicle is the simulated flight controller in this process (so a test can cut its radio or garble its
bytes at a chosen moment) on a real pty; drone-deploy is the console script in a subprocess, so signals and
exit codes are the real ones. The failsafe timings of the vehicle are shortened (GUID_TIMEOUT 1 s, GCS loss
2 s) to keep the tests short; the sequence is the firmware's own."""
from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest

from deploy.flightlog import read_log
from test_deploy_support import (assert_ended_on_ground, assert_log_intact, deploy_cmd, edited_policy, safety_kinds,
                                 steps_of, vehicle_armed, vehicle_in_process, wait_log_phase)

FAST_FAILSAFES = {"GUID_TIMEOUT": 1.0, "FS_GCS_TIMEOUT": 2.0}
_PROCS: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_leftover_deploy():
    """A failed test must not leave its drone-deploy holding a pty the next test gets."""
    yield
    while _PROCS:
        p = _PROCS.pop()
        if p.poll() is None:
            p.kill()
            p.wait(5)


def _start(endpoint, log_dir, *args):
    p = subprocess.Popen(deploy_cmd(endpoint, log_dir, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    _PROCS.append(p)
    return p


def _finish(proc, timeout=90):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError("drone-deploy did not finish:\n" + out[-3000:])
    return proc.returncode, out


def _log(log_dir):
    logs = sorted(log_dir.glob("flight-*.jsonl"))
    assert logs, "no flight log"
    return read_log(logs[-1])


def _wait_policy_ticks(log_path, n, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if sum(1 for raw in open(log_path, "rb") if b'"phase":"policy"' in raw and b'"type":"step"' in raw) >= n:
            return
        time.sleep(0.05)
    raise AssertionError("policy ticks did not come")


def test_link_cut_mid_flight_firmware_failsafe_lands(tmp_path):
    logs = tmp_path / "logs"
    with vehicle_in_process(params=FAST_FAILSAFES) as (vehicle, faults, endpoint):
        proc = _start(endpoint, logs, "--target", "0.5,0,1.2")
        path = wait_log_phase(logs, "policy", 40, proc)
        _wait_policy_ticks(path, 50)
        vehicle.link_enabled = False                  # the radio goes out of range, both ways
        assert not vehicle.wait_until(lambda v: not v.ap.armed, 0.5)
        # GUID_TIMEOUT levels it and holds its height; the GCS-loss failsafe (FS_GCS_ENABLE 5) then lands it
        assert vehicle.wait_until(lambda v: v.ap.failsafe == "gcs", 10), vehicle.ap.events[-10:]
        assert vehicle.wait_until(lambda v: v.ap.mode == "LAND", 10), vehicle.ap.events[-10:]
        time.sleep(0.5)
        vehicle.link_enabled = True                   # back in range while it lands
        code, out = _finish(proc)
    log = _log(logs)
    assert_log_intact(log)
    assert "link_lost" in safety_kinds(log), out[-2000:]
    assert code == 1, out[-2000:]
    passive = steps_of(log, "passive")
    assert passive and all(s["cmd"] is None and not s["sent"] for s in passive)  # nothing sent once the link went
    assert_ended_on_ground(log)
    assert not vehicle_armed(vehicle)


def test_frozen_laptop_is_logged_as_the_laptop_not_the_vehicle(tmp_path):
    """drone-deploy stopped (SIGSTOP) in flight until the vehicle lands itself, as a laptop that freezes: the vehicle hears no
    heartbeat, its GCS failsafe lands it; once drone-deploy runs again its log says that drone-deploy did
    not run (laptop_stalled), not that the vehicle went quiet, and it watches the firmware land."""
    logs = tmp_path / "logs"
    with vehicle_in_process(params=FAST_FAILSAFES) as (vehicle, faults, endpoint):
        proc = _start(endpoint, logs, "--target", "0.5,0,1.2")
        path = wait_log_phase(logs, "policy", 40, proc)
        _wait_policy_ticks(path, 50)
        proc.send_signal(signal.SIGSTOP)
        try:
            assert vehicle.wait_until(lambda v: v.ap.failsafe == "gcs" and v.ap.mode == "LAND", 10), \
                vehicle.ap.events[-10:]
            time.sleep(1.0)
        finally:
            proc.send_signal(signal.SIGCONT)
        code, out = _finish(proc)
    log = _log(logs)
    assert_log_intact(log)
    kinds = safety_kinds(log)
    assert kinds[0] == "laptop_stalled" and "link_lost" not in kinds, (kinds, out[-2000:])
    trig = next(e["trigger"] for e in log.events if e.get("kind") == "safety")
    assert trig["value"] > 1.5 and "drone-deploy did not run" in trig["detail"]
    assert code == 1, out[-2000:]
    assert_ended_on_ground(log)
    assert not vehicle_armed(vehicle)


def test_garbage_bytes_both_ways_flight_completes(tmp_path):
    logs = tmp_path / "logs"
    with vehicle_in_process() as (vehicle, faults, endpoint):
        faults.garbage = 0.05  # 5 % of frames: a flipped bit, and a burst of random bytes after 5 %
        code, out = _finish(_start(endpoint, logs, "--target", "0.5,0,1.2", "--target", "0,0.5,1.2", "--hold", "2"))
        garbage = faults.garbage_bytes
    log = _log(logs)
    assert_log_intact(log)
    assert code == 0, out[-2000:]
    assert garbage > 100
    link = log.end["summary"]["link"]
    assert link["garbage_bytes"] + link["crc_errors"] + link["bad_frames"] > 0, link
    assert [t["completed"] for t in log.end["summary"]["targets"]] == [True, True]
    assert_ended_on_ground(log)


def test_policy_emitting_nan_holds_then_lands(tmp_path):
    logs = tmp_path / "logs"
    pol = edited_policy(tmp_path / "nan.onnx", nan_above_m=1.15)
    with vehicle_in_process() as (vehicle, faults, endpoint):
        code, out = _finish(_start(endpoint, logs, "--policy", str(pol), "--target", "0,0,1.5"))
    log = _log(logs)
    assert_log_intact(log)
    assert code == 1, out[-2000:]
    assert safety_kinds(log) == ["action_nonfinite"]
    bad = [s for s in log.steps if s.get("trigger") == "action_nonfinite"]
    assert len(bad) == 1 and all(np.isnan(bad[0]["action"])) and bad[0]["cmd"] is None and not bad[0]["sent"]
    # nothing the policy said was sent after it: the firmware holds, then lands
    after = log.steps[log.steps.index(bad[0]) + 1:]
    assert all(s["cmd"] is None for s in after)
    assert [s["phase"] for s in after][0] == "hold" and any(s["mode"] == "BRAKE" for s in after)
    assert any(s["mode"] == "LAND" for s in after)
    assert_ended_on_ground(log)


def test_fence_breach_returns_inside_and_lands(tmp_path):
    """A policy that chases a target always 2 m east of itself (its observation shifted) leaves a 2 m fence: the
    safety layer takes over, the firmware's position controller flies back inside, then lands."""
    logs = tmp_path / "logs"
    pol = edited_policy(tmp_path / "runaway.onnx", target_offset_world=(2.0, 0.0, 0.0))
    with vehicle_in_process() as (vehicle, faults, endpoint):
        code, out = _finish(_start(endpoint, logs, "--policy", str(pol), "--fence", "2", "--target", "0,0,1.2",
                                   "--safety", "max_speed_mps=20", "--safety", "max_tilt_deg=85"))
    log = _log(logs)
    assert_log_intact(log)
    assert code == 1, out[-2000:]
    assert safety_kinds(log) == ["fence"], out[-2000:]
    ret = steps_of(log, "return")
    assert ret and all(s["cmd"]["msg"] == "SET_POSITION_TARGET_LOCAL_NED" for s in ret)
    land = steps_of(log, "landing")
    assert np.hypot(*land[0]["pos"][:2]) < 2.0 - 0.3, "landed outside the fence"
    assert_ended_on_ground(log)


def test_stale_telemetry_holds_and_lands(tmp_path):
    logs = tmp_path / "logs"
    from pymavlink.dialects.v20 import ardupilotmega as mavlink

    with vehicle_in_process() as (vehicle, faults, endpoint):
        proc = _start(endpoint, logs, "--target", "0.5,0,1.2")
        path = wait_log_phase(logs, "policy", 40, proc)
        _wait_policy_ticks(path, 50)
        # attitude and position stop coming; heartbeats and status still do
        faults.drop_ids = {mavlink.MAVLINK_MSG_ID_ATTITUDE_QUATERNION, mavlink.MAVLINK_MSG_ID_LOCAL_POSITION_NED,
                           mavlink.MAVLINK_MSG_ID_ATTITUDE}
        code, out = _finish(proc)
    log = _log(logs)
    assert_log_intact(log)
    assert code == 1, out[-2000:]
    assert safety_kinds(log) == ["stale_telemetry"], out[-2000:]
    trig = next(s for s in log.steps if s.get("trigger"))
    assert trig["cmd"] is None and max(trig["age"]) > 0.25
    assert any(s["mode"] == "BRAKE" for s in steps_of(log, "hold"))
    assert_ended_on_ground(log)
    assert not vehicle_armed(vehicle)


@pytest.mark.parametrize("sig, code, phase", [(signal.SIGINT, 0, "landing"), (signal.SIGQUIT, 4, "kill")])
def test_ctrl_c_lands_and_kill_key_disarms(tmp_path, sig, code, phase):
    logs = tmp_path / "logs"
    with vehicle_in_process() as (vehicle, faults, endpoint):
        proc = _start(endpoint, logs, "--target", "0.5,0,1.2")
        path = wait_log_phase(logs, "policy", 40, proc)
        _wait_policy_ticks(path, 50)
        proc.send_signal(sig)
        got, out = _finish(proc)
        assert vehicle.wait_until(lambda v: not v.ap.armed, 5)
    log = _log(logs)
    assert_log_intact(log)
    assert got == code, out[-2000:]
    assert phase in [e["phase"] for e in log.events if e.get("kind") == "phase"], f"no {phase} phase"
    if sig == signal.SIGINT:
        assert any(s["mode"] == "LAND" for s in steps_of(log, "landing"))
        assert steps_of(log, "landing")[-1]["pos"][2] < 0.15
        assert log.end["reason"].startswith("operator: Ctrl-C")
    else:
        assert log.end["reason"].startswith("killed")
    assert log.end["summary"]["armed_at_end"] is False


def test_exception_inside_the_loop_holds_then_lands(tmp_path):
    """onnxruntime raises inside the tick (the graph fails at run time once above 1.15 m)."""
    logs = tmp_path / "logs"
    pol = edited_policy(tmp_path / "raises.onnx", raise_above_m=1.15)
    with vehicle_in_process() as (vehicle, faults, endpoint):
        code, out = _finish(_start(endpoint, logs, "--policy", str(pol), "--target", "0,0,1.5"))
    log = _log(logs)
    assert_log_intact(log)
    assert code == 1, out[-2000:]
    assert safety_kinds(log) == ["exception"], out[-2000:]
    errors = [e for e in log.events if e.get("kind") == "error"]
    assert errors and "in the control loop" in errors[0]["detail"]
    assert any(s["mode"] == "BRAKE" for s in steps_of(log, "hold"))
    assert_ended_on_ground(log)


def test_log_of_a_killed_process_is_readable(tmp_path):
    """kill -9 of drone-deploy mid-flight (no end record): the log reads back up to the last whole line,
    and the vehicle's setpoint-loss failsafe lands it."""
    logs = tmp_path / "logs"
    with vehicle_in_process(params=FAST_FAILSAFES) as (vehicle, faults, endpoint):
        proc = _start(endpoint, logs, "--target", "0.5,0,1.2")
        path = wait_log_phase(logs, "policy", 40, proc)
        _wait_policy_ticks(path, 30)
        proc.kill()
        proc.communicate()
        assert vehicle.wait_until(lambda v: not v.ap.armed, 20)
    log = read_log(path)
    assert log.end is None and len(steps_of(log, "policy")) >= 30
    assert log.torn_lines <= 1 and not log.bad_lines
