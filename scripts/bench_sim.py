#!/usr/bin/env python3
"""Simulator throughput: agent-steps per second on ONE core, for every task and both action modes.

One agent-step is one drone advanced by one policy (control) step: all its physics substeps, its
task logic (targets, neighbours, collisions, reward, episode end, auto-reset with domain
randomization) and its observation. Two ways of measuring the same thing:

  C       scripts/bench_sim.c, a small harness that includes drone_sim/csrc/drone_env.h and calls
          env_step in a loop. It is compiled here with the flags the extension is compiled with
          (Python's CFLAGS, which include -fwrapv, then setup.py's), and configured from
          drone_sim.config.build_config, the dict the Python binding receives: this script writes
          that dict into a generated header (build/bench_sim/bench_cases.h).
  Python  drone_sim.DroneVecEnv.step() through the Cython binding, the same envs and actions.

Both start from the same seed and apply the same pre-generated actions (hover plus smooth noise,
written to a file, copied into the action buffer at every step as a trainer would), so at the end
their observations must agree; the script checks it (to float round-off: the two builds inline
differently, which can move the last bit of a transcendental call). Settings (both 64 agents per
env, default domain randomization, RK4 with 2 ms substeps):

  default    physics 500 Hz, control 50 Hz  (10 substeps per agent-step), the make() defaults
  reference  physics 500 Hz, control 100 Hz (5 substeps per agent-step), the setting of the targets
             (>= 3,000,000 agent-steps/s per core for hover, no task below 1,500,000)

Usage:
  python3 scripts/bench_sim.py               full run (a few minutes)
  python3 scripts/bench_sim.py --quick       short run
  python3 scripts/bench_sim.py --profile     why the layout pays: SoA vs AoS, vectorized vs not, and
                                             where a step's time goes (phases of env_step)
  options: --tasks hover,swarm  --modes ctbr  --settings reference  --num-envs 16  --no-python  --cpu 1

Each run is pinned to one core (os.sched_setaffinity, inherited by the harness). Throughput is the
median of the timing windows; --profile keeps the best window of several interleaved rounds, since
it compares builds and a burst of other load on the machine would otherwise decide the ratio.
"""
from __future__ import annotations

import argparse
import ast
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from drone_sim.config import ACTION_MODES, TASKS, build_config  # noqa: E402
from drone_sim.env import OBS_SIZE, DroneVecEnv  # noqa: E402
from drone_sim.signals import exit_status_of  # noqa: E402

BUILD = REPO / "build" / "bench_sim"
CSRC = REPO / "drone_sim" / "csrc"
HARNESS = REPO / "scripts" / "bench_sim.c"

SETTINGS = {
    "default": dict(physics_hz=500.0, control_hz=50.0, integrator="rk4", dr="default"),
    "reference": dict(physics_hz=500.0, control_hz=100.0, integrator="rk4", dr="default"),
}
AGENTS_PER_ENV = 64
PHASES = ("actions", "physics", "targets+neighbours", "task logic+resets", "observations")


# ------------------------------------------------------------------------------------------ build

def setup_py_flags() -> list[str]:
    """The extension's compile flags, read from setup.py (its `flags` list and the -march=native rule)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    flags = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "flags" for t in node.targets):
            flags = ast.literal_eval(node.value)
            break
    if flags is None:
        raise SystemExit("could not find the `flags` list in setup.py")
    if os.environ.get("DRONE_SIM_PORTABLE", "0") != "1" and platform.machine() in ("x86_64", "AMD64", "aarch64", "arm64"):
        flags.append("-march=native")
    return flags


def extension_flags() -> list[str]:
    """What the compiler gets for the extension: Python's CFLAGS and CCSHARED (they include -fwrapv and
    -fPIC), then setup.py's extra_compile_args, in that order, as setuptools passes them."""
    py = (sysconfig.get_config_var("CFLAGS") or "").split() + (sysconfig.get_config_var("CCSHARED") or "").split()
    return py + setup_py_flags()


