"""The thread-safe handle an operator interface holds on a running flight (the CLI's keys and signals
today, the raylib target-drag window later).

Why this shape: the control loop must never wait on the interface. Requests are plain flag writes and
a target update under a short lock; the loop picks them up at its next tick (one control period at
most: "switching target mid-flight is immediate"). What the interface reads is a Snapshot the loop
publishes once per tick by swapping one reference, so a slow window frame cannot hold the loop up.
Signal handlers may call request_land() and kill(): they only assign attributes (no lock a handler
could deadlock on if it interrupted the thread holding it).
"""
from __future__ import annotations

import collections
import dataclasses
import math
import time
from typing import Sequence

import numpy as np

from .targets import TargetError, Targeting

PHASES = ("starting", "preflight", "idle", "dry_run", "arming", "takeoff", "handover", "policy", "hold", "return",
          "landing", "passive", "kill", "done")


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Everything a HUD shows, as of one control tick (navigation frame, SI units, degrees for angles)."""

    t: float                      # local monotonic time
    vt: float                     # vehicle time
    phase: str
    dry_run: bool
    armed: bool
    mode: str
    position: tuple[float, float, float]
    velocity: tuple[float, float, float]
    quaternion: tuple[float, float, float, float]
    euler_deg: tuple[float, float, float]       # roll, pitch, yaw (NED/FRD convention, as ground stations show)
    rates: tuple[float, float, float]
    predicted_position: tuple[float, float, float] | None
    task: str
    target: tuple[float, float, float] | None
    target_label: str
    distance_to_target: float
    battery_voltage: float
    battery_remaining: float
    link_ok: bool
    telemetry_age_s: float
    loop_rate_hz: float
    compute_p99_ms: float
    deadline_misses: int
    triggers: tuple[dict, ...]    # every safety trigger so far (Trigger.as_dict), newest last
    action: tuple[float, ...] | None
    fence: dict | None


class FlightControl:
    """Requests into a running flight, and its latest state out."""

    def __init__(self):
        self._land_why: str | None = None
        self._kill_why: str | None = None
        self._snapshot: Snapshot | None = None
        self.targeting: Targeting | None = None   # set by the runner once the navigation frame exists
        self.messages: collections.deque = collections.deque(maxlen=200)  # (time, text) for a HUD's log pane
        self._done = False
        # arm gate (additive, for deploy/ui/): when set, the runner waits after preflight, watching, until
        # request_arm() (the UI's "arm and take off"); without it drone-deploy arms as soon as preflight passes
        self.arm_gate = False
        self._arm_why: str | None = None
        self._quit_why: str | None = None
        self.swarm: tuple = ()    # a swarm flight: one deploy.swarm.operator.VehicleView per vehicle, each tick

    # ------------------------------------------------------------------ requests (any thread, signal-safe)
    def request_land(self, why: str = "operator") -> None:
        """Land now (Ctrl-C, the UI's land button, closing the window). Idempotent."""
        if self._land_why is None:
            self._land_why = why

    def request_quit(self, why: str) -> None:
        """The program is asked to stop (SIGINT, SIGTERM): land whatever flies, then exit. A window that
        stays open after the flight for the operator to read closes too. Idempotent."""
        self.request_land(why)
        if self._quit_why is None:
            self._quit_why = why

    @property
    def quit_requested(self) -> str | None:
        return self._quit_why

    def kill(self, why: str = "operator kill") -> None:
        """Disarm at once, even in flight: the motors stop and the vehicle falls. The last resort."""
        if self._kill_why is None:
            self._kill_why = why

    def request_arm(self, why: str = "operator") -> None:
        """Arm and take off (the UI's button); only read by a runner whose arm_gate is set. Idempotent."""
        if self._arm_why is None:
            self._arm_why = why

    @property
    def arm_requested(self) -> str | None:
        return self._arm_why

    @property
    def land_requested(self) -> str | None:
        return self._land_why

    @property
    def kill_requested(self) -> str | None:
        return self._kill_why

    def set_target(self, xyz: Sequence[float], frame: str | None = None,
                   velocity: Sequence[float] | None = None) -> np.ndarray:
        """A new target, in `frame` (default: the flight's frame). Takes effect at the next tick; raises
        TargetError (and keeps the current target) when it is outside the fence or not finite."""
        tg = self.targeting
        if tg is None:
            raise TargetError("no flight is running yet (the navigation frame is set at preflight)")
        snap = self._snapshot
        pos = np.asarray(snap.position) if snap is not None else None
        quat = np.asarray(snap.quaternion) if snap is not None else None
        p = tg.set_target(xyz, frame, position=pos, quaternion=quat, velocity=velocity,
                          t=snap.vt if snap is not None else 0.0)
        self.note(f"target set to ({p[0]:.2f}, {p[1]:.2f}, {p[2]:.2f})")
        return p

    def hold_here(self) -> np.ndarray:
        """Freeze the target where the vehicle is now (clipped into the fence)."""
        tg, snap = self.targeting, self._snapshot
        if tg is None or snap is None:
            raise TargetError("no flight is running yet")
        p = tg.fence.return_point(np.asarray(snap.position))
        return self.set_target(p, frame="nav")

    def set_task(self, task: str) -> None:
        if self.targeting is None:
            raise TargetError("no flight is running yet")
        self.targeting.set_task(task)
        self.note(f"task {task}")

    # ------------------------------------------------------------------ state (any thread)
    def snapshot(self) -> Snapshot | None:
        """The latest published state (None before the loop's first tick)."""
        return self._snapshot

    def publish(self, snap: Snapshot) -> None:
        self._snapshot = snap

    def note(self, text: str) -> None:
        self.messages.append((time.monotonic(), text))

    @property
    def done(self) -> bool:
        return self._done

    def mark_done(self) -> None:
        self._done = True


def euler_deg(quaternion_enu: Sequence[float]) -> tuple[float, float, float]:
    """Roll, pitch, yaw in degrees as ground stations show them (NED/FRD Euler), via firmware_bridge.frames."""
    from firmware_bridge import frames

    r, p, y = frames.euler_from_quat(frames.quat_enu_flu_to_ned_frd(quaternion_enu))
    return math.degrees(r), math.degrees(p), math.degrees(y)
