"""`drone-view` with `--policy`: reads a drone-train checkpoint or a drone-export ONNX file for the viewers.

The viewers live in drone_sim, below this package, and take what to fly as an argument; reading policy
files (torch checkpoints, ONNX metadata) is this package's job, so the console script enters here and
hands drone_sim.view.main a loader.
"""
from __future__ import annotations

import sys
from typing import Any

from drone_sim import view


class LoadedPolicy:
    """A policy file as drone_sim.view.ViewPolicy: its metadata, sizes and a way to make an actor."""

    def __init__(self, model: Any, metadata: dict[str, Any]):
        self.model, self.metadata = model, metadata
        self.obs_size: int = int(model.obs_size)
        self.action_size: int = int(model.action_size)

    def actor(self, num_agents: int, name: str) -> Any:
        if hasattr(self.model, "session"):      # an OnnxPolicy is an actor already (named after its file)
            return self.model
        from .evaluate import PolicyActor

        return PolicyActor(self.model, num_agents, name=name)


def load_for_view(path: str) -> LoadedPolicy:
    """A checkpoint (model.pt) or an exported ONNX policy; ValueError with the reason if unusable."""
    if str(path).lower().endswith(".onnx"):
        from .onnx_policy import OnnxPolicy, OnnxPolicyError

        try:
            pol = OnnxPolicy(path, env=None, obs_layout_version=None, obs_size=None)  # the viewer checks them
        except OnnxPolicyError as exc:
            raise ValueError(str(exc)) from None
        return LoadedPolicy(pol, pol.metadata)
    from .checkpoint import CheckpointError, load_policy

    try:
        return LoadedPolicy(*load_policy(path))
    except CheckpointError as exc:
        raise ValueError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    return view.main(argv, policy_loader=load_for_view)


if __name__ == "__main__":
    sys.exit(main())
