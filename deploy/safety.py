"""The safety layer: checks that do not trust the policy, and what to do when one fails.

It looks only at the state estimate, the link and the action about to be sent; it knows nothing of how
the policy works. Each check compares against a SafetyLimits threshold and, when it fails, returns a
Trigger naming the check, the measured value, the limit and the response (config.DEFAULT_RESPONSES,
overridable per trigger). The control loop stops sending the policy's commands in the same tick a
trigger fires; the supervisor carries out the response through the flight controller's own modes
(hold, land, position setpoints), never through the policy.

Link loss is special: with no link nothing the laptop does reaches the vehicle, so the response is to
stop sending setpoints (which also starts the firmware's setpoint-loss failsafe) and rely on the
firmware's GCS and setpoint failsafes, configured as hardware.md says and checked at preflight.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .config import SafetyLimits
from .estimate import Estimate
from .targets import Fence


@dataclasses.dataclass
class Trigger:
    """One safety trigger: what, the value against the limit, the response, and when."""

    kind: str
    detail: str
    response: str
    t: float                 # local monotonic time
    vt: float = 0.0          # vehicle time
    value: float = math.nan
    limit: float = math.nan

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("value", "limit"):
            if not math.isfinite(d[k]):
                d[k] = None
        return d

    def __str__(self) -> str:
        return f"SAFETY {self.kind}: {self.detail} -> {self.response}"


# how far inside a limit a batch check (states_pass) must find a value to pass it without the single check: far more
# than the rounding difference between numpy's and math's arithmetic, far less than anything a sensor resolves
_HAIR = 1e-6


class SafetyMonitor:
    """Stateless checks plus the few counters some checks need (consecutive deadline misses)."""

    def __init__(self, limits: SafetyLimits, fence: Fence, cells: int | None = None):
        self.limits = limits
        self.fence = fence
        self.cells = cells
        self._misses_in_a_row = 0

    def _make(self, kind: str, detail: str, est: Estimate | None, t: float, value=math.nan, limit=math.nan) -> Trigger:
        return Trigger(kind, detail, self.limits.responses.get(kind, "hold"), t,
                       est.vt if est is not None else 0.0, float(value), float(limit))

    # ------------------------------------------------------------------ the link and the telemetry
    def check_stall(self, stalled_s: float, est: Estimate) -> Trigger | None:
        """This program itself did not run (the laptop froze or slept, the process was stopped) for longer
        than the link-loss limit. Its telemetry then looks as old as after a lost link, but the vehicle was
        not the one that went quiet: it heard nothing from us, so its failsafe may have acted meanwhile."""
        L = self.limits
        if stalled_s <= L.link_lost_after_s:
            return None
        return self._make("laptop_stalled", f"drone-deploy did not run for {stalled_s:.2f} s (the laptop stalled or "
                          f"this process was stopped; limit {L.link_lost_after_s:g} s); the flight controller's "
                          "failsafe may be in charge", est, est.t, stalled_s, L.link_lost_after_s)

    def check_link(self, est: Estimate) -> Trigger | None:
        L = self.limits
        if est.age_link > L.link_lost_after_s or (est.stale_link and est.age_link > L.stale_after_s):
            return self._make("link_lost", f"no message from the vehicle for {est.age_link:.2f} s "
                              f"(limit {L.link_lost_after_s:g} s); the flight controller's failsafe is in charge",
                              est, est.t, est.age_link, L.link_lost_after_s)
        age = est.age()
        if age > L.stale_after_s:
            which = "attitude" if est.age_attitude >= est.age_position else "position"
            return self._make("stale_telemetry", f"{which} telemetry {age:.2f} s old (limit {L.stale_after_s:g} s)",
                              est, est.t, age, L.stale_after_s)
        return None

    # ------------------------------------------------------------------ the flight envelope
    def check_state(self, est: Estimate) -> Trigger | None:
        """Fence, ceiling, tilt, speed and estimate sanity; call only with fresh telemetry."""
        L = self.limits
        if not est.finite():
            return self._make("observation_nonfinite", "the state estimate has non-finite values", est, est.t)
        where = self.fence.breach(est.position)
        if where == "fence":
            d = self.fence.horizontal_distance(est.position)
            return self._make("fence", f"{d:.2f} m from home, fence radius {self.fence.radius:g} m", est, est.t,
                              d, self.fence.radius)
        if where == "altitude":
            h = self.fence.height(est.position)
            return self._make("altitude", f"{h:.2f} m high, ceiling {self.fence.max_alt:g} m", est, est.t, h,
                              self.fence.max_alt)
        tilt = est.tilt_deg
        if tilt > L.max_tilt_deg:
            return self._make("tilt", f"tilted {tilt:.1f} deg (limit {L.max_tilt_deg:g} deg)", est, est.t, tilt,
                              L.max_tilt_deg)
        v = est.speed
        if v > L.max_speed_mps:
            return self._make("speed", f"{v:.2f} m/s (limit {L.max_speed_mps:g} m/s)", est, est.t, v, L.max_speed_mps)
        return None

    def states_pass(self, position: np.ndarray, velocity: np.ndarray, quaternion: np.ndarray,
                    rates: np.ndarray) -> list[bool]:
        """Per row of a swarm's states (navigation frame, one row per vehicle): True where check_state is sure to
        return None. A row within a hair of a limit, or not finite, is False, and the swarm's tick asks
        check_state about it, which decides and names the trigger; so a True here never hides a trigger, and tests
        hold it to that. Plain floats: the tick starts with the processor's caches cold, where a dozen numpy
        calls on 8 rows cost several times this loop."""
        L, f = self.limits, self.fence
        cx, cy = f.center
        r2 = (f.radius - _HAIR) ** 2
        top = f.ground_z + f.max_alt - _HAIR
        cos_min = math.cos(math.radians(L.max_tilt_deg - _HAIR))
        v2 = (L.max_speed_mps - _HAIR) ** 2
        out = []
        for p, v, q, w in zip(np.asarray(position, dtype=float).tolist(), np.asarray(velocity, dtype=float).tolist(),
                              np.asarray(quaternion, dtype=float).tolist(), np.asarray(rates, dtype=float).tolist()):
            if not math.isfinite(sum(p) + sum(v) + sum(q) + sum(w)):   # any NaN or infinity (inf - inf is NaN)
                out.append(False)
                continue
            n = max(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3], 1e-12)
            cos_tilt = 1.0 - 2.0 * (q[1] * q[1] + q[2] * q[2]) / n   # as Estimate.tilt_deg computes it
            out.append((p[0] - cx) ** 2 + (p[1] - cy) ** 2 <= r2 and p[2] <= top and cos_tilt >= cos_min
                       and v[0] * v[0] + v[1] * v[1] + v[2] * v[2] <= v2)
        return out

    def check_battery(self, est: Estimate) -> Trigger | None:
        L = self.limits
        if math.isfinite(est.battery_remaining) and est.battery_remaining < L.land_battery_remaining:
            return self._make("battery", f"battery at {100 * est.battery_remaining:.0f} % (land below "
                              f"{100 * L.land_battery_remaining:.0f} %)", est, est.t, est.battery_remaining,
                              L.land_battery_remaining)
        cells = self.cells or estimate_cells(est.battery_voltage)
        if cells and math.isfinite(est.battery_voltage):
            per_cell = est.battery_voltage / cells
            if per_cell < L.land_cell_voltage:
                return self._make("battery", f"battery at {per_cell:.2f} V/cell (land below "
                                  f"{L.land_cell_voltage:g} V/cell)", est, est.t, per_cell, L.land_cell_voltage)
        return None

    # ------------------------------------------------------------------ the policy's output
    def check_observation(self, obs: np.ndarray, est: Estimate) -> Trigger | None:
        if not np.isfinite(obs).all():
            bad = int(np.sum(~np.isfinite(obs)))
            return self._make("observation_nonfinite", f"{bad} non-finite observation values", est, est.t)
        return None

    def check_action(self, action: np.ndarray, est: Estimate, size: int = 4) -> Trigger | None:
        a = np.asarray(action, dtype=float).reshape(-1)
        if a.shape != (size,):
            return self._make("action_range", f"the policy returned {a.size} values, expected {size}", est, est.t)
        if not np.isfinite(a).all():
            return self._make("action_nonfinite", f"the policy returned a non-finite action {a.tolist()}", est, est.t)
        worst = float(np.max(np.abs(a)))
        if worst > 1.0 + self.limits.action_tolerance:
            return self._make("action_range", f"action component {worst:.3f} outside [-1, 1]", est, est.t, worst, 1.0)
        return None

    def policy_rows_pass(self, obs: np.ndarray, actions: np.ndarray, size: int = 4) -> np.ndarray:
        """Per row of a swarm's observations and actions (one row per vehicle), whether check_observation and
        check_action would both pass. The swarm's tick checks every vehicle at once this way and calls the two
        checks, which name the problem, only for a row that fails; tests hold the two to the same verdicts."""
        obs = np.asarray(obs)
        actions = np.asarray(actions, dtype=float)
        if actions.ndim != 2 or actions.shape[1] != size:
            return np.zeros(len(obs), dtype=bool)
        finite = np.isfinite(obs).all(axis=1) & np.isfinite(actions).all(axis=1)
        with np.errstate(invalid="ignore"):
            in_range = np.abs(actions).max(axis=1) <= 1.0 + self.limits.action_tolerance
        return finite & in_range

    # ------------------------------------------------------------------ the loop itself
    def check_deadline(self, missed: bool, est: Estimate | None, t: float) -> Trigger | None:
        self._misses_in_a_row = self._misses_in_a_row + 1 if missed else 0
        if self._misses_in_a_row >= self.limits.max_consecutive_misses:
            n = self._misses_in_a_row
            self._misses_in_a_row = 0
            return self._make("deadline", f"{n} control deadlines missed in a row: the laptop cannot keep the rate",
                              est, t, n, self.limits.max_consecutive_misses)
        return None

    def check_flight_time(self, flown_s: float, est: Estimate) -> Trigger | None:
        L = self.limits
        if L.max_flight_s > 0 and flown_s > L.max_flight_s:
            return self._make("flight_time", f"{flown_s:.0f} s under policy control (limit {L.max_flight_s:g} s)",
                              est, est.t, flown_s, L.max_flight_s)
        return None

    def exception(self, exc: BaseException, est: Estimate | None, t: float) -> Trigger:
        return self._make("exception", f"{type(exc).__name__} in the control loop: {exc}", est, t)

    def mode_changed(self, mode: str, expected: str, est: Estimate) -> Trigger:
        return self._make("mode_changed", f"the vehicle left {expected} for {mode} (pilot or firmware failsafe); "
                          "drone-deploy stops commanding", est, est.t)


def estimate_cells(voltage: float) -> int | None:
    """LiPo cell count from a pack voltage (a full cell is 4.2-4.35 V); None when unknown."""
    if not (math.isfinite(voltage) and voltage > 2.5):
        return None
    return max(1, math.ceil(voltage / 4.35 - 0.05))
