"""Where each vehicle of a swarm flight should be: the swarm task's formation, at a centre that can move.

The shapes are the simulator's (drone_sim.formation_layout_of: the same C code that lays out every training
formation), or slots read from a formation file. The swarm frame is ENU metres from the first vehicle's
home; each vehicle's slot is picked by the simulator's rule (drone_sim.assign_slots: the least total squared
distance that no trade of slots improves, so no two straight paths cross), once, when the policy takes over.

A formation file (drone-formation/1, JSON):

    {"format": "drone-formation/1", "slots": [[-1.2, 0, 0], [0, 0, 0], [1.2, 0, 0]]}

slots: offsets (m, east/north/up) from the centre; at least as many as vehicles. Orbit slots move (the
formation turns round its centre at `omega` rad/s); the other shapes stand still.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

import drone_sim
from drone_sim.binding import formation_layout_of, formation_slots_at

FORMATION_FORMAT = "drone-formation/1"


class FormationError(ValueError):
    """A formation that cannot be flown (unknown shape, a bad file, too few slots); names the problem."""


class Formation:
    """The slots of an n-vehicle formation around a centre (swarm frame)."""

    def __init__(self, layout: dict, center: Sequence[float], omega: float = 0.0):
        self.layout = layout
        self.n = int(np.asarray(layout["base"]).shape[0])
        self.center = np.asarray(center, dtype=float)
        self.omega = float(omega) if layout["formation"] == "orbit" else 0.0

    @classmethod
    def shape(cls, name: str, n: int, spacing: float, center: Sequence[float], yaw_deg: float = 0.0,
              omega: float = 0.0) -> "Formation":
        if name not in drone_sim.FORMATIONS:
            raise FormationError(f"unknown formation {name!r}; the swarm task flies {', '.join(drone_sim.FORMATIONS)} "
                                 "(or give a formation file)")
        try:
            layout = formation_layout_of(name, n, spacing, math.radians(yaw_deg))
        except ValueError as exc:
            raise FormationError(str(exc)) from None
        return cls(layout, center, omega)

    @classmethod
    def from_file(cls, path: str | Path, n: int, center: Sequence[float]) -> "Formation":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise FormationError(f"formation file {path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMATION_FORMAT:
            raise FormationError(f"formation file {path}: not a {FORMATION_FORMAT} file (\"format\" is "
                                 f"{data.get('format') if isinstance(data, dict) else None!r})")
        try:
            slots = np.asarray(data["slots"], dtype=float)
        except KeyError:
            raise FormationError(f"formation file {path}: no \"slots\" list") from None
        except (TypeError, ValueError):
            slots = np.zeros((0, 0))
        if slots.ndim != 2 or slots.shape[1] != 3:
            raise FormationError(f"formation file {path}: \"slots\" must be a list of [x, y, z] offsets in metres")
        if not np.all(np.isfinite(slots)):
            raise FormationError(f"formation file {path}: a slot has a non-finite coordinate")
        if len(slots) < n:
            raise FormationError(f"formation file {path}: {len(slots)} slots for {n} vehicles")
        layout = {"formation": "grid", "base": slots[:n].astype(np.float32), "radius": 0.0,
                  "extent": (float(np.max(np.hypot(slots[:n, 0], slots[:n, 1]))), float(np.max(np.abs(slots[:n, 2]))))}
        return cls(layout, center)

    @property
    def name(self) -> str:
        return self.layout["formation"]

    def move_to(self, center: Sequence[float]) -> None:
        """The operator moves the formation (the slots keep their places around the centre)."""
        self.center = np.asarray(center, dtype=float)

    def slots(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities (n, 3) of every slot at time t (s since the formation started)."""
        p, v = formation_slots_at(self.layout, self.center, self.omega, t)
        return p.astype(float), v.astype(float)

    def min_spacing(self) -> float:
        """The smallest distance between two slots (at t = 0): the guard's minimum must stay below it."""
        p, _ = self.slots(0.0)
        if len(p) < 2:
            return math.inf
        d = np.linalg.norm(p[:, None, :] - p[None, :, :], axis=-1)
        return float(np.min(d[np.triu_indices(len(p), 1)]))

    def describe(self) -> dict:
        return {"formation": self.name, "slots": self.n, "center": [round(float(x), 3) for x in self.center],
                "omega": self.omega, "radius": self.layout["radius"]}


