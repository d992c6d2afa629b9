"""`drone-sim-vehicle`: the C simulator behind a MAVLink endpoint that behaves like a flight controller.

    drone-sim-vehicle                                  # pty: prints the /dev/pts/N to open, like /dev/ttyUSB0
    drone-sim-vehicle --port pty:/tmp/ttySIM           # ... and keeps a symlink to it (survives --replug)
    drone-sim-vehicle --port udpout:127.0.0.1:14550    # send to a GCS listening on UDP 14550 (QGC default)
    drone-sim-vehicle --port udpin:0.0.0.0:14551       # listen; a GCS connects with udpout:HOST:14551
    drone-sim-vehicle --port tcpin:0.0.0.0:5760        # listen on TCP like ArduPilot SITL
    drone-sim-vehicle --firmware px4 --drone drone_sim/data/crazyflie2.json --noise-pos 0.02 --latency-ms 20
    drone-sim-vehicle --signing-key vehicle.key        # MAVLink 2 signing: unsigned commands are dropped
    drone-sim-vehicle --lockstep                       # each setpoint advances the simulation one step
    drone-sim-vehicle --firmware-version 4.7.0         # ArduCopter 4.7's parameter names (MAV_GCS_SYSID, MAV1_*)

The vehicle speaks ArduPilot's or PX4's dialect of behaviour (heartbeat autopilot id, mode numbers,
parameter names and encoding, thrust semantics, offboard rules); autopilot.py holds the flight
logic; the MAVLink side is this module (the endpoint, sending with latency, pacing, reboots, signing),
handlers.py (message handling, command ACKs, the parameter protocol), telemetry.py (each firmware's boot
streams, then the requested rates, with sensor noise) and mission.py (the mission protocol). firmware_bridge/README.md tables what it emulates of
ArduCopter and PX4, and what it does not.

Pacing: real time (optionally `--speed` times faster), or lockstep: every SET_ATTITUDE_TARGET,
SET_ACTUATOR_CONTROL_TARGET or SET_POSITION_TARGET_LOCAL_NED advances the simulation by one control
period (`lockstep_dt`, 20 ms) and the telemetry due in it is sent before the next message is read, like
PX4 SITL's lockstep with its simulator; when no setpoint has come for `lockstep_idle_s` of wall time the
vehicle free-runs in real time, so arming, failsafes and landing still happen without a stream.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import math
import os
import threading
import time
from typing import Callable

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from .. import signing
from ..framing import FrameParser, LineStats
from ..modes import Firmware
from ..transport import LinkDownError, Transport
from .autopilot import SimAutopilot
from .constants import DEG_PER_M_LAT, HOME_ALT, HOME_LAT, HOME_LON, MSG, REBOOT_S, SETPOINT_IDS, for_me
from .handlers import MessageHandlers
from .mission import MissionService
from .params import ParamTable
from .telemetry import Telemetry

log = logging.getLogger("firmware_bridge.sim")


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
    home_offset_m: tuple[float, float] = (0.0, 0.0)   # (north, east) of this vehicle's home from the reference home

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


def _load_drone(drone) -> dict | None:
    if drone is None or isinstance(drone, dict):
        return drone
    from drone_sim.params import load_drone_params

    return load_drone_params(drone)


class SimVehicle(Telemetry, MessageHandlers):
    """One simulated flight controller on one transport. Drive it with run() / start(), or step()."""

    def __init__(self, transport: Transport, config: VehicleConfig | None = None):
        self.config = cfg = config or VehicleConfig()
        self.transport = transport
        self.firmware: Firmware = cfg.firmware
        self.sysid, self.compid = cfg.system_id, cfg.component_id
        # where it stands on the globe: the reference home, moved by home_offset_m (a swarm's vehicles stand apart;
        # each one's local frame is centred on its own home, as on real firmware)
        north, east = cfg.home_offset_m
        self.home_lat = HOME_LAT + north * DEG_PER_M_LAT
        self.home_lon = HOME_LON + east * DEG_PER_M_LAT / math.cos(math.radians(HOME_LAT))
        self.home_alt = HOME_ALT
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
                                       (self.home_lat, self.home_lon, self.home_alt))
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
        if self.config.lockstep and msg.get_msgId() in SETPOINT_IDS and for_me(msg, self.sysid, self.compid):
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


class _VehicleWriter:
    def __init__(self, vehicle: SimVehicle):
        self.vehicle = vehicle

    def write(self, buf) -> None:
        self.vehicle._write(bytes(buf))
