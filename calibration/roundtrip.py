"""The params file back in the simulator: does the simulated drone hover where the real motor said it would?

The simulator loads the written file (drone_sim.make(drone=path), randomization off), the project's PID
hover controller flies it to its hover target through the simulated flight controller's rate loop and
mixer, and the motor speeds it settles at (root mean square of the four, so the number is the speed whose
thrust equals the mean thrust) are compared with the speed at which the MEASURED thrust curve reaches a
quarter of the weight. That closes the loop file -> loader -> C physics without trusting any formula.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def sim_hover_speed(params_path: str | Path, seconds: float = 5.0, control_hz: float = 50.0) -> dict:
    """Fly the file's drone with the hover controller; motor speed and height error over the last second."""
    import drone_sim
    from drone_sim.controllers import HoverController
    from drone_sim.params import load_drone_params

    d = load_drone_params(params_path)
    env = drone_sim.make(tasks="hover", num_envs=1, agents_per_env=4, action_mode="ctbr", dr="nominal",
                         drone=params_path, seed=1, control_hz=control_hz, horizon_s={"hover": seconds + 10.0})
    ctl = HoverController(env.num_agents, max_rate=d["max_rate"])
    obs, _ = env.reset()
    steps = int(seconds * control_hz)
    last = max(1, int(control_hz))
    speeds, errs = [], []
    for k in range(steps):
        obs, _, term, trunc, _ = env.step(ctl(obs, env.control_dt))
        ctl.reset(term | trunc)
        if k >= steps - last:
            s = env.states()
            speeds.append(np.sqrt(np.mean(s[:, 13:17].astype(float) ** 2, axis=1)))
            pos, _ = env.targets()
            errs.append(np.linalg.norm(s[:, 0:3] - pos, axis=1))
    env.close()
    return {"speed": float(np.mean(speeds)), "speed_spread": float(np.std(speeds)),
            "position_error": float(np.mean(errs)), "formula_speed": drone_sim.hover_omega(d)}
