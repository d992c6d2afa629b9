"""One drone-deploy run: connect, preflight, arm, take off, fly the policy, respond to triggers, land, log.

The sequence (each step logged as a `phase` event; every tick of every phase is a `step` record):

  preflight  every reason not to fly (deploy/preflight.py); a refusal exits before anything is armed
  dry_run    --dry-run: the policy loop on the vehicle as it stands, commands logged, nothing sent or armed
  arming     ArduPilot: GUID_OPTIONS thrust bit, GUIDED, arm, NAV_TAKEOFF. PX4: a position setpoint stream
             at the takeoff point, OFFBOARD, arm
  takeoff    the firmware's takeoff (ArduPilot: nothing sent until landed_state says IN_AIR), then position
             setpoints at the takeoff point until the handover criteria hold (handover_ready)
  policy     the ONNX policy at the fixed rate: targets, missions, operator requests, all safety checks
  hold       the firmware's position hold (BRAKE / AUTO.LOITER) for hold_s, then land
  return     position setpoints to a point inside the fence, then land
  landing    the firmware's LAND; wait for touchdown and disarm
  passive    link lost or the pilot took over: send nothing, watch, and land when the link comes back
  kill       disarm at once (the operator's kill key)

Why the firmware flies takeoff, hold, return and landing: those must work when the policy does not, and
the flight controller's own position controller is the part of the system that has flown before.

Exit codes: 0 the flight ended as planned or by the operator (landed, disarmed); 1 a safety trigger
ended it (landed or disarmed); 2 refused before arming (arguments, policy, link, preflight); 3 the
vehicle was still armed when drone-deploy gave up watching (link lost for good: the firmware's failsafe is
in charge); 4 killed (disarmed by the kill key).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as mavlink

import drone_sim
from firmware_bridge import CommandError, MavLink
from firmware_bridge.modes import Firmware
from policies.onnx_policy import OnnxPolicy, OnnxPolicyError

from .command_map import CommandMapper
from .config import ConfigError, DeployConfig, default_policy_path, vec_list
from .control import FlightControl
from .drone import flown_drone
from .estimate import DelayModel, Estimate, OneStepPredictor, SimModel
from .exits import EXIT_ARMED, EXIT_OK, EXIT_REFUSED, EXIT_SAFETY
from .flightlog import FlightLog
from .loop import Commander, TickResult, TickRunner
from .observation import build_observation
from .preflight import PreflightRefused, TelemetryCounter, run_preflight, summary_of
from .responses import Responses
from .safety import SafetyMonitor, Trigger
from .targets import Course, Fence, TargetError, Targeting
from .timing import TimingStats, VehicleClock, WallClock, settle_heap

ALL_CHECKS = ("link", "state", "battery", "mode", "deadline")


class Refused(RuntimeError):
    """drone-deploy will not fly (before anything is armed); the message says why."""


def load_policy(path: str | None, threads: int = 1) -> OnnxPolicy:
    """The policy to fly, with every metadata check OnnxPolicy does (layout version and size, env);
    the action mode is checked against the firmware at preflight. Refused with the file's problem."""
    p = Path(path) if path else default_policy_path()
    try:
        policy = OnnxPolicy(p, threads=threads)
    except OnnxPolicyError as exc:
        raise Refused(f"policy refused: {exc}") from None
    if policy.discrete or policy.action_mode not in ("ctbr", "rpm") or policy.action_size != 4:
        raise Refused(f"policy refused: {p}: action mode {policy.action_mode!r} with {policy.action_size} "
                      f"outputs; drone-deploy flies ctbr or rpm policies with 4 outputs")
    return policy


