"""The state estimate the loop flies on, and the simulator's predictions of it.

Estimate: the latest telemetry (firmware_bridge.VehicleState, converted to ENU/FLU by firmware_bridge's
frames module) moved into the navigation frame, with its age. Nothing here converts axes by hand.

SimModel: the project's C simulator (one drone, no randomization, the policy's nominal drone or a params
file) used as a predictor. Two uses:
- the one-step prediction logged every tick: from the measured state and the command just sent, where
  the simulator says the vehicle will be one control period later (drone-replay compares it with what
  the vehicle did, which is the sim-to-real gap, tick by tick);
- the delay model: telemetry is `telemetry_latency` old when it arrives and a command acts
  `command_latency` after it is sent, so the policy sees the state predicted forward by that delay
  under the commands already on their way, as if there were no latency (the policy was trained
  without it, or with less).
Motor speeds are not in the telemetry; the model keeps its own from the previous prediction.
"""
from __future__ import annotations

import collections
import dataclasses
import math
from typing import Sequence

import numpy as np

import drone_sim
from firmware_bridge import frames
from firmware_bridge.vehicle_state import VehicleState

STATE = drone_sim.STATE_SIZE  # position 3, velocity 3, quaternion 4, body rates 3, motor speeds 4


@dataclasses.dataclass
class Estimate:
    """The vehicle's state in the navigation frame at one tick."""

    t: float                   # local monotonic time of the tick
    vt: float                  # vehicle time (s, from its boot clock) of the newest attitude/position sample
    position: np.ndarray       # ENU, navigation frame
    velocity: np.ndarray
    quaternion: np.ndarray     # (w, x, y, z) body FLU -> world ENU
    rates: np.ndarray          # body FLU, rad/s
    age_attitude: float
    age_position: float
    age_link: float            # seconds since any message from the vehicle
    stale_link: bool           # the link says it is down or silent
    armed: bool
    mode: str
    landed_state: int
    battery_voltage: float
    battery_remaining: float
    estimator_healthy: bool

    @classmethod
    def from_vehicle(cls, s: VehicleState, origin: np.ndarray, now: float) -> "Estimate":
        """origin: the navigation frame's origin in the vehicle's local ENU frame."""
        vt = max(s.boot_ms_attitude, s.boot_ms_position) / 1000.0
        return cls(now, vt, s.position_enu - origin, s.velocity_enu, s.quaternion_enu, s.body_rates_flu,
                   s.age("attitude", now), s.age("position", now), s.age("last_message", now), s.stale, s.armed,
                   s.mode, s.landed_state, s.battery_voltage, s.battery_remaining, s.estimator_healthy)

    @classmethod
    def from_vehicles(cls, links: Sequence, origins: np.ndarray, now: float) -> list["Estimate"]:
        """from_vehicle for every link (MavLink) of a swarm at once, with the frame conversions done on all rows
        together: the same values (tests hold the two to each other), at a fraction of the per-tick cost. Each
        link's fields are read under its lock, without copying its whole state."""
        rows = [link.read_state(_kinematics) for link in links]
        x = np.array(frames.states_ned_to_enu([r[0] for r in rows]))
        x[:, 0:3] -= origins
        return [cls(now, max(r[1], r[2]) / 1000.0, x[i, 0:3], x[i, 3:6], x[i, 6:10], x[i, 10:13], now - r[3],
                    now - r[4], now - r[5], *r[6:]) for i, r in enumerate(rows)]

    @property
    def tilt_deg(self) -> float:
        """Angle between the body z axis and world up."""
        w, x, y, z = self.quaternion
        n = w * w + x * x + y * y + z * z
        c = 1.0 - 2.0 * (x * x + y * y) / max(n, 1e-12)
        return math.degrees(math.acos(max(-1.0, min(1.0, c))))

    @property
    def speed(self) -> float:
        return float(np.linalg.norm(self.velocity))

    def finite(self) -> bool:
        return bool(np.isfinite(self.position).all() and np.isfinite(self.velocity).all()
                    and np.isfinite(self.quaternion).all() and np.isfinite(self.rates).all())

    def age(self) -> float:
        return max(self.age_attitude, self.age_position)

    def with_state(self, x: np.ndarray) -> "Estimate":
        """A copy with position, velocity, attitude and rates taken from a simulator state vector."""
        return dataclasses.replace(self, position=x[0:3].astype(float), velocity=x[3:6].astype(float),
                                   quaternion=x[6:10].astype(float), rates=x[10:13].astype(float))


