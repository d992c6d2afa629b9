"""What the laptop knows about the vehicle, when it learned it, and whether that is still true.

Deploy closes a control loop on this state, so every group of fields carries the local (monotonic) time
it arrived and the vehicle's own boot time; a field group older than the caller's tolerance is stale,
and the whole state is marked stale when the link goes quiet or down. Fields are kept as MAVLink reports
them (NED world, FRD body) and offered in the simulator's frames (ENU/FLU) through firmware_bridge.frames,
so no caller converts by hand.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time

import numpy as np

from . import frames
from .modes import Firmware


@dataclasses.dataclass
class VehicleInfo:
    """Who is on the other end (from its HEARTBEAT, and AUTOPILOT_VERSION when it answers)."""

    firmware: Firmware = Firmware.GENERIC
    system_id: int = 0
    component_id: int = 0
    mav_type: int = 0
    autopilot: int = 0
    flight_sw_version: int = 0      # AUTOPILOT_VERSION.flight_sw_version: major<<24 | minor<<16 | patch<<8
    capabilities: int = 0

    @property
    def version(self) -> tuple[int, int, int] | None:
        v = self.flight_sw_version
        if not v:
            return None
        return (v >> 24) & 0xFF, (v >> 16) & 0xFF, (v >> 8) & 0xFF

    @property
    def version_text(self) -> str:
        v = self.version
        return f"{v[0]}.{v[1]}.{v[2]}" if v else "unknown version"


@dataclasses.dataclass
class VehicleState:
    """Latest telemetry. Times: `t_*` are local time.monotonic() of arrival, `boot_ms_*` the vehicle's."""

    # attitude (ATTITUDE_QUATERNION / ATTITUDE)
    quaternion_ned: np.ndarray = dataclasses.field(default_factory=lambda: np.array([1.0, 0.0, 0.0, 0.0]))
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0
    body_rates_frd: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    t_attitude: float = -math.inf
    boot_ms_attitude: int = 0
    # position (LOCAL_POSITION_NED)
    position_ned: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    velocity_ned: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    t_position: float = -math.inf
    boot_ms_position: int = 0
    # IMU (HIGHRES_IMU): specific force and gyro, body FRD
    accel_frd: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    gyro_frd: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    t_imu: float = -math.inf
    # battery (SYS_STATUS / BATTERY_STATUS)
    battery_voltage: float = math.nan
    battery_current: float = math.nan
    battery_remaining: float = math.nan   # 0..1
    t_battery: float = -math.inf
    # status (HEARTBEAT / SYS_STATUS / EXTENDED_SYS_STATE / EKF_STATUS_REPORT / ESTIMATOR_STATUS)
    armed: bool = False
    mode: str = ""
    custom_mode: int = 0
    base_mode: int = 0
    system_status: int = 0
    landed_state: int = 0
    sensors_present: int = 0
    sensors_health: int = 0
    estimator_healthy: bool = False
    t_heartbeat: float = -math.inf
    t_status: float = -math.inf
    # link
    t_last_message: float = -math.inf
    stale: bool = True
    stale_since: float = -math.inf

    # -- freshness ----------------------------------------------------------------------------------
    def age(self, group: str = "last_message", now: float | None = None) -> float:
        """Seconds since a field group ('attitude', 'position', 'imu', 'battery', 'heartbeat',
        'status', 'last_message') last arrived; inf if never."""
        t = getattr(self, f"t_{group}")
        return (time.monotonic() if now is None else now) - t

    def fresh(self, max_age: float, groups: tuple[str, ...] = ("attitude", "position")) -> bool:
        """True when the link is up and every named group is younger than max_age seconds."""
        if self.stale:
            return False
        now = time.monotonic()
        return all(self.age(g, now) <= max_age for g in groups)

    # -- the simulator's frames -----------------------------------------------------------------------
    @property
    def position_enu(self) -> np.ndarray:
        return frames.ned_to_enu(self.position_ned)

    @property
    def velocity_enu(self) -> np.ndarray:
        return frames.ned_to_enu(self.velocity_ned)

    @property
    def quaternion_enu(self) -> np.ndarray:
        """Body(FLU)-to-world(ENU) attitude, (w, x, y, z)."""
        return frames.quat_ned_frd_to_enu_flu(self.quaternion_ned)

    @property
    def body_rates_flu(self) -> np.ndarray:
        return frames.frd_to_flu(self.body_rates_frd)

    def copy(self) -> "VehicleState":
        """An independent copy: the scalars shared (immutable), the arrays copied. A generic deepcopy took
        ~60 us per call, and a swarm's control loop copies every vehicle's state every tick."""
        out = copy.copy(self)
        for name in _ARRAY_FIELDS:
            setattr(out, name, getattr(self, name).copy())
        return out

    def summary(self) -> str:
        p = self.position_ned
        return (f"{'ARMED' if self.armed else 'disarmed'} {self.mode or '?'} "
                f"NED=({p[0]:.2f},{p[1]:.2f},{p[2]:.2f}) rpy=({math.degrees(self.roll):.1f},"
                f"{math.degrees(self.pitch):.1f},{math.degrees(self.yaw):.1f})deg "
                f"batt={self.battery_voltage:.2f}V{' STALE' if self.stale else ''}")


_ARRAY_FIELDS = tuple(f.name for f in dataclasses.fields(VehicleState)
                      if f.default_factory is not dataclasses.MISSING)
