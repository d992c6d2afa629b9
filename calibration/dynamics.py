"""Motor time constants from throttle steps: the simulator's first-order lag, rising and falling.

Model (drone_sim/csrc/quadrotor.h): dw/dt = (w_cmd - w) / tau, tau = tau_up when speeding up and
tau_down when slowing down. After a step at t0 from a settled speed w0 to a new command w1:

    w(t) = w0                                   t < t0
    w(t) = w1 + (w0 - w1) exp(-(t - t0) / tau)   t >= t0

t0 is fitted too: the laptop knows when it SENT the command, not when the flight controller's output
changed (command transport, the controller's loop, the ESC's input filter), and a fixed t0 would fold
that dead time into tau. Fitted signal: motor speed (optical sensor / ESC telemetry); without one,
sqrt(thrust), which is proportional to speed. Each step is a robust least-squares fit (variable projection:
for a given dead time and tau the two levels are linear, so (t0, tau) are searched on a grid and refined,
and Huber weights re-computed from the residuals keep a spike or a glitch from pulling the fit); a step
is rejected (and counted, with the reason) when the change is small next to the noise, the fit leaves
large residuals, or tau hits its bounds. Steps from or to a stopped motor are not used (start-up is
not a first-order lag). Per direction the estimate is the weighted mean of the accepted steps with
the larger of the internal and the scatter-based 1-sigma.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .rundata import RunData
from .segments import Segment
from .steady_fit import Estimate

TAU_BOUNDS = (2e-3, 1.0)


@dataclasses.dataclass
class StepFit:
    t_cmd: float
    throttle_from: float
    throttle_to: float
    direction: str              # "up" | "down"
    signal: str                 # "speed" | "sqrt(thrust)"
    ok: bool
    reason: str = ""
    tau: float = float("nan")
    tau_sigma: float = float("nan")
    t0: float = float("nan")
    y0: float = float("nan")
    y1: float = float("nan")
    rms: float = float("nan")
    t: np.ndarray | None = None     # samples used (for the report)
    y: np.ndarray | None = None


def step_model(t: np.ndarray, y0: float, y1: float, t0: float, tau: float) -> np.ndarray:
    dt = np.maximum(t - t0, 0.0)
    return y1 + (y0 - y1) * np.exp(-dt / tau)


def _signal(run: RunData) -> tuple[np.ndarray, np.ndarray, str]:
    if run.has_speed:
        return run.speed, run.fresh_speed, "speed"
    return np.sqrt(np.maximum(run.thrust, 0.0)), run.fresh_thrust, "sqrt(thrust)"


def _levels(t: np.ndarray, y: np.ndarray, wts: np.ndarray, t0: np.ndarray, tau: np.ndarray):
    """For every (t0, tau) pair (broadcast), the weighted-LS levels y0, y1 and the weighted squared error."""
    e = np.exp(-np.maximum(t - t0[..., None], 0.0) / tau[..., None])      # (..., n)
    a, b = e, 1.0 - e                                                       # model = y0 a + y1 b
    saa, sbb, sab = (wts * a * a).sum(-1), (wts * b * b).sum(-1), (wts * a * b).sum(-1)
    say, sby = (wts * a * y).sum(-1), (wts * b * y).sum(-1)
    det = saa * sbb - sab * sab
    det = np.where(np.abs(det) < 1e-300, np.nan, det)
    y0 = (sbb * say - sab * sby) / det
    y1 = (saa * sby - sab * say) / det
    r = y0[..., None] * a + y1[..., None] * b - y
    return y0, y1, (wts * r * r).sum(-1)


def robust_step_fit(t: np.ndarray, y: np.ndarray, t0_lo: float, t0_hi: float, tau0: float, f_scale: float,
                    iterations: int = 4):
    """Fit y = step_model(t, y0, y1, t0, tau) with Huber weights; returns (y0, y1, t0, tau, cov, residuals).

    No scipy here on purpose (not a dependency of the project): the levels are solved exactly for each
    (t0, tau) on a log/linear grid, the best cell is refined on a finer grid twice, and the covariance is
    the Gauss-Newton one, (J^T W J)^-1 s^2, with J taken by finite differences at the optimum.
    """
    t = np.asarray(t, float)
    y = np.asarray(y, float)
    if len(t) < 6:
        raise ValueError("fewer than 6 samples")
    wts = np.ones_like(y)
    best = (float("nan"),) * 4
    t0s = np.linspace(t0_lo, t0_hi, 31)
    taus = np.geomspace(TAU_BOUNDS[0], TAU_BOUNDS[1], 31)
    half_t0, half_ltau = 2 * (t0s[1] - t0s[0]), 2 * math.log(taus[1] / taus[0])
    for it in range(iterations):
        # the first pass searches the whole box; later passes (new Huber weights) zoom in from the last best
        if it > 0:
            half_t0, half_ltau = 2 * (t0_hi - t0_lo) / 30, 2 * math.log(TAU_BOUNDS[1] / TAU_BOUNDS[0]) / 30
            t0s = np.clip(np.linspace(best[2] - half_t0, best[2] + half_t0, 11), t0_lo, t0_hi)
            taus = np.clip(best[3] * np.exp(np.linspace(-half_ltau, half_ltau, 11)), *TAU_BOUNDS)
        for _zoom in range(5):
            T0, TAU = np.meshgrid(t0s, taus, indexing="ij")
            _, _, sse = _levels(t, y, wts, T0, TAU)
            sse = np.where(np.isfinite(sse), sse, np.inf)
            i, j = np.unravel_index(int(np.argmin(sse)), sse.shape)
            bt0, btau = float(T0[i, j]), float(TAU[i, j])
            half_t0, half_ltau = half_t0 / 4.0, half_ltau / 4.0
            t0s = np.clip(np.linspace(bt0 - half_t0, bt0 + half_t0, 11), t0_lo, t0_hi)
            taus = np.clip(btau * np.exp(np.linspace(-half_ltau, half_ltau, 11)), *TAU_BOUNDS)
        y0, y1, _ = _levels(t, y, wts, np.array(bt0), np.array(btau))
        best = (float(y0), float(y1), bt0, btau)
        r = step_model(t, *best) - y
        a_ = np.abs(r) / max(f_scale, 1e-12)
        wts = np.where(a_ <= 1.0, 1.0, 1.0 / np.maximum(a_, 1e-12))         # Huber weights
    p = np.array(best)
    r = step_model(t, *p) - y
    jac = np.empty((len(t), 4))
    for k in range(4):
        h = max(1e-6, 1e-4 * abs(p[k])) if k != 2 else 1e-5
        hi_p, lo_p = p.copy(), p.copy()
        hi_p[k] += h
        lo_p[k] -= h
        jac[:, k] = (step_model(t, *hi_p) - step_model(t, *lo_p)) / (2 * h)
    dof = max(1, len(t) - 4)
    s2 = float(np.sum(wts * r * r)) / dof
    jw = jac * wts[:, None]
    try:
        cov = np.linalg.inv(jac.T @ jw) * s2
    except np.linalg.LinAlgError:
        cov = np.full((4, 4), np.inf)
    return best[0], best[1], best[2], best[3], cov, r


def find_steps(segments: list[Segment], min_delta: float = 0.05, min_before: float = 0.15,
               min_after: float = 0.12) -> list[tuple[Segment, Segment]]:
    """Pairs (settled segment, next segment) whose throttle differs by at least min_delta."""
    out = []
    for a, b in zip(segments, segments[1:]):
        if abs(b.throttle - a.throttle) >= min_delta and a.duration >= min_before and b.duration >= min_after:
            out.append((a, b))
    return out


def fit_step(run: RunData, a: Segment, b: Segment, spinning: float, window: float = 0.6) -> StepFit:
    y_all, fresh, name = _signal(run)
    direction = "up" if b.throttle > a.throttle else "down"
    res = StepFit(b.t_start, a.throttle, b.throttle, direction, name, False)
    pre = min(0.15, 0.5 * a.duration)
    t_lo, t_hi = b.t_start - pre, b.t_start + min(b.duration, window)
    m = (run.t >= t_lo) & (run.t < t_hi) & fresh & np.isfinite(y_all)
    t, y = run.t[m], y_all[m]
    if len(t) < 12:
        res.reason = f"too few samples ({len(t)})"
        return res
    before = y[t < b.t_start]
    after = y[t >= b.t_start + 0.7 * (t_hi - b.t_start)]
    if len(before) < 3 or len(after) < 3:
        res.reason = "too few samples before or after the step"
        return res
    y0, y1 = float(np.median(before)), float(np.median(after))
    if min(y0, y1) < spinning:
        res.reason = "motor stopped on one side of the step"
        return res
    noise = 1.4826 * float(np.median(np.abs(before - y0))) + 1e-9
    if abs(y1 - y0) < 8 * noise:
        res.reason = f"change {abs(y1 - y0):.3g} small next to noise {noise:.3g}"
        return res
    # initial tau: time to 63 % of the change
    frac = (y - y0) / (y1 - y0)
    cross = t[(t >= b.t_start) & (frac >= 0.632)]
    tau0 = float(np.clip(cross[0] - b.t_start, 5e-3, 0.5)) if len(cross) else 0.05
    try:
        y0f, y1f, t0f, tau, cov, r = robust_step_fit(t, y, b.t_start - 0.1, b.t_start + 0.3, tau0, 3 * noise)
    except (ValueError, np.linalg.LinAlgError) as exc:
        res.reason = f"fit failed: {exc}"
        return res
    rms = float(np.sqrt(np.mean(r ** 2)))
    tau_sigma = float(math.sqrt(max(cov[3, 3], 0.0))) if np.all(np.isfinite(cov)) else float("inf")
    res.tau, res.tau_sigma, res.t0, res.y0, res.y1, res.rms, res.t, res.y = tau, tau_sigma, t0f, y0f, y1f, rms, t, y
    if tau <= TAU_BOUNDS[0] * 1.01 or tau >= TAU_BOUNDS[1] * 0.99:
        res.reason = f"tau {tau:.4f} s at its bound"
    elif rms > 0.15 * abs(y1f - y0f):
        res.reason = f"poor fit (rms {rms:.3g} vs change {abs(y1f - y0f):.3g})"
    elif not math.isfinite(tau_sigma) or tau_sigma > 0.5 * tau:
        res.reason = f"tau poorly determined ({tau:.4f} +- {tau_sigma:.4f} s)"
    elif tau > 0.6 * min(b.duration, window):
        res.reason = f"step held too short for tau {tau:.3f} s"
    else:
        res.ok = True
    return res


def combine(steps: list[StepFit], direction: str) -> Estimate | None:
    """Weighted mean of the accepted steps of one direction, robust to a stray step."""
    good = [s for s in steps if s.ok and s.direction == direction]
    if not good:
        return None
    tau = np.array([s.tau for s in good])
    sig = np.array([max(s.tau_sigma, 1e-4) for s in good])
    rejected = 0
    if len(good) >= 4:
        med = np.median(tau)
        mad = 1.4826 * np.median(np.abs(tau - med))
        keep = np.abs(tau - med) <= 4 * max(mad, 0.02 * med)
        rejected = int((~keep).sum())
        tau, sig = tau[keep], sig[keep]
    w = 1.0 / sig ** 2
    mean = float(np.sum(w * tau) / np.sum(w))
    internal = float(math.sqrt(1.0 / np.sum(w)))
    external = float(np.std(tau, ddof=1) / math.sqrt(len(tau))) if len(tau) > 1 else internal
    return Estimate(mean, max(internal, external), len(tau), rejected)
