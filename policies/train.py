"""The PPO training loop: one policy across the enabled tasks and randomized drones.

The hot path is the rollout: the env writes observations into a numpy buffer that a torch tensor views
(no copy), the policy runs under inference mode, and actions and statistics go into preallocated
storage. Under torchrun every rank steps its own envs with its own seeds; gradients and observation
statistics are all-reduced so the ranks' weights stay identical, and rank 0 alone writes.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import drone_sim
from drone_sim.config import sim_default

from .adam import Adam
from .checkpoint import architecture_differences, load_checkpoint, save_checkpoint
from .config import TrainConfig, default_toml, expert_of
from .metrics import MetricsWriter
from .model import ActorCritic, log_prob
from .ppo import Rollout, compute_gae, ppo_update
from .teacher import make_teacher, teacher_weight


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is available")
    return torch.device(name)


def make_env(cfg: TrainConfig, seed: int, num_envs: int | None = None, **overrides):
    """The drone simulator on cfg.tasks, or the ocean regression env cfg.env."""
    if cfg.env != "drone":
        return drone_sim.make_ocean(cfg.env, num_envs=num_envs or cfg.num_envs, seed=seed,
                                    agents_per_env=cfg.agents_per_env)
    return drone_sim.make(tasks=cfg.tasks, num_envs=num_envs or cfg.num_envs, agents_per_env=cfg.agents_per_env,
                          action_mode=cfg.action_mode, seed=seed, dr=cfg.dr, drone=cfg.drone or None,
                          course=cfg.course or None, physics_hz=cfg.physics_hz, control_hz=cfg.control_hz,
                          **{"crash_penalty": cfg.crash_penalty, "clearance_margin": cfg.clearance_margin,
                             "clearance_weight": cfg.clearance_weight, "clearance_time": cfg.clearance_time,
                             "rim_lookahead": cfg.rim_lookahead, "race_tight_room": cfg.race_tight_room,
                             "smooth_weight": cfg.smooth_weight, "speed_weight": cfg.speed_weight,
                             "speed_limit": speed_limits(cfg.speed_limit, cfg.speed_limit_tasks),
                             "obstacles": (cfg.min_obstacles, cfg.max_obstacles),
                             "blocked_line_prob": cfg.blocked_line_prob, **overrides})


def lowest_reward(cfg: TrainConfig) -> float:
    """The floor the trainer clamps rewards to: -1 (a guard against an env that strays), except that a crash
    penalty above 1 must reach the update whole, or --crash-penalty would change nothing."""
    return -max(1.0, cfg.crash_penalty)


def speed_limits(limit: float, tasks: str = "") -> dict[str, float]:
    """One speed limit for `tasks` ('' : the tasks the simulator limits by default; race stays unlimited), and
    none for the rest: a limit that keeps the obstacle crossing slow need not slow a shared network's other
    tasks."""
    chosen = drone_sim.parse_tasks(tasks) if tasks else {t for t, v in sim_default("speed_limit").items() if v > 0.0}
    return {t: (limit if t in chosen else 0.0) for t in drone_sim.TASKS}


class Distributed:
    """torch.distributed when launched by torchrun (WORLD_SIZE > 1), otherwise a single process."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled:
            import torch.distributed as dist

            self.dist = dist
            if not dist.is_initialized():
                dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def average_gradients(self, model: torch.nn.Module) -> None:
        if not self.enabled:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        self.dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            self.dist.all_reduce(t)
        return t

    def broadcast_model(self, model: torch.nn.Module) -> None:
        if self.enabled:
            for tensor in list(model.parameters()) + list(model.buffers()):
                self.dist.broadcast(tensor.data, 0)

    def weight_spread(self, model: torch.nn.Module) -> float:
        """Largest difference of any weight between ranks (0.0 when they are in lockstep, as they must be)."""
        if not self.enabled:
            return 0.0
        flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()] + [model.norm.mean, model.norm.var])
        hi, lo = flat.clone(), flat.clone()
        self.dist.all_reduce(hi, op=self.dist.ReduceOp.MAX)
        self.dist.all_reduce(lo, op=self.dist.ReduceOp.MIN)
        return float((hi - lo).max())

    def close(self) -> None:
        if self.enabled and self.dist.is_initialized():
            self.dist.barrier()  # rank 0 may still be writing; tearing gloo down under it aborts the process
            self.dist.destroy_process_group()


