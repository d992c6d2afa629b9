"""Which drone drone-deploy predicts with, compares hover thrust against and draws: decided here, once.

A `--drone` params file is the user's measured drone and wins: it is what is actually flying. Without
one, the policy's nominal drone (what it was trained around) is the best guess, and the simulator's
NOMINAL_DRONE only stands in before a policy is loaded (the operator window opens before that).
"""
from __future__ import annotations

from typing import Any

import drone_sim
from policies.onnx_policy import OnnxPolicy


def flown_drone(drone_file: str | None, policy: OnnxPolicy | None) -> dict[str, Any]:
    """The drone's params: the --drone file, else the policy's drone, else drone_sim.NOMINAL_DRONE.

    A --drone file that cannot be read raises (FileFormatError / OSError): flying with another drone's
    numbers than the one asked for would be a silent substitution."""
    if drone_file:
        return drone_sim.load_drone_params(drone_file)
    if policy is not None:
        return {**drone_sim.NOMINAL_DRONE, **policy.drone}
    return dict(drone_sim.NOMINAL_DRONE)
