"""The scripted teacher (policies/teacher.py): where it is imitated, how its weight falls, what it refuses, and that
the imitation loss does pull a policy towards the controller's actions."""
import json

import numpy as np
import pytest

import drone_sim
from drone_sim.controllers import HoverController
from policies.config import ConfigError, make_config
from policies.teacher import ScriptedTeacher, teacher_weight
from policies.train import train


def test_the_teacher_is_imitated_on_the_drones_of_its_tasks_only():
    env = drone_sim.make(tasks="goto,obstacles", num_envs=8, agents_per_env=2, seed=1)
    obs, _ = env.reset()
    tasks = np.repeat([env.env_info(i)["task_name"] for i in range(8)], 2)
    assert {"goto", "obstacles"} <= set(tasks)
    teacher = ScriptedTeacher(env.num_agents, "obstacles", max_speed=3.0, control_hz=50.0)
    actions, mask = teacher(obs)
    assert mask.tolist() == [float(t == "obstacles") for t in tasks]
    # the actions are the controller's own, for every drone
    np.testing.assert_array_equal(actions, HoverController(env.num_agents, max_speed=3.0)(obs, 0.02))


def test_the_teacher_weight_falls_linearly_to_zero():
    cfg = make_config(cli_values={"teacher": "scripted", "teacher_weight": 2.0, "teacher_fraction": 0.4})
    assert [teacher_weight(cfg, p) for p in (0.0, 0.2, 0.4, 0.9)] == pytest.approx([2.0, 1.0, 0.0, 0.0])
    assert teacher_weight(make_config(cli_values={}), 0.0) == 0.0


@pytest.mark.parametrize("values, match", [
    ({"teacher": "pid"}, "teacher must be 'scripted'"),
    ({"teacher": "scripted", "action_mode": "rpm"}, "ctbr"),
    ({"teacher": "scripted", "lstm": True}, "MLP"),
    ({"teacher": "scripted", "teacher_tasks": "obstacle"}, "teacher_tasks"),
    ({"teacher": "scripted", "teacher_fraction": 0.0}, "teacher_fraction"),
    ({"teacher": "scripted", "teacher_weight": -1.0}, "teacher_weight"),
])
def test_a_teacher_the_trainer_cannot_use_is_refused(values, match):
    with pytest.raises(ConfigError, match=match):
        make_config(cli_values=values)


def test_the_imitation_loss_pulls_the_policy_to_the_controller(tmp_path):
    cfg = make_config(cli_values=dict(tasks="obstacles", num_envs=2, agents_per_env=16, horizon=32, minibatch_size=256,
                                      epochs=4, total_steps=32 * 32 * 24, log_every=0.0, checkpoint_every=10**9,
                                      threads=1, teacher="scripted", teacher_weight=5.0, teacher_fraction=1.0))
    train(cfg, tmp_path)
    losses = [json.loads(line)["teacher_loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert losses[0] > 0.3 and max(losses[-5:]) < 0.3 * losses[0]
