"""Safety of `drone-calibrate thrust-stand`: the motor stops on serial loss, Ctrl-C, any exception, a thrust
limit and a dead laptop (the motor test's own timeout), and the recording is kept on disk in every case.

In-process so the test can look at what the simulated flight controller sends to the ESC; the links
are the real ones (pyserial on the stand's pty, pymavlink on the vehicle's pty).
"""
import _thread
import threading
import time

import pytest

from calibration.acquire import AcquireOptions, MotorDriver, acquire, open_stand
from calibration.emulator import StandEmulator, StandTruth, sim_stand, vehicle_esc_output
from calibration.plan import PlanSegment
from calibration.scale import ScaleError, scale_cell
from calibration.synth import truth_cal
from calibration.stand import StandPort
from firmware_bridge import MavLink

LONG = [PlanSegment("rest", 0.0, 0.3), PlanSegment("stair", 0.5, 6.0), PlanSegment("rest", 0.0, 0.3)]


def opts(out, **kw) -> AcquireOptions:
    """A long motor-test lease, so that a quick stop can only come from the explicit stop command."""
    kw.setdefault("lease", 4.0)
    return AcquireOptions(1, kw.pop("plan", LONG), out, **kw)


@pytest.fixture
def bench():
    with sim_stand(motor=1, seed=3) as hw:
        stand = open_stand(hw.stand_path)
        link = MavLink(hw.fc_path, 115200)
        try:
            link.connect(timeout=10.0, request_streams=False)
            yield hw, stand, link
        finally:
            link.close()
            stand.close()


def _esc(hw) -> float:
    return vehicle_esc_output(hw.vehicle, 1)


