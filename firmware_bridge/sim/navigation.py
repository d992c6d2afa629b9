"""How the simulated autopilot flies where it is told: missions (AUTO), return to launch, and the control laws
under them (position -> attitude -> body rates, climb rate -> thrust)."""
from __future__ import annotations

import math

import numpy as np

from .. import frames
from ..modes import Firmware
from .behaviour import (HOLD_MODE, RTL_ABS_MIN_CLIMB, RTL_CONE_SLOPE, G, MissionStep, Result, Setpoint, _quat_conj,
                        _quat_from_rotmat, _yaw_of)


class Navigation:
    """Mixin of SimAutopilot: the mission and RTL behaviours and the control laws (state and parameters are the
    autopilot's)."""

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
