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
"""
from __future__ import annotations

import collections
import dataclasses
import math
import time

import numpy as np

import drone_sim
from drone_sim.config import NOMINAL_DRONE

from .. import frames
from ..modes import Firmware, canonical_name, mode_number
from ..thrust import GUID_OPTIONS_THRUST_AS_THRUST, thrust_field_to_climb_rate
from .params import ParamTable

G = drone_sim.GRAVITY
LAND_DETECTOR_TRIGGER_S = 1.0   # ArduCopter config.h LAND_DETECTOR_TRIGGER_SEC

BEHAVIOUR = {
    "STABILIZE": "manual", "ALT_HOLD": "althold", "GUIDED": "guided", "GUIDED_NOGPS": "nogps",
    "LOITER": "hold", "BRAKE": "hold", "POSHOLD": "hold", "LAND": "land",
    "MANUAL": "manual", "STABILIZED": "manual", "ALTCTL": "althold", "POSCTL": "hold", "AUTO.LOITER": "hold",
    "AUTO.LAND": "land", "AUTO.TAKEOFF": "takeoff", "OFFBOARD": "offboard", "RTL": "rtl", "AUTO.RTL": "rtl",
    "AUTO": "auto", "AUTO.MISSION": "auto",
}
ARMABLE = {"manual", "althold", "guided", "nogps", "hold", "offboard", "takeoff"}
RTL_CONE_SLOPE, RTL_ABS_MIN_CLIMB = 3.0, 2.5   # ArduCopter mode_rtl.cpp compute_return_target (RTL_CONE_SLOPE default)
HOLD_MODE = {Firmware.ARDUPILOT: "BRAKE", Firmware.PX4: "AUTO.LOITER"}
RTL_MODE = {Firmware.ARDUPILOT: "RTL", Firmware.PX4: "AUTO.RTL"}
# FS_GCS_ENABLE: 1 RTL, 2 RTL (continue a mission: none here), 3 SmartRTL or RTL, 4 SmartRTL or land, 5 land,
# 6 DO_LAND_START or RTL, 7 brake or land. The simulator records no SmartRTL path and has no mission landing
# sequence, so those take the firmware's own fallbacks.
ARDUPILOT_GCS_ACTIONS = {1: "rtl", 2: "rtl", 3: "rtl", 4: "land", 5: "land", 6: "rtl", 7: "brake"}
# NAV_DLL_ACT: 1 hold, 2 return, 3 land, 5 terminate, 6 lockdown (both stop the motors)
PX4_GCS_ACTIONS = {1: "hold", 2: "rtl", 3: "land", 5: "disarm", 6: "disarm"}
# COM_OBL_RC_ACT: 0 position, 1 altitude, 2 manual (stick modes: with no sticks, COM_RC_IN_MODE 4, a hold),
# 3 return, 4 land, 5 hold, 6 terminate, 7 disarm
OFFBOARD_LOSS_ACTIONS = {0: "hold", 1: "hold", 2: "hold", 3: "rtl", 4: "land", 5: "hold", 6: "disarm", 7: "disarm"}
LAND_MODE = {Firmware.ARDUPILOT: "LAND", Firmware.PX4: "AUTO.LAND"}
BOOT_MODE = {Firmware.ARDUPILOT: "STABILIZE", Firmware.PX4: "POSCTL"}


@dataclasses.dataclass
class Setpoint:
    """One external setpoint, in the simulator's frames. thrust is normalized 0..1 collective thrust;
    climb_rate (m/s, up) replaces it under ArduPilot's default semantics."""

    kind: str                                   # rates | attitude | position | motors
    t: float                                    # sim time received
    rates_flu: np.ndarray | None = None
    q_enu: np.ndarray | None = None
    thrust: float | None = None
    climb_rate: float | None = None
    position_enu: np.ndarray | None = None
    yaw_enu: float | None = None
    motors: np.ndarray | None = None


@dataclasses.dataclass
class MissionStep:
    """One flyable mission item in the simulator's frame: takeoff (to target z), waypoint, land (at
    target xy, or where it is when target is None), rtl."""

    seq: int
    kind: str
    target: np.ndarray | None
    hold_s: float = 0.0
    radius: float = 2.0


@dataclasses.dataclass
class Result:
    ok: bool
    reason: str = ""


