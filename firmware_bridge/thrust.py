"""What the number in SET_ATTITUDE_TARGET.thrust means on each firmware, and the policy's ctbr mapping.

The policy's ctbr action is (collective thrust, roll rate, pitch rate, yaw rate) in [-1, 1]: thrust maps
linearly to [0, 4 k_T omega_max^2] (a fraction of the drone's maximum collective thrust), rates scale by
max_rate in FLU (drone_sim/csrc/quadrotor.h). What the firmware does with the `thrust` field differs:

- PX4 (OFFBOARD): "Collective thrust, normalized to 0 .. 1" (MAVLink SET_ATTITUDE_TARGET). PX4 turns it
  into motor outputs through its thrust curve THR_MDL_FAC (0: thrust proportional to the motor command,
  1: proportional to its square); with THR_MDL_FAC matching the motors, normalized thrust is the fraction
  of maximum thrust, which is exactly the simulator's meaning. Battery sag is compensated when
  MC_BAT_SCALE_EN is set.
- ArduPilot (GUIDED / GUIDED_NOGPS), GUID_OPTIONS bit 3 (value 8) clear, the default: thrust is a CLIMB
  RATE demand, 0.5 = hold altitude, 1 = climb at WPNAV_SPEED_UP, 0 = descend at WPNAV_SPEED_DN
  (ArduCopter GCS_Mavlink.cpp handle_message_set_attitude_target; ArduPilot wiki "Copter Commands in
  Guided Mode"). A ctbr policy must not be flown like that.
- ArduPilot with GUID_OPTIONS bit 3 set ("SetAttitudeTarget interprets Thrust As Thrust"): thrust 0..1
  is collective thrust, linearized by MOT_THST_EXPO and compensated for battery voltage between
  MOT_BAT_VOLT_MIN and MOT_BAT_VOLT_MAX; with MOT_THST_EXPO matching the motors this is again the fraction
  of maximum thrust. Commands.ensure_thrust_is_thrust() sets the bit.
- ArduPilot ignores the three body-rate fields unless all three are given (it then flies them as angular
  rate targets); body rates with the attitude ignored are what a ctbr policy sends.
"""
from __future__ import annotations

import enum
from typing import Sequence

import numpy as np

from .frames import flu_to_frd
from .modes import Firmware

GUID_OPTIONS_THRUST_AS_THRUST = 8  # ArduCopter GUID_OPTIONS bit 3


class ThrustSemantics(str, enum.Enum):
    NORMALIZED_THRUST = "normalized thrust 0..1 (fraction of maximum collective thrust)"
    CLIMB_RATE = "climb rate: 0.5 hold altitude, 1 climb at WPNAV_SPEED_UP, 0 descend at WPNAV_SPEED_DN"


def thrust_semantics(firmware: Firmware, guid_options: int | None = None) -> ThrustSemantics:
    """How this firmware reads SET_ATTITUDE_TARGET.thrust (ArduPilot depends on GUID_OPTIONS)."""
    if firmware == Firmware.ARDUPILOT:
        if guid_options is not None and int(guid_options) & GUID_OPTIONS_THRUST_AS_THRUST:
            return ThrustSemantics.NORMALIZED_THRUST
        return ThrustSemantics.CLIMB_RATE
    return ThrustSemantics.NORMALIZED_THRUST


def ctbr_to_setpoint(action: Sequence[float], max_rate: Sequence[float]) -> tuple[np.ndarray, float]:
    """A ctbr action in [-1, 1] -> (body rates FRD in rad/s, normalized thrust 0..1) for SET_ATTITUDE_TARGET.

    max_rate (rad/s at a = 1, roll/pitch/yaw) has no default: it is the policy's (OnnxPolicy.max_rate) or the
    simulated drone's, and a guess here would silently scale every command."""
    # plain floats for four values: numpy's per-call overhead was most of this function's cost, which a swarm's
    # loop pays once per vehicle per tick
    if np.shape(action) != (4,):
        raise ValueError(f"ctbr action must have 4 values, got shape {np.shape(action)}")
    a = [float(x) for x in action]
    t, r, p, y = (_unit(x) for x in a)
    mr = [float(x) for x in max_rate]
    return flu_to_frd((r * mr[0], p * mr[1], y * mr[2])), 0.5 * (t + 1.0)


def ctbr_to_setpoints(actions: np.ndarray, max_rate: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """ctbr_to_setpoint for each row of an (n, 4) array (a swarm's actions, one call per tick):
    (body rates FRD (n, 3), thrusts (n,)). NaN stays NaN, for the safety checks to see."""
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"ctbr actions must be (n, 4) rows, got shape {a.shape}")
    u = np.clip(a, -1.0, 1.0)
    return flu_to_frd(u[:, 1:4] * np.asarray(max_rate, dtype=np.float64)), 0.5 * (u[:, 0] + 1.0)


def _unit(x: float) -> float:
    """x clipped to [-1, 1]; NaN stays NaN (as np.clip keeps it), for the safety checks to see."""
    return 1.0 if x > 1.0 else -1.0 if x < -1.0 else x


def setpoint_to_ctbr(rates_frd: Sequence[float], thrust: float, max_rate: Sequence[float]) -> np.ndarray:
    """Inverse of ctbr_to_setpoint (what the simulated vehicle does with a rate setpoint)."""
    rates_flu = flu_to_frd(rates_frd)
    out = np.empty(4)
    out[0] = 2.0 * float(np.clip(thrust, 0.0, 1.0)) - 1.0
    out[1:] = rates_flu / np.asarray(max_rate, dtype=float)
    return np.clip(out, -1.0, 1.0)


def climb_rate_to_thrust_field(climb_rate: float, speed_up: float = 2.5, speed_down: float = 1.5) -> float:
    """ArduPilot's default meaning, forwards: a climb rate (m/s, up positive) -> the thrust field."""
    if climb_rate >= 0:
        return float(np.clip(0.5 + 0.5 * climb_rate / speed_up, 0.5, 1.0))
    return float(np.clip(0.5 + 0.5 * climb_rate / speed_down, 0.0, 0.5))


def thrust_field_to_climb_rate(thrust: float, speed_up: float = 2.5, speed_down: float = 1.5) -> float:
    """ArduPilot's default meaning: thrust field -> climb rate (m/s, up positive)."""
    t = float(np.clip(thrust, 0.0, 1.0))
    if t >= 0.5:
        return (t - 0.5) * 2.0 * speed_up
    return -(0.5 - t) * 2.0 * speed_down


def rpm_to_motor_throttle(action: Sequence[float]) -> np.ndarray:
    """rpm actions in [-1, 1] (motor speed fraction, sim motor order) -> motor throttles 0..1, motors 1-4.

    The simulator's motor order 0..3 is ArduPilot/PX4 quad-X motors 1..4 (front-right, rear-left,
    front-left, rear-right), so the order is kept. Throttle here is the fraction of maximum motor speed,
    which matches an ESC whose throttle-to-speed curve is linear (most are close to it).
    """
    a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
    if a.shape != (4,):
        raise ValueError(f"rpm action must have 4 values, got shape {a.shape}")
    return 0.5 * (a + 1.0)
