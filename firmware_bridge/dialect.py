"""The MAVLink messages PX4 sends that pymavlink's ArduPilot dialect lacks, added to it.

PX4 is built with MAVLink's development dialect (upstream common.xml and more); pymavlink's dialects come
from ArduPilot's copy of the definitions, which leaves out the events protocol (EVENT,
CURRENT_EVENT_SEQUENCE: how PX4 reports its failsafes, "Failsafe activated", "Connection to ground station
lost") and PROTOCOL_VERSION. Without them those frames cannot be checked (no CRC extra) or read. Each class
here is written from the message's definition in common.xml (field order, wire order by type size, CRC
extra) and registered in the dialect's message map at import, so decoding checks its CRC like any other;
firmware_bridge imports this module first. Other unknown ids are still skipped whole (framing.py).
"""
from __future__ import annotations

import struct

from pymavlink.dialects.v20 import ardupilotmega as mavlink


class _Message(mavlink.MAVLink_message):
    """A message defined by its field names (declaration order), wire order and struct format."""

    id = 0
    msgname = ""
    fieldnames: list[str] = []
    ordered_fieldnames: list[str] = []
    lengths: list[int] = []          # per wire-order field: 1, or the array length
    crc_extra = 0
    unpacker = struct.Struct("<")
    instance_field = None
    instance_offset = -1

    def __init__(self, *values):
        mavlink.MAVLink_message.__init__(self, self.id, self.msgname)
        self._fieldnames = self.fieldnames
        self._instance_field, self._instance_offset = None, -1
        for name, value in zip(self.fieldnames, values):
            setattr(self, name, value)

    def pack(self, mav, force_mavlink1: bool = False) -> bytes:
        flat = []
        for name, n in zip(self.ordered_fieldnames, self.lengths):
            v = getattr(self, name)
            flat.extend(list(v) if n > 1 else [v])
        return self._pack(mav, self.crc_extra, self.unpacker.pack(*flat), force_mavlink1=force_mavlink1)


def _define(msg_id: int, name: str, crc_extra: int, fields: list[tuple[str, str, int]]) -> type:
    """fields: (name, struct code, array length) in declaration order. The wire order sorts them by type
    size, largest first, keeping declaration order among equals (the MAVLink serialization rule)."""
    size = {"Q": 8, "q": 8, "d": 8, "I": 4, "i": 4, "f": 4, "H": 2, "h": 2, "B": 1, "b": 1}
    wire = sorted(fields, key=lambda f: -size[f[1]])
    fmt = "<" + "".join(f"{n}{code}" if n > 1 else code for _, code, n in wire)
    attrs = {
        "id": msg_id, "msgname": name, "crc_extra": crc_extra,
        "fieldnames": [f[0] for f in fields], "ordered_fieldnames": [f[0] for f in wire],
        "lengths": [f[2] for f in wire], "array_lengths": [f[2] if f[2] > 1 else 0 for f in wire],
        "orders": [wire.index(f) for f in fields], "unpacker": struct.Struct(fmt),
    }
    return type(f"MAVLink_{name.lower()}_message", (_Message,), attrs)


ProtocolVersion = _define(300, "PROTOCOL_VERSION", 217, [
    ("version", "H", 1), ("min_version", "H", 1), ("max_version", "H", 1),
    ("spec_version_hash", "B", 8), ("library_version_hash", "B", 8)])
Event = _define(410, "EVENT", 160, [
    ("destination_component", "B", 1), ("destination_system", "B", 1), ("id", "I", 1),
    ("event_time_boot_ms", "I", 1), ("sequence", "H", 1), ("log_levels", "B", 1), ("arguments", "B", 40)])
CurrentEventSequence = _define(411, "CURRENT_EVENT_SEQUENCE", 106, [("sequence", "H", 1), ("flags", "B", 1)])

ADDED = (ProtocolVersion, Event, CurrentEventSequence)
for _cls in ADDED:
    mavlink.mavlink_map.setdefault(_cls.id, _cls)
