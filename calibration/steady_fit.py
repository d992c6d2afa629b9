"""Steady-state fits: thrust and torque coefficients, the throttle-to-speed map, maximum speed and thrust.

- k_T: thrust = k_T w^2 through the origin (the run is re-tared at rest, so a free offset would only
  absorb curvature), weighted by each point's standard error, with iterative rejection of points more
  than 4 robust sigmas off the line (counted). The 1-sigma is the weighted-LS one, inflated by the
  square root of the reduced chi-square when the points scatter more than their error bars say (model
  error, drift), and combined with the load cell's scale uncertainty from the stand calibration.
- k_Q: the same for |torque| = k_Q w^2.
- throttle -> speed: quadratic least squares over the points where the motor spins; spin start is where
  it crosses zero; omega_max is its value at full throttle (an extrapolation when the run was capped
  below 1, and its 1-sigma grows accordingly: the report says so).
- maximum thrust per motor: k_T omega_max^2.
- thrust curve exponent (ArduPilot MOT_THST_EXPO / PX4 THR_MDL_FAC): thrust/thrust_max =
  (1 - e) x + e x^2 over throttle x rescaled from spin start to 1.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .segments import SteadyPoint


@dataclasses.dataclass
class Estimate:
    value: float
    sigma: float                      # 1-sigma, same unit as value
    n: int = 0
    rejected: int = 0
    note: str = ""

    @property
    def rel(self) -> float:
        return abs(self.sigma / self.value) if self.value else float("inf")

    def __format__(self, spec: str) -> str:
        spec = spec or ".4g"
        return f"{self.value:{spec}} +- {self.sigma:{spec}}"


class FitError(ValueError):
    """Not enough usable data for a fit; the message says what is missing."""


def fit_through_origin(x: np.ndarray, y: np.ndarray, sigma: np.ndarray, k_reject: float = 4.0) -> tuple[Estimate, np.ndarray]:
    """y = k x by weighted least squares with robust point rejection; returns (k, kept mask)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    s = np.maximum(np.asarray(sigma, float), 1e-12)
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(s)
    if keep.sum() < 2:
        raise FitError(f"only {int(keep.sum())} usable points")
    for _ in range(10):
        w = 1.0 / s[keep] ** 2
        k = float(np.sum(w * x[keep] * y[keep]) / np.sum(w * x[keep] ** 2))
        z = (y - k * x) / s
        zk = z[keep]
        scale = max(1.0, 1.4826 * float(np.median(np.abs(zk - np.median(zk)))))
        new = keep & (np.abs(z) <= k_reject * scale)
        if new.sum() < max(2, int(0.5 * keep.sum())) or np.array_equal(new, keep):
            break
        keep = new
    w = 1.0 / s[keep] ** 2
    k = float(np.sum(w * x[keep] * y[keep]) / np.sum(w * x[keep] ** 2))
    dof = max(1, int(keep.sum()) - 1)
    chi2 = float(np.sum(w * (y[keep] - k * x[keep]) ** 2)) / dof
    se = math.sqrt(1.0 / float(np.sum(w * x[keep] ** 2))) * math.sqrt(max(1.0, chi2))
    n_valid = int((np.isfinite(x) & np.isfinite(y)).sum())
    return Estimate(k, se, int(keep.sum()), n_valid - int(keep.sum())), keep


