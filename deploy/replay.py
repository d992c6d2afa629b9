"""`drone-replay LOG`: a flight log against the simulator's one-step prediction, and the loop's timing.

    drone-replay flight-logs/flight-20260101-120000.jsonl            # LOG.png, LOG-timing.png, summary
    drone-replay LOG --out plots/flight --json summary.json
    drone-replay flight-logs/swarm-20260101-120000/                  # a swarm flight: DIR/swarm.png, summary

Every policy tick the loop logged the simulator's prediction of the *next* tick's state from this tick's
measured state and command (deploy/estimate.py OneStepPredictor). Replaying puts prediction k next to
measurement k+1: where they part is the sim-to-real gap, tick by tick (thrust or drag wrong: position
and velocity drift; rate-loop gains wrong: rates). The figures:

  LOG.png         position (x, y, z) measured, predicted, target; attitude (roll, pitch, yaw);
                  body rates; the commands (thrust and rate actions); phases and safety triggers marked
  LOG-timing.png  per-tick compute time and lateness against the period, deadline misses, histogram

Summary figures printed (and with --json written): tracking error to the target under the policy,
one-step prediction error (position, velocity, attitude, rates), compute p50/p99/max, deadline misses,
the triggers and how the flight ended. A log cut short by a crash is read up to its last whole line.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from .flightlog import FlightLogError, LogData, read_log


def _euler_deg(q: np.ndarray) -> np.ndarray:
    """(N, 4) body-to-world ENU/FLU quaternions -> (N, 3) roll, pitch, yaw in degrees (Z-Y-X, ENU/FLU)."""
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1, 1))
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return np.degrees(np.stack([roll, pitch, yaw], axis=1))


def _angle_between(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Rotation angle (deg) between unit quaternions, row by row."""
    d = np.abs(np.sum(q1 * q2, axis=1))
    return np.degrees(2 * np.arccos(np.clip(d, -1, 1)))


