"""The policy's observation from the state estimate and the task, built by the simulator's own C code.

drone_sim.observe calls obs_build in drone_sim/csrc/observation.h through the binding: the same function
that builds every training observation. This module only gathers its inputs (navigation frame, ENU/FLU,
SI units); it must never compute an observation value itself, so that a layout change in C cannot leave
deploy feeding the old layout (and the layout version in the policy file is checked against
drone_sim.OBS_VERSION at load time).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

import drone_sim

from .estimate import Estimate
from .targets import TargetState


def build_observation(est: Estimate, target: TargetState, last_action: np.ndarray, drone: Mapping) -> np.ndarray:
    """(OBS_SIZE,) float32 observation for one tick. drone: the params of the drone flown (deploy.drone.flown_drone),
    whose size and hover thrust the observation carries."""
    return drone_sim.observe(
        est.position, est.velocity, est.quaternion, est.rates, last_action, target.position, task=target.task,
        target_velocity=target.velocity, ring=target.ring, next_ring=target.next_ring, drones=(),
        obstacles=target.obstacles, drone=drone)
