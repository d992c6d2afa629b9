"""Policy action -> the MAVLink setpoint this firmware flies, with the firmware's own semantics.

ctbr (collective thrust + body rates in [-1, 1]) -> SET_ATTITUDE_TARGET, attitude ignored, all three body
rates given (FRD), thrust = (a0 + 1) / 2 as a fraction of maximum collective thrust. That is what the
simulator trained (firmware_bridge/thrust.py) and what PX4 OFFBOARD and ArduPilot GUIDED with
GUID_OPTIONS bit 3 read; ArduPilot's default reads the thrust field as a climb rate, which preflight
refuses (or fixes by setting the bit). Rates are scaled by the max_rate the policy file says it was
trained with (OnnxPolicy.max_rate, from its metadata), not by this vehicle's, because that is what the numbers
meant.

rpm (four motor speed fractions) -> SET_ACTUATOR_CONTROL_TARGET throttles, where the firmware takes them
(PX4 up to 1.13, firmware_bridge.commands.actuator_targets_supported); elsewhere it is refused.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from firmware_bridge import frames
from firmware_bridge.commands import TYPEMASK_RATES_ONLY, actuator_targets_supported
from firmware_bridge.modes import Firmware
from firmware_bridge.thrust import ThrustSemantics, ctbr_to_setpoint, rpm_to_motor_throttle


class UnsupportedCommandPath(ValueError):
    """The policy's action mode cannot be flown on this firmware; the message says why and what to do."""


def check_command_path(action_mode: str, firmware: Firmware, version: tuple[int, int, int] | None,
                       semantics: ThrustSemantics | None) -> str:
    """How this action mode will be sent to this firmware; UnsupportedCommandPath when it cannot be."""
    if firmware not in (Firmware.ARDUPILOT, Firmware.PX4):
        raise UnsupportedCommandPath(f"firmware {firmware.value!r} is neither ArduPilot nor PX4: no known setpoint "
                                     "semantics to fly a policy with")
    if action_mode == "ctbr":
        if semantics == ThrustSemantics.CLIMB_RATE:
            raise UnsupportedCommandPath(
                "ArduPilot reads SET_ATTITUDE_TARGET thrust as a climb rate (GUID_OPTIONS bit 3 is clear); a ctbr "
                "policy commands thrust: set GUID_OPTIONS |= 8 (drone-deploy does it unless --dry-run)")
        return "ctbr -> SET_ATTITUDE_TARGET body rates + normalized thrust"
    if action_mode == "rpm":
        if not actuator_targets_supported(firmware, version):
            v = ".".join(map(str, version)) if version else "unknown version"
            raise UnsupportedCommandPath(
                f"an rpm policy needs direct motor commands (SET_ACTUATOR_CONTROL_TARGET), which {firmware.value} "
                f"{v} does not take (PX4 up to 1.13 only, ArduPilot never): fly a ctbr policy")
        return "rpm -> SET_ACTUATOR_CONTROL_TARGET motor throttles (PX4 <= 1.13, pass-through mixer)"
    raise UnsupportedCommandPath(f"action mode {action_mode!r} cannot be flown (ctbr or rpm)")


class CommandMapper:
    """Builds the setpoint message for an action (the loop sends it, or logs it in a dry run)."""

    def __init__(self, commands, action_mode: str, max_rate: np.ndarray | None):
        """max_rate: the policy's (OnnxPolicy.max_rate), needed for ctbr only."""
        self.commands = commands          # firmware_bridge Commands (message builders)
        self.action_mode = action_mode
        if action_mode == "ctbr" and max_rate is None:
            raise ValueError("a ctbr policy needs its max_rate to scale body rates")
        self.max_rate = None if max_rate is None else np.asarray(max_rate, dtype=float)

    def setpoint(self, action: np.ndarray) -> tuple[Any, dict[str, Any]]:
        """(pymavlink message, its loggable description) for a finite action in [-1, 1]."""
        if self.action_mode == "ctbr":
            rates_frd, thrust = ctbr_to_setpoint(action, self.max_rate)
            return self.rates_setpoint(rates_frd.tolist(), thrust)
        throttles = rpm_to_motor_throttle(action)
        msg = self.commands.motors_message(throttles)
        return msg, {"msg": "SET_ACTUATOR_CONTROL_TARGET", "throttles": [round(float(t), 5) for t in throttles]}

    def rates_setpoint(self, rates_frd: list[float], thrust: float) -> tuple[Any, dict[str, Any]]:
        """(message, description) for body rates (FRD, rad/s) and a thrust already mapped from a ctbr action
        (ctbr_to_setpoint, or ctbr_to_setpoints for a swarm's rows at once)."""
        msg = self.commands.rates_message(rates_frd, thrust)
        return msg, {"msg": "SET_ATTITUDE_TARGET", "type_mask": TYPEMASK_RATES_ONLY,
                     "rates_frd": [round(r, 5) for r in rates_frd], "thrust": round(thrust, 5)}

    def position(self, target_local_enu: np.ndarray) -> tuple[Any, dict[str, Any]]:
        """A position setpoint (the return-inside-the-fence response), local frame."""
        ned = frames.enu_to_ned(target_local_enu)
        msg = self.commands.position_message(ned)
        return msg, {"msg": "SET_POSITION_TARGET_LOCAL_NED", "position_ned": [round(float(v), 4) for v in ned]}
