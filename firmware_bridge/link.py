"""The laptop's MAVLink link to one vehicle: a port, a reader thread, a heartbeat, and the vehicle state.

    from firmware_bridge import MavLink
    with MavLink("/dev/ttyUSB0", baud=57600, signing_key="vehicle.key") as link:
        info = link.connect(timeout=10)          # waits for the vehicle, identifies it, requests streams
        link.commands.arm()
        ...

Why a thread: the vehicle must hear our heartbeat once a second whatever the caller is doing (a flight
controller's GCS failsafe fires without it), and staleness has to be noticed even while the caller is
blocked on something else. The thread only reads, parses, updates state and sends heartbeats; commands
run in the caller's thread and wait on replies the reader hands them (`expect`).

Robustness: bytes go through framing.FrameParser, so garbage, truncated or corrupted frames are counted
in `stats` (a LineStats) and never raised; a failed port (USB pulled, pty closed, TCP reset) marks the
state stale at once and the link re-opens the same endpoint every `reconnect_interval` until it comes
back; a silent link (radio out of range, UDP) is marked stale after `link_timeout` seconds without a
frame from the vehicle. With the default streams (50 Hz attitude and position) the default 0.3 s
timeout detects a cut in at most ~0.35 s.
"""
from __future__ import annotations

import collections
import logging
import math
import os
import queue
import threading
import time
from typing import Any, Callable, Iterable

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from . import signing
from .frames import euler_from_quat, quat_from_euler
from .framing import FrameParser, LineStats
from .gate import ReaderGate
from .modes import Firmware, mode_name
from .transport import LinkDownError, Transport, open_endpoint
from .vehicle_state import VehicleInfo, VehicleState

log = logging.getLogger("firmware_bridge.link")

# Telemetry the link asks for on connect (Hz). Attitude and position fast enough for a 50 Hz control loop;
# heartbeats at 5 Hz so that an arm or mode change is confirmed within 0.2 s, not up to a second later.
DEFAULT_STREAMS: dict[str, float] = {
    "HEARTBEAT": 5.0,
    "ATTITUDE_QUATERNION": 50.0,
    "LOCAL_POSITION_NED": 50.0,
    "ATTITUDE": 10.0,
    "HIGHRES_IMU": 50.0,
    "SYS_STATUS": 2.0,
    "BATTERY_STATUS": 2.0,
    "EXTENDED_SYS_STATE": 2.0,
}

# The estimator's health report, which each firmware sends only when asked (ArduCopter's SRx_EXTRA3 stream
# rates default to 0: GCS_MAVLink_Parameters.cpp): preflight reads the absolute-position flag from it.
ESTIMATOR_STREAM = {Firmware.ARDUPILOT: "EKF_STATUS_REPORT", Firmware.PX4: "ESTIMATOR_STATUS"}
ESTIMATOR_STREAM_HZ = 2.0

# Messages that count as a setpoint stream (PX4's offboard "proof of life").
SETPOINT_MESSAGES = frozenset({
    mavlink.MAVLINK_MSG_ID_SET_ATTITUDE_TARGET, mavlink.MAVLINK_MSG_ID_SET_POSITION_TARGET_LOCAL_NED,
    mavlink.MAVLINK_MSG_ID_SET_POSITION_TARGET_GLOBAL_INT, mavlink.MAVLINK_MSG_ID_SET_ACTUATOR_CONTROL_TARGET,
})


class VehicleNotFoundError(TimeoutError):
    """No vehicle heartbeat within the timeout; the message says what did arrive instead."""


class Expectation:
    """Messages of given types (and a condition) that arrive while registered, queued for the caller."""

    def __init__(self, link: "MavLink", types: Iterable[str], condition: Callable | None):
        self.link = link
        self.types = frozenset(types)
        self.condition = condition
        self.queue: queue.Queue = queue.Queue()

    def matches(self, msg) -> bool:
        if msg.get_type() not in self.types:
            return False
        try:
            return self.condition is None or bool(self.condition(msg))
        except Exception:  # a caller's condition must not kill the reader thread
            return False

    def get(self, timeout: float):
        """Next matching message, or None after timeout seconds."""
        try:
            return self.queue.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def __enter__(self) -> "Expectation":
        return self

    def __exit__(self, *exc) -> None:
        self.link._remove_expectation(self)


