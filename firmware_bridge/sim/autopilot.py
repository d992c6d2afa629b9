"""The flight controller inside the simulated vehicle: modes, arming, failsafes, and its control loops.

No MAVLink here: sim/vehicle.py turns messages into calls on SimAutopilot and its state into telemetry.
The physics is the project's C simulator (drone_sim), used twice: a ctbr env whose built-in PID rate loop
and mixer are the "flight controller's rate loop" (SET_ATTITUDE_TARGET rate setpoints go straight into
it, as on real firmware), and an rpm env for direct motor commands (SET_ACTUATOR_CONTROL_TARGET) and
motor tests. The two share the drone; switching copies the physical state across.

Above the rate loop this module adds what a firmware adds: an attitude loop (quaternion error -> body
rates), a cascaded position/velocity loop, a climb-rate loop (ArduPilot's default meaning of thrust),
landing, takeoff, arming checks and failsafes. Everything is computed in the simulator's ENU/FLU frames
on the true state (the vehicle layer adds sensor noise to what it reports).

Mode behaviours (the name is the firmware's; the behaviour is shared):
  manual    ArduPilot STABILIZE, PX4 MANUAL/STABILIZED: level, or MANUAL_CONTROL sticks; throttle stick
  althold   ArduPilot ALT_HOLD, PX4 ALTCTL: level, climb rate from the throttle stick
  hold      ArduPilot BRAKE/LOITER/POSHOLD, PX4 POSCTL/AUTO.LOITER: hold the position where it was entered
  guided    ArduPilot GUIDED: position target (takeoff, SET_POSITION_TARGET_LOCAL_NED) or attitude/rate setpoints
  nogps     ArduPilot GUIDED_NOGPS: attitude/rate setpoints only
  offboard  PX4 OFFBOARD: any setpoint; needs the stream before the switch; leaves on stream loss
  takeoff   PX4 AUTO.TAKEOFF: climb to MIS_TAKEOFF_ALT, then AUTO.LOITER
  land      ArduPilot LAND, PX4 AUTO.LAND: descend at the land speed, disarm after touchdown
  rtl       ArduPilot RTL, PX4 AUTO.RTL: climb to the return altitude, fly home, land
  auto      ArduPilot AUTO, PX4 AUTO.MISSION: fly the uploaded mission (takeoff, waypoint, land, rtl)

Failsafes (timings from the parameters, see sim/params.py ROLES):
  GCS heartbeat lost for gcs_timeout_s while armed -> FS_GCS_ENABLE / NAV_DLL_ACT's action (RTL, land,
      brake or hold, disarm; on the ground: disarm at once)
  PX4 offboard setpoints lost for COM_OF_LOSS_T -> COM_OBL_RC_ACT's action
  ArduPilot GUIDED attitude targets lost for GUID_TIMEOUT -> level, hold altitude, stay in GUIDED
The GCS timeout is measured in wall-clock time (it is about the radio link, and the GCS heartbeat runs
on the wall clock even when the simulation runs faster); all flight timings are simulated time.

Modules: this one (SimAutopilot: arming, modes, setpoints, the loop and failsafes), navigation.py (missions,
RTL, the control laws), bookkeeping.py (land detector, landed state, battery), behaviour.py (the tables and
types they share).
"""
from __future__ import annotations

import collections
import math
import time

import numpy as np

import drone_sim
from drone_sim.config import NOMINAL_DRONE

from .. import frames
from ..modes import Firmware, canonical_name, mode_number
from ..thrust import GUID_OPTIONS_THRUST_AS_THRUST, thrust_field_to_climb_rate
from .behaviour import (ARDUPILOT_GCS_ACTIONS, ARMABLE, BEHAVIOUR, BOOT_MODE, HOLD_MODE, LAND_MODE,
                        OFFBOARD_LOSS_ACTIONS, PX4_GCS_ACTIONS, RTL_MODE, G, MissionStep, Result, Setpoint, _yaw_of)
