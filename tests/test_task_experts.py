"""Task experts (--task-experts): one MLP actor and critic per task, each row through the one its observation's task
one-hot names; training groups rows by task, the ONNX export runs every expert and picks, and both must give the
row its own task's network."""
import numpy as np
import pytest
import torch

import drone_sim
from policies.config import ConfigError, expert_of, load_toml, make_config
from policies.model import ActorCritic
from policies.train import train
from conftest import with_tasks
from tiny_runs import train_and_export

TASK = drone_sim.OBS_LAYOUT["task"]


def experts_model(groups: str = "") -> ActorCritic:
    """A small experts model, one network per task, or per group of tasks with groups (as --expert-groups)."""
    torch.manual_seed(0)
    model = ActorCritic(drone_sim.OBS_SIZE, 4, hidden=16, experts=TASK,
                        expert_of=expert_of(groups) if groups else None)
    # statistics as after some training, so that the normalized one-hot is no longer 0 and 1: the pick must read
    # the raw observation
    model.norm.update(torch.full((drone_sim.OBS_SIZE,), 0.2), torch.full((drone_sim.OBS_SIZE,), 0.16), 1000.0)
    return model


def test_each_row_gets_its_own_tasks_actor_and_critic():
    model = experts_model()
    tasks = [0, 3, 5, 3, 1, 4, 2, 5]
    obs = with_tasks(torch.randn(len(tasks), drone_sim.OBS_SIZE), tasks)
    with torch.no_grad():
        mean, value, _ = model(obs)
        x = model.norm(obs)
        # the hand computation: each row through its own task's networks, one row at a time
        want_mean = torch.stack([model.actor.nets[t](x[i]) for i, t in enumerate(tasks)])
        want_value = torch.stack([model.critic.nets[t](x[i]).squeeze(-1) for i, t in enumerate(tasks)])
        other = torch.stack([model.actor.nets[(t + 1) % 6](x[i]) for i, t in enumerate(tasks)])
    torch.testing.assert_close(mean, want_mean)
    torch.testing.assert_close(value, want_value)
    assert not torch.allclose(mean, other, atol=1e-4)   # the experts differ, so picking the wrong one shows
    # a (T, B, obs) batch, as the update's minibatches and the rollout are, picks the same
    with torch.no_grad():
        mean3, value3, _ = model(obs.view(2, 4, -1))
    torch.testing.assert_close(mean3.reshape(len(tasks), 4), mean)
    torch.testing.assert_close(value3.reshape(-1), value)


def test_a_tasks_loss_trains_that_tasks_expert_alone():
    """What the race drones do must not move the swarm's network: the gradient of a loss on race rows reaches the
    race expert and no other."""
    model = experts_model()
    race = drone_sim.TASKS.index("race")
    obs = with_tasks(torch.randn(5, drone_sim.OBS_SIZE), [race] * 5)
    mean, value, _ = model(obs)
    (mean.pow(2).sum() + value.pow(2).sum()).backward()
    for head in (model.actor, model.critic):
        for k, net in enumerate(head.nets):
            grads = [p.grad for p in net.parameters()]
            if k == race:
                assert all(g is not None and g.abs().sum() > 0 for g in grads)
            else:
                assert all(g is None for g in grads), f"task {k}'s expert got a gradient from race rows"


@pytest.mark.parametrize("groups", ["", "hover+goto+follow"])
def test_an_experts_run_trains_exports_and_resumes_only_as_itself(tmp_path, groups):
    out, model, policy = train_and_export(tmp_path, task_experts=True, expert_groups=groups)
    assert model.experts == tuple(TASK)
    assert len(model.actor.nets) == (4 if groups else 6)
    # the exported file runs every expert and picks: on rows of every task it flies like the checkpoint
    tasks = [0, 1, 2, 3, 4, 5, 3]
    obs = with_tasks(torch.from_numpy(np.random.default_rng(0).normal(size=(len(tasks), drone_sim.OBS_SIZE))
                                      .astype(np.float32)), tasks)
    with torch.no_grad():
        want = model.deterministic(model(obs)[0]).numpy()
    np.testing.assert_allclose(policy(obs.numpy()), want, atol=1e-5)
    np.testing.assert_allclose(policy(obs[3].numpy()), want[3], atol=1e-5)
    # a resume must keep the networks it was trained with
    cfg = load_toml(out / "config.toml")
    with pytest.raises(ValueError, match=r"experts: checkpoint \[76, 6\], this run None"):
        train(make_config(cfg, {"total_steps": 1024, "task_experts": False, "expert_groups": ""}), out, resume=True)
    other = {"expert_groups": "goto+follow"} if groups else {"expert_groups": "hover+goto+follow"}
    with pytest.raises(ValueError, match=r"expert_of: checkpoint"):
        train(make_config(cfg, {"total_steps": 1024, **other}), out, resume=True)
    assert train(make_config(cfg, {"total_steps": 1024}), out, resume=True)["global_step"] == 1024


