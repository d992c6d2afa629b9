"""`drone-replay flight-logs/swarm-TIME/`: a swarm flight read back from its directory.

Every vehicle's log is a single-flight log (drone-replay reads each on its own: the one-step prediction is
not run in a swarm flight, its tracking and timing are); this puts them side by side. All vehicles were
ticked by one loop, so record k of every log is the same tick. The figure (DIR/swarm.png):

  top view      each vehicle's track in the swarm frame, its slot(s) marked, takeoff points as squares
  slot error    each vehicle's distance to its target, phases as in single-flight replays
  separation    the smallest distance between any two airborne vehicles, tick by tick, against the guard's
                minimum; guard trips marked
  height        each vehicle's height

Summary (printed, and with --json written): the swarm.json figures and each vehicle's tracking error,
triggers and outcome.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..flightlog import FlightLogError, LogData, read_log

AIRBORNE = ("takeoff", "ready", "policy", "hold", "landing", "passive")


class SwarmReplay:
    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        path = self.dir / "swarm.json"
        try:
            self.summary_json = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise FlightLogError(f"{self.dir}: not a swarm flight directory ({path.name}: {exc})") from None
        self.logs: dict[int, LogData] = {}
        for f in sorted(self.dir.glob("vehicle-*.jsonl"), key=lambda p: int(p.stem.split("-")[1])):
            self.logs[int(f.stem.split("-")[1])] = read_log(f)
        if not self.logs:
            raise FlightLogError(f"{self.dir}: no vehicle-*.jsonl logs")
        n = min(len(d.steps) for d in self.logs.values())
        self.n = n
        self.t = np.arange(n) / float(next(iter(self.logs.values())).header.get("rate_hz") or 50.0)
        self.pos = {k: d.array("pos", 3)[:n] for k, d in self.logs.items()}
        self.target = {k: d.array("target", 3)[:n] for k, d in self.logs.items()}
        self.phase = {k: [s.get("phase") for s in d.steps[:n]] for k, d in self.logs.items()}

    def pair_min_distance(self) -> np.ndarray:
        """Smallest distance between two airborne vehicles at each tick (NaN with fewer than two airborne)."""
        ids = list(self.logs)
        out = np.full(self.n, math.nan)
        for i in range(self.n):
            up = [k for k in ids if self.phase[k][i] in AIRBORNE and np.all(np.isfinite(self.pos[k][i]))]
            best = math.inf
            for a in range(len(up)):
                for b in range(a + 1, len(up)):
                    best = min(best, float(np.linalg.norm(self.pos[up[a]][i] - self.pos[up[b]][i])))
            if math.isfinite(best):
                out[i] = best
        return out

    def summary(self) -> dict:
        s = dict(self.summary_json)
        per = []
        for k, d in self.logs.items():
            pol = np.array([p == "policy" for p in self.phase[k]])
            err = np.linalg.norm(self.pos[k] - self.target[k], axis=1)[pol]
            err = err[np.isfinite(err)]
            per.append({"sysid": k, "ticks": len(d.steps), "policy_ticks": int(pol.sum()),
                        "tracking_error_m": None if not err.size else {
                            "rms": round(float(np.sqrt(np.mean(err ** 2))), 3),
                            "p95": round(float(np.percentile(err, 95)), 3)},
                        "triggers": [e.get("trigger", {}).get("kind") for e in d.events if e.get("kind") == "safety"],
                        "separation_holds": sum(1 for e in d.events if e.get("kind") == "separation"),
                        "end": None if d.end is None else d.end.get("reason")})
        md = self.pair_min_distance()
        s["replay"] = {"vehicles": per, "min_pair_distance_m": None if np.all(np.isnan(md)) else
                       round(float(np.nanmin(md)), 3)}
        return s

    def plot(self, out: Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 2, figsize=(14, 10))
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        ax = axes[0, 0]
        for c, (k, p) in zip(colors * 4, self.pos.items()):
            up = np.array([ph in AIRBORNE for ph in self.phase[k]])
            ax.plot(p[up, 0], p[up, 1], lw=1.0, color=c, label=f"sysid {k}")
            ax.plot(p[0, 0], p[0, 1], "s", color=c)
            pol = np.array([ph == "policy" for ph in self.phase[k]])
            if pol.any():
                last = np.where(pol)[0][-1]
                ax.plot(self.target[k][last, 0], self.target[k][last, 1], "x", color=c, ms=10, mew=2)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("east (m, swarm frame)")
        ax.set_ylabel("north (m)")
        ax.set_title("tracks (squares: homes, crosses: slots)")
        ax.legend(fontsize=8)
        ax = axes[0, 1]
        for c, k in zip(colors * 4, self.pos):
            pol = np.array([ph == "policy" for ph in self.phase[k]])
            err = np.linalg.norm(self.pos[k] - self.target[k], axis=1)
            err[~pol] = np.nan
            ax.plot(self.t, err, lw=1.0, color=c, label=f"sysid {k}")
        ax.set_ylabel("distance to target under the policy (m)")
        ax.set_title("slot error")
        ax.legend(fontsize=8)
        ax = axes[1, 0]
        md = self.pair_min_distance()
        ax.plot(self.t, md, lw=1.0, color="k", label="closest pair")
        sep = self.summary_json.get("separation") or {}
        if sep.get("min_separation_m"):
            ax.axhline(sep["min_separation_m"], color="r", ls="--", label="guard minimum")
        for k, d in self.logs.items():
            for e in d.events:
                if e.get("kind") == "separation" and isinstance(e.get("t"), (int, float)):
                    ax.axvline(float(e["t"]) - float(d.steps[0]["t"]), color="orange", lw=0.6, alpha=0.6)
        ax.set_ylabel("smallest distance between airborne vehicles (m)")
        ax.set_xlabel("time (s)")
        ax.set_title("separation (orange: guard trips)")
        ax.legend(fontsize=8)
        ax = axes[1, 1]
        for c, (k, p) in zip(colors * 4, self.pos.items()):
            ax.plot(self.t, p[:, 2], lw=1.0, color=c, label=f"sysid {k}")
        ax.set_ylabel("height (m, swarm frame)")
        ax.set_xlabel("time (s)")
        ax.set_title("height")
        fig.suptitle(f"{self.dir.name}: {self.summary_json.get('reason')}")
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=90)
        plt.close(fig)
        return out


def format_summary(s: dict) -> str:
    sep = s.get("separation") or {}
    fe = s.get("formation_error_m") or {}
    t = s.get("timing") or {}
    lines = [f"swarm flight: {len(s.get('vehicles', []))} vehicles, ended: {s.get('reason')} (exit {s.get('exit_code')})",
             f"formation {((s.get('formation') or {}).get('formation'))}: reached after "
             f"{s.get('formation_reached_s')} s; slot error mean {fe.get('mean')} m, p95 {fe.get('p95')} m",
             f"separation: smallest distance {sep.get('min_distance_m')} m (guard minimum {sep.get('min_separation_m')} m, "
             f"{sep.get('trips')} trips)"]
    if t:
        lines.append(f"loop: {t.get('rate_hz')} Hz, compute p50 {t.get('compute_p50_ms')} ms, p99 "
                     f"{t.get('compute_p99_ms')} ms, deadline misses {t.get('misses')}")
    for v in s.get("replay", {}).get("vehicles", []):
        te = v["tracking_error_m"] or {}
        lines.append(f"  sysid {v['sysid']}: {v['policy_ticks']} policy ticks, tracking rms {te.get('rms')} m, "
                     f"{v['separation_holds']} separation holds, triggers {v['triggers'] or 'none'}; {v['end']}")
    return "\n".join(lines)
