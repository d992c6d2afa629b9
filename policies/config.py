"""Training configuration: one dataclass holds every hyperparameter with its default and help text.

The same fields appear in `drone-train --help`, in a `--config FILE.toml` file (a flat table, or the
table [train]), and in the checkpoint, so a run can always be reproduced from what it saved.
Precedence: defaults < config file < command line.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drone_sim.config import sim_default


# Default training budgets (agent-steps) per task: what a default run needs to fly that task well
# (measured: BENCHMARKS.md "Training"). A run trains for the largest budget among its tasks.
TASK_BUDGETS = {"hover": 6_000_000, "goto": 10_000_000, "follow": 15_000_000, "race": 30_000_000,
                "swarm": 30_000_000, "obstacles": 30_000_000}


def default_budget(tasks: str) -> int:
    """Agent-steps for a run on `tasks` when none is given: the budget of its hardest task."""
    import drone_sim

    try:
        names = drone_sim.parse_tasks(tasks)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return max(TASK_BUDGETS[t] for t, w in names.items() if w > 0)


class ConfigError(ValueError):
    """A configuration value or file that cannot be used; the message names it."""


def expert_of(groups: str) -> list[int]:
    """Each task's expert network (in drone_sim.TASKS order) for --expert-groups: 'hover+goto+follow' puts those
    three in one network and every other task in its own; networks are numbered in the order of their first task.

    Why: separate experts train each task as if alone, and follow then closes on its target more slowly than one
    network shared by all six does (BENCHMARKS, issue 18, twenty-first round); tasks that fly the same way (to a
    point, onto a moving point) can share what they learn without sharing with race's fast, noisy flight."""
    import drone_sim

    group_of: dict[str, int] = {}
    for k, group in enumerate(g.strip() for g in groups.split(",") if g.strip()):
        names = [n.strip() for n in group.split("+")]
        for name in names:
            if name not in drone_sim.TASKS:
                raise ConfigError(f"expert_groups: unknown task {name!r} (tasks: {', '.join(drone_sim.TASKS)})")
            if name in group_of:
                raise ConfigError(f"expert_groups: {name} is named twice")
            group_of[name] = k
        if len(names) < 2:
            raise ConfigError(f"expert_groups: {group!r} is one task, which has its own expert anyway; a group "
                              "joins two or more with '+'")
    first: dict[object, int] = {}
    return [first.setdefault(group_of.get(t, t), len(first)) for t in drone_sim.TASKS]


