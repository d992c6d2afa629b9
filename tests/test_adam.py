"""The trainer's Adam (policies/adam.py) against torch.optim.Adam: same parameters step for step, checkpoints
interchangeable, and no import of torch's compiler."""
import subprocess
import sys

import pytest
import torch

from policies.adam import Adam
from policies.model import ActorCritic


def _losses(model: ActorCritic, opt, schedule: list[float], seed: int = 0) -> list[torch.Tensor]:
    """Runs a few regression steps with a changing learning rate (the trainer's schedule) and a parameter left
    without gradient on one step; returns the parameters after each."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for k, lr in enumerate(schedule):
        for g in opt.param_groups:
            g["lr"] = lr
        x = torch.randn(64, model.obs_size, generator=gen)
        mean, value, _ = model(x)
        dist = model.distribution(mean)
        loss = (mean ** 2).mean() + (value - 1.0).pow(2).mean() - dist.entropy().mean() * 0.01
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if k == 2:
            next(iter(model.parameters())).grad = None  # a parameter without gradient this step is left alone
        opt.step()
        out.append(torch.cat([p.detach().flatten().clone() for p in model.parameters()]))
    return out


def _pair():
    torch.manual_seed(3)
    a = ActorCritic(12, 4, hidden=16, layers=2, lstm=False, discrete=False, init_log_std=-0.5)
    b = ActorCritic(12, 4, hidden=16, layers=2, lstm=False, discrete=False, init_log_std=-0.5)
    b.load_state_dict(a.state_dict())
    return a, b


def test_same_parameters_as_torch_adam_step_for_step():
    a, b = _pair()
    schedule = [3e-3, 3e-3, 2e-3, 1e-3, 5e-4, 5e-4]
    ours = _losses(a, Adam(a.parameters(), lr=3e-3, eps=1e-5), schedule)
    ref = _losses(b, torch.optim.Adam(b.parameters(), lr=3e-3, eps=1e-5), schedule)
    assert (ours[-1] - ref[-1]).abs().max() < 1e-6
    for o, r in zip(ours, ref):
        torch.testing.assert_close(o, r, rtol=0, atol=1e-6)
    assert (ours[-1] - ours[0]).abs().max() > 1e-3  # the steps moved the parameters


def test_checkpoints_load_across_the_two_implementations():
    a, b = _pair()
    schedule = [1e-3] * 4
    torch_opt = torch.optim.Adam(b.parameters(), lr=1e-3, eps=1e-5)
    _losses(b, torch_opt, schedule[:2])
    a.load_state_dict(b.state_dict())
    ours = Adam(a.parameters(), lr=1e-3, eps=1e-5)
    ours.load_state_dict(torch_opt.state_dict())  # a checkpoint written before this module existed
    assert ours.steps == [2] * len(ours.params)
    after_ours = _losses(a, ours, schedule[2:], seed=1)
    after_ref = _losses(b, torch_opt, schedule[2:], seed=1)
    torch.testing.assert_close(after_ours[-1], after_ref[-1], rtol=0, atol=1e-6)
    back = torch.optim.Adam(b.parameters(), lr=1e-3, eps=1e-5)
    back.load_state_dict(ours.state_dict())  # and ours loads into torch's
    assert float(back.state_dict()["state"][0]["step"]) == 4


def test_state_of_another_network_shape_is_refused():
    a, _ = _pair()
    other = ActorCritic(12, 4, hidden=32, layers=2, lstm=False, discrete=False)
    src = Adam(other.parameters(), lr=1e-3)
    _losses(other, src, [1e-3])
    with pytest.raises(ValueError, match="shape"):
        Adam(a.parameters(), lr=1e-3).load_state_dict(src.state_dict())


def test_building_and_stepping_does_not_import_torch_compiler():
    code = ("import sys, torch\n"
            "from policies.adam import Adam\n"
            "from policies.model import ActorCritic\n"
            "m = ActorCritic(8, 2, hidden=8, layers=1, lstm=False, discrete=False)\n"
            "o = Adam(m.parameters(), lr=1e-3)\n"
            "mean, value, _ = m(torch.randn(4, 8))\n"
            "(mean.sum() + value.sum()).backward()\n"
            "torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5)\n"
            "o.step()\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