class _Writer:
    """The file pymavlink's MAVLink.send writes to: our transport, or nowhere while the port is down."""

    def __init__(self, link: "MavLink"):
        self.link = link

    def write(self, buf: bytes) -> None:
        self.link._write(bytes(buf))


class MavLink:
    """One MAVLink connection from the laptop (a GCS) to one vehicle."""

    def __init__(
        self,
        endpoint: str,
        baud: int = 57600,
        *,
        source_system: int = 255,
        source_component: int = mavlink.MAV_COMP_ID_MISSIONPLANNER,
        target_system: int | None = None,
        signing_key: bytes | str | os.PathLike | None = None,
        signing_link_id: int = 1,
        heartbeat_hz: float = 1.0,
        link_timeout: float = 0.3,
        reconnect_interval: float = 0.25,
        auto_reconnect: bool = True,
        streams: dict[str, float] | None = None,
        opener: Callable[[], Transport] | None = None,
    ):
        if not 1 <= int(source_system) <= 255:
            raise ValueError(f"source_system must be 1..255, got {source_system}")
        if link_timeout <= 0 or heartbeat_hz < 0:
            raise ValueError("link_timeout must be > 0 and heartbeat_hz >= 0")
        self.endpoint = endpoint
        self.baud = int(baud)
        self.source_system = int(source_system)
        self.source_component = int(source_component)
        self.target_system = target_system
        self.heartbeat_period = 1.0 / heartbeat_hz if heartbeat_hz > 0 else math.inf
        self.heartbeat_enabled = True
        self.link_timeout = float(link_timeout)
        self.reconnect_interval = float(reconnect_interval)
        self.auto_reconnect = auto_reconnect
        self.streams = dict(DEFAULT_STREAMS if streams is None else streams)
        # how the port is opened (and re-opened): the endpoint itself, or a view of a port shared with the
        # links to other vehicles (firmware_bridge.shared; give target_system then)
        self._opener = opener or (lambda: open_endpoint(self.endpoint, self.baud))

        self.stats = LineStats()
        self.mav = mavlink.MAVLink(_Writer(self), srcSystem=self.source_system, srcComponent=self.source_component)
        self.parser = FrameParser(self.mav, self.stats)
        self.signing_key: bytes | None = None
        if signing_key is not None:
            key = bytes(signing_key) if isinstance(signing_key, (bytes, bytearray)) else signing.load_key(signing_key)
            if not isinstance(signing_key, (bytes, bytearray)):
                warn = signing.key_permissions_warning(signing_key)
                if warn:
                    log.warning(warn)
            # SiK radios inject unsigned RADIO_STATUS frames; ArduPilot accepts those too.
            signing.enable(self.mav, key, link_id=signing_link_id,
                           allow_unsigned=lambda _mav, msg_id: msg_id == mavlink.MAVLINK_MSG_ID_RADIO_STATUS)
            self.signing_key = key

        self.info = VehicleInfo()
        self._state = VehicleState()
        self._state_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._exp_lock = threading.Lock()
        self._expectations: list[Expectation] = []
        self._listeners: list[Callable] = []
        self.statustext: collections.deque = collections.deque(maxlen=50)  # (monotonic time, severity, text)
        self.events: collections.deque = collections.deque(maxlen=200)      # (monotonic time, event, detail)
        self._setpoint_times: collections.deque = collections.deque(maxlen=400)
        self._vehicle_seen = threading.Event()
        self._transport: Transport | None = None
        self._transport_lock = threading.Lock()
        self._down = False
        self.last_error: str | None = None
        self._next_open = 0.0
        self._running = False
        self._thread: threading.Thread | None = None
        self._last_heartbeat_sent = -math.inf
        self._commands = None
        self._t_quaternion = -math.inf
        self.gate: ReaderGate | None = None   # set by a control loop that computes on this link's telemetry

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> "MavLink":
        """Open the port and start the reader thread (does not wait for the vehicle)."""
        if self._running:
            return self
        self._transport = self._take_parsed(self._opener())
        self._running = True
        self._thread = threading.Thread(target=self._run, name=f"mavlink-{self.endpoint}", daemon=True)
        self._thread.start()
        return self

    def connect(self, timeout: float = 10.0, request_streams: bool = True) -> VehicleInfo:
        """Open, wait for the vehicle's heartbeat, identify it and request telemetry rates."""
        self.open()
        info = self.wait_vehicle(timeout)
        if request_streams:
            self.request_streams()
        return info

    def _take_parsed(self, t: Transport) -> Transport:
        """A shared port's view hands this link its vehicle's messages already parsed (firmware_bridge/shared.py),
        unless this link checks signatures, which needs the bytes."""
        if self.signing_key is None and hasattr(t, "deliver"):
            t.deliver = self._handle
        return t

    def close(self) -> None:
        if self._commands is not None:
            self._commands.stop_setpoint_stream()
        self._running = False
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        with self._transport_lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None

    def __enter__(self) -> "MavLink":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def commands(self):
        """Commands and setpoints for this vehicle (firmware_bridge.commands.Commands)."""
        if self._commands is None:
            from .commands import Commands

            self._commands = Commands(self)
        return self._commands

    # ------------------------------------------------------------------ vehicle identification
    def wait_vehicle(self, timeout: float = 10.0) -> VehicleInfo:
        """Block until a vehicle heartbeat arrives; raises VehicleNotFoundError naming what was seen."""
        if not self._vehicle_seen.wait(timeout):
            s = self.stats
            hints = []
            if s.bytes_received == 0:
                hints.append("no bytes at all arrived (wrong port, baud rate, or UDP/TCP address?)")
            elif s.frames_ok == 0:
                hints.append(f"{s.bytes_received} bytes but no valid MAVLink frame (wrong baud rate?)")
            if s.unsigned_rejected:
                hints.append(f"{s.unsigned_rejected} unsigned frames rejected "
                             "(signing is on here, not on the vehicle?)")
            if s.bad_signature:
                hints.append(f"{s.bad_signature} frames with a bad signature (different key?)")
            if self.last_error:
                hints.append(self.last_error)
            raise VehicleNotFoundError(f"{self.endpoint}: no vehicle heartbeat within {timeout:g} s"
                                       + (": " + "; ".join(hints) if hints else ""))
        self._request_version()
        return self.info

    def _request_version(self) -> None:
        """Ask for AUTOPILOT_VERSION (firmware version decides e.g. actuator-target support); optional."""
        try:
            msg = self.commands.request_message(mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION, timeout=0.5, retries=1)
        except Exception:
            return
        if msg is not None:
            self.info.flight_sw_version = int(msg.flight_sw_version)
            self.info.capabilities = int(msg.capabilities)

    def request_streams(self, streams: dict[str, float] | None = None) -> dict[str, bool]:
        """SET_MESSAGE_INTERVAL for each stream, and the firmware's estimator status (ESTIMATOR_STREAM);
        returns which were accepted (never raises on refusal).

        A refusal skips that message only; no answer at all (a vehicle that ignores us, e.g. because it
        wants signed commands) stops the rest, instead of waiting out every retry of every stream."""
        from .commands import CommandTimeout

        out = {}
        wanted = dict(streams or self.streams)
        estimator = ESTIMATOR_STREAM.get(self.info.firmware)
        if estimator is not None:
            wanted.setdefault(estimator, ESTIMATOR_STREAM_HZ)
        items = list(wanted.items())
        for i, (name, hz) in enumerate(items):
            try:
                self.commands.set_message_interval(name, hz)
                out[name] = True
            except CommandTimeout as exc:
                log.warning("vehicle does not answer SET_MESSAGE_INTERVAL (%s); streams not requested", exc)
                out.update({n: False for n, _ in items[i:]})
                break
            except Exception as exc:  # a vehicle may not know a message; keep the others
                log.info("stream %s at %g Hz not set: %s", name, hz, exc)
                out[name] = False
        return out

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> VehicleState:
        """A consistent copy of the latest vehicle state."""
        with self._state_lock:
            return self._state.copy()

    def read_state(self, fn: Callable[[VehicleState], Any]) -> Any:
        """fn(state) under the state's lock, for a caller that needs a few fields consistent with each other and
        not the whole copy `state` makes (a swarm's loop reads every vehicle's telemetry every tick). fn must not
        keep the state or block: the reader thread waits meanwhile."""
        with self._state_lock:
            return fn(self._state)

    @property
    def connected(self) -> bool:
        with self._state_lock:
            return not self._state.stale

    def add_listener(self, fn: Callable) -> None:
        """fn(msg) for every message from the vehicle, called on the reader thread (keep it short)."""
        self._listeners.append(fn)

    def expect(self, types: str | Iterable[str], condition: Callable | None = None) -> Expectation:
        """Register interest in messages *before* sending the request they answer; use as a context."""
        e = Expectation(self, [types] if isinstance(types, str) else types, condition)
        with self._exp_lock:
            self._expectations.append(e)
        return e

    def wait_message(self, types: str | Iterable[str], condition: Callable | None = None, timeout: float = 1.0):
        """The next matching message from the vehicle, or None after timeout."""
        with self.expect(types, condition) as e:
            return e.get(timeout)

    def _remove_expectation(self, e: Expectation) -> None:
        with self._exp_lock:
            if e in self._expectations:
                self._expectations.remove(e)

    # ------------------------------------------------------------------ sending
    def send(self, msg) -> bool:
        """Send one pymavlink message (build it with link.mav.<name>_encode(...)); False if it could not go."""
        with self._send_lock:
            self._sent_ok = True
            try:
                self.mav.send(msg)
            except (ValueError, TypeError, OverflowError) as exc:
                raise ValueError(f"cannot encode {msg.get_type()}: {exc}") from None
            ok = self._sent_ok
        if ok and msg.get_msgId() in SETPOINT_MESSAGES:
            self._setpoint_times.append(time.monotonic())
        return ok

    def _write(self, buf: bytes) -> None:
        t = self._transport
        if t is None:
            self.stats.send_dropped += 1
            self._sent_ok = False
            return
        try:
            ok = t.write(buf)
        except LinkDownError as exc:
            self.last_error = str(exc)
            self.stats.io_errors += 1
            ok = False
        if ok:
            self.stats.bytes_sent += len(buf)
            self.stats.frames_sent += 1
        else:
            self.stats.send_dropped += 1
            self._sent_ok = False

    def send_heartbeat(self) -> None:
        self.send(self.mav.heartbeat_encode(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0,
                                            mavlink.MAV_STATE_ACTIVE))
        self._last_heartbeat_sent = time.monotonic()

    def setpoint_rate(self, window: float = 1.0) -> float:
        """Setpoint messages per second sent over the last `window` seconds."""
        now = time.monotonic()
        return sum(1 for t in list(self._setpoint_times) if now - t <= window) / window

    def setup_vehicle_signing(self, key: bytes | None = None) -> None:
        """Send SETUP_SIGNING so the vehicle starts signing with our key (do it over a trusted USB link)."""
        k = key if key is not None else self.signing_key
        if k is None or len(k) != signing.KEY_BYTES:
            raise signing.SigningKeyError("setup_vehicle_signing needs a 32-byte key")
        self.send(self.mav.setup_signing_encode(self.info.system_id, self.info.component_id, list(k),
                                                signing.signing_timestamp()))

    # ------------------------------------------------------------------ reconnect
    def reconnect(self) -> bool:
        """Close the port and open it again now; True when it opened."""
        with self._transport_lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None
        self._mark_lost("reconnect requested")
        return self._try_open()

    def _try_open(self) -> bool:
        try:
            t = self._take_parsed(self._opener())
        except (LinkDownError, OSError) as exc:
            self.last_error = str(exc)
            self._next_open = time.monotonic() + self.reconnect_interval
            return False
        with self._transport_lock:
            if self._transport is not None:
                self._transport.close()
            self._transport = t
        self.parser.reset()
        self.stats.reconnects += 1
        self._down = False
        self._event("port_reopened", self.endpoint)
        return True

    def _mark_lost(self, why: str) -> None:
        with self._state_lock:
            already = self._state.stale
            self._state.stale = True
            if not already:
                self._state.stale_since = time.monotonic()
        if not already:
            self.stats.link_losses += 1
            self._event("link_lost", why)
            log.warning("%s: link lost: %s", self.endpoint, why)

    def _event(self, name: str, detail: str = "") -> None:
        self.events.append((time.monotonic(), name, detail))

    # ------------------------------------------------------------------ reader thread
    def _run(self) -> None:
        while self._running:
            try:
                self._step()
            except Exception as exc:  # never let the thread die: the heartbeat and staleness depend on it
                self.last_error = f"reader thread error: {exc!r}"
                log.exception("reader thread error")
                time.sleep(0.01)

    def _step(self) -> None:
        now = time.monotonic()
        t = self._transport
        if t is None:
            if self.auto_reconnect and now >= self._next_open:
                self._try_open()
            else:
                time.sleep(0.01)
        else:
            try:
                data = t.read(0.02)
            except LinkDownError as exc:
                self.last_error = str(exc)
                self.stats.io_errors += 1
                with self._transport_lock:
                    if self._transport is t:
                        t.close()
                        self._transport = None
                self._mark_lost(str(exc))
                self._next_open = time.monotonic() + (0.0 if self.auto_reconnect else math.inf)
                data = b""
            gate = self.gate
            if gate is not None:
                gate.wait()
            msgs = self.parser.feed(data) if data else self.parser.flush_stalled()
            for m in msgs:
                self._handle(m)
        now = time.monotonic()
        due = now - self._last_heartbeat_sent >= self.heartbeat_period
        if self.heartbeat_enabled and self._transport is not None and due:
            self.send_heartbeat()
        with self._state_lock:
            quiet = now - self._state.t_last_message > self.link_timeout
            stale = self._state.stale
        if quiet and not stale and self._vehicle_seen.is_set():
            self._mark_lost(f"no message from the vehicle for {self.link_timeout:g} s")

    def _is_vehicle_heartbeat(self, msg) -> bool:
        if msg.type in (mavlink.MAV_TYPE_GCS, mavlink.MAV_TYPE_ONBOARD_CONTROLLER, mavlink.MAV_TYPE_ADSB,
                        mavlink.MAV_TYPE_GIMBAL, mavlink.MAV_TYPE_CAMERA):
            return False
        if msg.autopilot == mavlink.MAV_AUTOPILOT_INVALID:
            return False
        if self.target_system is not None and msg.get_srcSystem() != self.target_system:
            return False
        return True

    def _handle(self, msg) -> None:
        mtype = msg.get_type()
        src = msg.get_srcSystem()
        if mtype == "BAD_DATA":
            return
        if not self._vehicle_seen.is_set():
            if mtype == "HEARTBEAT" and self._is_vehicle_heartbeat(msg):
                self.target_system = src
                self.info = VehicleInfo(firmware=Firmware.from_autopilot(msg.autopilot), system_id=src,
                                        component_id=msg.get_srcComponent(), mav_type=msg.type,
                                        autopilot=msg.autopilot)
                self._vehicle_seen.set()
                self._event("vehicle_found", f"{self.info.firmware.value} sysid {src}")
            else:
                return
        if src != self.target_system:
            return  # another system on the same link (a second GCS, a radio)
        now = time.monotonic()
        with self._state_lock:
            s = self._state
            s.t_last_message = now
            if s.stale:
                s.stale = False
                self._event("link_restored", mtype)
            self._update_state(s, msg, mtype, now)
        with self._exp_lock:
            exps = list(self._expectations)
        for e in exps:
            if e.matches(msg):
                e.queue.put(msg)
        for fn in self._listeners:
            try:
                fn(msg)
            except Exception:
                log.exception("listener failed")

    def _update_state(self, s: VehicleState, msg, mtype: str, now: float) -> None:
        if mtype == "HEARTBEAT":
            if msg.get_srcComponent() != self.info.component_id and self.info.component_id:
                return  # a camera or gimbal of the same system
            s.t_heartbeat = now
            s.armed = bool(msg.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED)
            s.base_mode = msg.base_mode
            s.custom_mode = msg.custom_mode
            s.system_status = msg.system_status
            s.mode = mode_name(self.info.firmware, msg.custom_mode)
        elif mtype == "ATTITUDE_QUATERNION":
            q = np.array([msg.q1, msg.q2, msg.q3, msg.q4], dtype=float)
            n = float(np.linalg.norm(q))
            if n > 1e-6 and math.isfinite(n):
                s.quaternion_ned = q / n
                s.roll, s.pitch, s.yaw = euler_from_quat(s.quaternion_ned)
            s.body_rates_frd = np.array([msg.rollspeed, msg.pitchspeed, msg.yawspeed], dtype=float)
            s.t_attitude = now
            s.boot_ms_attitude = msg.time_boot_ms
            self._t_quaternion = now
        elif mtype == "ATTITUDE":
            if now - self._t_quaternion > 0.2:  # only when no quaternion stream is coming
                s.roll, s.pitch, s.yaw = msg.roll, msg.pitch, msg.yaw
                s.quaternion_ned = quat_from_euler(msg.roll, msg.pitch, msg.yaw)
                s.body_rates_frd = np.array([msg.rollspeed, msg.pitchspeed, msg.yawspeed], dtype=float)
                s.t_attitude = now
                s.boot_ms_attitude = msg.time_boot_ms
        elif mtype == "LOCAL_POSITION_NED":
            s.position_ned = np.array([msg.x, msg.y, msg.z], dtype=float)
            s.velocity_ned = np.array([msg.vx, msg.vy, msg.vz], dtype=float)
            s.t_position = now
            s.boot_ms_position = msg.time_boot_ms
        elif mtype == "HIGHRES_IMU":
            s.accel_frd = np.array([msg.xacc, msg.yacc, msg.zacc], dtype=float)
            s.gyro_frd = np.array([msg.xgyro, msg.ygyro, msg.zgyro], dtype=float)
            s.t_imu = now
        elif mtype == "SYS_STATUS":
            s.sensors_present = msg.onboard_control_sensors_present
            s.sensors_health = msg.onboard_control_sensors_health
            ahrs = mavlink.MAV_SYS_STATUS_AHRS
            s.estimator_healthy = bool(msg.onboard_control_sensors_health & ahrs) or not (
                msg.onboard_control_sensors_present & ahrs)
            if msg.voltage_battery != 65535:
                s.battery_voltage = msg.voltage_battery / 1000.0
            if msg.current_battery >= 0:
                s.battery_current = msg.current_battery / 100.0
            if msg.battery_remaining >= 0:
                s.battery_remaining = msg.battery_remaining / 100.0
            s.t_status = now
            s.t_battery = now
        elif mtype == "BATTERY_STATUS":
            cells = [v for v in msg.voltages if v != 65535]
            if cells:
                s.battery_voltage = sum(cells) / 1000.0
            if msg.current_battery >= 0:
                s.battery_current = msg.current_battery / 100.0
            if msg.battery_remaining >= 0:
                s.battery_remaining = msg.battery_remaining / 100.0
            s.t_battery = now
        elif mtype == "EXTENDED_SYS_STATE":
            s.landed_state = msg.landed_state
        elif mtype == "EKF_STATUS_REPORT":
            need = mavlink.EKF_ATTITUDE | mavlink.EKF_VELOCITY_HORIZ | mavlink.EKF_POS_HORIZ_REL
            s.estimator_healthy = (msg.flags & need) == need and not msg.flags & mavlink.EKF_UNINITIALIZED
        elif mtype == "ESTIMATOR_STATUS":
            need = mavlink.ESTIMATOR_ATTITUDE | mavlink.ESTIMATOR_VELOCITY_HORIZ | mavlink.ESTIMATOR_POS_HORIZ_REL
            s.estimator_healthy = (msg.flags & need) == need
        elif mtype == "STATUSTEXT":
            text = msg.text.decode("utf-8", "replace") if isinstance(msg.text, bytes) else str(msg.text)
            self.statustext.append((now, msg.severity, text.rstrip("\x00")))
