"""What the simulated vehicle streams: each firmware's boot streams, requested rates, and the messages built
from the autopilot's state with sensor noise."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from .. import frames
from ..modes import Firmware, mode_number
from .behaviour import G
from .constants import DEG_PER_M_LAT, MSG

# What each firmware streams from boot, before any request.
# PX4 (MAV_0_MODE Normal): mavlink_main.cpp configure_streams_to_default, the messages simulated here.
PX4_NORMAL_RATES = {
    "HEARTBEAT": 1.0, "SYS_STATUS": 1.0, "EXTENDED_SYS_STATE": 1.0, "ATTITUDE": 15.0, "BATTERY_STATUS": 0.5,
    "ESTIMATOR_STATUS": 0.5, "GLOBAL_POSITION_INT": 5.0, "HOME_POSITION": 0.5, "LOCAL_POSITION_NED": 1.0,
    "VFR_HUD": 4.0,
}
# ArduPilot: HEARTBEAT at 1 Hz, and each stream group at its SR0_* rate (GCS_MAVLink_Parameters.cpp lists the
# groups; these are the simulated messages in them). REQUEST_DATA_STREAM sets a group's rate.
ARDUPILOT_STREAM_GROUPS = {
    mavlink.MAV_DATA_STREAM_EXTENDED_STATUS: ("SR0_EXT_STAT", ["SYS_STATUS", "MISSION_CURRENT"]),
    mavlink.MAV_DATA_STREAM_POSITION: ("SR0_POSITION", ["GLOBAL_POSITION_INT", "LOCAL_POSITION_NED"]),
    mavlink.MAV_DATA_STREAM_EXTRA1: ("SR0_EXTRA1", ["ATTITUDE"]),
    mavlink.MAV_DATA_STREAM_EXTRA2: ("SR0_EXTRA2", ["VFR_HUD"]),
    mavlink.MAV_DATA_STREAM_EXTRA3: ("SR0_EXTRA3", ["BATTERY_STATUS", "EKF_STATUS_REPORT"]),
    mavlink.MAV_DATA_STREAM_RAW_SENSORS: ("SR0_RAW_SENS", []),
    mavlink.MAV_DATA_STREAM_RC_CHANNELS: ("SR0_RC_CHAN", []),
    mavlink.MAV_DATA_STREAM_RAW_CONTROLLER: ("SR0_RAW_CTRL", []),
}



class Telemetry:
    """Mixin of SimVehicle: message builders and the rates they are sent at (intervals, next_due)."""

    # ------------------------------------------------------------------ telemetry
    def _set_rate(self, msg_id: int, hz: float) -> None:
        if hz <= 0:
            self.intervals.pop(msg_id, None)
            self.next_due.pop(msg_id, None)
        else:
            self.intervals[msg_id] = 1.0 / hz
            self.next_due[msg_id] = self.ap.t

    def default_rates(self) -> dict[str, float]:
        """The messages (Hz) the firmware streams without being asked."""
        if self.firmware == Firmware.PX4:
            return dict(PX4_NORMAL_RATES)
        rates = {"HEARTBEAT": 1.0}
        for param, names in ARDUPILOT_STREAM_GROUPS.values():
            hz = self.params.get(self.params.current_name(param))
            rates.update({n: hz for n in names if hz > 0})
        return rates

    def _make_builders(self) -> dict[int, Callable]:
        return {
            MSG["HEARTBEAT"]: self._heartbeat, MSG["SYS_STATUS"]: self._sys_status,
            MSG["BATTERY_STATUS"]: self._battery_status, MSG["ATTITUDE"]: self._attitude,
            MSG["ATTITUDE_QUATERNION"]: self._attitude_quaternion, MSG["LOCAL_POSITION_NED"]: self._local_position,
            MSG["HIGHRES_IMU"]: self._highres_imu, MSG["EXTENDED_SYS_STATE"]: self._extended_sys_state,
            MSG["EKF_STATUS_REPORT"]: self._ekf_status, MSG["ESTIMATOR_STATUS"]: self._estimator_status,
            MSG["GLOBAL_POSITION_INT"]: self._global_position, MSG["VFR_HUD"]: self._vfr_hud,
            MSG["AUTOPILOT_VERSION"]: self._autopilot_version, MSG["HOME_POSITION"]: self._home_position,
            MSG["MISSION_CURRENT"]: self._mission_current,
        }

    def _measured(self) -> dict:
        """The true state with sensor noise, in MAVLink frames."""
        x = self.ap.state()
        n = self.config.noise
        pos, vel, q, rates = x[0:3].copy(), x[3:6].copy(), x[6:10].copy(), x[10:13].copy()
        if n.position:
            pos += self.rng.normal(0, n.position, 3)
        if n.velocity:
            vel += self.rng.normal(0, n.velocity, 3)
        if n.attitude:
            d = self.rng.normal(0, n.attitude, 3) * 0.5
            q = frames.quat_mul(q, np.array([1.0, d[0], d[1], d[2]]))
        if n.gyro:
            rates += self.rng.normal(0, n.gyro, 3)
        p_ned, v_ned, q_ned, w_frd = frames.state_enu_to_ned(pos, vel, q, rates)
        return {"pos": p_ned, "vel": v_ned, "q": q_ned, "rates": w_frd, "x": x}

    def _boot_ms(self) -> int:
        return int(self.ap.t * 1000) & 0xFFFFFFFF

    def _base_mode(self) -> int:
        """HEARTBEAT.base_mode as each firmware computes it. ArduCopter (GCS_MAVLink_Copter.cpp base_mode):
        STABILIZE_ENABLED and MANUAL_INPUT_ENABLED in every mode, GUIDED_ENABLED while the horizontal
        position controller runs (flying in GUIDED on position targets, LOITER/BRAKE/POSHOLD, LAND)."""
        ap = self.ap
        b = ap.behaviour
        base = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mavlink.MAV_MODE_FLAG_STABILIZE_ENABLED
        if self.firmware == Firmware.ARDUPILOT:
            base |= mavlink.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
            position_control = b in ("hold", "land") or (b == "guided" and ap.guided_sub in ("pos", "takeoff"))
            if ap.armed and not ap.land_complete and position_control:
                base |= mavlink.MAV_MODE_FLAG_GUIDED_ENABLED
            return base
        if b in ("guided", "nogps", "offboard", "hold", "land", "takeoff"):
            base |= mavlink.MAV_MODE_FLAG_GUIDED_ENABLED
        if b in ("manual", "althold"):
            base |= mavlink.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
        return base

    def _heartbeat(self):
        ap = self.ap
        base = self._base_mode()
        if ap.armed:
            base |= mavlink.MAV_MODE_FLAG_SAFETY_ARMED
        if not ap.ekf_ready:
            status = mavlink.MAV_STATE_BOOT
        elif ap.failsafe is not None:
            status = mavlink.MAV_STATE_CRITICAL
        else:
            status = mavlink.MAV_STATE_ACTIVE if ap.armed else mavlink.MAV_STATE_STANDBY
        return self.mav.heartbeat_encode(mavlink.MAV_TYPE_QUADROTOR, self.firmware.autopilot, base,
                                         mode_number(self.firmware, ap.mode), status)

    # every sensor the vehicle simulates, GPS included (it reports GLOBAL_POSITION_INT and an absolute position
    # in the estimator flags: a client that derives a position fix from SYS_STATUS must see one)
    _SENSORS = (mavlink.MAV_SYS_STATUS_SENSOR_3D_GYRO | mavlink.MAV_SYS_STATUS_SENSOR_3D_ACCEL
                | mavlink.MAV_SYS_STATUS_SENSOR_3D_MAG | mavlink.MAV_SYS_STATUS_SENSOR_ABSOLUTE_PRESSURE
                | mavlink.MAV_SYS_STATUS_SENSOR_GPS
                | mavlink.MAV_SYS_STATUS_AHRS | mavlink.MAV_SYS_STATUS_SENSOR_MOTOR_OUTPUTS
                | mavlink.MAV_SYS_STATUS_SENSOR_BATTERY | mavlink.MAV_SYS_STATUS_PREARM_CHECK)

    def _sys_status(self):
        ap = self.ap
        health = self._SENSORS if ap.ekf_ready else self._SENSORS & ~(mavlink.MAV_SYS_STATUS_AHRS
                                                                     | mavlink.MAV_SYS_STATUS_PREARM_CHECK
                                                                     | mavlink.MAV_SYS_STATUS_SENSOR_GPS)
        if self.firmware == Firmware.ARDUPILOT:
            health |= mavlink.MAV_SYS_STATUS_GEOFENCE  # no fence, so not breached (as ArduPilot reports it)
        s = self.stats
        total = s.frames_ok + s.faults
        drop = int(10000 * s.faults / total) if total else 0
        return self.mav.sys_status_encode(self._SENSORS, self._SENSORS, health, 200, int(ap.voltage * 1000),
                                          int(ap.current * 100), int(round(100 * ap.battery_remaining)), drop,
                                          min(s.faults, 65535), 0, 0, 0, 0)

    def _battery_status(self):
        ap = self.ap
        cell = int(ap.voltage / ap.cells * 1000)
        volts = [cell] * ap.cells + [65535] * (10 - ap.cells)
        return self.mav.battery_status_encode(0, mavlink.MAV_BATTERY_FUNCTION_ALL, mavlink.MAV_BATTERY_TYPE_LIPO,
                                              32767, volts, int(ap.current * 100), int(ap.consumed_mah), -1,
                                              int(round(100 * ap.battery_remaining)))

    def _attitude(self):
        m = self._measured()
        r, p, y = frames.euler_from_quat(m["q"])
        w = m["rates"]
        return self.mav.attitude_encode(self._boot_ms(), r, p, y, w[0], w[1], w[2])

    def _attitude_quaternion(self):
        m = self._measured()
        q, w = m["q"], m["rates"]
        return self.mav.attitude_quaternion_encode(self._boot_ms(), q[0], q[1], q[2], q[3], w[0], w[1], w[2])

    def _local_position(self):
        m = self._measured()
        p, v = m["pos"], m["vel"]
        return self.mav.local_position_ned_encode(self._boot_ms(), p[0], p[1], p[2], v[0], v[1], v[2])

    def _highres_imu(self):
        ap = self.ap
        x = ap.state()
        R = frames.quat_to_rotmat(x[6:10])
        f_world = ap.accel_world + np.array([0.0, 0.0, G])
        f_frd = frames.flu_to_frd(R.T @ f_world)
        w_frd = frames.flu_to_frd(x[10:13])
        n = self.config.noise
        if n.accel:
            f_frd = f_frd + self.rng.normal(0, n.accel, 3)
        if n.gyro:
            w_frd = w_frd + self.rng.normal(0, n.gyro, 3)
        mag_ned = np.array([0.21, 0.01, 0.42])  # gauss, roughly central Europe
        R_ned = frames.quat_to_rotmat(frames.quat_enu_flu_to_ned_frd(x[6:10]))
        mag = R_ned.T @ mag_ned
        alt = float(x[2]) + self.home_alt
        press = 1013.25 * (1.0 - 2.25577e-5 * alt) ** 5.25588
        return self.mav.highres_imu_encode(int(ap.t * 1e6), f_frd[0], f_frd[1], f_frd[2], w_frd[0], w_frd[1],
                                           w_frd[2], mag[0], mag[1], mag[2], press, 0.0, alt, 25.0, 0x1FFF)

    def _extended_sys_state(self):
        return self.mav.extended_sys_state_encode(mavlink.MAV_VTOL_STATE_UNDEFINED, self.ap.landed_state)

    def _ekf_status(self):
        if self.ap.ekf_ready:
            flags = (mavlink.EKF_ATTITUDE | mavlink.EKF_VELOCITY_HORIZ | mavlink.EKF_VELOCITY_VERT
                     | mavlink.EKF_POS_HORIZ_REL | mavlink.EKF_POS_HORIZ_ABS | mavlink.EKF_POS_VERT_ABS
                     | mavlink.EKF_PRED_POS_HORIZ_REL | mavlink.EKF_PRED_POS_HORIZ_ABS)
        else:
            flags = mavlink.EKF_UNINITIALIZED
        return self.mav.ekf_status_report_encode(flags, 0.02, 0.02, 0.02, 0.02, 0.0)

    def _estimator_status(self):
        flags = 0
        if self.ap.ekf_ready:
            flags = (mavlink.ESTIMATOR_ATTITUDE | mavlink.ESTIMATOR_VELOCITY_HORIZ | mavlink.ESTIMATOR_VELOCITY_VERT
                     | mavlink.ESTIMATOR_POS_HORIZ_REL | mavlink.ESTIMATOR_POS_HORIZ_ABS
                     | mavlink.ESTIMATOR_POS_VERT_ABS | mavlink.ESTIMATOR_PRED_POS_HORIZ_REL
                     | mavlink.ESTIMATOR_PRED_POS_HORIZ_ABS)
        return self.mav.estimator_status_encode(int(self.ap.t * 1e6), flags, 0.1, 0.1, 0.1, 0.1, 0.0, 0.0, 0.05, 0.05)

    def _global_position(self):
        m = self._measured()
        p, v = m["pos"], m["vel"]
        lat = self.home_lat + p[0] * DEG_PER_M_LAT
        lon = self.home_lon + p[1] * DEG_PER_M_LAT / math.cos(math.radians(self.home_lat))
        hdg = int(math.degrees(frames.euler_from_quat(m["q"])[2]) % 360 * 100)
        return self.mav.global_position_int_encode(self._boot_ms(), int(lat * 1e7), int(lon * 1e7),
                                                   int((self.home_alt - p[2]) * 1000), int(-p[2] * 1000),
                                                   int(v[0] * 100), int(v[1] * 100), int(v[2] * 100), hdg)

    def _vfr_hud(self):
        m = self._measured()
        v = m["vel"]
        gs = float(np.hypot(v[0], v[1]))
        hdg = int(math.degrees(frames.euler_from_quat(m["q"])[2]) % 360)
        thr = int(round(100 * 0.5 * (self.ap.last_action[0] + 1))) if self.ap.armed else 0
        return self.mav.vfr_hud_encode(gs, gs, hdg, thr, float(self.home_alt - m["pos"][2]), float(-v[2]))

    def _autopilot_version(self):
        caps = (mavlink.MAV_PROTOCOL_CAPABILITY_MAVLINK2 | mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_FLOAT
                | mavlink.MAV_PROTOCOL_CAPABILITY_SET_ATTITUDE_TARGET | mavlink.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
                | mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_INT
                | mavlink.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_LOCAL_NED)
        caps |= (mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE if self.firmware == Firmware.PX4
                 else mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_C_CAST)
        major, minor, patch = self.config.firmware_version
        version = major << 24 | minor << 16 | patch << 8 | mavlink.FIRMWARE_VERSION_TYPE_OFFICIAL
        return self.mav.autopilot_version_encode(caps, version, 0, 0, 0, [0] * 8, [0] * 8, [0] * 8, 0, 0,
                                                 0x5349_4D00 + self.sysid)

    def _home_position(self):
        return self.mav.home_position_encode(int(self.home_lat * 1e7), int(self.home_lon * 1e7), int(self.home_alt * 1000),
                                             0.0, 0.0, 0.0, [1.0, 0.0, 0.0, 0.0], 0.0, 0.0, 0.0)

    def _send_due_telemetry(self) -> None:
        t = self.ap.t
        for msg_id, due in list(self.next_due.items()):
            if t + 1e-9 >= due:
                interval = self.intervals[msg_id]
                # next slot on the grid, without bursts after a pause
                self.next_due[msg_id] = due + interval if t - due < interval else t + interval
                self.send(self._builders[msg_id]())
        while self.ap.messages:
            sev, text = self.ap.messages.popleft()
            self.statustext(text, sev)
        while self.ap.reached:
            self.send(self.mav.mission_item_reached_encode(self.ap.reached.popleft()))
            self.send(self._mission_current())
        for _ in range(min(len(self._param_queue), 12)):
            self._send_param(self._param_queue.popleft())
        while self._outbox and self._outbox[0][0] <= t + 1e-9:
            self._transmit(self._outbox.popleft()[1])

    def _mission_current(self):
        ap = self.ap
        seq = ap.mission[ap.mission_index].seq if ap.mission_index < len(ap.mission) else \
            (ap.mission[-1].seq if ap.mission else 0)
        self.missions.current = seq
        return self.mav.mission_current_encode(seq, len(self.missions.lists[mavlink.MAV_MISSION_TYPE_MISSION]))
