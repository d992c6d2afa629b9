"""Ocean envs: small, fast C games that ride along with the drone sim as regression targets for the trainer.

Each game is one C header in drone_sim/ocean/csrc (the contract is ocean.h); one Cython class drives any of
them. OceanVecEnv has the vector API of drone_sim.env.DroneVecEnv with discrete actions:

    import drone_sim
    env = drone_sim.make_ocean("cartpole", num_envs=1024, seed=0)
    obs, _ = env.reset()
    obs, rewards, terminals, truncations, infos = env.step(actions)   # actions: (num_agents,) ints
    env.logs()   # {"cartpole": {"episodes", "episode_return", "episode_length", "score"}}

As with the drone env, the arrays step() returns are the env's own buffers, rewritten in place at every step
(copy them to keep them), and episodes auto-reset per agent inside step().
"""
from __future__ import annotations

import gymnasium
import numpy as np

from . import binding

_SPECS = {s["name"]: s for s in binding.specs()}
ENVS: tuple[str, ...] = tuple(_SPECS)
DRAW_DTYPE = binding.DRAW_DTYPE
DRAW_KINDS = binding.DRAW_KINDS


def spec(name: str) -> dict:
    """The env's spec: obs_size, num_actions, default_agents, min_agents, max_agents, aspect (canvas w / h)."""
    if name not in _SPECS:
        raise ValueError(f"unknown ocean env {name!r}; known envs: {', '.join(ENVS)}")
    return dict(_SPECS[name])


class OceanVecEnv:
    """num_envs copies of one ocean env x agents_per_env agents, one flat batch of agents."""

    def __init__(self, name: str, num_envs: int = 1, agents_per_env: int | None = None, seed: int = 0):
        s = spec(name)
        self.name = name
        self.num_envs = int(num_envs)
        self.agents_per_env = s["default_agents"] if agents_per_env is None else int(agents_per_env)
        if self.num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        if not s["min_agents"] <= self.agents_per_env <= s["max_agents"]:
            raise ValueError(f"{name}: agents_per_env must be within [{s['min_agents']}, {s['max_agents']}], "
                             f"got {self.agents_per_env}")
        self.num_agents = self.num_envs * self.agents_per_env
        self.obs_size = s["obs_size"]
        self.num_actions = s["num_actions"]
        self.aspect = s["aspect"]
        n = self.num_agents
        self.observations = np.zeros((n, self.obs_size), dtype=np.float32)
        self.actions = np.zeros(n, dtype=np.int32)
        self.rewards = np.zeros(n, dtype=np.float32)
        self.terminals = np.zeros(n, dtype=np.uint8)
        self.truncations = np.zeros(n, dtype=np.uint8)
        # Observations are normalized to about [-1, 1] but not clipped, so the space states no bound.
        self.single_observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (self.obs_size,), np.float32)
        self.single_action_space = gymnasium.spaces.Discrete(self.num_actions)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (n, self.obs_size), np.float32)
        self.action_space = gymnasium.spaces.MultiDiscrete(np.full(n, self.num_actions, dtype=np.int64))
        self._seed = int(seed)
        self._c = binding.COceanVec(name, self.num_envs, self.agents_per_env, self.observations, self.actions,
                                    self.rewards, self.terminals, self.truncations, self._seed)

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self._seed = int(seed)
        self._c.reset(self._seed)
        return self.observations, {}

    def step(self, actions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Advance one step. actions: (num_agents,) integers in [0, num_actions); None after writing env.actions."""
        if actions is not None and actions is not self.actions:
            a = np.asarray(actions)
            if a.shape != self.actions.shape:
                raise ValueError(f"{self.name}: actions must have shape {self.actions.shape} (one per agent), "
                                 f"got {a.shape}")
            if a.dtype.kind not in "iu":
                raise TypeError(f"{self.name}: actions must be integers (discrete, 0..{self.num_actions - 1}), "
                                f"got dtype {a.dtype}")
            np.copyto(self.actions, a, casting="unsafe")
        self._c.step()
        return (self.observations, self.rewards, self.terminals.view(np.bool_), self.truncations.view(np.bool_), {})

    def close(self) -> None:
        self._c = None

    def logs(self, clear: bool = True) -> dict[str, dict[str, float]]:
        """Averages over the episodes finished since the last call, keyed by env name; {} when none ended."""
        s = self._c.logs(clear)
        n = s["n"]
        if n <= 0:
            return {}
        return {self.name: {"episodes": n, "episode_return": s["episode_return"] / n,
                            "episode_length": s["episode_length"] / n, "score": s["score"] / n}}

    def render_commands(self, env_index: int = 0) -> np.ndarray:
        """Env env_index's display list: a structured array of DRAW_DTYPE (kind: 0 rect, 1 circle, 2 line;
        x, y, w, h in the [0, 1] x [0, 1] canvas, y down; r, g, b, a), to draw in order. See ocean.h."""
        return self._c.render(env_index)


def make_ocean(name: str, num_envs: int = 1, seed: int = 0, agents_per_env: int | None = None) -> OceanVecEnv:
    """Create num_envs copies of the ocean env `name` (one of ENVS), reset with `seed`."""
    env = OceanVecEnv(name, num_envs, agents_per_env, seed)
    env.reset(seed)
    return env


__all__ = ["DRAW_DTYPE", "DRAW_KINDS", "ENVS", "OceanVecEnv", "make_ocean", "spec"]
