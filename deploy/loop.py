"""One control tick, shared by every phase of a flight: read the estimate, check it, command, predict, log.

Why one tick function for all phases: takeoff, the policy, a return inside the fence, a hold and the
landing differ only in what (if anything) they send; the telemetry read, the safety checks, the log
record and the HUD snapshot must be the same in all of them, so a flight log has one row per tick from
arming to disarm and drone-replay can plot it end to end.

The compute that deadline monitoring measures is the part between waking up and the command leaving
(estimate, delay model, C observation, onnxruntime, safety checks, mapping, send). The simulator's
one-step prediction, the log record and the snapshot come after the send.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import numpy as np

from firmware_bridge.gate import ReaderGate

from .config import vec_list
from .control import FlightControl, Snapshot, euler_deg
from .estimate import Estimate
from .flightlog import FlightLog, StateEvents
from .observation import build_observation
from .safety import Trigger
from .targets import TargetState
from .timing import ComputeWindow


@dataclasses.dataclass
class TickResult:
    """What one tick saw and did."""

    est: Estimate
    trigger: Trigger | None
    action: np.ndarray | None
    sent: bool
    missed: bool


class Commander:
    """What a phase sends each tick. `policy` runs the ONNX policy; `position` flies to a point with the
    firmware's position controller; `none` only watches (hold, landing, passive)."""

    def __init__(self, kind: str, position_local: np.ndarray | None = None):
        if kind not in ("policy", "position", "none"):
            raise ValueError(kind)
        self.kind = kind
        self.position_local = None if position_local is None else np.asarray(position_local, dtype=float)


