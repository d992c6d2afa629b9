"""A teacher for the start of a run: the hand-written controller's actions, or a trained policy's (TrainedPolicy),
as a target for the policy's mean.

Why: on the obstacle field the hand-written controller (drone_sim.controllers.HoverController, a PD loop with a
push away from the listed obstacles), capped at 3 m/s, crashes in 0.6 % of drone-eval's episodes where PPO's
policies crash in 12-18 % (BENCHMARKS, issue 18). The observation therefore carries what a safe flight needs, and
the policy's failure is one of search. Kickstarting (Schmitt et al., 2018) adds an imitation loss on the drones of
the chosen tasks, with a weight that falls to zero early in the run, so that PPO starts from the teacher's
behaviour and is left free to improve on it (reach the goal faster) rather than bound to copy it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import drone_sim
from drone_sim.binding import OBS_LAYOUT

from .config import TrainConfig


class ScriptedPolicy:
    """drone_sim.controllers.HoverController (a PD loop on position with a push away from the listed obstacles
    and drones) as a policy, obs batch -> ctbr actions, for the teacher below and for scripts/crash_report.py,
    which sets a trained policy's crashes against what a plain rule makes of the same observation."""

    def __init__(self, num_agents: int, control_hz: float, max_speed: float | None):
        # imported here: the controller refuses an observation layout it was not written for, and that must stop
        # a run that asks for it, not every drone-train run
        from drone_sim.controllers import HoverController

        self.ctl, self.dt = HoverController(num_agents, max_speed=max_speed), 1.0 / control_hz

    def __call__(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        return self.ctl(obs, self.dt, rows)

    def episode_ended(self, done: np.ndarray) -> None:
        self.ctl.reset(done)


class TrainedPolicy:
    """A trained MLP policy (a drone-export ONNX file, run with onnxruntime) as a teacher, obs rows -> its
    deterministic actions (the clamped mean, what it flies).

    Why: distillation. Separate expert networks fly race and obstacles better than one network shared by all six
    tasks, which flies follow and goto better (BENCHMARKS, issue 18's nineteenth to twenty-fourth rounds); a
    network taught by the experts on their tasks may keep both."""

    def __init__(self, path: str | Path, action_mode: str, control_hz: float):
        from .onnx_policy import OnnxPolicy   # onnxruntime, only for a run that asks for this teacher

        self.onnx = OnnxPolicy(path, action_mode=action_mode, control_hz=control_hz, name=f"teacher {Path(path).name}")
        if self.onnx.recurrent:        # TrainConfig.validate refuses it first
            raise ValueError(f"{path}: an LSTM policy; a teacher must be an MLP policy")

    def __call__(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        return self.onnx(obs) if len(obs) else np.zeros((0, self.onnx.action_size), np.float32)

    def episode_ended(self, done: np.ndarray) -> None:
        pass                           # an MLP keeps no state between steps


class TaskTeacher:
    """A teacher policy's actions for a batch of drones, and how much each drone's imitation counts: the weight of
    its task in `tasks` ('obstacles', or 'obstacles,goto:0.3' to teach goto at 0.3 of the obstacle weight), read
    from the observation's task one-hot so that it follows the env's task switches.

    Why per-task weights: the straight-line controller taught on goto fixed goto's floor dives but cost the obstacle
    drones, which share the network (BENCHMARKS, issue 18's twelfth round); a lower goto weight is the next test."""

    def __init__(self, policy: ScriptedPolicy | TrainedPolicy, tasks: str):
        self.policy = policy
        first = OBS_LAYOUT["task"][0]
        taught = {t: w for t, w in drone_sim.parse_tasks(tasks).items() if w > 0.0}
        self.task_columns = [first + drone_sim.TASKS.index(t) for t in taught]
        self.task_weights = np.array(list(taught.values()), dtype=np.float32)

    def __call__(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(actions, mask): the mask is the drone's task weight where its task is taught (0 elsewhere), and the
        actions the controller's ctbr actions there (zeros elsewhere: the loss ignores them, and in a six-task run
        the controller then runs on a sixth of the drones)."""
        onehot = obs[:, self.task_columns] > 0.5
        weight = onehot.astype(np.float32) @ self.task_weights
        rows = np.flatnonzero(onehot.any(axis=1))
        taught_actions = self.policy(obs[rows], rows)
        actions = np.zeros((obs.shape[0], taught_actions.shape[1]), dtype=np.float32)
        actions[rows] = taught_actions
        return actions, weight

    def episode_ended(self, done: np.ndarray) -> None:
        self.policy.episode_ended(done)


class ScriptedTeacher(TaskTeacher):
    """The hand-written controller (ScriptedPolicy, capped at max_speed) as the teacher of `tasks`' drones."""

    def __init__(self, num_agents: int, tasks: str, max_speed: float, control_hz: float):
        super().__init__(ScriptedPolicy(num_agents, control_hz, max_speed), tasks)


def make_teacher(cfg: TrainConfig, num_agents: int) -> TaskTeacher | None:
    """The teacher cfg asks for: None, the scripted controller, or a drone-export ONNX file."""
    if not cfg.teacher:
        return None
    if cfg.teacher == "scripted":
        return ScriptedTeacher(num_agents, cfg.teacher_tasks, cfg.teacher_speed, cfg.control_hz)
    return TaskTeacher(TrainedPolicy(cfg.teacher, cfg.action_mode, cfg.control_hz), cfg.teacher_tasks)


def teacher_weight(cfg: TrainConfig, progress: float) -> float:
    """The imitation loss's weight at `progress` (0 to 1) of the run: cfg.teacher_weight falling linearly to
    cfg.teacher_final_weight at cfg.teacher_fraction and held there, 0 without a teacher. A final weight above 0
    was meant to hold the obstacle drones near the teacher late in the run, where their crash rate climbs again;
    at 0.25 it did not stop that climb (BENCHMARKS, issue 18's twelfth round)."""
    if not cfg.teacher:
        return 0.0
    left = max(0.0, 1.0 - progress / cfg.teacher_fraction)
    return cfg.teacher_final_weight + (cfg.teacher_weight - cfg.teacher_final_weight) * left


__all__ = ["ScriptedPolicy", "ScriptedTeacher", "TaskTeacher", "TrainedPolicy", "make_teacher", "teacher_weight"]
