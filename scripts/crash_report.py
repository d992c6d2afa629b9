"""What a policy's crashes are: for each task, every crash of a drone-eval run with what it hit, when, how fast,
and on which drone, and the crash rate by drone size, thrust-to-weight and (race) the room a ring leaves.

    python scripts/crash_report.py --policy policies/pretrained/multitask_ctbr.onnx [--tasks race,swarm,obstacles]
    python scripts/crash_report.py --policy runs/X/model.pt --episodes 512 --json crashes.json

Why: drone-eval says how often a policy crashes; deciding what to change (the observation, the reward, the
curriculum, the randomization) needs to know which crashes they are. The episodes are drone-eval's own
(evaluation mode, same seed, same drones and courses, deterministic actions), so the counts add up to its
crash column.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import drone_sim  # noqa: E402
from drone_sim import binding  # noqa: E402

EARLY_S = 2.0     # crashes this soon after the start: the spawn (or, in swarm, the assembly) rather than the flight


def load(path: str):
    """(make_policy(n), meta) of an ONNX file or a checkpoint, the way drone-eval loads them."""
    from policies.cli import _load_onnx
    if path.endswith(".onnx"):
        policy, meta = _load_onnx(path)
        return (lambda n: policy.clone()), meta
    from policies.checkpoint import load_policy
    from policies.evaluate import TorchPolicy
    model, meta = load_policy(path)
    return (lambda n: TorchPolicy(model, n)), meta


def crashes_of(make_policy, meta: dict, task: str, dr: str, episodes: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(every counted crash, every counted drone-episode) of one task: drone-eval's evaluation loop, watched."""
    tcfg = meta["train_config"]
    env = drone_sim.make(tasks=task, num_envs=8, agents_per_env=8, action_mode=meta["action_mode"], seed=seed, dr=dr,
                         drone=tcfg["drone"] or None, course=tcfg["course"] or None, physics_hz=meta["physics_hz"],
                         control_hz=meta["control_hz"], evaluation=True)
    n = env.num_agents
    horizon = int(env.config["horizon_s"][drone_sim.TASKS.index(task)] * meta["control_hz"] + 0.5)
    dt = 1.0 / meta["control_hz"]
    policy = make_policy(n)
    obs, _ = env.reset(seed)
    crashes, flights = [], []
    for _ in range(math.ceil(episodes / n)):
        drones = [env.agent_info(i)["drone"] for i in range(n)]
        counted = np.ones(n, bool)            # only the episode each drone began the env-episode with counts
        for i, d in enumerate(drones):
            flights.append({"radius": d["radius"], "twr": binding.thrust_to_weight(d), "crashed": False})
        first = len(flights) - n
        for step in range(horizon):
            before = env.states().copy()
            targets = env.targets()[0].copy()
            obs, _, term, trunc, _ = env.step(policy(obs))
            if hasattr(policy, "episode_ended"):
                policy.episode_ended(term | trunc)
            for i in np.flatnonzero(term & counted):
                info = env.agent_info(int(i))
                if not info["crash_cause"]:
                    counted[i] = False        # left the arena: not a crash
                    continue
                e0 = (i // 8) * 8
                others = [j for j in range(e0, e0 + 8) if j != i]
                rel = before[others, :3] - before[i, :3]
                k = others[int(np.argmin(np.linalg.norm(rel, axis=1)))]
                row = {"cause": info["crash_cause"], "t": (step + 1) * dt, "speed": float(np.linalg.norm(before[i, 3:6])),
                       "radius": drones[i]["radius"], "twr": binding.thrust_to_weight(drones[i]),
                       "nearest_drone_m": float(np.linalg.norm(before[k, :3] - before[i, :3])),
                       "closing_speed": float(-np.dot(before[k, 3:6] - before[i, 3:6],
                                                      (before[k, :3] - before[i, :3])
                                                      / max(1e-6, np.linalg.norm(before[k, :3] - before[i, :3]))))}
                if task == "race":
                    rings = env.env_info(int(i // 8))["course"]["rings"]
                    ring = min(rings, key=lambda g: np.linalg.norm(np.array(g["position"]) - targets[i]))
                    row["room_m"] = ring["radius"] - drones[i]["radius"]      # how far off centre the drone may pass
                crashes.append(row)
                flights[first + i]["crashed"] = True
                counted[i] = False
            counted &= ~(term | trunc)
    env.close()
    return crashes, flights[:episodes]


def share(rows: list[dict], pred) -> str:
    k = sum(1 for r in rows if pred(r))
    return f"{k / len(rows):.2f}" if rows else "-"


def report(task: str, crashes: list[dict], flights: list[dict]) -> list[str]:
    out = [f"## {task}: {len(crashes)} crashes in {len(flights)} episodes ({len(crashes) / max(1, len(flights)):.3f})"]
    if not crashes:
        return out
    causes = sorted({c["cause"] for c in crashes})
    out.append("cause: " + ", ".join(f"{c} {sum(r['cause'] == c for r in crashes)}" for c in causes))
    out.append(f"within the first {EARLY_S:g} s: {share(crashes, lambda r: r['t'] < EARLY_S)} of the crashes; "
               f"median time {np.median([r['t'] for r in crashes]):.1f} s, median speed "
               f"{np.median([r['speed'] for r in crashes]):.1f} m/s")
    radius = np.array([f["radius"] for f in flights])
    twr = np.array([f["twr"] for f in flights])
    crashed = np.array([f["crashed"] for f in flights])
    for name, values in (("drone radius m", radius), ("thrust-to-weight", twr)):
        edges = np.quantile(values, [0, 1 / 3, 2 / 3, 1])
        cells = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            m = (values >= lo) & (values <= hi)
            cells.append(f"{lo:.2f}-{hi:.2f}: {crashed[m].mean():.3f}")
        out.append(f"crash rate by {name} (terciles): " + "; ".join(cells))
    if task == "race":
        room = np.array([r["room_m"] for r in crashes])
        out.append(f"room the target ring left (ring radius - drone radius) at the crashes: median {np.median(room):.2f} m, "
                   f"under 0.4 m in {np.mean(room < 0.4):.2f}")
    if task == "swarm":
        near = [r for r in crashes if r["cause"] == "drone"]
        if near:
            out.append(f"drone contacts: median closing speed {np.median([r['closing_speed'] for r in near]):.1f} m/s, "
                       f"during the first {EARLY_S:g} s {share(near, lambda r: r['t'] < EARLY_S)}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", required=True, help="an ONNX file or a drone-train checkpoint")
    p.add_argument("--tasks", default="race,swarm,obstacles")
    p.add_argument("--episodes", type=int, default=512, help="drone-episodes per task (drone-eval's --episodes)")
    p.add_argument("--seed", type=int, default=12345, help="drone-eval's default seed")
    p.add_argument("--dr", default="default", choices=drone_sim.DR_PRESETS, help="the drones flown")
    p.add_argument("--json", help="also write every crash here")
    args = p.parse_args(argv)
    make_policy, meta = load(args.policy)
    doc = {}
    for task in drone_sim.parse_tasks(args.tasks):
        crashes, flights = crashes_of(make_policy, meta, task, args.dr, args.episodes, args.seed)
        print("\n".join(report(task, crashes, flights)) + "\n")
        doc[task] = {"episodes": len(flights), "crashes": crashes}
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
