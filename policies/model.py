"""The policy: an actor-critic with observation normalization inside the model.

The normalizer's statistics are buffers of the module, so they are saved with every checkpoint and
exported into the ONNX graph: the laptop normalizes exactly as training did. The actor is a Gaussian
with a state-independent log standard deviation; the deterministic policy is its mean. An LSTM variant
carries its recurrent state explicitly (inputs and outputs), which is also how it exports.

An asymmetric critic (privileged > 0) also reads a vector the actor never sees: what the simulator knows
about the sampled drone (drone_sim.PRIV_LAYOUT), normalized by its own running statistics. Only the actor
is exported, so a policy trained this way needs nothing on a real drone that it did not need before.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class RunningNorm(nn.Module):
    """Running mean and variance of observations (parallel-merge formula), applied as (x - mean) / std.

    tied: blocks (offset, count, stride) of like slots that share one mean and variance per field, so that an
    entity reads the same after normalization whichever slot it is listed in (what an EntityPool relies on)."""

    def __init__(self, size: int, clip: float = 10.0, eps: float = 1e-8,
                 tied: list[tuple[int, int, int]] | None = None):
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.tensor(eps, dtype=torch.float64))
        self.clip = clip
        self.eps = eps
        self.tied = [tuple(int(v) for v in b) for b in tied or []]

    def _tie(self, mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each tied block's per-slot statistics replaced by those of all its slots together."""
        mean, var = mean.clone(), var.clone()
        for off, count, stride in self.tied:
            m = mean[off:off + count * stride].view(count, stride)
            v = var[off:off + count * stride].view(count, stride)
            pooled_m = m.mean(0)
            pooled_v = (v + m.pow(2)).mean(0) - pooled_m.pow(2)
            mean[off:off + count * stride] = pooled_m.repeat(count)
            var[off:off + count * stride] = pooled_v.clamp_min(0.0).repeat(count)
        return mean, var

    @torch.no_grad()
    def update(self, batch_mean: torch.Tensor, batch_var: torch.Tensor, batch_count: float) -> None:
        """Merge a batch's statistics (already all-reduced across ranks when distributed)."""
        if self.tied:
            batch_mean, batch_var = self._tie(batch_mean, batch_var)
        count = self.count.item()
        total = count + batch_count
        delta = batch_mean - self.mean
        new_mean = self.mean + delta * (batch_count / total)
        m2 = self.var * count + batch_var * batch_count + delta.pow(2) * (count * batch_count / total)
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / total)
        self.count.fill_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp((x - self.mean) / torch.sqrt(self.var + self.eps), -self.clip, self.clip)