def _pick(points: list[SteadyPoint], name: str, min_speed: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(w^2, y, sigma_y, w) over the points with speed and `name`, spinning faster than min_speed."""
    rows = []
    for p in points:
        m = getattr(p, name)
        if p.speed is None or m is None or p.speed.value < min_speed:
            continue
        w = p.speed.value
        # error of y plus the error of w^2 carried through the slope (effective variance), filled in later
        rows.append((w * w, m.value, m.se, w, p.speed.se))
    if not rows:
        return (np.zeros(0),) * 4
    a = np.asarray(rows, float)
    return a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4]


def fit_coefficient(points: list[SteadyPoint], name: str, min_speed: float, scale_sigma_rel: float = 0.0,
                    magnitude: bool = False) -> tuple[Estimate, np.ndarray, bool]:
    """k in y = k w^2 for y = thrust or torque; returns (k, kept mask over the used points, flipped)."""
    picked = _pick(points, name, min_speed)
    if len(picked[0]) < 3:
        raise FitError(f"{name}: only {len(picked[0])} steady points with motor speed above {min_speed:.0f} rad/s "
                       f"(need 3; longer holds or more throttle levels)")
    w2, y, sy, w, sw = picked
    flipped = False
    if magnitude or np.sum(y * w2) < 0:
        flipped = bool(np.sum(y * w2) < 0)
        y = np.abs(y)
    k0 = float(np.sum(y * w2) / np.sum(w2 * w2))
    sigma = np.sqrt(sy ** 2 + (k0 * 2.0 * w * sw) ** 2 + (1e-4 * np.abs(y)) ** 2)
    est, keep = fit_through_origin(w2, y, sigma)
    if scale_sigma_rel > 0:
        est.sigma = abs(est.value) * math.hypot(est.rel, scale_sigma_rel)
    return est, keep, flipped


@dataclasses.dataclass
class SpeedMap:
    coef: np.ndarray            # highest power first (np.polyval)
    cov: np.ndarray
    spin_start: float           # throttle where the fitted speed is 0
    throttle_range: tuple[float, float]
    n: int

    def speed(self, x) -> np.ndarray:
        return np.polyval(self.coef, x)

    def speed_sigma(self, x: float) -> float:
        v = np.array([x ** k for k in range(len(self.coef) - 1, -1, -1)])
        return float(math.sqrt(max(0.0, v @ self.cov @ v)))

    def throttle_for(self, w: float) -> float:
        """Inverse map on the fitted branch (throttle in [spin_start, 1.5])."""
        xs = np.linspace(self.spin_start, 1.5, 3001)
        ws = self.speed(xs)
        i = int(np.searchsorted(ws, w)) if np.all(np.diff(ws) > 0) else int(np.argmin(np.abs(ws - w)))
        i = min(max(i, 1), len(xs) - 1)
        return float(np.interp(w, ws[i - 1:i + 1], xs[i - 1:i + 1]))


def fit_speed_map(points: list[SteadyPoint], min_speed: float) -> SpeedMap:
    rows = [(p.throttle, p.speed.value, max(p.speed.se, 1e-3 * p.speed.value)) for p in points
            if p.speed is not None and p.speed.value >= min_speed]
    if len(rows) < 2:
        raise FitError(f"throttle map: only {len(rows)} steady points where the motor spins")
    a = np.asarray(rows)
    x, w, s = a[:, 0], a[:, 1], a[:, 2]
    deg = 2 if len(np.unique(np.round(x, 4))) >= 4 else 1
    # the per-point errors are tiny next to the ESC's own deviations from a polynomial: scale by the residuals
    coef, cov = np.polyfit(x, w, deg, w=1.0 / s, cov="unscaled")
    resid = w - np.polyval(coef, x)
    dof = max(1, len(x) - deg - 1)
    chi2 = float(np.sum((resid / s) ** 2)) / dof
    cov = cov * max(1.0, chi2)
    roots = np.roots(coef)
    real = [float(r.real) for r in roots if abs(r.imag) < 1e-9 and -0.5 <= r.real <= x.min()]
    spin_start = max(real) if real else 0.0
    return SpeedMap(coef, cov, max(0.0, spin_start), (float(x.min()), float(x.max())), len(x))


def fit_thrust_expo(points: list[SteadyPoint], smap: SpeedMap, t_max: float) -> float | None:
    """MOT_THST_EXPO-style exponent e in T/T_max = (1 - e) x + e x^2, x = throttle rescaled from spin start."""
    rows = [(p.throttle, p.thrust.value) for p in points if p.thrust is not None and p.throttle > smap.spin_start + 0.02]
    if len(rows) < 3 or t_max <= 0:
        return None
    a = np.asarray(rows)
    x = (a[:, 0] - smap.spin_start) / (1.0 - smap.spin_start)
    y = a[:, 1] / t_max - x
    basis = x * x - x
    if np.sum(basis * basis) <= 0:
        return None
    e = float(np.sum(basis * y) / np.sum(basis * basis))
    return float(min(1.0, max(-1.0, e)))


def measured_hover_speed(points: list[SteadyPoint], thrust_per_motor: float) -> float | None:
    """Speed where the MEASURED thrust curve (no model) reaches the hover thrust: linear interpolation of
    w^2 against thrust between the two bracketing steady points (exact for T proportional to w^2)."""
    rows = sorted((p.thrust.value, p.speed.value) for p in points if p.speed is not None and p.thrust is not None
                  and p.speed.value > 0)
    if len(rows) < 2:
        return None
    T = np.array([r[0] for r in rows])
    w2 = np.array([r[1] ** 2 for r in rows])
    above = np.flatnonzero(T >= thrust_per_motor)
    below = np.flatnonzero(T < thrust_per_motor)
    if len(above) == 0 or len(below) == 0:
        return None
    i, j = below[np.argmax(T[below])], above[np.argmin(T[above])]
    if T[j] == T[i]:
        return float(math.sqrt(w2[j]))
    return float(math.sqrt(w2[i] + (w2[j] - w2[i]) * (thrust_per_motor - T[i]) / (T[j] - T[i])))
