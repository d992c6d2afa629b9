"""`drone-sim-vehicle`: the C simulator behind a MAVLink endpoint that behaves like a flight controller.

    drone-sim-vehicle                                  # pty: prints the /dev/pts/N to open, like /dev/ttyUSB0
    drone-sim-vehicle --pty /tmp/ttySIM                # ... and keeps a symlink to it (survives --replug)
    drone-sim-vehicle --udp 127.0.0.1:14550            # send to a GCS listening on UDP 14550 (QGC default)
    drone-sim-vehicle --udpin 0.0.0.0:14551            # listen; a GCS connects with udpout:HOST:14551
    drone-sim-vehicle --tcp 0.0.0.0:5760               # listen on TCP like ArduPilot SITL
    drone-sim-vehicle --firmware px4 --drone drone_sim/data/crazyflie2.json --noise-pos 0.02 --latency-ms 20
    drone-sim-vehicle --signing-key vehicle.key        # MAVLink 2 signing: unsigned commands are dropped
    drone-sim-vehicle --lockstep                       # each setpoint advances the simulation one step
    drone-sim-vehicle --firmware-version 4.7.0         # ArduCopter 4.7's parameter names (MAV_GCS_SYSID, MAV1_*)

The vehicle speaks ArduPilot's or PX4's dialect of behaviour (heartbeat autopilot id, mode numbers,
parameter names and encoding, thrust semantics, offboard rules); sim_autopilot.py holds the flight
logic, this module the MAVLink side: message handling, command ACKs, the parameter protocol (the mission
protocol is sim_mission.py), telemetry (each firmware's boot streams, then the requested rates) with sensor
noise and latency, reboots, signing, and pacing. firmware_bridge/README.md tables what it emulates of
ArduCopter and PX4, and what it does not.

Pacing: real time (optionally `--speed` times faster), or lockstep: every SET_ATTITUDE_TARGET,
SET_ACTUATOR_CONTROL_TARGET or SET_POSITION_TARGET_LOCAL_NED advances the simulation by one control
period (`lockstep_dt`, 20 ms) and the telemetry due in it is sent before the next message is read, like
PX4 SITL's lockstep with its simulator; when no setpoint has come for `lockstep_idle_s` of wall time the
vehicle free-runs in real time, so arming, failsafes and landing still happen without a stream.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import logging
import math
import os
import signal
import struct
import sys
import threading
import time
from typing import Callable

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from . import frames, signing
from .framing import FrameParser, LineStats
from .modes import Firmware, custom_mode_from_set_mode, mode_name, mode_number
from .dialect import ProtocolVersion
from .sim_autopilot import RTL_MODE, G, MissionStep, Setpoint, SimAutopilot
from .sim_mission import Item, MissionService
from .sim_params import ParamError, ParamTable
from .transport import (LinkDownError, PtyTransport, TcpServerTransport, Transport, UdpTransport, _host_port)

log = logging.getLogger("firmware_bridge.sim_vehicle")

MSG = {name[len("MAVLINK_MSG_ID_"):]: getattr(mavlink, name)
       for name in dir(mavlink) if name.startswith("MAVLINK_MSG_ID_")}
HOME_LAT, HOME_LON, HOME_ALT = 47.397742, 8.545594, 488.0   # where PX4 SITL puts its home, for GCS maps
REBOOT_S = 1.5   # a flight controller's silence while it reboots
_DEG_PER_M_LAT = 1.0 / 111_319.5


@dataclasses.dataclass
class SensorNoise:
    """1-sigma white noise added to what the vehicle reports (the flight controller flies the truth)."""

    position: float = 0.0      # m
    velocity: float = 0.0      # m/s
    attitude: float = 0.0      # rad (a random small rotation)
    gyro: float = 0.0          # rad/s
    accel: float = 0.0         # m/s^2


@dataclasses.dataclass
class VehicleConfig:
    firmware: Firmware | str = Firmware.ARDUPILOT
    system_id: int = 1
    component_id: int = 1
    drone: dict | str | os.PathLike | None = None     # a drone params JSON (schema drone-params/1) or flat dict
    physics_hz: float = 500.0
    loop_hz: float = 100.0
    noise: SensorNoise = dataclasses.field(default_factory=SensorNoise)
    command_latency_s: float = 0.0
    telemetry_latency_s: float = 0.0
    signing_key: bytes | str | os.PathLike | None = None
    lockstep: bool = False
    lockstep_dt: float = 0.02
    lockstep_idle_s: float = 0.1
    speed: float = 1.0
    seed: int = 0
    heading_deg: float = 0.0
    ekf_init_s: float = 0.5
    params: dict = dataclasses.field(default_factory=dict)
    firmware_version: tuple[int, int, int] | None = None

    def __post_init__(self):
        self.firmware = Firmware(self.firmware) if not isinstance(self.firmware, Firmware) else self.firmware
        if self.firmware == Firmware.GENERIC:
            raise ValueError("the simulated vehicle is either ardupilot or px4")
        if not 1 <= self.system_id <= 255:
            raise ValueError(f"system id must be 1..255, got {self.system_id}")
        if self.speed <= 0:
            raise ValueError("speed must be > 0")
        if self.firmware_version is None:
            # ArduCopter 4.5; PX4 1.13 (the last PX4 that takes SET_ACTUATOR_CONTROL_TARGET)
            self.firmware_version = (4, 5, 0) if self.firmware == Firmware.ARDUPILOT else (1, 13, 3)


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


def _load_drone(drone) -> dict | None:
    if drone is None or isinstance(drone, dict):
        return drone
    from drone_sim.params import load_drone_params

    return load_drone_params(drone)


class SimVehicle:
    """One simulated flight controller on one transport. Drive it with run() / start(), or step()."""

    def __init__(self, transport: Transport, config: VehicleConfig | None = None):
        self.config = cfg = config or VehicleConfig()
        self.transport = transport
        self.firmware: Firmware = cfg.firmware
        self.sysid, self.compid = cfg.system_id, cfg.component_id
        self._drone = _load_drone(cfg.drone)
        self.params: ParamTable | None = None
        self.ap = self._new_autopilot()
        for name, value in cfg.params.items():
            self.params.set(name, value)
        self.rng = np.random.default_rng(cfg.seed + 1)
        self.stats = LineStats()
        self.rejected: collections.Counter = collections.Counter()    # (reason, message name) -> count
        self.handled: collections.Counter = collections.Counter()     # message name -> count
        self.mav = mavlink.MAVLink(_VehicleWriter(self), srcSystem=self.sysid, srcComponent=self.compid)
        self.parser = FrameParser(self.mav, self.stats, on_rejected=self._on_rejected)
        if cfg.signing_key is not None:
            key = cfg.signing_key
            if not isinstance(key, (bytes, bytearray)):
                key = signing.load_key(key)
            self.enable_signing(bytes(key))
        self.intervals: dict[int, float] = {}
        self.next_due: dict[int, float] = {}
        for name, hz in self.default_rates().items():
            self._set_rate(MSG[name], hz)
        self._builders: dict[int, Callable] = self._make_builders()
        self.missions = MissionService(self.mav, self.firmware, self.send, lambda text, sev: self.statustext(text, sev),
                                       self._mission_changed, lambda seq: self.ap.set_current(seq),
                                       (HOME_LAT, HOME_LON, HOME_ALT))
        self._param_queue: collections.deque = collections.deque()
        self._inbox: collections.deque = collections.deque()    # (release sim time, msg) under command latency
        self._outbox: collections.deque = collections.deque()   # (release sim time, bytes) under telemetry latency
        self._gcs: tuple[int, int] = (255, 0)
        self._said_unsupported: set[str] = set()
        self.link_enabled = True
        self._silent_until = -math.inf   # rebooting until then: nothing sent, nothing handled
        self._running = False
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._anchor = (time.monotonic(), 0.0)
        self._last_tick_wall = -math.inf
        self.steps = 0
        self._sig_ok_seen = 0

    # ------------------------------------------------------------------ signing
    def enable_signing(self, key: bytes) -> None:
        """Accept only frames signed with key (unsigned RADIO_STATUS from a SiK radio still passes)."""
        signing.enable(self.mav, key, link_id=0,
                       allow_unsigned=lambda _mav, msg_id: msg_id == mavlink.MAVLINK_MSG_ID_RADIO_STATUS)

    def _on_rejected(self, reason: str, msg_id: int, sysid: int, compid: int) -> None:
        name = mavlink.mavlink_map[msg_id].msgname if msg_id in mavlink.mavlink_map else str(msg_id)
        self.rejected[(reason, name)] += 1

    # ------------------------------------------------------------------ sending
    def _write(self, buf: bytes) -> None:
        if not self.link_enabled or time.monotonic() < self._silent_until:
            self.stats.send_dropped += 1
            return
        if self.config.telemetry_latency_s > 0:
            self._outbox.append((self.ap.t + self.config.telemetry_latency_s, buf))
            return
        self._transmit(buf)

    def _transmit(self, buf: bytes) -> None:
        try:
            ok = self.transport.write(buf)
        except LinkDownError:
            self.stats.io_errors += 1
            ok = False
        if ok:
            self.stats.bytes_sent += len(buf)
            self.stats.frames_sent += 1
        else:
            self.stats.send_dropped += 1

    def send(self, msg) -> None:
        with self._lock:
            self.mav.send(msg)

    def statustext(self, text: str, severity: int = mavlink.MAV_SEVERITY_INFO) -> None:
        self.send(self.mav.statustext_encode(severity, text[:50].encode("ascii", "replace")))

    def _ack(self, command: int, result: int) -> None:
        self.send(self.mav.command_ack_encode(command, result, 0, 0, self._gcs[0], self._gcs[1]))

    # ------------------------------------------------------------------ telemetry
    def _set_rate(self, msg_id: int, hz: float) -> None:
        if hz <= 0:
            self.intervals.pop(msg_id, None)
            self.next_due.pop(msg_id, None)
        else:
            self.intervals[msg_id] = 1.0 / hz
            self.next_due[msg_id] = self.ap.t

    def _new_autopilot(self) -> SimAutopilot:
        """The flight controller as at power-on, on this vehicle's parameters (made on the first call)."""
        cfg = self.config
        ap = SimAutopilot(self.firmware, self._drone, self.params, cfg.physics_hz, cfg.loop_hz, cfg.seed,
                          cfg.heading_deg, cfg.ekf_init_s)
        if self.params is None:
            self.params = ParamTable(self.firmware, cfg.system_id, hover_throttle=ap.hover,
                                     version=cfg.firmware_version)
            ap.params = self.params
        return ap

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
        alt = float(x[2]) + HOME_ALT
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
        lat = HOME_LAT + p[0] * _DEG_PER_M_LAT
        lon = HOME_LON + p[1] * _DEG_PER_M_LAT / math.cos(math.radians(HOME_LAT))
        hdg = int(math.degrees(frames.euler_from_quat(m["q"])[2]) % 360 * 100)
        return self.mav.global_position_int_encode(self._boot_ms(), int(lat * 1e7), int(lon * 1e7),
                                                   int((HOME_ALT - p[2]) * 1000), int(-p[2] * 1000),
                                                   int(v[0] * 100), int(v[1] * 100), int(v[2] * 100), hdg)

    def _vfr_hud(self):
        m = self._measured()
        v = m["vel"]
        gs = float(np.hypot(v[0], v[1]))
        hdg = int(math.degrees(frames.euler_from_quat(m["q"])[2]) % 360)
        thr = int(round(100 * 0.5 * (self.ap.last_action[0] + 1))) if self.ap.armed else 0
        return self.mav.vfr_hud_encode(gs, gs, hdg, thr, float(HOME_ALT - m["pos"][2]), float(-v[2]))

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
        return self.mav.home_position_encode(int(HOME_LAT * 1e7), int(HOME_LON * 1e7), int(HOME_ALT * 1000),
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

    # ------------------------------------------------------------------ stepping and pacing
    def step(self) -> None:
        """One control period of the vehicle: due commands, flight control and physics, telemetry."""
        with self._lock:
            while self._inbox and self._inbox[0][0] <= self.ap.t + 1e-9:
                self._handle(self._inbox.popleft()[1])
            self.ap.step()
            self.missions.poll()
            self.steps += 1
            self._send_due_telemetry()

    def poll(self, timeout: float) -> int:
        """Read the port once (waiting up to timeout) and handle what arrived; returns lockstep ticks taken."""
        try:
            data = self.transport.read(timeout)
        except LinkDownError:
            self.stats.io_errors += 1
            time.sleep(min(timeout, 0.01))
            return 0
        if not self.link_enabled:
            return 0
        msgs = self.parser.feed(data) if data else self.parser.flush_stalled()
        ticks = 0
        for m in msgs:
            ticks += self._receive(m)
        return ticks

    def _receive(self, msg) -> int:
        """A message off the wire: handle it now, or after the command latency. Lockstep ticks on setpoints."""
        with self._lock:
            lat = self.config.command_latency_s
            if lat > 0:
                self._inbox.append((self.ap.t + lat, msg))
            else:
                self._handle(msg)
        if self.config.lockstep and msg.get_msgId() in _SETPOINT_IDS and _for_me(msg, self.sysid, self.compid):
            for _ in range(max(1, int(round(self.config.lockstep_dt * self.config.loop_hz)))):
                self.step()
            self._last_tick_wall = time.monotonic()
            return 1
        return 0

    def run(self, duration: float | None = None) -> None:
        """The vehicle's main loop (returns after `duration` wall seconds, or when stop() is called)."""
        self._running = True
        end = math.inf if duration is None else time.monotonic() + duration
        dt = 1.0 / self.config.loop_hz
        self._reanchor()
        while self._running and time.monotonic() < end:
            if self.config.lockstep:
                if self.poll(0.005):
                    self._reanchor()
                    continue
                if time.monotonic() - self._last_tick_wall < self.config.lockstep_idle_s:
                    continue
            now = time.monotonic()
            due = self._anchor[0] + (self.ap.t + dt - self._anchor[1]) / self.config.speed
            if now >= due:
                self.step()
                if now - due > 0.25:
                    self._reanchor()  # fell behind (a loaded machine): slow down rather than burst
            else:
                self.poll(min(due - now, 0.02))

    def _reanchor(self) -> None:
        self._anchor = (time.monotonic(), self.ap.t)

    def start(self) -> "SimVehicle":
        """Run in a background thread (tests, embedding)."""
        self._thread = threading.Thread(target=self.run, name="sim-vehicle", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._running = False
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._thread = None

    def close(self) -> None:
        self.stop()
        self.transport.close()

    def wait_until(self, cond: Callable[["SimVehicle"], bool], timeout: float) -> bool:
        """Poll a condition on the vehicle (tests)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if cond(self):
                    return True
            time.sleep(0.005)
        with self._lock:
            return cond(self)

    # ------------------------------------------------------------------ message handling
    def _handle(self, msg) -> None:
        mtype = msg.get_type()
        if mtype == "BAD_DATA":
            return
        if not _for_me(msg, self.sysid, self.compid) or time.monotonic() < self._silent_until:
            return
        self.handled[mtype] += 1
        # this module's handlers, then the mission micro-service's (MISSION_* messages, sim_mission.py)
        fn = getattr(self, f"_on_{mtype.lower()}", None) or getattr(self.missions, f"on_{mtype.lower()}", None)
        if fn is not None:
            try:
                fn(msg)
            except (ValueError, ParamError) as exc:  # a bad field must not stop the vehicle
                self.rejected[("invalid", mtype)] += 1
                log.info("%s rejected: %s", mtype, exc)

    def _on_heartbeat(self, msg) -> None:
        if self.firmware == Firmware.ARDUPILOT:
            is_gcs = msg.get_srcSystem() == int(self.params.role("gcs_sysid", 255))
        else:
            is_gcs = msg.type == mavlink.MAV_TYPE_GCS
        if is_gcs:
            self._gcs = (msg.get_srcSystem(), msg.get_srcComponent())
            self.ap.gcs_heartbeat()

    def _on_command_long(self, msg) -> None:
        self._gcs = (msg.get_srcSystem(), msg.get_srcComponent())
        self._command(msg.command, [msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6,
                                    msg.param7], None)

    def _on_command_int(self, msg) -> None:
        self._gcs = (msg.get_srcSystem(), msg.get_srcComponent())
        self._command(msg.command, [msg.param1, msg.param2, msg.param3, msg.param4, msg.x, msg.y, msg.z], msg.frame)

    def _refused(self) -> int:
        """ArduPilot answers a refused command with FAILED, PX4 with DENIED."""
        return mavlink.MAV_RESULT_FAILED if self.firmware == Firmware.ARDUPILOT else mavlink.MAV_RESULT_DENIED

    def _command(self, cmd: int, p: list[float], frame: int | None) -> None:
        """A COMMAND_LONG or COMMAND_INT (frame: COMMAND_INT's, None for COMMAND_LONG; p[4], p[5] are then
        latitude and longitude in degE7)."""
        ap = self.ap
        A = mavlink.MAV_RESULT_ACCEPTED
        if cmd == mavlink.MAV_CMD_COMPONENT_ARM_DISARM:
            force = abs(p[1] - 21196) < 0.5
            r = ap.arm(force) if p[0] > 0.5 else ap.disarm(force)
            self._ack(cmd, A if r.ok else self._refused())
        elif cmd == mavlink.MAV_CMD_DO_SET_MODE:
            if not int(p[0]) & mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
                self._ack(cmd, mavlink.MAV_RESULT_UNSUPPORTED)
                return
            name = mode_name(self.firmware, custom_mode_from_set_mode(self.firmware, p[1], p[2]))
            r = ap.set_mode(name)
            self._ack(cmd, A if r.ok else self._refused())
        elif cmd == mavlink.MAV_CMD_NAV_TAKEOFF:
            alt = p[6] if math.isfinite(p[6]) else None
            if self.firmware == Firmware.PX4 and alt is not None:
                alt = alt - HOME_ALT if alt > HOME_ALT - 100 else alt  # PX4 reads param7 as AMSL
            r = ap.takeoff(alt)
            if not r.ok:
                ap.say(f"Takeoff refused: {r.reason}", 4)
            self._ack(cmd, A if r.ok else self._refused())
        elif cmd == mavlink.MAV_CMD_NAV_LAND:
            r = ap.land()
            self._ack(cmd, A if r.ok else self._refused())
        elif cmd == mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            r = ap.set_mode(RTL_MODE[self.firmware])
            self._ack(cmd, A if r.ok else self._refused())
        elif cmd == mavlink.MAV_CMD_DO_REPOSITION:
            self._ack(cmd, self._reposition(p, frame))
        elif cmd == mavlink.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN:
            # both refuse while armed (ArduPilot without its force value in param 6 / y); 1 = reboot
            if int(round(p[0])) != 1:
                self._ack(cmd, mavlink.MAV_RESULT_UNSUPPORTED)
            elif ap.armed and not (self.firmware == Firmware.ARDUPILOT and int(p[5]) == 20190226):
                self._ack(cmd, self._refused())
            else:
                self._ack(cmd, A)
                self.reboot()
        elif cmd == mavlink.MAV_CMD_REQUEST_PROTOCOL_VERSION and self.firmware == Firmware.PX4:
            self._ack(cmd, A)   # PX4 answers with PROTOCOL_VERSION; ArduPilot does not implement it
            self.send(ProtocolVersion(200, 100, 200, [0] * 8, [0] * 8))
        elif cmd == mavlink.MAV_CMD_GET_HOME_POSITION:
            self._ack(cmd, A)
            self.send(self._home_position())
        elif cmd == mavlink.MAV_CMD_MISSION_START:
            r = ap.start_mission(int(p[0]), int(p[1])) if ap.armed else None
            self._ack(cmd, A if r is not None and r.ok else self._refused())
        elif cmd == mavlink.MAV_CMD_SET_MESSAGE_INTERVAL:
            msg_id, interval = int(p[0]), p[1]
            if msg_id not in self._builders:
                self._ack(cmd, mavlink.MAV_RESULT_UNSUPPORTED)
                return
            if interval < 0:
                self._set_rate(msg_id, 0.0)
            elif interval == 0:
                name = mavlink.mavlink_map[msg_id].msgname
                self._set_rate(msg_id, self.default_rates().get(name, 0.0))
            else:
                self._set_rate(msg_id, min(1e6 / interval, self.config.loop_hz))
            self._ack(cmd, A)
        elif cmd in (mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES):
            msg_id = int(p[0]) if cmd == mavlink.MAV_CMD_REQUEST_MESSAGE else MSG["AUTOPILOT_VERSION"]
            if msg_id not in self._builders:
                self._ack(cmd, mavlink.MAV_RESULT_UNSUPPORTED)
                return
            self._ack(cmd, A)
            self.send(self._builders[msg_id]())
        elif cmd == mavlink.MAV_CMD_DO_MOTOR_TEST:
            kind = int(p[1])
            if kind == mavlink.MOTOR_TEST_THROTTLE_PERCENT:
                thr = p[2] / 100.0
            elif kind == mavlink.MOTOR_TEST_THROTTLE_PWM:
                thr = (p[2] - 1000.0) / 1000.0
            else:
                self._ack(cmd, mavlink.MAV_RESULT_UNSUPPORTED)
                return
            r = ap.start_motor_test(int(p[0]), thr, p[3], int(p[4]) if p[4] >= 1 else 1)
            if not r.ok:
                ap.say(f"Motor test refused: {r.reason}", 4)
            self._ack(cmd, A if r.ok else self._refused())
        else:
            self._ack(cmd, mavlink.MAV_RESULT_UNSUPPORTED)

    def _reposition(self, p: list[float], frame: int | None) -> int:
        """MAV_CMD_DO_REPOSITION: fly to a latitude/longitude/altitude. ArduCopter takes it in GUIDED, or
        switches to GUIDED with MAV_DO_REPOSITION_FLAGS_CHANGE_MODE (GCS_MAVLink_Copter.cpp
        handle_command_int_do_reposition); PX4 flies there in AUTO.LOITER (Hold). Altitude: relative to home
        with MAV_FRAME_GLOBAL_RELATIVE_ALT(_INT), else above mean sea level; NaN keeps the current one."""
        ap = self.ap
        lat, lon = (p[4] * 1e-7, p[5] * 1e-7) if frame is not None else (p[4], p[5])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
            return mavlink.MAV_RESULT_DENIED
        change_mode = int(p[1]) & mavlink.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE
        if self.firmware == Firmware.ARDUPILOT and ap.behaviour != "guided" and not change_mode:
            return mavlink.MAV_RESULT_DENIED
        if not ap.armed:
            return self._refused()
        north = (lat - HOME_LAT) / _DEG_PER_M_LAT
        east = (lon - HOME_LON) / _DEG_PER_M_LAT * math.cos(math.radians(HOME_LAT))
        relative = frame in (mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT)
        up = ap.state()[2] if not math.isfinite(p[6]) else (p[6] if relative else p[6] - HOME_ALT)
        target = np.array([east, north, up]) + np.array([0.0, 0.0, ap.home[2]])
        mode = "GUIDED" if self.firmware == Firmware.ARDUPILOT else "AUTO.LOITER"
        if ap.mode != mode and not ap.set_mode(mode).ok:
            return self._refused()
        ap.fly_to(target)
        return mavlink.MAV_RESULT_ACCEPTED

    def reboot(self) -> None:
        """MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN: the flight controller restarts. Silent for REBOOT_S, then it
        boots as from power-on: a new estimator, boot time from 0, the default streams (requested rates are
        forgotten), the parameters kept (they are stored)."""
        with self._lock:
            old_t = self.ap.t
            self.ap = self._new_autopilot()
            # what is already on its way out (the reboot's ACK under telemetry latency) keeps its delay
            self._outbox = collections.deque((t - old_t, buf) for t, buf in self._outbox)
            self.intervals.clear()
            self.next_due.clear()
            self._inbox.clear()
            self._silent_until = time.monotonic() + REBOOT_S / self.config.speed
            for name, hz in self.default_rates().items():
                self._set_rate(MSG[name], hz)
            self._mission_changed(mavlink.MAV_MISSION_TYPE_MISSION,
                                  self.missions.lists[mavlink.MAV_MISSION_TYPE_MISSION])   # stored, kept
            self._reanchor()

    def _on_set_mode(self, msg) -> None:
        if msg.base_mode & mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
            self.ap.set_mode(mode_name(self.firmware, msg.custom_mode))

    def _on_set_attitude_target(self, msg) -> None:
        mask = msg.type_mask
        rate_bits = mask & 0b111
        if rate_bits not in (0, 0b111):
            raise ValueError("SET_ATTITUDE_TARGET: give all three body rates or none")
        use_rates = rate_bits == 0
        use_att = not mask & mavlink.ATTITUDE_TARGET_TYPEMASK_ATTITUDE_IGNORE
        if mask & mavlink.ATTITUDE_TARGET_TYPEMASK_THROTTLE_IGNORE:
            raise ValueError("SET_ATTITUDE_TARGET without thrust is not flown (ArduPilot ignores it too)")
        thrust_field = -msg.thrust_body[2] if mask & 32 else msg.thrust
        if not math.isfinite(thrust_field):
            raise ValueError("SET_ATTITUDE_TARGET: thrust is not finite")
        ap = self.ap
        thrust = climb = None
        if ap.thrust_field_meaning() == "climb_rate":
            climb = ap.climb_rate_of(thrust_field)
        else:
            thrust = float(np.clip(thrust_field, 0.0, 1.0))
        rates = frames.frd_to_flu([msg.body_roll_rate, msg.body_pitch_rate, msg.body_yaw_rate]) if use_rates else None
        if rates is not None and not np.all(np.isfinite(rates)):
            raise ValueError("SET_ATTITUDE_TARGET: body rates are not finite")
        if use_att:
            q = np.asarray(msg.q, dtype=float)
            if not np.all(np.isfinite(q)) or abs(np.linalg.norm(q) - 1.0) > 1e-2:
                raise ValueError("SET_ATTITUDE_TARGET: attitude quaternion is not unit length")
            sp = Setpoint("attitude", ap.t, q_enu=frames.quat_ned_frd_to_enu_flu(q), rates_flu=rates, thrust=thrust,
                          climb_rate=climb)
        elif use_rates:
            sp = Setpoint("rates", ap.t, rates_flu=rates, thrust=thrust, climb_rate=climb)
        else:
            raise ValueError("SET_ATTITUDE_TARGET ignores both attitude and rates")
        ap.on_setpoint(sp)

    def _on_set_position_target_local_ned(self, msg) -> None:
        if msg.coordinate_frame != mavlink.MAV_FRAME_LOCAL_NED:
            raise ValueError("only MAV_FRAME_LOCAL_NED position targets are simulated")
        if msg.type_mask & 0b111:
            self._say_once("posvel", "Sim: only position targets supported")
            raise ValueError("only position targets are simulated")
        yaw = None if msg.type_mask & 0b10000000000 else frames.yaw_ned_to_enu(msg.yaw)
        pos = frames.ned_to_enu([msg.x, msg.y, msg.z])
        if not np.all(np.isfinite(pos)):
            raise ValueError("position target not finite")
        self.ap.on_setpoint(Setpoint("position", self.ap.t, position_enu=pos, yaw_enu=yaw))

    def _on_set_actuator_control_target(self, msg) -> None:
        if self.firmware != Firmware.PX4 or self.config.firmware_version >= (1, 14, 0):
            self._say_once("actuator", "SET_ACTUATOR_CONTROL_TARGET not supported")
            return
        if msg.group_mlx != 0:
            raise ValueError("only actuator control group 0 (pass-through to motors 1-4) is simulated")
        m = np.asarray(msg.controls[:4], dtype=float)
        if not np.all(np.isfinite(m)):
            raise ValueError("actuator controls not finite")
        self.ap.on_setpoint(Setpoint("motors", self.ap.t, motors=np.clip(m, 0.0, 1.0)))

    def _on_manual_control(self, msg) -> None:
        self.ap.set_manual(msg.y / 1000.0, -msg.x / 1000.0, msg.z / 1000.0, msg.r / 1000.0)

    def _on_param_request_list(self, msg) -> None:
        self._param_queue.extend(range(len(self.params)))

    def _on_param_request_read(self, msg) -> None:
        if msg.param_index >= 0:
            if msg.param_index < len(self.params):
                self._send_param(msg.param_index)
            return
        name = _text(msg.param_id)
        if name in self.params:
            self._send_param(self.params.index(name))

    def _on_param_set(self, msg) -> None:
        name = _text(msg.param_id)
        if name not in self.params:
            self._say_once(f"param {name}", f"Unknown parameter {name}")
            return
        p = self.params.at(self.params.index(name))
        try:
            value = self.params.set(name, self.params.from_wire(name, msg.param_value, p.ptype))
            group = next((names for param, names in ARDUPILOT_STREAM_GROUPS.values()
                          if self.params.current_name(param) == name), None)
            if self.firmware == Firmware.ARDUPILOT and group is not None:
                for m in group:   # a stream rate takes effect at once
                    self._set_rate(MSG[m], value)
        except ParamError as exc:
            self.statustext(str(exc)[:50], mavlink.MAV_SEVERITY_WARNING)
        self._send_param(self.params.index(name))  # echo the value now in force, accepted or not

    def _send_param(self, index: int) -> None:
        p = self.params.at(index)
        self.send(self.mav.param_value_encode(p.name.encode("ascii"), self.params.wire_value(p), p.ptype,
                                              len(self.params), index))

    def _mission_current(self):
        ap = self.ap
        seq = ap.mission[ap.mission_index].seq if ap.mission_index < len(ap.mission) else \
            (ap.mission[-1].seq if ap.mission else 0)
        self.missions.current = seq
        return self.mav.mission_current_encode(seq, len(self.missions.lists[mavlink.MAV_MISSION_TYPE_MISSION]))

    def _mission_changed(self, mission_type: int, items: list[Item]) -> None:
        if mission_type == mavlink.MAV_MISSION_TYPE_MISSION:
            self.ap.set_mission(self._mission_steps(items))

    def _mission_steps(self, items: list[Item]) -> list[MissionStep]:
        """Stored items as the flight controller flies them (ArduPilot's item 0 is home, not flown)."""
        kinds = {mavlink.MAV_CMD_NAV_TAKEOFF: "takeoff", mavlink.MAV_CMD_NAV_WAYPOINT: "waypoint",
                 mavlink.MAV_CMD_NAV_LAND: "land", mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH: "rtl"}
        steps = []
        for it in items:
            if self.firmware == Firmware.ARDUPILOT and it.seq == 0:
                continue
            kind = kinds[it.command]
            target = None
            if kind != "rtl":
                up = it.z if it.relative_alt else it.z - HOME_ALT
                if it.x == 0 and it.y == 0:
                    target = None if kind == "land" else np.array([math.nan, math.nan, up])
                else:
                    north = (it.x * 1e-7 - HOME_LAT) / _DEG_PER_M_LAT
                    east = (it.y * 1e-7 - HOME_LON) / _DEG_PER_M_LAT * math.cos(math.radians(HOME_LAT))
                    target = np.array([east, north, up])
                if target is not None:
                    target[2] += self.ap.home[2]
            steps.append(MissionStep(it.seq, kind, target, hold_s=max(0.0, it.param1) if kind == "waypoint" else 0.0,
                                     radius=it.param2 if kind == "waypoint" and it.param2 > 0 else 2.0))
        return steps

    def _on_request_data_stream(self, msg) -> None:
        """ArduPilot sets the group's SR0_* rate (what MAVProxy asks for on connect); PX4 does not implement
        REQUEST_DATA_STREAM (deprecated in MAVLink for SET_MESSAGE_INTERVAL) and ignores it."""
        if self.firmware != Firmware.ARDUPILOT:
            return
        groups = list(ARDUPILOT_STREAM_GROUPS) if msg.req_stream_id == mavlink.MAV_DATA_STREAM_ALL \
            else [msg.req_stream_id]
        for g in groups:
            if g in ARDUPILOT_STREAM_GROUPS:
                param, names = ARDUPILOT_STREAM_GROUPS[g]
                hz = self.params.set(self.params.current_name(param),
                                     min(msg.req_message_rate, 50) if msg.start_stop else 0)
                for name in names:
                    self._set_rate(MSG[name], hz)

    def _on_timesync(self, msg) -> None:
        if msg.tc1 == 0:
            self.send(self.mav.timesync_encode(int(self.ap.t * 1e9), msg.ts1))

    def _on_setup_signing(self, msg) -> None:
        key = bytes(msg.secret_key)
        if not any(key):
            signing.disable(self.mav)
            self.statustext("Signing disabled")
        else:
            self.enable_signing(key)
            self.mav.signing.timestamp = max(self.mav.signing.timestamp, int(msg.initial_timestamp))
            self.statustext("Signing enabled")

    def _on_file_transfer_protocol(self, msg) -> None:
        """No MAVLink FTP here: answer every request with NAK FileNotFound, so that a GCS that tries to
        download parameters by FTP first (MAVProxy, QGroundControl) falls back to PARAM_REQUEST_LIST at
        once instead of waiting for its FTP timeout (https://mavlink.io/en/services/ftp.html)."""
        p = bytes(msg.payload)
        if len(p) < 12:
            return
        seq = int.from_bytes(p[0:2], "little")
        header = struct.pack("<HBBBBBBI", (seq + 1) & 0xFFFF, p[2], 129, 1, p[3], 0, 0, 0)  # 129 = NAK
        payload = header + bytes([10]) + bytes(251 - len(header) - 1)                    # 10 = FileNotFound
        self.send(self.mav.file_transfer_protocol_encode(0, msg.get_srcSystem(), msg.get_srcComponent(),
                                                         list(payload)))

    def _say_once(self, key: str, text: str) -> None:
        if key not in self._said_unsupported:
            self._said_unsupported.add(key)
            self.statustext(text, mavlink.MAV_SEVERITY_WARNING)


_SETPOINT_IDS = frozenset({MSG["SET_ATTITUDE_TARGET"], MSG["SET_ACTUATOR_CONTROL_TARGET"],
                           MSG["SET_POSITION_TARGET_LOCAL_NED"]})


def _text(v) -> str:
    if isinstance(v, bytes):
        v = v.decode("ascii", "replace")
    return str(v).rstrip("\x00")


def _for_me(msg, sysid: int, compid: int) -> bool:
    ts = getattr(msg, "target_system", None)
    if ts is not None and ts not in (0, sysid):
        return False
    tc = getattr(msg, "target_component", None)
    if tc is not None and tc not in (0, compid, mavlink.MAV_COMP_ID_ALL):
        return False
    return True


class _VehicleWriter:
    def __init__(self, vehicle: SimVehicle):
        self.vehicle = vehicle

    def write(self, buf) -> None:
        self.vehicle._write(bytes(buf))


# ---------------------------------------------------------------------------------------------- CLI

def make_transport(args: argparse.Namespace) -> Transport:
    if args.udp:
        host, port = _host_port(args.udp, f"--udp {args.udp}")
        return UdpTransport(None, (host, port), f"udp->{args.udp}")
    if args.udpin:
        host, port = _host_port(args.udpin, f"--udpin {args.udpin}")
        return UdpTransport((host, port), None, f"udpin:{args.udpin}")
    if args.tcp:
        host, port = _host_port(args.tcp, f"--tcp {args.tcp}")
        return TcpServerTransport(host, port, f"tcpin:{args.tcp}")
    return PtyTransport(args.pty or None)


def _parse_version(text: str) -> tuple[int, int, int]:
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"version must be X.Y.Z, got {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def _parse_param(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--param expects NAME=VALUE, got {text!r}")
    try:
        return name.strip().upper(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--param {name}: {value!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="drone-sim-vehicle", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Parameters (failsafe timings, GUID_OPTIONS ...) are listed in "
                                        "firmware_bridge/README.md and can be set with --param or over MAVLink.")
    ep = ap.add_mutually_exclusive_group()
    ep.add_argument("--pty", nargs="?", const="", default=None, metavar="LINK",
                    help="serve on a pseudo-terminal (the default); optional LINK: keep a symlink to it there")
    ep.add_argument("--udp", metavar="HOST:PORT", help="send to a GCS listening there (replies come back)")
    ep.add_argument("--udpin", metavar="HOST:PORT", help="listen on UDP; reply to the last sender")
    ep.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP (one client at a time)")
    ap.add_argument("--firmware", choices=["ardupilot", "px4"], default="ardupilot")
    ap.add_argument("--firmware-version", type=_parse_version, metavar="X.Y.Z",
                    help="the version to emulate and announce (default ArduCopter 4.5.0 / PX4 1.13.3); "
                         "parameter names follow it (ArduPilot 4.7: MAV_GCS_SYSID)")
    ap.add_argument("--sysid", type=int, default=1)
    ap.add_argument("--drone", metavar="PARAMS.json", help="drone params JSON (default: the nominal 5-inch quad)")
    ap.add_argument("--physics-hz", type=float, default=500.0)
    ap.add_argument("--loop-hz", type=float, default=100.0, help="flight controller loop and fastest telemetry rate")
    ap.add_argument("--noise-pos", type=float, default=0.0, help="position noise 1-sigma (m)")
    ap.add_argument("--noise-vel", type=float, default=0.0, help="velocity noise 1-sigma (m/s)")
    ap.add_argument("--noise-att-deg", type=float, default=0.0, help="attitude noise 1-sigma (deg)")
    ap.add_argument("--noise-gyro", type=float, default=0.0, help="gyro noise 1-sigma (rad/s)")
    ap.add_argument("--noise-accel", type=float, default=0.0, help="accelerometer noise 1-sigma (m/s^2)")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="delay before a received message takes effect")
    ap.add_argument("--telemetry-latency-ms", type=float, default=0.0, help="delay of everything sent")
    ap.add_argument("--signing-key", metavar="KEYFILE", help="MAVLink 2 signing key file (see firmware_bridge.signing)")
    ap.add_argument("--lockstep", action="store_true", help="advance one control period per received setpoint")
    ap.add_argument("--lockstep-dt", type=float, default=0.02)
    ap.add_argument("--speed", type=float, default=1.0, help="real-time factor when free-running")
    ap.add_argument("--param", type=_parse_param, action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--heading-deg", type=float, default=0.0, help="initial heading, degrees from north")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--duration", type=float, default=None, help="exit after this many seconds")
    ap.add_argument("--log-level", default="WARNING")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s: %(message)s")
    try:
        cfg = VehicleConfig(
            firmware=args.firmware, system_id=args.sysid, drone=args.drone, physics_hz=args.physics_hz,
            loop_hz=args.loop_hz,
            noise=SensorNoise(args.noise_pos, args.noise_vel, math.radians(args.noise_att_deg), args.noise_gyro,
                              args.noise_accel),
            command_latency_s=args.latency_ms / 1000.0, telemetry_latency_s=args.telemetry_latency_ms / 1000.0,
            signing_key=args.signing_key, lockstep=args.lockstep, lockstep_dt=args.lockstep_dt, speed=args.speed,
            seed=args.seed, heading_deg=args.heading_deg, params=dict(args.param),
            firmware_version=args.firmware_version)
        transport = make_transport(args)
        try:
            vehicle = SimVehicle(transport, cfg)
        except BaseException:
            transport.close()
            raise
    except (ValueError, OSError, LinkDownError, signing.SigningKeyError) as exc:
        print(f"drone-sim-vehicle: error: {exc}", file=sys.stderr)
        return 2
    where = transport.path if isinstance(transport, PtyTransport) else transport.name
    hint = {PtyTransport: f"MavLink('{where}')", TcpServerTransport: f"MavLink('tcp:{args.tcp}')"}.get(type(transport))
    if hint is None:
        hint = "MavLink('udpin:0.0.0.0:PORT')" if args.udp else f"MavLink('udpout:{args.udpin}')"
    print(f"drone-sim-vehicle: {cfg.firmware.value} quadrotor, sysid {cfg.system_id}, "
          f"{'lockstep' if cfg.lockstep else f'real time x{cfg.speed:g}'}, signing "
          f"{'on' if cfg.signing_key else 'off'}", flush=True)
    print(f"serving on {where}", flush=True)
    print(f"connect with: {hint}", flush=True)
    stop = threading.Event()

    def _stop(*_):
        vehicle._running = False
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        vehicle.run(args.duration)
    finally:
        vehicle.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
