"""What the operator window sees of a swarm flight and moves in it.

The window (deploy/ui/) talks to a flight only through FlightControl: it reads the Snapshot the loop publishes
and sets targets through `control.targeting`. A swarm flight publishes an aggregate Snapshot (the formation's
centre as the target, the vehicles' centroid, every trigger) plus `control.swarm`, one VehicleView per vehicle;
its targeting is FormationTargeting, whose target is the formation's centre: dragging the target moves the
whole formation, and a centre that would put any slot outside the fence is refused, as a single flight's target
outside the fence is.
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Sequence

import numpy as np

from ..targets import Fence, TargetError
from .formation import Formation


@dataclasses.dataclass(frozen=True)
class VehicleView:
    """One vehicle as the window draws it (swarm frame)."""

    sysid: int
    phase: str
    armed: bool
    position: tuple[float, float, float]
    velocity: tuple[float, float, float]
    quaternion: tuple[float, float, float, float]
    rates: tuple[float, float, float]
    slot: tuple[float, float, float] | None      # where its slot is now (None before slots are assigned)
    action: tuple[float, ...] | None


class FormationTargeting:
    """control.targeting of a swarm flight: the formation's centre. Thread-safe: the window sets, the loop takes."""

    frame = "nav"
    task = "swarm"

    def __init__(self, formation: Formation, fence: Fence):
        self.formation = formation
        self.fence = fence
        self._lock = threading.Lock()
        self._requested: np.ndarray | None = None

    @property
    def target(self) -> np.ndarray:
        with self._lock:
            return (self._requested if self._requested is not None else self.formation.center).copy()

    def resolve(self, xyz: Sequence[float], frame: str | None, position, quaternion) -> np.ndarray:
        """The centre xyz, if every slot around it is inside the fence; TargetError naming the first that is not."""
        p = np.asarray([float(v) for v in xyz], dtype=float)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise TargetError(f"formation centre {list(xyz)} is not three finite numbers")
        offsets = self.formation.slots(0.0)[0] - self.formation.center
        for k, q in enumerate(offsets + p):
            try:
                self.fence.check_target(q)
            except TargetError as exc:
                raise TargetError(f"slot {k + 1}: {exc}") from None
        return p

    def set_target(self, xyz: Sequence[float], frame: str | None = None, *, position=None, quaternion=None,
                   velocity=None, t: float = 0.0, label: str | None = None) -> np.ndarray:
        p = self.resolve(xyz, frame, position, quaternion)
        with self._lock:
            self._requested = p
        return p

    def take(self) -> np.ndarray | None:
        """The centre the operator asked for since the last call (the loop moves the formation there)."""
        with self._lock:
            p, self._requested = self._requested, None
        return p

    def set_task(self, task: str) -> None:
        raise TargetError("a swarm flight flies the swarm task only")
