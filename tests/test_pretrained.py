"""The shipped ONNX policies still load and still fly the simulator they were trained in.

A change to the observation layout, the action scaling or the physics that silently breaks the files in
policies/pretrained/ would otherwise only show up on the laptop, in front of a real drone.
"""
from pathlib import Path

import pytest

import drone_sim
from policies.evaluate import evaluate_task
from policies.onnx_policy import OnnxPolicy

PRETRAINED = Path(__file__).resolve().parent.parent / "policies" / "pretrained"
SHIPPED = {"hover_ctbr.onnx": ("hover", "goto", "follow"),
           "multitask_ctbr.onnx": ("hover", "goto", "follow", "race", "swarm", "obstacles"),
           "swarm_ctbr.onnx": ("swarm",)}
HOVERING = sorted(n for n, tasks in SHIPPED.items() if "hover" in tasks)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_policy_metadata_matches_this_simulator(name):
    policy = OnnxPolicy(PRETRAINED / name, action_mode="ctbr", control_hz=50.0)
    assert policy.metadata["obs_layout_version"] == drone_sim.OBS_VERSION
    assert tuple(policy.metadata["tasks"]) == SHIPPED[name]
    assert (PRETRAINED / name).with_suffix(".md").is_file(), "every shipped policy has a model card"


@pytest.mark.parametrize("name", HOVERING)
def test_shipped_policy_hovers_randomized_drones(name):
    policy = OnnxPolicy(PRETRAINED / name, action_mode="ctbr", control_hz=50.0)
    got = evaluate_task(lambda n: policy.clone(), "hover", dr="default", episodes=64, seed=777,
                        action_mode="ctbr", control_hz=50.0, physics_hz=500.0)
    assert got["success"] >= 0.9 and got["crash_rate"] <= 0.05, got


def test_shipped_swarm_policy_holds_four_drone_formations():
    """swarm_ctbr.onnx, drone-deploy --swarm's default, on the formations it was trained for (4 drones)."""
    policy = OnnxPolicy(PRETRAINED / "swarm_ctbr.onnx", action_mode="ctbr", control_hz=50.0)
    got = evaluate_task(lambda n: policy.clone(), "swarm", dr="default", episodes=64, seed=777, action_mode="ctbr",
                        control_hz=50.0, physics_hz=500.0, num_envs=16, agents_per_env=4)
    # drone-eval, 512 randomized episodes: 0.806 in slot, crash 0.096 (64 episodes scatter: 16 formations)
    assert got["score"] >= 0.7 and got["crash_rate"] <= 0.2, got


def test_drone_train_tasks_all_trains_as_the_shipped_multitask_run():
    """`drone-train --tasks all --seed 1` is the run that made multitask_ctbr.onnx: the six-task recipe is the
    default rather than a command line to copy from a model card, and a change to the defaults that would no longer
    reproduce the shipped file shows up here."""
    import dataclasses

    from policies.config import load_toml, make_config

    recorded = make_config(load_toml(PRETRAINED / "multitask_ctbr.toml"))
    defaults = make_config(cli_values={"tasks": "all", "seed": recorded.seed})
    differ = {f.name for f in dataclasses.fields(recorded) if getattr(recorded, f.name) != getattr(defaults, f.name)}
    assert differ <= {"threads"}, {k: (getattr(recorded, k), getattr(defaults, k)) for k in differ}
    # and the recorded run is the shipped file's: its step count and its network
    meta = OnnxPolicy(PRETRAINED / "multitask_ctbr.onnx", action_mode="ctbr", control_hz=50.0).metadata
    assert recorded.total_steps <= meta["training_steps"] < recorded.total_steps + 1_000_000
    network = {k: meta["model_config"][k] for k in ("hidden", "layers", "lstm", "activation")}
    assert network == {"hidden": recorded.hidden, "layers": recorded.layers, "lstm": recorded.lstm,
                       "activation": recorded.activation}
    from policies.config import expert_of

    assert recorded.task_experts and meta["model_config"]["expert_of"] == expert_of(recorded.expert_groups)