def _mlp(sizes: list[int], activation: type[nn.Module], out_gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        nn.init.orthogonal_(lin.weight, out_gain if last else math.sqrt(2))
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if not last:
            layers.append(activation())
    return nn.Sequential(*layers)


class EntityPool(nn.Module):
    """Reads each block of like entities in the observation (the nearest drones, the nearest obstacles) through
    one linear map shared by the block's slots, keeps the element-wise maximum over the slots and then applies
    the activation; the rest of the observation passes through unchanged.

    Why: a plain MLP must learn to avoid an obstacle once for each slot it can be listed in, and the slots
    reorder as the drone moves (nearest first); a shared map learns the response once and applies it to
    whichever slot the obstacle is in, and the maximum does not care about the order (a deep set). The
    activation comes after the maximum, which is the same as before it for a monotone activation (tanh, ReLU,
    ELU) but costs one activation per feature instead of one per slot: on a CPU the activation is the dearest
    op of these small networks, and per slot it made training four times slower.
    blocks: (offset, count, stride) of each block in the observation.
    """

    def __init__(self, obs_size: int, blocks: list[tuple[int, int, int]], width: int, activation: type[nn.Module]):
        super().__init__()
        self.blocks = [tuple(int(v) for v in b) for b in blocks]
        inside = set()
        for off, count, stride in self.blocks:
            span = range(off, off + count * stride)
            if span.stop > obs_size or inside & set(span):
                raise ValueError(f"entity block {(off, count, stride)} overlaps another or leaves the observation")
            inside |= set(span)
        # the rest as contiguous ranges: slicing them is cheaper than a gather, forward and backward
        self.rest = [(i, j) for i, j in _runs([i for i in range(obs_size) if i not in inside])]
        self.encoders = nn.ModuleList(_mlp([stride, width], activation, math.sqrt(2)) for _, _, stride in self.blocks)
        self.activation = activation()
        self.out_size = sum(j - i for i, j in self.rest) + width * len(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x[..., i:j] for i, j in self.rest]
        for (off, count, stride), enc in zip(self.blocks, self.encoders):
            slots = x[..., off:off + count * stride].reshape(*x.shape[:-1], count, stride)
            parts.append(self.activation(enc(slots).amax(dim=-2)))
        return torch.cat(parts, -1)


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted indices as half-open contiguous ranges: [0, 1, 2, 5, 6] -> [(0, 3), (5, 7)]."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


class TaskExperts(nn.Module):
    """One network per task; each row goes through the one its observation's task one-hot names (read from the raw
    observation, whose one-hot is exactly 0 and 1, unlike the normalized one).

    Why: six tasks sharing one network cost each other. Race alone on a 2 x 128 network crashes 0.033-0.043 in the
    steps a six-task run gives it; sharing the same network with five other tasks, 0.055-0.115 (BENCHMARKS, issue
    18, eighteenth round); obstacles lost the same way in the fifth round. The experts are still one policy: one
    file, one observation, the task being part of it. Training groups the rows by task, so a row costs one
    expert's multiply-adds, as it did the shared network's; the ONNX export runs every expert and picks, a graph of
    plain ops for the one or few drones deploy flies.
    onehot: (offset, count) of the task one-hot in the observation; nets: one network per task, or with expert_of
    (each task's network index, count entries) one per group of tasks that share a network."""

    def __init__(self, nets: list[nn.Module], onehot: tuple[int, int], expert_of: list[int] | None = None):
        super().__init__()
        self.offset, self.count = (int(v) for v in onehot)
        expert_of = list(range(self.count)) if expert_of is None else [int(k) for k in expert_of]
        if len(expert_of) != self.count or sorted(set(expert_of)) != list(range(len(nets))):
            raise ValueError(f"task experts: tasks mapped to networks {expert_of} do not use each of the {len(nets)} "
                             f"networks for a one-hot of {self.count} tasks")
        self.nets = nn.ModuleList(nets)
        # not saved with the weights: the mapping is part of the model's configuration
        self.register_buffer("expert_of", torch.tensor(expert_of, dtype=torch.long), persistent=False)

    def task_of(self, obs: torch.Tensor) -> torch.Tensor:
        """Each row's task index, read from the raw observation's task one-hot."""
        return obs[..., self.offset:self.offset + self.count].argmax(-1)

    def forward(self, x: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        task = self.expert_of[self.task_of(obs)]
        if torch.onnx.is_in_onnx_export():
            outs = torch.stack([net(x) for net in self.nets], -2)          # (..., tasks, out)
            pick = task[..., None, None].expand(*task.shape, 1, outs.shape[-1])
            return outs.gather(-2, pick).squeeze(-2)
        flat_x, flat_task = x.reshape(-1, x.shape[-1]), task.reshape(-1)
        if flat_x.shape[0] == 0:
            return self.nets[0](x)
        out = None
        for k, net in enumerate(self.nets):
            rows = (flat_task == k).nonzero().squeeze(-1)
            if rows.numel() == 0:
                continue
            y = net(flat_x.index_select(0, rows))
            out = (flat_x.new_zeros(flat_x.shape[0], y.shape[-1]) if out is None else out).index_copy(0, rows, y)
        return out.reshape(*x.shape[:-1], out.shape[-1])


def _task_onehot(name: str, onehot: tuple[int, int] | None, obs_size: int) -> tuple[int, int] | None:
    """(offset, count) of the observation's task one-hot that per-task value heads or experts pick by (None: off),
    refused by name where it does not fit the observation."""
    if not onehot:
        return None
    offset, count = (int(v) for v in onehot)
    if count < 1 or offset < 0 or offset + count > obs_size:
        raise ValueError(f"{name}: a one-hot of {count} columns from {offset} does not fit {obs_size} "
                         "observation values")
    return offset, count


def run_head(head: nn.Module, x: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    """A head's output for the normalized input x; task experts also read the raw obs to pick each row's net."""
    return head(x, obs) if isinstance(head, TaskExperts) else head(x)


class ActorCritic(nn.Module):
    """MLP (default) or LSTM actor-critic for continuous (Gaussian) or discrete (categorical) actions; the MLP
    can read blocks of like entities through an EntityPool first (entities: (offset, count, stride) each).

    value_heads (offset, count): the critic ends in one value per task and each row's value is the one its
    observation's task one-hot (count columns from offset, read before normalization) selects. Why: one policy is
    trained on six tasks whose returns differ in scale and shape (a race episode earns a reward per ring), and a
    single output must fit them all through the one-hot alone; the actor, and so the exported policy, is unchanged.

    experts (offset, count): the MLP actor and critic are each count networks, one per task, every row through its
    own task's (TaskExperts), and each task has its own log std; with the trainer's per-task advantage
    normalization and gradient clip (ppo.py) the tasks share the observation's normalization and nothing else.
    expert_of (count entries): each task's network where some tasks share one (config.expert_of); the tasks of a
    group keep their own log std and advantage normalization and are clipped together."""

    def __init__(self, obs_size: int, action_size: int, hidden: int = 64, layers: int = 2, lstm: bool = False,
                 discrete: bool = False, init_log_std: float = -0.5, activation: str = "tanh",
                 entities: list[tuple[int, int, int]] | None = None, entity_width: int = 16, privileged: int = 0,
                 value_heads: tuple[int, int] | None = None, experts: tuple[int, int] | None = None,
                 expert_of: list[int] | None = None):
        super().__init__()
        act = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}[activation]
        self.obs_size, self.action_size, self.hidden = obs_size, action_size, hidden
        self.is_lstm, self.discrete = lstm, discrete
        self.config = {"obs_size": obs_size, "action_size": action_size, "hidden": hidden, "layers": layers,
                       "lstm": lstm, "discrete": discrete, "init_log_std": init_log_std, "activation": activation}
        if entities:
            if lstm:
                raise ValueError("the entity encoder feeds the MLP policy, not the LSTM")
            self.config.update(entities=[list(b) for b in entities], entity_width=entity_width)
        self.privileged_size = int(privileged)
        if self.privileged_size < 0:
            raise ValueError(f"privileged must be 0 or more, got {privileged}")
        if self.privileged_size:
            self.config["privileged"] = self.privileged_size
            self.priv_norm = RunningNorm(self.privileged_size)
        self.value_heads = _task_onehot("value_heads", value_heads, obs_size)
        if self.value_heads:
            self.config["value_heads"] = list(self.value_heads)
        self.experts = _task_onehot("experts", experts, obs_size)
        if self.experts:
            if lstm or entities or self.value_heads:
                raise ValueError("experts: one plain MLP per task; not with the LSTM, the entity encoder or value "
                                 "heads (each expert's critic is already its task's own)")
            self.config["experts"] = list(self.experts)
            if expert_of is not None and list(expert_of) != list(range(self.experts[1])):
                self.config["expert_of"] = [int(k) for k in expert_of]
        elif expert_of is not None:
            raise ValueError("expert_of: tasks share expert networks only where there are experts")
        values = self.value_heads[1] if self.value_heads else 1
        self.norm = RunningNorm(obs_size, tied=entities)
        body = [hidden] * layers
        extra = self.privileged_size   # the critic's input is the actor's, then the normalized privileged vector
        if lstm:
            self.encoder = _mlp([obs_size, hidden], act, math.sqrt(2))
            self.encoder.append(act())
            self.lstm = nn.LSTM(hidden, hidden)
            self.actor = _mlp([hidden, hidden, action_size], act, 0.01)
            self.critic = _mlp([hidden + extra, hidden, values], act, 1.0)
        elif entities:   # actor and critic each read the entities their own way, as their MLPs are separate too
            # the privileged tail lies outside every entity block, so the critic's pool passes it through
            pools = [EntityPool(obs_size + k, entities, entity_width, act) for k in (0, extra)]
            self.actor = nn.Sequential(pools[0], *_mlp([pools[0].out_size, *body, action_size], act, 0.01))
            self.critic = nn.Sequential(pools[1], *_mlp([pools[1].out_size, *body, values], act, 1.0))
        elif self.experts:
            shared = self.config.get("expert_of")
            count = max(shared) + 1 if shared else self.experts[1]
            self.actor = TaskExperts([_mlp([obs_size, *body, action_size], act, 0.01) for _ in range(count)],
                                     self.experts, shared)
            self.critic = TaskExperts([_mlp([obs_size + extra, *body, values], act, 1.0) for _ in range(count)],
                                      self.experts, shared)
        else:
            self.actor = _mlp([obs_size, *body, action_size], act, 0.01)
            self.critic = _mlp([obs_size + extra, *body, values], act, 1.0)
        if not discrete:
            # experts: one row per task, so that a task that needs less exploration noise does not set another's
            rows = (self.experts[1],) if self.experts else ()
            self.log_std = nn.Parameter(torch.full((*rows, action_size), init_log_std))

    # -- recurrent state ----------------------------------------------------------------------------
    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Zero LSTM state (h, c), each (1, batch, hidden); empty tensors for the MLP."""
        if not self.is_lstm:
            z = torch.zeros(0, device=device)
            return z, z
        z = torch.zeros(1, batch, self.hidden, device=device)
        return z, z.clone()

    def _features(self, obs_n: torch.Tensor, state, done: torch.Tensor | None):
        """obs_n (T, B, obs) normalized -> features (T, B, H), new state. done (T, B) resets state before a step."""
        x = self.encoder(obs_n)
        h, c = state
        outs = []
        for t in range(x.shape[0]):
            if done is not None:
                keep = (1.0 - done[t]).view(1, -1, 1)
                h, c = h * keep, c * keep
            y, (h, c) = self.lstm(x[t:t + 1], (h, c))
            outs.append(y)
        return torch.cat(outs, 0), (h, c)

    # -- heads --------------------------------------------------------------------------------------
    def forward(self, obs: torch.Tensor, state=None, done=None, privileged: torch.Tensor | None = None):
        """Action mean (or logits), value, next state. obs: (B, obs) for the MLP, (T, B, obs) for the LSTM;
        privileged: the same leading shape, (..., privileged_size).

        An asymmetric critic has no value without its privileged input: the value is then None, which is what
        evaluation and export (the actor alone) get; training always passes it."""
        x = self.norm(obs)
        if self.is_lstm:
            if obs.dim() == 2:
                x = x.unsqueeze(0)
                done = None if done is None else done.unsqueeze(0)
                feats, state = self._features(x, state, done)
                feats = feats.squeeze(0)
            else:
                feats, state = self._features(x, state, done)
            return self.actor(feats), self._value(feats, privileged, obs), state
        return run_head(self.actor, x, obs), self._value(x, privileged, obs), state

    def _value(self, x: torch.Tensor, privileged: torch.Tensor | None, obs: torch.Tensor) -> torch.Tensor | None:
        if not self.privileged_size:
            out = run_head(self.critic, x, obs)
        elif privileged is None:
            return None
        elif privileged.shape[-1] != self.privileged_size:
            raise ValueError(f"the critic reads {self.privileged_size} privileged values, got {privileged.shape[-1]}")
        else:
            out = run_head(self.critic, torch.cat([x, self.priv_norm(privileged)], -1), obs)
        if self.value_heads is None:
            return out.squeeze(-1)
        offset, count = self.value_heads
        return (out * obs[..., offset:offset + count]).sum(-1)

    def distribution(self, mean_or_logits: torch.Tensor, obs: torch.Tensor | None = None):
        """The action distribution; obs (the raw observations the mean came from) picks each row's log std where
        the tasks have their own (experts), and is not read otherwise."""
        if self.discrete:
            return torch.distributions.Categorical(logits=mean_or_logits)
        if self.log_std.dim() == 1:
            return torch.distributions.Normal(mean_or_logits, self.log_std.exp().expand_as(mean_or_logits))
        if obs is None:
            raise ValueError("distribution: task experts have a log std per task; pass the observations")
        return torch.distributions.Normal(mean_or_logits, self.log_std[self.actor.task_of(obs)].exp())

    def expert_gradients(self) -> list[list[torch.Tensor]]:
        """For each expert network, the gradients of what is its tasks' alone: its actor and critic networks and
        the rows of the log std of the tasks it flies (views, so scaling them in place scales the gradient).
        Experts only; a network that no row of the minibatch went through has no gradient and is left out."""
        expert_of = self.actor.expert_of.tolist()
        groups = []
        for k in range(len(self.actor.nets)):
            params = [*self.actor.nets[k].parameters(), *self.critic.nets[k].parameters()]
            grads = [p.grad for p in params if p.grad is not None]
            if self.log_std.grad is not None:
                grads += [self.log_std.grad[t] for t, net in enumerate(expert_of) if net == k]
            groups.append(grads)
        return groups

    def deterministic(self, mean_or_logits: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return mean_or_logits.argmax(-1)
        return torch.clamp(mean_or_logits, -1.0, 1.0)


def log_prob(dist, actions: torch.Tensor, discrete: bool) -> torch.Tensor:
    lp = dist.log_prob(actions)
    return lp if discrete else lp.sum(-1)


def entropy(dist, discrete: bool) -> torch.Tensor:
    e = dist.entropy()
    return e if discrete else e.sum(-1)
