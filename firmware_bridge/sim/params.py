"""The simulated vehicle's parameters, named as each real firmware names them.

A ground station connects by downloading every parameter (PARAM_REQUEST_LIST -> PARAM_VALUE with index
and count, https://mavlink.io/en/services/parameter.html), and the bridge reads and writes a few
(GUID_OPTIONS, MIS_TAKEOFF_ALT). The parameters that matter are live: the simulated autopilot reads its
failsafe timings, land speed and thrust semantics from here, so a PARAM_SET changes its behaviour the way
it would on the real firmware. Integers go on the wire as ArduPilot does (C cast to float) or as PX4
does (the int's bytes in the float field, "bytewise"), announced in AUTOPILOT_VERSION capabilities.

Defaults differ from the real firmware on purpose in one place: GCS-loss failsafe is enabled here, with
the landing action hardware.md asks for (FS_GCS_ENABLE 5, NAV_DLL_ACT 3; both firmwares default to 0,
disabled). Set them on a real vehicle.
"""
from __future__ import annotations

import dataclasses
import math
import struct

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from ..modes import Firmware

F = mavlink.MAV_PARAM_TYPE_REAL32
I8 = mavlink.MAV_PARAM_TYPE_INT8
I16 = mavlink.MAV_PARAM_TYPE_INT16
I32 = mavlink.MAV_PARAM_TYPE_INT32
_INT_TYPES = {mavlink.MAV_PARAM_TYPE_UINT8, I8, mavlink.MAV_PARAM_TYPE_UINT16, I16, mavlink.MAV_PARAM_TYPE_UINT32, I32}


@dataclasses.dataclass
class Param:
    name: str
    value: float
    ptype: int = F
    lo: float = -math.inf
    hi: float = math.inf
    doc: str = ""


SR_GROUPS = ("RAW_SENS", "EXT_STAT", "RC_CHAN", "RAW_CTRL", "POSITION", "EXTRA1", "EXTRA2", "EXTRA3", "PARAMS",
             "ADSB")


class ParamError(ValueError):
    pass


# Behaviour keys the autopilot reads -> (ArduPilot name, scale to SI), (PX4 name, scale to SI).
ROLES: dict[str, tuple[tuple[str, float] | None, tuple[str, float] | None]] = {
    "gcs_failsafe": (("FS_GCS_ENABLE", 1.0), ("NAV_DLL_ACT", 1.0)),
    "gcs_timeout_s": (("FS_GCS_TIMEOUT", 1.0), ("COM_DL_LOSS_T", 1.0)),
    "setpoint_timeout_s": (("GUID_TIMEOUT", 1.0), ("COM_OF_LOSS_T", 1.0)),
    "land_speed": (("LAND_SPEED", 0.01), ("MPC_LAND_SPEED", 1.0)),
    "speed_up": (("WPNAV_SPEED_UP", 0.01), ("MPC_Z_VEL_MAX_UP", 1.0)),
    "speed_down": (("WPNAV_SPEED_DN", 0.01), ("MPC_Z_VEL_MAX_DN", 1.0)),
    "takeoff_alt": (None, ("MIS_TAKEOFF_ALT", 1.0)),
    "disarm_delay_s": (("DISARM_DELAY", 1.0), ("COM_DISARM_PRFLT", 1.0)),
    "disarm_land_s": (None, ("COM_DISARM_LAND", 1.0)),
    "spool_time_s": (("MOT_SPOOL_TIME", 1.0), None),
    "arming_check": (("ARMING_CHECK", 1.0), ("SIM_ARMING_CHECK", 1.0)),
    "arm_volt_cell": (("SIM_ARM_VCELL", 1.0), ("SIM_ARM_VCELL", 1.0)),
    "gcs_sysid": (("SYSID_MYGCS", 1.0), None),
    "guid_options": (("GUID_OPTIONS", 1.0), None),
    "angle_max_rad": (("ANGLE_MAX", math.radians(0.01)), ("MPC_TILTMAX_AIR", math.radians(1.0))),
}