def _cf(x: float) -> str:
    """A C float literal equal to float(x) rounded to single precision, as the binding's assignment does."""
    return f"{float(x).hex()}f" if float(x) != 0.0 else "0.0f"


_SIM_SCALARS_F = ("crash_speed", "crash_penalty", "success_radius", "follow_radius", "formation_radius",
                  "goal_radius", "formation_spacing", "clearance_margin", "clearance_weight", "clearance_time",
                  "rim_lookahead", "race_tight_room", "smooth_weight", "speed_weight", "blocked_line_prob")
_SIM_KEYS = {"physics_dt", "substeps", "integrator", "action_mode", "task_weights", "horizon_s", "speed_limit",
             "nominal", "dr",
             "course", "arena", "collide_all", "race_rings", "ring_radius", "obstacles", "obstacle_radius",
             "auto_reset", "evaluation", *_SIM_SCALARS_F}


def config_to_c(cfg: dict) -> list[str]:
    """C statements filling `SimConfig *c` from a build_config dict, field for field as binding._fill_config."""
    unknown = set(cfg) - _SIM_KEYS
    if unknown:
        raise SystemExit(f"bench_sim.py does not know config keys {sorted(unknown)}; teach config_to_c about them")
    out: list[str] = []

    def f(name, v):
        out.append(f"c->{name} = {_cf(v)};")

    def i(name, v):
        out.append(f"c->{name} = {int(v)};")

    def rng(name, v):
        lo, hi = v
        f(f"{name}.lo", lo)
        f(f"{name}.hi", hi)

    f("physics_dt", cfg["physics_dt"])
    i("substeps", cfg["substeps"])
    i("integrator", cfg["integrator"])
    i("action_mode", cfg["action_mode"])
    i("auto_reset", cfg["auto_reset"])
    i("evaluation", cfg["evaluation"])
    for k in range(len(TASKS)):
        f(f"task_weights[{k}]", cfg["task_weights"][k])
        f(f"horizon_s[{k}]", cfg["horizon_s"][k])
        f(f"speed_limit[{k}]", cfg["speed_limit"][k])
    for name, v in zip(("half_x", "half_y", "height"), cfg["arena"]):
        f(f"arena.{name}", v)
    i("collide_all", cfg["collide_all"])
    for name in _SIM_SCALARS_F:
        f(name, cfg[name])
    i("race_rings", cfg["race_rings"])
    rng("ring_radius", cfg["ring_radius"])
    i("obstacles_lo", cfg["obstacles"][0])
    i("obstacles_hi", cfg["obstacles"][1])
    rng("obstacle_radius", cfg["obstacle_radius"])
    course = cfg.get("course")
    i("fixed_course", course is not None)
    if course is not None:
        rings, obstacles = course.get("rings", []), course.get("obstacles", [])
        i("course.num_rings", len(rings))
        for j, g in enumerate(rings):
            for k in range(3):
                f(f"course.rings[{j}].pos[{k}]", g["position"][k])
                f(f"course.rings[{j}].normal[{k}]", g["normal"][k])
            f(f"course.rings[{j}].radius", g["radius"])
        i("course.num_obstacles", len(obstacles))
        for j, s in enumerate(obstacles):
            for k in range(3):
                f(f"course.obstacles[{j}].pos[{k}]", s["position"][k])
            f(f"course.obstacles[{j}].radius", s["radius"])
    nominal = dict(cfg["nominal"])
    nominal.setdefault("wind", [0.0, 0.0, 0.0])
    for key, v in nominal.items():
        if isinstance(v, (list, tuple)):
            for k in range(3):
                f(f"nominal.{key}[{k}]", v[k])
        else:
            f(f"nominal.{key}", v)
    for key, v in cfg["dr"].items():
        if key in ("enabled", "around_nominal"):
            i(f"dr.{key}", v)
        elif isinstance(v, (list, tuple)):
            rng(f"dr.{key}", v)
        else:
            f(f"dr.{key}", v)
    return out


