"""An emulated thrust stand: a motor with known true constants on load cells, behind a pty.

`StandModel` is the physics and the sensors, stepped in time by whoever drives it:
- ESC + motor: below `spin_start` throttle the motor stands still; above it the steady speed solves the
  DC-motor balance  duty * V = w / Kv + R * I,  I = k_Q w^2 Kv + I0  (a concave throttle->speed curve,
  as real ESCs give); the speed follows it with the simulator's first-order lag (tau_up rising,
  tau_down falling), integrated exactly between calls.
- thrust k_T w^2 and torque k_Q w^2 on two HX711 cells (80 conversions/s, raw counts with offset, scale,
  white noise, vibration noise growing with speed, slow thermal drift of the zero, and rare glitches:
  converter rail readings and spikes); an optical RPM sensor (noise); supply voltage sagging with the
  current the motor draws.
- the sketch's output: one `$D` line per tick in the documented protocol, and now and then garbage
  (corrupted characters, truncated lines, binary noise, text without a '$').

`StandEmulator` runs a model in real time on a thread and writes its lines to a pty, exactly what the
sketch prints to /dev/ttyACM0; the throttle comes from a callable (the ESC signal wire). `sim_stand()`
puts one behind `drone-sim-vehicle`'s motor test: the simulated flight controller's output for motor N
is the emulated stand's ESC signal, so `drone-calibrate thrust-stand` drives it over MAVLink
as it would drive real hardware.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
from typing import Callable, Iterator

import numpy as np

from .protocol import (FLAG_POWER, FLAG_RPM, FLAG_THRUST, FLAG_TORQUE, PROTOCOL_VERSION, StandInfo, StandSample,
                       format_data_line, format_info_line)
from .rundata import RPM_TO_RAD_S, STANDARD_GRAVITY


@dataclasses.dataclass
class MotorTruth:
    """The constants the fit must recover (a 5-inch motor and propeller on 4S)."""

    k_thrust: float = 8.0e-7          # N / (rad/s)^2
    k_torque: float = 1.3e-8          # N m / (rad/s)^2
    tau_up: float = 0.035             # s
    tau_down: float = 0.050           # s
    kv_rpm_per_volt: float = 2400.0
    winding_ohm: float = 0.08
    no_load_amp: float = 0.8
    battery_volt: float = 16.4
    battery_ohm: float = 0.03
    spin_start: float = 0.05          # throttle below which the ESC does not turn the motor
    direction: int = 1                # sign of the reaction torque on the cell

    @property
    def kv_rad(self) -> float:
        return self.kv_rpm_per_volt * RPM_TO_RAD_S   # rad/s per volt

    def steady_speed(self, throttle: float) -> float:
        if throttle <= self.spin_start:
            return 0.0
        duty = min(1.0, (throttle - self.spin_start) / (1.0 - self.spin_start))
        ke = 1.0 / self.kv_rad
        a = self.winding_ohm * self.k_torque / ke
        c = self.winding_ohm * self.no_load_amp - duty * self.battery_volt
        if c >= 0:
            return 0.0
        return (-ke + math.sqrt(ke * ke - 4 * a * c)) / (2 * a)

    def current(self, w: float) -> float:
        return 0.0 if w <= 0 else self.k_torque * w * w * self.kv_rad + self.no_load_amp

    @property
    def omega_full(self) -> float:
        return self.steady_speed(1.0)


@dataclasses.dataclass
class StandTruth:
    """The stand's sensors and the sketch's output (defaults: a 5 kg thrust cell, a 1 kg torque cell)."""

    thrust_offset: float = 84213.0        # counts at zero load
    thrust_counts_per_n: float = 42810.0
    torque_offset: float = -11870.0
    torque_counts_per_nm: float = 1.95e6
    thrust_noise_n: float = 0.008
    thrust_vibration_rel: float = 0.01    # 1-sigma, relative to the thrust
    torque_noise_nm: float = 2.5e-4
    torque_vibration_rel: float = 0.02
    thrust_drift_n_per_s: float = 2e-4    # zero drift (creep, temperature)
    rpm_noise_rel: float = 0.003
    volt_noise: float = 0.02
    amp_noise: float = 0.05
    line_rate_hz: float = 200.0
    hx711_rate_hz: float = 80.0
    pulses_per_rev: int = 2
    garbage_prob: float = 0.01            # per line
    glitch_prob: float = 0.003            # per conversion: HX711 rail reading or spike
    has_torque: bool = True
    has_rpm: bool = True
    has_power: bool = True
    micros_start: int = 20_000_000        # the sketch's micros() when the model starts


class StandModel:
    """Motor + sensors + sketch output, advanced by explicit time stamps (real or simulated)."""

    def __init__(self, motor: MotorTruth | None = None, stand: StandTruth | None = None, seed: int = 0):
        self.motor = motor or MotorTruth()
        self.stand = stand or StandTruth()
        self.rng = np.random.default_rng(seed)
        self.t = 0.0
        self.w = 0.0
        self.throttle = 0.0
        self.seq = 0
        self.extra_force = 0.0            # calibration weights on the thrust cell (N)
        self.extra_torque = 0.0           # ... and on the torque arm (N m)
        self._next_conv = 0.0
        self._thrust_raw: int | None = None
        self._torque_raw: int | None = None

    def info_line(self) -> str:
        s = self.stand
        return format_info_line(StandInfo("thrust-stand", PROTOCOL_VERSION, s.line_rate_hz, s.pulses_per_rev,
                                          s.hx711_rate_hz))

    def advance(self, t: float, throttle: float) -> None:
        """Integrate to time t under the throttle held since the last call; then hold `throttle`."""
        dt = t - self.t
        if dt > 0:
            target = self.motor.steady_speed(self.throttle)
            tau = self.motor.tau_up if target > self.w else self.motor.tau_down
            self.w = target + (self.w - target) * math.exp(-dt / tau)
            self.t = t
        self.throttle = float(min(1.0, max(0.0, throttle)))

    def _convert(self) -> tuple[int, int]:
        s, m, rng = self.stand, self.motor, self.rng
        thrust = m.k_thrust * self.w ** 2
        torque = m.direction * m.k_torque * self.w ** 2
        f = (thrust + self.extra_force + s.thrust_drift_n_per_s * self.t
             + rng.normal(0, s.thrust_noise_n) + rng.normal(0, s.thrust_vibration_rel) * thrust)
        q = torque + self.extra_torque + rng.normal(0, s.torque_noise_nm) + rng.normal(0, s.torque_vibration_rel) * torque
        a = int(round(s.thrust_offset + s.thrust_counts_per_n * f))
        b = int(round(s.torque_offset + s.torque_counts_per_nm * q))
        if rng.random() < s.glitch_prob:
            if rng.random() < 0.5:
                a = int(rng.choice([-8388608, 8388607]))
            else:
                a += int(rng.normal(0, 0.5) * s.thrust_counts_per_n * max(1.0, thrust))
        return a, b

    def lines(self) -> list[str]:
        """What the sketch prints at the current time: usually one data line, sometimes garbage."""
        s, m, rng = self.stand, self.motor, self.rng
        flags = 0
        while self._next_conv <= self.t:
            self._thrust_raw, raw_q = self._convert()
            self._torque_raw = raw_q if s.has_torque else None
            self._next_conv += 1.0 / s.hx711_rate_hz
            flags |= FLAG_THRUST | (FLAG_TORQUE if s.has_torque else 0)
        rpm = None
        if s.has_rpm:
            rpm = 0.0 if self.w < 20.0 else max(0.0, self.w / RPM_TO_RAD_S * (1 + rng.normal(0, s.rpm_noise_rel)))
            flags |= FLAG_RPM
        volt = amp = None
        if s.has_power:
            i = m.current(self.w)
            amp = int(round(1000 * (i + rng.normal(0, s.amp_noise))))
            volt = int(round(1000 * (m.battery_volt - m.battery_ohm * i + rng.normal(0, s.volt_noise))))
            flags |= FLAG_POWER
        t_us = (s.micros_start + int(self.t * 1e6)) % (1 << 32)
        sample = StandSample(t_us, self.seq, self._thrust_raw, self._torque_raw,
                             None if rpm is None else round(rpm, 1), volt, amp, flags)
        self.seq = (self.seq + 1) % 65536
        line = format_data_line(sample)
        if rng.random() < s.garbage_prob:
            return self._garbage(line)
        return [line]

    def _garbage(self, line: str) -> list[str]:
        rng = self.rng
        kind = int(rng.integers(0, 5))
        if kind == 0:          # one character corrupted on the wire
            i = int(rng.integers(1, len(line) - 3))
            ch = chr(ord(line[i]) ^ (1 << int(rng.integers(0, 6))))
            return [line[:i] + (ch if ch.isprintable() else "?") + line[i + 1:]]
        if kind == 1:          # truncated (bytes lost), the rest glued to nothing
            return [line[: int(rng.integers(3, len(line) - 4))]]
        if kind == 2:          # binary noise (ESC switching noise on a long USB cable)
            return [bytes(rng.integers(0, 256, int(rng.integers(3, 30)), dtype=np.uint8)).decode("latin-1")
                    .replace("\n", " ")]
        if kind == 3:          # a debug print without the '#'
            return ["HX711 not ready"]
        return ["# note: loop overrun", line]   # a legitimate comment line, then the data

    # calibration weights for `drone-calibrate scale`
    def place_mass(self, kg: float, lever_m: float | None = None, g: float = STANDARD_GRAVITY) -> None:
        """Put a reference mass on the thrust cell (lever None) or hang it on the torque arm at lever_m."""
        if lever_m is None:
            self.extra_force = kg * g
        else:
            self.extra_torque = kg * g * lever_m


class StandEmulator:
    """A StandModel in real time on a thread, writing the sketch's lines to a pty (/dev/pts/N)."""

    def __init__(self, esc: Callable[[], float], motor: MotorTruth | None = None, stand: StandTruth | None = None,
                 seed: int = 0, link_path: str | None = None):
        from firmware_bridge.transport import PtyTransport

        self.model = StandModel(motor, stand, seed)
        self.esc = esc
        self.transport = PtyTransport(link_path)
        self.lines_written = 0
        self._lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return self.transport.path

    def start(self) -> "StandEmulator":
        self._running = True
        self._thread = threading.Thread(target=self._run, name="stand-emulator", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self.transport.close()

    def unplug(self) -> None:
        """The USB cable pulled: both ends of the pty close; the laptop's reads fail."""
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self.transport.unplug()

    def place_mass(self, kg: float, lever_m: float | None = None) -> None:
        with self._lock:
            self.model.place_mass(kg, lever_m)

    def _write(self, text: str) -> None:
        if self.transport.write((text + "\n").encode("latin-1")):
            self.lines_written += 1

    def _run(self) -> None:
        period = 1.0 / self.model.stand.line_rate_hz
        t_boot = time.monotonic()
        self._write("# thrust-stand sketch booting")
        self._write(self.model.info_line())
        next_t = t_boot
        while self._running:
            now = time.monotonic()
            with self._lock:
                self.model.advance(now - t_boot, self.esc())
                out = self.model.lines()
            for line in out:
                self._write(line)
            self._poll_commands()
            next_t += period
            delay = next_t - time.monotonic()
            if delay < -0.1:            # fell behind (loaded machine): no burst to catch up
                next_t = time.monotonic()
            time.sleep(max(0.0, delay))

    def _poll_commands(self) -> None:
        try:
            data = self.transport.read(0.0)
        except Exception:
            return
        if b"?" in data:
            self._write(self.model.info_line())


def vehicle_esc_output(vehicle, motor: int) -> float:
    """What the simulated flight controller sends to motor N's ESC (1-based), as throttle 0..1.

    Disarmed (bench, motor test) the vehicle runs the simulator's rpm mode: action a in [-1, 1] is the
    command, throttle (a + 1) / 2. Armed in a rate mode it flies ctbr; the motor's speed fraction stands in.
    """
    ap = vehicle.ap
    if ap.active == "rpm":
        return float(0.5 * (float(ap.last_action[motor - 1]) + 1.0))
    x = ap.state()
    return float(x[13 + motor - 1] / ap.drone["omega_max"])


@dataclasses.dataclass
class SimStand:
    vehicle: object
    emulator: StandEmulator
    fc_path: str
    stand_path: str


@contextlib.contextmanager
def sim_stand(motor: int = 1, truth: MotorTruth | None = None, stand: StandTruth | None = None, seed: int = 0,
              firmware: str = "ardupilot", fc_link: str | None = None, stand_link: str | None = None,
              ekf_init_s: float = 0.2) -> Iterator[SimStand]:
    """drone-sim-vehicle on one pty and the emulated stand, wired to its motor `motor`, on another."""
    from firmware_bridge.sim.vehicle import SimVehicle, VehicleConfig
    from firmware_bridge.transport import PtyTransport

    transport = PtyTransport(fc_link)
    vehicle = SimVehicle(transport, VehicleConfig(firmware=firmware, ekf_init_s=ekf_init_s, seed=seed))
    vehicle.start()
    emu = StandEmulator(lambda: vehicle_esc_output(vehicle, motor), truth, stand, seed, stand_link)
    emu.start()
    try:
        yield SimStand(vehicle, emu, transport.path, emu.path)
    finally:
        emu.close()
        vehicle.close()
