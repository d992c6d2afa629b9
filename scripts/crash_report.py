"""What a policy's crashes are: for each task, every crash of a drone-eval run with what it hit, when, how fast,
and on which drone, and the crash rate by drone size, thrust-to-weight, spawn height and (race) the room a ring
leaves. For obstacles, also whether the obstacle hit lay on the straight line to the goal and whether the
observation listed it a second before the crash: the difference between a policy that ignores obstacles and one
that cannot see them. For swarm, the time in slot while the formation assembles and while it holds, against what
a drone that flew straight to its slot at the task's speed limit could reach at best. For follow, which hardly
crashes, the time off the moving target while closing the spawn's gap and while tracking, and which drones lose a
target they had. For hover and goto, whether the crashes are drones that started on the floor, and how they hit it.

    python scripts/crash_report.py --policy policies/pretrained/multitask_ctbr.onnx [--tasks race,swarm,obstacles]
    python scripts/crash_report.py --policy runs/X/model.pt --episodes 512 --json crashes.json
    python scripts/crash_report.py --policy scripted --tasks obstacles   # the hand-written controller, for reference
    python scripts/crash_report.py --policy runs/X/model.pt --tasks follow
    python scripts/crash_report.py --policy runs/X/model.pt --tasks goto

Why: drone-eval says how often a policy crashes; deciding what to change (the observation, the reward, the
curriculum, the randomization) needs to know which crashes they are. The episodes are drone-eval's own
(evaluation mode, same seed, same drones and courses, deterministic actions), so the counts add up to its
crash column.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import drone_sim  # noqa: E402
from drone_sim import binding  # noqa: E402
from drone_sim.config import sim_default  # noqa: E402
from drone_sim.signals import StopRequest  # noqa: E402

EARLY_S = 2.0     # crashes this soon after the start: the spawn (or, in swarm, the assembly) rather than the flight
LOOKBACK_S = 1.0  # obstacles: what the drone saw this long before a crash (at 7 m/s, about the room to swerve)
HISTORY_S = 3.0   # obstacles: how far back to look for when the obstacle hit entered the observation's list
FORMATION_RADIUS = sim_default("formation_radius")   # swarm: in slot within this of it (m), drone-eval's figure
ASSEMBLY_S = 3.0  # swarm: the formation assembles in this long from the scattered spawn; holding comes after
FOLLOW_RADIUS = sim_default("follow_radius")         # follow: on the target within this of it (m), drone-eval's figure
SETTLE_S = 2.0    # follow: the spawn is up to 1 m off the moving target; tracking is judged after this
LOST_SHARE = 0.05  # follow: a drone off the target for more of its tracking than this lost it
GROUND_M = 0.05   # hover, goto: a drone spawned lower than this (m) started on the floor
GRAVITY = drone_sim.GRAVITY
# the tasks whose time on target is watched in two phases: (radius m, phase boundary s, the phases' names)
PHASES = {"swarm": (FORMATION_RADIUS, ASSEMBLY_S, ("assembling", "holding")),
          "follow": (FOLLOW_RADIUS, SETTLE_S, ("settling", "tracking"))}


def _spheres(field: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(centres (n, 3), radii (n,)) of a course's obstacle list."""
    return (np.array([o["position"] for o in field], float).reshape(-1, 3),
            np.array([o["radius"] for o in field], float))