def write_cases_header(cases: list[tuple[str, dict]]) -> None:
    lines = ["/* generated by scripts/bench_sim.py from drone_sim.config.build_config; do not edit */",
             f"#define BENCH_NUM_CASES {len(cases)}"]
    for k, (name, cfg) in enumerate(cases):
        lines.append(f"/* {name} */")
        lines.append(f"static void bench_case_{k}(SimConfig *c) {{")
        lines += ["    " + s for s in config_to_c(cfg)]
        lines.append("}")
    lines.append("static void bench_case_config(int k, SimConfig *c) {")
    lines.append("    memset(c, 0, sizeof(*c));")
    lines.append("    switch (k) {")
    lines += [f"    case {k}: bench_case_{k}(c); break;" for k in range(len(cases))]
    lines += ["    }", "}", ""]
    BUILD.mkdir(parents=True, exist_ok=True)
    path = BUILD / "bench_cases.h"
    text = "\n".join(lines)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


VARIANTS = {
    # name: (flags to drop from setup.py's, flags to add, what it shows)
    "default": ((), (), "the extension's flags (AVX2 on this machine)"),
    "sse2": (("-march=native",), (), "baseline x86-64: 4-wide SSE2 vectors instead of 8-wide AVX2"),
    "novec": ((), ("-fno-tree-vectorize",), "no auto-vectorization (loop and SLP), scalar code"),
    "profile": ((), ("-DBENCH_PROFILE",), "the extension's flags plus timers at the phase marks of env_step"),
}


