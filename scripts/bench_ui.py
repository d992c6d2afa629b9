"""Control-loop timing with the operator window open, and the window's own frame rate.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python scripts/bench_ui.py --seconds 60

Each configuration flies the same mission in real time (no lockstep: deadlines count) on a
drone-sim-vehicle it starts on a pty, with the shipped policy at its 50 Hz: three targets, 3 s hold each,
then it stays at the last, and lands after --seconds of policy flight.

  no window         drone-deploy on its own (the reference)
  window N fps      drone-ui --sim --arm at an N fps cap, 1280x720
  slow frames       the same with every frame made 40 ms slower by pure-Python busy work (it holds the GIL
                    except when the interpreter switches threads): a slow frame must not delay commands
  --realtime        the window at 30 fps with drone-deploy's --realtime: SCHED_FIFO for the flight's thread
                    (and the threads it starts), the window's thread left at normal priority

Figures: from the flight log's end record (the loop's own TimingStats: ticks, deadline misses, compute
p50/p99/max = wall time from wake-up to the command sent, the loop thread's own CPU time over that span
(compute minus CPU is time spent waiting: for a core, for the GIL), worst lateness of a wake-up) and the window's --frame-info (frames, mean fps, frame time
p50/p99/max). Prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.flightlog import read_log  # noqa: E402
from deploy.ui import launch_sim_vehicle  # noqa: E402
from drone_sim.signals import exit_status_of  # noqa: E402

MISSION = ["--target=1,1,1.5", "--target=-1,1,1", "--target=0,-1,1.2", "--hold", "3", "--then", "stay"]


def _exe(name: str) -> str:
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if exe is None:
        raise SystemExit(f"{name} is not installed (pip install -e .)")
    return exe


def run(label: str, ui: bool, seconds: float, fps: int = 60, stall_ms: float = 0.0, realtime: bool = False) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench_ui_"))
    logs, info = tmp / "logs", tmp / "info.json"
    common = [*MISSION, "--duration", str(seconds), "--log", str(logs), "--quiet"] + (["--realtime"] if realtime else [])
    sim = None
    if ui:
        cmd = [_exe("drone-ui"), "--sim", "--arm", "--exit-when-done", "--fps", str(fps), "--width", "1280",
               "--height", "720", "--frame-info", str(info), *common]
        if stall_ms:
            cmd += ["--frame-stall-ms", str(stall_ms)]
    else:
        sim, port = launch_sim_vehicle([])
        cmd = [_exe("drone-deploy"), "--port", port, "--baud", "115200", *common]
    t0 = time.monotonic()
    try:
        res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=seconds + 120)
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(timeout=10)
    wall = time.monotonic() - t0
    files = sorted(logs.glob("*.jsonl"))
    if res.returncode != 0 or not files:
        raise SystemExit(f"{label}: exit {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    end = read_log(files[-1]).end
    out = {"label": label, "wall_s": round(wall, 1), "exit": res.returncode, "timing": end["summary"]["timing"],
           "targets": [t.get("completed") for t in end["summary"].get("targets", [])]}
    if ui:
        out["frames"] = json.loads(info.read_text())["stats"]
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="policy flight per configuration")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if not os.environ.get("DISPLAY"):
        raise SystemExit("no DISPLAY: run under xvfb-run (see the docstring)")
    rows = [run("no window (drone-deploy)", False, args.seconds),
            run("window, 60 fps cap", True, args.seconds, fps=60),
            run("window, 30 fps cap", True, args.seconds, fps=30),
            run("window, 30 fps cap, +40 ms Python per frame", True, args.seconds, fps=30, stall_ms=40.0),
            run("window, 30 fps cap, --realtime (loop thread SCHED_FIFO)", True, args.seconds, fps=30, realtime=True)]
    print("| configuration | ticks | deadline misses | compute p50 / p99 / max (ms) | loop thread CPU p99 (ms) "
          "| worst wake-up lateness (ms) | window fps (mean) | frame time p50 / p99 / max (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        t, f = r["timing"], r.get("frames")
        fr = "-" if f is None else f"{f['fps_mean']:.1f}"
        ft = "-" if f is None else f"{f['frame_p50_ms']:.1f} / {f['frame_p99_ms']:.1f} / {f['frame_max_ms']:.1f}"
        print(f"| {r['label']} | {t['ticks']} | {t['misses']} | {t['compute_p50_ms']:.2f} / {t['compute_p99_ms']:.2f}"
              f" / {t['compute_max_ms']:.2f} | {t.get('cpu_p99_ms', float('nan')):.2f} | {t['max_late_ms']:.1f} | {fr} "
              f"| {ft} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(exit_status_of(main, "bench_ui"))
