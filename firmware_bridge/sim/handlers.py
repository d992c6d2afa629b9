"""What the simulated vehicle does with each MAVLink message it receives: commands and their ACKs, modes,
setpoints, the parameter protocol, data-stream requests, signing setup."""
from __future__ import annotations

import logging
import math
import struct
import time

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from .. import frames, signing
from ..dialect import ProtocolVersion
from ..modes import Firmware, custom_mode_from_set_mode, mode_name
from .behaviour import RTL_MODE, MissionStep, Setpoint
from .constants import DEG_PER_M_LAT, MSG, for_me, param_text
from .mission import Item
from .params import ParamError
from .telemetry import ARDUPILOT_STREAM_GROUPS

log = logging.getLogger("firmware_bridge.sim")


class MessageHandlers:
    """Mixin of SimVehicle: one _on_<message> method per message it understands (dispatched by _handle)."""

    # ------------------------------------------------------------------ message handling
    def _handle(self, msg) -> None:
        mtype = msg.get_type()
        if mtype == "BAD_DATA":
            return
        if not for_me(msg, self.sysid, self.compid) or time.monotonic() < self._silent_until:
            return
        self.handled[mtype] += 1
        # this module's handlers, then the mission micro-service's (MISSION_* messages, sim/mission.py)
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
                alt = alt - self.home_alt if alt > self.home_alt - 100 else alt  # PX4 reads param7 as AMSL
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
        north = (lat - self.home_lat) / DEG_PER_M_LAT
        east = (lon - self.home_lon) / DEG_PER_M_LAT * math.cos(math.radians(self.home_lat))
        relative = frame in (mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT)
        up = ap.state()[2] if not math.isfinite(p[6]) else (p[6] if relative else p[6] - self.home_alt)
        target = np.array([east, north, up]) + np.array([0.0, 0.0, ap.home[2]])
        mode = "GUIDED" if self.firmware == Firmware.ARDUPILOT else "AUTO.LOITER"
        if ap.mode != mode and not ap.set_mode(mode).ok:
            return self._refused()
        ap.fly_to(target)
        return mavlink.MAV_RESULT_ACCEPTED

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
        if rates is not None and not np.isfinite(rates).all():
            raise ValueError("SET_ATTITUDE_TARGET: body rates are not finite")
        if use_att:
            q = np.asarray(msg.q, dtype=float)
            if not np.isfinite(q).all() or abs(np.linalg.norm(q) - 1.0) > 1e-2:
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
        if not np.isfinite(pos).all():
            raise ValueError("position target not finite")
        self.ap.on_setpoint(Setpoint("position", self.ap.t, position_enu=pos, yaw_enu=yaw))

    def _on_set_actuator_control_target(self, msg) -> None:
        if self.firmware != Firmware.PX4 or self.config.firmware_version >= (1, 14, 0):
            self._say_once("actuator", "SET_ACTUATOR_CONTROL_TARGET not supported")
            return
        if msg.group_mlx != 0:
            raise ValueError("only actuator control group 0 (pass-through to motors 1-4) is simulated")
        m = np.asarray(msg.controls[:4], dtype=float)
        if not np.isfinite(m).all():
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
        name = param_text(msg.param_id)
        if name in self.params:
            self._send_param(self.params.index(name))

    def _on_param_set(self, msg) -> None:
        name = param_text(msg.param_id)
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
                up = it.z if it.relative_alt else it.z - self.home_alt
                if it.x == 0 and it.y == 0:
                    target = None if kind == "land" else np.array([math.nan, math.nan, up])
                else:
                    north = (it.x * 1e-7 - self.home_lat) / DEG_PER_M_LAT
                    east = (it.y * 1e-7 - self.home_lon) / DEG_PER_M_LAT * math.cos(math.radians(self.home_lat))
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