def test_experts_are_refused_where_they_cannot_be_built():
    with pytest.raises(ConfigError, match="task_experts: one plain MLP per task of the drone env"):
        make_config(cli_values={"env": "cartpole", "task_experts": True})
    for other in ({"lstm": True}, {"entities": True}, {"task_value_heads": True}):
        with pytest.raises(ConfigError, match="task_experts: one plain MLP per task"):
            make_config(cli_values={"tasks": "hover,race", "task_experts": True, **other})
    with pytest.raises(ValueError, match="experts: a one-hot of 6 columns from 80 does not fit 84"):
        ActorCritic(drone_sim.OBS_SIZE, 4, experts=(80, 6))


def test_tasks_all_flies_experts_that_one_option_turns_off():
    """--tasks all's recipe is experts with follow and swarm grouped; --no-task-experts gives the one network (the
    recipe's groups go with it), while groups given by the user without experts are still refused, and an LSTM on
    the recipe is refused with the way out named."""
    recipe = make_config(cli_values={"tasks": "all"})
    assert recipe.task_experts and recipe.expert_groups == "follow+swarm"
    one = make_config(cli_values={"tasks": "all", "task_experts": False})
    assert not one.task_experts and one.expert_groups == ""
    with pytest.raises(ConfigError, match="expert_groups: the tasks share expert networks only with --task-experts"):
        make_config(cli_values={"tasks": "all", "task_experts": False, "expert_groups": "follow+swarm"})
    with pytest.raises(ConfigError, match="--no-task-experts turns it off"):
        make_config(cli_values={"tasks": "all", "lstm": True})


def test_each_task_has_its_own_log_std():
    """A row's exploration noise is its own task's: the Gaussian's std is read from the log std row its task
    one-hot names, and a loss on race rows moves race's row alone."""
    model = experts_model()
    with torch.no_grad():
        model.log_std.copy_(torch.arange(6.0)[:, None].expand(6, 4) * -0.1)
    tasks = [5, 0, 2, 2]
    obs = with_tasks(torch.randn(len(tasks), drone_sim.OBS_SIZE), tasks)
    mean, _, _ = model(obs)
    dist = model.distribution(mean, obs)
    want = torch.tensor([[(-0.1 * t)] * 4 for t in tasks]).exp()
    torch.testing.assert_close(dist.stddev, want)
    dist.log_prob(torch.zeros_like(mean)).sum().backward()
    moved = (model.log_std.grad.abs().sum(-1) > 0).tolist()
    assert moved == [k in tasks for k in range(6)]
    with pytest.raises(ValueError, match="log std per task; pass the observations"):
        model.distribution(mean)


@pytest.mark.parametrize("groups", ["", "hover+goto+follow"])
def test_expert_gradients_cover_every_parameter_once(groups):
    """The per-network clip (clip_grad_norm_by_group) must reach every gradient of an experts model, each in one
    network's group: a parameter left out would not be clipped at all. A network's group holds the log std rows of
    the tasks it flies (grouped: hover's, goto's and follow's in network 0's), so that they are clipped together."""
    model = experts_model(groups)
    obs = with_tasks(torch.randn(6, drone_sim.OBS_SIZE), list(range(6)))
    mean, value, _ = model(obs)
    (model.distribution(mean, obs).log_prob(mean.detach() + 0.1).sum() + value.pow(2).sum()).backward()
    per_net = model.expert_gradients()
    net = [0, 0, 0, 1, 2, 3] if groups else list(range(6))
    assert len(per_net) == max(net) + 1
    assert all(p.grad is not None for p in model.parameters())    # every task has rows: every network is reached
    covered = sum(g.numel() for grads in per_net for g in grads)
    assert covered == sum(p.grad.numel() for p in model.parameters())
    race = net[drone_sim.TASKS.index("race")]
    assert per_net[race][0] is model.actor.nets[race][0].weight.grad
    for k, grads in enumerate(per_net):
        in_group = {g.data_ptr() for g in grads}
        assert [model.log_std.grad[t].data_ptr() in in_group for t in range(6)] == [n == k for n in net]


class _RecordingOptimizer:
    """Stands in for Adam in ppo_update: keeps each expert's gradient norm as the optimizer would see it."""

    def __init__(self, model: ActorCritic):
        self.model, self.norms = model, []

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.model.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.norms.append([float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
                           for grads in self.model.expert_gradients()])


