"""drone_sim: a fast multi-task, multi-agent quadrotor simulator in C with a zero-copy Python binding.

    import drone_sim
    env = drone_sim.make(tasks="race,swarm", num_envs=16, agents_per_env=8, action_mode="ctbr", seed=0)
    obs, _ = env.reset()
    obs, rewards, terminals, truncations, infos = env.step(actions)

The constants, enum names and observation layout come from the C headers through the binding, and so do
the thrust figures of a drone (hover_omega, hover_action, hover_thrust_fraction, max_thrust,
thrust_to_weight): every other package reads them from here instead of re-deriving them.
"""
from .binding import (GRAVITY, OBS_LAYOUT, OBS_SCALES, OBS_STRIDES, PRIV_LAYOUT, assign_slots, hover_action,
                      hover_omega, hover_thrust_fraction, max_thrust, nearest_obstacles, obs_self, thrust_to_weight)
from .config import (ACTION_MODES, DR_PRESETS, FORMATIONS, NOMINAL_DRONE, TASKS, build_config, obstacle_counts,
                     parse_tasks, ring_count)
from .env import OBS_SIZE, OBS_VERSION, PRIV_SIZE, PRIV_VERSION, STATE_SIZE, DroneVecEnv, make, observe, observe_swarm
from .ocean import make_ocean
from .params import FileFormatError, load_course, load_drone_params

__version__ = "0.1.0"

__all__ = [
    "GRAVITY", "OBS_LAYOUT", "OBS_SCALES", "OBS_STRIDES", "PRIV_LAYOUT", "PRIV_SIZE", "PRIV_VERSION", "assign_slots",
    "hover_action", "hover_omega", "hover_thrust_fraction",
    "max_thrust", "nearest_obstacles", "obs_self", "thrust_to_weight",
    "ACTION_MODES", "DR_PRESETS", "FORMATIONS", "NOMINAL_DRONE", "TASKS", "OBS_SIZE", "OBS_VERSION", "STATE_SIZE",
    "DroneVecEnv", "FileFormatError", "build_config", "load_course", "load_drone_params", "make", "make_ocean", "observe", "observe_swarm",
    "obstacle_counts", "parse_tasks", "ring_count", "__version__",
]
