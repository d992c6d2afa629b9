"""One vehicle of a swarm flight: its link, its place in the swarm frame, its phase, its log and its checks.

The swarm flight (deploy/swarm/flight.py) ticks every member together; a member only keeps what is its own.
Its phases:

  idle      connected, preflight passed, waiting for its turn to take off
  arming    its arm-and-take-off commands are on their way (a worker thread: the loop keeps ticking)
  takeoff   the firmware's takeoff; nothing sent until the firmware says it is in the air
  ready     holding its takeoff point with position setpoints, until the whole swarm is up
  policy    flying its slot with the policy
  hold      holding a point with position setpoints (a safety trigger, the separation guard, another
            vehicle's lost link); lands when the hold ends without the reason clearing
  landing   the firmware's LAND; watched until it disarms
  passive   its link is lost or its pilot took over: nothing sent, its firmware's failsafe is in charge
  down      disarmed after the flight (or never armed)
"""
from __future__ import annotations

import collections
import concurrent.futures
import math
import time
from typing import Any, Callable

import numpy as np

from firmware_bridge import MavLink

from ..config import vec_list
from ..estimate import Estimate
from ..flightlog import FlightLog, StateEvents
from ..preflight import TelemetryCounter
from ..safety import SafetyMonitor, Trigger

AIRBORNE = ("takeoff", "ready", "policy", "hold", "landing", "passive")


class Member:
    def __init__(self, index: int, link: MavLink, log: FlightLog):
        self.index = index
        self.link = link
        self.log = log
        self.counter = TelemetryCounter()
        link.add_listener(self.counter)
        self.sysid: int | None = None
        self.phase = "idle"
        self.phase_t0 = time.monotonic()
        self.origin_local = np.zeros(3)          # the swarm frame's origin in this vehicle's local ENU frame
        self.home_swarm = np.zeros(3)            # its home (takeoff point) in the swarm frame
        self.hold_point: np.ndarray | None = None  # swarm frame
        self.hold_until = math.inf
        self.held_with: int | None = None        # the other vehicle of a guard trip
        self.hold_then_land = True
        self.takeoff_point = np.zeros(3)         # swarm frame
        self.takeoff_deadline = math.inf
        self.settled = 0
        self.slot: int | None = None
        self.leash: np.ndarray | None = None     # the target point on its way to the slot (swarm frame)
        self.attached = False                    # the target has reached the slot and rides with it
        self.recent_errors: collections.deque = collections.deque(maxlen=50)   # distance to its slot, last ticks
        self.safety: SafetyMonitor | None = None
        self.mapper = None
        self.preflight = None
        self.guid_options_to_set: int | None = None
        self.old_guid_options: float | None = None
        self.pending: concurrent.futures.Future | None = None
        self.pending_what = ""
        self.est: Estimate | None = None
        self.last_action = np.zeros(4, dtype=np.float32)
        self.triggers: list[Trigger] = []
        self.outcome = ""
        self.land_sent = 0.0
        self.k = 0
        self.state_events = StateEvents(log)

    @property
    def name(self) -> str:
        return f"vehicle {self.sysid if self.sysid is not None else '?'} ({self.link.endpoint})"

    @property
    def airborne(self) -> bool:
        return self.phase in AIRBORNE

    def set_phase(self, phase: str, **fields: Any) -> None:
        if phase == self.phase:
            return
        self.phase = phase
        self.phase_t0 = time.monotonic()
        self.log.event("phase", phase=phase, **fields)

    def estimate(self, now: float) -> Estimate:
        self.est = Estimate.from_vehicle(self.link.state, self.origin_local, now)
        self.state_events.update(self.est)
        return self.est

    def local(self, p_swarm: np.ndarray) -> np.ndarray:
        """A swarm-frame point in this vehicle's local ENU frame (what position setpoints take)."""
        return np.asarray(p_swarm, dtype=float) + self.origin_local

    def run_command(self, pool: concurrent.futures.Executor, fn: Callable[[], Any], what: str) -> None:
        """A blocking command (arm, takeoff, land) on a worker thread; its result is read by `finished()`."""
        self.pending = pool.submit(fn)
        self.pending_what = what

    def finished(self) -> tuple[bool, str] | None:
        """(ok, detail) once the pending command is done, else None; logs it."""
        if self.pending is None or not self.pending.done():
            return None
        exc = self.pending.exception()
        what, self.pending = self.pending_what, None
        if exc is None:
            self.log.event("command", what=what, ok=True)
            return True, ""
        detail = f"{type(exc).__name__}: {exc}"
        self.log.event("command", what=what, ok=False, detail=detail)
        return False, detail

    def disarmed_confirmed(self) -> bool:
        e = self.est
        return e is not None and not e.armed and not e.stale_link and self.link.state.age("heartbeat") < 1.5

    def trigger(self, trig: Trigger) -> None:
        self.triggers.append(trig)
        self.log.event("safety", trigger=trig.as_dict())


    def log_step(self, est: Estimate, target: np.ndarray | None, target_vel: np.ndarray | None, obs, action, desc,
                 sent: bool, timing: dict, neighbours: int, trig: Trigger | None) -> None:
        rec: dict[str, Any] = {
            "type": "step", "k": self.k, "t": self.log.rel(est.t), "vt": round(est.vt, 4), "phase": self.phase,
            "pos": vec_list(est.position, 4), "vel": vec_list(est.velocity, 4), "quat": vec_list(est.quaternion, 5),
            "rates": vec_list(est.rates, 4), "age": [round(min(est.age_attitude, 99.0), 4),
                                                     round(min(est.age_position, 99.0), 4)],
            "armed": est.armed, "mode": est.mode, "task": "swarm",
            "target": None if target is None else vec_list(target, 4),
            "target_vel": None if target_vel is None else vec_list(target_vel, 3),
            "target_label": None if self.slot is None else f"slot {self.slot + 1}",
            "batt": [round(est.battery_voltage, 3), round(est.battery_remaining, 3)],
            "obs": None if obs is None else vec_list(obs, 5),
            "action": None if action is None else [float(x) for x in action],
            "cmd": desc, "dry": False, "sent": sent, "pred": None, "neighbours": neighbours, "timing": timing,
        }
        if trig is not None:
            rec["trigger"] = trig.kind
        self.log.write(rec)
        self.k += 1