def _ardupilot(sysid: int, hover_throttle: float, cells: int, capacity_mah: float) -> list[Param]:
    return [
        Param("SYSID_THISMAV", sysid, I16, 1, 255, "this vehicle's MAVLink system id"),
        Param("SYSID_MYGCS", 255, I16, 1, 255, "GCS system id whose heartbeats count for the GCS failsafe"),
        Param("FRAME_CLASS", 1, I8, 0, 20, "1 = quad"),
        Param("FRAME_TYPE", 1, I8, 0, 20, "1 = X"),
        Param("ARMING_CHECK", 1, I32, 0, 1e9, "0 disables the arming checks"),
        Param("DISARM_DELAY", 10, I8, 0, 127, "s on the ground armed without taking off before auto-disarm"),
        Param("FS_GCS_ENABLE", 5, I8, 0, 7, "GCS heartbeat-loss failsafe: 1 RTL, 5 land, 7 brake (firmware default 0)"),
        Param("FS_GCS_TIMEOUT", 5.0, F, 2, 120, "s without GCS heartbeat before the failsafe"),
        Param("GUID_OPTIONS", 0, I32, 0, 65535, "bit 3 (8): SET_ATTITUDE_TARGET thrust is thrust, not climb rate"),
        Param("GUID_TIMEOUT", 3.0, F, 0.1, 5, "s without a guided setpoint before holding"),
        Param("LAND_SPEED", 50, I16, 30, 200, "cm/s final descent rate"),
        Param("WPNAV_SPEED_UP", 250, F, 10, 1000, "cm/s; also full-scale climb of the climb-rate thrust field"),
        Param("WPNAV_SPEED_DN", 150, F, 10, 500, "cm/s; also full-scale descent of the climb-rate thrust field"),
        Param("ANGLE_MAX", 3000, I16, 1000, 8000, "cdeg maximum lean angle"),
        Param("MOT_SPIN_ARM", 0.10, F, 0, 0.2, "throttle when armed on the ground"),
        Param("MOT_SPIN_MIN", 0.15, F, 0, 0.3, "lowest throttle in flight"),
        Param("MOT_SPOOL_TIME", 0.5, F, 0.05, 2, "s to spool the motors up from ground idle before a takeoff"),
        Param("MOT_THST_HOVER", round(hover_throttle, 4), F, 0.125, 0.6875, "hover throttle (from the drone params)"),
        Param("MOT_THST_EXPO", 1.0, F, -1, 1, "thrust curve: the simulated motors give thrust ~ speed^2"),
        Param("BATT_MONITOR", 4, I8, 0, 30, "4 = voltage and current"),
        Param("BATT_CAPACITY", capacity_mah, I32, 0, 1e6, "mAh"),
        Param("BATT_ARM_VOLT", round(3.5 * cells, 2), F, 0, 100, "V minimum to arm"),
        Param("SIM_ARM_VCELL", 3.5, F, 0, 5, "sim: V per cell minimum to arm"),
        Param("RTL_ALT", 1500, I32, 30, 300000, "cm return altitude (RTL_CONE_SLOPE 3 lowers it near home)"),
        Param("ATC_RAT_RLL_P", 0.135, F), Param("ATC_RAT_PIT_P", 0.135, F), Param("ATC_RAT_YAW_P", 0.18, F),
        # stream rates (Hz) of the message groups on this port; ArduCopter's defaults are all 0, so it streams
        # nothing but HEARTBEAT until a GCS asks (GCS_MAVLink_Parameters.cpp)
        *[Param(f"SR0_{g}", 0, I16, 0, 50, "Hz of the stream group on the GCS port") for g in SR_GROUPS],
    ]


def _px4(sysid: int, hover_throttle: float, cells: int, capacity_mah: float) -> list[Param]:
    return [
        Param("MAV_SYS_ID", sysid, I32, 1, 250, "this vehicle's MAVLink system id"),
        Param("MAV_TYPE", 2, I32, 0, 40, "2 = quadrotor"),
        Param("SYS_AUTOSTART", 4001, I32, 0, 1e7, "4001 = generic quadcopter"),
        Param("CA_ROTOR_COUNT", 4, I32, 0, 12, "quad X"),
        Param("COM_RC_IN_MODE", 4, I32, 0, 4, "4 = no RC, MAVLink only"),
        Param("COM_DL_LOSS_T", 10, I32, 5, 300, "s without GCS heartbeat before the data-link failsafe"),
        Param("NAV_DLL_ACT", 3, I32, 0, 6, "data-link loss action: 1 hold, 2 return, 3 land (firmware default 0)"),
        Param("COM_OF_LOSS_T", 1.0, F, 0, 60, "s without offboard setpoints before the offboard-loss failsafe"),
        Param("COM_OBL_RC_ACT", 0, I32, 0, 7, "offboard-loss action: 0 position (no sticks here: hold), 3 return, 4 land"),
        Param("COM_DISARM_PRFLT", 10.0, F, -1, 20, "s armed on the ground without takeoff before auto-disarm"),
        Param("COM_DISARM_LAND", 2.0, F, -1, 20, "s after landing before auto-disarm"),
        Param("MIS_TAKEOFF_ALT", 2.5, F, 0, 1000, "m takeoff altitude"),
        Param("MPC_LAND_SPEED", 0.7, F, 0.6, 10, "m/s final descent rate"),
        Param("MPC_Z_VEL_MAX_UP", 3.0, F, 0.5, 8), Param("MPC_Z_VEL_MAX_DN", 1.5, F, 0.5, 4),
        Param("MPC_TILTMAX_AIR", 45.0, F, 20, 89, "deg maximum tilt"),
        Param("MPC_THR_HOVER", round(hover_throttle, 4), F, 0.1, 0.8, "hover thrust (from the drone params)"),
        Param("THR_MDL_FAC", 1.0, F, 0, 1, "thrust curve: the simulated motors give thrust ~ speed^2"),
        Param("BAT1_N_CELLS", cells, I32, 1, 16), Param("BAT1_CAPACITY", capacity_mah, F, -1, 1e5),
        Param("SIM_ARM_VCELL", 3.5, F, 0, 5, "sim: V per cell minimum to arm"),
        Param("SIM_ARMING_CHECK", 1, I32, 0, 1, "sim: 0 disables the arming checks"),
        Param("RTL_RETURN_ALT", 60.0, F, 0, 150, "m return altitude above home"),
        Param("RTL_MIN_DIST", 5.0, F, 0.5, 20, "m: closer to home, return at the current altitude"),
        Param("MC_ROLLRATE_P", 0.15, F), Param("MC_PITCHRATE_P", 0.15, F), Param("MC_YAWRATE_P", 0.2, F),
    ]


