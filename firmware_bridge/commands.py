"""Commands to the vehicle with acknowledgement, retries and timeouts; setpoints; parameters.

MAVLink's command protocol (https://mavlink.io/en/services/command.html): send COMMAND_LONG, wait for
COMMAND_ACK with the same command id; with no ACK, resend with `confirmation` incremented; an
IN_PROGRESS ACK extends the wait. A refusal raises CommandRejected carrying the MAV_RESULT and the
STATUSTEXT lines the vehicle sent meanwhile (ArduPilot explains a refused arm there: "PreArm: ...").
After arm, disarm and mode changes we also wait for the HEARTBEAT to show the new state, because an ACK
only says the command was accepted, not that it took effect.

Setpoints are fire-and-forget (they are streamed). Rules they follow:
- SET_ATTITUDE_TARGET type_mask bits (common.xml ATTITUDE_TARGET_TYPEMASK): 1/2/4 ignore body
  roll/pitch/yaw rate, 64 ignore thrust, 128 ignore attitude. Rate control = 128 (attitude ignored, all
  three rates used); attitude control = 7 (rates ignored).
- PX4 OFFBOARD needs a setpoint stream running (> 2 Hz) before the switch and keeps it only while the
  stream lasts (PX4 user guide "Offboard Mode"; it falls back after COM_OF_LOSS_T): set_mode("OFFBOARD")
  refuses locally when no stream is running; use start_setpoint_stream() first.
- SET_ACTUATOR_CONTROL_TARGET (direct motor commands): PX4 up to v1.13 in OFFBOARD (PX4 PR #18581 fixed
  it for v1.13; control group 0 goes through the mixer, direct motors need a pass-through mixer); removed
  in PX4 v1.14 with the legacy actuator_controls (PX4 PR #20837). ArduPilot does not implement it. See
  actuator_targets_supported().
"""
from __future__ import annotations

import logging
import math
import struct
import threading
import time
from typing import Callable, Sequence

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from .modes import Firmware, canonical_name, mode_number, set_mode_params
from .thrust import GUID_OPTIONS_THRUST_AS_THRUST, ctbr_to_setpoint, rpm_to_motor_throttle
from .vehicle_state import VehicleState

log = logging.getLogger(__name__)
# How long a refused retry waits for the telemetry to show what the first try did (EXTENDED_SYS_STATE comes
# at 2 Hz in the default streams, the heartbeat at 5 Hz)
STATE_CONFIRM_S = 1.0

FORCE_MAGIC = 21196  # MAV_CMD_COMPONENT_ARM_DISARM param2: arm/disarm regardless of checks (bench only)

TYPEMASK_RATES_ONLY = mavlink.ATTITUDE_TARGET_TYPEMASK_ATTITUDE_IGNORE
TYPEMASK_ATTITUDE_ONLY = (mavlink.ATTITUDE_TARGET_TYPEMASK_BODY_ROLL_RATE_IGNORE
                          | mavlink.ATTITUDE_TARGET_TYPEMASK_BODY_PITCH_RATE_IGNORE
                          | mavlink.ATTITUDE_TARGET_TYPEMASK_BODY_YAW_RATE_IGNORE)

def result_name(result: int | None) -> str:
    if result is None:
        return "no ACK"
    try:
        return mavlink.enums["MAV_RESULT"][result].name
    except (KeyError, AttributeError):
        return f"MAV_RESULT {result}"


def command_name(command: int) -> str:
    try:
        return mavlink.enums["MAV_CMD"][command].name
    except (KeyError, AttributeError):
        return f"MAV_CMD {command}"


class CommandError(RuntimeError):
    """A command that did not succeed; .command, .result (MAV_RESULT or None), .statustext."""

    def __init__(self, message: str, command: int, result: int | None = None, statustext: Sequence[str] = ()):
        super().__init__(message)
        self.command = command
        self.result = result
        self.statustext = list(statustext)


class CommandTimeout(CommandError):
    pass


class CommandRejected(CommandError):
    pass


class UnsupportedError(RuntimeError):
    """The connected firmware does not support what was asked (e.g. actuator targets on ArduPilot)."""


class OffboardError(RuntimeError):
    """PX4 OFFBOARD asked for without the setpoint stream it needs."""


