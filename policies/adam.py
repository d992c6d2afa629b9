"""Adam for the PPO trainer, without torch.optim's start-up cost.

torch.optim's optimizers import torch's compiler (torch._dynamo) the first time one is built or stepped, to mark
their own code as not compilable. On this project's 2-core reference machine that import takes about 1.5 s of
every drone-train and every sweep trial: about 8 % of the 20 s a default hover run is allowed. The trainer never
compiles, so it uses this optimizer: the same update as ``torch.optim.Adam`` (no weight decay, no AMSGrad),
written with torch's multi-tensor ops, and the same ``state_dict`` layout, so checkpoints written by either load
into the other (tests/test_adam.py holds the two to the same parameters step for step).
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import torch


class Adam:
    """Adam (Kingma & Ba, 2015) over one group of parameters, with ``param_groups[0]["lr"]`` settable between
    steps the way the trainer's learning-rate schedule sets it."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = [p for p in params]
        if not self.params:
            raise ValueError("Adam got an empty parameter list")
        if not (lr >= 0.0 and eps >= 0.0 and 0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Adam: invalid lr {lr}, betas {betas} or eps {eps}")
        self.param_groups: list[dict[str, Any]] = [{
            "lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": 0, "amsgrad": False, "maximize": False,
            "foreach": None, "capturable": False, "differentiable": False, "fused": None,
            "params": self.params}]
        self.steps = [0] * len(self.params)  # per parameter, as torch's: one without a gradient is not stepped
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter that has a gradient."""
        group = self.param_groups[0]
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        idx = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not idx:
            return
        params = [self.params[i] for i in idx]
        grads = [p.grad for p in params]
        m = [self.exp_avg[i] for i in idx]
        v = [self.exp_avg_sq[i] for i in idx]
        for i in idx:
            self.steps[i] += 1
        torch._foreach_lerp_(m, grads, 1.0 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, 1.0 - beta2)
        step_size = [-lr / (1.0 - beta1 ** self.steps[i]) for i in idx]
        bias2_sqrt = [math.sqrt(1.0 - beta2 ** self.steps[i]) for i in idx]
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, bias2_sqrt)
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, m, denom, step_size)

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.Adam's layout: per-parameter state keyed by index, and the group without its tensors."""
        state = {i: {"step": torch.tensor(float(self.steps[i])), "exp_avg": self.exp_avg[i].clone(),
                     "exp_avg_sq": self.exp_avg_sq[i].clone()} for i in range(len(self.params)) if self.steps[i]}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group["params"] = list(range(len(self.params)))
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Loads what ``state_dict`` (this class's or torch.optim.Adam's) wrote for the same parameters."""
        groups = state_dict.get("param_groups")
        if not isinstance(groups, list) or len(groups) != 1 or len(groups[0].get("params", ())) != len(self.params):
            raise ValueError("optimizer state does not match this model's parameters (a checkpoint of another "
                             "network shape?)")
        group = groups[0]
        self.param_groups[0].update(lr=group["lr"], betas=tuple(group["betas"]), eps=group["eps"])
        state = state_dict.get("state", {})
        for i, p in enumerate(self.params):
            s = state.get(i)
            if not s:
                self.steps[i] = 0
                self.exp_avg[i].zero_()
                self.exp_avg_sq[i].zero_()
                continue
            if s["exp_avg"].shape != p.shape:
                raise ValueError(f"optimizer state of parameter {i} has shape {tuple(s['exp_avg'].shape)}, "
                                 f"the model's has {tuple(p.shape)}")
            self.exp_avg[i].copy_(s["exp_avg"])
            self.exp_avg_sq[i].copy_(s["exp_avg_sq"])
            self.steps[i] = int(float(s["step"]))
