"""Acceptance: the simulated thrust stand on a pty, driven through drone-sim-vehicle's motor test.

`drone-calibrate sim-stand` (a subprocess) runs the simulated flight controller (firmware_bridge's
SimVehicle, what `drone-sim-vehicle` runs) on one pty and the emulated stand sketch on another, its ESC
input wired to the vehicle's motor output; the truth constants are chosen here, not the defaults. Then
`drone-calibrate thrust-stand` (another subprocess) drives motor 1 with MAV_CMD_DO_MOTOR_TEST over real
pymavlink on the pty and records the stand's lines, garbage included; the fit must recover the truth.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from calibration.fit import fit_runs, load_run

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "calibration.cli"]
TRUTH = {"k_thrust": 6.6e-7, "k_torque": 1.07e-8, "tau_up": 0.028, "tau_down": 0.043, "kv_rpm_per_volt": 2600.0}


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def hardware(tmp_path):
    """The emulated bench: (flight-controller port, stand port, stand calibration file)."""
    fc, stand, cal = tmp_path / "ttyFC", tmp_path / "ttySTAND", tmp_path / "stand.json"
    proc = subprocess.Popen(CLI + ["sim-stand", "--motor", "1", "--seed", "5", "--truth", json.dumps(TRUTH),
                                   "--fc-link", str(fc), "--stand-link", str(stand), "--write-cal", str(cal),
                                   "--garbage", "0.02", "--duration", "90"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(), cwd=tmp_path)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while len(lines) < 3 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        assert len(lines) >= 3 and fc.exists() and stand.exists(), "sim-stand did not start: " + "".join(lines)
        yield fc, stand, cal
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_fit_recovers_truth_through_motor_test_on_pty(hardware, tmp_path):
    fc, stand, cal = hardware
    run = tmp_path / "run.csv"
    cmd = CLI + ["thrust-stand", "--stand", str(stand), "--port", str(fc), "--motor", "1", "--stand-cal", str(cal),
                 "--max-throttle", "0.8", "--levels", "6", "--hold", "0.9", "--steps", "0.3:0.6", "--step-hold", "0.5",
                 "--step-repeats", "2", "--rest", "0.7", "-o", str(run), "--yes"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "completed" in out.stdout
    text = run.read_text()
    assert text.rstrip().splitlines()[-1].startswith("# end:") and '"reason": "completed"' in text
    res = fit_runs([load_run(run)])
    assert res.stats.total_skipped > 0, "the emulator sends garbage: the reader must have skipped some"
    assert res.k_thrust.value == pytest.approx(TRUTH["k_thrust"], rel=0.03)
    assert res.k_torque.value == pytest.approx(TRUTH["k_torque"], rel=0.03)
    assert res.tau_up.value == pytest.approx(TRUTH["tau_up"], rel=0.10)
    assert res.tau_down.value == pytest.approx(TRUTH["tau_down"], rel=0.10)
    # every estimate carries a real uncertainty
    for est in (res.k_thrust, res.k_torque, res.tau_up, res.tau_down, res.omega_max):
        assert 0 < est.sigma < 0.2 * abs(est.value)
    # the recording holds the vehicle's identity and the commanded plan, and the motor was stopped at the end
    meta = json.loads(text.splitlines()[1].split(":", 1)[1])
    assert meta["motor"] == 1 and meta["vehicle"]["firmware"] == "ardupilot" and meta["max_throttle"] == 0.8
    end = json.loads(text.rstrip().splitlines()[-1].split(":", 1)[1])
    assert end["motor_stop_acknowledged"] is True


def test_cancelled_confirmation_spins_nothing(hardware, tmp_path):
    fc, stand, cal = hardware
    run = tmp_path / "never.csv"
    out = subprocess.run(CLI + ["thrust-stand", "--stand", str(stand), "--fc", str(fc), "--motor", "1", "-o", str(run),
                                "--stand-cal", str(cal)],
                         input="no\n", capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    for hazard in ("PROPELLER", "eye protection", "clamped or bolted", "LiPo", "DISARMED", "Ctrl-C"):
        assert hazard in out.stdout
    assert "cancelled" in out.stdout and not run.exists()


def test_plan_above_the_cap_and_wrong_ports_are_refused(tmp_path):
    out = subprocess.run(CLI + ["thrust-stand", "--stand", str(tmp_path / "nothing"), "--fc", "/dev/null", "--motor", "1",
                                "--max-throttle", "1.5"], capture_output=True, text=True, env=_env(), timeout=60)
    assert out.returncode == 2 and "throttle cap must be in (0, 1]" in out.stderr
    out = subprocess.run(CLI + ["thrust-stand", "--stand", str(tmp_path / "nothing"), "--fc", "/dev/null", "--motor", "1",
                                "--yes"], capture_output=True, text=True, env=_env(), timeout=60)
    assert out.returncode == 2 and "cannot open the stand's serial port" in out.stderr
    out = subprocess.run(CLI + ["thrust-stand", "--stand", str(tmp_path / "nothing"), "--fc", "/dev/null", "--motor", "1",
                                "--max-thrust", "5", "--stand-cal", str(tmp_path / "none.json")],
                         capture_output=True, text=True, env=_env(), timeout=60)
    assert out.returncode == 2 and "--max-thrust needs the stand calibration" in out.stderr
