#!/usr/bin/env python3
"""Ocean env throughput on ONE core: env steps per second through the vector binding.

For each env of drone_sim.ocean.ENVS, NUM_ENVS envs (default 4096) of the env's default agent count are
stepped with pre-generated uniformly random actions (a ring of frames copied into the action buffer at every
step, as a trainer writes its policy's actions; the copy is inside the timed loop) for a few timing windows,
pinned to one core. An env step advances one env (all its agents) by one step; multi-agent envs also report
agent steps. The figure is the median window, in wall-clock time and per CPU-second of the benchmark thread
(the two agree on an idle machine; the load average is printed). The target of every env is >= 1,000,000 env
steps/s.

Usage:
  python3 scripts/bench_ocean.py                       all envs, about 2 s each
  python3 scripts/bench_ocean.py --envs pong,snake --seconds 1 --markdown
  options: --num-envs 4096  --windows 5  --cpu 1
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drone_sim.ocean import ENVS, make_ocean  # noqa: E402
from drone_sim.signals import exit_status_of  # noqa: E402

FRAMES = 64


def bench(name: str, num_envs: int, seconds: float, windows: int, seed: int = 0) -> dict:
    env = make_ocean(name, num_envs=num_envs, seed=seed)
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, env.num_actions, (FRAMES, env.num_agents)).astype(np.int32)
    actions, step = env.actions, env._c.step

    def run(steps: int) -> tuple[float, float]:
        """Wall-clock and this thread's CPU seconds for `steps` vector steps."""
        t0, c0 = time.perf_counter(), time.thread_time()
        for k in range(steps):
            np.copyto(actions, frames[k % FRAMES])
            step()
        return time.perf_counter() - t0, time.thread_time() - c0

    # Size the windows from a short calibration run so each takes about seconds / windows.
    steps = 16
    while (dt := run(steps)[0]) < 0.05:
        steps *= 2
    steps = max(1, int(steps * (seconds / windows) / dt))
    times = [run(steps) for _ in range(windows)]
    env_rate = statistics.median(steps * num_envs / wall for wall, _ in times)
    # Per CPU-second: what the core delivers while this process is on it. On an idle machine it equals the
    # wall-clock rate; when other work shares the core, the wall-clock rate drops and this one mostly does not.
    cpu_rate = statistics.median(steps * num_envs / max(cpu, 1e-9) for _, cpu in times)
    return {"env": name, "agents": env.agents_per_env, "env_steps": env_rate,
            "agent_steps": env_rate * env.agents_per_env, "env_steps_cpu": cpu_rate}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", default=",".join(ENVS), help="comma-separated env names (default: all)")
    ap.add_argument("--num-envs", type=int, default=4096)
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per env (default 2)")
    ap.add_argument("--windows", type=int, default=5, help="timing windows per env (median reported)")
    ap.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last allowed one)")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = ap.parse_args()

    names = [n.strip() for n in args.envs.split(",") if n.strip()]
    unknown = [n for n in names if n not in ENVS]
    if unknown:
        ap.error(f"unknown env(s) {', '.join(unknown)}; known: {', '.join(ENVS)}")
    if hasattr(os, "sched_setaffinity"):
        cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        where = f"core {cpu}"
    else:
        where = "one thread (no pinning on this OS)"

    rows = [bench(n, args.num_envs, args.seconds, args.windows) for n in names]
    multi = any(r["agents"] > 1 for r in rows)
    header = ["env", "agents/env", "env steps/s"] + (["agent steps/s"] if multi else []) + ["env steps/CPU-s"]
    lines = [[r["env"], str(r["agents"]), f"{r['env_steps']:,.0f}"]
             + ([f"{r['agent_steps']:,.0f}"] if multi else []) + [f"{r['env_steps_cpu']:,.0f}"] for r in rows]
    load = f", load average {os.getloadavg()[0]:.2f} at the end" if hasattr(os, "getloadavg") else ""
    title = f"{args.num_envs} envs, random actions, {where}, median of {args.windows} windows{load}"
    if args.markdown:
        print(f"Ocean env throughput ({title})\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        print(title)
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths))))
        for line in lines:
            print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))))
    slow = [r["env"] for r in rows if r["env_steps"] < 1_000_000]
    if slow:
        print(f"\nbelow the 1,000,000 env steps/s target: {', '.join(slow)}")


if __name__ == "__main__":
    sys.exit(exit_status_of(main, "bench_ocean"))
