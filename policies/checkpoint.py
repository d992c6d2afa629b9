"""Checkpoints: everything needed to resume, evaluate or export a policy, in one torch file.

Besides the weights (observation normalization included) a checkpoint carries what deploy must check
before flying it: the observation layout version and size, the action mode, the control rate, the tasks,
the randomization and the drone it was trained on.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

import drone_sim

from .adam import Adam
from .config import TrainConfig
from .model import ActorCritic


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


def save_checkpoint(path: str | Path, model: ActorCritic, optimizer: Adam | None,
                    cfg: TrainConfig, env_config: dict, global_step: int, iteration: int, elapsed_s: float) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": "drone-policy-checkpoint/1",
        "project_version": drone_sim.__version__,
        "model_config": model.config,
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "train_config": cfg.to_dict(),
        "env_config": env_config,
        "env": cfg.env,
        "obs_version": drone_sim.OBS_VERSION if cfg.env == "drone" else 0,
        "obs_size": model.obs_size,
        "priv_version": drone_sim.PRIV_VERSION if model.privileged_size else 0,   # the critic's extra input
        "action_mode": cfg.action_mode,
        "control_hz": cfg.control_hz,
        "physics_hz": cfg.physics_hz,
        "tasks": cfg.tasks,
        "global_step": global_step,
        "iteration": iteration,
        "elapsed_s": elapsed_s,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a truncated checkpoint behind


# Model settings that only choose the initial weights: a resumed run may name other values for them.
INITIAL_ONLY_SETTINGS = ("init_log_std",)


def architecture_differences(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Each model setting where a checkpoint and a run disagree, as 'name: checkpoint X, this run Y'.

    Loading weights into another architecture does not always fail: a ReLU network takes a tanh network's
    weights without a complaint and then flies another function, and a width mismatch fails with a tensor shape
    that names no option. A resume compares the whole model configuration instead, so that every setting,
    including ones added later, is checked and named. A setting absent from one side is None there (an option
    that is off leaves no entry)."""
    out = []
    for name in sorted(set(saved) | set(wanted)):
        if name in INITIAL_ONLY_SETTINGS:
            continue
        if saved.get(name) != wanted.get(name):
            out.append(f"{name}: checkpoint {saved.get(name)!r}, this run {wanted.get(name)!r}")
    return out


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    try:
        data = torch.load(p, map_location=device, weights_only=False)
    except Exception as exc:  # torch raises many kinds for a file that is not a checkpoint
        raise CheckpointError(f"{p}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != "drone-policy-checkpoint/1":
        raise CheckpointError(f"{p}: not a drone policy checkpoint (missing format 'drone-policy-checkpoint/1')")
    if data.get("env", "drone") != "drone":
        return data  # an ocean regression env: its observation size is checked against the env when run
    if data["obs_version"] != drone_sim.OBS_VERSION or data["obs_size"] != drone_sim.OBS_SIZE:
        raise CheckpointError(f"{p}: trained for observation layout v{data['obs_version']} ({data['obs_size']} values), "
                              f"this simulator builds v{drone_sim.OBS_VERSION} ({drone_sim.OBS_SIZE} values)")
    return data


def load_policy(path: str | Path, device: torch.device | str = "cpu") -> tuple[ActorCritic, dict[str, Any]]:
    """The model of a checkpoint, ready for inference, and the checkpoint's metadata."""
    data = load_checkpoint(path, device)
    model = ActorCritic(**data["model_config"]).to(device)
    model.load_state_dict(data["model_state"])
    model.eval()
    return model, data
