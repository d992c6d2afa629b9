"""Deterministic evaluation of a policy on each task, on the nominal drone and on randomized drones."""
from __future__ import annotations

import math
from typing import Callable, Protocol

import numpy as np
import torch

import drone_sim
from drone_sim.config import TASK_SCORE

from .model import ActorCritic

# what the evaluation table shows per task: (column name, log key)
TABLE_COLUMNS = {
    "hover": [("success", "score"), ("time to target s", "time_to_target_s")],
    "goto": [("success", "score"), ("time to target s", "time_to_target_s")],
    "follow": [("within 0.5 m", "score"), ("tracking error m", "tracking_error_m")],
    "race": [("rings / episode", "score"), ("lap time s", "lap_time_s")],
    "swarm": [("in slot", "score"), ("formation error m", "formation_error_m")],
    "obstacles": [("success", "score"), ("time to goal s", "time_to_goal_s")],
}


class TorchPolicy:
    """obs batch -> deterministic actions, carrying LSTM state across steps and resetting it on episode ends."""

    def __init__(self, model: ActorCritic, num_agents: int, device: torch.device | str = "cpu"):
        self.model, self.device = model, device
        self.state = model.initial_state(num_agents, device)
        self.starts = torch.ones(num_agents, device=device)

    @torch.inference_mode()
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        o = torch.from_numpy(obs).to(self.device)
        mean, _, self.state = self.model(o, self.state, self.starts if self.model.is_lstm else None)
        return self.model.deterministic(mean).cpu().numpy()

    def episode_ended(self, done: np.ndarray) -> None:
        self.starts = torch.from_numpy(done.astype(np.float32)).to(self.device)


class PolicyActor:
    """A trained policy as a drone_sim.view actor (name, __call__(obs), reset(mask)), so the viewer,
    its video recorder and drone-view fly it exactly as they fly the built-in controllers."""

    def __init__(self, model: ActorCritic, num_agents: int, name: str = "policy"):
        self.name = name
        self.policy = TorchPolicy(model, num_agents)
        self.num_agents = num_agents

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.policy(obs)

    def reset(self, mask: np.ndarray | None = None) -> None:
        self.policy.episode_ended(np.ones(self.num_agents, bool) if mask is None else np.asarray(mask))


class StepWatcher(Protocol):
    """Sees every step of an evaluation, for a caller that needs more than the logs (scripts/crash_report.py
    classifies the crashes), so that it watches drone-eval's own episodes instead of running a copy of them.
    `step` counts within the env-episode: 0 is a fresh one, with new drones."""

    def before(self, env: drone_sim.DroneVecEnv, step: int) -> None: ...

    def after(self, env: drone_sim.DroneVecEnv, step: int, terminals: np.ndarray, truncations: np.ndarray) -> None: ...


def evaluate_task(policy_factory: Callable[[int], Callable], task: str, *, dr: str, episodes: int, seed: int,
                  action_mode: str, control_hz: float, physics_hz: float, drone=None, course=None,
                  num_envs: int = 8, agents_per_env: int = 8, watch: StepWatcher | None = None,
                  stop: Callable[[], None] | None = None) -> dict[str, float]:
    """Run the policy on one task for whole env-episodes until at least `episodes` drone-episodes were
    logged; per-task metrics from the C logs.

    `stop` is called before every step and ends the evaluation by raising (a StopRequest's check): a
    KeyboardInterrupt that Python dropped inside a `__del__` or a callback would otherwise leave a SIGTERM'd
    evaluation running to its end.

    The env runs in evaluation mode: every env-episode lasts its full horizon from reset and only the
    episode each drone began it with counts. Counting every episode that happened to end (as training
    statistics do) would over-count short ones, i.e. crashes, and stopping at the first N episodes would
    do the same.
    """
    env = drone_sim.make(tasks=task, num_envs=num_envs, agents_per_env=agents_per_env, action_mode=action_mode,
                         seed=seed, dr=dr, drone=drone, course=course, physics_hz=physics_hz, control_hz=control_hz,
                         evaluation=True)
    horizon = int(env.config["horizon_s"][drone_sim.TASKS.index(task)] * control_hz + 0.5)
    rounds = math.ceil(episodes / env.num_agents)
    policy = policy_factory(env.num_agents)
    obs, _ = env.reset(seed)
    sums: dict[str, float] = {}
    n = 0.0
    aux_name = TASK_SCORE[task][1]
    aux_sum = aux_n = 0.0
    for step in range(rounds * horizon):
        if stop is not None:
            stop()
        if watch is not None:
            watch.before(env, step % horizon)
        obs, _, term, trunc, _ = env.step(policy(obs))
        if hasattr(policy, "episode_ended"):
            policy.episode_ended(term | trunc)
        if watch is not None:
            watch.after(env, step % horizon, term, trunc)
        logs = env.logs().get(task)
        if logs:
            k = logs["episodes"]
            for key, v in logs.items():
                if key not in ("episodes", aux_name) and not math.isnan(v):
                    sums[key] = sums.get(key, 0.0) + v * k
            if not math.isnan(logs[aux_name]):
                aux_sum += logs[aux_name] * k
                aux_n += k
            n += k
    env.close()
    if n != rounds * env.num_agents:
        raise RuntimeError(f"evaluation of {task} logged {n:g} episodes, expected {rounds * env.num_agents}")
    out = {key: v / n for key, v in sums.items()}
    out["episodes"] = n
    out[aux_name] = aux_sum / aux_n if aux_n else float("nan")
    return out


