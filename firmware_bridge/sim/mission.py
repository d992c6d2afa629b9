"""The simulated vehicle's mission micro-service: upload, download, clear, set-current, for missions, fences
and rally points (https://mavlink.io/en/services/mission.html).

A ground station uploads with MISSION_COUNT, then answers each MISSION_REQUEST_INT with a MISSION_ITEM_INT
(or a legacy MISSION_ITEM) until the vehicle closes the transfer with MISSION_ACK; it downloads with
MISSION_REQUEST_LIST -> MISSION_COUNT -> MISSION_REQUEST_INT / MISSION_ITEM_INT ... -> its own MISSION_ACK.
Every request gets an answer: an error is a MISSION_ACK naming the MAV_MISSION_RESULT, never silence. A
request the ground station leaves unanswered is sent again every RESEND_S, and the upload is cancelled
(MISSION_ACK OPERATION_CANCELLED) after RETRIES, as the firmwares do.

What a mission may contain is what a quadcopter flown from a laptop uses: NAV_TAKEOFF, NAV_WAYPOINT,
NAV_LAND and NAV_RETURN_TO_LAUNCH in a global frame (altitude relative to home or above sea level). An
upload with anything else is refused with MAV_MISSION_UNSUPPORTED (or UNSUPPORTED_FRAME) and a STATUSTEXT
naming the item, where the real firmwares would take it and fly it: the simulator does not pretend.
ArduPilot keeps item 0 for home (it is uploaded and downloaded, never flown, and a cleared mission still
holds it: AP_Mission keeps home at index 0); PX4 flies from item 0 and clears to nothing.
Fence and rally lists are stored and returned, not enforced.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from ..modes import Firmware

RESEND_S = 1.0
RETRIES = 5
SUPPORTED_COMMANDS = {
    mavlink.MAV_CMD_NAV_WAYPOINT: "WAYPOINT", mavlink.MAV_CMD_NAV_TAKEOFF: "TAKEOFF",
    mavlink.MAV_CMD_NAV_LAND: "LAND", mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH: "RTL",
}
RELATIVE_FRAMES = {mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT}
ABSOLUTE_FRAMES = {mavlink.MAV_FRAME_GLOBAL, mavlink.MAV_FRAME_GLOBAL_INT}
# RTL takes no position; a fence or rally list may hold other commands, stored as given
FRAMELESS = {mavlink.MAV_FRAME_MISSION}


@dataclasses.dataclass
class Item:
    """One stored item, as MISSION_ITEM_INT carries it (x, y in degE7)."""

    seq: int
    frame: int
    command: int
    current: int
    autocontinue: int
    param1: float
    param2: float
    param3: float
    param4: float
    x: int
    y: int
    z: float
    mission_type: int

    @property
    def relative_alt(self) -> bool:
        return self.frame in RELATIVE_FRAMES


class MissionService:
    """The protocol side. `send(msg)` puts a message on the link, `say(text, severity)` a STATUSTEXT,
    `changed(mission_type, items)` tells the flight controller a list changed, `set_current(seq)` asks
    it to jump (returns False for a sequence it does not have)."""

    def __init__(self, mav, firmware: Firmware, send: Callable, say: Callable[[str, int], None],
                 changed: Callable[[int, list[Item]], None], set_current: Callable[[int], bool],
                 home: tuple[float, float, float], clock: Callable[[], float] = time.monotonic):
        self.mav, self.firmware = mav, firmware
        self.home = home   # (lat deg, lon deg, alt m AMSL): ArduPilot's item 0
        self.send, self.say, self.changed, self.set_current_cb = send, say, changed, set_current
        self.clock = clock
        self.lists: dict[int, list[Item]] = {t: [] for t in (mavlink.MAV_MISSION_TYPE_MISSION,
                                                             mavlink.MAV_MISSION_TYPE_FENCE,
                                                             mavlink.MAV_MISSION_TYPE_RALLY)}
        self.current = 0
        self._upload: dict | None = None   # {peer, type, count, items, next, sent_at, tries}
        self._store(mavlink.MAV_MISSION_TYPE_MISSION, [])

    # ------------------------------------------------------------------ helpers
    def _ack(self, peer: tuple[int, int], result: int, mission_type: int) -> None:
        self.send(self.mav.mission_ack_encode(peer[0], peer[1], result, mission_type))

    def _request(self) -> None:
        u = self._upload
        self.send(self.mav.mission_request_int_encode(u["peer"][0], u["peer"][1], u["next"], u["type"]))
        u["sent_at"] = self.clock()

    @staticmethod
    def _peer(msg) -> tuple[int, int]:
        return msg.get_srcSystem(), msg.get_srcComponent()

    # ------------------------------------------------------------------ upload
    def on_mission_count(self, msg) -> None:
        mtype = getattr(msg, "mission_type", 0)
        if mtype not in self.lists:
            self._ack(self._peer(msg), mavlink.MAV_MISSION_UNSUPPORTED, mtype)
            return
        if msg.count == 0:
            self._store(mtype, [])
            self._ack(self._peer(msg), mavlink.MAV_MISSION_ACCEPTED, mtype)
            return
        self._upload = {"peer": self._peer(msg), "type": mtype, "count": int(msg.count), "items": [],
                        "next": 0, "sent_at": 0.0, "tries": 0}
        self._request()

    def on_mission_item_int(self, msg) -> None:
        self._item(msg, int(msg.x), int(msg.y))

    def on_mission_item(self, msg) -> None:
        self._item(msg, int(round(msg.x * 1e7)), int(round(msg.y * 1e7)))

    def _item(self, msg, x: int, y: int) -> None:
        u = self._upload
        mtype = getattr(msg, "mission_type", 0)
        if u is None or mtype != u["type"] or self._peer(msg) != u["peer"]:
            # not in an upload (or another one): a stray item; say so, the list is unchanged
            self._ack(self._peer(msg), mavlink.MAV_MISSION_DENIED, mtype)
            return
        if msg.seq != u["next"]:
            if msg.seq < u["next"]:
                return                       # a duplicate of one already taken (our request was resent)
            self._ack(u["peer"], mavlink.MAV_MISSION_INVALID_SEQUENCE, mtype)
            self._upload = None
            return
        item = Item(int(msg.seq), int(msg.frame), int(msg.command), int(msg.current), int(msg.autocontinue),
                    float(msg.param1), float(msg.param2), float(msg.param3), float(msg.param4), x, y,
                    float(msg.z), mtype)
        problem = self._check(item)
        if problem is not None:
            result, text = problem
            self.say(text, mavlink.MAV_SEVERITY_WARNING)
            self._ack(u["peer"], result, mtype)
            self._upload = None
            return
        u["items"].append(item)
        u["next"] += 1
        u["tries"] = 0
        if u["next"] < u["count"]:
            self._request()
            return
        self._store(mtype, u["items"])
        self._upload = None
        self._ack(self._peer(msg), mavlink.MAV_MISSION_ACCEPTED, mtype)

    def _check(self, item: Item) -> tuple[int, str] | None:
        if item.mission_type != mavlink.MAV_MISSION_TYPE_MISSION:
            return None
        if self.firmware == Firmware.ARDUPILOT and item.seq == 0:
            return None                      # home
        name = SUPPORTED_COMMANDS.get(item.command)
        if name is None:
            return (mavlink.MAV_MISSION_UNSUPPORTED,
                    f"Mission item {item.seq}: command {item.command} not simulated")
        if item.command != mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH and \
                item.frame not in RELATIVE_FRAMES | ABSOLUTE_FRAMES:
            return (mavlink.MAV_MISSION_UNSUPPORTED_FRAME,
                    f"Mission item {item.seq}: frame {item.frame} not simulated")
        return None

    def _home_item(self) -> Item:
        lat, lon, alt = self.home
        return Item(0, mavlink.MAV_FRAME_GLOBAL, mavlink.MAV_CMD_NAV_WAYPOINT, 0, 1, 0.0, 0.0, 0.0, 0.0,
                    int(round(lat * 1e7)), int(round(lon * 1e7)), alt, mavlink.MAV_MISSION_TYPE_MISSION)

    def _store(self, mtype: int, items: list[Item]) -> None:
        if mtype == mavlink.MAV_MISSION_TYPE_MISSION and self.firmware == Firmware.ARDUPILOT and not items:
            items = [self._home_item()]
        self.lists[mtype] = list(items)
        if mtype == mavlink.MAV_MISSION_TYPE_MISSION:
            self.current = 0
        self.changed(mtype, self.lists[mtype])

    def poll(self) -> None:
        """Resend an unanswered request; cancel the upload after RETRIES."""
        u = self._upload
        if u is None or self.clock() - u["sent_at"] < RESEND_S:
            return
        u["tries"] += 1
        if u["tries"] > RETRIES:
            self.say("Mission upload timed out", mavlink.MAV_SEVERITY_WARNING)
            self._ack(u["peer"], mavlink.MAV_MISSION_OPERATION_CANCELLED, u["type"])
            self._upload = None
            return
        self._request()

    # ------------------------------------------------------------------ download, clear, current
    def on_mission_request_list(self, msg) -> None:
        mtype = getattr(msg, "mission_type", 0)
        if mtype not in self.lists:
            self._ack(self._peer(msg), mavlink.MAV_MISSION_UNSUPPORTED, mtype)
            return
        self.send(self.mav.mission_count_encode(msg.get_srcSystem(), msg.get_srcComponent(),
                                                len(self.lists[mtype]), mtype))

    def on_mission_request_int(self, msg) -> None:
        self._send_item(msg, as_int=True)

    def on_mission_request(self, msg) -> None:
        self._send_item(msg, as_int=False)

    def _send_item(self, msg, as_int: bool) -> None:
        mtype = getattr(msg, "mission_type", 0)
        items = self.lists.get(mtype)
        if items is None or not 0 <= msg.seq < len(items):
            self._ack(self._peer(msg), mavlink.MAV_MISSION_INVALID_SEQUENCE, mtype)
            return
        it = items[msg.seq]
        peer = self._peer(msg)
        current = int(mtype == mavlink.MAV_MISSION_TYPE_MISSION and it.seq == self.current)
        if as_int:
            m = self.mav.mission_item_int_encode(peer[0], peer[1], it.seq, it.frame, it.command, current,
                                                 it.autocontinue, it.param1, it.param2, it.param3, it.param4,
                                                 it.x, it.y, it.z, mtype)
        else:
            m = self.mav.mission_item_encode(peer[0], peer[1], it.seq, it.frame, it.command, current,
                                             it.autocontinue, it.param1, it.param2, it.param3, it.param4,
                                             it.x * 1e-7, it.y * 1e-7, it.z, mtype)
        self.send(m)

    def on_mission_ack(self, msg) -> None:
        """The ground station's ACK closing a download: nothing to do (a download holds no state here)."""

    def on_mission_clear_all(self, msg) -> None:
        mtype = getattr(msg, "mission_type", 0)
        if mtype == mavlink.MAV_MISSION_TYPE_ALL:
            for t in self.lists:
                self._store(t, [])
        elif mtype in self.lists:
            self._store(mtype, [])
        else:
            self._ack(self._peer(msg), mavlink.MAV_MISSION_UNSUPPORTED, mtype)
            return
        self._ack(self._peer(msg), mavlink.MAV_MISSION_ACCEPTED, mtype)

    def on_mission_set_current(self, msg) -> None:
        """Both firmwares answer with MISSION_CURRENT (the new item, or the unchanged one when the
        sequence does not exist, with a warning)."""
        if self.set_current_cb(int(msg.seq)):
            self.current = int(msg.seq)
        else:
            self.say(f"Mission: no item {msg.seq}", mavlink.MAV_SEVERITY_WARNING)
        self.send(self.mission_current())

    def mission_current(self):
        return self.mav.mission_current_encode(self.current)