def test_the_update_normalizes_and_clips_each_task_on_its_own(monkeypatch):
    """ppo_update with experts: each expert's gradient reaches the optimizer clipped to max_grad_norm on its own (a
    global clip would leave every expert below it), and advantages are normalized by the rows' tasks."""
    import policies.ppo as ppo

    model = experts_model()
    T, N = 4, 12
    buf = ppo.Rollout(T, N, drone_sim.OBS_SIZE, (4,), "cpu")
    tasks = [k % 6 for k in range(N)]
    buf.obs.copy_(with_tasks(torch.randn(T * N, drone_sim.OBS_SIZE), tasks * T).view(T, N, -1))
    buf.actions.normal_()
    buf.advantages.normal_()
    buf.returns.normal_(0.0, 10.0)
    with torch.no_grad():
        mean, _, _ = model(buf.obs.view(T * N, -1))
        buf.logp.copy_(model.distribution(mean, buf.obs.view(T * N, -1)).log_prob(buf.actions.view(T * N, 4))
                       .sum(-1).view(T, N))
    groups_seen = []
    real = ppo.normalize_by_group
    monkeypatch.setattr(ppo, "normalize_by_group", lambda x, g, c: groups_seen.append(g.clone()) or real(x, g, c))
    opt = _RecordingOptimizer(model)
    ppo.ppo_update(model, opt, buf, epochs=1, minibatch_size=T * N, clip=0.2, vf_coef=0.5, ent_coef=0.0,
                   max_grad_norm=0.5)
    assert len(opt.norms) == 1 and len(groups_seen) == 1
    assert sorted(groups_seen[0].tolist()) == sorted(tasks * T)
    assert opt.norms[0] == pytest.approx([0.5] * 6, abs=1e-4)   # returns of scale 10: every expert is over 0.5


def test_expert_groups_name_each_tasks_network():
    """--expert-groups 'hover+goto+follow': the three fly one network, every other task its own, networks numbered
    by their first task in drone_sim.TASKS order (hover, goto, follow, race, swarm, obstacles)."""
    assert drone_sim.TASKS == ("hover", "goto", "follow", "race", "swarm", "obstacles")
    assert expert_of("hover+goto+follow") == [0, 0, 0, 1, 2, 3]
    assert expert_of("follow+race, swarm+hover") == [0, 1, 2, 2, 0, 3]
    for text, problem in [("hover+gate", "unknown task 'gate'"), ("hover+goto,goto+follow", "goto is named twice"),
                          ("race", "'race' is one task")]:
        with pytest.raises(ConfigError, match=problem):
            expert_of(text)
    with pytest.raises(ConfigError, match="only with --task-experts"):
        make_config(cli_values={"tasks": "hover,race", "expert_groups": "hover+race"})
    with pytest.raises(ValueError, match="do not use each of the 4 networks"):
        ActorCritic(drone_sim.OBS_SIZE, 4, experts=TASK, expert_of=[0, 0, 0, 1, 1, 3])


def test_grouped_tasks_fly_one_network_with_their_own_noise():
    """hover, goto and follow rows go through network 0, race, swarm and obstacles through 1, 2 and 3; each task
    still reads its own row of the log std, and a loss on follow rows moves network 0 and follow's noise alone."""
    model = experts_model("hover+goto+follow")
    assert len(model.actor.nets) == len(model.critic.nets) == 4 and model.log_std.shape == (6, 4)
    net = [0, 0, 0, 1, 2, 3]
    tasks = [2, 0, 5, 1, 3, 4, 2]
    obs = with_tasks(torch.randn(len(tasks), drone_sim.OBS_SIZE), tasks)
    with torch.no_grad():
        model.log_std.copy_(torch.arange(6.0)[:, None].expand(6, 4) * -0.1)
        mean, value, _ = model(obs)
        x = model.norm(obs)
        want_mean = torch.stack([model.actor.nets[net[t]](x[i]) for i, t in enumerate(tasks)])
        want_value = torch.stack([model.critic.nets[net[t]](x[i]).squeeze(-1) for i, t in enumerate(tasks)])
    torch.testing.assert_close(mean, want_mean)
    torch.testing.assert_close(value, want_value)
    torch.testing.assert_close(model.distribution(mean, obs).stddev,
                               torch.tensor([[(-0.1 * t)] * 4 for t in tasks]).exp())
    follow = drone_sim.TASKS.index("follow")
    fobs = with_tasks(torch.randn(3, drone_sim.OBS_SIZE), [follow] * 3)
    mean, value, _ = model(fobs)
    (model.distribution(mean, fobs).log_prob(torch.zeros_like(mean)).sum() + value.pow(2).sum()).backward()
    for head in (model.actor, model.critic):
        assert [all(p.grad is not None for p in n.parameters()) for n in head.nets] == [True, False, False, False]
    assert (model.log_std.grad.abs().sum(-1) > 0).tolist() == [k == follow for k in range(6)]