def evaluate_ocean(policy_factory: Callable[[int], Callable], name: str, *, episodes: int, seed: int,
                   agents_per_env: int | None = None, num_envs: int = 64, max_steps: int = 100_000,
                   stop: Callable[[], None] | None = None) -> dict[str, float]:
    """Average log of an ocean regression game over at least `episodes` finished episodes; `stop` as in
    evaluate_task.

    Every episode that ends counts, so short episodes weigh a little more than long ones; in these games a
    short episode is a lost one (the pole fell, the snake died, the balls ran out), which makes the figure
    conservative rather than flattering.
    """
    env = drone_sim.make_ocean(name, num_envs=num_envs, seed=seed, agents_per_env=agents_per_env)
    policy = policy_factory(env.num_agents)
    obs, _ = env.reset(seed)
    sums: dict[str, float] = {}
    n = 0.0
    for _ in range(max_steps):
        if stop is not None:
            stop()
        obs, _, term, trunc, _ = env.step(policy(obs))
        if hasattr(policy, "episode_ended"):
            policy.episode_ended(term | trunc)
        logs = env.logs().get(name)
        if logs:
            k = logs["episodes"]
            for key, v in logs.items():
                if key != "episodes":
                    sums[key] = sums.get(key, 0.0) + v * k
            n += k
            if n >= episodes:
                break
    env.close()
    out = {key: v / max(n, 1e-9) for key, v in sums.items()}
    out["episodes"] = n
    return out


def drone_sets(meta: dict, which: str = "both") -> list[str]:
    """The drone sets drone-eval evaluates: the nominal drone and/or the run's randomization preset, or a named
    preset."""
    dr = meta["train_config"]["dr"]
    if which in drone_sim.DR_PRESETS:
        return [which]
    if which == "randomized":
        return [dr if dr != "nominal" else "default"]
    return ["nominal", dr if dr != "nominal" else "default"]


def evaluate_policy(make_policy: Callable[[int], Callable], meta: dict, tasks: list[str], sets: list[str], *,
                    episodes: int, seed: int, stop: Callable[[], None] | None = None) -> list[dict]:
    """drone-eval's table as data, one row per (task, drone set): what --json writes and what drone-sweep's
    objective reads, so neither parses the printed table. Each row has the task's metrics from evaluate_task
    plus task, drones, score_name and detail_name (what `score` and the detail column mean). `stop`: as in
    evaluate_task."""
    tcfg = meta["train_config"]
    rows = []
    for task in tasks:
        for dr in sets:
            m = evaluate_task(make_policy, task, dr=dr, episodes=episodes, seed=seed,
                              action_mode=meta["action_mode"], control_hz=meta["control_hz"],
                              physics_hz=meta["physics_hz"], drone=tcfg["drone"] or None,
                              course=tcfg["course"] or None, stop=stop)
            (n1, _), (n2, k2) = TABLE_COLUMNS[task]
            rows.append({"task": task, "drones": dr, **m, "score_name": n1, "detail_name": n2, "detail_key": k2})
    return rows
