"""Simulator configuration: tasks, rates, arena, the nominal drone and the domain-randomization presets.

Everything the C side needs is assembled here into one plain dict (``build_config``), so the defaults
live in one readable place and the binding only copies fields.
"""
from __future__ import annotations

import copy
import math
from typing import Mapping, Sequence

from . import binding

# The enums' names in their C order (drone_env.h, quadrotor.h): the index is the value C uses.
TASKS: tuple[str, ...] = binding.TASK_NAMES
ACTION_MODES: tuple[str, ...] = binding.ACTION_MODE_NAMES
INTEGRATORS: tuple[str, ...] = binding.INTEGRATOR_NAMES
FORMATIONS: tuple[str, ...] = binding.FORMATION_NAMES
CRASH_CAUSES: tuple[str, ...] = binding.CRASH_CAUSE_NAMES

# What each task's `score` and `aux` logs mean (see drone_env.h).
TASK_SCORE = {
    "hover": ("success", "time_to_target_s"),
    "goto": ("success", "time_to_target_s"),
    "follow": ("share_within_radius", "tracking_error_m"),
    "race": ("rings_passed", "lap_time_s"),
    "swarm": ("share_in_slot", "formation_error_m"),
    "obstacles": ("success", "time_to_goal_s"),
}

# A generic 5-inch-class quadrotor; the nominal drone when no params file is given.
NOMINAL_DRONE: dict = {
    "mass": 0.5,
    "arm": 0.1,
    "inertia": [1.5e-3, 1.5e-3, 2.75e-3],
    "k_thrust": 5.47e-7,
    "k_torque": 8.75e-9,
    "tau_up": 0.03,
    "tau_down": 0.035,
    "omega_max": 2800.0,
    "drag": [0.05, 0.05, 0.1],
    "ang_damp": [1.5e-4, 1.5e-4, 2.75e-4],
    "kp": [20.0, 20.0, 10.0],
    "ki": [10.0, 10.0, 5.0],
    "kd": [0.02, 0.02, 0.0],
    "max_rate": [7.0, 7.0, 3.0],
    "latency": 0.0,
    "radius": 0.15,
    "wind": [0.0, 0.0, 0.0],
}

_DR_DEFAULT: dict = {
    "enabled": 1,
    "around_nominal": 0,
    "arm": (0.03, 0.25),
    "arm_ref": 0.12,
    "mass_ref": 0.6,
    "mass_factor": (0.7, 1.4),
    "inertia_xy": (0.2, 0.35),
    "inertia_z": (0.35, 0.6),
    "twr": (1.8, 4.5),
    "omega_ref": 2800.0,
    "omega_factor": (0.8, 1.25),
    "torque_ratio": (0.008, 0.025),
    "tau": (0.015, 0.06),
    "tau_down_ratio": (1.0, 1.5),
    "drag_xy": (0.05, 0.4),
    "drag_z": (0.1, 0.5),
    "ang_damp": (0.0, 0.3),
    "kp_rp": (15.0, 30.0),
    "kp_yaw": (8.0, 16.0),
    "ki_ratio": (0.0, 1.0),
    "kd": (0.0, 0.04),
    "tol_mass": 0.05,
    "tol_inertia": 0.15,
    "tol_thrust": 0.05,
    "tol_torque": 0.15,
    "tol_tau": 0.2,
    "tol_drag": 0.3,
    "tol_gains": 0.15,
    "latency": (0.0, 0.02),
    "obs_noise": (0.0, 1.0),
    "wind": (0.0, 0.8),
    "init_tilt": 0.5,
    "init_vel": 1.0,
    "init_rate": 1.0,
    "ground_start_prob": 0.1,
}

_DR_WIDE_CHANGES: dict = {
    "arm": (0.025, 0.3),
    "mass_factor": (0.6, 1.6),
    "twr": (1.5, 6.0),
    "tau": (0.01, 0.1),
    "drag_xy": (0.0, 0.6),
    "kp_rp": (12.0, 36.0),
    "latency": (0.0, 0.04),
    "obs_noise": (0.0, 2.0),
    "wind": (0.0, 2.0),
    "init_tilt": 1.0,
    "init_vel": 2.0,
    "init_rate": 3.0,
    "tol_mass": 0.1,
    "tol_inertia": 0.3,
    "tol_thrust": 0.1,
    "tol_tau": 0.4,
}