class TickRunner:
    """Runs ticks for the flight: owns the per-tick state (last action, tick counter)."""

    def __init__(self, *, link, clock, policy, mapper, safety, targeting, delay, predictor, log: FlightLog,
                 control: FlightControl, origin_local: np.ndarray, timing, hover_action: np.ndarray,
                 drone: dict, dry_run: bool, expected_mode: Callable[[], str | None]):
        self.link, self.clock, self.policy, self.mapper = link, clock, policy, mapper
        self.safety, self.targeting, self.delay, self.predictor = safety, targeting, delay, predictor
        self.log, self.control, self.timing = log, control, timing
        # no garbage collection and no telemetry parsing between the tick's wake-up and its command
        link.gate = ReaderGate()
        self.window = ComputeWindow(link.gate)
        self.origin_local = np.asarray(origin_local, dtype=float)
        self.hover_action = np.asarray(hover_action, dtype=np.float32)
        self.last_action = self.hover_action.copy()
        self.drone = drone                      # what the observation says the drone is (deploy.drone.flown_drone)
        self.dry_run = dry_run
        self.expected_mode = expected_mode
        self.k = 0
        self.triggers: list[Trigger] = []
        self.phase = "starting"
        self.phase_t0 = 0.0
        self.state_events = StateEvents(log)
        self.last_est: Estimate | None = None

    def reset_policy_state(self) -> None:
        """A fresh policy episode (handover): last action = hover, LSTM state zeroed."""
        self.last_action = self.hover_action.copy()
        self.policy.reset()

    # ------------------------------------------------------------------ the tick
    def tick(self, cmd: Commander, stop, checks: tuple[str, ...]) -> TickResult:
        """One period. checks: which safety groups apply in this phase: 'link', 'state', 'battery',
        'policy', 'mode', 'deadline'."""
        now, due, deadline, skipped = self.clock.wait(stop)
        self.window.open()
        try:
            cpu0 = time.thread_time()
            late = max(0.0, now - due)
            s = self.link.state
            est = Estimate.from_vehicle(s, self.origin_local, now)
            self.last_est = est
            self.state_events.update(est)
            trig: Trigger | None = None
            sa = self.safety
            if "link" in checks:
                # a loop that lost more than the link-loss limit of ticks was not running: say so, rather than
                # blame the vehicle for the silence that follows
                trig = sa.check_stall(self.clock.stalled_s, est) or sa.check_link(est)
            if trig is None and "state" in checks:
                trig = sa.check_state(est)
            if trig is None and "battery" in checks:
                trig = sa.check_battery(est)
            if trig is None and "mode" in checks:
                want = self.expected_mode()
                if want is not None and est.mode and est.mode != want:
                    trig = sa.mode_changed(est.mode, want, est)
            tstate = self.targeting.update(est.vt, est.position, est.quaternion)
            obs = action = None
            msg = desc = None
            if trig is None and cmd.kind == "policy":
                comp = self.delay.compensate(est, self.last_action)
                obs = build_observation(comp, tstate, self.last_action, self.drone)
                trig = sa.check_observation(obs, est)
                if trig is None:
                    action = np.asarray(self.policy(obs), dtype=np.float32).reshape(-1)
                    trig = sa.check_action(action, est, self.policy.action_size)
                if trig is None:
                    msg, desc = self.mapper.setpoint(action)
            elif trig is None and cmd.kind == "position":
                msg, desc = self.mapper.position(cmd.position_local)
            sent = False
            if msg is not None and not self.dry_run:
                sent = self.link.send(msg)
            t_sent = time.monotonic()
            cpu = time.thread_time() - cpu0
        finally:
            self.window.close()
        compute = t_sent - now
        missed = (t_sent > deadline or skipped > 0) and not self.clock.lockstep
        if trig is None and "deadline" in checks:
            trig = sa.check_deadline(missed, est, t_sent)
        # ---- after the command: bookkeeping (not in the compute figure)
        pred = None
        if action is not None and trig is None:
            a = np.clip(action, -1.0, 1.0)
            if sent or self.dry_run:
                self.delay.sent(t_sent, a)
            if self.predictor is not None:
                pred = self.predictor.predict(est, a)
            self.last_action = a.astype(np.float32)
        elif cmd.kind != "policy" and self.predictor is not None:
            self.predictor.model.reset_motors()
        if trig is not None:
            self.triggers.append(trig)
        work = time.monotonic() - t_sent
        self.timing.record(now, late, compute, work, missed, skipped, cpu)
        self._log_step(est, tstate, obs, action, desc, sent, pred, late, compute, cpu, work, missed, trig)
        self._publish(est, tstate, action, pred)
        self.k += 1
        return TickResult(est, trig, action, sent, missed)

    # ------------------------------------------------------------------ records

    def _log_step(self, est: Estimate, tstate: TargetState, obs, action, desc, sent, pred, late, compute, cpu,
                  work, missed, trig) -> None:
        rec: dict[str, Any] = {
            "type": "step", "k": self.k, "t": self.log.rel(est.t), "vt": round(est.vt, 4), "phase": self.phase,
            "pos": vec_list(est.position, 4), "vel": vec_list(est.velocity, 4), "quat": vec_list(est.quaternion, 5),
            "rates": vec_list(est.rates, 4), "age": [round(min(est.age_attitude, 99.0), 4),
                                                     round(min(est.age_position, 99.0), 4)],
            "armed": est.armed, "mode": est.mode, "task": tstate.task, "target": vec_list(tstate.position, 4),
            "target_vel": vec_list(tstate.velocity, 3), "target_label": tstate.label,
            "batt": [round(est.battery_voltage, 3), round(est.battery_remaining, 3)],
            "obs": None if obs is None else vec_list(obs, 5),
            "action": None if action is None else [float(x) for x in action],
            "cmd": desc, "dry": bool(self.dry_run and desc is not None), "sent": sent,
            "pred": None if pred is None else {"pos": vec_list(pred[0:3], 4), "vel": vec_list(pred[3:6], 4),
                                               "quat": vec_list(pred[6:10], 5), "rates": vec_list(pred[10:13], 4)},
            "timing": {"late_ms": round(late * 1e3, 3), "compute_ms": round(compute * 1e3, 4),
                       "cpu_ms": round(cpu * 1e3, 4),
                       "work_ms": round(work * 1e3, 4), "miss": missed},
        }
        if trig is not None:
            rec["trigger"] = trig.kind
        self.log.write(rec)

    def _publish(self, est: Estimate, tstate: TargetState, action, pred) -> None:
        st = self.timing.summary_fast()
        fence = self.safety.fence
        self.control.publish(Snapshot(
            t=est.t, vt=est.vt, phase=self.phase, dry_run=self.dry_run, armed=est.armed, mode=est.mode,
            position=tuple(float(x) for x in est.position), velocity=tuple(float(x) for x in est.velocity),
            quaternion=tuple(float(x) for x in est.quaternion), euler_deg=euler_deg(est.quaternion),
            rates=tuple(float(x) for x in est.rates),
            predicted_position=None if pred is None else tuple(float(x) for x in pred[0:3]),
            task=tstate.task, target=tuple(float(x) for x in tstate.position), target_label=tstate.label,
            distance_to_target=float(np.linalg.norm(est.position - tstate.position)),
            battery_voltage=est.battery_voltage, battery_remaining=est.battery_remaining,
            link_ok=not est.stale_link, telemetry_age_s=est.age(), loop_rate_hz=st["rate_hz"],
            compute_p99_ms=st["compute_p99_ms"], deadline_misses=st["misses"],
            triggers=tuple(t.as_dict() for t in self.triggers),
            action=None if action is None else tuple(float(x) for x in action), fence=fence.as_dict()))