def build_harness(variant: str = "default", extra: tuple[str, ...] = ()) -> Path:
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        raise SystemExit(f"no C compiler ({cc}) on PATH")
    drop, add, _ = VARIANTS[variant]
    flags = [fl for fl in extension_flags() if fl not in drop] + list(add) + list(extra)
    exe = BUILD / f"bench_sim_{variant}"
    cmd = [cc, *flags, "-I", str(CSRC), "-I", str(BUILD), "-o", str(exe), str(HARNESS), "-lm"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit("compiling the harness failed:\n" + " ".join(cmd) + "\n" + res.stderr)
    return exe


# ------------------------------------------------------------------------------------------ actions

def make_actions(mode: str, total: int, frames: int, seed: int) -> np.ndarray:
    """(frames, total, 4) float32: a hover command plus temporally smooth noise, the same for C and Python.

    The hover command is for a thrust-to-weight ratio of 3 (the middle of the randomized drones), so
    drones that are lighter or heavier drift up or down, tilt with the noise and now and then crash or
    leave the arena: the run includes auto-resets at a rate an early policy sees.
    """
    rng = np.random.default_rng(seed)
    twr = 3.0
    noise = np.zeros((frames, total, 4), np.float32)
    state = np.zeros((total, 4), np.float32)
    for t in range(frames):  # AR(1), correlation time of a few control steps
        state = 0.8 * state + 0.6 * rng.standard_normal((total, 4)).astype(np.float32)
        noise[t] = state
    if mode == "ctbr":
        base = np.array([2.0 / twr - 1.0, 0.0, 0.0, 0.0], np.float32)
        scale = np.array([0.05, 0.05, 0.05, 0.05], np.float32)
        act = base + scale * noise
    else:
        base = 2.0 * np.sqrt(1.0 / twr) - 1.0
        common = 0.05 * noise[..., :1]          # collective
        differential = 0.002 * noise             # per motor: a torque
        act = base + common + differential
    return np.clip(act, -1.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------------------ runs

def parse_windows(text: str) -> dict:
    out = {"rates": [], "ends": 0, "phases": {}}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "window":
            out["rates"].append(float(parts[1]))
        elif parts[0] == "ends":
            out["ends"] = int(parts[1])
        elif parts[0] == "phase":
            out["phases"].setdefault(int(parts[1]), {})[int(parts[2])] = float(parts[3])
        elif parts[0] == "checksum":
            out["checksum"] = float(parts[1])
    return out


def run_c(exe: Path, case: int, num_envs: int, seed: int, warmup: int, steps: int, windows: int,
          actions_file: Path, frames: int, dump: Path | None = None) -> dict:
    cmd = [str(exe), "env", str(case), str(num_envs), str(AGENTS_PER_ENV), str(seed), str(warmup), str(steps),
           str(windows), str(actions_file), str(frames)]
    if dump is not None:
        cmd.append(str(dump))
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"harness failed: {' '.join(cmd)}\n{res.stdout}\n{res.stderr}")
    return parse_windows(res.stdout)


def run_physics(exe: Path, layout: int, case: int, agents: int, seed: int, steps: int, windows: int) -> dict:
    cmd = [str(exe), "physics", str(layout), str(case), str(agents), str(seed), str(steps), str(windows)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"harness failed: {' '.join(cmd)}\n{res.stdout}\n{res.stderr}")
    return parse_windows(res.stdout)


def run_python(cfg: dict, num_envs: int, seed: int, warmup: int, steps: int, windows: int,
               table: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    env = DroneVecEnv(cfg, num_envs, AGENTS_PER_ENV, seed)
    env.reset(seed)
    frames, total = table.shape[0], env.num_agents
    step = 0
    for _ in range(warmup):
        env.step(table[step % frames])
        step += 1
    rates, ends = [], 0
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(steps):
            _, _, term, trunc, _ = env.step(table[step % frames])
            ends += int(np.count_nonzero(term | trunc))
            step += 1
        rates.append(steps * total / (time.perf_counter() - t0))
    obs, rew = env.observations.copy(), env.rewards.copy()
    env.close()
    return {"rates": rates, "ends": ends}, obs, rew


def compare_dump(dump: Path, obs: np.ndarray, rew: np.ndarray) -> str:
    """How the harness's final observations and rewards compare with the binding's.

    The two are the same code with the same flags, seeds and actions, but compiled in different
    translation units, where GCC inlines differently; a transcendental call can then round its last
    bit differently (seen in a spawn's quaternion), so "agree" means equal up to float round-off.
    """
    raw = np.fromfile(dump, dtype=np.float32)
    n = obs.shape[0]
    c_obs, c_rew = raw[: n * OBS_SIZE].reshape(n, OBS_SIZE), raw[n * OBS_SIZE:]
    if np.array_equal(c_obs, obs, equal_nan=True) and np.array_equal(c_rew, rew, equal_nan=True):
        return "identical"
    d = np.abs(c_obs - obs)
    far = int(np.count_nonzero(np.nanmax(d, axis=1) > 1e-3))
    if far == 0:
        return f"agree ({np.nanmax(d):.0e})"
    return f"DIFFER in {far}/{n} agents"

def pin_one_core(cpu: int | None) -> int:
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {cpu})  # inherited by the harness processes
    return cpu


def other_load(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over `seconds` (from /proc/stat), taken before the run starts."""
    def snap():
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals), idle
    try:
        t0, i0 = snap()
        time.sleep(seconds)
        t1, i1 = snap()
        return 1.0 - (i1 - i0) / max(t1 - t0, 1)
    except OSError:
        return float("nan")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fmt_m(x: float) -> str:
    return f"{x / 1e6:6.2f}M"


# ------------------------------------------------------------------------------------------ main modes

def throughput(args) -> None:
    tasks = args.tasks
    modes = args.modes
    settings = args.settings
    cases, index = [], {}
    for s in settings:
        for mode in modes:
            for task in tasks:
                index[(s, mode, task)] = len(cases)
                cases.append((f"{task} {mode} {s}", build_config(task, mode, **SETTINGS[s])))
    write_cases_header(cases)
    exe = build_harness("default")
    total = args.num_envs * AGENTS_PER_ENV
    frames = 64
    results = {}
    for s in settings:
        for mode in modes:
            table = make_actions(mode, total, frames, seed=1)
            afile = BUILD / f"actions_{mode}_{total}.f32"
            table.tofile(afile)
            for task in tasks:
                k = index[(s, mode, task)]
                dump = BUILD / "dump.f32"
                c = run_c(exe, k, args.num_envs, args.seed, args.warmup, args.steps, args.windows, afile, frames, dump)
                py = obs = rew = None
                if not args.no_python:
                    py, obs, rew = run_python(cases[k][1], args.num_envs, args.seed, args.warmup, args.steps,
                                              args.windows, table)
                check = compare_dump(dump, obs, rew) if py is not None else "-"
                results[(s, mode, task)] = (c, py, check)
                cr = statistics.median(c["rates"])
                pr = statistics.median(py["rates"]) if py else float("nan")
                cb = max(c["rates"])
                print(f"  measured {s:9s} {mode:4s} {task:9s}  C {fmt_m(cr)} (best {fmt_m(cb)})  Python {fmt_m(pr)}  "
                      f"ends/1k {1000 * c['ends'] / (args.steps * args.windows * total):5.1f}  obs {check}",
                      flush=True)

    print()
    for s in settings:
        sub = SETTINGS[s]
        n_sub = int(round(sub["physics_hz"] / sub["control_hz"]))
        print(f"## {s}: {sub['integrator'].upper()}, physics {sub['physics_hz']:g} Hz ({1000 / sub['physics_hz']:g} ms),"
              f" control {sub['control_hz']:g} Hz ({n_sub} substeps), {AGENTS_PER_ENV} agents/env x {args.num_envs}"
              f" envs, dr={sub['dr']}")
        print("agent-steps/s on one core (median of windows); C = harness, Python = DroneVecEnv.step()")
        head = "| task      |" + "".join(f" {m} C    | {m} Python |" if m == "rpm" else f" {m} C   | {m} Python |"
                                         for m in modes) + " episode ends / 1k agent-steps (rpm / ctbr) | final obs C vs Python |"
        print(head)
        print("|" + "---|" * (1 + 2 * len(modes) + 2))
        for task in tasks:
            row = f"| {task:9s} |"
            ends, checks = [], []
            for mode in modes:
                c, py, check = results[(s, mode, task)]
                row += f" {fmt_m(statistics.median(c['rates']))} |"
                row += f" {fmt_m(statistics.median(py['rates'])) if py else '   -   '}   |"
                ends.append(f"{1000 * c['ends'] / (args.steps * args.windows * total):.1f}")
                checks.append(check)
            row += f" {' / '.join(ends)} | {' / '.join(checks)} |"
            print(row)
        print()
    if "reference" in settings and "hover" in tasks:
        print("targets at the reference setting (C harness, median):")
        for mode in modes:
            rates = {t: statistics.median(results[("reference", mode, t)][0]["rates"]) for t in tasks}
            worst = min(rates, key=rates.get)
            ok_h = rates["hover"] >= 3.0e6
            ok_all = rates[worst] >= 1.5e6
            print(f"  {mode}: hover {fmt_m(rates['hover'])} (>= 3M: {'yes' if ok_h else 'NO'}); "
                  f"slowest {worst} {fmt_m(rates[worst])} (>= 1.5M: {'yes' if ok_all else 'NO'})")


def vectorization_report(exe_flags_extra=()) -> list[str]:
    """Which loops of quadrotor.h GCC vectorized (-fopt-info-vec-optimized), by function."""
    src = (CSRC / "quadrotor.h").read_text().splitlines()
    starts = []
    for no, line in enumerate(src, 1):
        m = re.match(r"static inline \w+\s+\**(\w+)\(", line)
        if m:
            starts.append((no, m.group(1)))
    cc = os.environ.get("CC", "gcc")
    flags = extension_flags()
    cmd = [cc, *flags, "-fopt-info-vec-optimized", "-I", str(CSRC), "-I", str(BUILD), "-c", "-o", os.devnull,
           str(HARNESS)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    found = {}
    for line in res.stderr.splitlines():
        m = re.search(r"quadrotor\.h:(\d+):\d+: optimized: (loop vectorized using \d+ byte vectors|basic block part vectorized using \d+ byte vectors)", line)
        if not m:
            continue
        no = int(m.group(1))
        fn = max((s for s in starts if s[0] <= no), default=(0, "?"))[1]
        found.setdefault((fn, no, m.group(2)), 0)
        found[(fn, no, m.group(2))] += 1
    return [f"  {fn:20s} quadrotor.h:{no:<4d} {what}" for (fn, no, what) in sorted(found)]


def profile(args) -> None:
    total = args.num_envs * AGENTS_PER_ENV
    modes = args.modes
    tasks = args.tasks
    cases, index = [], {}
    phys_task = "hover" if "hover" in tasks else tasks[0]
    for mode in modes:
        for task in tasks:
            index[(mode, task)] = len(cases)
            cases.append((f"{task} {mode} reference", build_config(task, mode, **SETTINGS["reference"])))
        index[(mode, "euler")] = len(cases)
        cases.append((f"{phys_task} {mode} reference euler",
                      build_config(phys_task, mode, **{**SETTINGS["reference"], "integrator": "euler"})))
    write_cases_header(cases)
    exes = {v: build_harness(v) for v in ("default", "sse2", "novec", "profile")}

    print("## 1. Does the integrator vectorize across drones? (gcc -fopt-info-vec-optimized, the extension's flags;"
          " 32-byte vectors = 8 drones per AVX2 instruction, the 16-byte ones are GCC's epilogue for leftovers)")
    for line in vectorization_report():
        print(line)
    print()

    print(f"## 2. Physics alone (rate loop / mixer + RK4, 5 substeps of 2 ms per agent-step), {phys_task} drones,"
          f" {AGENTS_PER_ENV} drones: agent-steps/s (best window of {args.rounds} rounds)")
    print("| layout / build | " + " | ".join(modes) + " |")
    print("|---|" + "---|" * len(modes))
    rows = [("SoA, vectorized across drones, AVX2 (the simulator)", "default", 0, phys_task),
            ("SoA, SSE2 only (4 wide)", "sse2", 0, phys_task),
            ("SoA, -fno-tree-vectorize (scalar)", "novec", 0, phys_task),
            ("AoS, one drone at a time (same functions, n = 1)", "default", 1, phys_task),
            ("for scale: SoA, AVX2, forward Euler instead of RK4", "default", 0, "euler")]
    phys = {}
    for _ in range(args.rounds):
        for label, variant, layout, case in rows:
            for mode in modes:
                r = run_physics(exes[variant], layout, index[(mode, case)], AGENTS_PER_ENV, args.seed,
                                args.physics_steps, args.windows)
                phys[(label, mode)] = max(phys.get((label, mode), 0.0), *r["rates"])
    for label, _, _, _ in rows:
        print(f"| {label} | " + " | ".join(fmt_m(phys[(label, m)]) for m in modes) + " |")
    base = rows[0][0]
    for label, _, _, _ in rows[1:4]:
        print(f"  {label}: " + ", ".join(f"{m} {phys[(base, m)] / phys[(label, m)]:.2f}x slower than the simulator's"
                                          for m in modes))
    print()

    frames = 64
    print("## 3. Whole env_step (C harness), reference setting: vectorized vs not, agent-steps/s"
          f" (best window of {args.rounds} interleaved rounds)")
    print("| task | mode | AVX2 (default) | SSE2 | no vectorization | speed-up of vectorization |")
    print("|---|---|---|---|---|---|")
    for mode in modes:
        table = make_actions(mode, total, frames, seed=1)
        afile = BUILD / f"actions_{mode}_{total}.f32"
        table.tofile(afile)
        for task in tasks:
            k = index[(mode, task)]
            r = {v: 0.0 for v in ("default", "sse2", "novec")}
            for _ in range(args.rounds):  # variants interleaved, so a burst of other load hits one round only
                for v in r:
                    r[v] = max(r[v], *run_c(exes[v], k, args.num_envs, args.seed, args.warmup, args.steps,
                                            args.windows, afile, frames)["rates"])
            print(f"| {task} | {mode} | {fmt_m(r['default'])} | {fmt_m(r['sse2'])} | {fmt_m(r['novec'])} | "
                  f"{r['default'] / r['novec']:.2f}x |", flush=True)
    print()

    print("## 4. Where an env_step's time goes (timers at the phase marks of env_step; reference setting)")
    print("ns per agent-step by phase (share of the step), in the fastest window; timer overhead included, about 5"
          " clock reads per env step of 64 agents")
    print("| task | mode | " + " | ".join(PHASES) + " | total ns |")
    print("|---|---|" + "---|" * (len(PHASES) + 1))
    for mode in modes:
        afile = BUILD / f"actions_{mode}_{total}.f32"
        for task in tasks:
            k = index[(mode, task)]
            windows = []
            for _ in range(args.rounds):
                r = run_c(exes["profile"], k, args.num_envs, args.seed, args.warmup, args.steps, args.windows,
                          afile, frames)
                windows += r["phases"].values()
            n_agent_steps = args.steps * total
            w = min(windows, key=lambda ph: sum(ph.values()))  # the least disturbed window
            ph = [w.get(p, 0.0) * 1e9 / n_agent_steps for p in range(len(PHASES))]
            tot = sum(ph)
            cells = [f"{x:6.1f} ({100 * x / tot:4.1f}%)" for x in ph]
            print(f"| {task} | {mode} | " + " | ".join(cells) + f" | {tot:6.1f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short run (fewer steps and windows)")
    ap.add_argument("--profile", action="store_true", help="layout and phase profile instead of the throughput table")
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks (default: all)")
    ap.add_argument("--modes", default=",".join(ACTION_MODES), help="rpm,ctbr")
    ap.add_argument("--settings", default="default,reference", help="default,reference")
    ap.add_argument("--num-envs", type=int, default=16, help=f"envs of {AGENTS_PER_ENV} agents (default 16)")
    ap.add_argument("--steps", type=int, default=None, help="control steps per timing window")
    ap.add_argument("--windows", type=int, default=None, help="timing windows (median reported)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last allowed one)")
    ap.add_argument("--no-python", action="store_true", help="skip the measurement through the binding")
    ap.add_argument("--rounds", type=int, default=None, help="--profile: repeat each measurement, keep the best")
    args = ap.parse_args()
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    for t in args.tasks:
        if t not in TASKS:
            ap.error(f"unknown task {t!r}")
    for m in args.modes:
        if m not in ACTION_MODES:
            ap.error(f"unknown action mode {m!r}")
    for s in args.settings:
        if s not in SETTINGS:
            ap.error(f"unknown setting {s!r}")
    args.steps = args.steps or (150 if args.quick else 600)
    args.windows = args.windows or (3 if args.quick else 5)
    args.warmup = args.warmup if args.warmup is not None else (50 if args.quick else 200)
    args.physics_steps = 2000 if args.quick else 10000
    args.rounds = args.rounds or (1 if args.quick else 3)

    cpu = pin_one_core(args.cpu)
    busy = other_load()
    print(f"# drone_sim throughput, {cpu_name()}, pinned to cpu {cpu} of {os.cpu_count()}; "
          f"CPU busy with other work before the run: {100 * busy:.0f}%")
    if busy > 0.2:
        print("# WARNING: the machine is busy; other processes sharing the core will lower the figures")
    print(f"# harness compile flags (Python's CFLAGS + setup.py's, as the extension gets them): "
          f"{' '.join(extension_flags())}")
    print(f"# {args.num_envs} envs x {AGENTS_PER_ENV} agents, {args.warmup} warm-up steps, "
          f"{args.windows} windows of {args.steps} steps")
    print()
    if args.profile:
        profile(args)
    else:
        throughput(args)


if __name__ == "__main__":
    sys.exit(exit_status_of(main, "bench_sim"))