DR_PRESETS: tuple[str, ...] = ("nominal", "default", "wide")


def dr_preset(name: str) -> dict:
    """The domain-randomization ranges of a preset (nominal, default or wide)."""
    if name not in DR_PRESETS:
        raise ValueError(f"unknown domain-randomization preset {name!r}; choose one of {', '.join(DR_PRESETS)}")
    dr = copy.deepcopy(_DR_DEFAULT)
    if name == "nominal":
        dr["enabled"] = 0
    elif name == "wide":
        dr.update(_DR_WIDE_CHANGES)
    return dr


_SIM_DEFAULTS: dict = {
    "horizon_s": {"hover": 8.0, "goto": 10.0, "follow": 15.0, "race": 20.0, "swarm": 15.0, "obstacles": 15.0},
    "arena": (15.0, 15.0, 8.0),
    "collide_all": False,
    "crash_speed": 2.0,
    # the reward of a crash or of leaving the arena, negated; above 1 it is the one reward outside [-1, 1]
    "crash_penalty": 1.0,
    "success_radius": 0.3,
    "follow_radius": 0.5,
    "formation_radius": 0.3,
    "goal_radius": 0.5,
    "formation_spacing": 1.2,
    # reward shaping (drone_env.h, top comment): a near miss costs before it becomes a crash, and commands that
    # switch hard from step to step cost what real motors would not follow
    "clearance_margin": 0.3,
    "clearance_weight": 0.3,
    "clearance_time": 0.0,   # off: one --tasks all seed at 0.5 s was not better (BENCHMARKS "Slot assignment")
    "rim_lookahead": 0.0,    # off until a training run shows it helps (BENCHMARKS, issue 18)
    "race_tight_room": 0.0,  # off until a training run shows it helps (BENCHMARKS, issue 18)
    "smooth_weight": 0.1,
    # m/s: drone-deploy's default max speed (deploy/config.py max_speed_mps) where the task is flown with it;
    # race courses are built to be flown fast, and a racer raises drone-deploy's limit
    "speed_limit": {"hover": 3.0, "goto": 3.0, "follow": 3.0, "race": 0.0, "swarm": 3.0, "obstacles": 3.0},
    "speed_weight": 0.0,
    "race_rings": 7,
    "ring_radius": (0.6, 1.0),
    "obstacles": (8, 16),
    "obstacle_radius": (0.3, 1.2),
    # the share of obstacle-task spawns redrawn until the straight line to the goal crosses a sphere (a training
    # curriculum: drawn freely about one line in five does, and those hold most of the crashes); 0: drawn freely
    "blocked_line_prob": 0.0,
    "auto_reset": True,
    "evaluation": False,
}


_PER_TASK = ("horizon_s", "speed_limit")   # settings given per task by name, passed to C in TASKS order


def obstacle_counts(lo: float, hi: float) -> tuple[int, int]:
    """The fewest and most obstacles of a generated field, refused by name when the simulator cannot build
    them (a field holds at most MAX_OBSTACLES spheres): the C side would otherwise clamp them silently."""
    if not (int(lo) == lo and int(hi) == hi and 0 <= lo <= hi <= binding.MAX_OBSTACLES):
        raise ValueError(f"obstacles: a count range lo <= hi within 0..{binding.MAX_OBSTACLES}, got {lo}, {hi}")
    return int(lo), int(hi)


def ring_count(n: float) -> int:
    """The rings of a generated race course, refused by name outside what course_generate builds (a lap of
    fewer than 3 rings is no course; a course holds at most MAX_RINGS)."""
    if not (int(n) == n and 3 <= n <= binding.MAX_RINGS):
        raise ValueError(f"race_rings: a whole number of rings within 3..{binding.MAX_RINGS}, got {n}")
    return int(n)


def sim_default(key: str):
    """A simulator setting's default (the trainer exposes the reward weights as its own settings)."""
    return copy.deepcopy(_SIM_DEFAULTS[key])


