"""Where the policy is asked to fly: the navigation frame, the fence, targets, missions, race courses.

Navigation frame (what the policy's observation, the fence, targets and courses are expressed in):
ENU axes (x east, y north, z up), metres. Its origin depends on `--frame`:

  home      origin at the takeoff point (the vehicle's local position at preflight), z = 0 on the ground.
            Targets are absolute in this frame. Needs a position estimate that does not wander
            (motion capture, GPS/RTK, UWB): the default when the estimator reports an absolute position.
  local     the flight controller's own local frame (LOCAL_POSITION_NED turned into ENU) as it is:
            motion-capture coordinates, say. The fence is still centred on the takeoff point.
  relative  targets are offsets from the vehicle's pose at the moment each target is set: x forward,
            y left, z up, along the vehicle's heading then. The default when the estimator has only a
            relative position (optical flow + rangefinder, visual odometry).

Drift of relative targeting: a target is fixed in the estimator's frame when it is set, so its error on
the ground is the estimator's drift since then. Optical flow + rangefinder: roughly 1-5 % of the
horizontal distance flown and a heading error that turns offsets (0.5-2 deg/min of gyro yaw drift
without a compass: 1 m off per 30-100 m of offset-minutes), height from the rangefinder does not drift
but follows the floor. Set targets often and close (a few metres) and it stays within ~0.1-0.3 m;
the fence, centred on a point the estimator also drifts from, is no better than the same numbers.

Everything here is plain Python with a lock where the UI and the control loop share it.
"""
from __future__ import annotations

import dataclasses
import math
import threading
from typing import Sequence

import numpy as np

import drone_sim
from drone_sim.config import TASKS

from .config import SafetyLimits

# every simulator task but swarm, which needs the other drones' states (a single-vehicle flight has none)
SUPPORTED_TASKS = tuple(t for t in TASKS if t != "swarm")


class TargetError(ValueError):
    """A target that cannot be set (outside the fence, not finite, unknown frame); names the problem."""


def yaw_of(q: Sequence[float]) -> float:
    """Heading (rad, ENU: 0 = east, counter-clockwise) of a body-to-world (w, x, y, z) quaternion."""
    w, x, y, z = (float(v) for v in q)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


@dataclasses.dataclass(frozen=True)
class Fence:
    """A vertical cylinder around the takeoff point with a ceiling, in the navigation frame."""

    center: tuple[float, float]   # x, y of the takeoff point
    ground_z: float               # z of the takeoff point
    radius: float
    max_alt: float                # above ground_z
    margin: float
    min_alt: float                # targets only

    @classmethod
    def around(cls, home_nav: Sequence[float], limits: SafetyLimits) -> "Fence":
        return cls((float(home_nav[0]), float(home_nav[1])), float(home_nav[2]), limits.fence_radius_m,
                   limits.max_alt_m, limits.fence_margin_m, limits.min_target_alt_m)

    def horizontal_distance(self, p: Sequence[float]) -> float:
        return math.hypot(float(p[0]) - self.center[0], float(p[1]) - self.center[1])

    def height(self, p: Sequence[float]) -> float:
        return float(p[2]) - self.ground_z

    def breach(self, p: Sequence[float]) -> str | None:
        """'fence' (outside the cylinder), 'altitude' (above the ceiling) or None."""
        if self.horizontal_distance(p) > self.radius:
            return "fence"
        if self.height(p) > self.max_alt:
            return "altitude"
        return None

    def check_target(self, p: Sequence[float]) -> None:
        """Raise TargetError unless p is inside the fence by the margin and between min_alt and the ceiling."""
        d = self.horizontal_distance(p)
        h = self.height(p)
        if d > self.radius - self.margin:
            raise TargetError(f"target {_fmt(p)} is {d:.2f} m from home, outside the fence ({self.radius:g} m "
                              f"radius, {self.margin:g} m margin)")
        if h > self.max_alt - self.margin:
            raise TargetError(f"target {_fmt(p)} is {h:.2f} m high, above the ceiling ({self.max_alt:g} m, "
                              f"{self.margin:g} m margin)")
        if h < self.min_alt:
            raise TargetError(f"target {_fmt(p)} is {h:.2f} m high, below the lowest target height "
                              f"{self.min_alt:g} m")

    def return_point(self, p: Sequence[float]) -> np.ndarray:
        """The point a return flies to: p pulled inside the fence by the margin (same direction from home)."""
        q = np.array(p, dtype=float)
        c = np.array(self.center)
        d = q[:2] - c
        n = float(np.linalg.norm(d))
        r = self.radius - self.margin
        if n > r:
            q[:2] = c + d * (r / n)
        q[2] = float(np.clip(q[2], self.ground_z + self.min_alt, self.ground_z + self.max_alt - self.margin))
        return q

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _fmt(p: Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):.2f}" for v in p) + ")"


