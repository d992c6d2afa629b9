"""One sweep trial: an ordinary drone-train run with sampled settings, scored the way drone-eval scores.

The run directory is a normal one (config.toml, metrics, checkpoints, model.pt), so the best trial is
evaluated, resumed and exported like any run. The score is measured on randomized drones at a seed the
training never saw, with evaluate_policy (drone-eval's own code) for the drone tasks and evaluate_ocean
for the regression games. A trial has a budget in agent-steps or in training seconds (evaluation time does
not count against it); intermediate evaluations report to Optuna's pruner, and the single-objective value
is the best score reached within the budget, so a run that peaks and then degrades is not punished for
where the budget happened to end.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import optuna

from ..config import ConfigError, TrainConfig
from ..evaluate import TorchPolicy, evaluate_ocean, evaluate_policy
from ..train import train
from .space import Param

# Scores per task are on different scales: race counts rings per episode (a lap of the generated course is 7
# rings), the others are shares in [0, 1]. The multi-task objective is the mean of score / scale.
TASK_SCALE = {"race": 7.0}

# Intermediate scores are reported at the evaluation's number (1, 2, ...), not at the agent-step it fell on:
# Optuna's median pruner compares a trial only with trials that reported at the very same step, and trials
# whose rollouts differ in size (horizon, num_envs) or whose budget is in seconds reach a mark at different
# agent-steps, so they would never be compared. The first evaluation judges nothing: at a quarter of the budget
# a slow starter (a low learning rate, a small initial action noise) still scores about 0 while it may finish
# among the best, and the sweep in BENCHMARKS "An entropy bonus and a PPO sweep" lost seven of twelve trials
# there.
PRUNE_FROM_EVALUATION = 2


def make_pruner(enabled: bool) -> optuna.pruners.BasePruner:
    """The sweep's pruner: the median rule from the second intermediate evaluation on, after 3 finished
    trials; none where pruning is off (--no-prune, or the score-time objective, which Optuna cannot prune)."""
    if not enabled:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=PRUNE_FROM_EVALUATION)


UNLIMITED_STEPS = 10 ** 12


class TrialDiverged(RuntimeError):
    """Training produced non-finite losses; the trial fails with this reason and the sweep goes on."""


class SurplusTrial(RuntimeError):
    """Two workers saw the study's last free slot at the same moment and both started a trial for it. The
    later trial (by number) stands down before it samples or trains anything, so the study never holds
    more finished trials than asked for."""


def claim_slot(trial: optuna.Trial, slots: int) -> None:
    """Raise SurplusTrial when the trials created before this one (finished or still running) already fill
    the study's `slots`.

    A worker counts the free slots and then creates a trial; between the two another worker can do the same.
    The storage numbers trials in the order it creates them (one counter for all workers, also on a shared
    server), so every worker agrees on which trial came first, and only the later one stands down. A running
    trial that fails later frees its slot again and the workers' loop fills it."""
    live = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING)
    earlier = sum(t.number < trial.number and t.state in live for t in trial.study.get_trials(deepcopy=False))
    if earlier >= slots:
        reason = f"surplus: {earlier} earlier trials already fill the study's {slots}"
        trial.set_user_attr("fail_reason", reason)
        raise SurplusTrial(reason)


@dataclasses.dataclass
class SweepSettings:
    base: TrainConfig
    space: tuple[Param, ...]
    out: Path                      # the sweep's directory; trials go under out/trials/NNNN
    budget_steps: int | None = None
    budget_seconds: float | None = None
    eval_episodes: int = 256
    eval_seed: int = 777_777       # never a training seed: those are cfg.seed + small offsets
    evals: int = 3                 # intermediate evaluations per trial (pruning, best-within-budget)
    slots: int | None = None       # finished trials the study should reach (all workers); None: no limit
    multi: bool = False            # optimize (score, wall clock) jointly: a Pareto front
    # set by the command's Ctrl-C / SIGTERM handler: the trial stops at its next update even when the
    # KeyboardInterrupt the handler raised was swallowed by a library's catch-all
    interrupted: threading.Event = dataclasses.field(default_factory=threading.Event)

    def __post_init__(self):
        if (self.budget_steps is None) == (self.budget_seconds is None):
            raise ValueError("give a budget in agent-steps or in seconds (one of them)")
        if self.budget_steps is not None and self.budget_steps < 1:
            raise ValueError(f"budget in agent-steps must be positive, got {self.budget_steps}")
        if self.budget_seconds is not None and not self.budget_seconds > 0:
            raise ValueError(f"budget in seconds must be positive, got {self.budget_seconds}")


def trial_config(settings: SweepSettings, params: dict[str, Any], number: int) -> TrainConfig:
    """The run's TrainConfig: the base with the sampled settings, its own seed, the budget as total_steps."""
    cfg = dataclasses.replace(settings.base, **params)
    cfg.seed = settings.base.seed + number
    cfg.total_steps = settings.budget_steps or UNLIMITED_STEPS
    cfg.log_every = max(cfg.log_every, 5.0)
    cfg.checkpoint_every = min(cfg.checkpoint_every, cfg.total_steps)
    try:
        return cfg.validate()
    except ConfigError as exc:
        raise ValueError(f"sampled settings {params} are not a valid run: {exc}") from None