def parse_tasks(tasks: str | Sequence[str] | Mapping[str, float]) -> dict[str, float]:
    """Task weights from 'race,swarm', 'race:2,swarm:1', 'all', a list of names or a dict of weights."""
    if isinstance(tasks, str):
        items = [t.strip() for t in tasks.split(",") if t.strip()]
        if items == ["all"]:
            return {t: 1.0 for t in TASKS}
        weights: dict[str, float] = {}
        for item in items:
            name, _, w = item.partition(":")
            try:
                weights[name.strip()] = float(w) if w else 1.0
            except ValueError:
                raise ValueError(f"task weight for {name!r} is not a number: {w!r}") from None
    elif isinstance(tasks, Mapping):
        weights = {str(k): float(v) for k, v in tasks.items()}
    else:
        weights = {str(t): 1.0 for t in tasks}
    if not weights:
        raise ValueError("no task given; choose among " + ", ".join(TASKS) + " or 'all'")
    for name, w in weights.items():
        if name not in TASKS:
            raise ValueError(f"unknown task {name!r}; choose among {', '.join(TASKS)} or 'all'")
        if not w >= 0.0:
            raise ValueError(f"task weight for {name!r} must be >= 0, got {w}")
    if sum(weights.values()) <= 0.0:
        raise ValueError("task weights sum to zero")
    return weights


def build_config(
    tasks: str | Sequence[str] | Mapping[str, float] = "hover",
    action_mode: str = "ctbr",
    physics_hz: float = 500.0,
    control_hz: float = 50.0,
    integrator: str = "rk4",
    dr: str | Mapping = "default",
    drone: Mapping | None = None,
    course: Mapping | None = None,
    **overrides,
) -> dict:
    """The full simulator configuration as the binding expects it.

    drone: a flat params dict (see drone_sim.params) replacing the nominal drone; with it, randomization
    becomes tolerances around that drone. course: a course dict (see drone_sim.params.load_course) that
    race episodes fly instead of generated courses. overrides: any key of the simulator defaults.
    """
    if action_mode not in ACTION_MODES:
        raise ValueError(f"unknown action mode {action_mode!r}; choose rpm or ctbr")
    if integrator not in INTEGRATORS:
        raise ValueError(f"unknown integrator {integrator!r}; choose rk4 or euler")
    if not (physics_hz > 0 and control_hz > 0):
        raise ValueError("physics_hz and control_hz must be positive")
    substeps = physics_hz / control_hz
    if abs(substeps - round(substeps)) > 1e-6 or round(substeps) < 1:
        raise ValueError(
            f"physics rate {physics_hz} Hz must be a whole multiple of the control rate {control_hz} Hz")
    weights = parse_tasks(tasks)
    sim = copy.deepcopy(_SIM_DEFAULTS)
    for key, value in overrides.items():
        if key not in sim:
            raise ValueError(f"unknown simulator setting {key!r}; known: {', '.join(sorted(sim))}")
        if key in _PER_TASK:
            unknown = set(value) - set(TASKS)
            if unknown:
                raise ValueError(f"{key}: unknown task {', '.join(sorted(unknown))}; choose among {', '.join(TASKS)}")
            sim[key].update(value)
        else:
            sim[key] = value
    sim["obstacles"] = obstacle_counts(*sim["obstacles"])
    sim["race_rings"] = ring_count(sim["race_rings"])
    for key in ("rim_lookahead", "race_tight_room"):
        if not (math.isfinite(sim[key]) and sim[key] >= 0.0):
            raise ValueError(f"{key}: zero (off) or a positive value, got {sim[key]!r}")
    if not 0.0 <= sim["blocked_line_prob"] <= 1.0:
        raise ValueError(f"blocked_line_prob: a share within 0..1, got {sim['blocked_line_prob']!r}")
    if isinstance(dr, str):
        dr_cfg = dr_preset(dr)
    else:
        dr_cfg = dr_preset("default")
        unknown = set(dr) - set(dr_cfg)
        if unknown:
            raise ValueError(f"unknown domain-randomization keys: {', '.join(sorted(unknown))}")
        dr_cfg.update(dr)
    nominal = copy.deepcopy(NOMINAL_DRONE)
    if drone is not None:
        nominal.update(drone)
        dr_cfg["around_nominal"] = 1
    return {
        "physics_dt": 1.0 / physics_hz,
        "substeps": int(round(substeps)),
        "integrator": INTEGRATORS.index(integrator),
        "action_mode": ACTION_MODES.index(action_mode),
        "task_weights": [weights.get(t, 0.0) for t in TASKS],
        **{key: [float(sim[key][t]) for t in TASKS] for key in _PER_TASK},
        "nominal": nominal,
        "dr": dr_cfg,
        "course": dict(course) if course is not None else None,
        **{k: v for k, v in sim.items() if k not in _PER_TASK},
    }