@dataclasses.dataclass
class Course:
    """Rings (and obstacles) of a course JSON, in the navigation frame."""

    rings: list[dict]
    obstacles: list[dict]
    name: str = ""

    @classmethod
    def from_dict(cls, d: dict) -> "Course":
        return cls([dict(r) for r in d.get("rings", [])], [dict(o) for o in d.get("obstacles", [])], d.get("name", ""))

    def nearest_obstacles(self, p: np.ndarray) -> list[dict]:
        """The obstacles the observation lists, chosen as training chooses them (drone_sim.nearest_obstacles: by
        surface distance, so a large sphere a little farther off comes before a small one)."""
        return [self.obstacles[j] for j in drone_sim.nearest_obstacles(p, self.obstacles)]


def ring_passed(ring: dict, p0: np.ndarray, p1: np.ndarray) -> bool:
    """Did the segment p0 -> p1 cross the ring's plane inside its radius, in the direction of its normal?
    (The course rule of drone_sim/csrc/course.h ring_cross: RING_PASSED.)"""
    c, n = np.asarray(ring["position"], float), np.asarray(ring["normal"], float)
    s0, s1 = float((p0 - c) @ n), float((p1 - c) @ n)
    if (s0 < 0.0) == (s1 < 0.0) or not s0 < 0.0:
        return False
    t = s0 / (s0 - s1)
    x = p0 + t * (p1 - p0)
    return float(np.linalg.norm(x - c)) < float(ring["radius"])


@dataclasses.dataclass
class TargetState:
    """What the observation needs about the task at one instant (navigation frame)."""

    task: str
    position: np.ndarray
    velocity: np.ndarray
    ring: dict | None = None
    next_ring: dict | None = None
    obstacles: list[dict] = dataclasses.field(default_factory=list)
    label: str = ""
    version: int = 0          # increments at each change of target (the UI and the log see switches)


@dataclasses.dataclass
class TargetRecord:
    """Per target of a flight: when it was set and reached, and the error while it was held."""

    index: int
    position: list[float]
    t_set: float
    t_reached: float | None = None
    t_done: float | None = None
    t_window: float | None = None     # start of the last uninterrupted stay within tolerance
    hold_errors: list[float] = dataclasses.field(default_factory=list)   # distance at each tick after t_reached
    window_errors: list[float] = dataclasses.field(default_factory=list)  # the last uninterrupted stay within tolerance

    def summary(self) -> dict:
        e = np.asarray(self.hold_errors) if self.hold_errors else np.zeros(0)
        return {"index": self.index, "position": self.position, "t_set": self.t_set,
                "time_to_reach_s": None if self.t_reached is None else self.t_reached - self.t_set,
                "held_s": None if self.t_done is None or self.t_window is None else self.t_done - self.t_window,
                "hold_mean_error_m": float(e.mean()) if e.size else None,
                "hold_max_error_m": float(e.max()) if e.size else None,
                "window_max_error_m": max(self.window_errors) if self.window_errors else None,
                "window_mean_error_m": float(np.mean(self.window_errors)) if self.window_errors else None,
                "completed": self.t_done is not None}