class Flight(Responses):
    """One run of drone-deploy. Build it with a DeployConfig; run() returns the exit code.

    say: where human-readable lines go (the CLI prints them with rich); control: the operator handle
    (Ctrl-C, kill key, a UI) that may be used from any thread while run() is going."""

    def __init__(self, config: DeployConfig, control: FlightControl | None = None,
                 say: Callable[[str], None] = print):
        self.config = config
        self.control = control or FlightControl()
        self.say = say
        self.log: FlightLog | None = None
        self.link: MavLink | None = None
        self.stop = threading.Event()
        self.exit_code = EXIT_OK
        self.reason = ""
        self.flight_mode: str | None = None     # the mode the policy flies in (GUIDED / OFFBOARD)
        self.runner: TickRunner | None = None
        self.drone: dict | None = None           # the drone predicted with (deploy.drone.flown_drone), once loaded
        self._policy_t0: float | None = None
        self._changed_params: dict[str, float] = {}   # parameters written on the vehicle -> their old values

    # ------------------------------------------------------------------ top level
    def run(self) -> int:
        cfg = self.config
        # The link's reader thread and the log's fsync thread share the GIL with the loop. With Python's
        # default 5 ms switch interval a tick that wakes while the reader holds the GIL can wait up to 5 ms
        # before it runs; 0.5 ms bounds that wait well inside a 10 ms period (process-wide, on purpose).
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        if cfg.realtime:
            self.say(_realtime_priority())
        try:
            cfg.validate()
            self.policy = load_policy(cfg.policy, cfg.onnx_threads)
        except (ConfigError, Refused) as exc:
            self.say(f"drone-deploy: {exc}")
            return EXIT_REFUSED
        self.log = FlightLog.create(cfg.log_dir)
        self.say(f"flight log: {self.log.path}")
        try:
            return self._run_logged()
        except BaseException as exc:  # the log must say how it ended, whatever happened
            self.log.event("error", detail=f"{type(exc).__name__}: {exc}")
            self._end("crashed: " + f"{type(exc).__name__}: {exc}", EXIT_ARMED if self._armed() else EXIT_SAFETY)
            raise
        finally:
            if self.link is not None:
                self.link.close()
            self.log.close()
            self.control.mark_done()

    def _restore_params(self) -> None:
        """Put back what drone-deploy wrote on the vehicle, once it is disarmed: changing GUID_OPTIONS on an
        armed vehicle would change what the thrust field means mid-flight."""
        for name, old in list(self._changed_params.items()):
            s = self.link.state
            if s.armed or not self.link.connected:
                why = "still armed" if s.armed else "no link"
                self.log.event("param", name=name, restored=False, value=old, why=why)
                self.say(f"{name} NOT restored to {old:g} ({why}): set it back with a ground station")
                continue
            try:
                self.link.commands.set_param(name, old)
                self.log.event("param", name=name, restored=True, value=old)
                self.say(f"{name} restored to {old:g}")
                del self._changed_params[name]
            except CommandError as exc:
                self.log.event("param", name=name, restored=False, value=old, why=str(exc))
                self.say(f"{name} NOT restored to {old:g} ({exc}): set it back with a ground station")

    def _armed(self) -> bool:
        return bool(self.link is not None and self.link.state.armed)

    def _run_logged(self) -> int:
        cfg, log = self.config, self.log
        m = self.policy.metadata
        rate = float(cfg.rate_hz or self.policy.control_hz)
        try:
            self.drone = drone = flown_drone(cfg.drone, self.policy)
            hover = self.policy.hover_action
            max_rate = self.policy.max_rate if self.policy.action_mode == "ctbr" else None
        except (OSError, ValueError, OnnxPolicyError) as exc:
            return self._refuse(f"drone: {exc}")
        log.header(config=_config_dict(cfg), limits=cfg.limits.as_dict(), rate_hz=rate,
                   policy={"path": str(self.policy.path), "metadata": {k: m[k] for k in (
                       "obs_layout_version", "obs_size", "action_mode", "action_scaling", "control_hz", "tasks",
                       "training_steps", "project_version", "recurrent")}},
                   predictor_drone=drone)
        course = None
        if cfg.course:
            try:
                course = Course.from_dict(drone_sim.load_course(cfg.course))
            except (OSError, ValueError) as exc:
                return self._refuse(f"course: {exc}")
        # -- link
        self.link = link = MavLink(cfg.port, cfg.baud, signing_key=cfg.signing_key, streams=deploy_streams(rate))
        counter = TelemetryCounter()
        link.add_listener(counter)
        link.add_listener(self._on_message)
        try:
            info = link.connect(timeout=cfg.connect_timeout_s)
        except Exception as exc:  # VehicleNotFoundError, EndpointError, LinkDownError, SigningKeyError
            return self._refuse(f"link: {type(exc).__name__}: {exc}")
        log.event("vehicle", firmware=info.firmware.value, version=info.version_text, sysid=info.system_id,
                  endpoint=cfg.port)
        log.event("streams", requested=link.streams)
        # -- preflight
        self._phase("preflight")
        mapper = CommandMapper(link.commands, self.policy.action_mode, max_rate)
        model = SimModel(self.policy.action_mode, drone, float(m.get("physics_hz") or 500.0))

        def check_targets(home_local, frame) -> list[str]:
            return self._check_targets(home_local, frame, course)

        def first_action(home_local, frame):
            tg = self._make_targeting(home_local, frame, course)
            est = Estimate.from_vehicle(link.state, np.asarray(home_local, float), time.monotonic())
            obs = build_observation(est, tg.update(est.vt, est.position, est.quaternion), hover, drone)
            self.policy.reset()
            return self.policy(obs)

        try:
            pre = run_preflight(link, counter, self.policy, cfg, check_targets=check_targets,
                                first_action=first_action, hover_thrust=drone_sim.hover_thrust_fraction(drone)
                                if self.policy.action_mode == "ctbr" else None, say=self.say)
        except PreflightRefused as exc:
            log.event("preflight", ok=False, checks=summary_of(exc.checks))
            return self._refuse(str(exc))
        log.event("preflight", ok=True, checks=summary_of(pre.checks), frame=pre.frame,
                  home_local=vec_list(pre.home_local), semantics=pre.semantics, command_path=pre.command_path)
        self.home_local = pre.home_local
        fence = Fence.around((0.0, 0.0, 0.0), cfg.limits)
        targeting = self._make_targeting(pre.home_local, pre.frame, course)
        self.control.targeting = targeting
        safety = SafetyMonitor(cfg.limits, fence, pre.cells)
        clock = VehicleClock(rate, link) if cfg.lockstep else WallClock(rate)
        self.timing = TimingStats(1.0 / rate)
        delay = DelayModel(model, cfg.telemetry_latency_s, cfg.command_latency_s)
        self.runner = TickRunner(link=link, clock=clock, policy=self.policy, mapper=mapper, safety=safety,
                                 targeting=targeting, delay=delay, predictor=OneStepPredictor(model, 1.0 / rate),
                                 log=log, control=self.control, origin_local=pre.home_local, timing=self.timing,
                                 hover_action=hover, drone=drone, dry_run=cfg.dry_run, expected_mode=lambda: self.flight_mode)
        self.targeting, self.fence, self.rate = targeting, fence, rate
        if cfg.dry_run:
            return self._dry_run()
        if self.control.arm_gate:
            self._wait_for_arm()  # operator UI hook (deploy/ui/): nothing armed until its arm-and-take-off
        if self.control.land_requested or self.control.kill_requested:
            self._end("stopped by the operator before arming", EXIT_OK)
            return EXIT_OK
        if pre.guid_options_to_set is not None:
            try:
                self._changed_params["GUID_OPTIONS"] = link.commands.get_param("GUID_OPTIONS")
                link.commands.set_param("GUID_OPTIONS", pre.guid_options_to_set)
                log.event("command", what="GUID_OPTIONS", value=pre.guid_options_to_set)
                self.say(f"GUID_OPTIONS set to {pre.guid_options_to_set} (SET_ATTITUDE_TARGET thrust is thrust)")
            except CommandError as exc:
                return self._refuse(f"could not set GUID_OPTIONS: {exc}")
        return self._fly()

    # ------------------------------------------------------------------ phases
    def _dry_run(self) -> int:
        cfg = self.config
        self._phase("dry_run")
        self.say("dry run: the policy loop runs, commands are logged (not sent), the vehicle stays disarmed")
        self._start_mission()
        duration = cfg.duration_s or 10.0
        t_end = time.monotonic() + duration
        while time.monotonic() < t_end and not self.control.land_requested and not self.control.kill_requested:
            r = self._tick(Commander("policy"), ("link", "battery"))
            if r is not None and r.trigger is not None:
                self._trigger_event(r.trigger)
                self._end(f"dry run stopped by safety trigger {r.trigger.kind}", EXIT_SAFETY)
                return EXIT_SAFETY
            if self.targeting.mission_done:
                break
        self._end("dry run complete", EXIT_OK)
        return EXIT_OK

    def _fly(self) -> int:
        cfg, link, cmds = self.config, self.link, self.link.commands
        fw = link.info.firmware
        self.takeoff_local = self.home_local + np.array([0.0, 0.0, cfg.takeoff_alt_m])
        self.flight_mode = "GUIDED" if fw == Firmware.ARDUPILOT else "OFFBOARD"
        settle_heap()
        self._phase("arming")
        pos_msg = lambda: self.runner.mapper.position(self.takeoff_local)[0]  # noqa: E731
        try:
            if fw == Firmware.ARDUPILOT:
                cmds.set_mode("GUIDED")
                cmds.arm()
                self.log.event("command", what="arm")
                cmds.takeoff(cfg.takeoff_alt_m)
                self.log.event("command", what="takeoff", altitude=cfg.takeoff_alt_m)
            else:
                cmds.start_offboard(pos_msg, rate_hz=min(self.rate, 50.0), prestream_s=0.3)
                cmds.arm()
                self.log.event("command", what="arm")
        except (CommandError, RuntimeError) as exc:
            cmds.stop_setpoint_stream()
            self.log.event("error", detail=f"arming/takeoff refused: {exc}")
            self.say(f"arming/takeoff failed: {exc}")
            if link.state.armed:
                return self._land("arming sequence failed", EXIT_SAFETY)
            self._end(f"arming refused: {exc}", EXIT_REFUSED)
            return EXIT_REFUSED
        cmds.stop_setpoint_stream()
        self.say(f"armed in {self.flight_mode}; taking off to {cfg.takeoff_alt_m:g} m")
        # -- takeoff: the firmware climbs. ArduPilot: nothing is sent until it reports the takeoff complete,
        # because a position target replaces GUIDED's TakeOff sub-mode, and position control keeps a landed
        # vehicle on the ground (mode_guided.cpp pos_control_start / pos_control_run) until DISARM_DELAY
        # disarms it. PX4 climbs to the OFFBOARD position setpoint itself. Then position setpoints at the
        # takeoff point hold it (and pace a lockstep vehicle) until the handover criteria hold.
        self._phase("takeoff")
        t_end = time.monotonic() + cfg.takeoff_timeout_s
        firmware_climbing = fw == Firmware.ARDUPILOT
        settled = 0
        while True:
            cmd = Commander("none") if firmware_climbing else Commander("position", self.takeoff_local)
            r = self._tick(cmd, ("link", "state", "mode"))
            end = self._operator_or_trigger(r)
            if end is not None:
                return end
            if self._disarmed_confirmed(r.est):
                trig = Trigger("takeoff", "the vehicle disarmed itself during the takeoff (it did not lift off: "
                               "auto-disarm on the ground)", "none", time.monotonic(), r.est.vt)
                self._trigger_event(trig)
                return self._finish(trig.detail, EXIT_SAFETY)
            offset = r.est.position - (self.takeoff_local - self.home_local)
            if firmware_climbing:
                firmware_climbing = not takeoff_complete(r.est, cfg.takeoff_alt_m)
            else:
                settled = settled + 1 if handover_ready(offset, r.est.speed, cfg.handover_tolerance_m) else 0
                if settled >= max(3, int(0.2 * self.rate)):
                    break
            if time.monotonic() > t_end:
                trig = Trigger("takeoff", f"takeoff not complete within {cfg.takeoff_timeout_s:g} s (offset from "
                               f"the takeoff point: {np.linalg.norm(offset[:2]):.2f} m across, "
                               f"{offset[2]:+.2f} m up)", "land", time.monotonic(), r.est.vt)
                self._trigger_event(trig)
                return self._land(trig.detail, EXIT_SAFETY)
        # -- the policy
        self._phase("handover")
        self.runner.reset_policy_state()
        self._start_mission()
        self._phase("policy")
        self._policy_t0 = time.monotonic()
        return self._policy_phase()

    def _wait_for_arm(self) -> None:
        """Operator UI hook (control.arm_gate): after preflight, tick and send nothing until the operator
        asks to arm and take off, or lands / kills (then nothing is armed). The HUD has live telemetry
        meanwhile, and the log a row per tick."""
        c = self.control
        self._phase("idle")
        self.say("preflight passed: waiting for the operator to arm and take off")
        while not (c.arm_requested or c.land_requested or c.kill_requested):
            self._tick(Commander("none"), ())
        if c.arm_requested and not (c.land_requested or c.kill_requested):
            self.log.event("operator", what="arm", why=c.arm_requested)

    def _start_mission(self) -> None:
        cfg, tg, est = self.config, self.targeting, self.runner.last_est
        pos = None if est is None else est.position
        quat = None if est is None else est.quaternion
        vt = 0.0 if est is None else est.vt
        if not cfg.targets:
            p = tg.set_target(pos if pos is not None else (0.0, 0.0, cfg.takeoff_alt_m), "nav",
                              t=vt, label="hold position")
            if pos is not None:
                p = tg.set_target(tg.fence.return_point(p), "nav", t=vt, label="hold position")
        else:
            tg.start_mission(cfg.targets, None, cfg.hold_at_target_s, cfg.target_tolerance_m, pos, quat, vt)
        self.log.event("target", t=None, target=vec_list(tg.target, 4), frame=tg.frame,
                       mission=[list(x) for x in cfg.targets])

    def _policy_phase(self) -> int:
        cfg = self.config
        then = cfg.then or ("land" if len(cfg.targets) > 1 else "stay")
        last_version = -1
        while True:
            r = self._tick(Commander("policy"), ALL_CHECKS)
            end = self._operator_or_trigger(r)
            if end is not None:
                return end
            st = self.targeting
            tv = st.records[-1].index if st.records else -1
            if tv != last_version:
                last_version = tv
                self.log.event("target", t=None, target=vec_list(st.target, 4), index=tv)
                self.say(f"target {tv + 1}: ({st.target[0]:.2f}, {st.target[1]:.2f}, {st.target[2]:.2f})")
            if st.mission_done and then == "land":
                self.say("mission complete")
                return self._land("mission complete", EXIT_OK)
            flown = time.monotonic() - self._policy_t0
            if cfg.duration_s is not None and flown >= cfg.duration_s:
                return self._land(f"duration {cfg.duration_s:g} s reached", EXIT_OK)
            trig = self.runner.safety.check_flight_time(flown, r.est)
            if trig is not None:
                self._trigger_event(trig)
                return self._respond(trig)

    def _operator_or_trigger(self, r) -> int | None:
        """After a tick of an active phase: the operator's kill or land, or the tick's safety trigger."""
        if self.control.kill_requested:
            return self._kill(self.control.kill_requested)
        if self.control.land_requested:
            self.log.event("operator", what="land", why=self.control.land_requested)
            self.say(f"landing ({self.control.land_requested})")
            return self._land(f"operator: {self.control.land_requested}", EXIT_OK)
        if r is not None and r.trigger is not None:
            self._trigger_event(r.trigger)
            return self._respond(r.trigger)
        return None

    # ------------------------------------------------------------------ helpers
    def _tick(self, cmd: Commander, checks) -> TickResult:
        """One tick; an exception inside it becomes an `exception` safety trigger (the loop survives).

        In an active phase (takeoff, policy) the trigger ends the phase (its response: hold, then land).
        In a watching phase (hold, return, landing, passive) nothing is being commanded: the error is logged
        and the watch goes on with the last good estimate, because the firmware is already flying."""
        try:
            return self.runner.tick(cmd, self.stop, checks)
        except Exception as exc:
            self.log.event("error", detail=f"{type(exc).__name__} in the control loop: {exc}", phase=self.runner.phase)
            est = self.runner.last_est
            if est is None:  # not even one estimate yet: nothing to fly on, nothing armed by us
                raise
            trig = self.runner.safety.exception(exc, est, time.monotonic())
            self.runner.triggers.append(trig)
            if self.runner.phase in ("takeoff", "policy", "handover", "dry_run", "idle"):
                return TickResult(est, trig, None, False, False)
            time.sleep(1.0 / self.rate)
            return TickResult(est, None, None, False, False)

    def _disarmed_confirmed(self, est) -> bool:
        """The vehicle's own heartbeat, fresh, says disarmed (telemetry may be stale: the heartbeat is enough)."""
        return not est.armed and not est.stale_link and self.link.state.age("heartbeat") < 1.5

    def _command(self, fn: Callable[[], None], what: str) -> bool:
        try:
            fn()
            self.log.event("command", what=what, ok=True)
            return True
        except Exception as exc:  # CommandRejected / CommandTimeout / OffboardError: log and fall back
            self.log.event("command", what=what, ok=False, detail=f"{type(exc).__name__}: {exc}")
            self.say(f"{what} failed: {exc}")
            return False
        finally:
            if self.runner is not None:
                self.runner.clock.reset()  # the loop waited on the command: not deadline misses

    def _phase(self, name: str) -> None:
        if self.runner is not None:
            self.runner.phase = name
            self.runner.clock.reset()  # the commands before a phase block the loop: not deadline misses
        self.log.event("phase", phase=name)

    def _trigger_event(self, trig: Trigger) -> None:
        self.log.event("safety", trigger=trig.as_dict())
        self.control.note(str(trig))
        self.say(str(trig))

    def _on_message(self, msg) -> None:
        if self.log is None:
            return
        t = msg.get_type()
        if t == "STATUSTEXT":
            text = msg.text if isinstance(msg.text, str) else bytes(msg.text).decode("ascii", "replace")
            self.log.event("statustext", severity=int(msg.severity), text=text.rstrip("\x00"))
        elif t == "EVENT":
            # PX4 reports failsafes ("Failsafe activated", "Connection to ground station lost") through the
            # events protocol, not STATUSTEXT. The id names the event in PX4's event metadata, which is not
            # decoded here: the log keeps the id, its severity and raw arguments, and the mode changes show
            # what the failsafe did.
            self.log.event("px4_event", id=f"0x{msg.id:08x}", severity=msg.log_levels & 0x0F, sequence=msg.sequence,
                           time_boot_ms=msg.event_time_boot_ms, arguments=bytes(msg.arguments).rstrip(b"\0").hex())

    def _make_targeting(self, home_local, frame: str, course) -> Targeting:
        fence = Fence.around((0.0, 0.0, 0.0), self.config.limits)
        return Targeting(fence, frame, self.config.task, course, origin_local=np.asarray(home_local, dtype=float))

    def _check_targets(self, home_local, frame: str, course) -> list[str]:
        """Problems with the fence or the targets, for preflight."""
        problems = []
        try:
            tg = self._make_targeting(home_local, frame, course)
        except TargetError as exc:
            return [str(exc)]
        if frame != "relative":
            for xyz in self.config.targets:
                try:
                    tg.resolve(xyz, frame, None, None)
                except TargetError as exc:
                    problems.append(str(exc))
        else:
            for xyz in self.config.targets:  # offsets from a pose inside the fence: check their length
                d = math.hypot(xyz[0], xyz[1])
                if d > tg.fence.radius - tg.fence.margin:
                    problems.append(f"relative target {xyz} is {d:.2f} m away: longer than the fence radius")
        if course is not None and self.config.task in ("race", "obstacles"):
            for i, ring in enumerate(course.rings):  # the course is in the home frame, like absolute targets
                try:
                    tg.fence.check_target(ring["position"])
                except TargetError as exc:
                    problems.append(f"course ring {i + 1}: {exc}")
        if self.config.takeoff_alt_m > self.config.limits.max_alt_m - self.config.limits.fence_margin_m:
            problems.append(f"takeoff altitude {self.config.takeoff_alt_m:g} m is above the ceiling minus the margin")
        return problems

    def _refuse(self, why: str) -> int:
        self.say(f"drone-deploy: refused: {why}")
        self._end(f"refused: {why}", EXIT_REFUSED)
        return EXIT_REFUSED

    def _finish(self, why: str, code: int) -> int:
        s = self.link.state
        landed = "disarmed" if not s.armed else "STILL ARMED"
        self.say(f"{landed}: {why}")
        self._end(why, code)
        return code

    def _end(self, reason: str, code: int) -> None:
        self.exit_code, self.reason = code, reason
        if self.log is None:
            return
        if self.link is not None:
            self._restore_params()
        summary: dict = {"params_not_restored": dict(self._changed_params)}
        if self.runner is not None:
            summary["timing"] = self.timing.summary()
            summary["targets"] = self.targeting.summary()
            summary["triggers"] = [t.as_dict() for t in self.runner.triggers]
            summary["ticks"] = self.runner.k
        if self.link is not None:
            summary["link"] = dataclasses.asdict(self.link.stats) if dataclasses.is_dataclass(self.link.stats) \
                else str(self.link.stats)
            summary["armed_at_end"] = bool(self.link.state.armed)
        self.log.end(reason, code, json.loads(json.dumps(summary, default=str)))


