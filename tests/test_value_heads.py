"""Per-task value heads (--task-value-heads): each row's value is its own task's output of the critic, selected by
the observation's task one-hot; the actor, and so the exported policy, is what it would be without them."""
import numpy as np
import pytest
import torch

import drone_sim
from policies.config import ConfigError, load_toml, make_config
from policies.model import ActorCritic
from policies.train import drone_entity_blocks, train
from conftest import with_tasks
from tiny_runs import train_and_export

TASK = drone_sim.OBS_LAYOUT["task"]


@pytest.mark.parametrize("kind", ["mlp", "lstm", "privileged", "entities"])
def test_each_row_gets_the_value_of_its_own_tasks_head(kind):
    torch.manual_seed(0)
    extra = {"mlp": {}, "lstm": {"lstm": True}, "privileged": {"privileged": drone_sim.PRIV_SIZE},
             "entities": {"entities": drone_entity_blocks()}}[kind]
    model = ActorCritic(drone_sim.OBS_SIZE, 4, value_heads=TASK, **extra)
    plain = ActorCritic(drone_sim.OBS_SIZE, 4, **extra)
    # statistics as after some training, so that the normalized one-hot is no longer 0 and 1: the pick must read
    # the raw observation
    model.norm.update(torch.full((drone_sim.OBS_SIZE,), 0.2), torch.full((drone_sim.OBS_SIZE,), 0.16), 1000.0)
    tasks = [0, 3, 5, 3, 1, 4, 2]
    obs = with_tasks(torch.randn(len(tasks), drone_sim.OBS_SIZE), tasks)
    priv = torch.randn(len(tasks), drone_sim.PRIV_SIZE) if kind == "privileged" else None
    state = model.initial_state(len(tasks))
    with torch.no_grad():
        mean, value, _ = model(obs, state, privileged=priv)
        # the hand computation: every head's output, then the one the row's task picks
        x = model.norm(obs)
        if kind == "lstm":
            x, _ = model._features(x.unsqueeze(0), state, None)
            x = x.squeeze(0)
        if kind == "privileged":
            x = torch.cat([x, model.priv_norm(priv)], -1)
        heads = model.critic(x)
    assert heads.shape == (len(tasks), TASK[1])
    torch.testing.assert_close(value, heads[torch.arange(len(tasks)), torch.tensor(tasks)])
    assert not torch.allclose(heads[:, 0], heads[:, 1])   # the heads differ, so picking the wrong one shows
    # the actor's parameters and output shapes are those of the plain model: only the critic's last layer grows
    assert [p.shape for p in model.actor.parameters()] == [p.shape for p in plain.actor.parameters()]
    assert mean.shape == (len(tasks), 4)


def test_a_one_hot_that_does_not_fit_the_observation_is_refused():
    with pytest.raises(ValueError, match="value_heads: a one-hot of 6 columns from 80 does not fit 84"):
        ActorCritic(drone_sim.OBS_SIZE, 4, value_heads=(80, 6))


def test_a_value_heads_run_trains_exports_and_resumes_only_as_itself(tmp_path):
    out, model, policy = train_and_export(tmp_path, task_value_heads=True)
    assert model.value_heads == tuple(TASK)
    # the exported file is the actor alone, and flies like the checkpoint
    obs = np.random.default_rng(0).normal(size=(drone_sim.OBS_SIZE,)).astype(np.float32)
    with torch.no_grad():
        want = model.deterministic(model(torch.from_numpy(obs)[None])[0])[0].numpy()
    np.testing.assert_allclose(policy(obs), want, atol=1e-5)
    # a resume must keep the critic it was trained with
    cfg = load_toml(out / "config.toml")
    with pytest.raises(ValueError, match=r"value_heads: checkpoint \[76, 6\], this run None"):
        train(make_config(cfg, {"total_steps": 1024, "task_value_heads": False}), out, resume=True)
    assert train(make_config(cfg, {"total_steps": 1024}), out, resume=True)["global_step"] == 1024
    with pytest.raises(ConfigError, match="task_value_heads: only the drone env"):
        make_config(cli_values={"env": "cartpole", "task_value_heads": True})
