"""The PNG report of a fit: the data next to every fitted curve, so a bad fit is seen, not just trusted.

Panels: the run over time (throttle, thrust, speed; the averaged windows shaded), thrust and torque
against motor speed with the fitted k w^2 (outlier points marked), throttle -> speed map with spin
start, every step response normalised to 0..1 against time since the fitted start with the two
first-order curves, and the summary text with the line counts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .fit import CalibrationResult, summary_lines


def write_report(res: CalibrationResult, path: str | Path, title: str = "") -> Path:
    """Draw the report and save it as PNG (matplotlib, Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(15, 11), dpi=100)
    gs = fig.add_gridspec(3, 3, height_ratios=[1.0, 1.0, 0.75], hspace=0.38, wspace=0.28)
    _timeline(fig.add_subplot(gs[0, :]), res)
    _coefficient(fig.add_subplot(gs[1, 0]), res, "thrust", res.k_thrust, res.thrust_kept, "thrust (N)")
    ax = fig.add_subplot(gs[1, 1])
    if res.k_torque is not None and res.torque_kept is not None:
        _coefficient(ax, res, "torque", res.k_torque, res.torque_kept, "|torque| (N m)")
    else:
        ax.text(0.5, 0.5, "no torque cell: k_Q not measured", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    _steps(fig.add_subplot(gs[1, 2]), res)
    _speed_map(fig.add_subplot(gs[2, 0]), res)
    ax = fig.add_subplot(gs[2, 1:])
    ax.set_axis_off()
    ax.text(0.0, 1.0, "\n".join(summary_lines(res) + res.notes[:4]), family="monospace", fontsize=8.5,
            va="top", ha="left", transform=ax.transAxes, wrap=True)
    sources = ", ".join(Path(r.source).name for r in res.runs)
    fig.suptitle(title or f"drone-calibrate fit: {sources}", fontsize=13)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    plt.close(fig)
    return p


def _timeline(ax, res: CalibrationResult) -> None:
    r = res.runs[0]
    t = r.t - r.t[0]
    ax.plot(t[r.fresh_thrust], r.thrust[r.fresh_thrust], ".", ms=1.5, color="tab:blue", label="thrust (N)")
    ax.set_xlabel("time (s)" + (f"  (first of {len(res.runs)} runs)" if len(res.runs) > 1 else ""))
    ax.set_ylabel("thrust (N)", color="tab:blue")
    for k, p in res.points:
        if k == 0:
            ax.axvspan(p.t0 - r.t[0], p.t1 - r.t[0], color="0.85", zorder=0)
    ax2 = ax.twinx()
    ax2.plot(t, r.throttle, "-", color="tab:red", lw=1.0, label="throttle command")
    if r.has_speed:
        ax2.plot(t[r.fresh_speed], r.speed[r.fresh_speed] / np.nanmax(r.speed), ".", ms=1, color="tab:green",
                 label="speed / max")
    ax2.set_ylabel("throttle, speed fraction")
    ax2.set_ylim(-0.05, 1.1)
    ax.set_title("run: thrust (blue), throttle command (red), speed (green); grey = averaged windows")


def _coefficient(ax, res: CalibrationResult, name: str, est, kept: np.ndarray, ylabel: str) -> None:
    rows = [(p.speed.value, abs(getattr(p, name).value), getattr(p, name).se) for _, p in res.points
            if p.speed is not None and getattr(p, name) is not None and p.speed.value >= res.min_speed]
    if not rows:
        return
    a = np.asarray(rows)
    kept = np.asarray(kept, bool)[: len(a)]
    ax.errorbar(a[kept, 0], a[kept, 1], yerr=a[kept, 2], fmt="o", ms=4, label="steady points")
    if (~kept).any():
        ax.plot(a[~kept, 0], a[~kept, 1], "x", color="red", ms=8, label="rejected as outliers")
    w = np.linspace(0, a[:, 0].max() * 1.05, 200)
    k = est.value
    ax.plot(w, k * w ** 2, "k-", lw=1, label=f"k w^2, k = {k:.4g} +- {100 * est.rel:.2f} %")
    ax2 = ax.inset_axes([0.58, 0.08, 0.38, 0.3])
    resid = a[:, 1] - k * a[:, 0] ** 2
    ax2.plot(a[:, 0], 100 * resid / np.maximum(k * a[:, 0] ** 2, 1e-12), ".", ms=4)
    ax2.axhline(0, color="k", lw=0.5)
    ax2.set_title("residual %", fontsize=7)
    ax2.tick_params(labelsize=6)
    ax.set_xlabel("motor speed (rad/s)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{name} vs speed")
    ax.legend(fontsize=7, loc="upper left")


def _steps(ax, res: CalibrationResult) -> None:
    colors = {"up": "tab:orange", "down": "tab:purple"}
    shown = {"up": 0, "down": 0}
    for s in res.steps:
        if not s.ok or s.t is None or shown[s.direction] >= 12:
            continue
        shown[s.direction] += 1
        x = (s.t - s.t0) * 1e3
        y = (s.y - s.y0) / (s.y1 - s.y0)
        ax.plot(x, y, ".", ms=2, color=colors[s.direction], alpha=0.5)
    x = np.linspace(0, 300, 300)
    for direction, est in (("up", res.tau_up), ("down", res.tau_down)):
        if est is not None:
            ax.plot(x, 1 - np.exp(-x / (1e3 * est.value)), "-", color=colors[direction], lw=1.5,
                    label=f"tau_{direction} {1e3 * est.value:.1f} +- {1e3 * est.sigma:.1f} ms")
    n_bad = sum(1 for s in res.steps if not s.ok)
    ax.set_xlim(-50, 300)
    ax.set_xlabel("time since the fitted step start (ms)")
    ax.set_ylabel("normalised response")
    ax.set_title(f"steps ({sum(shown.values())} shown, {n_bad} not usable)")
    ax.legend(fontsize=7, loc="lower right")


def _speed_map(ax, res: CalibrationResult) -> None:
    rows = [(p.throttle, p.speed.value) for _, p in res.points if p.speed is not None]
    if rows:
        a = np.asarray(rows)
        ax.plot(a[:, 0], a[:, 1], "o", ms=4, label="steady points")
    sm = res.speed_map
    x = np.linspace(sm.spin_start, 1.0, 200)
    ax.plot(x, sm.speed(x), "k-", lw=1, label="fitted map")
    lo, hi = sm.throttle_range
    if hi < 0.999:
        xe = np.linspace(hi, 1.0, 50)
        ax.plot(xe, sm.speed(xe), "r--", lw=1.5, label="extrapolated (beyond the cap)")
    ax.axvline(sm.spin_start, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("throttle (motor test fraction)")
    ax.set_ylabel("speed (rad/s)")
    ax.set_title(f"throttle -> speed; spin start {sm.spin_start:.3f}")
    ax.legend(fontsize=7, loc="upper left")
