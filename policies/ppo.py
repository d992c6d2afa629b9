"""PPO with GAE: rollout storage, advantage computation and the clipped update.

Storage is allocated once (time-major: T steps x N agents) and written in place during the rollout.
Truncated episodes (timeouts) are bootstrapped rather than treated as failures: since the env has
already reset the agent, the value of its last state stands in for the value of the state it would
have reached (r += gamma * V(s_t)); crashes are true terminals with no bootstrap.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .adam import Adam
from .model import ActorCritic, entropy, log_prob


class Rollout:
    """Preallocated time-major rollout storage for T steps of N agents."""

    def __init__(self, steps: int, agents: int, obs_size: int, action_shape: tuple[int, ...], device,
                 action_dtype=torch.float32, hidden: int = 0, teacher: bool = False, privileged: int = 0):
        T, N = steps, agents
        self.steps, self.agents = T, N
        self.obs = torch.zeros(T, N, obs_size, device=device)
        self.actions = torch.zeros(T, N, *action_shape, device=device, dtype=action_dtype)
        self.logp = torch.zeros(T, N, device=device)
        self.values = torch.zeros(T + 1, N, device=device)
        self.rewards = torch.zeros(T, N, device=device)
        self.dones = torch.zeros(T, N, device=device)        # episode ended after step t
        self.starts = torch.zeros(T, N, device=device)       # episode started at step t (LSTM state reset)
        self.advantages = torch.zeros(T, N, device=device)
        self.returns = torch.zeros(T, N, device=device)
        self.h0 = torch.zeros(1, N, hidden, device=device)     # LSTM state at the rollout's start
        self.c0 = torch.zeros(1, N, hidden, device=device)
        # with a teacher (policies/teacher.py): its action for each step, and where it is imitated
        self.teacher_actions = torch.zeros(T, N, *action_shape, device=device) if teacher else None
        self.teacher_mask = torch.zeros(T, N, device=device) if teacher else None
        # with an asymmetric critic: the privileged vector beside each observation (only the critic reads it)
        self.privileged = torch.zeros(T, N, privileged, device=device) if privileged else None


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, gamma: float, lam: float,
                out_adv: torch.Tensor | None = None,
                out_ret: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation. values has T + 1 rows (the last one bootstraps the tail);
    dones[t] = 1 means no bootstrap from step t to t + 1. Returns (advantages, returns), written into
    out_adv / out_ret when given (the trainer's rollout buffers), so returns are computed here only."""
    T = rewards.shape[0]
    adv = out_adv if out_adv is not None else torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in range(T - 1, -1, -1):
        nonterminal = 1.0 - dones[t]
        delta = rewards[t] + gamma * values[t + 1] * nonterminal - values[t]
        last = delta + gamma * lam * nonterminal * last
        adv[t] = last
    if out_ret is None:
        return adv, adv + values[:T]
    torch.add(adv, values[:T], out=out_ret)
    return adv, out_ret


@dataclass
class UpdateStats:
    policy_loss: float = 0.0
    value_loss: float = 0.0
    entropy: float = 0.0
    approx_kl: float = 0.0
    clip_fraction: float = 0.0
    grad_norm: float = 0.0
    teacher_loss: float = 0.0


def clipped_surrogate(ratio: torch.Tensor, adv: torch.Tensor, clip: float) -> torch.Tensor:
    """PPO's pessimistic clipped objective, as a loss (to minimize)."""
    return -torch.min(ratio * adv, torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * adv).mean()


def normalize_by_group(x: torch.Tensor, group: torch.Tensor, count: int, eps: float = 1e-8) -> torch.Tensor:
    """x with each group's values brought to mean 0 and (unbiased) std 1; group holds each value's index in
    [0, count). Why: with one network per task, advantages normalized over the whole minibatch give the task with
    the largest returns (race earns a reward per ring) the largest steps and shrink every other task's."""
    n = x.new_zeros(count).index_add_(0, group, torch.ones_like(x))
    mean = x.new_zeros(count).index_add_(0, group, x) / n.clamp_min(1.0)
    dev = x - mean[group]
    var = x.new_zeros(count).index_add_(0, group, dev * dev) / (n - 1.0).clamp_min(1.0)
    return dev / (var.sqrt()[group] + eps)


def clip_grad_norm_by_group(groups: list[list[torch.Tensor]], max_norm: float) -> float:
    """Scales each group of gradients in place to a norm of at most max_norm, on its own, and returns the norm of
    all of them together before clipping (what one global clip would have reported). Why: with one network per
    task, one clip over all of them scales every task's step by the largest task's gradient."""
    total_sq = 0.0
    for grads in groups:
        if not grads:
            continue
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        torch._foreach_mul_(grads, torch.clamp(max_norm / (norm + 1e-6), max=1.0))
        total_sq += float(norm) ** 2
    return total_sq ** 0.5