class Targeting:
    """The current task and target, shared by the control loop (reads every tick) and the operator / UI
    (writes at any time: a new target takes effect at the next tick). Thread-safe.

    A mission is an ordered list of targets: each is held within `tolerance` for `hold_s`, then the next
    one is set; after the last, `then` says land or stay. Setting a target by hand ends the mission."""

    def __init__(self, fence: Fence, frame: str, task: str = "hover", course: Course | None = None,
                 origin_local: Sequence[float] = (0.0, 0.0, 0.0)):
        if task not in TASKS:
            raise TargetError(f"unknown task {task!r}; choose among {', '.join(TASKS)}")
        if task not in SUPPORTED_TASKS:
            raise TargetError(f"task {task!r} needs the states of other drones, which drone-deploy does not "
                              f"have; fly one of {', '.join(SUPPORTED_TASKS)}")
        if task == "race" and (course is None or len(course.rings) < 2):
            raise TargetError("task race needs a course with at least two rings (--course course.json)")
        self.fence = fence
        self.frame = frame
        self.origin_local = np.asarray(origin_local, dtype=float)  # the navigation frame's origin, local frame
        self._lock = threading.Lock()
        self._task = task
        self._course = course
        self._pos = np.array([fence.center[0], fence.center[1], fence.ground_z + 1.0])
        self._vel = np.zeros(3)
        self._version = 0
        self._label = "default"
        self._ring = 0
        self._rings_passed = 0
        self._prev_pos: np.ndarray | None = None
        self._vel_t: float | None = None
        # mission
        self._mission: list[tuple[tuple[float, float, float], str]] = []
        self._mission_index = -1
        self._hold_s = 5.0
        self._tol = 0.3
        self._within_since: float | None = None
        self.mission_done = False
        self.records: list[TargetRecord] = []

    # ------------------------------------------------------------------ setting
    def resolve(self, xyz: Sequence[float], frame: str | None, position: np.ndarray | None,
                quaternion: np.ndarray | None) -> np.ndarray:
        """A target given in `frame` as a navigation-frame point (checked against the fence).

        Frames: home (ENU from the takeoff point), local (the flight controller's local frame, ENU),
        relative (forward/left/up from the pose now), nav (already in the navigation frame)."""
        frame = frame or self.frame
        p = np.asarray(xyz, dtype=float)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise TargetError(f"a target needs three finite numbers, got {xyz!r}")
        if frame == "relative":
            if position is None or quaternion is None:
                raise TargetError("a relative target needs a pose estimate, and there is none yet")
            yaw = yaw_of(quaternion)
            c, s = math.cos(yaw), math.sin(yaw)
            p = np.asarray(position, dtype=float) + np.array([c * p[0] - s * p[1], s * p[0] + c * p[1], p[2]])
        elif frame == "home":
            p = p + np.array([self.fence.center[0], self.fence.center[1], self.fence.ground_z])
        elif frame == "local":
            p = p - self.origin_local
        elif frame != "nav":
            raise TargetError(f"unknown target frame {frame!r} (home, local or relative)")
        self.fence.check_target(p)
        return p

    def set_target(self, xyz: Sequence[float], frame: str | None = None, *, position: np.ndarray | None = None,
                   quaternion: np.ndarray | None = None, velocity: Sequence[float] | None = None, t: float = 0.0,
                   label: str = "operator", keep_mission: bool = False) -> np.ndarray:
        """Set the target now; returns it in the navigation frame. Raises TargetError (the target in force
        is kept) when it cannot be flown."""
        p = self.resolve(xyz, frame, position, quaternion)
        with self._lock:
            if not keep_mission:
                self._mission = []
                self._mission_index = -1
            old = self._pos.copy()
            self._pos = p
            if velocity is not None:
                v = np.asarray(velocity, dtype=float)
                self._vel = v if v.shape == (3,) and np.all(np.isfinite(v)) else np.zeros(3)
                self._vel_t = None
            elif self._task == "follow" and self._vel_t is not None and t > self._vel_t:
                # a dragged target: velocity from its motion, low-passed
                v = (p - old) / max(t - self._vel_t, 1e-3)
                self._vel = 0.6 * self._vel + 0.4 * np.clip(v, -5.0, 5.0)
            else:
                self._vel = np.zeros(3)
            self._vel_t = t
            self._version += 1
            self._label = label
            self._within_since = None
            self.records.append(TargetRecord(len(self.records), [float(x) for x in p], t))
        return p

    def set_task(self, task: str) -> None:
        if task not in SUPPORTED_TASKS:
            raise TargetError(f"task {task!r} cannot be flown by drone-deploy; choose among "
                              f"{', '.join(SUPPORTED_TASKS)}")
        if task == "race" and (self._course is None or len(self._course.rings) < 2):
            raise TargetError("task race needs a course (--course)")
        with self._lock:
            self._task = task
            self._version += 1
            if task == "race":
                self._ring = 0

    def start_mission(self, targets: Sequence[Sequence[float]], frame: str | None, hold_s: float, tolerance: float,
                      position: np.ndarray | None, quaternion: np.ndarray | None, t: float) -> None:
        """Fly targets in order. Every target is checked against the fence now (relative ones when they
        become active, since they depend on the pose then)."""
        frame = frame or self.frame
        if frame != "relative":
            for xyz in targets:
                self.resolve(xyz, frame, position, quaternion)
        with self._lock:
            self._hold_s, self._tol = float(hold_s), float(tolerance)
        self._mission_start(list(targets), frame, position, quaternion, t)

    def _mission_start(self, targets, frame, position, quaternion, t) -> None:
        self.set_target(targets[0], frame, position=position, quaternion=quaternion, t=t, label="mission 1",
                        keep_mission=False)
        with self._lock:
            self._mission = [(tuple(x), frame) for x in targets]
            self._mission_index = 0
            self.mission_done = False

    # ------------------------------------------------------------------ reading (the control loop)
    def update(self, t: float, position: np.ndarray, quaternion: np.ndarray) -> TargetState:
        """Advance what depends on the flight (mission hold timer, race ring passed, target velocity
        decay) and return the state for this tick's observation."""
        advance = None
        with self._lock:
            task = self._task
            if task == "race" and self._course is not None:
                rings = self._course.rings
                if self._prev_pos is not None and ring_passed(rings[self._ring], self._prev_pos, position):
                    self._ring = (self._ring + 1) % len(rings)
                    self._rings_passed += 1
                    self._version += 1
                self._prev_pos = position.copy()
                ring, nxt = rings[self._ring], rings[(self._ring + 1) % len(rings)]
                return TargetState(task, np.asarray(ring["position"], float), np.zeros(3), ring, nxt,
                                   self._course.nearest_obstacles(position), f"ring {self._ring + 1}", self._version)
            if self._vel_t is not None and t - self._vel_t > 0.5 and self._task == "follow":
                self._vel = self._vel * 0.9  # the target stopped moving
            dist = float(np.linalg.norm(position - self._pos))
            rec = self.records[-1] if self.records else None
            if rec is not None and rec.t_done is None:
                if dist <= self._tol and rec.t_reached is None:
                    rec.t_reached = t
                if rec.t_reached is not None:
                    rec.hold_errors.append(dist)  # tracking error from the first arrival on
                if self._mission_index >= 0:
                    if dist <= self._tol:
                        if self._within_since is None:
                            self._within_since = t
                            rec.t_window = t
                            rec.window_errors = []
                        rec.window_errors.append(dist)
                        if t - self._within_since >= self._hold_s:
                            rec.t_done = t
                            if self._mission_index + 1 < len(self._mission):
                                advance = self._mission_index + 1
                            else:
                                self.mission_done = True
                                self._mission_index = -1
                    else:
                        self._within_since = None
            obstacles = self._course.nearest_obstacles(position) if (task == "obstacles" and self._course) else []
            state = TargetState(task, self._pos.copy(), self._vel.copy(), None, None, obstacles, self._label,
                                self._version)
        if advance is not None:
            xyz, frame = self._mission[advance]
            mission = self._mission
            self.set_target(xyz, frame, position=position, quaternion=quaternion, t=t, label=f"mission {advance + 1}",
                            keep_mission=True)
            with self._lock:
                self._mission = mission
                self._mission_index = advance
            return self.update(t, position, quaternion)
        return state

    @property
    def task(self) -> str:
        return self._task

    @property
    def target(self) -> np.ndarray:
        with self._lock:
            return self._pos.copy()

    @property
    def rings_passed(self) -> int:
        return self._rings_passed

    @property
    def mission_active(self) -> bool:
        return self._mission_index >= 0

    def summary(self) -> list[dict]:
        with self._lock:
            return [r.summary() for r in self.records]