def _segment_clearance(a: np.ndarray, b: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance from each point to the segment a-b."""
    ab = b - a
    t = np.clip((points - a) @ ab / max(1e-12, float(ab @ ab)), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)


SCRIPTED = "scripted"


def load(path: str, scripted_speed: float | None = None):
    """(make_policy(n), meta) of an ONNX file or a checkpoint, loaded as drone-eval loads them; `scripted`: the
    hand-written controller at drone-train's default rates, asking for at most scripted_speed m/s."""
    if path == SCRIPTED:
        from policies.config import TrainConfig
        from policies.teacher import ScriptedPolicy

        cfg = TrainConfig()
        meta = {"action_mode": "ctbr", "control_hz": cfg.control_hz, "physics_hz": cfg.physics_hz,
                "train_config": {"drone": "", "course": ""}}
        return (lambda n: ScriptedPolicy(n, cfg.control_hz, scripted_speed)), meta
    from policies.cli import eval_policy_of

    _, meta, make_policy = eval_policy_of(path, onnx=path.endswith(".onnx"))
    return make_policy, meta


class CrashWatcher:
    """Watches an evaluation (policies.evaluate.evaluate_task's `watch`) and notes every counted crash: what it
    hit (the simulator's own verdict), when, how fast, on which drone, and (race) how much room its ring left."""

    def __init__(self, task: str, control_hz: float):
        self.task, self.dt = task, 1.0 / control_hz
        self.crashes: list[dict] = []
        self.flights: list[dict] = []      # every counted drone-episode: the drone, and whether it crashed
        self.lookback = max(1, round(LOOKBACK_S * control_hz))
        self.history = max(self.lookback, round(HISTORY_S * control_hz))

    def before(self, env, step: int) -> None:
        n = env.num_agents
        if step == 0:                      # a new env-episode: new drones, and only their first episodes count
            self.drones = [env.agent_info(i)["drone"] for i in range(n)]
            self.counted = np.ones(n, bool)
            self.first = len(self.flights)
            x0, goals = env.states(), env.targets()[0]
            self.flights += [{"radius": d["radius"], "twr": binding.thrust_to_weight(d), "crashed": False,
                              "height": float(x0[i, 2]), "target_m": float(np.linalg.norm(goals[i] - x0[i, :3]))}
                             for i, d in enumerate(self.drones)]
            if self.task == "obstacles":
                self._obstacle_episode_begins(env)
            if self.task == "follow":
                self.spawn, self.spawn_vel = x0[:, :3].copy(), x0[:, 3:6].copy()
                self.reach = reach(self.drones, np.arange(round(SETTLE_S / self.dt) + 1) * self.dt, tilt(x0))
        self.states = env.states().copy()
        self.targets = env.targets()[0].copy()
        if self.task in PHASES:
            self._phase_step(step)
        if self.task == "obstacles":
            self.past[step % len(self.past)] = self.states[:, :6]

    def _phase_step(self, step: int) -> None:
        """Add this step's distance from the target (swarm: the slot; follow: the moving point) of every counted
        drone to its flight, in the task's first phase (assembling, settling) or its second (holding, tracking)."""
        radius, boundary, names = PHASES[self.task]
        phase = names[0] if step * self.dt < boundary else names[1]
        err = np.linalg.norm(self.targets - self.states[:, :3], axis=1)
        for i in np.flatnonzero(self.counted):
            f = self.flights[self.first + i]
            steps, inside, total = f.get(phase, (0, 0, 0.0))
            f[phase] = (steps + 1, inside + int(err[i] < radius), total + float(err[i]))
            if phase == names[0]:          # when it first got there, and whether it left again before the boundary
                if err[i] < radius:
                    f.setdefault("reached_s", step * self.dt)
                elif "reached_s" in f:
                    f["left_again"] = True
        if self.task == "follow" and phase == names[0]:
            # the best any drone could do: off the target if it lies farther than the radius from every point the
            # drone can have reached by now (a cylinder around the spawn, reach's horizontal and vertical extent)
            reach_h, reach_v = self.reach[0][step], self.reach[1][step]
            off = self.targets - self.spawn - self.spawn_vel * step * self.dt
            gap_h = np.maximum(np.linalg.norm(off[:, :2], axis=1) - reach_h, 0.0)
            gap_v = np.maximum(np.abs(off[:, 2]) - reach_v, 0.0)
            for i in np.flatnonzero(self.counted & (np.hypot(gap_h, gap_v) >= radius)):
                f = self.flights[self.first + i]
                if f["target_m"] < radius:     # only a drone that had the target at the spawn can be forced off it
                    f["must_leave"] = True

    def _obstacle_episode_begins(self, env) -> None:
        """Note each env's obstacle field, and whether the straight line from each drone's spawn to its goal runs
        through an obstacle: a policy that ignored obstacles would crash about as often as that happens."""
        per_env, x, goals = env.agents_per_env, env.states(), env.targets()[0]
        self.fields = [env.env_info(e)["course"]["obstacles"] for e in range(env.num_agents // per_env)]
        self.past = np.zeros((self.history + 1, env.num_agents, 6))    # the last states, by step modulo its length
        self.line_clearance = []           # per drone: each obstacle's clearance from its straight line (m)
        for i, d in enumerate(self.drones):
            centres, radii = _spheres(self.fields[i // per_env])
            self.line_clearance.append(_segment_clearance(x[i, :3], goals[i], centres) - radii - d["radius"])
            self.flights[self.first + i]["line_blocked"] = bool((self.line_clearance[i] < 0.0).any())

    def after(self, env, step: int, terminals: np.ndarray, truncations: np.ndarray) -> None:
        per_env = env.agents_per_env
        for i in np.flatnonzero(terminals & self.counted):
            cause = env.agent_info(int(i))["crash_cause"]
            if cause:                      # "" is a drone that left the arena: not a crash
                self.crashes.append(self._crash(env, int(i), cause, step, per_env))
                self.flights[self.first + i]["crashed"] = True
        self.counted &= ~(terminals | truncations)

    def _crash(self, env, i: int, cause: str, step: int, per_env: int) -> dict:
        x, d = self.states, self.drones[i]
        e0 = (i // per_env) * per_env
        others = [j for j in range(e0, e0 + per_env) if j != i]
        k = others[int(np.argmin(np.linalg.norm(x[others, :3] - x[i, :3], axis=1)))]
        offset = x[k, :3] - x[i, :3]
        distance = float(np.linalg.norm(offset))
        row = {"cause": cause, "t": (step + 1) * self.dt, "speed": float(np.linalg.norm(x[i, 3:6])),
               "vz": float(x[i, 5]), "tilt_deg": float(np.degrees(tilt(x[i]))),
               "radius": d["radius"], "twr": binding.thrust_to_weight(d), "nearest_drone_m": distance,
               "closing_speed": float(-np.dot(x[k, 3:6] - x[i, 3:6], offset / max(1e-6, distance)))}
        if self.task == "race":
            rings = env.env_info(i // per_env)["course"]["rings"]
            ring = min(rings, key=lambda g: np.linalg.norm(np.array(g["position"]) - self.targets[i]))
            row["room_m"] = ring["radius"] - d["radius"]          # how far off centre the drone may pass
        if self.task == "obstacles" and cause == "obstacle":
            row.update(self._obstacle_crash(i, step, per_env))
        return row

    def _obstacle_crash(self, i: int, step: int, per_env: int) -> dict:
        """Which obstacle the drone hit, whether it lay on the straight line to the goal, and what the drone knew
        of it LOOKBACK_S earlier: listed among the observation's nearest obstacles or not, how far, and how
        straight at it the drone was flying."""
        field = self.fields[i // per_env]
        centres, radii = _spheres(field)
        d = self.drones[i]
        hit = binding.nearest_obstacles(self.states[i, :3], field, 1)[0]
        back = max(0, step - self.lookback)
        before = self.past[back % len(self.past), i]
        offset = centres[hit] - before[:3]
        speed = np.linalg.norm(before[3:6])
        cos = float(np.dot(offset, before[3:6]) / max(1e-9, np.linalg.norm(offset) * speed))
        listed = 0                          # steps before the crash the hit obstacle has been listed without a break
        while listed < min(step, self.history) and \
                hit in binding.nearest_obstacles(self.past[(step - listed) % len(self.past), i, :3], field):
            listed += 1
        return {"on_line": bool(self.line_clearance[i][hit] < 0.0), "listed_before": hit in binding.nearest_obstacles(before[:3], field),
                "listed_for_s": listed * self.dt,
                "gap_before_m": float(np.linalg.norm(offset) - radii[hit] - d["radius"]),
                "heading_off_deg": float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))),
                "straight_miss_m": straight_miss(offset, before[3:6]) - radii[hit] - d["radius"]}


def tilt(states: np.ndarray) -> np.ndarray:
    """The angle (rad) between the body's z axis and the world's, of env.states() rows (quaternion w, x, y, z in
    columns 6-9): its cosine is 1 - 2 (qx^2 + qy^2)."""
    qx, qy = states[..., 7], states[..., 8]
    return np.arccos(np.clip(1.0 - 2.0 * (qx * qx + qy * qy), -1.0, 1.0))


def reach(drones: list[dict], times: np.ndarray, tilt0: np.ndarray,
          substeps: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(horizontal, vertical) distance (m), each (len(times), len(drones)), that each drone could at most have
    moved by each time beyond where its spawn velocity carries it: with full thrust pointed sideways (twr g sin(tilt))
    while tilting from its spawn tilt `tilt0` (rad) at its roll-rate limit once its command latency has passed, and
    from the first instant climbing or sinking at g max(twr - 1, 1), each as if the other took no thrust; no drag,
    no motor lag.
    Generous on purpose: a target that moves out of it forces any policy off the target, so follow's drop-off at
    the start has this as its floor."""
    dt = (times[1] - times[0]) / substeps if len(times) > 1 else 0.0
    fine = np.arange((len(times) - 1) * substeps + 1) * dt
    twr = np.array([binding.thrust_to_weight(d) for d in drones])
    rate = np.array([d["max_rate"][0] for d in drones])
    since = fine[:, None] - np.array([d["latency"] for d in drones])      # time since the first command arrived
    acc_h = twr * GRAVITY * np.sin(np.minimum(tilt0 + rate * np.maximum(since, 0.0), np.pi / 2))
    acc_v = np.broadcast_to(GRAVITY * np.maximum(twr - 1.0, 1.0), acc_h.shape)
    out = []
    for acc in (acc_h, acc_v):
        vel = np.concatenate([np.zeros((1, len(drones))), np.cumsum((acc[:-1] + acc[1:]) * 0.5 * dt, axis=0)])
        dist = np.concatenate([np.zeros((1, len(drones))), np.cumsum((vel[:-1] + vel[1:]) * 0.5 * dt, axis=0)])
        out.append(dist[::substeps])
    return out[0], out[1]


def straight_miss(offset: np.ndarray, velocity: np.ndarray) -> float:
    """How near (m) a drone flying on straight at `velocity` would come to a point `offset` from it: a drone
    that hit an obstacle it would have missed by flying straight turned into it; one that would have hit it
    anyway did not swerve."""
    ahead = max(0.0, float(np.dot(offset, velocity)) / max(1e-9, float(np.dot(velocity, velocity))))
    return float(np.linalg.norm(offset - velocity * ahead))


def crashes_of(make_policy, meta: dict, task: str, dr: str, episodes: int, seed: int,
               stop: Callable[[], None] | None = None) -> tuple[list[dict], list[dict], dict]:
    """(every counted crash, every counted drone-episode, drone-eval's metrics) of one task, from one run of
    drone-eval's own evaluation; `stop` as in evaluate_task (called before every step, ends it by raising)."""
    from policies.evaluate import evaluate_task

    tcfg = meta["train_config"]
    watch = CrashWatcher(task, meta["control_hz"])
    metrics = evaluate_task(make_policy, task, dr=dr, episodes=episodes, seed=seed, action_mode=meta["action_mode"],
                            control_hz=meta["control_hz"], physics_hz=meta["physics_hz"],
                            drone=tcfg["drone"] or None, course=tcfg["course"] or None, watch=watch,
                            stop=stop)
    return watch.crashes, watch.flights, metrics


def share(rows: list[dict], pred) -> str:
    k = sum(1 for r in rows if pred(r))
    return f"{k / len(rows):.2f}" if rows else "-"


def _by_terciles(values: np.ndarray, measure: np.ndarray, digits: int) -> str:
    """measure's mean over the flights in each third of values ("lo-hi: mean; ..."; "-" for an empty third)."""
    edges = np.quantile(values, [0, 1 / 3, 2 / 3, 1])
    cells = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (values >= lo) & (values <= hi)
        cells.append(f"{lo:.2f}-{hi:.2f}: " + (f"{measure[m].mean():.{digits}f}" if m.any() else "-"))
    return "; ".join(cells)


def report(task: str, crashes: list[dict], flights: list[dict]) -> list[str]:
    out = [f"## {task}: {len(crashes)} crashes in {len(flights)} episodes ({len(crashes) / max(1, len(flights)):.3f})"]
    phases = {"swarm": _slot_lines, "follow": _follow_lines}.get(task, lambda flights: [])
    if not crashes:
        return out + phases(flights)
    causes = sorted({c["cause"] for c in crashes})
    out.append("cause: " + ", ".join(f"{c} {sum(r['cause'] == c for r in crashes)}" for c in causes))
    out.append(f"within the first {EARLY_S:g} s: {share(crashes, lambda r: r['t'] < EARLY_S)} of the crashes; "
               f"median time {np.median([r['t'] for r in crashes]):.1f} s, median speed "
               f"{np.median([r['speed'] for r in crashes]):.1f} m/s")
    radius = np.array([f["radius"] for f in flights])
    twr = np.array([f["twr"] for f in flights])
    crashed = np.array([f["crashed"] for f in flights])
    height = np.array([f["height"] for f in flights])
    for name, values in (("drone radius m", radius), ("thrust-to-weight", twr), ("spawn height m", height)):
        out.append(f"crash rate by {name} (terciles): " + _by_terciles(values, crashed, 3))
    if task == "race":
        room = np.array([r["room_m"] for r in crashes])
        out.append(f"room the target ring left (ring radius - drone radius) at the crashes: median {np.median(room):.2f} m, "
                   f"under 0.4 m in {np.mean(room < 0.4):.2f}")
    if task == "obstacles":
        out += _obstacle_lines(crashes, flights)
    if task in ("hover", "goto"):
        out += _takeoff_lines(crashes, flights)
    if task == "swarm":
        near = [r for r in crashes if r["cause"] == "drone"]
        if near:
            out.append(f"drone contacts: median closing speed {np.median([r['closing_speed'] for r in near]):.1f} m/s, "
                       f"during the first {EARLY_S:g} s {share(near, lambda r: r['t'] < EARLY_S)}")
    return out + phases(flights)


def _phase_lines(task: str, flights: list[dict], on_target: str, error: str) -> list[str]:
    """Time on target and mean distance from it in each of the task's two phases, over every counted step."""
    radius, boundary, names = PHASES[task]
    out = []
    for phase, when in zip(names, (f"the first {boundary:g} s", f"after {boundary:g} s")):
        sums = np.sum([f[phase] for f in flights if phase in f], axis=0)
        if np.ndim(sums) and sums[0]:
            out.append(f"{phase} ({when}): {on_target} {sums[1] / sums[0]:.3f}, {error} {sums[2] / sums[0]:.2f} m "
                       "(watched each step)")
    return out


def _slot_lines(flights: list[dict]) -> list[str]:
    """How much of the swarm's time out of slot is the assembly, which even a perfect drone spends, and how much
    is holding: and the best a drone could do that flew straight to its slot at the speed limit from the first
    step (no acceleration, no turn) and held it exactly."""
    out = _phase_lines("swarm", flights, "in slot", "slot error")
    limit, horizon = sim_default("speed_limit")["swarm"], sim_default("horizon_s")["swarm"]
    if limit > 0 and flights:
        d = np.array([f["target_m"] for f in flights])
        best_in = np.mean(np.clip(1.0 - np.maximum(d - FORMATION_RADIUS, 0.0) / limit / horizon, 0.0, 1.0))
        best_err = np.mean(np.minimum(d / limit, horizon) * d / 2.0 / horizon)
        out.append(f"spawn to slot: median {np.median(d):.2f} m; flying straight there at the {limit:g} m/s speed "
                   f"limit and holding it exactly: in slot at most {best_in:.3f}, slot error at least {best_err:.2f} m")
    return out


def _follow_lines(flights: list[dict]) -> list[str]:
    """Whether follow's time off the target is the approach from the spawn, which every drone spends, or drones
    that lose a target they had; and which drones those are, by size (a large drone turns slowly)."""
    out = _phase_lines("follow", flights, f"within {FOLLOW_RADIUS:g} m", "error")
    out += _approach_lines(flights)
    tracked = [f for f in flights if f.get("tracking", (0,))[0]]
    if not tracked:
        return out
    off = np.array([1.0 - f["tracking"][1] / f["tracking"][0] for f in tracked])
    radius = np.array([f["radius"] for f in tracked])
    lost = off > LOST_SHARE
    out.append(f"drones off the target for over {LOST_SHARE:.0%} of the tracking: {int(lost.sum())} of {len(tracked)}"
               + (f" (radius {', '.join(f'{r:.2f}' for r in np.sort(radius[lost]))} m)" if lost.any() else ""))
    out.append("share of the tracking off the target by drone radius m (terciles): " + _by_terciles(radius, off, 4))
    return out


def _approach_lines(flights: list[dict]) -> list[str]:
    """How the drones get onto the moving target and stay on it while settling: of those spawned within the radius,
    how many drop off it (it moves from the first step, the drone starts with a random velocity of its own), against
    how many no drone could have kept it; of those spawned farther, how soon they first arrive and how many
    overshoot and leave again. Why: a late start, a slow approach and an overshoot cost follow's score alike, and
    they call for different fixes."""
    out = []
    near = [f for f in flights if "target_m" in f and f["target_m"] < FOLLOW_RADIUS]
    if near:   # the target moves from the first step, the drone not with it: a late start drops it out
        left = sum(bool(f.get("left_again")) for f in near)
        must = sum(bool(f.get("must_leave")) for f in near)
        out.append(f"spawned within {FOLLOW_RADIUS:g} m of the target: {len(near)}; left it within the first "
                   f"{SETTLE_S:g} s: {left / len(near):.3f} of them (a drone at its thrust and roll-rate limits "
                   f"from the first step could not have stayed on: {must / len(near):.3f})")
    away = [f for f in flights if f.get("target_m", 0.0) >= FOLLOW_RADIUS]
    if away:
        reached = np.array([f["reached_s"] for f in away if "reached_s" in f])
        left = sum(bool(f.get("left_again")) for f in away if "reached_s" in f)
        line = f"spawned {FOLLOW_RADIUS:g} m or more off the target: {len(away)}; "
        if len(reached):
            line += (f"first within {FOLLOW_RADIUS:g} m after a median {np.median(reached):.2f} s (90th percentile "
                     f"{np.percentile(reached, 90):.2f} s), left it again within the first {SETTLE_S:g} s: "
                     f"{left / len(reached):.3f} of them; ")
        out.append(line + f"never within it in the first {SETTLE_S:g} s: {1.0 - len(reached) / len(away):.3f}")
    return out


def _takeoff_lines(crashes: list[dict], flights: list[dict]) -> list[str]:
    """hover and goto start a share of their drones on the floor: whether the crashes are take-offs or flights that
    come down, and how they hit (falling straight, or tipped over)."""
    ground = np.array([f["height"] < GROUND_M for f in flights])
    crashed = np.array([f["crashed"] for f in flights])
    rate = [f"{crashed[m].mean():.3f}" if m.any() else "-" for m in (ground, ~ground)]
    out = [f"spawned on the floor: {ground.mean():.2f} of the episodes, crash rate {rate[0]}; in the air: {rate[1]}"]
    floor = [r for r in crashes if r["cause"] == "floor"]
    if floor:
        out.append(f"floor crashes: {len(floor)}; median vertical speed {np.median([r['vz'] for r in floor]):.1f} "
                   f"m/s, tilt {np.median([r['tilt_deg'] for r in floor]):.0f} deg (tilted over 60 deg: "
                   f"{share(floor, lambda r: r['tilt_deg'] > 60.0)}), median time "
                   f"{np.median([r['t'] for r in floor]):.1f} s")
    return out


def _obstacle_lines(crashes: list[dict], flights: list[dict]) -> list[str]:
    """Would flying straight at the goal explain the crashes, and could the drone see what it hit?"""
    blocked = np.array([f["line_blocked"] for f in flights])
    crashed = np.array([f["crashed"] for f in flights])
    out = [f"straight line spawn-goal through an obstacle: {blocked.mean():.2f} of the episodes; crash rate "
           f"{crashed[blocked].mean() if blocked.any() else float('nan'):.3f} where it is, "
           f"{crashed[~blocked].mean() if (~blocked).any() else float('nan'):.3f} where it is clear"]
    hits = [r for r in crashes if "on_line" in r]
    if hits:
        out.append(f"the obstacle hit lay on that line in {share(hits, lambda r: r['on_line'])} of the crashes; "
                   f"{LOOKBACK_S:g} s before, it was listed in the observation in "
                   f"{share(hits, lambda r: r['listed_before'])}, median gap "
                   f"{np.median([r['gap_before_m'] for r in hits]):.1f} m, the drone heading a median "
                   f"{np.median([r['heading_off_deg'] for r in hits]):.0f} deg off it")
        listed = np.array([r["listed_for_s"] for r in hits])
        out.append(f"listed without a break for a median {np.median(listed):.2f} s before the crash (up to "
                   f"{HISTORY_S:g} s looked at); for under 1 s in {np.mean(listed < 1.0):.2f} of the crashes")
        out.append(f"flying straight on from there, the drone would have hit it in "
                   f"{share(hits, lambda r: r['straight_miss_m'] < 0.0)} of the crashes (did not swerve) and missed it "
                   f"in the rest (turned into it; median miss "
                   f"{np.median([r['straight_miss_m'] for r in hits if r['straight_miss_m'] >= 0.0] or [np.nan]):.2f} m)")
    return out


def main(argv: list[str] | None = None) -> int:
    from policies.evaluate import TABLE_COLUMNS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", required=True, help=f"an ONNX file, a drone-train checkpoint, or {SCRIPTED!r} for "
                                                   "the hand-written controller (drone_sim.controllers)")
    p.add_argument("--tasks", default="race,swarm,obstacles")
    p.add_argument("--episodes", type=int, default=512, help="drone-episodes per task (drone-eval's --episodes)")
    p.add_argument("--seed", type=int, default=12345, help="drone-eval's default seed")
    p.add_argument("--dr", default="default", choices=drone_sim.DR_PRESETS, help="the drones flown")
    p.add_argument("--json", help="also write every crash here")
    p.add_argument("--scripted-speed", type=float, help="with --policy scripted: the speed it asks for at most "
                                                        "(m/s; default: no cap)")
    args = p.parse_args(argv)
    make_policy, meta = load(args.policy, args.scripted_speed)
    doc = {}
    task, interrupted = "", False
    try:
        with StopRequest() as stop:     # Ctrl-C and SIGTERM, checked at every evaluation step
            tasks = list(drone_sim.parse_tasks(args.tasks))
            print(f"crash_report: {', '.join(tasks)}, {args.episodes} episodes each, seed {args.seed} ...",
                  file=sys.stderr, flush=True)
            for task in tasks:
                crashes, flights, metrics = crashes_of(make_policy, meta, task, args.dr, args.episodes, args.seed,
                                                       stop=stop.check)
                print("\n".join(report(task, crashes, flights)))
                columns = ", ".join(f"{name} {metrics[key]:.3f}" for name, key in TABLE_COLUMNS[task])
                print(f"{columns} (drone-eval's columns)\n")
                doc[task] = {"episodes": len(flights), "crashes": crashes}
    except KeyboardInterrupt:
        interrupted = True
        print(f"crash_report: interrupted during {task}; the tasks reported above are complete"
              + (f" and written to {args.json}" if args.json and doc else ""), file=sys.stderr)
    # the tasks that finished are whole and kept; when a stop came before any did, an earlier file is left as it was
    if args.json and (doc or not interrupted):
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
