"""Runs synthesised offline from the emulated stand (no pty, no real time): examples and fast tests.

`synth_stand_run` produces exactly what `drone-calibrate thrust-stand` records (same RunWriter, same
escaping of garbage), with the flight controller's output lagging the laptop's command by a few
milliseconds as over a real link. `synth_rcbenchmark` writes the same physics as a Tyto Robotics /
RCbenchmark log (the column set of the 1580 series software, tyto.py), sampled at `rate_hz`.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from drone_sim import GRAVITY

from .emulator import MotorTruth, StandModel, StandTruth
from .plan import PlanSegment
from .runlog import RunWriter
from .rundata import RPM_TO_RAD_S, STANDARD_GRAVITY
from .stand import printable
from .standcal import CellCal, StandCal


def truth_cal(stand: StandTruth) -> StandCal:
    """The stand calibration a perfect `drone-calibrate scale` would have written for this stand."""
    return StandCal(CellCal(stand.thrust_offset, stand.thrust_counts_per_n, 0.0, "emulator truth"),
                    CellCal(stand.torque_offset, stand.torque_counts_per_nm, 0.0, "emulator truth")
                    if stand.has_torque else None)


def _schedule(plan: list[PlanSegment]) -> tuple[np.ndarray, list[PlanSegment]]:
    starts = np.cumsum([0.0] + [s.duration for s in plan])
    return starts, plan


def synth_stand_run(path: str | Path, plan: list[PlanSegment], motor: MotorTruth | None = None,
                    stand: StandTruth | None = None, cal: StandCal | None = None, seed: int = 0,
                    fc_latency: float = 0.012, motor_number: int = 1, meta: dict | None = None) -> Path:
    model = StandModel(motor, stand, seed)
    rng = np.random.default_rng(seed + 1000)
    cal = cal or truth_cal(model.stand)
    starts, _ = _schedule(plan)
    end = starts[-1]
    info = {"motor": motor_number, "fc": "(synthesised)", "stand": "(synthesised)", "synthetic": True,
            "plan": [[s.phase, s.throttle, s.duration] for s in plan], **(meta or {})}
    w = RunWriter(path, info, cal)
    period = 1.0 / model.stand.line_rate_hz
    w.record(0.0, 0.0, "rest", 0, "# thrust-stand sketch booting")
    w.record(0.0, 0.0, "rest", 0, model.info_line())
    t = 0.0
    while t < end:
        seg_host = int(np.searchsorted(starts, t, side="right") - 1)
        seg_esc = int(np.searchsorted(starts, max(0.0, t - fc_latency), side="right") - 1)
        model.advance(t, plan[min(seg_esc, len(plan) - 1)].throttle)
        host_t = t + 0.001 + abs(rng.normal(0, 0.0005))
        s = plan[min(seg_host, len(plan) - 1)]
        for line in model.lines():
            w.record(host_t, s.throttle, s.phase, seg_host, printable(line.encode("latin-1")))
        t += period * (1 + rng.normal(0, 0.01))
    w.close({"reason": "completed", "synthetic": True})
    return Path(path)


RCB_HEADER = ["Time (s)", "ESC signal (µs)", "Servo 1 (µs)", "Servo 2 (µs)", "Servo 3 (µs)", "AccX (g)", "AccY (g)",
              "AccZ (g)", "Torque (N·m)", "Thrust (kgf)", "Voltage (V)", "Current (A)", "Motor Electrical Speed (RPM)",
              "Motor Optical Speed (RPM)", "Electrical Power (W)", "Mechanical Power (W)", "Motor Efficiency (%)",
              "Propeller Mech. Efficiency (N/W)", "Overall Efficiency (N/W)", "Vibration (g)", "App message", ""]


def synth_rcbenchmark(path: str | Path, plan: list[PlanSegment], motor: MotorTruth | None = None,
                      stand: StandTruth | None = None, seed: int = 0, rate_hz: float = 100.0,
                      bad_rows: int = 3) -> Path:
    """An RCbenchmark-style log of the plan: thrust in kgf, torque in N m (negative for this spin), both speeds."""
    stand = stand or StandTruth()
    model = StandModel(motor, stand, seed)
    rng = np.random.default_rng(seed + 2000)
    starts, _ = _schedule(plan)
    rows = []
    t = 0.0
    while t < starts[-1]:
        seg = int(np.searchsorted(starts, t, side="right") - 1)
        thr = plan[min(seg, len(plan) - 1)].throttle
        model.advance(t, thr)
        m = model.motor
        thrust = m.k_thrust * model.w ** 2
        torque = -m.k_torque * model.w ** 2
        thrust += rng.normal(0, stand.thrust_noise_n) + rng.normal(0, stand.thrust_vibration_rel) * thrust
        torque += rng.normal(0, stand.torque_noise_nm) + rng.normal(0, stand.torque_vibration_rel) * torque
        rpm = model.w / RPM_TO_RAD_S
        amps = m.current(model.w) + rng.normal(0, stand.amp_noise)
        volts = m.battery_volt - m.battery_ohm * m.current(model.w) + rng.normal(0, stand.volt_noise)
        e_rpm = rpm * (1 + rng.normal(0, stand.rpm_noise_rel)) if rpm > 300 else rng.uniform(0, 3000)
        o_rpm = rpm * (1 + rng.normal(0, stand.rpm_noise_rel)) if rpm > 100 else 0.0
        p_el = volts * amps
        p_mech = abs(torque) * model.w
        thrust_n = max(thrust, 0.0)
        rows.append([f"{t:.4f}", f"{1000 + 1000 * thr:.0f}", "1500", "1500", "1500",
                     f"{rng.normal(0, 0.02 + 0.1 * thr):.3f}", f"{rng.normal(0, 0.02 + 0.1 * thr):.3f}",
                     f"{rng.normal(1, 0.02):.3f}", f"{torque:.5f}", f"{thrust / STANDARD_GRAVITY:.5f}", f"{volts:.3f}",
                     f"{amps:.3f}", f"{e_rpm:.0f}", f"{o_rpm:.0f}", f"{p_el:.2f}", f"{p_mech:.2f}",
                     f"{100 * p_mech / p_el:.1f}" if p_el > 1 else "",
                     f"{thrust_n / p_mech:.3f}" if p_mech > 1 else "",
                     f"{thrust_n / p_el:.3f}" if p_el > 1 else "", f"{abs(rng.normal(0, 0.05 + 0.3 * thr)):.3f}",
                     "", ""])
        t += 1.0 / rate_hz
    # a few damaged rows, as an interrupted USB transfer or a hand edit leaves them
    for k in range(bad_rows):
        i = int(rng.integers(len(rows) // 4, 3 * len(rows) // 4))
        if k % 2 == 0:
            rows[i] = rows[i][:9] + ["#VALUE!"] + rows[i][10:]      # spreadsheet error in the thrust cell
        else:
            rows[i] = ["", "1450", "garbled"]
    if rows:
        rows[len(rows) // 2][1] = ""    # a row without ESC signal
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\r\n")
        out.writerow(RCB_HEADER)
        out.writerows(rows)
    return p


def expected_hover_speed(motor: MotorTruth, mass: float, g: float = GRAVITY) -> float:
    return math.sqrt(mass * g / (4 * motor.k_thrust))