def _quat_conj(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


def _quat_from_rotmat(R: np.ndarray) -> np.ndarray:
    tr = R[0, 0] + R[1, 1] + R[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2]) * 2
        q = [(R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s]
    elif R[1, 1] > R[2, 2]:
        s = math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2]) * 2
        q = [(R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s]
    else:
        s = math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1]) * 2
        q = [(R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s]
    q = np.array(q)
    return q / np.linalg.norm(q)


def _yaw_of(q_enu: np.ndarray) -> float:
    R = frames.quat_to_rotmat(q_enu)
    return math.atan2(R[1, 0], R[0, 0])


class SimAutopilot:
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

    # ------------------------------------------------------------------ missions
    def set_mission(self, steps: list[MissionStep]) -> None:
        """A new mission (uploaded or cleared): flying starts over from its first step."""
        self.mission = list(steps)
        self.mission_index = 0
        self._arrived_at = None
        if self.behaviour == "auto" and not self.mission:
            self._enter(HOLD_MODE[self.firmware])

    def set_current(self, seq: int) -> bool:
        """MISSION_SET_CURRENT: jump to the step with this sequence number."""
        for i, step in enumerate(self.mission):
            if step.seq == seq:
                self.mission_index = i
                self._arrived_at = None
                return True
        return False

    def start_mission(self, first: int = 0, last: int = -1) -> Result:
        """MAV_CMD_MISSION_START: AUTO from `first` (ArduCopter also lets AUTO take off from the ground then:
        GCS_MAVLink_Copter.cpp sets auto_armed)."""
        if first > 0 and not self.set_current(first):
            return Result(False, f"no mission item {first}")
        r = self.set_mode("AUTO" if self.firmware == Firmware.ARDUPILOT else "AUTO.MISSION")
        if r.ok:
            self.mission_started = True
        return r

    def _auto_problem(self) -> str | None:
        """Why AUTO cannot start: no mission; ArduCopter landed with no takeoff first (mode_auto.cpp init)."""
        if not self.mission:
            return "Mission: no mission to fly"
        if self.firmware == Firmware.ARDUPILOT and self.armed and self.land_complete \
                and self.mission[self.mission_index].kind != "takeoff":
            return "Auto: Missing Takeoff Cmd"
        return None

    def _auto_control(self, x: np.ndarray) -> np.ndarray:
        """Fly the current step; the next when it is done; at the end, hold where the last one left it."""
        if self.mission_index >= len(self.mission):
            return self._position_control(x, self.target_pos)
        step = self.mission[self.mission_index]
        if step.kind == "takeoff":
            self.target_pos = np.array([self.target_pos[0], self.target_pos[1], step.target[2]])
            if x[2] >= step.target[2] - 0.1:
                self._step_done(step)
        elif step.kind == "waypoint":
            if np.isnan(step.target[0]):        # latitude and longitude 0: where it is (both firmwares)
                step.target[0:2] = x[0:2]
            self.target_pos = step.target.copy()
            if np.linalg.norm(x[0:3] - step.target) <= step.radius:
                self._arrived_at = self.t if self._arrived_at is None else self._arrived_at
                if self.t - self._arrived_at >= step.hold_s:
                    self._step_done(step)
        elif step.kind == "land":
            if step.target is not None and np.linalg.norm(x[0:2] - step.target[0:2]) > 0.3:
                self.target_pos = np.array([step.target[0], step.target[1], x[2]])
            else:
                self.rtl_stage = "land"
                return self._position_control(x, np.array([self.target_pos[0], self.target_pos[1], x[2]]),
                                              vz_override=-self.params.role("land_speed", 0.5))
        elif step.kind == "rtl":
            if self.rtl_stage == "idle":
                self._start_rtl(x)
            return self._rtl_control(x)
        return self._position_control(x, self.target_pos)

    def _step_done(self, step: MissionStep) -> None:
        self.reached.append(step.seq)
        self.events.append((self.t, f"mission item {step.seq} reached"))
        self.mission_index += 1
        self._arrived_at = None
        self.rtl_stage = "idle"
        if self.mission_index >= len(self.mission):
            self.say("Mission complete, holding" if self.firmware == Firmware.ARDUPILOT else "Mission finished")

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

    # ------------------------------------------------------------------ return to launch
    def _start_rtl(self, x: np.ndarray) -> None:
        """The return altitude: ArduCopter climbs to RTL_ALT, limited near home by RTL_CONE_SLOPE but at least
        RTL_ABS_MIN_CLIMB above where it is (mode_rtl.cpp compute_return_target); PX4 climbs to
        RTL_RETURN_ALT unless within RTL_MIN_DIST of home (navigator rtl). Never lower than it is."""
        alt = x[2] - self.home[2]
        dist = float(np.hypot(*(x[0:2] - self.home[0:2])))
        if self.firmware == Firmware.ARDUPILOT:
            rtl_alt = self.params.get("RTL_ALT") / 100.0
            rtl_alt = min(rtl_alt, max(dist * RTL_CONE_SLOPE, alt + RTL_ABS_MIN_CLIMB))
        else:
            rtl_alt = self.params.get("RTL_RETURN_ALT") if dist > self.params.get("RTL_MIN_DIST") else alt
        self.rtl_alt = self.home[2] + max(alt, rtl_alt)
        self.rtl_stage = "climb"
        self.target_pos = np.array([x[0], x[1], self.rtl_alt])
        self.target_yaw = _yaw_of(x[6:10])

    def _rtl_control(self, x: np.ndarray) -> np.ndarray:
        """Climb where it is, fly home at the return altitude, then descend at the land speed."""
        if self.rtl_stage == "climb" and x[2] >= self.rtl_alt - 0.2:
            self.rtl_stage = "return"
            self.target_pos = np.array([self.home[0], self.home[1], self.rtl_alt])
        if self.rtl_stage == "return" and np.linalg.norm(x[0:3] - self.target_pos) < 0.3 \
                and np.linalg.norm(x[3:6]) < 0.5:
            self.rtl_stage = "land"
        if self.rtl_stage == "land":
            return self._position_control(x, self.target_pos, vz_override=-self.params.role("land_speed", 0.5))
        return self._position_control(x, self.target_pos)

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

    # ------------------------------------------------------------------ control laws
    def _thrust_of(self, sp: Setpoint, x: np.ndarray) -> float:
        if sp.climb_rate is not None:
            return self._climb_thrust(x, sp.climb_rate)
        return float(np.clip(sp.thrust if sp.thrust is not None else self.hover, 0.0, 1.0))

    def _climb_thrust(self, x: np.ndarray, climb_rate: float) -> float:
        R = frames.quat_to_rotmat(x[6:10])
        az = 3.0 * (climb_rate - x[5])
        return float(np.clip(self.mass * (G + az) / max(R[2, 2], 0.5) / self.t_max, 0.0, 1.0))

    def _attitude_rates(self, x: np.ndarray, q_des: np.ndarray, ff: np.ndarray | None = None) -> np.ndarray:
        q = x[6:10] / np.linalg.norm(x[6:10])
        e = frames.quat_mul(_quat_conj(q), q_des)
        if e[0] < 0:
            e = -e
        rates = np.array([8.0, 8.0, 4.0]) * 2.0 * e[1:]
        if ff is not None:
            rates = rates + ff
        return np.clip(rates, -0.8 * self.max_rate, 0.8 * self.max_rate)

    def _level_q(self, x: np.ndarray) -> np.ndarray:
        yaw = _yaw_of(x[6:10])
        return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])

    def _q_from_tilt(self, x: np.ndarray, roll: float, pitch: float) -> np.ndarray:
        """Level-ish attitude at the current heading with roll (right down) and pitch (nose up) in FRD sense."""
        yaw_ned = frames.yaw_enu_to_ned(_yaw_of(x[6:10]))
        return frames.quat_ned_frd_to_enu_flu(frames.quat_from_euler(roll, pitch, yaw_ned))

    def _position_control(self, x: np.ndarray, target: np.ndarray, vz_override: float | None = None) -> np.ndarray:
        p, v = x[0:3], x[3:6]
        err = target - p
        v_des = 1.2 * err
        h = np.linalg.norm(v_des[:2])
        if h > 3.0:
            v_des[:2] *= 3.0 / h
        v_des[2] = float(np.clip(v_des[2], -self.params.role("speed_down", 1.5), self.params.role("speed_up", 2.5)))
        if vz_override is not None:
            v_des[2] = vz_override
        verr = v_des - v
        self.vel_integral = np.clip(self.vel_integral + verr * self.dt, -2.0, 2.0)
        if self.landed and vz_override is None and target[2] - p[2] < 0.1:
            self.vel_integral[:] = 0.0
        acc = 3.0 * verr + 0.8 * self.vel_integral
        tilt_max = self.params.role("angle_max_rad", math.radians(30))
        ah = np.linalg.norm(acc[:2])
        amax = G * math.tan(tilt_max)
        if ah > amax:
            acc[:2] *= amax / ah
        acc[2] = float(np.clip(acc[2], -0.7 * G, 1.5 * G))
        f = acc + np.array([0.0, 0.0, G])
        zd = f / np.linalg.norm(f)
        yaw = self.target_yaw
        xc = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        yd = np.cross(zd, xc)
        yd /= np.linalg.norm(yd)
        xd = np.cross(yd, zd)
        q_des = _quat_from_rotmat(np.column_stack([xd, yd, zd]))
        R = frames.quat_to_rotmat(x[6:10])
        thrust = self.mass * float(f @ R[:, 2]) / self.t_max
        if self.landing and self.landed:
            thrust = 0.0
        return self._ctbr(float(np.clip(thrust, 0.0, 1.0)), self._attitude_rates(x, q_des), x)

    def _ctbr(self, thrust: float, rates_flu: np.ndarray, x: np.ndarray) -> np.ndarray:
        if self.landed and thrust < 0.8 * self.hover:
            rates_flu = np.zeros(3)  # on its legs: no rate-loop wind-up against the ground
        a = np.empty(4)
        a[0] = 2.0 * float(np.clip(thrust, 0.0, 1.0)) - 1.0
        a[1:] = np.asarray(rates_flu, dtype=float) / self.max_rate
        return np.clip(a, -1.0, 1.0)

    # ------------------------------------------------------------------ bookkeeping
    def _bookkeeping(self, x: np.ndarray) -> None:
        speed = float(np.linalg.norm(x[3:6]))
        was_landed = self.landed
        self.landed = x[2] <= 0.03 and speed < 0.3
        if self.landed and not was_landed:
            self.landed_since = self.ground_since = self.t
        self._land_detector()
        if not self.landed:
            if self.takeoff_alt is not None and x[2] >= self.home[2] + 0.95 * self.takeoff_alt:
                self.takeoff_alt = None
            if self.behaviour == "takeoff" and x[2] >= self.target_pos[2] - 0.1:
                target = self.target_pos.copy()
                self._enter("AUTO.LOITER")
                self.target_pos = target  # hold the takeoff altitude, not where the climb was cut
        if self.armed and self.landed:
            delay = self.params.role("disarm_delay_s", 10.0)
            if self.landing and self.t - self.landed_since >= self.params.role("disarm_land_s", 1.0):
                self.disarm(force=True, why="landed")
            elif (not self.landing and self.takeoff_alt is None and delay > 0 and self.t - self.ground_since >= delay
                  and self.last_action[0] <= 2 * self.hover - 1 + 0.02):
                self.disarm(force=True, why="auto-disarm on the ground")
        if self.motor_test is not None and self.t >= self.motor_test[2]:
            self.motor_test = None
        # battery: momentum-theory power per motor, 50 % efficient, plus 0.5 A of avionics
        w = x[13:17]
        thrusts = self.drone["k_thrust"] * w * w
        power = float(np.sum(np.power(np.maximum(thrusts, 0.0), 1.5))) * self._power_k
        remaining = max(0.0, 1.0 - self.consumed_mah / self.capacity_mah)
        v_open = self.cells * (3.5 + 0.7 * remaining)
        self.current = 0.5 + power / max(v_open, 1.0)
        self.voltage = v_open - 0.015 * self.cells * self.current
        self.consumed_mah += self.current * self.dt / 3.6

    def _land_detector(self) -> None:
        """land_complete: cleared as soon as the vehicle is off the ground, set after it has sat on the ground
        with the throttle low for LAND_DETECTOR_TRIGGER_SEC (1 s, ArduCopter land_detector.cpp)."""
        if not self.landed:
            self.land_complete = False
            self._ground_low_since = None
            return
        if self.land_complete:
            return
        if self.last_action[0] > 2.0 * self.hover - 1.0:   # throttle not at its lower limit
            self._ground_low_since = None
            return
        if self._ground_low_since is None:
            self._ground_low_since = self.t
        if self.t - self._ground_low_since >= LAND_DETECTOR_TRIGGER_S:
            self.land_complete = True

    @property
    def battery_remaining(self) -> float:
        return max(0.0, 1.0 - self.consumed_mah / self.capacity_mah)

    @property
    def landed_state(self) -> int:
        """MAV_LANDED_STATE: 1 on ground, 2 in air, 3 takeoff, 4 landing (ArduCopter: from land_complete,
        GCS_MAVLink_Copter.cpp landed_state)."""
        if self.land_complete if self.firmware == Firmware.ARDUPILOT else self.landed:
            return 1
        if self.landing:
            return 4
        if self.behaviour == "takeoff" or self.takeoff_alt is not None:
            return 3
        return 2

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