def _kinematics(s: VehicleState) -> tuple:
    """What an Estimate takes from a VehicleState, read under the link's lock (Estimate.from_vehicles)."""
    return (s.position_ned.tolist() + s.velocity_ned.tolist() + s.quaternion_ned.tolist() + s.body_rates_frd.tolist(),
            s.boot_ms_attitude, s.boot_ms_position, s.t_attitude, s.t_position, s.t_last_message, s.stale, s.armed,
            s.mode, s.landed_state, s.battery_voltage, s.battery_remaining, s.estimator_healthy)


class SimModel:
    """One simulated drone stepped at the physics rate from a given state: the predictor."""

    def __init__(self, action_mode: str, drone: dict | None, physics_hz: float = 500.0):
        self.action_mode = action_mode
        self.physics_dt = 1.0 / physics_hz
        self.env = drone_sim.make(tasks="hover", num_envs=1, agents_per_env=1, action_mode=action_mode,
                                  dr="nominal", drone=drone, physics_hz=physics_hz, control_hz=physics_hz, seed=0,
                                  auto_reset=False, arena=(1000.0, 1000.0, 500.0))
        self.drone = dict(drone_sim.NOMINAL_DRONE if drone is None else drone)
        self.motors = np.full(4, self._hover_omega(), dtype=np.float32)
        self._x = np.zeros(STATE, dtype=np.float32)
        self._a = np.zeros((1, 4), dtype=np.float32)

    def _hover_omega(self) -> float:
        return drone_sim.hover_omega(self.drone)

    def reset_motors(self) -> None:
        self.motors[:] = self._hover_omega()

    def simulate(self, est: Estimate, schedule: list[tuple[float, np.ndarray]], horizon: float,
                 keep_motors: bool = True) -> np.ndarray:
        """The state `horizon` seconds after `est` under a piecewise-constant action schedule
        [(start offset s, action)], sorted; the first action applies from 0. Returns the 17-value state."""
        x = self._x
        x[0:3], x[3:6], x[6:10], x[10:13] = est.position, est.velocity, est.quaternion, est.rates
        x[13:17] = self.motors
        self.env.set_state(0, x)
        n = max(1, int(round(horizon / self.physics_dt)))
        k = 0
        for i in range(n):
            t = i * self.physics_dt
            while k + 1 < len(schedule) and schedule[k + 1][0] <= t + 1e-9:
                k += 1
            self._a[0] = schedule[k][1]
            self.env.step(self._a)
        out = self.env.states()[0].copy()
        if keep_motors:
            self.motors[:] = out[13:17]
        return out


class DelayModel:
    """Telemetry and command latency compensation: the state the vehicle will be in when the command
    computed now takes effect. With both latencies zero it is the identity (and costs nothing)."""

    def __init__(self, model: SimModel | None, telemetry_latency_s: float = 0.0, command_latency_s: float = 0.0):
        self.model = model
        self.telemetry_latency = float(telemetry_latency_s)
        self.command_latency = float(command_latency_s)
        self.history: collections.deque = collections.deque(maxlen=64)  # (send time, action)

    @property
    def active(self) -> bool:
        return self.model is not None and (self.telemetry_latency > 0 or self.command_latency > 0)

    def sent(self, t: float, action: np.ndarray) -> None:
        self.history.append((t, np.asarray(action, dtype=np.float32).copy()))

    def compensate(self, est: Estimate, fallback_action: np.ndarray) -> Estimate:
        if not self.active:
            return est
        # the measurement describes the vehicle at t_meas; the command computed now acts at t_act
        t_meas = est.t - est.age() - self.telemetry_latency
        t_act = est.t + self.command_latency
        horizon = t_act - t_meas
        if horizon <= 1e-4:
            return est
        # the action in force on the vehicle at time s was sent at s - command_latency
        schedule: list[tuple[float, np.ndarray]] = []
        current = fallback_action
        for ts, a in self.history:
            eff = ts + self.command_latency
            if eff <= t_meas:
                current = a
            elif eff < t_act:
                schedule.append((eff - t_meas, a))
        schedule.insert(0, (0.0, np.asarray(current, dtype=np.float32)))
        x = self.model.simulate(est, schedule, min(horizon, 0.5), keep_motors=False)
        return est.with_state(x)


class OneStepPredictor:
    """The simulator's prediction of the next tick's state from this tick's state and command."""

    def __init__(self, model: SimModel, control_dt: float):
        self.model = model
        self.dt = control_dt

    def predict(self, est: Estimate, action: np.ndarray) -> np.ndarray:
        return self.model.simulate(est, [(0.0, np.asarray(action, dtype=np.float32))], self.dt)