def _f(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    # what to train on
    env: str = _f("drone", "drone (the drone simulator, on --tasks) or an ocean regression env: "
                           "target, cartpole, pong, breakout, snake, connect4")
    tasks: str = _f("hover", "tasks and weights: hover, 'race,swarm', 'race:2,swarm:1' or all")
    action_mode: str = _f("ctbr", "rpm (motor speeds) or ctbr (collective thrust + body rates)")
    num_envs: int = _f(32, "envs in the vector (each with its own task episode)")
    agents_per_env: int = _f(64, "drones per env")
    total_steps: int = _f(0, "agent-steps to train for; 0: the budget of the hardest task enabled "
                             "(hover 6M, goto 10M, follow 15M, race/swarm/obstacles 30M; TASK_DEFAULTS: hover "
                             "alone 1.4M, race,swarm 26.5M, all 330M)")
    dr: str = _f("default", "domain randomization: nominal, default or wide")
    drone: str = _f("", "drone params JSON; randomization becomes tolerances around it")
    course: str = _f("", "course JSON for race episodes (default: generated courses)")
    physics_hz: float = _f(500.0, "physics rate (RK4 substeps)")
    control_hz: float = _f(50.0, "policy rate")
    seed: int = _f(0, "seed of envs, weights and sampling")
    # reward shaping (the simulator's defaults; drone_sim/csrc/drone_env.h says what each term does)
    crash_penalty: float = _f(sim_default("crash_penalty"), "a crash or leaving the arena ends the episode with "
                                                            "this reward, negated")
    clearance_margin: float = _f(sim_default("clearance_margin"), "m: closer than this to an obstacle, a drone "
                                                                  "or a ring's rim costs reward")
    clearance_weight: float = _f(sim_default("clearance_weight"), "that cost per step at contact (0: off)")
    clearance_time: float = _f(sim_default("clearance_time"), "s: an obstacle or drone approached at v m/s counts "
                                                              "this times v nearer (0: plain distance)")
    rim_lookahead: float = _f(sim_default("rim_lookahead"), "s: a ring plane the drone would cross within this "
                                                            "time costs as if at the crossing point's rim gap (0: off)")
    race_tight_room: float = _f(sim_default("race_tight_room"), "m: a race ring leaving the drone less room than "
                                "this (its radius less the drone's) pays progress in full at a speed that falls "
                                "in proportion (0: off)")
    smooth_weight: float = _f(sim_default("smooth_weight"), "cost per step of a full-scale change of every "
                                                            "action channel (0: off)")
    speed_limit: float = _f(max(sim_default("speed_limit").values()),
                            "m/s: flying faster costs reward, in every task the simulator limits by default "
                            "(all but race); drone-deploy holds a drone faster than --safety max_speed_mps=3")
    speed_weight: float = _f(sim_default("speed_weight"), "that cost per step at twice the limit, in proportion "
                                                          "beyond (0: off)")
    speed_limit_tasks: str = _f("", "the tasks the limit applies to, e.g. 'obstacles' (default '': every task the "
                                    "simulator limits); the others fly unlimited")
    # curriculum
    min_obstacles: int = _f(sim_default("obstacles")[0], "fewest obstacles in a training field (drone-eval flies "
                                                        "the simulator's default)")
    max_obstacles: int = _f(sim_default("obstacles")[1], "most obstacles in a training field")
    blocked_line_prob: float = _f(sim_default("blocked_line_prob"), "the share of obstacle-task starts whose straight "
                                  "line to the goal crosses a sphere, where the crashes are (0: as drawn, about one "
                                  "in five; drone-eval always flies that)")
    # a teacher in the first part of the run (kickstarting)
    teacher: str = _f("", "'scripted': pull the actions towards the hand-written controller's "
                          "(drone_sim.controllers, ctbr, MLP only) on --teacher-tasks early in the run; or a "
                          "drone-export .onnx file: towards that trained policy's actions (distillation; an MLP "
                          "policy of this observation layout, action mode and control rate) (off: '')")
    teacher_tasks: str = _f("obstacles", "the tasks whose drones the teacher is imitated on, with a weight each "
                                         "if not 1: 'obstacles,goto:0.3'")
    teacher_weight: float = _f(1.0, "the imitation loss's weight at the start; it falls linearly to "
                                    "--teacher-final-weight")
    teacher_fraction: float = _f(0.3, "the share of the run after which the teacher's weight is --teacher-final-weight")
    teacher_final_weight: float = _f(0.0, "the weight the imitation loss falls to at --teacher-fraction and keeps "
                                          "to the end (0: the teacher lets go)")
    teacher_speed: float = _f(3.0, "m/s: the speed the scripted teacher asks for at most")
    # model
    hidden: int = _f(64, "hidden units per layer")
    layers: int = _f(2, "hidden layers of the MLP actor and critic")
    lstm: bool = _f(False, "use an LSTM policy instead of the MLP")
    entities: bool = _f(False, "the MLP reads the nearest drones and obstacles through one small network shared by "
                               "their slots, pooled (drone env only; not with the LSTM)")
    entity_width: int = _f(16, "with --entities: features per block of entities")
    privileged_critic: bool = _f(False, "asymmetric actor-critic: the critic also reads what the simulator knows of "
                                        "each drone and a real one does not report (mass, inertia, motors, rate-loop "
                                        "gains, latency, wind: drone_sim.PRIV_LAYOUT); the actor, which is what is "
                                        "exported and flown, does not (drone env only)")
    task_value_heads: bool = _f(False, "the critic ends in one value per task, chosen by the observation's task "
                                       "one-hot, instead of one value for every task (drone env only; the actor and "
                                       "the exported policy are unchanged)")
    task_experts: bool = _f(False, "one MLP actor and critic per task, each drone's chosen by the observation's "
                                   "task one-hot, with its own log std, advantage normalization and gradient "
                                   "clip: the tasks share no weights (drone env only; not with --lstm, "
                                   "--entities or --task-value-heads)")
    expert_groups: str = _f("", "with --task-experts: tasks that share one expert network, joined by '+', groups "
                                "separated by ',' (e.g. 'hover+goto+follow'); every task not named keeps its own. "
                                "The tasks of a group still have their own log std and advantage normalization")
    activation: str = _f("tanh", "tanh, relu or elu")
    init_log_std: float = _f(-0.5, "initial log standard deviation of the Gaussian actions")
    # PPO
    horizon: int = _f(32, "rollout length per update (steps per agent)")
    gamma: float = _f(0.99, "discount")
    gae_lambda: float = _f(0.95, "GAE lambda")
    learning_rate: float = _f(1e-3, "Adam learning rate (start of the schedule)")
    lr_schedule: str = _f("linear", "constant or linear (to lr_final_fraction of the start)")
    lr_final_fraction: float = _f(0.1, "learning rate at the end, as a fraction of the start")
    epochs: int = _f(3, "passes over each rollout")
    minibatch_size: int = _f(16384, "samples per gradient step")
    clip: float = _f(0.2, "PPO ratio clip")
    vf_coef: float = _f(0.5, "value loss weight")
    ent_coef: float = _f(0.0, "entropy bonus weight")
    max_grad_norm: float = _f(0.5, "gradient clipping (global norm; per task with --task-experts)")
    norm_adv: bool = _f(True, "normalize advantages per minibatch")
    # running
    device: str = _f("auto", "auto, cpu or cuda")
    threads: int = _f(0, "torch CPU threads (0: all cores)")
    checkpoint_every: int = _f(10_000_000, "agent-steps between checkpoints")
    keep_checkpoint_every: int = _f(0, "agent-steps between checkpoints kept for good as checkpoints/step_N.pt, to "
                                       "evaluate the run part-way later (0: only the latest is kept)")
    log_every: float = _f(2.0, "seconds between progress updates")

    @classmethod
    def fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> "TrainConfig":
        if self.total_steps == 0:
            self.total_steps = default_budget(self.tasks) if self.env == "drone" else 5_000_000
        positive = ["num_envs", "agents_per_env", "total_steps", "hidden", "layers", "horizon", "epochs",
                    "minibatch_size", "learning_rate", "physics_hz", "control_hz", "checkpoint_every", "entity_width"]
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("crash_penalty", "clearance_margin", "clearance_weight", "clearance_time", "rim_lookahead",
                     "race_tight_room", "smooth_weight", "speed_limit", "speed_weight", "teacher_weight", "teacher_final_weight",
                     "teacher_speed", "keep_checkpoint_every"):
            if not getattr(self, name) >= 0.0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("gamma", "gae_lambda", "blocked_line_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        import drone_sim

        try:
            drone_sim.obstacle_counts(self.min_obstacles, self.max_obstacles)
        except ValueError as exc:
            raise ConfigError(f"min_obstacles..max_obstacles: {exc}") from None

        choices = {"action_mode": drone_sim.ACTION_MODES, "dr": tuple(drone_sim.DR_PRESETS),
                   "lr_schedule": ("constant", "linear"), "device": ("auto", "cpu", "cuda"),
                   "activation": ("tanh", "relu", "elu")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.entities and (self.env != "drone" or self.lstm):
            raise ConfigError("entities: only for the drone env's MLP policy (the LSTM and the ocean envs have no "
                              "entity slots to pool)")
        if self.privileged_critic and self.env != "drone":
            raise ConfigError("privileged_critic: only the drone env has privileged state (the ocean envs have none)")
        if self.task_value_heads and self.env != "drone":
            raise ConfigError("task_value_heads: only the drone env's observation says which task a row is")
        if self.task_experts and (self.env != "drone" or self.lstm or self.entities or self.task_value_heads):
            raise ConfigError("task_experts: one plain MLP per task of the drone env (not with --lstm, --entities or "
                              "--task-value-heads, and the ocean envs have one task; --no-task-experts turns it off, which "
                              "--tasks all turns on by default)")
        if self.expert_groups:
            if not self.task_experts:
                raise ConfigError("expert_groups: the tasks share expert networks only with --task-experts")
            expert_of(self.expert_groups)
        if self.teacher:
            trained = self.teacher != "scripted"
            if trained and not self.teacher.endswith(".onnx"):
                raise ConfigError(f"teacher must be 'scripted' or a drone-export .onnx file (or empty), got "
                                  f"{self.teacher!r}")
            if self.env != "drone" or self.lstm or (not trained and self.action_mode != "ctbr"):
                raise ConfigError("teacher: the scripted controller flies the drone env in ctbr mode, a trained "
                                  "teacher the drone env, and only the MLP policy is pulled towards either "
                                  "(--teacher '' trains without it; --tasks all turns it on by default)")
            if trained:
                self._check_trained_teacher()
            if not 0.0 < self.teacher_fraction <= 1.0:
                raise ConfigError(f"teacher_fraction must be in (0, 1], got {self.teacher_fraction!r}")
            # the trainer stops running the teacher once its weight is 0, so the weight may only fall
            if self.teacher_final_weight > self.teacher_weight:
                raise ConfigError(f"teacher_final_weight ({self.teacher_final_weight!r}) must not exceed "
                                  f"teacher_weight ({self.teacher_weight!r}): the weight only falls")
        for name in ("teacher_tasks", "speed_limit_tasks"):
            try:
                drone_sim.parse_tasks(getattr(self, name) or "all")
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from None
        for name in ("drone", "course"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ConfigError(f"--{name}: no such file: {path}")
        return self

    def _check_trained_teacher(self) -> None:
        """A trained teacher is refused here, before a run directory is written, for what the trainer could not
        use: a file onnxruntime cannot load, another observation layout, action mode or control rate (the
        teacher's actions must mean what the student's do), or an LSTM (its state would follow every drone, and
        the teacher runs on the taught drones only)."""
        from .onnx_policy import OnnxPolicy, OnnxPolicyError

        try:
            policy = OnnxPolicy(self.teacher, action_mode=self.action_mode, control_hz=self.control_hz)
        except OnnxPolicyError as exc:
            raise ConfigError(f"teacher: {exc}") from None
        if policy.recurrent:
            raise ConfigError(f"teacher: {self.teacher}: an LSTM policy; a teacher must be an MLP policy")


def _coerce(f: dataclasses.Field, value: Any, where: str) -> Any:
    kind = type(f.default)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: {f.name} must be true or false, got {value!r}")
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {f.name} must be {kind.__name__}, got {value!r}") from None


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config: a flat table of TrainConfig fields, or the same under [train]."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    table = data.get("train", data)
    known = {f.name: f for f in TrainConfig.fields()}
    out = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{p}: unknown setting {key!r}")
        out[key] = _coerce(known[key], value, str(p))
    return out


# Settings that differ from the drone defaults for the ocean regression envs (single-agent games need
# more envs for a batch; short games want longer rollouts). Tuned with scripts/regression.py. One torch
# thread: these models are tiny, and a second thread spin-waiting on a busy machine costs far more than it gives.
OCEAN_DEFAULTS: dict[str, dict[str, Any]] = {
    "target": {"num_envs": 256, "agents_per_env": 1, "horizon": 32, "minibatch_size": 2048, "hidden": 32, "threads": 1,
               "total_steps": 200_000, "learning_rate": 3e-3, "ent_coef": 0.01},
    "cartpole": {"threads": 1, "num_envs": 64, "agents_per_env": 1, "horizon": 128, "minibatch_size": 2048,
                 "total_steps": 1_000_000, "learning_rate": 2.5e-3, "ent_coef": 0.0, "epochs": 4,
                 # a smaller clip and a rate that decays to 0: once every episode runs to the 500-step cap the
                 # value error is nil, normalized advantages are noise, and with the default clip and rate the
                 # policy forgot how to balance 0.2-0.3M steps later on 4 of 4 seeds on an AVX-512 CPU (7 of 8
                 # seeds pass with these, BENCHMARKS "Cartpole regression on another CPU")
                 "clip": 0.1, "lr_final_fraction": 0.0},
    "pong": {"threads": 1, "num_envs": 256, "agents_per_env": 1, "horizon": 64, "minibatch_size": 4096,
             "total_steps": 10_000_000, "ent_coef": 0.01},
    "breakout": {"threads": 1, "num_envs": 256, "agents_per_env": 1, "horizon": 64, "minibatch_size": 4096,
                 "total_steps": 20_000_000, "ent_coef": 0.01, "hidden": 128},
    "snake": {"threads": 1, "num_envs": 64, "agents_per_env": 4, "horizon": 64, "minibatch_size": 4096,
              "total_steps": 20_000_000, "ent_coef": 0.01, "hidden": 128},
    "connect4": {"threads": 1, "num_envs": 256, "agents_per_env": 1, "horizon": 32, "minibatch_size": 4096,
                 "total_steps": 5_000_000, "ent_coef": 0.01, "hidden": 128},
}


# Settings that differ from the defaults above for a drone task mix, found by drone-sweep (BENCHMARKS.md
# "Sweeps" has the sweep, its command and its figures). Keyed by the task mix as drone_sim.parse_tasks reads it.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    # hover alone: the best of 14 trials of 13 training seconds (2026-12-04, trial 8, 0.996 success on randomized
    # drones at an unseen seed), rounded; smaller batches updated more often learn hover in a quarter of the steps.
    # ReLU instead of tanh: the same success (0.97-0.99 on 3 seeds) with 10-15 % more agent-steps per second, as
    # torch's tanh is the costliest op of this small network on a CPU (BENCHMARKS.md "Sweeps"). 1.4M steps rather
    # than the trial's 1.8M: 0.979-0.998 success on 6 seeds, the same as 1.8M gave, in 12-14 s rather than 15-20 s.
    "hover": {"learning_rate": 3e-3, "epochs": 3, "minibatch_size": 4096, "horizon": 8, "num_envs": 32,
              "agents_per_env": 32, "init_log_std": -1.1, "gamma": 0.975, "activation": "relu",
              "total_steps": 1_400_000},
    # race and swarm (the README's main job): trial 5 of a 10-trial sweep of 24M agent-steps each (2026-12-04,
    # docs/sweep_main_space.toml), its sampled values as they were run; longer rollouts (64 steps) and 4 epochs
    # make each step ~12 % dearer, so the budget is 26.5M steps: the old defaults' 30M took the same wall clock.
    # Same wall clock, randomized drones, seed 0: race 13.25 rings/episode (crash 0.109) vs 11.22 (0.164), swarm
    # in slot 0.710 vs 0.630 (crash 0.117 vs 0.070) (BENCHMARKS.md "Sweeps")
    "race,swarm": {"learning_rate": 0.0007012072946108449, "epochs": 4, "minibatch_size": 16384,
                   "horizon": 64, "gamma": 0.9817162800411925, "gae_lambda": 0.978140887055227,
                   "clip": 0.2209691039490092, "init_log_std": -0.5346627785415285,
                   "ent_coef": 1.3108813258313493e-05, "activation": "tanh", "total_steps": 26_500_000},
    # all six tasks: the command that trained policies/pretrained/multitask_ctbr.onnx (issue 18's twenty-fifth
    # round), so that `drone-train --tasks all` reproduces it. Each part was kept because it lowered the crash rates
    # on unseen drones (BENCHMARKS.md, issue 18): 2 x 128 networks (a quarter fewer crashes than 2 x 64), one per
    # task but follow and swarm sharing one (race and obstacles fly best on networks of their own, follow on one it
    # shares with swarm), the scripted controller as a teacher on the obstacle field for the whole run, half of the
    # obstacle starts with the straight line blocked, and a cost for flying above 3 m/s (weight 0.5). 330M
    # agent-steps: 64-105 min alone on two cores, by machine.
    "all": {"hidden": 128, "task_experts": True, "expert_groups": "follow+swarm",
            "speed_weight": 0.5, "teacher": "scripted", "teacher_tasks": "obstacles",
            "teacher_fraction": 1.0, "blocked_line_prob": 0.5, "total_steps": 330_000_000,
            "keep_checkpoint_every": 33_000_000},
}


def _task_defaults(tasks: str) -> dict[str, Any]:
    import drone_sim

    try:
        wanted = {t: w for t, w in drone_sim.parse_tasks(tasks).items() if w > 0}
    except ValueError:
        return {}          # validate() reports the bad task spec
    for spec, values in TASK_DEFAULTS.items():
        if {t: w for t, w in drone_sim.parse_tasks(spec).items() if w > 0} == wanted:
            return values
    return {}


def make_config(file_values: dict[str, Any] | None = None, cli_values: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults (with an ocean env's own defaults when one is chosen, or a task mix's from TASK_DEFAULTS), then
    the config file, then explicitly given command-line values."""
    cfg = TrainConfig()
    known = {f.name: f for f in TrainConfig.fields()}
    env = (cli_values or {}).get("env") or (file_values or {}).get("env") or "drone"
    if env != "drone":
        if env not in OCEAN_DEFAULTS:
            raise ConfigError(f"unknown env {env!r}; choose drone or one of {', '.join(OCEAN_DEFAULTS)}")
        for key, value in OCEAN_DEFAULTS[env].items():
            setattr(cfg, key, value)
    else:
        tasks = (cli_values or {}).get("tasks") or (file_values or {}).get("tasks") or cfg.tasks
        for key, value in _task_defaults(str(tasks)).items():
            setattr(cfg, key, value)
    for source, where in ((file_values or {}, "config file"), (cli_values or {}, "command line")):
        for key, value in source.items():
            if key not in known:
                raise ConfigError(f"{where}: unknown setting {key!r}")
            setattr(cfg, key, _coerce(known[key], value, where))
    if not cfg.task_experts and "expert_groups" not in {**(file_values or {}), **(cli_values or {})}:
        cfg.expert_groups = ""     # a task mix's groups go with its experts: --no-task-experts turns off both
    return cfg.validate()


def default_toml() -> str:
    """Every setting with its default, as a TOML file (written to each run directory)."""
    lines = ["[train]"]
    for f in TrainConfig.fields():
        v = f.default
        text = ("true" if v else "false") if isinstance(v, bool) else repr(v) if not isinstance(v, str) else f'"{v}"'
        lines.append(f"{f.name} = {text}  # {f.metadata['help']}")
    return "\n".join(lines) + "\n"