class Replay:
    """The arrays a replay needs, aligned: measured at k+1 against predicted at k."""

    def __init__(self, data: LogData):
        self.data = data
        st = data.steps
        self.t = data.array("t")
        self.vt = data.array("vt")
        self.pos = data.array("pos", 3)
        self.vel = data.array("vel", 3)
        self.quat = data.array("quat", 4)
        self.rates = data.array("rates", 3)
        self.target = data.array("target", 3)
        self.action = data.array("action", 4)
        self.phase = [r.get("phase", "") for r in st]
        self.pred_pos = data.nested("pred", "pos", 3)
        self.pred_vel = data.nested("pred", "vel", 3)
        self.pred_quat = data.nested("pred", "quat", 4)
        self.pred_rates = data.nested("pred", "rates", 3)
        self.compute = np.array([(r.get("timing") or {}).get("compute_ms", math.nan) for r in st], dtype=float)
        self.late = np.array([(r.get("timing") or {}).get("late_ms", math.nan) for r in st], dtype=float)
        self.miss = np.array([bool((r.get("timing") or {}).get("miss", False)) for r in st])
        self.period_ms = 1000.0 / float(data.header.get("rate_hz") or 50.0)
        # prediction k vs measurement k+1, only where both are policy ticks one period apart
        n = len(st)
        ok = np.zeros(n, dtype=bool)
        if n > 1:
            has = np.all(np.isfinite(self.pred_pos[:-1]), axis=1)
            gap = np.diff(self.vt)
            ok[1:] = has & (np.abs(gap - self.period_ms / 1000.0) < 0.5 * self.period_ms / 1000.0)
        self.pair = ok  # index i: measurement i compared with the prediction made at i - 1

    def shifted(self, a: np.ndarray) -> np.ndarray:
        """Prediction made at k, placed at k + 1 (NaN where there is no valid pair)."""
        out = np.full_like(a, np.nan)
        out[1:] = a[:-1]
        out[~self.pair] = np.nan
        return out

    def summary(self) -> dict:
        d = self.data
        pol = np.array([p == "policy" for p in self.phase])
        err = np.linalg.norm(self.pos - self.target, axis=1)
        pe = np.linalg.norm(self.pos - self.shifted(self.pred_pos), axis=1)
        ve = np.linalg.norm(self.vel - self.shifted(self.pred_vel), axis=1)
        re = np.linalg.norm(self.rates - self.shifted(self.pred_rates), axis=1)
        sq = self.shifted(self.pred_quat)
        ae = np.full(len(self.t), np.nan)
        m = np.all(np.isfinite(sq), axis=1)
        ae[m] = _angle_between(self.quat[m], sq[m])

        def stats(v: np.ndarray) -> dict:
            v = v[np.isfinite(v)]
            if not v.size:
                return {"n": 0}
            return {"n": int(v.size), "rms": round(float(np.sqrt(np.mean(v * v))), 4),
                    "p95": round(float(np.percentile(v, 95)), 4), "max": round(float(v.max()), 4)}

        c = self.compute[pol & np.isfinite(self.compute)]
        events = d.events
        out = {
            "log": str(d.path), "complete": d.complete, "torn_lines": d.torn_lines, "bad_lines": len(d.bad_lines),
            "ticks": len(d.steps), "policy_ticks": int(pol.sum()),
            "end": None if d.end is None else {"reason": d.end.get("reason"), "exit_code": d.end.get("exit_code")},
            "tracking_error_m": stats(err[pol]),
            "prediction_error": {"position_m": stats(pe), "velocity_mps": stats(ve), "attitude_deg": stats(ae),
                                 "rates_radps": stats(re)},
            "compute_ms": {} if not c.size else {"p50": round(float(np.percentile(c, 50)), 4),
                                                 "p99": round(float(np.percentile(c, 99)), 4),
                                                 "max": round(float(c.max()), 4)},
            "deadline_misses": int(self.miss.sum()),
            "period_ms": round(self.period_ms, 3),
            "triggers": [e.get("trigger", {}).get("kind") for e in events if e.get("kind") == "safety"],
        }
        if d.end is not None and isinstance(d.end.get("summary"), dict):
            out["targets"] = d.end["summary"].get("targets")
        return out


def _mark(ax, rp: Replay, x: np.ndarray) -> None:
    """Shade phases other than the policy's; mark safety triggers."""
    colors = {"takeoff": "#d0e8ff", "hold": "#ffe0b0", "return": "#ffd0d0", "landing": "#e0e0e0",
              "passive": "#f0c0f0", "dry_run": "#e8ffe0"}
    start = 0
    for i in range(1, len(rp.phase) + 1):
        if i == len(rp.phase) or rp.phase[i] != rp.phase[start]:
            c = colors.get(rp.phase[start])
            if c and i - 1 > start:
                ax.axvspan(x[start], x[i - 1], color=c, alpha=0.6, lw=0)
            start = i
    for r_i, r in enumerate(rp.data.steps):
        if "trigger" in r:
            ax.axvline(x[r_i], color="red", lw=1.0, ls="--")