def takeoff_complete(est: Estimate, takeoff_alt_m: float) -> bool:
    """The firmware says its takeoff is over: EXTENDED_SYS_STATE.landed_state IN_AIR (ArduCopter leaves
    TAKEOFF when the climb reaches the target; GCS_MAVLink_Copter.cpp landed_state). A firmware that does
    not send the landed state: 90 % of the takeoff height."""
    if est.landed_state:
        return est.landed_state == mavlink.MAV_LANDED_STATE_IN_AIR
    return est.position[2] >= 0.9 * takeoff_alt_m


def handover_ready(offset: np.ndarray, speed: float, tolerance_m: float) -> bool:
    """Whether the policy may take over from the firmware's takeoff hold. The height must be right
    (within 0.15 m: barometer and rangefinder hold that), the vehicle steady (< 0.3 m/s), and across
    within `tolerance_m` (--handover-tolerance): a GPS-grade estimate lets the firmware's own position hold
    wander 0.3-0.5 m (PX4 SITL), so the default, 0.5 m, does not wait for a precision it cannot have; the
    policy flies to its target from wherever it takes over."""
    return abs(offset[2]) < 0.15 and math.hypot(offset[0], offset[1]) < tolerance_m and speed < 0.3


def deploy_streams(rate_hz: float) -> dict[str, float]:
    """Telemetry to ask for: the link's defaults with attitude and position at the loop rate (at least
    50 Hz), and without the IMU stream, which the loop does not use (on a 57600 baud radio it would take
    the bandwidth the attitude and position need)."""
    from firmware_bridge import DEFAULT_STREAMS

    s = {k: v for k, v in DEFAULT_STREAMS.items() if k != "HIGHRES_IMU"}
    for name in ("ATTITUDE_QUATERNION", "LOCAL_POSITION_NED"):
        s[name] = max(float(s.get(name, 50.0)), float(rate_hz))
    return s


def _realtime_priority() -> str:
    """SCHED_FIFO for this process (the loop, the link's reader, the log's fsync all sleep most of the
    time, so nothing starves): other processes on the laptop can then no longer delay a tick. Needs
    CAP_SYS_NICE (root, or `setcap cap_sys_nice+ep` on the interpreter); without it, says so and flies on."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        return "real-time priority: SCHED_FIFO 10"
    except (OSError, AttributeError) as exc:
        return f"real-time priority not available ({exc}); flying at normal priority"


def _config_dict(cfg: DeployConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d.pop("limits", None)
    if d.get("signing_key"):
        d["signing_key"] = "(set)"
    return d