from .bookkeeping import Bookkeeping
from .navigation import Navigation
from .params import ParamTable

__all__ = ["G", "MissionStep", "RTL_MODE", "Result", "Setpoint", "SimAutopilot"]


class SimAutopilot(Navigation, Bookkeeping):
    """A quadrotor flight controller around one simulated drone."""

    def __init__(self, firmware: Firmware = Firmware.ARDUPILOT, drone: dict | None = None,
                 params: ParamTable | None = None,
                 physics_hz: float = 500.0, loop_hz: float = 100.0, seed: int = 0, heading_deg: float = 0.0,
                 ekf_init_s: float = 0.5, cells: int = 4, capacity_mah: float = 1500.0):
        self.firmware = firmware
        self.drone = dict(NOMINAL_DRONE if drone is None else {**NOMINAL_DRONE, **drone})
        d = self.drone
        self.mass = d["mass"]
        self.t_max = drone_sim.max_thrust(d)
        self.hover = drone_sim.hover_thrust_fraction(d)   # normalized hover thrust
        self.max_rate = np.asarray(d["max_rate"], dtype=float)
        self.params = params or ParamTable(firmware, hover_throttle=self.hover, cells=cells, capacity_mah=capacity_mah)
        self.dt = 1.0 / loop_hz
        kw = dict(tasks="hover", num_envs=1, agents_per_env=1, dr="nominal", drone=d, physics_hz=physics_hz,
                  control_hz=loop_hz, seed=seed, auto_reset=False, arena=(500.0, 500.0, 200.0))
        self.envs = {"ctbr": drone_sim.make(action_mode="ctbr", **kw), "rpm": drone_sim.make(action_mode="rpm", **kw)}
        self.active = "rpm"
        yaw_enu = frames.yaw_ned_to_enu(math.radians(heading_deg))
        q0 = np.array([math.cos(yaw_enu / 2), 0.0, 0.0, math.sin(yaw_enu / 2)])
        x0 = np.zeros(drone_sim.STATE_SIZE, dtype=np.float32)
        x0[6:10] = q0
        for env in self.envs.values():
            env.set_state(0, x0)
        self.t = 0.0
        self.ekf_init_s = ekf_init_s
        self.home = np.zeros(3)
        self.accel_world = np.zeros(3)         # true acceleration, ENU (for the IMU)
        self.last_action = np.zeros(4)

        self.armed = False
        self.mode = BOOT_MODE[firmware]
        self.landed = True
        self.landed_since = 0.0
        self.target_pos = np.zeros(3)
        self.target_yaw = yaw_enu
        self.takeoff_alt: float | None = None
        # ArduCopter's latched ap.land_complete: set by the land detector after LAND_DETECTOR_TRIGGER_SEC on the
        # ground, cleared only by a takeoff (land_detector.cpp, takeoff.cpp). Position control in GUIDED does
        # nothing while it is set (mode_guided.cpp pos_control_run: is_disarmed_or_landed ->
        # make_safe_ground_handling), so a position target sent before the takeoff has lifted off keeps the
        # vehicle on the ground.
        self.land_complete = True
        self._ground_low_since: float | None = None
        self.guided_sub: str | None = None      # ArduCopter GUIDED sub-mode: takeoff | pos | angle
        self.spool_from: float | None = None    # when the motors began spooling up for a takeoff (MOT_SPOOL_TIME)
        self.vel_integral = np.zeros(3)
        self.setpoint: Setpoint | None = None       # the setpoint the current mode flies
        self.last_setpoint: Setpoint | None = None  # the latest received, whatever the mode
        self.ground_since = 0.0
        self.setpoint_times: collections.deque = collections.deque(maxlen=64)
        self.manual = (0.0, 0.0, 0.0, 0.0)      # roll, pitch, throttle 0..1, yaw in [-1, 1] (MANUAL_CONTROL)
        self.motor_test: tuple[list[int], float, float] | None = None  # motors (0-based), throttle, end time
        self.failsafe: str | None = None       # "gcs" | "setpoint"
        self.rtl_alt = 0.0
        self.rtl_stage = "climb"
        self.mission: list[MissionStep] = []
        self.mission_index = 0            # the step being flown
        self.mission_started = False      # ArduCopter auto_armed: MISSION_START lets AUTO take off
        self._arrived_at: float | None = None
        self.reached: collections.deque = collections.deque()   # mission seqs completed, for MISSION_ITEM_REACHED
        self.gcs_seen = False
        self.last_gcs_heartbeat = -math.inf    # wall clock (time.monotonic)
        self.messages: collections.deque = collections.deque(maxlen=100)  # (severity, text) for STATUSTEXT
        self.events: list[tuple[float, str]] = []                         # (sim time, what) for tests and logs
        self.cells = cells
        self.capacity_mah = capacity_mah
        self.consumed_mah = 0.0
        self.current = 0.0
        self.voltage = 4.2 * cells
        prop_r = 0.635 * d["arm"]
        self._power_k = 1.0 / math.sqrt(2 * 1.225 * math.pi * prop_r ** 2) / 0.5   # momentum theory, 50 % eff.
        self._prev_vel = np.zeros(3)

    # ------------------------------------------------------------------ state
    def state(self) -> np.ndarray:
        """(17,) ENU/FLU state of the drone: position, velocity, quaternion, body rates, motor speeds."""
        return self.envs[self.active].states()[0].astype(float)

    @property
    def behaviour(self) -> str:
        return BEHAVIOUR.get(self.mode, "hold")

    @property
    def landing(self) -> bool:
        """In a landing descent: LAND, or the last stage of a return."""
        return self.behaviour == "land" or (self.behaviour in ("rtl", "auto") and self.rtl_stage == "land")

    @property
    def ekf_ready(self) -> bool:
        return self.t >= self.ekf_init_s

    def say(self, text: str, severity: int = 6) -> None:
        """Queue a STATUSTEXT (MAV_SEVERITY: 2 critical, 4 warning, 6 info)."""
        self.messages.append((severity, text[:50]))
        self.events.append((self.t, text))

    def _prefix(self) -> str:
        return "PreArm: " if self.firmware == Firmware.ARDUPILOT else "Preflight Fail: "

    # ------------------------------------------------------------------ commands
    def arm(self, force: bool = False) -> Result:
        if self.armed:
            return Result(True)
        if not force and self.params.role("arming_check", 1.0):
            x = self.state()
            R = frames.quat_to_rotmat(x[6:10])
            tilt = math.degrees(math.acos(max(-1.0, min(1.0, R[2, 2]))))
            problems = []
            if not self.ekf_ready:
                problems.append("EKF not ready" if self.firmware == Firmware.ARDUPILOT else "ekf not ready")
            if self.motor_test is not None:
                problems.append("motor test running")
            if self.behaviour not in ARMABLE and not (self.behaviour == "auto" and self.firmware == Firmware.PX4):
                problems.append(f"mode {self.mode} not armable")
            if tilt > 25.0:
                problems.append(f"leaning {tilt:.0f} deg")
            if not self.landed:
                problems.append("not on the ground")
            cell = self.voltage / self.cells
            if cell < self.params.role("arm_volt_cell", 0.0):
                problems.append(f"battery {self.voltage:.1f} V too low")
            if self.behaviour == "offboard" and not self.setpoint_stream_ok():
                problems.append("no offboard setpoint stream")
            if problems:
                self.say(self._prefix() + problems[0], 4)
                return Result(False, "; ".join(problems))
        self.armed = True
        self.ground_since = self.t
        self.land_complete = self.landed
        self.spool_from = None
        self.vel_integral[:] = 0.0
        self.target_pos = self.state()[0:3].copy()
        self.say("Arming motors" if self.firmware == Firmware.ARDUPILOT else "Armed by external command")
        return Result(True)

    def disarm(self, force: bool = False, why: str = "") -> Result:
        if not self.armed:
            return Result(True)
        if not force and not self.landed:
            self.say("Disarm refused: in flight", 4)
            return Result(False, "vehicle is flying")
        self.armed = False
        self.failsafe = None
        self.takeoff_alt = None
        self.mission_started = False
        self.say("Disarming motors" + (f": {why}" if why else ""))
        return Result(True)

    def set_mode(self, name: str, by_gcs: bool = True) -> Result:
        canon = canonical_name(self.firmware, name)
        try:
            mode_number(self.firmware, canon)
        except ValueError as exc:
            return Result(False, str(exc))
        if canon not in BEHAVIOUR:
            self.say(f"Mode {canon} not available in simulation", 4)
            return Result(False, f"mode {canon} not simulated")
        b = BEHAVIOUR[canon]
        if b in ("guided", "hold", "takeoff", "land", "offboard", "nogps", "rtl", "auto") and not self.ekf_ready:
            self.say("Mode change failed: EKF not ready", 4)
            return Result(False, "estimator not ready")
        if b == "offboard" and not self.setpoint_stream_ok():
            self.say("Offboard refused: no setpoint stream", 4)
            return Result(False, "no offboard setpoint within COM_OF_LOSS_T before the switch")
        if b == "takeoff" and not self.armed:
            return Result(False, "takeoff needs the vehicle armed")
        if b == "auto":
            problem = self._auto_problem()
            if problem is not None:
                self.say(problem, 4)
                return Result(False, problem)
        self._enter(canon)
        return Result(True)

    def _enter(self, canon: str) -> None:
        if canon == self.mode:
            return
        x = self.state()
        self.mode = canon
        self.vel_integral[:] = 0.0
        b = BEHAVIOUR[canon]
        if b in ("hold", "guided", "land"):
            self.target_pos = x[0:3].copy()
            self.target_yaw = _yaw_of(x[6:10])
        if b == "rtl":
            self._start_rtl(x)
        if b == "auto":
            self.target_pos = x[0:3].copy()
            self.target_yaw = _yaw_of(x[6:10])
            self.rtl_stage = "idle"
            self._arrived_at = None
        # ModeGuided::init starts a velocity controller at zero velocity: a hold where it is, on the ground too
        self.guided_sub = "pos" if b in ("guided", "nogps") else None
        self.spool_from = None
        if b == "takeoff":
            self.target_pos = x[0:3].copy()
            self.target_pos[2] = self.home[2] + self.params.role("takeoff_alt", 2.5)
            self.target_yaw = _yaw_of(x[6:10])
        self.setpoint = self.last_setpoint if b == "offboard" else None
        self.events.append((self.t, f"mode {canon}"))

    def takeoff(self, altitude: float | None) -> Result:
        """NAV_TAKEOFF: ArduPilot needs GUIDED, armed, on the ground; PX4 switches to AUTO.TAKEOFF."""
        if not self.armed:
            return Result(False, "not armed")
        if self.firmware == Firmware.PX4:
            if altitude is not None and math.isfinite(altitude):
                try:
                    self.params.set("MIS_TAKEOFF_ALT", altitude - self.home[2])
                except ValueError as exc:
                    return Result(False, str(exc))
            return self.set_mode("AUTO.TAKEOFF")
        if self.behaviour != "guided":
            return Result(False, "takeoff needs GUIDED")
        if not self.land_complete:
            return Result(False, "already flying")   # Mode::do_user_takeoff refuses once land_complete is clear
        if altitude is None or not math.isfinite(altitude) or altitude <= 0:
            return Result(False, "bad altitude")
        x = self.state()
        self.target_pos = np.array([x[0], x[1], self.home[2] + altitude])
        self.takeoff_alt = altitude
        self.setpoint = None
        self.guided_sub = "takeoff"          # ModeGuided::do_user_takeoff_start
        if self.spool_from is None:          # a repeated NAV_TAKEOFF does not restart a spool-up under way
            self.spool_from = self.t
        return Result(True)

    def fly_to(self, target_enu: np.ndarray) -> None:
        """A position target for the current position-holding mode (DO_REPOSITION)."""
        self.target_pos = np.asarray(target_enu, dtype=float).copy()
        self.setpoint = None
        if self.behaviour == "guided":
            self._leave_takeoff("pos")

    def land(self) -> Result:
        return self.set_mode(LAND_MODE[self.firmware])

    def start_motor_test(self, motor: int, throttle: float, duration: float, count: int = 1) -> Result:
        """MAV_CMD_DO_MOTOR_TEST: motor 1-based; throttle 0..1; disarmed only."""
        if self.armed:
            return Result(False, "motor test needs the vehicle disarmed")
        if not 1 <= motor <= 4 or count < 1:
            return Result(False, "motor must be 1..4")
        motors = [(motor - 1 + k) % 4 for k in range(min(int(count), 4))]
        self.motor_test = (motors, float(np.clip(throttle, 0.0, 1.0)), self.t + max(0.0, duration) * len(motors))
        self._motor_test_start = self.t
        self._motor_test_each = max(0.0, duration)
        return Result(True)

    def on_setpoint(self, sp: Setpoint) -> None:
        """Any external setpoint: it feeds the stream check (proof of life) and, if the mode uses it, control."""
        if sp.kind == "motors" and self.firmware != Firmware.PX4:
            return  # ArduPilot has no SET_ACTUATOR_CONTROL_TARGET handler
        self.setpoint_times.append(sp.t)
        self.last_setpoint = sp
        b = self.behaviour
        if b == "offboard" or (b in ("guided", "nogps") and sp.kind in ("rates", "attitude")):
            self.setpoint = sp
            if b in ("guided", "nogps"):
                self._leave_takeoff("angle")
        elif b == "guided" and sp.kind == "position":
            self.setpoint = None
            self.target_pos = sp.position_enu.copy()
            if sp.yaw_enu is not None:
                self.target_yaw = sp.yaw_enu
            self._leave_takeoff("pos")

    def _leave_takeoff(self, sub: str) -> None:
        """ArduCopter: a position or attitude target in GUIDED replaces the sub-mode, the takeoff included
        (ModeGuided::set_destination -> pos_control_start; set_angle -> angle_control_start)."""
        if self.guided_sub != sub:
            self.guided_sub = sub
            if self.takeoff_alt is not None:
                self.takeoff_alt = None
                self.events.append((self.t, f"takeoff replaced by a {sub} target"))
            if self.land_complete:
                self.spool_from = None

    def setpoint_stream_ok(self) -> bool:
        """PX4's offboard signal: a setpoint younger than COM_OF_LOSS_T (1.14+ offboardCheck.cpp; 1.13
        Commander offboard_control_update, a hysteresis that falls after COM_OF_LOSS_T). One setpoint is
        enough to enter OFFBOARD or arm in it; the stream must go on to stay."""
        if not self.setpoint_times:
            return False
        return self.t - self.setpoint_times[-1] <= self.params.role("setpoint_timeout_s", 1.0)

    def gcs_heartbeat(self) -> None:
        self.last_gcs_heartbeat = time.monotonic()
        if not self.gcs_seen:
            self.gcs_seen = True
        if self.failsafe == "gcs":
            self.say("GCS failsafe cleared", 6)
            self.failsafe = None

    # ------------------------------------------------------------------ the loop
    def step(self) -> None:
        """One control period: failsafes, the mode's controller, physics, bookkeeping."""
        x = self.state()
        self._failsafes(x)
        env_name, action = self._control(x)
        if env_name != self.active:
            self.envs[env_name].set_state(0, self.envs[self.active].states()[0])
            self.active = env_name
        env = self.envs[env_name]
        env.step(action.reshape(1, 4).astype(np.float32))
        self.last_action = action
        self.t += self.dt
        x2 = self.state()
        self.accel_world = (x2[3:6] - x[3:6]) / self.dt
        self._bookkeeping(x2)

    def _failsafes(self, x: np.ndarray) -> None:
        if not self.armed:
            return
        p = self.params
        if self.failsafe is None and self.gcs_seen and p.role("gcs_failsafe", 1.0):
            if time.monotonic() - self.last_gcs_heartbeat > p.role("gcs_timeout_s", 5.0):
                self._trigger("gcs", "GCS heartbeat lost", self._gcs_action())
        # PX4 leaves OFFBOARD once no setpoint came for COM_OF_LOSS_T (offboardCheck.cpp). ArduPilot's
        # GUID_TIMEOUT is no failsafe: GUIDED levels and holds its altitude (see _control).
        if self.failsafe is None and self.behaviour == "offboard" and not self.setpoint_stream_ok():
            act = OFFBOARD_LOSS_ACTIONS.get(int(p.get("COM_OBL_RC_ACT")), "hold")
            self._trigger("setpoint", "offboard setpoints lost", act)

    def _gcs_action(self) -> str:
        """The firmware's reaction to a lost GCS: FS_GCS_ENABLE (ArduCopter events.cpp failsafe_gcs_on_event)
        or NAV_DLL_ACT (PX4)."""
        value = int(self.params.role("gcs_failsafe", 1.0))
        if self.firmware == Firmware.ARDUPILOT:
            return ARDUPILOT_GCS_ACTIONS.get(value, "rtl")   # an invalid value falls back to RTL there too
        return PX4_GCS_ACTIONS.get(value, "hold")

    def _trigger(self, kind: str, why: str, action: str) -> None:
        """A failsafe: on the ground both firmwares disarm; in the air the configured action."""
        self.failsafe = kind
        if self.landed or action == "disarm":
            self.say(f"Failsafe: {why}, disarming", 2)
            self.disarm(force=True, why="failsafe")
            return
        mode = {"hold": HOLD_MODE, "brake": HOLD_MODE, "land": LAND_MODE, "rtl": RTL_MODE}[action][self.firmware]
        self.say(f"Failsafe: {why}, {mode}", 2)
        self._enter(mode)

    def _control(self, x: np.ndarray) -> tuple[str, np.ndarray]:
        if not self.armed:
            a = -np.ones(4)
            if self.motor_test is not None:
                motors, throttle, _end = self.motor_test
                k = min(int((self.t - self._motor_test_start) / max(self._motor_test_each, 1e-9)), len(motors) - 1)
                a[motors[k]] = 2.0 * throttle - 1.0
            return "rpm", a
        b = self.behaviour
        sp = self.setpoint
        if self.firmware == Firmware.ARDUPILOT and b in ("guided", "nogps") and self.land_complete \
                and not self._lifting_off(sp):
            return "ctbr", self._ctbr(0.0, np.zeros(3), x)   # make_safe_ground_handling: ground idle
        if b == "offboard" and sp is not None and sp.kind == "motors":
            return "rpm", np.clip(2.0 * sp.motors - 1.0, -1.0, 1.0)
        if self.firmware == Firmware.ARDUPILOT and b in ("nogps", "guided") and sp is not None \
                and sp.kind in ("rates", "attitude") and self.t - sp.t > self.params.role("setpoint_timeout_s", 3.0):
            # GUID_TIMEOUT without a new target: level at the current heading, zero climb rate
            # (mode_guided.cpp angle_control_run); the mode stays GUIDED
            q = self._level_q(x)
            return "ctbr", self._ctbr(self._climb_thrust(x, 0.0), self._attitude_rates(x, q), x)
        if b in ("offboard", "nogps", "guided") and sp is not None and sp.kind in ("rates", "attitude"):
            thrust = self._thrust_of(sp, x)
            if sp.kind == "rates":
                rates = sp.rates_flu
            else:
                rates = self._attitude_rates(x, sp.q_enu, sp.rates_flu)
            return "ctbr", self._ctbr(thrust, rates, x)
        if b == "offboard" and sp is not None and sp.kind == "position":
            self.target_pos = sp.position_enu.copy()
            if sp.yaw_enu is not None:
                self.target_yaw = sp.yaw_enu
            return "ctbr", self._position_control(x, self.target_pos)
        if b in ("nogps",) or (b == "offboard" and sp is None):
            q = self._level_q(x)
            thrust = self._climb_thrust(x, 0.0)
            return "ctbr", self._ctbr(thrust, self._attitude_rates(x, q), x)
        if b == "manual":
            roll, pitch, thr, yaw = self.manual
            amax = self.params.role("angle_max_rad", math.radians(30))
            q = self._q_from_tilt(x, roll * amax, pitch * amax)
            rates = self._attitude_rates(x, q)
            rates[2] = yaw * self.max_rate[2] * 0.5
            return "ctbr", self._ctbr(thr, rates, x)
        if b == "althold":
            roll, pitch, thr, yaw = self.manual
            q = self._level_q(x)
            climb = (thr - 0.5) * 2.0 * self.params.role("speed_up", 2.5)
            return "ctbr", self._ctbr(self._climb_thrust(x, climb), self._attitude_rates(x, q), x)
        if b == "rtl":
            return "ctbr", self._rtl_control(x)
        if b == "auto":
            if self.firmware == Firmware.ARDUPILOT and self.land_complete and not self.mission_started:
                return "ctbr", self._ctbr(0.0, np.zeros(3), x)   # auto_armed not set: stays on the ground
            return "ctbr", self._auto_control(x)
        if b == "land":
            target = self.target_pos.copy()
            return "ctbr", self._position_control(x, target, vz_override=-self.params.role("land_speed", 0.5))
        # guided (position), hold, takeoff
        return "ctbr", self._position_control(x, self.target_pos)

    def _lifting_off(self, sp: Setpoint | None) -> bool:
        """ArduCopter GUIDED on the ground: only a takeoff, or an attitude target with positive thrust (or
        climb rate), spools the motors up (MOT_SPOOL_TIME) and then clears land_complete
        (takeoff.cpp _AutoTakeoff::run; mode_guided.cpp angle_control_run). Anything else stays on the ground."""
        if self.guided_sub == "takeoff":
            wants = True
        elif self.guided_sub == "angle" and sp is not None:
            wants = (sp.climb_rate if sp.climb_rate is not None else (sp.thrust or 0.0)) > 0.0
        else:
            wants = False
        if not wants:
            self.spool_from = None
            return False
        if self.spool_from is None:
            self.spool_from = self.t
        if self.t - self.spool_from < self.params.role("spool_time_s", 0.5):
            return False
        self.land_complete = False
        self.events.append((self.t, "lift-off"))
        return True

    def set_manual(self, roll: float, pitch: float, throttle: float, yaw: float) -> None:
        self.manual = (float(np.clip(roll, -1, 1)), float(np.clip(pitch, -1, 1)), float(np.clip(throttle, 0, 1)),
                       float(np.clip(yaw, -1, 1)))

    def thrust_field_meaning(self) -> str:
        options = int(self.params.get("GUID_OPTIONS")) if self.firmware == Firmware.ARDUPILOT else 0
        if self.firmware == Firmware.ARDUPILOT and not options & GUID_OPTIONS_THRUST_AS_THRUST:
            return "climb_rate"
        return "thrust"

    def climb_rate_of(self, thrust_field: float) -> float:
        return thrust_field_to_climb_rate(thrust_field, self.params.role("speed_up", 2.5),
                                          self.params.role("speed_down", 1.5))
