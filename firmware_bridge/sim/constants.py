"""What the simulated vehicle's modules share: message ids by name, the simulated home, addressing."""
from __future__ import annotations

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from ..frames import M_PER_DEG_LAT

MSG = {name[len("MAVLINK_MSG_ID_"):]: getattr(mavlink, name)
       for name in dir(mavlink) if name.startswith("MAVLINK_MSG_ID_")}
HOME_LAT, HOME_LON, HOME_ALT = 47.397742, 8.545594, 488.0   # where PX4 SITL puts its home, for GCS maps
REBOOT_S = 1.5   # a flight controller's silence while it reboots
DEG_PER_M_LAT = 1.0 / M_PER_DEG_LAT

SETPOINT_IDS = frozenset({MSG["SET_ATTITUDE_TARGET"], MSG["SET_ACTUATOR_CONTROL_TARGET"],
                           MSG["SET_POSITION_TARGET_LOCAL_NED"]})


def param_text(v) -> str:
    """A MAVLink char[] field as text (pymavlink gives bytes or str, NUL-padded)."""
    if isinstance(v, bytes):
        v = v.decode("ascii", "replace")
    return str(v).rstrip("\x00")


def for_me(msg, sysid: int, compid: int) -> bool:
    """Whether a message addresses this vehicle (or everyone), as a flight controller filters them."""
    ts = getattr(msg, "target_system", None)
    if ts is not None and ts not in (0, sysid):
        return False
    tc = getattr(msg, "target_component", None)
    if tc is not None and tc not in (0, compid, mavlink.MAV_COMP_ID_ALL):
        return False
    return True
