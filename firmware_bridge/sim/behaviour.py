"""The simulated autopilot's vocabulary: which firmware mode flies which behaviour, failsafe actions by
parameter value, and the setpoint, mission step and command result types."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

import drone_sim

from .. import frames
from ..modes import Firmware

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
