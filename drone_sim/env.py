"""The vector env users and the trainer hold: gymnasium spaces, numpy buffers, reset / step / logs.

The buffers are allocated once here and filled in place by C at every step; what step() returns are
those same arrays (copy them if you keep them across steps). Auto-reset is per agent and happens inside
step(): when an agent's episode ends, the reward and flags describe the transition that ended it and the
observation is already the first one of its next episode.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import gymnasium
import numpy as np

from . import binding
from .config import ACTION_MODES, CRASH_CAUSES, TASKS, TASK_SCORE, build_config
from .params import load_course, load_drone_params

OBS_SIZE: int = binding.OBS_DIM
OBS_VERSION: int = binding.OBS_LAYOUT_VERSION
STATE_SIZE: int = binding.STATE_SIZE
PRIV_SIZE: int = binding.PRIV_DIM
PRIV_VERSION: int = binding.PRIV_LAYOUT_VERSION


class DroneVecEnv:
    """num_envs envs x agents_per_env drones, one flat batch of agents."""

    def __init__(self, config: dict, num_envs: int = 1, agents_per_env: int = 1, seed: int = 0):
        self.config = config
        self.num_envs = int(num_envs)
        self.agents_per_env = int(agents_per_env)
        self.num_agents = self.num_envs * self.agents_per_env
        self.action_mode = ACTION_MODES[config["action_mode"]]
        self.control_dt = config["physics_dt"] * config["substeps"]
        self.tasks = [t for t, w in zip(TASKS, config["task_weights"]) if w > 0]
        n = self.num_agents
        self.observations = np.zeros((n, OBS_SIZE), dtype=np.float32)
        self.actions = np.zeros((n, 4), dtype=np.float32)
        self.rewards = np.zeros(n, dtype=np.float32)
        self.terminals = np.zeros(n, dtype=np.uint8)
        self.truncations = np.zeros(n, dtype=np.uint8)
        # what an asymmetric critic may read besides the observation (privileged.h); refreshed as drones respawn
        self.privileged = np.zeros((n, PRIV_SIZE), dtype=np.float32)
        self.single_observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (OBS_SIZE,), np.float32)
        self.single_action_space = gymnasium.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (n, OBS_SIZE), np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (n, 4), np.float32)
        self._seed = int(seed)
        self._c = binding.CVecEnv(config, self.num_envs, self.agents_per_env, self.observations, self.actions,
                                  self.rewards, self.terminals, self.truncations, self._seed,
                                  privileged=self.privileged)
        self._states = np.zeros((n, STATE_SIZE), dtype=np.float32)

    # -- the gymnasium-style vector API ------------------------------------------------------------
    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self._seed = int(seed)
        self._c.reset(self._seed)
        return self.observations, {}

    def step(self, actions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Advance one control step. actions (num_agents, 4) in [-1, 1]; pass None after writing env.actions."""
        if actions is not None and actions is not self.actions:
            a = np.asarray(actions)
            if a.shape != self.actions.shape:
                raise ValueError(f"actions must have shape {self.actions.shape}, got {a.shape}")
            np.copyto(self.actions, a, casting="same_kind")
        self._c.step()
        return (self.observations, self.rewards, self.terminals.view(np.bool_), self.truncations.view(np.bool_), {})

    def close(self) -> None:
        self._c = None

    # -- logs --------------------------------------------------------------------------------------
    def logs(self, clear: bool = True) -> dict[str, dict[str, float]]:
        """Per-task averages over episodes finished since the last call (tasks with no episode left out)."""
        out = {}
        for task, s in zip(TASKS, self._c.logs(clear)):
            n = s["n"]
            if n <= 0:
                continue
            score_name, aux_name = TASK_SCORE[task]
            out[task] = {
                "episodes": n,
                "episode_return": s["episode_return"] / n,
                "episode_length": s["episode_length"] / n,
                "score": s["score"] / n,
                "crash_rate": s["crash"] / n,
                "out_of_bounds_rate": s["out_of_bounds"] / n,
                "timeout_rate": s["timeout"] / n,
                # what the crashes hit, per episode: floor, obstacle, drone, rim, state (non-finite)
                **{f"crash_{c}_rate": s[f"crash_{c}"] / n for c in CRASH_CAUSES},
                score_name: s["score"] / n,
                aux_name: s["aux_sum"] / s["aux_count"] if s["aux_count"] > 0 else float("nan"),
            }
        return out

    # -- inspection (viewer, tests, simulated vehicle) --------------------------------------------
    def states(self) -> np.ndarray:
        """(num_agents, 17): position, velocity, quaternion (w, x, y, z), body rates, 4 motor speeds."""
        self._c.get_states(self._states)
        return self._states

    def set_state(self, agent: int, state: Sequence[float]) -> None:
        self._c.set_state(agent, np.ascontiguousarray(state, dtype=np.float32))

    def targets(self) -> tuple[np.ndarray, np.ndarray]:
        pos = np.zeros((self.num_agents, 3), dtype=np.float32)
        vel = np.zeros((self.num_agents, 3), dtype=np.float32)
        self._c.get_targets(pos, vel)
        return pos, vel

    def set_target(self, agent: int, position: Sequence[float], velocity: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        self._c.set_target(agent, position, velocity)

    def agent_info(self, agent: int) -> dict:
        return self._c.agent_info(agent)

    def set_drone(self, agent: int, params: Mapping) -> None:
        self._c.set_drone(agent, dict(params))

    def env_info(self, env: int = 0) -> dict:
        info = self._c.env_info(env)
        info["task_name"] = TASKS[info["task"]]
        return info

    def nonfinite_actions(self) -> int:
        return self._c.nonfinite_actions()


def make(
    tasks: str | Sequence[str] | Mapping[str, float] = "hover",
    num_envs: int = 1,
    agents_per_env: int = 1,
    action_mode: str = "ctbr",
    seed: int = 0,
    dr: str | Mapping = "default",
    drone: str | Path | Mapping | None = None,
    course: str | Path | Mapping | None = None,
    physics_hz: float = 500.0,
    control_hz: float = 50.0,
    integrator: str = "rk4",
    **overrides,
) -> DroneVecEnv:
    """Create a vector of drone envs.

    tasks: 'hover', 'race,swarm', 'race:2,swarm:1', 'all', a list or a dict of weights.
    dr: 'nominal' (no randomization), 'default', 'wide', or a dict of DR overrides.
    drone: a params JSON path or a flat params dict; it becomes the nominal drone and randomization
    turns into tolerances around it. course: a course JSON path or dict that race episodes fly.
    overrides: simulator settings (see drone_sim.config), e.g. horizon_s={'hover': 5.0}.
    """
    if isinstance(drone, (str, Path)):
        drone = load_drone_params(drone)
    if isinstance(course, (str, Path)):
        course = load_course(course)
    cfg = build_config(tasks, action_mode, physics_hz, control_hz, integrator, dr, drone, course, **overrides)
    env = DroneVecEnv(cfg, num_envs, agents_per_env, seed)
    env.reset(seed)
    return env


def observe(
    position: Sequence[float],
    velocity: Sequence[float],
    quaternion: Sequence[float],
    body_rates: Sequence[float],
    last_action: Sequence[float],
    target_position: Sequence[float],
    task: str = "hover",
    target_velocity: Sequence[float] = (0.0, 0.0, 0.0),
    ring: Mapping | None = None,
    next_ring: Mapping | None = None,
    drones: Sequence[Mapping] = (),
    obstacles: Sequence[Mapping] = (),
    *,
    drone: Mapping,
) -> np.ndarray:
    """The policy observation for one drone, built by the simulator's own C code.

    World frame ENU (z up), body FLU, quaternion (w, x, y, z) body-to-world, SI units. ring and
    next_ring: {'position', 'normal', 'radius'}; drones: nearest first, {'position', 'velocity'};
    obstacles: nearest first, {'position', 'radius'}. drone: the flying drone's params (radius, mass,
    k_thrust, omega_max are read): the observation carries its size and hover thrust, and there is no
    default because a wrong drone would be a silent lie to the policy. Deploy calls this with its state
    estimate and the drone it flies (deploy.drone.flown_drone).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose among {', '.join(TASKS)}")
    return binding.observe({
        "position": position, "velocity": velocity, "quaternion": quaternion, "body_rates": body_rates,
        "last_action": last_action, "target_position": target_position, "target_velocity": target_velocity,
        "ring": ring, "next_ring": next_ring, "drones": drones, "obstacles": obstacles, "task": TASKS.index(task),
        "drone": drone,
    })


def observe_swarm(
    position: np.ndarray,
    velocity: np.ndarray,
    quaternion: np.ndarray,
    body_rates: np.ndarray,
    last_action: np.ndarray,
    target_position: np.ndarray,
    target_velocity: np.ndarray,
    neighbours: np.ndarray,
    neighbour_position: np.ndarray | None = None,
    neighbour_velocity: np.ndarray | None = None,
    task: str = "swarm",
    *,
    drone: Mapping | Sequence[Mapping],
) -> np.ndarray:
    """Observations of n drones in one call, each as observe() builds it: (n, OBS_SIZE).

    Row i of position, velocity, quaternion (w, x, y, z), body_rates, last_action, target_position and
    target_velocity is drone i (same frames and units as observe). neighbours (n, k) holds, for each drone, rows
    of neighbour_position / neighbour_velocity (default: position / velocity), nearest first, -1 after the last.
    drone: the params of every drone (one mapping) or of each (a sequence of n), as observe's drone.
    For a ground station flying a swarm: one call instead of one per vehicle, each of which converted its
    arguments from Python objects."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose among {', '.join(TASKS)}")

    def rows(name: str, a, width: int) -> np.ndarray:
        a = np.ascontiguousarray(a, dtype=np.float32)
        if a.ndim != 2 or a.shape[1] != width:
            raise ValueError(f"{name}: expected shape (n, {width}), got {a.shape}")
        return a

    pos = rows("position", position, 3)
    n = pos.shape[0]
    arrays = [pos]
    for name, a, width in (("velocity", velocity, 3), ("quaternion", quaternion, 4), ("body_rates", body_rates, 3),
                           ("last_action", last_action, 4), ("target_position", target_position, 3),
                           ("target_velocity", target_velocity, 3)):
        a = rows(name, a, width)
        if a.shape[0] != n:
            raise ValueError(f"{name}: {a.shape[0]} rows for {n} drones")
        arrays.append(a)
    npos = pos if neighbour_position is None else rows("neighbour_position", neighbour_position, 3)
    nvel = arrays[1] if neighbour_velocity is None else rows("neighbour_velocity", neighbour_velocity, 3)
    if nvel.shape[0] != npos.shape[0]:
        raise ValueError("neighbour_position and neighbour_velocity must have the same rows")
    nb = np.ascontiguousarray(neighbours, dtype=np.intc)
    if nb.ndim != 2 or nb.shape[0] != n:
        raise ValueError(f"neighbours: expected shape ({n}, k), got {nb.shape}")
    if nb.size and (nb.max() >= npos.shape[0] or nb.min() < -1):
        raise ValueError(f"neighbours: indices must be -1 or rows 0..{npos.shape[0] - 1} of neighbour_position")
    if isinstance(drone, Mapping):   # one drone for all: its figures once, not once per row
        selves = np.tile(np.array(binding.obs_self(drone), dtype=np.float32), (n, 1))
    else:
        drones = list(drone)
        if len(drones) != n:
            raise ValueError(f"drone: {len(drones)} params for {n} drones")
        selves = np.array([binding.obs_self(d) for d in drones], dtype=np.float32).reshape(n, 2)
    out = np.zeros((n, OBS_SIZE), dtype=np.float32)
    binding.observe_swarm(*arrays, nb, npos, nvel, np.ascontiguousarray(selves[:, 0]),
                          np.ascontiguousarray(selves[:, 1]), out, TASKS.index(task))
    return out
