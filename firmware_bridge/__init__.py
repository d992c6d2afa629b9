"""firmware_bridge: the laptop's MAVLink link to a flight controller, and a simulated one to test it on.

    from firmware_bridge import MavLink
    with MavLink("/dev/ttyUSB0", baud=57600) as link:      # or "udpin:0.0.0.0:14550", "tcp:127.0.0.1:5760"
        link.connect()
        link.commands.arm()

Modules: link (the connection, state, heartbeat), commands (ACKed commands, setpoints, parameters),
frames (every NED/FRD <-> ENU/FLU conversion), vehicle_state, modes, thrust (per-firmware thrust
semantics), signing (MAVLink 2 signing keys), framing (fault-tolerant frame parser), dialect (PX4's
messages missing from pymavlink's dialect), transport (serial,
UDP, TCP, pty). The simulated vehicle (drone-sim-vehicle) is the sim/ subpackage; the modules above never
import it or the simulator.
See firmware_bridge/README.md.
"""
from . import dialect  # noqa: F401  (first: PX4's messages join the dialect before anything parses)
from .commands import (CommandError, CommandRejected, CommandTimeout, Commands, OffboardError, UnsupportedError,
                       actuator_targets_supported)
from .framing import FrameParser, LineStats
from .link import DEFAULT_STREAMS, MavLink, VehicleNotFoundError
from .modes import Firmware
from .signing import SigningKeyError, load_key
from .transport import EndpointError, LinkDownError
from .vehicle_state import VehicleInfo, VehicleState

__all__ = [
    "CommandError", "CommandRejected", "CommandTimeout", "Commands", "DEFAULT_STREAMS", "EndpointError", "Firmware",
    "FrameParser", "LineStats", "LinkDownError", "MavLink", "OffboardError", "SigningKeyError", "UnsupportedError",
    "VehicleInfo", "VehicleNotFoundError", "VehicleState", "actuator_targets_supported", "load_key",
]