def _wait_spinning(hw, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if _esc(hw) > 0.4:
            return
        time.sleep(0.01)
    raise AssertionError("the motor never got its throttle")


def _later(seconds, fn):
    t = threading.Timer(seconds, fn)
    t.daemon = True
    t.start()
    return t


def _stopped_soon(hw, within=0.5) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if _esc(hw) == 0.0:
            return True
        time.sleep(0.01)
    return False


def _kept(path, reason_part):
    text = path.read_text()
    last = text.rstrip().splitlines()[-1]
    assert last.startswith("# end:") and reason_part in last, last
    rows = [ln for ln in text.splitlines() if not ln.startswith("#") and ",0.5000,stair," in ln]
    assert len(rows) > 50, "the data recorded before the stop must be on disk"
    return text


def test_serial_loss_stops_the_motor_and_keeps_the_recording(bench, tmp_path):
    hw, stand, link = bench
    out = tmp_path / "run.csv"
    _later(1.2, hw.emulator.unplug)
    res = acquire(stand, link, opts(out, cal=truth_cal(StandTruth())), log=lambda _m: None)
    assert not res.completed and "safety stop" in res.reason and "stand" in res.reason
    assert _stopped_soon(hw)
    _kept(out, "safety stop")


def test_ctrl_c_stops_the_motor(bench, tmp_path):
    hw, stand, link = bench
    out = tmp_path / "run.csv"
    _later(1.2, _thread.interrupt_main)
    res = acquire(stand, link, opts(out), log=lambda _m: None)
    assert not res.completed and "Ctrl-C" in res.reason
    assert _stopped_soon(hw)
    _kept(out, "Ctrl-C")


def test_ctrl_c_landing_in_a_library_catch_all_still_stops_the_motor(bench, tmp_path, monkeypatch):
    """A Ctrl-C that arrives while the main thread is inside a catch-all (pymavlink and pyserial have bare
    excepts) used to be swallowed there, and the plan ran on (seen once on a loaded machine)."""
    hw, stand, link = bench
    real_set, fired = MotorDriver.set, []

    def set_inside_a_catch_all(self, throttle, lease):
        try:
            if throttle > 0 and not fired:
                fired.append(True)
                _thread.interrupt_main()     # Ctrl-C, delivered while this frame runs
                time.sleep(0.05)
        except BaseException:  # noqa: BLE001 - what a library's bare except does with it
            pass
        return real_set(self, throttle, lease)

    monkeypatch.setattr(MotorDriver, "set", set_inside_a_catch_all)
    out = tmp_path / "run.csv"
    res = acquire(stand, link, opts(out), log=lambda _m: None)
    assert fired
    assert not res.completed and "Ctrl-C" in res.reason and res.duration < 3.0
    assert _stopped_soon(hw)


def test_any_exception_stops_the_motor_then_propagates(bench, tmp_path):
    hw, stand, link = bench
    out = tmp_path / "run.csv"
    real = link.commands.motor_test
    calls = {"n": 0}

    def flaky(motor, percent, seconds, count=1):
        calls["n"] += 1
        if calls["n"] == 4 and percent > 0:
            raise RuntimeError("simulated bug in the acquisition loop")
        return real(motor, percent, seconds, count)

    link.commands.motor_test = flaky
    with pytest.raises(RuntimeError, match="simulated bug"):
        acquire(stand, link, opts(out), log=lambda _m: None)
    assert _stopped_soon(hw)
    text = out.read_text()
    assert "error: RuntimeError: simulated bug" in text.rstrip().splitlines()[-1]


def test_thrust_limit_stops_the_motor(bench, tmp_path):
    hw, stand, link = bench
    out = tmp_path / "run.csv"
    res = acquire(stand, link, opts(out, cal=truth_cal(StandTruth()), max_thrust=1.0),
                  log=lambda _m: None)
    assert not res.completed and "above --max-thrust" in res.reason
    assert _stopped_soon(hw)


def test_motor_test_lease_stops_a_motor_whose_laptop_died(bench):
    hw, _stand, link = bench
    MotorDriver(link, 1).set(0.5, lease=0.8)     # then silence, as from a crashed laptop
    _wait_spinning(hw)
    time.sleep(0.4)
    assert _esc(hw) == pytest.approx(0.5)
    assert _stopped_soon(hw, within=1.0), "the flight controller's motor-test timeout must stop the motor"


def test_plan_above_the_cap_is_refused_before_anything_spins(bench, tmp_path):
    hw, stand, link = bench
    plan = [PlanSegment("stair", 0.9, 1.0)]
    with pytest.raises(ValueError, match="above the cap"):
        acquire(stand, link, opts(tmp_path / "x.csv", plan=plan, max_throttle=0.8), log=lambda _m: None)
    assert _esc(hw) == 0.0 and not (tmp_path / "x.csv").exists()


# ------------------------------------------------------------------------------------------- scale
@pytest.fixture
def still_stand():
    truth = StandTruth()
    emu = StandEmulator(lambda: 0.0, stand=truth, seed=9).start()
    port = StandPort(emu.path).open()
    try:
        port.wait_for_data()
        yield emu, port, truth
    finally:
        port.close()
        emu.close()


def test_scale_recovers_the_cells_over_the_pty(still_stand):
    emu, port, truth = still_stand
    prompts = []

    def ask(prompt):
        prompts.append(prompt)
        if len(prompts) == 2:
            emu.place_mass(0.5)
        return ""

    cell = scale_cell(port, "thrust", 0.5, seconds=1.0, ask=ask, out=lambda _m: None)
    assert cell.counts_per_unit == pytest.approx(truth.thrust_counts_per_n, rel=0.005)
    assert abs(cell.offset - truth.thrust_offset) < 0.05 * truth.thrust_counts_per_n   # within 0.05 N
    assert 0 < cell.sigma_rel < 0.01

    emu.place_mass(0.0)
    prompts.clear()

    def ask_torque(prompt):
        prompts.append(prompt)
        if len(prompts) == 2:
            emu.place_mass(0.1, lever_m=0.1)
        return ""

    cell = scale_cell(port, "torque", 0.1, lever_m=0.1, seconds=1.0, ask=ask_torque, out=lambda _m: None)
    assert cell.counts_per_unit == pytest.approx(truth.torque_counts_per_nm, rel=0.01)


def test_scale_without_the_mass_is_refused(still_stand):
    _emu, port, _truth = still_stand
    with pytest.raises(ScaleError, match="changed by only"):
        scale_cell(port, "thrust", 0.5, seconds=0.6, ask=lambda _p: "", out=lambda _m: None)


def test_scale_command_merges_cells_into_the_stand_file(still_stand, tmp_path, monkeypatch):
    from calibration import cli
    from calibration.standcal import StandCal

    emu, port, truth = still_stand
    port.close()                                  # the command opens the port itself
    answers = iter([lambda: emu.place_mass(0.0), lambda: emu.place_mass(0.3),
                    lambda: emu.place_mass(0.0), lambda: emu.place_mass(0.05, lever_m=0.12)])
    monkeypatch.setattr("builtins.input", lambda _prompt: next(answers)() or "")
    out = tmp_path / "stand.json"
    assert cli.main(["scale", "--stand", emu.path, "--mass", "0.3", "--seconds", "0.8", "-o", str(out)]) == 0
    assert cli.main(["scale", "--stand", emu.path, "--cell", "torque", "--mass", "0.05", "--lever", "0.12",
                     "--seconds", "0.8", "-o", str(out)]) == 0
    cal = StandCal.load(out)
    assert cal.thrust.counts_per_unit == pytest.approx(truth.thrust_counts_per_n, rel=0.01)
    assert cal.torque.counts_per_unit == pytest.approx(truth.torque_counts_per_nm, rel=0.02)
    assert "0.3 kg" in cal.thrust.reference and "0.12 m lever" in cal.torque.reference
