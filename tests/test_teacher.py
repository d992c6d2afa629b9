"""The teachers (policies/teacher.py): the scripted controller and a trained policy (an ONNX file): where they are
imitated, how the weight falls, what is refused, and that the imitation loss does pull a policy towards them."""
import json
from pathlib import Path

import numpy as np
import pytest

import drone_sim
from drone_sim.controllers import HoverController
from policies.config import ConfigError, make_config
from policies.onnx_policy import OnnxPolicy
from policies.teacher import ScriptedTeacher, TaskTeacher, TrainedPolicy, teacher_weight
from policies.train import train

PRETRAINED = Path(__file__).resolve().parents[1] / "policies" / "pretrained"


def test_the_teacher_is_imitated_on_the_drones_of_its_tasks_only():
    env = drone_sim.make(tasks="hover,obstacles", num_envs=8, agents_per_env=2, seed=1)
    obs, _ = env.reset()
    tasks = np.repeat([env.env_info(i)["task_name"] for i in range(8)], 2)
    assert {"hover", "obstacles"} <= set(tasks)
    teacher = ScriptedTeacher(env.num_agents, "hover", max_speed=3.0, control_hz=50.0)
    full = HoverController(env.num_agents, max_speed=3.0)   # the controller run on every drone, for reference
    for _ in range(60):     # long enough for the integral (the controller's state, near a hover target) to count
        taught = np.repeat([env.env_info(i)["task_name"] == "hover" for i in range(8)], 2)
        actions, mask = teacher(obs)
        assert mask.tolist() == taught.astype(float).tolist()
        # the controller's own actions where it is imitated, computed for those drones only
        expected = full(obs, 0.02)
        np.testing.assert_allclose(actions[taught], expected[taught], rtol=1e-6, atol=1e-6)
        assert not actions[~taught].any()
        obs, _, term, trunc, _ = env.step(expected)
        teacher.episode_ended(term | trunc)
        full.reset(term | trunc)
    assert np.abs(full.integral[taught]).max() > 0.01
    np.testing.assert_allclose(teacher.policy.ctl.integral[taught], full.integral[taught], rtol=1e-6, atol=1e-7)


def test_the_teacher_weight_falls_linearly_to_zero():
    cfg = make_config(cli_values={"teacher": "scripted", "teacher_weight": 2.0, "teacher_fraction": 0.4})
    assert [teacher_weight(cfg, p) for p in (0.0, 0.2, 0.4, 0.9)] == pytest.approx([2.0, 1.0, 0.0, 0.0])
    assert teacher_weight(make_config(cli_values={}), 0.0) == 0.0


def test_the_teacher_weight_can_stop_falling_at_a_final_weight():
    cfg = make_config(cli_values={"teacher": "scripted", "teacher_weight": 2.0, "teacher_fraction": 0.4,
                                  "teacher_final_weight": 0.5})
    assert [teacher_weight(cfg, p) for p in (0.0, 0.2, 0.4, 0.9, 1.0)] == pytest.approx([2.0, 1.25, 0.5, 0.5, 0.5])


