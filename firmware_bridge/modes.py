"""Which firmware is on the other end, and how each one numbers its flight modes.

HEARTBEAT.custom_mode means different things per autopilot, so a mode name is only meaningful together
with the firmware that reported it. Sources: ArduCopter's mode enum (ArduCopter/mode.h: STABILIZE 0 ...
GUIDED_NOGPS 20) and PX4's px4_custom_mode.h (main mode in bits 16-23, sub mode in bits 24-31), which is
also what pymavlink's mode tables encode.
"""
from __future__ import annotations

import enum

from pymavlink.dialects.v20 import ardupilotmega as mavlink


class Firmware(str, enum.Enum):
    ARDUPILOT = "ardupilot"
    PX4 = "px4"
    GENERIC = "generic"

    @classmethod
    def from_autopilot(cls, autopilot: int) -> "Firmware":
        """Firmware from HEARTBEAT.autopilot (MAV_AUTOPILOT)."""
        if autopilot == mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA:
            return cls.ARDUPILOT
        if autopilot == mavlink.MAV_AUTOPILOT_PX4:
            return cls.PX4
        return cls.GENERIC

    @property
    def autopilot(self) -> int:
        """The MAV_AUTOPILOT value this firmware puts in its heartbeat."""
        return {Firmware.ARDUPILOT: mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA,
                Firmware.PX4: mavlink.MAV_AUTOPILOT_PX4}.get(self, mavlink.MAV_AUTOPILOT_GENERIC)


ARDUCOPTER_MODES: dict[str, int] = {
    "STABILIZE": 0, "ACRO": 1, "ALT_HOLD": 2, "AUTO": 3, "GUIDED": 4, "LOITER": 5, "RTL": 6, "CIRCLE": 7,
    "LAND": 9, "DRIFT": 11, "SPORT": 13, "FLIP": 14, "AUTOTUNE": 15, "POSHOLD": 16, "BRAKE": 17, "THROW": 18,
    "AVOID_ADSB": 19, "GUIDED_NOGPS": 20, "SMART_RTL": 21,
}

# PX4 (main_mode, sub_mode); custom_mode = main << 16 | sub << 24.
PX4_MODES: dict[str, tuple[int, int]] = {
    "MANUAL": (1, 0), "ALTCTL": (2, 0), "POSCTL": (3, 0), "AUTO.READY": (4, 1), "AUTO.TAKEOFF": (4, 2),
    "AUTO.LOITER": (4, 3), "AUTO.MISSION": (4, 4), "AUTO.RTL": (4, 5), "AUTO.LAND": (4, 6), "ACRO": (5, 0),
    "OFFBOARD": (6, 0), "STABILIZED": (7, 0),
}

# Names a caller may use for either firmware (deploy speaks of "the offboard mode", not of a firmware).
ALIASES: dict[Firmware, dict[str, str]] = {
    Firmware.ARDUPILOT: {"HOLD": "BRAKE", "OFFBOARD": "GUIDED_NOGPS", "TAKEOFF": "GUIDED"},
    Firmware.PX4: {"HOLD": "AUTO.LOITER", "LAND": "AUTO.LAND", "TAKEOFF": "AUTO.TAKEOFF", "STABILIZE": "STABILIZED",
                   "LOITER": "AUTO.LOITER", "RTL": "AUTO.RTL", "GUIDED": "OFFBOARD", "GUIDED_NOGPS": "OFFBOARD"},
}


class UnknownModeError(ValueError):
    """A mode name or number the firmware does not have."""


def px4_custom_mode(main: int, sub: int = 0) -> int:
    return (main & 0xFF) << 16 | (sub & 0xFF) << 24


def px4_split(custom_mode: int) -> tuple[int, int]:
    return (custom_mode >> 16) & 0xFF, (custom_mode >> 24) & 0xFF


def mode_number(firmware: Firmware, name: str) -> int:
    """HEARTBEAT.custom_mode of a mode name for this firmware (aliases like HOLD resolved)."""
    key = name.strip().upper()
    key = ALIASES.get(firmware, {}).get(key, key)
    if firmware == Firmware.ARDUPILOT and key in ARDUCOPTER_MODES:
        return ARDUCOPTER_MODES[key]
    if firmware == Firmware.PX4 and key in PX4_MODES:
        return px4_custom_mode(*PX4_MODES[key])
    known = ARDUCOPTER_MODES if firmware == Firmware.ARDUPILOT else PX4_MODES
    raise UnknownModeError(f"{firmware.value} has no flight mode {name!r}; known: {', '.join(known)}")


def canonical_name(firmware: Firmware, name: str) -> str:
    """The firmware's own name of a mode given by name or alias."""
    key = name.strip().upper()
    return ALIASES.get(firmware, {}).get(key, key)


def mode_name(firmware: Firmware, custom_mode: int) -> str:
    """Mode name from HEARTBEAT.custom_mode; 'MODE(n)' when the number is unknown."""
    if firmware == Firmware.ARDUPILOT:
        for name, num in ARDUCOPTER_MODES.items():
            if num == custom_mode:
                return name
    elif firmware == Firmware.PX4:
        main, sub = px4_split(custom_mode)
        for name, (m, s) in PX4_MODES.items():
            if m == main and (s == sub or (m != 4 and s == 0)):
                return name
    return f"MODE({custom_mode})"


def set_mode_params(firmware: Firmware, name: str) -> tuple[float, float, float]:
    """(param1, param2, param3) of MAV_CMD_DO_SET_MODE for a mode name.

    param1 is the base mode with MAV_MODE_FLAG_CUSTOM_MODE_ENABLED; ArduPilot takes the custom mode number
    in param2; PX4 takes main mode in param2 and sub mode in param3.
    """
    number = mode_number(firmware, name)
    base = float(mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED)
    if firmware == Firmware.PX4:
        main, sub = px4_split(number)
        return base, float(main), float(sub)
    return base, float(number), 0.0


def custom_mode_from_set_mode(firmware: Firmware, param2: float, param3: float) -> int:
    """Inverse of set_mode_params on the vehicle side."""
    if firmware == Firmware.PX4:
        return px4_custom_mode(int(param2), int(param3))
    return int(param2)