# Parameters a firmware renamed: (firmware, old name) -> (first version with the new name, new name).
RENAMED = {
    # ArduPilot 4.7 moved the system ids and the stream rates into the GCS library (GCS.cpp MAV_SYSID,
    # MAV_GCS_SYSID, MAVn_* per channel, MAV1 = SERIAL0; ArduCopter Parameters.cpp converts the old names)
    (Firmware.ARDUPILOT, "SYSID_THISMAV"): ((4, 7, 0), "MAV_SYSID"),
    (Firmware.ARDUPILOT, "SYSID_MYGCS"): ((4, 7, 0), "MAV_GCS_SYSID"),
    **{(Firmware.ARDUPILOT, f"SR0_{g}"): ((4, 7, 0), f"MAV1_{g}") for g in SR_GROUPS},
}
MAX_PARAM_ID = 16   # PARAM_VALUE.param_id is char[16]: a longer name cannot be read or written by name


class ParamTable:
    """Ordered parameters with index, range checks and the firmware's wire encoding, named as the emulated
    firmware version names them."""

    def __init__(self, firmware: Firmware, sysid: int = 1, hover_throttle: float = 0.35, cells: int = 4,
                 capacity_mah: float = 1500.0, version: tuple[int, int, int] | None = None):
        self.firmware = firmware
        build = _px4 if firmware == Firmware.PX4 else _ardupilot
        self._params = build(sysid, hover_throttle, cells, capacity_mah)
        self._renamed: dict[str, str] = {}
        for p in self._params:
            since, new = RENAMED.get((firmware, p.name), (None, None))
            if since is not None and version is not None and version >= since:
                self._renamed[p.name] = new
                p.name = new
        self._index = {p.name: i for i, p in enumerate(self._params)}

    def __len__(self) -> int:
        return len(self._params)

    def current_name(self, name: str) -> str:
        """The name this table has for a parameter given by any of its names (SR0_POSITION -> MAV1_POSITION
        on ArduPilot 4.7)."""
        return self._renamed.get(name, name)

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def names(self) -> list[str]:
        return [p.name for p in self._params]

    def at(self, index: int) -> Param:
        return self._params[index]

    def index(self, name: str) -> int:
        return self._index[name]

    def get(self, name: str) -> float:
        if name not in self._index:
            raise ParamError(f"no parameter {name}")
        return self._params[self._index[name]].value

    def set(self, name: str, value: float) -> float:
        """Set a parameter (integers rounded, range-checked); returns the stored value."""
        if name not in self._index:
            raise ParamError(f"no parameter {name}")
        p = self._params[self._index[name]]
        v = float(value)
        if not math.isfinite(v):
            raise ParamError(f"{name}: value must be finite")
        if p.ptype in _INT_TYPES:
            v = float(round(v))
        if not p.lo <= v <= p.hi:
            raise ParamError(f"{name}: {v:g} outside [{p.lo:g}, {p.hi:g}]")
        p.value = v
        return v

    def role(self, key: str, default: float | None = None) -> float:
        """A behaviour setting in SI units, under whatever name this firmware uses for it."""
        ap, px4 = ROLES[key]
        entry = px4 if self.firmware == Firmware.PX4 else ap
        if entry is None or self._renamed.get(entry[0], entry[0]) not in self._index:
            if default is None:
                raise ParamError(f"{self.firmware.value} has no parameter for {key}")
            return default
        name, scale = entry
        return self.get(self._renamed.get(name, name)) * scale

    # -- wire encoding ------------------------------------------------------------------------------
    def wire_value(self, p: Param) -> float:
        if p.ptype in _INT_TYPES and self.firmware == Firmware.PX4:
            return struct.unpack("<f", struct.pack("<i", int(p.value)))[0]
        return float(p.value)

    def from_wire(self, name: str, wire: float, ptype: int) -> float:
        if ptype in _INT_TYPES and self.firmware == Firmware.PX4:
            return float(struct.unpack("<i", struct.pack("<f", wire))[0])
        return float(wire)