def score_of(model, cfg: TrainConfig, episodes: int, seed: int,
             stop: Callable[[], None] | None = None) -> tuple[float, list[dict]]:
    """(objective score, the evaluation rows) of an in-memory model, deterministic actions. `stop` is called
    before every evaluation step and ends it by raising, so that a Ctrl-C or SIGTERM whose KeyboardInterrupt
    was swallowed does not wait for a whole evaluation (minutes at a sweep's final episode count)."""
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    try:
        if cfg.env != "drone":
            m = evaluate_ocean(lambda n: TorchPolicy(model, n, device), cfg.env, episodes=episodes, seed=seed,
                               agents_per_env=cfg.agents_per_env, stop=stop)
            return float(m["score"]), [{"task": cfg.env, **m}]
        import drone_sim

        tasks = [t for t, w in drone_sim.parse_tasks(cfg.tasks).items() if w > 0]
        meta = {"train_config": cfg.to_dict(), "action_mode": cfg.action_mode, "control_hz": cfg.control_hz,
                "physics_hz": cfg.physics_hz}
        randomized = cfg.dr if cfg.dr != "nominal" else "default"
        rows = evaluate_policy(lambda n: TorchPolicy(model, n, device), meta, tasks, [randomized],
                               episodes=max(1, episodes // len(tasks)), seed=seed, stop=stop)
        score = sum(r["score"] / TASK_SCALE.get(r["task"], 1.0) for r in rows) / len(rows)
        return float(score), rows
    finally:
        model.train(was_training)


def run_trial(trial: optuna.Trial, settings: SweepSettings) -> float | tuple[float, float]:
    """The objective Optuna calls. A trial that raises is failed with the reason in its user attributes
    (fail_reason) and the traceback in its run directory (error.txt); the sweep goes on."""
    if settings.slots is not None:
        claim_slot(trial, settings.slots)   # before anything is sampled, trained or written
    try:
        return _run_trial(trial, settings)
    except optuna.TrialPruned:
        raise
    except Exception as exc:
        reason = trial.user_attrs.get("fail_reason") or f"{type(exc).__name__}: {str(exc)[:300]}"
        trial.set_user_attr("fail_reason", reason)
        run_dir = Path(trial.user_attrs.get("run_dir", settings.out / "trials" / f"{trial.number:04d}"))
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(traceback.format_exc())
        raise


def _run_trial(trial: optuna.Trial, settings: SweepSettings) -> float | tuple[float, float]:
    run_dir = settings.out / "trials" / f"{trial.number:04d}"
    trial.set_user_attr("run_dir", str(run_dir))
    params = {p.name: p.suggest(trial) for p in settings.space}
    cfg = trial_config(settings, params, trial.number)
    budget_steps = settings.budget_steps or UNLIMITED_STEPS
    marks = [(k + 1) / (settings.evals + 1) for k in range(settings.evals)]
    state = {"eval_s": 0.0, "best": -math.inf, "next": 0, "steps": 0, "train_s": 0.0}

    def progress_fraction(info: dict) -> float:
        if settings.budget_seconds is not None:
            return (info["time_s"] - state["eval_s"]) / settings.budget_seconds
        return info["step"] / budget_steps

    def check_interrupted() -> None:
        if settings.interrupted.is_set():
            raise KeyboardInterrupt

    def stop(info: dict) -> bool:
        check_interrupted()
        losses = info["losses"]
        bad = [k for k in ("policy_loss", "value_loss", "entropy") if not math.isfinite(losses.get(k, 0.0))]
        if bad:
            reason = f"non-finite {', '.join(bad)} at step {info['step']}"
            trial.set_user_attr("fail_reason", reason)
            raise TrialDiverged(reason)
        state["steps"], state["train_s"] = info["step"], info["time_s"] - state["eval_s"]
        frac = progress_fraction(info)
        if state["next"] < len(marks) and frac >= marks[state["next"]]:
            state["next"] += 1
            t0 = time.time()
            score, _ = score_of(info["model"], cfg, max(32, settings.eval_episodes // 4), settings.eval_seed + 1,
                                check_interrupted)
            state["eval_s"] += time.time() - t0
            state["best"] = max(state["best"], score)
            if not settings.multi:
                trial.report(score, state["next"])          # the evaluation's number: PRUNE_FROM_EVALUATION
                if trial.should_prune():
                    trial.set_user_attr("pruned_at_step", info["step"])
                    raise optuna.TrialPruned(f"score {score:.3f} at evaluation {state['next']}, step {info['step']}")
        return settings.budget_seconds is not None and frac >= 1.0

    summary = train(cfg, run_dir, stop=stop)
    from ..checkpoint import load_policy

    model, _ = load_policy(run_dir / "model.pt")
    score, rows = score_of(model, cfg, settings.eval_episodes, settings.eval_seed, check_interrupted)
    train_s = summary["wall_time_s"] - state["eval_s"]
    trial.set_user_attr("steps", int(summary["global_step"]))
    trial.set_user_attr("train_seconds", round(train_s, 2))
    trial.set_user_attr("final_score", score)
    trial.set_user_attr("evaluation", [{k: v for k, v in r.items() if isinstance(v, (int, float, str))} for r in rows])
    if not math.isfinite(score):
        trial.set_user_attr("fail_reason", "the final evaluation is not a number")
        raise TrialDiverged("the final evaluation is not a number")
    if settings.multi:
        return score, train_s
    return max(score, state["best"])
