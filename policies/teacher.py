"""A teacher for the start of a run: the hand-written controller's actions as a target for the policy's mean.

Why: on the obstacle field the hand-written controller (drone_sim.controllers.HoverController, a PD loop with a
push away from the listed obstacles), capped at 3 m/s, crashes in 0.6 % of drone-eval's episodes where PPO's
policies crash in 12-18 % (BENCHMARKS, issue 18). The observation therefore carries what a safe flight needs, and
the policy's failure is one of search. Kickstarting (Schmitt et al., 2018) adds an imitation loss on the drones of
the chosen tasks, with a weight that falls to zero early in the run, so that PPO starts from the teacher's
behaviour and is left free to improve on it (reach the goal faster) rather than bound to copy it.
"""
from __future__ import annotations

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


class ScriptedTeacher:
    """The controller's actions for a batch of drones, and which drones fly a task the teacher is imitated on
    (read from the observation's task one-hot, so that it follows the env's task switches)."""

    def __init__(self, num_agents: int, tasks: str, max_speed: float, control_hz: float):
        self.policy = ScriptedPolicy(num_agents, control_hz, max_speed)
        first = OBS_LAYOUT["task"][0]
        self.task_columns = [first + drone_sim.TASKS.index(t) for t in drone_sim.parse_tasks(tasks)]

    def __call__(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(actions, mask): 1.0 where the drone's task is taught, and the controller's ctbr actions there (zeros
        elsewhere: the loss ignores them, and in a six-task run the controller then runs on a sixth of the drones)."""
        taught = (obs[:, self.task_columns] > 0.5).any(axis=1)
        rows = np.flatnonzero(taught)
        taught_actions = self.policy(obs[rows], rows)
        actions = np.zeros((obs.shape[0], taught_actions.shape[1]), dtype=np.float32)
        actions[rows] = taught_actions
        return actions, taught.astype(np.float32)

    def episode_ended(self, done: np.ndarray) -> None:
        self.policy.episode_ended(done)


def teacher_weight(cfg: TrainConfig, progress: float) -> float:
    """The imitation loss's weight at `progress` (0 to 1) of the run: cfg.teacher_weight falling linearly to
    cfg.teacher_final_weight at cfg.teacher_fraction and held there, 0 without a teacher. A final weight above 0
    was meant to hold the obstacle drones near the teacher late in the run, where their crash rate climbs again;
    at 0.25 it did not stop that climb (BENCHMARKS, issue 18's twelfth round)."""
    if not cfg.teacher:
        return 0.0
    left = max(0.0, 1.0 - progress / cfg.teacher_fraction)
    return cfg.teacher_final_weight + (cfg.teacher_weight - cfg.teacher_final_weight) * left


__all__ = ["ScriptedPolicy", "ScriptedTeacher", "teacher_weight"]