def assign_slots(positions: np.ndarray, slot_positions: np.ndarray) -> list[int]:
    """Slot index of each vehicle: the rule the swarm task trains with (drone_sim.assign_slots, slot_assign.h),
    under which no two vehicles' straight paths to their slots cross."""
    return drone_sim.assign_slots(np.asarray(positions, dtype=float).reshape(-1, 3),
                                  np.asarray(slot_positions, dtype=float).reshape(-1, 3))


# how many neighbours the observation has room for: its layout's drone block over the size of one drone
NEIGHBOURS = drone_sim.OBS_LAYOUT["drones"][1] // drone_sim.OBS_STRIDES["drones"]


def neighbour_table(distances: np.ndarray, known: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """For every vehicle, the rows of its k nearest other vehicles whose state is known, nearest first (ties: the
    lower row), -1 after the last: the table drone_sim.observe_swarm takes. distances: pairwise_distances.
    Plain Python for a swarm's handful of rows: the tick runs it with the processor's caches cold, where numpy's
    sorting machinery costs several times this loop."""
    d = np.asarray(distances, dtype=float).tolist()
    ok = [bool(x) for x in np.asarray(known, dtype=bool).tolist()]
    table = []
    for i, row in enumerate(d):
        near = sorted((x, j) for j, x in enumerate(row) if j != i and ok[j] and math.isfinite(x))[:k]
        table.append([j for _, j in near] + [-1] * (k - len(near)))
    return np.array(table, dtype=np.intc).reshape(len(d), k)


def pairwise_distances(positions: np.ndarray) -> np.ndarray:
    """(n, n) distances between every two vehicles."""
    p = np.asarray(positions, dtype=float).tolist()
    return np.array([[math.dist(a, b) for b in p] for a in p]).reshape(len(p), len(p))


def lead_targets(members: Sequence, slots_p: np.ndarray, slots_v: np.ndarray, speed_mps: float,
                 rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Each member's target this tick (positions and velocities): its slot, reached by a point (member.leash) that
    moves from where the vehicle took over towards the slot at speed_mps and then rides with it (member.attached).
    The policy flies to a slot as fast as it was trained to (2-3 m/s); neighbours converging that fast trip the
    separation guard, and a real formation assembles at a walking pace. A member with no slot or leash keeps its
    own position as target."""
    step = speed_mps / rate_hz
    targets = [m.est.position.tolist() if m.est is not None else [0.0, 0.0, 0.0] for m in members]
    vel = [[0.0, 0.0, 0.0] for _ in members]
    sp, sv = slots_p.tolist(), slots_v.tolist()
    for i, m in enumerate(members):   # plain floats: see neighbour_table
        if m.slot is None or m.leash is None:
            continue
        slot, here = sp[m.slot], m.leash.tolist()
        d = [slot[0] - here[0], slot[1] - here[1], slot[2] - here[2]]
        dist = math.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
        if dist <= step:
            m.leash = np.array(slot)
            vel[i] = sv[m.slot]
            m.attached = True
        else:
            m.leash = np.array([here[0] + d[0] * (step / dist), here[1] + d[1] * (step / dist),
                                here[2] + d[2] * (step / dist)])
            vel[i] = [x * (speed_mps / dist) for x in d]
            m.attached = False
        targets[i] = m.leash.tolist()
    return np.array(targets).reshape(-1, 3), np.array(vel).reshape(-1, 3)
