import copy
from pathlib import Path

import numpy as np
import pytest

import drone_sim

DATA = Path(drone_sim.__file__).parent / "data"
G = 9.81


def nominal_drone(**changes) -> dict:
    d = copy.deepcopy(drone_sim.NOMINAL_DRONE)
    d.update(changes)
    return d


def single(task="hover", mode="rpm", drone=None, horizon=100.0, **kw):
    """One drone, no randomization, a long horizon: a physics test bench."""
    return drone_sim.make(tasks=task, num_envs=1, agents_per_env=kw.pop("agents", 1), action_mode=mode,
                          dr="nominal", drone=drone if drone is not None else nominal_drone(), seed=kw.pop("seed", 0),
                          horizon_s={task: horizon}, **kw)


def state(pos=(0, 0, 3), vel=(0, 0, 0), quat=(1, 0, 0, 0), rates=(0, 0, 0), motors=(0, 0, 0, 0)):
    return np.array([*pos, *vel, *quat, *rates, *motors], dtype=np.float32)


@pytest.fixture
def data_dir() -> Path:
    return DATA