@pytest.mark.parametrize("values, match", [
    ({"teacher": "pid"}, "teacher must be 'scripted' or a drone-export .onnx file"),
    ({"teacher": "scripted", "action_mode": "rpm"}, "ctbr"),
    ({"teacher": "scripted", "lstm": True}, "MLP"),
    ({"teacher": "scripted", "teacher_tasks": "obstacle"}, "teacher_tasks"),
    ({"teacher": "scripted", "teacher_fraction": 0.0}, "teacher_fraction"),
    ({"teacher": "scripted", "teacher_weight": -1.0}, "teacher_weight"),
    ({"teacher": "scripted", "teacher_final_weight": -0.1}, "teacher_final_weight"),
    ({"teacher": "scripted", "teacher_weight": 0.5, "teacher_final_weight": 1.0}, "only falls"),
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


def test_the_teacher_is_not_run_once_its_weight_has_reached_zero(tmp_path, monkeypatch):
    calls = []
    original = ScriptedTeacher.__call__
    monkeypatch.setattr(ScriptedTeacher, "__call__", lambda self, obs: calls.append(1) or original(self, obs))
    horizon, iterations = 8, 4
    cfg = make_config(cli_values=dict(tasks="obstacles", num_envs=2, agents_per_env=4, horizon=horizon,
                                      minibatch_size=64, epochs=1, total_steps=horizon * 8 * iterations, threads=1,
                                      log_every=0.0, checkpoint_every=10**9, teacher="scripted", teacher_fraction=0.5))
    train(cfg, tmp_path)
    # weights at the four rollouts: 1, 0.5, 0, 0
    assert len(calls) == 2 * horizon


def test_each_taught_task_counts_with_its_own_weight():
    """'hover:0.3,obstacles': the mask carries each drone's task weight, and the imitation loss is the weighted mean
    over the taught samples (a hand computation on one minibatch), so goto can be taught below obstacles."""
    env = drone_sim.make(tasks="hover,obstacles,goto", num_envs=12, agents_per_env=2, seed=3)
    obs, _ = env.reset()
    tasks = np.repeat([env.env_info(i)["task_name"] for i in range(12)], 2)
    assert {"hover", "obstacles", "goto"} <= set(tasks)
    teacher = ScriptedTeacher(env.num_agents, "hover:0.3,obstacles,goto:0", max_speed=3.0, control_hz=50.0)
    actions, mask = teacher(obs)
    want = np.select([tasks == "hover", tasks == "obstacles"], [0.3, 1.0], 0.0)
    np.testing.assert_allclose(mask, want, rtol=1e-7)
    assert not actions[tasks == "goto"].any()     # a weight of 0 is not taught: the controller does not run there

    import torch

    from policies.adam import Adam
    from policies.model import ActorCritic
    from policies.ppo import Rollout, ppo_update

    torch.manual_seed(0)
    T, N = 2, env.num_agents
    model = ActorCritic(drone_sim.OBS_SIZE, 4)
    buf = Rollout(T, N, drone_sim.OBS_SIZE, (4,), "cpu", teacher=True)
    buf.obs.copy_(torch.from_numpy(np.stack([obs, obs])))
    buf.teacher_actions.normal_()
    buf.teacher_mask.copy_(torch.from_numpy(np.stack([mask, mask])))
    with torch.no_grad():
        mean = model(buf.obs.view(T * N, -1))[0]
        d = (mean - buf.teacher_actions.view(T * N, 4)).pow(2).sum(-1).numpy()
    m = buf.teacher_mask.view(-1).numpy()
    expected = (m * d).sum() / (m > 0).sum()
    stats = ppo_update(model, Adam(model.parameters(), lr=0.0), buf, epochs=1, minibatch_size=T * N, clip=0.2,
                       vf_coef=0.5, ent_coef=0.0, max_grad_norm=0.5, teacher_weight=1.0)
    assert stats.teacher_loss == pytest.approx(expected, rel=1e-5)


def test_a_trained_teacher_is_imitated_with_its_own_actions_on_its_tasks_drones():
    """A drone-export file as the teacher: on the taught drones its actions are the file's own (the file run on every
    drone, then those rows taken: the rows must not be mixed up), weighted by task; elsewhere zeros, weight 0."""
    env = drone_sim.make(tasks="hover,race,swarm", num_envs=12, agents_per_env=4, seed=5)
    obs, _ = env.reset()
    tasks = np.repeat([env.env_info(i)["task_name"] for i in range(12)], 4)
    assert {"hover", "race", "swarm"} <= set(tasks)
    path = PRETRAINED / "multitask_ctbr.onnx"
    teacher = TaskTeacher(TrainedPolicy(path, "ctbr", 50.0), "race,swarm:0.5")
    everyone = OnnxPolicy(path, action_mode="ctbr", control_hz=50.0)
    for _ in range(3):
        actions, mask = teacher(obs)
        np.testing.assert_allclose(mask, np.select([tasks == "race", tasks == "swarm"], [1.0, 0.5], 0.0), rtol=1e-7)
        taught = mask > 0
        np.testing.assert_allclose(actions[taught], everyone(obs)[taught], rtol=1e-5, atol=1e-6)
        assert np.abs(actions[taught]).max() > 0.05 and not actions[~taught].any()
        obs, *_ = env.step(everyone(obs))


def test_a_trained_teacher_the_run_cannot_use_is_refused(tmp_path):
    """Refused by make_config, before a run directory exists: no file, not ONNX, another action mode or control rate
    (its actions would not mean the student's), an LSTM policy."""
    shipped = str(PRETRAINED / "multitask_ctbr.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    for values, match in [({"teacher": str(tmp_path / "none.onnx")}, "none.onnx: no such file"),
                          ({"teacher": str(tmp_path / "bad.onnx")}, "bad.onnx: not an ONNX model"),
                          ({"teacher": shipped, "action_mode": "rpm"}, "expected action mode 'rpm'"),
                          ({"teacher": shipped, "control_hz": 100.0}, "expected 100 Hz")]:
        with pytest.raises(ConfigError, match=f"teacher: .*{match}"):
            make_config(cli_values=values)
    from policies.export import export_onnx

    train(make_config(cli_values=dict(tasks="hover", lstm=True, hidden=16, num_envs=2, agents_per_env=4, horizon=8,
                                      minibatch_size=32, epochs=1, total_steps=64, threads=1, log_every=0.0,
                                      checkpoint_every=10**9)), tmp_path / "lstm")
    export_onnx(tmp_path / "lstm" / "model.pt", tmp_path / "lstm.onnx")
    with pytest.raises(ConfigError, match="lstm.onnx: an LSTM policy; a teacher must be an MLP"):
        make_config(cli_values={"teacher": str(tmp_path / "lstm.onnx")})


def test_the_imitation_loss_pulls_the_policy_to_a_trained_teacher(tmp_path):
    """Distillation: a fresh network taught by the shipped hover policy on hover drones comes close to its actions."""
    cfg = make_config(cli_values=dict(tasks="hover", num_envs=2, agents_per_env=16, horizon=32, minibatch_size=256,
                                      epochs=4, total_steps=32 * 32 * 24, log_every=0.0, checkpoint_every=10**9,
                                      threads=1, teacher=str(PRETRAINED / "hover_ctbr.onnx"), teacher_tasks="hover",
                                      teacher_weight=5.0, teacher_fraction=1.0))
    train(cfg, tmp_path)
    losses = [json.loads(line)["teacher_loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert losses[0] > 0.05 and max(losses[-5:]) < 0.3 * losses[0]