def plot(rp: Replay, out_prefix: Path) -> list[Path]:
    """Write the flight and timing PNGs; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = rp.vt - (rp.vt[0] if len(rp.vt) else 0.0)
    paths = []
    fig, axes = plt.subplots(4, 3, figsize=(16, 12), sharex=True)
    names = ("x", "y", "z")
    ppos = rp.shifted(rp.pred_pos)
    for j in range(3):
        ax = axes[0, j]
        _mark(ax, rp, x)
        ax.plot(x, rp.pos[:, j], label="measured", lw=1.2)
        ax.plot(x, ppos[:, j], label="sim one-step prediction", lw=1.0, ls="--")
        ax.plot(x, rp.target[:, j], label="target", lw=1.0, color="k", alpha=0.5)
        ax.set_ylabel(f"{names[j]} (m, nav frame)")
        if j == 0:
            ax.legend(loc="best", fontsize=8)
    eu = _euler_deg(rp.quat)
    peu = _euler_deg(np.nan_to_num(rp.shifted(rp.pred_quat), nan=0.0))
    peu[~np.all(np.isfinite(rp.shifted(rp.pred_quat)), axis=1)] = np.nan
    for j, n in enumerate(("roll", "pitch", "yaw")):
        ax = axes[1, j]
        _mark(ax, rp, x)
        ax.plot(x, eu[:, j], lw=1.2, label="measured")
        ax.plot(x, peu[:, j], lw=1.0, ls="--", label="predicted")
        ax.set_ylabel(f"{n} (deg, ENU/FLU)")
    prate = rp.shifted(rp.pred_rates)
    for j, n in enumerate(("roll rate", "pitch rate", "yaw rate")):
        ax = axes[2, j]
        _mark(ax, rp, x)
        ax.plot(x, rp.rates[:, j], lw=1.0, label="measured")
        ax.plot(x, prate[:, j], lw=1.0, ls="--", label="predicted")
        ax.set_ylabel(f"{n} (rad/s, FLU)")
    ax = axes[3, 0]
    _mark(ax, rp, x)
    ax.plot(x, rp.action[:, 0], lw=1.0, color="C3")
    ax.set_ylabel("action[0] (thrust / motor 1)")
    ax.set_xlabel("vehicle time (s)")
    ax = axes[3, 1]
    _mark(ax, rp, x)
    for j in range(1, 4):
        ax.plot(x, rp.action[:, j], lw=0.8, label=f"action[{j}]")
    ax.legend(fontsize=8)
    ax.set_ylabel("rate actions [-1, 1]")
    ax.set_xlabel("vehicle time (s)")
    ax = axes[3, 2]
    _mark(ax, rp, x)
    err = np.linalg.norm(rp.pos - rp.target, axis=1)
    pe = np.linalg.norm(rp.pos - ppos, axis=1)
    ax.plot(x, err, lw=1.0, label="distance to target")
    ax.plot(x, pe * 10, lw=1.0, label="one-step prediction error x10")
    ax.set_ylabel("m")
    ax.set_xlabel("vehicle time (s)")
    ax.legend(fontsize=8)
    s = rp.summary()
    fig.suptitle(f"{rp.data.path.name}: {s['end']['reason'] if s['end'] else 'no end record (cut short)'}; "
                 "shaded: takeoff (blue), hold (orange), return (red), landing (grey), passive (violet); "
                 "red dashes: safety triggers", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    p = out_prefix.with_name(out_prefix.name + ".png")
    fig.savefig(p, dpi=80)
    plt.close(fig)
    paths.append(p)

    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    ax = axes[0]
    k = np.arange(len(rp.compute))
    ax.plot(k, rp.compute, lw=0.6, label="compute (wake -> command sent)")
    ax.plot(k, rp.late, lw=0.6, label="wake-up lateness", alpha=0.7)
    ax.axhline(rp.period_ms, color="r", lw=1, label=f"period {rp.period_ms:g} ms")
    if rp.miss.any():
        ax.plot(k[rp.miss], rp.compute[rp.miss], "rx", label=f"deadline misses ({int(rp.miss.sum())})")
    ax.set_yscale("log")
    ax.set_xlabel("tick")
    ax.set_ylabel("ms")
    ax.legend(fontsize=8)
    ax = axes[1]
    c = rp.compute[np.isfinite(rp.compute)]
    if c.size:
        ax.hist(c, bins=60, log=True)
        for q, ls in ((50, "-"), (99, "--")):
            ax.axvline(np.percentile(c, q), color="k", ls=ls, lw=1, label=f"p{q} {np.percentile(c, q):.3f} ms")
        ax.legend(fontsize=8)
    ax.set_xlabel("compute per tick (ms)")
    fig.suptitle(f"loop timing: {len(c)} ticks", fontsize=10)
    fig.tight_layout()
    p = out_prefix.with_name(out_prefix.name + "-timing.png")
    fig.savefig(p, dpi=80)
    plt.close(fig)
    paths.append(p)
    return paths


def format_summary(s: dict) -> str:
    pe = s["prediction_error"]
    lines = [f"log: {s['log']} ({'complete' if s['complete'] else 'NO END RECORD: cut short'}"
             + (f", {s['torn_lines']} torn line skipped" if s["torn_lines"] else "") + ")",
             f"ended: {s['end']['reason']} (exit {s['end']['exit_code']})" if s["end"] else "ended: unknown",
             f"ticks: {s['ticks']} ({s['policy_ticks']} under the policy), period {s['period_ms']} ms"]
    te = s["tracking_error_m"]
    if te.get("n"):
        lines.append(f"tracking error to the target (policy): rms {te['rms']} m, p95 {te['p95']} m, max {te['max']} m")
    for key, unit in (("position_m", "m"), ("velocity_mps", "m/s"), ("attitude_deg", "deg"), ("rates_radps", "rad/s")):
        v = pe[key]
        if v.get("n"):
            lines.append(f"one-step prediction error, {key.split('_')[0]}: rms {v['rms']} {unit}, p95 {v['p95']}, "
                         f"max {v['max']} ({v['n']} pairs)")
    if s["compute_ms"]:
        c = s["compute_ms"]
        lines.append(f"loop compute (policy ticks): p50 {c['p50']} ms, p99 {c['p99']} ms, max {c['max']} ms")
    lines.append(f"deadline misses: {s['deadline_misses']}")
    if s["triggers"]:
        lines.append("safety triggers: " + ", ".join(str(t) for t in s["triggers"]))
    for t in s.get("targets") or []:
        lines.append(f"target {t['index'] + 1} {t['position']}: reached after {t['time_to_reach_s']} s, "
                     f"held {t.get('held_s')} s, max error in the hold {t.get('window_max_error_m')} m"
                     + ("" if t.get("completed") else " (not completed)"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="drone-replay", description=__doc__.split("\n\n")[0])
    ap.add_argument("log", help="a drone-deploy flight log (.jsonl), or a swarm flight's directory")
    ap.add_argument("--out", help="output prefix for the PNGs (default: the log's path without .jsonl)")
    ap.add_argument("--json", help="also write the summary figures to this JSON file")
    ap.add_argument("--no-plots", action="store_true", help="summary only")
    args = ap.parse_args(argv)
    if Path(args.log).is_dir():
        return _swarm(args)
    try:
        data = read_log(args.log)
    except FlightLogError as exc:
        print(f"drone-replay: error: {exc}", file=sys.stderr)
        return 2
    if not data.steps:
        print(f"drone-replay: error: {args.log}: no control ticks in the log (refused before flying?)", file=sys.stderr)
        if data.end is not None:
            print(f"it ended: {data.end.get('reason')}", file=sys.stderr)
        return 2
    rp = Replay(data)
    s = rp.summary()
    print(format_summary(s))
    if args.json:
        Path(args.json).write_text(json.dumps(s, indent=1))
    if not args.no_plots:
        prefix = Path(args.out) if args.out else Path(args.log).with_suffix("")
        prefix.parent.mkdir(parents=True, exist_ok=True)
        for p in plot(rp, prefix):
            print(f"wrote {p}")
    return 0


def _swarm(args: argparse.Namespace) -> int:
    from .swarm.replay import SwarmReplay, format_summary as swarm_summary

    try:
        rp = SwarmReplay(args.log)
    except FlightLogError as exc:
        print(f"drone-replay: error: {exc}", file=sys.stderr)
        return 2
    s = rp.summary()
    print(swarm_summary(s))
    if args.json:
        Path(args.json).write_text(json.dumps(s, indent=1, default=str))
    if not args.no_plots:
        out = Path(args.out).with_suffix(".png") if args.out else Path(args.log) / "swarm.png"
        print(f"wrote {rp.plot(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