def ppo_update(model: ActorCritic, optimizer: Adam, buf: Rollout, *, epochs: int,
               minibatch_size: int, clip: float, vf_coef: float, ent_coef: float, max_grad_norm: float,
               norm_adv: bool = True, generator: torch.Generator | None = None,
               grad_hook=None, teacher_weight: float = 0.0) -> UpdateStats:
    """Several epochs of minibatch PPO on one rollout. grad_hook(model) runs between backward and the
    optimizer step (the distributed trainer all-reduces gradients there). With teacher_weight > 0 (MLP only)
    the loss adds teacher_weight x the mean squared distance of the action mean from the teacher's action, over
    the samples the teacher is imitated on, each weighted by its task's teacher weight (buf.teacher_mask).
    With task experts the advantages are normalized and the gradients clipped per task (normalize_by_group,
    clip_grad_norm_by_group), so that each expert trains as it would alone."""
    T, N = buf.steps, buf.agents
    stats = UpdateStats()
    updates = 0
    discrete = model.discrete
    if model.is_lstm:  # minibatches of whole agent sequences
        per_mb = max(1, min(N, minibatch_size // T))
        index_count, unit = N, per_mb
    else:
        index_count, unit = T * N, min(minibatch_size, T * N)
        flat_obs = buf.obs.view(T * N, -1)
        flat_priv = buf.privileged.view(T * N, -1) if buf.privileged is not None else None
        flat_act = buf.actions.view(T * N, *buf.actions.shape[2:])
        flat = [buf.logp.view(-1), buf.advantages.view(-1), buf.returns.view(-1)]
        teach = teacher_weight > 0.0 and buf.teacher_actions is not None
        if teach:
            flat_teacher = buf.teacher_actions.view(T * N, -1)
            flat_mask = buf.teacher_mask.view(-1)
    for _ in range(epochs):
        perm = torch.randperm(index_count, generator=generator, device="cpu").to(buf.obs.device)
        for start in range(0, index_count, unit):
            idx = perm[start:start + unit]
            if model.is_lstm:
                state = (buf.h0[:, idx], buf.c0[:, idx])
                priv = buf.privileged[:, idx] if buf.privileged is not None else None
                mean, value, _ = model(buf.obs[:, idx], state, buf.starts[:, idx], priv)
                mean, value = mean.reshape(-1, mean.shape[-1]), value.reshape(-1)
                act = buf.actions[:, idx].reshape(-1, *buf.actions.shape[2:])
                old_logp, adv = buf.logp[:, idx].reshape(-1), buf.advantages[:, idx].reshape(-1)
                ret = buf.returns[:, idx].reshape(-1)
                obs = None   # only task experts read the rows' observations here, and they are MLP-only
            else:
                obs = flat_obs[idx]
                mean, value, _ = model(obs, privileged=flat_priv[idx] if flat_priv is not None else None)
                act = flat_act[idx]
                old_logp, adv, ret = (x[idx] for x in flat)
            dist = model.distribution(mean, obs)
            new_logp = log_prob(dist, act, discrete)
            ent = entropy(dist, discrete).mean()
            if norm_adv and model.experts:
                adv = normalize_by_group(adv, model.actor.task_of(obs), model.experts[1])
            elif norm_adv:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            logratio = new_logp - old_logp
            ratio = logratio.exp()
            pg_loss = clipped_surrogate(ratio, adv, clip)
            v_loss = 0.5 * (value - ret).pow(2).mean()
            loss = pg_loss + vf_coef * v_loss - ent_coef * ent
            if not model.is_lstm and teach:
                m = flat_mask[idx]
                # m: each sample's task weight (0: not taught); the mean over the taught samples, so that a task
                # taught at 0.3 counts 0.3 of one taught at 1
                t_loss = (m * (mean - flat_teacher[idx]).pow(2).sum(-1)).sum() / (m > 0).sum().clamp_min(1)
                loss = loss + teacher_weight * t_loss
                stats.teacher_loss += t_loss.item()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_hook is not None:
                grad_hook(model)
            if model.experts:
                gn = clip_grad_norm_by_group(model.expert_gradients(), max_grad_norm)
            else:
                gn = nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                stats.policy_loss += pg_loss.item()
                stats.value_loss += v_loss.item()
                stats.entropy += ent.item()
                stats.approx_kl += ((ratio - 1) - logratio).mean().item()
                stats.clip_fraction += ((ratio - 1.0).abs() > clip).float().mean().item()
                stats.grad_norm += float(gn)
            updates += 1
    for k in vars(stats):
        setattr(stats, k, getattr(stats, k) / max(updates, 1))
    return stats