def actuator_targets_supported(firmware: Firmware, version: tuple[int, int, int] | None) -> bool:
    """Does this firmware take SET_ACTUATOR_CONTROL_TARGET? PX4 <= 1.13 only (unknown version: assume yes
    for PX4, since the vehicle will simply ignore it if not)."""
    if firmware == Firmware.PX4:
        return version is None or version < (1, 14, 0)
    return False


class SetpointStream:
    """Sends fn()'s message at a fixed rate from its own thread (PX4 offboard's proof of life)."""

    def __init__(self, link, fn: Callable[[], object], rate_hz: float):
        if rate_hz <= 2.0:
            raise ValueError("a setpoint stream must run faster than 2 Hz (PX4 drops offboard below that)")
        self.link, self.fn, self.period = link, fn, 1.0 / rate_hz
        self._stop = threading.Event()
        self.sent = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="setpoint-stream", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                msg = self.fn()
                if msg is not None and self.link.send(msg):
                    self.sent += 1
            except Exception:
                self.errors += 1
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay < -self.period:  # fell behind (paused process): do not burst to catch up
                next_t = time.monotonic()
                delay = 0.0
            self._stop.wait(max(0.0, delay))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


class Commands:
    """Everything the laptop tells the vehicle, through one MavLink."""

    def __init__(self, link, timeout: float = 0.5, retries: int = 3):
        self.link = link
        self.timeout = timeout
        self.retries = retries
        self._param_types: dict[str, int] = {}
        self.stream: SetpointStream | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def firmware(self) -> Firmware:
        return self.link.info.firmware

    def _target(self) -> tuple[int, int]:
        info = self.link.info
        if not info.system_id:
            raise RuntimeError("no vehicle identified yet: call link.connect() first")
        return info.system_id, info.component_id or 1

    def _our_ack(self, command: int) -> Callable:
        me = self.link.source_system

        def match(m) -> bool:
            if m.command != command:
                return False
            ts = getattr(m, "target_system", 0)
            return ts in (0, me)
        return match

    # ------------------------------------------------------------------ the command protocol
    def command(self, command: int, p1: float = 0, p2: float = 0, p3: float = 0, p4: float = 0, p5: float = 0,
                p6: float = 0, p7: float = 0, *, timeout: float | None = None, retries: int | None = None,
                in_progress_timeout: float = 5.0, done: Callable[[VehicleState], bool] | None = None) -> int:
        """COMMAND_LONG with ACK, retries and timeouts; returns MAV_RESULT_ACCEPTED or raises CommandError.

        done: the state the command brings about (armed, a mode, a takeoff under way). Radios lose ACKs: when
        a retry is refused and the vehicle shows that state, the first try was carried out and only its ACK
        was lost (NAV_TAKEOFF retried after lift-off is refused "already flying"), so it counts as accepted."""
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        sysid, compid = self._target()
        t0 = time.monotonic()
        name = command_name(command)
        with self.link.expect("COMMAND_ACK", self._our_ack(command)) as acks:
            for attempt in range(retries + 1):
                msg = self.link.mav.command_long_encode(sysid, compid, command, min(attempt, 255),
                                                        p1, p2, p3, p4, p5, p6, p7)
                self.link.send(msg)
                deadline = time.monotonic() + timeout
                while True:
                    ack = acks.get(deadline - time.monotonic())
                    if ack is None:
                        break
                    if ack.result == mavlink.MAV_RESULT_IN_PROGRESS:
                        deadline = time.monotonic() + in_progress_timeout
                        continue
                    if ack.result == mavlink.MAV_RESULT_ACCEPTED:
                        return ack.result
                    if attempt > 0 and done is not None and self._wait_heartbeat(done, STATE_CONFIRM_S):
                        log.info("%s: retry refused, but the vehicle shows it done: the first ACK was lost", name)
                        return mavlink.MAV_RESULT_ACCEPTED
                    texts = self._statustext_since(t0, wait=0.1)
                    raise CommandRejected(
                        f"{name} refused by the vehicle: {result_name(ack.result)}"
                        + (f" ({'; '.join(texts)})" if texts else ""), command, ack.result, texts)
        texts = self._statustext_since(t0)
        raise CommandTimeout(f"{name}: no COMMAND_ACK after {retries + 1} tries of {timeout:g} s"
                             + ("" if self.link.connected else " (link is down)")
                             + (f" ({'; '.join(texts)})" if texts else ""), command, None, texts)

    def _statustext_since(self, t0: float, wait: float = 0.0) -> list[str]:
        if wait:
            time.sleep(wait)  # STATUSTEXT often follows the ACK by a few ms
        return [text for (t, _sev, text) in list(self.link.statustext) if t >= t0]

    def _wait_heartbeat(self, cond: Callable, timeout: float) -> bool:
        if cond(self.link.state):
            return True
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.link.wait_message("HEARTBEAT", timeout=min(0.2, max(0.0, end - time.monotonic()))) is not None \
                    and cond(self.link.state):
                return True
            if cond(self.link.state):
                return True
        return False

    # ------------------------------------------------------------------ arming and modes
    def arm(self, force: bool = False, confirm_timeout: float = 2.0) -> None:
        """Arm; force=True skips the vehicle's arming checks (bench tests only, props off)."""
        self.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1, FORCE_MAGIC if force else 0, done=lambda s: s.armed)
        if not self._wait_heartbeat(lambda s: s.armed, confirm_timeout):
            raise CommandError("arm accepted but the heartbeat does not show the vehicle armed",
                               mavlink.MAV_CMD_COMPONENT_ARM_DISARM)

    def disarm(self, force: bool = False, confirm_timeout: float = 2.0) -> None:
        """Disarm; force=True disarms even in flight (the vehicle falls)."""
        self.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0, FORCE_MAGIC if force else 0, done=lambda s: not s.armed)
        if not self._wait_heartbeat(lambda s: not s.armed, confirm_timeout):
            raise CommandError("disarm accepted but the heartbeat still shows the vehicle armed",
                               mavlink.MAV_CMD_COMPONENT_ARM_DISARM)

    def set_mode(self, name: str, require_setpoint_stream: bool = True, confirm_timeout: float = 2.0) -> None:
        """Switch flight mode by name (GUIDED, GUIDED_NOGPS, LAND, OFFBOARD, AUTO.LAND ... or HOLD)."""
        fw = self.firmware
        canon = canonical_name(fw, name)
        mode_number(fw, canon)  # raises UnknownModeError for a mode this firmware does not have
        if fw == Firmware.PX4 and canon == "OFFBOARD" and require_setpoint_stream:
            rate = self.link.setpoint_rate(1.0)
            if rate <= 2.0:
                raise OffboardError(
                    f"PX4 switches to OFFBOARD only while a setpoint stream (> 2 Hz) is running; sent "
                    f"{rate:.1f} setpoints/s over the last second: call start_setpoint_stream() first")
        p1, p2, p3 = set_mode_params(fw, canon)
        self.command(mavlink.MAV_CMD_DO_SET_MODE, p1, p2, p3, done=lambda s: s.mode == canon)
        if not self._wait_heartbeat(lambda s: s.mode == canon, confirm_timeout):
            raise CommandError(f"mode {canon} accepted but the heartbeat shows {self.link.state.mode}",
                               mavlink.MAV_CMD_DO_SET_MODE)

    def takeoff(self, altitude_m: float) -> None:
        """Climb to altitude_m above home. ArduPilot: in GUIDED and armed. PX4: sets MIS_TAKEOFF_ALT and
        sends NAV_TAKEOFF with NaN altitude (PX4 reads param7 as AMSL; NaN means use MIS_TAKEOFF_ALT)."""
        if not (math.isfinite(altitude_m) and altitude_m > 0):
            raise ValueError(f"takeoff altitude must be a positive number of metres, got {altitude_m}")
        # a takeoff under way or done (EXTENDED_SYS_STATE; PX4 also flies it in AUTO.TAKEOFF)
        def taking_off(s: VehicleState) -> bool:
            return s.landed_state in (mavlink.MAV_LANDED_STATE_TAKEOFF, mavlink.MAV_LANDED_STATE_IN_AIR) \
                or s.mode == "AUTO.TAKEOFF"

        if self.firmware == Firmware.PX4:
            self.set_param("MIS_TAKEOFF_ALT", altitude_m)
            nan = float("nan")
            self.command(mavlink.MAV_CMD_NAV_TAKEOFF, -1, 0, 0, nan, nan, nan, nan, done=taking_off)
        else:
            self.command(mavlink.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, altitude_m, done=taking_off)

    def land(self) -> None:
        """Land where the vehicle is (ArduPilot: LAND mode; PX4: NAV_LAND -> AUTO.LAND)."""
        if self.firmware == Firmware.ARDUPILOT:
            self.set_mode("LAND")
        else:
            nan = float("nan")
            self.command(mavlink.MAV_CMD_NAV_LAND, 0, 0, 0, nan, nan, nan, nan)

    # ------------------------------------------------------------------ telemetry rates
    def set_message_interval(self, message: str | int, hz: float) -> None:
        """MAV_CMD_SET_MESSAGE_INTERVAL; hz <= 0 stops the message."""
        msg_id = message if isinstance(message, int) else _message_id(message)
        interval = -1 if hz <= 0 else int(round(1e6 / hz))
        self.command(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, msg_id, interval)

    def request_message(self, message: str | int, timeout: float = 1.0, retries: int = 2):
        """MAV_CMD_REQUEST_MESSAGE; returns the message, or None if the vehicle refused or never sent it."""
        msg_id = message if isinstance(message, int) else _message_id(message)
        name = mavlink.mavlink_map[msg_id].msgname if msg_id in mavlink.mavlink_map else str(msg_id)
        with self.link.expect(name) as got:
            try:
                self.command(mavlink.MAV_CMD_REQUEST_MESSAGE, msg_id, timeout=timeout / (retries + 1),
                             retries=retries)
            except CommandRejected:
                return None
            return got.get(timeout)

    # ------------------------------------------------------------------ parameters
    def get_param(self, name: str, timeout: float | None = None, retries: int | None = None) -> float:
        """Read one parameter (PARAM_REQUEST_READ -> PARAM_VALUE); raises CommandTimeout if unanswered."""
        sysid, compid = self._target()
        key = name.encode("ascii")[:16]
        timeout = self.timeout if timeout is None else timeout
        for _ in range((self.retries if retries is None else retries) + 1):
            with self.link.expect("PARAM_VALUE", lambda m: _param_id(m) == name) as got:
                self.link.send(self.link.mav.param_request_read_encode(sysid, compid, key, -1))
                msg = got.get(timeout)
            if msg is not None:
                self._param_types[name] = msg.param_type
                return self._decode_param(msg)
        raise CommandTimeout(f"parameter {name}: no PARAM_VALUE answer", mavlink.MAV_CMD_REQUEST_MESSAGE)

    def set_param(self, name: str, value: float, timeout: float | None = None, retries: int | None = None) -> float:
        """Write one parameter and wait for the vehicle to echo the new value."""
        sysid, compid = self._target()
        ptype = self._param_types.get(name)
        if ptype is None:
            self.get_param(name)
            ptype = self._param_types[name]
        wire = self._encode_param(float(value), ptype)
        timeout = self.timeout if timeout is None else timeout
        for _ in range((self.retries if retries is None else retries) + 1):
            with self.link.expect("PARAM_VALUE", lambda m: _param_id(m) == name) as got:
                self.link.send(self.link.mav.param_set_encode(sysid, compid, name.encode("ascii"), wire, ptype))
                msg = got.get(timeout)
            if msg is not None:
                got_value = self._decode_param(msg)
                if not math.isclose(got_value, value, rel_tol=1e-6, abs_tol=1e-6):
                    raise CommandRejected(f"parameter {name}: vehicle kept {got_value} instead of {value}",
                                          mavlink.MAV_CMD_DO_SET_PARAMETER)
                return got_value
        raise CommandTimeout(f"parameter {name}: set not confirmed", mavlink.MAV_CMD_DO_SET_PARAMETER)

    def _is_int(self, ptype: int) -> bool:
        return ptype in (mavlink.MAV_PARAM_TYPE_UINT8, mavlink.MAV_PARAM_TYPE_INT8, mavlink.MAV_PARAM_TYPE_UINT16,
                         mavlink.MAV_PARAM_TYPE_INT16, mavlink.MAV_PARAM_TYPE_UINT32, mavlink.MAV_PARAM_TYPE_INT32)

    def _decode_param(self, msg) -> float:
        """PX4 sends integers bytewise (the int's bits in the float field), ArduPilot casts them."""
        if self.firmware == Firmware.PX4 and self._is_int(msg.param_type):
            return float(struct.unpack("<i", struct.pack("<f", msg.param_value))[0])
        return float(msg.param_value)

    def _encode_param(self, value: float, ptype: int) -> float:
        if self.firmware == Firmware.PX4 and self._is_int(ptype):
            return struct.unpack("<f", struct.pack("<i", int(round(value))))[0]
        return value

    def ensure_thrust_is_thrust(self) -> None:
        """ArduPilot: set GUID_OPTIONS bit 3 so SET_ATTITUDE_TARGET.thrust is thrust, not a climb rate."""
        if self.firmware != Firmware.ARDUPILOT:
            return
        opts = int(self.get_param("GUID_OPTIONS"))
        if not opts & GUID_OPTIONS_THRUST_AS_THRUST:
            self.set_param("GUID_OPTIONS", opts | GUID_OPTIONS_THRUST_AS_THRUST)

    # ------------------------------------------------------------------ setpoints
    def rates_message(self, body_rates_frd: Sequence[float], thrust: float):
        """SET_ATTITUDE_TARGET with body rates (FRD, rad/s) and thrust; the attitude is ignored."""
        sysid, compid = self._target()
        r = [float(x) for x in body_rates_frd]
        if len(r) != 3 or not all(math.isfinite(x) for x in r) or not math.isfinite(thrust):
            raise ValueError(f"rate setpoint must be 3 finite rates and a finite thrust, got {r}, {thrust}")
        return self.link.mav.set_attitude_target_encode(
            self._boot_ms(), sysid, compid, TYPEMASK_RATES_ONLY, [1.0, 0.0, 0.0, 0.0], r[0], r[1], r[2],
            max(-1.0, min(1.0, float(thrust))))

    def attitude_message(self, quaternion_ned: Sequence[float], thrust: float,
                         body_rates_frd: Sequence[float] | None = None):
        """SET_ATTITUDE_TARGET with an attitude (NED/FRD quaternion) and thrust; rates as feed-forward if given."""
        sysid, compid = self._target()
        q = np.asarray(quaternion_ned, dtype=float)
        if q.shape != (4,) or not np.isfinite(q).all() or np.linalg.norm(q) < 1e-6:
            raise ValueError(f"attitude must be a (w, x, y, z) quaternion, got {quaternion_ned}")
        q = q / np.linalg.norm(q)
        mask = 0 if body_rates_frd is not None else TYPEMASK_ATTITUDE_ONLY
        r = [0.0, 0.0, 0.0] if body_rates_frd is None else [float(x) for x in body_rates_frd]
        return self.link.mav.set_attitude_target_encode(
            self._boot_ms(), sysid, compid, mask, [float(x) for x in q], r[0], r[1], r[2],
            float(np.clip(thrust, -1.0, 1.0)))

    def send_rates(self, body_rates_frd: Sequence[float], thrust: float) -> bool:
        return self.link.send(self.rates_message(body_rates_frd, thrust))

    def send_attitude(self, quaternion_ned: Sequence[float], thrust: float,
                      body_rates_frd: Sequence[float] | None = None) -> bool:
        return self.link.send(self.attitude_message(quaternion_ned, thrust, body_rates_frd))

    def send_ctbr(self, action: Sequence[float], max_rate: Sequence[float]) -> bool:
        """The policy's ctbr action (see firmware_bridge.thrust) as a rate setpoint."""
        rates, thrust = ctbr_to_setpoint(action, max_rate)
        return self.send_rates(rates, thrust)

    def motors_message(self, throttles: Sequence[float], group: int = 0):
        """SET_ACTUATOR_CONTROL_TARGET with motors 1-4 throttle 0..1 in controls[0:4]."""
        sysid, compid = self._target()
        t = np.clip(np.asarray(throttles, dtype=float), 0.0, 1.0)
        if t.shape != (4,) or not np.isfinite(t).all():
            raise ValueError(f"motor commands must be 4 finite throttles, got {throttles}")
        controls = [float(x) for x in t] + [0.0] * 4
        return self.link.mav.set_actuator_control_target_encode(int(time.monotonic() * 1e6), group, sysid, compid,
                                                                controls)

    def send_motors(self, throttles: Sequence[float], group: int = 0) -> bool:
        """Direct motor commands where the firmware supports them (raises UnsupportedError otherwise)."""
        info = self.link.info
        if not actuator_targets_supported(info.firmware, info.version):
            raise UnsupportedError(
                f"{info.firmware.value} {info.version_text} does not take SET_ACTUATOR_CONTROL_TARGET "
                "(PX4 up to v1.13 only; ArduPilot never): fly ctbr through SET_ATTITUDE_TARGET instead")
        return self.link.send(self.motors_message(throttles, group))

    def send_rpm_action(self, action: Sequence[float]) -> bool:
        """The policy's rpm action as motor throttles."""
        return self.send_motors(rpm_to_motor_throttle(action))

    def position_message(self, position_ned: Sequence[float], yaw: float | None = None):
        """SET_POSITION_TARGET_LOCAL_NED, position only (hold a point in GUIDED / OFFBOARD)."""
        sysid, compid = self._target()
        p = [float(x) for x in position_ned]
        mask = 0b110111111000 if yaw is None else 0b100111111000  # ignore vel, acc, yaw rate (and yaw)
        return self.link.mav.set_position_target_local_ned_encode(
            self._boot_ms(), sysid, compid, mavlink.MAV_FRAME_LOCAL_NED, mask, p[0], p[1], p[2],
            0, 0, 0, 0, 0, 0, 0.0 if yaw is None else float(yaw), 0.0)

    def start_setpoint_stream(self, fn: Callable[[], object], rate_hz: float = 50.0,
                              prestream_s: float = 0.0) -> SetpointStream:
        """Stream fn()'s setpoint message at rate_hz (replacing any previous stream); optionally wait
        prestream_s so the vehicle has seen the stream before a mode switch."""
        self.stop_setpoint_stream()
        self.stream = SetpointStream(self.link, fn, rate_hz)
        if prestream_s > 0:
            time.sleep(prestream_s)
        return self.stream

    def stop_setpoint_stream(self) -> None:
        if self.stream is not None:
            self.stream.stop()
            self.stream = None

    def start_offboard(self, fn: Callable[[], object], rate_hz: float = 50.0, prestream_s: float = 0.5) -> None:
        """The safe order for PX4 OFFBOARD (and ArduPilot GUIDED_NOGPS): stream first, then switch."""
        self.start_setpoint_stream(fn, rate_hz, prestream_s)
        self.set_mode("OFFBOARD" if self.firmware == Firmware.PX4 else "GUIDED_NOGPS")

    # ------------------------------------------------------------------ bench
    def motor_test(self, motor: int, throttle_percent: float, duration_s: float, count: int = 1) -> None:
        """MAV_CMD_DO_MOTOR_TEST: spin motor (1-based, firmware numbering) at a throttle percentage.
        The vehicle must be disarmed; props off."""
        if not 1 <= motor <= 8:
            raise ValueError(f"motor number must be 1..8, got {motor}")
        if not 0 <= throttle_percent <= 100:
            raise ValueError(f"throttle must be 0..100 %, got {throttle_percent}")
        self.command(mavlink.MAV_CMD_DO_MOTOR_TEST, motor, mavlink.MOTOR_TEST_THROTTLE_PERCENT, throttle_percent,
                     duration_s, count, mavlink.MOTOR_TEST_ORDER_DEFAULT)

    def _boot_ms(self) -> int:
        return int((time.monotonic() * 1000)) & 0xFFFFFFFF


def _message_id(name: str) -> int:
    key = f"MAVLINK_MSG_ID_{name.strip().upper()}"
    if not hasattr(mavlink, key):
        raise ValueError(f"unknown MAVLink message {name!r}")
    return getattr(mavlink, key)


def _param_id(msg) -> str:
    pid = msg.param_id
    if isinstance(pid, bytes):
        pid = pid.decode("ascii", "replace")
    return pid.rstrip("\x00")