def drone_entity_blocks() -> list[tuple[int, int, int]]:
    """(offset, slots, values per slot) of the observation's drone and obstacle blocks, from its layout."""
    return [(drone_sim.OBS_LAYOUT[name][0], drone_sim.OBS_LAYOUT[name][1] // stride, stride)
            for name, stride in sorted(drone_sim.OBS_STRIDES.items())]


def env_spaces(env) -> tuple[int, int, bool]:
    """(observation size, action size or number of discrete actions, discrete?) of a drone or ocean env."""
    if hasattr(env, "num_actions"):
        return env.obs_size, env.num_actions, True
    return drone_sim.OBS_SIZE, 4, False


class TaskStats:
    """Episode-weighted averages of the env's per-task logs over a logging window. A metric that is NaN
    for some episodes (a lap time when no lap was flown) is averaged over the episodes that have it."""

    def __init__(self):
        self.sums: dict[str, dict[str, list[float]]] = {}
        self.episodes: dict[str, float] = {}

    def add(self, logs: dict[str, dict[str, float]]) -> None:
        for task, m in logs.items():
            n = m["episodes"]
            self.episodes[task] = self.episodes.get(task, 0.0) + n
            sums = self.sums.setdefault(task, {})
            for k, v in m.items():
                if k == "episodes":
                    continue
                acc = sums.setdefault(k, [0.0, 0.0])
                if math.isnan(v):
                    continue
                acc[0] += v * n
                acc[1] += n

    def means(self) -> dict[str, dict[str, float]]:
        out = {}
        for task, sums in self.sums.items():
            out[task] = {k: total / count if count > 0 else math.nan for k, (total, count) in sums.items()}
            out[task]["episodes"] = self.episodes[task]
        return out


def final_window_start(cfg: TrainConfig, env, total_iters: int) -> int:
    """The iteration from which finished episodes count in the run's final figures: the last 10 % of the
    run, and never less than one episode of the longest enabled task. A shorter window (the last logging
    window can be a fraction of a second) sees only the episodes that end early, which are the crashes: a
    hover run at 99 % success used to end on "8 episodes, score 0, crash 1"."""
    iters = math.ceil(0.1 * total_iters)
    conf = getattr(env, "config", None)
    if cfg.env == "drone" and isinstance(conf, dict) and "horizon_s" in conf:
        longest = max(h for h, w in zip(conf["horizon_s"], conf["task_weights"]) if w > 0)
        iters = max(iters, math.ceil(longest * cfg.control_hz / cfg.horizon))
    return max(0, total_iters - iters)


def rollout_moments(x: torch.Tensor, dist: Distributed) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(mean, variance, count) of a rollout's vectors (T, N, size) over every rank, in float64 sums, for a
    RunningNorm: every rank merges the same figures, so the normalizers stay identical."""
    flat = x.view(-1, x.shape[-1]).double()
    moments = torch.cat([flat.sum(0), flat.pow(2).sum(0), torch.tensor([flat.shape[0]], dtype=torch.float64,
                                                                        device=flat.device)])
    moments = dist.sum(moments)
    count = moments[-1].item()
    mean = moments[:flat.shape[1]] / count
    var = (moments[flat.shape[1]:-1] / count - mean.pow(2)).clamp_min(0.0)
    return mean.float(), var.float(), count


def crossed(global_step: int, steps_per_iter: int, every: int) -> bool:
    """Whether the last iteration's steps passed a multiple of `every` (0: never), so that a schedule in agent-steps
    holds whatever the iteration size."""
    return every > 0 and global_step // every != (global_step - steps_per_iter) // every


def kept_checkpoint_path(out: Path, global_step: int) -> Path:
    """Zero-padded so that the kept checkpoints sort in training order."""
    return out / "checkpoints" / f"step_{global_step:012d}.pt"


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False,
          progress: Callable[[dict], None] | None = None, stop: Callable[[dict], bool] | None = None) -> dict:
    """Train a policy; returns the final summary. Writes config, metrics, checkpoints and curves to out_dir.

    stop, when given, is asked after every update with {step, iteration, time_s, model, losses}; True ends the
    run there as if its budget were spent (model.pt and summary.json are written, summary["stopped_early"]
    is set). A sweep uses it for a wall-clock budget, intermediate evaluations and pruning; an exception it
    raises ends the run without a model."""
    device = pick_device(cfg.device)
    dist = Distributed(device)
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // dist.world))
    out = Path(out_dir)
    ckpt_path = out / "checkpoints" / "latest.pt"
    seed = cfg.seed + 1000 * dist.rank
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    np.random.seed(seed)

    env = make_env(cfg, seed)
    N = env.num_agents
    obs_size, action_size, discrete = env_spaces(env)
    priv_size = drone_sim.PRIV_SIZE if cfg.privileged_critic else 0
    env_config = env.config if cfg.env == "drone" else {"env": cfg.env, "agents_per_env": env.agents_per_env,
                                                        "obs_size": obs_size, "num_actions": action_size}
    model = ActorCritic(obs_size, action_size, hidden=cfg.hidden, layers=cfg.layers, lstm=cfg.lstm,
                        discrete=discrete, init_log_std=cfg.init_log_std, activation=cfg.activation,
                        entities=drone_entity_blocks() if cfg.entities else None,
                        entity_width=cfg.entity_width, privileged=priv_size,
                        value_heads=drone_sim.OBS_LAYOUT["task"] if cfg.task_value_heads else None,
                        experts=drone_sim.OBS_LAYOUT["task"] if cfg.task_experts else None,
                        expert_of=expert_of(cfg.expert_groups) if cfg.expert_groups else None).to(device)
    optimizer = Adam(model.parameters(), lr=cfg.learning_rate, eps=1e-5)
    global_step, iteration, elapsed_before = 0, 0, 0.0
    if resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}")
        ck = load_checkpoint(ckpt_path, device)
        want = drone_sim.PRIV_VERSION if priv_size else 0
        if ck.get("priv_version", 0) != want:
            raise ValueError(f"--resume: {ckpt_path} has privileged critic layout v{ck.get('priv_version', 0)}, "
                             f"this run asks for v{want} (0: no privileged critic)")
        differences = architecture_differences(ck["model_config"], model.config)
        if differences:
            raise ValueError(f"--resume: {ckpt_path} was trained with another model than this run asks for ("
                             + "; ".join(differences) + "); resume with the options it was trained with")
        model.load_state_dict(ck["model_state"])
        optimizer.load_state_dict(ck["optimizer_state"])
        global_step, iteration = ck["global_step"], ck["iteration"]
        elapsed_before = ck.get("elapsed_s", 0.0)
    dist.broadcast_model(model)

    writer = None
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.toml").write_text(config_toml(cfg))
        writer = MetricsWriter(out, append=resume)

    T = cfg.horizon
    buf = Rollout(T, N, obs_size, () if discrete else (action_size,), device,
                  action_dtype=torch.long if discrete else torch.float32, hidden=cfg.hidden if cfg.lstm else 0,
                  teacher=bool(cfg.teacher), privileged=priv_size)
    teacher = make_teacher(cfg, N)
    obs_np = env.observations
    obs_cpu = torch.from_numpy(obs_np)  # views the env's buffer: refreshed in place by every step
    priv_cpu = torch.from_numpy(env.privileged) if priv_size else None   # the same, rows rewritten on respawn
    act_np = env.actions
    rew_t = torch.from_numpy(env.rewards)
    term_t = torch.from_numpy(env.terminals)
    trunc_t = torch.from_numpy(env.truncations)
    state = model.initial_state(N, device)
    starts = torch.ones(N, device=device)
    gen = torch.Generator().manual_seed(seed)

    r_low = lowest_reward(cfg)
    steps_per_iter = T * N * dist.world
    total_iters = max(1, math.ceil(cfg.total_steps / steps_per_iter))
    stats_window = TaskStats()
    final_stats = TaskStats()  # the summary's figures: episodes that ended near the end (final_window_start)
    final_from = final_window_start(cfg, env, total_iters)
    last_log = time.time()
    t_start = time.time()
    steps_at_start = global_step
    update_stats = None
    stopped_early = False
    obs, _ = env.reset(seed)
    while iteration < total_iters:
        frac = iteration / total_iters
        lr = cfg.learning_rate * (1.0 - (1.0 - cfg.lr_final_fraction) * frac if cfg.lr_schedule == "linear" else 1.0)
        for g in optimizer.param_groups:
            g["lr"] = lr
        # ---- rollout
        # the teacher's weight never rises again once it is 0: from then on its actions are not computed
        weight = teacher_weight(cfg, frac)
        teaching = teacher is not None and weight > 0.0
        if model.is_lstm:  # the update replays each agent's sequence from this state
            buf.h0.copy_(state[0])
            buf.c0.copy_(state[1])
        with torch.inference_mode():
            for t in range(T):
                o = obs_cpu.to(device, non_blocking=True)
                buf.obs[t].copy_(o)
                buf.starts[t].copy_(starts)
                p = None
                if priv_size:
                    p = priv_cpu.to(device, non_blocking=True)
                    buf.privileged[t].copy_(p)
                mean, value, state = model(o, state, starts if model.is_lstm else None, p)
                dist_t = model.distribution(mean, o)
                a = dist_t.sample()
                buf.actions[t].copy_(a)
                buf.logp[t].copy_(log_prob(dist_t, a, model.discrete))
                buf.values[t].copy_(value)
                if teaching:
                    t_act, t_mask = teacher(obs_np)
                    buf.teacher_actions[t].copy_(torch.from_numpy(t_act))
                    buf.teacher_mask[t].copy_(torch.from_numpy(t_mask))
                np.copyto(act_np, a.cpu().numpy())
                env.step()
                if teaching:
                    teacher.episode_ended(env.terminals | env.truncations)
                r = rew_t.to(device).clamp_(r_low, 1.0)
                term = term_t.to(device).float()
                trunc = trunc_t.to(device).float()
                buf.rewards[t].copy_(r + cfg.gamma * value * trunc)  # bootstrap timeouts
                buf.dones[t].copy_(torch.clamp(term + trunc, max=1.0))
                starts = buf.dones[t]
            o = obs_cpu.to(device)
            p = priv_cpu.to(device) if priv_size else None
            _, last_value, _ = model(o, state, starts if model.is_lstm else None, p)
            buf.values[T].copy_(last_value)
        logs = env.logs()
        stats_window.add(logs)
        if iteration >= final_from:
            final_stats.add(logs)
        compute_gae(buf.rewards, buf.values, buf.dones, cfg.gamma, cfg.gae_lambda, out_adv=buf.advantages,
                    out_ret=buf.returns)
        # ---- update
        update_stats = ppo_update(model, optimizer, buf, epochs=cfg.epochs, minibatch_size=cfg.minibatch_size,
                                  clip=cfg.clip, vf_coef=cfg.vf_coef, ent_coef=cfg.ent_coef,
                                  max_grad_norm=cfg.max_grad_norm, norm_adv=cfg.norm_adv, generator=gen,
                                  grad_hook=dist.average_gradients, teacher_weight=weight)
        # ---- observation statistics for the next rollout (identical on every rank)
        model.norm.update(*rollout_moments(buf.obs, dist))
        if priv_size:
            model.priv_norm.update(*rollout_moments(buf.privileged, dist))

        iteration += 1
        global_step += steps_per_iter
        now = time.time()
        done = iteration >= total_iters
        if stop is not None and not done and stop({"step": global_step, "iteration": iteration,
                                                   "time_s": elapsed_before + now - t_start, "model": model,
                                                   "losses": vars(update_stats)}):
            done, stopped_early = True, True
            total_iters = iteration
        if dist.is_main and (now - last_log >= cfg.log_every or done):
            sps = (global_step - steps_at_start) / max(now - t_start, 1e-9)
            record = {"step": global_step, "iteration": iteration, "time_s": elapsed_before + now - t_start,
                      "sps": sps, "lr": lr, **{k: v for k, v in vars(update_stats).items()},
                      "tasks": stats_window.means()}
            writer.write(record)
            if progress is not None:
                progress({**record, "total_steps": total_iters * steps_per_iter})
            stats_window = TaskStats()
            last_log = now
        if dist.is_main and (crossed(global_step, steps_per_iter, cfg.checkpoint_every) or done):
            save_checkpoint(ckpt_path, model, optimizer, cfg, env_config, global_step, iteration,
                            elapsed_before + time.time() - t_start)
        if dist.is_main and crossed(global_step, steps_per_iter, cfg.keep_checkpoint_every) and not done:
            save_checkpoint(kept_checkpoint_path(out, global_step), model, optimizer, cfg, env_config, global_step,
                            iteration, elapsed_before + time.time() - t_start)
    wall = time.time() - t_start
    summary = {"global_step": global_step, "iterations": iteration, "wall_time_s": wall,
               "agent_steps_per_s": (global_step - steps_at_start) / max(wall, 1e-9), "world_size": dist.world,
               "rank_weight_spread": dist.weight_spread(model), "stopped_early": stopped_early}
    if dist.is_main:
        save_checkpoint(out / "model.pt", model, optimizer, cfg, env_config, global_step, iteration,
                        elapsed_before + wall)
        writer.close()
        summary["last"] = writer.last
        summary["final"] = {"from_step": final_from * steps_per_iter, "tasks": final_stats.means()}
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    dist.close()
    return summary


def config_toml(cfg: TrainConfig) -> str:
    """A TrainConfig as the TOML file drone-train --config reads (what a run writes as config.toml)."""
    lines = ["# effective configuration of this run (drone-train --config accepts this file)", "[train]"]
    for key, value in cfg.to_dict().items():
        text = ("true" if value else "false") if isinstance(value, bool) else json.dumps(value)
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


__all__ = ["train", "make_env", "lowest_reward", "pick_device", "default_toml", "config_toml"]
