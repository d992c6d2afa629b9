"""`drone-calibrate fit`: one or more runs -> every motor constant the simulator needs, with 1-sigmas.

Order of work: split each run into constant-throttle segments; fit the step responses first (they do not
need steady points, and they tell how long a segment needs to settle); re-tare each run at rest; average
the settled tail of each segment into a steady point; then fit thrust and torque coefficients, the
throttle-to-speed map, omega_max and maximum thrust over the pooled points of all runs (several runs of
one motor, or one run per motor of the vehicle: their scatter then shows in the 1-sigmas).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from drone_sim import GRAVITY

from .dynamics import StepFit, combine, find_steps, fit_step
from .protocol import LineStats
from .rundata import CalibrationDataError, RunData
from .segments import SteadyPoint, retare, split_segments, steady_points
from .standcal import StandCal
from .steady_fit import (Estimate, FitError, SpeedMap, fit_coefficient, fit_speed_map, fit_thrust_expo,
                         measured_hover_speed)


@dataclasses.dataclass
class FitOptions:
    settle: float | None = None          # s discarded at the start of each segment (None: 6 x the slower tau)
    min_step: float = 0.05               # throttle change that counts as a step
    k_torque: float | None = None        # fallback when the stand has no torque cell
    tau_up: float | None = None          # fallbacks when the run has no usable steps
    tau_down: float | None = None


@dataclasses.dataclass
class CalibrationResult:
    runs: list[RunData]
    points: list[tuple[int, SteadyPoint]]
    settle: float
    min_speed: float
    k_thrust: Estimate
    thrust_kept: np.ndarray
    k_torque: Estimate | None
    torque_kept: np.ndarray | None
    speed_map: SpeedMap
    omega_max: Estimate
    max_thrust: Estimate
    measured_max_thrust: float
    steps: list[StepFit]
    tau_up: Estimate | None
    tau_down: Estimate | None
    thrust_expo: float | None
    tare: list[dict]
    notes: list[str]

    @property
    def stats(self) -> LineStats:
        total = LineStats()
        for r in self.runs:
            total.good += r.stats.good
            total.comments += r.stats.comments
            total.lost_lines += r.stats.lost_lines
            total.skipped.update(r.stats.skipped)
            total.examples.extend(r.stats.examples)
        return total

    @property
    def rejected_readings(self) -> int:
        n = 0
        for _, p in self.points:
            for m in (p.speed, p.thrust, p.torque):
                n += m.rejected if m is not None else 0
        return n

    def hover(self, mass: float, g: float = GRAVITY) -> dict:
        """Hover speed per motor from the fit and from the measured curve, and the hover throttle."""
        t_h = mass * g / 4.0
        w_fit = math.sqrt(t_h / self.k_thrust.value)
        w_meas = measured_hover_speed([p for _, p in self.points], t_h)
        return {"thrust_per_motor": t_h, "speed_fit": w_fit, "speed_measured": w_meas,
                "throttle": self.speed_map.throttle_for(w_fit),
                "within_tested_range": w_meas is not None}


def load_run(path: str | Path, fmt: str = "auto", cal: StandCal | None = None, **tyto_kw) -> RunData:
    """Read a run in our recording format or a Tyto Robotics / RCbenchmark log (fmt auto detects)."""
    from .runlog import read_stand_run
    from .tyto import looks_like_rcbenchmark, read_rcbenchmark

    p = Path(path)
    if not p.exists():
        raise CalibrationDataError(f"{p}: no such file")
    if fmt == "auto":
        fmt = "rcbenchmark" if looks_like_rcbenchmark(p) else "stand"
    if fmt == "rcbenchmark":
        run = read_rcbenchmark(p, **tyto_kw)
    elif fmt == "stand":
        run = read_stand_run(p, cal)
    else:
        raise CalibrationDataError(f"unknown format {fmt!r}: use auto, stand or rcbenchmark")
    run.check()
    return run


def fit_runs(runs: list[RunData], options: FitOptions | None = None) -> CalibrationResult:
    opt = options or FitOptions()
    notes: list[str] = []
    for r in runs:
        notes.extend(f"{Path(r.source).name}: {n}" for n in r.notes)
    all_segments = [split_segments(r) for r in runs]
    vmax = max((float(np.nanmax(r.speed)) for r in runs if r.has_speed), default=float("nan"))
    if not math.isfinite(vmax) or vmax <= 0:
        raise FitError("no motor speed readings in any run: k_T needs the speed (optical RPM sensor or ESC "
                       "telemetry); thrust alone cannot separate k_T from omega_max")
    spinning = 0.05 * vmax

    steps: list[StepFit] = []
    for r, segs in zip(runs, all_segments):
        for a, b in find_steps(segs, opt.min_step):
            steps.append(fit_step(r, a, b, spinning))
    tau_up, tau_down = combine(steps, "up"), combine(steps, "down")
    if tau_up is None and opt.tau_up is not None:
        tau_up = Estimate(opt.tau_up, 0.0, 0, 0, "given (--tau-up), not measured")
    if tau_down is None and opt.tau_down is not None:
        tau_down = Estimate(opt.tau_down, 0.0, 0, 0, "given (--tau-down), not measured")

    slow = max([e.value for e in (tau_up, tau_down) if e is not None], default=0.05)
    settle = opt.settle if opt.settle is not None else min(max(0.15, 6.0 * slow), 1.5)

    tare = []
    points: list[tuple[int, SteadyPoint]] = []
    for i, (r, segs) in enumerate(zip(runs, all_segments)):
        info = retare(r, segs, settle)
        tare.append(info)
        if info["thrust"].get("rest_segments", 0) == 0:
            notes.append(f"{Path(r.source).name}: no stretch at rest: thrust zero taken from the stand calibration")
        pts = steady_points(r, segs, settle)
        points.extend((i, p) for p in pts)
    plain = [p for _, p in points]
    if len(plain) < 3:
        raise FitError(f"only {len(plain)} steady segments after discarding {settle:.2f} s of settling in each "
                       f"(hold each throttle longer, or pass a shorter --settle)")

    thrust_sig = max((r.meta.get("stand_cal", {}).get("thrust", {}).get("sigma_rel", 0.0) for r in runs), default=0.0)
    k_t, t_kept, t_flip = fit_coefficient(plain, "thrust", spinning, thrust_sig)
    if t_flip:
        notes.append("thrust came out negative (load cell mounted or calibrated the other way round): used its magnitude")
    k_q, q_kept = None, None
    if any(p.torque is not None for p in plain):
        torque_sig = max((r.meta.get("stand_cal", {}).get("torque", {}).get("sigma_rel", 0.0) for r in runs), default=0.0)
        k_q, q_kept, _ = fit_coefficient(plain, "torque", spinning, torque_sig, magnitude=True)
    elif opt.k_torque is not None:
        k_q = Estimate(opt.k_torque, 0.0, 0, 0, "given (--k-torque), not measured")
    smap = fit_speed_map(plain, spinning)
    w_max = float(smap.speed(1.0))
    w_sig = smap.speed_sigma(1.0)
    top = smap.throttle_range[1]
    omega_note = "measured at full throttle" if top >= 0.98 else f"extrapolated from throttle {top:.2f} to 1.0"
    if top < 0.98:
        # the polynomial's own covariance says nothing about the curve's shape beyond the data: add half the
        # gap to a straight line through the upper half of the points (the two bracket a concave ESC curve)
        w_sig = math.hypot(w_sig, 0.5 * abs(w_max - _linear_top_extrapolation(plain, spinning)))
    omega_max = Estimate(w_max, w_sig, smap.n, 0, omega_note)
    t_max = k_t.value * w_max ** 2
    t_max_sig = t_max * math.hypot(k_t.rel, 2.0 * w_sig / w_max)
    max_thrust = Estimate(t_max, t_max_sig, smap.n, 0, omega_note)
    measured_max = max(p.thrust.value for p in plain if p.thrust is not None)
    return CalibrationResult(runs, points, settle, spinning, k_t, t_kept, k_q, q_kept, smap, omega_max, max_thrust,
                             measured_max, steps, tau_up, tau_down, fit_thrust_expo(plain, smap, t_max), tare, notes)


def _linear_top_extrapolation(points: list[SteadyPoint], min_speed: float) -> float:
    rows = sorted((p.throttle, p.speed.value) for p in points if p.speed is not None and p.speed.value >= min_speed)
    top = rows[len(rows) // 2:] if len(rows) >= 4 else rows
    x = np.array([r[0] for r in top])
    y = np.array([r[1] for r in top])
    if len(np.unique(x)) < 2:
        return float(y.mean())
    slope, icpt = np.polyfit(x, y, 1)
    return float(slope + icpt)


def summary_lines(res: CalibrationResult) -> list[str]:
    """The result as text, one quantity per line (printed by the CLI, drawn in the report)."""
    def fmt(name, e: Estimate | None, unit, spec=".4g", scale=1.0):
        if e is None:
            return f"{name:<11} not measured"
        rel = f"({100 * e.rel:.2f} %)" if e.sigma > 0 else "(given)"
        extra = f", {e.note}" if e.note else ""
        return f"{name:<11} {e.value * scale:{spec}} +- {e.sigma * scale:{spec}} {unit} {rel}, n={e.n}{extra}"

    up_n = sum(1 for s in res.steps if s.direction == "up")
    dn_n = sum(1 for s in res.steps if s.direction == "down")
    lines = [
        fmt("k_T", res.k_thrust, "N/(rad/s)^2"),
        fmt("k_Q", res.k_torque, "N m/(rad/s)^2"),
        fmt("omega_max", res.omega_max, "rad/s", ".1f"),
        fmt("max thrust", res.max_thrust, "N per motor", ".3f"),
        fmt("tau_up", res.tau_up, "ms", ".1f", 1e3) + f" of {up_n} up-steps",
        fmt("tau_down", res.tau_down, "ms", ".1f", 1e3) + f" of {dn_n} down-steps",
        f"spin start  throttle {res.speed_map.spin_start:.3f}; map w(x) = "
        + " + ".join(f"{c:.4g} x^{len(res.speed_map.coef) - 1 - i}" for i, c in enumerate(res.speed_map.coef)),
    ]
    if res.thrust_expo is not None:
        lines.append(f"thrust expo {res.thrust_expo:.3f} (ArduPilot MOT_THST_EXPO, PX4 THR_MDL_FAC)")
    s = res.stats
    lines.append(f"data        {len(res.points)} steady points, settle {res.settle:.2f} s; "
                 f"{res.k_thrust.rejected} thrust points, {res.k_torque.rejected if res.k_torque else 0} torque points and "
                 f"{res.rejected_readings} readings rejected as outliers")
    lines.append(f"lines       {s.summary()}")
    return lines
