"""What a ground station does in a normal session, answered as the real firmwares answer it.

Checked against: the MAVLink mission protocol (mavlink.io/en/services/mission.html: every upload, clear and
set-current is answered, with MISSION_ACK or MISSION_CURRENT); ArduCopter's stream groups (SRx rates,
all 0 by default in GCS_MAVLink_Parameters.cpp, set by REQUEST_DATA_STREAM); PX4's Normal-mode defaults
(mavlink_main.cpp configure_streams_to_default); MAV_CMD_NAV_RETURN_TO_LAUNCH, MAV_CMD_DO_REPOSITION
(GCS_MAVLink_Copter.cpp handle_command_int_do_reposition), MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN (refused when
armed, GCS_Common.cpp handle_preflight_reboot) and MAV_CMD_REQUEST_PROTOCOL_VERSION (PX4 only).
The client is pymavlink's generic mavutil connection on the vehicle's pty.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from pymavlink import mavutil

from fb_helpers import make_vehicle_transport
from firmware_bridge.sim.constants import HOME_ALT, HOME_LAT, HOME_LON
from firmware_bridge.sim.vehicle import SimVehicle, VehicleConfig

M = mavutil.mavlink
DEG_PER_M = 1.0 / 111_319.5


class Session:
    """A simulated vehicle on a pty and a mavutil client on the other end."""

    def __init__(self, firmware: str, **config):
        config.setdefault("ekf_init_s", 0.2)
        transport, endpoint = make_vehicle_transport("pty", None)
        self.vehicle = SimVehicle(transport, VehicleConfig(firmware=firmware, **config))
        self.vehicle.start()
        self.m = mavutil.mavlink_connection(endpoint, baud=115200, source_system=255, source_component=190)
        self.m.mav.heartbeat_send(M.MAV_TYPE_GCS, M.MAV_AUTOPILOT_INVALID, 0, 0, 0)
        assert self.m.wait_heartbeat(timeout=5)
        self.m.target_system, self.m.target_component = 1, 1
        assert self.vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        self._stop = threading.Event()      # a ground station sends its heartbeat at 1 Hz throughout
        self._hb = threading.Thread(target=self._heartbeats, daemon=True)
        self._hb.start()

    def _heartbeats(self) -> None:
        while not self._stop.wait(1.0):
            self.heartbeat()

    def recv(self, mtype, timeout: float = 3.0, cond=None):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = self.m.recv_match(type=mtype, blocking=True, timeout=max(0.01, end - time.monotonic()))
            if msg is not None and (cond is None or cond(msg)):
                return msg
        return None

    def command(self, cmd, *params, timeout: float = 3.0) -> int | None:
        p = list(params) + [0.0] * (7 - len(params))
        self.m.mav.command_long_send(1, 1, cmd, 0, *p)
        ack = self.recv("COMMAND_ACK", timeout, lambda a: a.command == cmd)
        return None if ack is None else ack.result

    def heartbeat(self) -> None:
        self.m.mav.heartbeat_send(M.MAV_TYPE_GCS, M.MAV_AUTOPILOT_INVALID, 0, 0, 0)

    def close(self) -> None:
        self._stop.set()
        self._hb.join(2.0)
        self.m.close()
        self.vehicle.close()


@pytest.fixture(params=["ardupilot", "px4"])
def session(request):
    s = Session(request.param)
    yield s
    s.close()


def _item(seq, cmd, lat=0.0, lon=0.0, alt=0.0, frame=M.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, p1=0.0, p2=0.0):
    return dict(seq=seq, frame=frame, command=cmd, current=0, autocontinue=1, param1=p1, param2=p2, param3=0.0,
                param4=0.0, x=int(round(lat * 1e7)), y=int(round(lon * 1e7)), z=alt)


def _upload(s: Session, items: list[dict], mission_type: int = 0):
    """Upload; the vehicle's MISSION_ACK (its STATUSTEXTs meanwhile go to s.texts)."""
    s.texts = []
    s.m.mav.mission_count_send(1, 1, len(items), mission_type)
    while True:
        msg = s.recv(["MISSION_REQUEST_INT", "MISSION_REQUEST", "MISSION_ACK", "STATUSTEXT"], 3.0)
        assert msg is not None, "the vehicle went silent during an upload"
        if msg.get_type() == "STATUSTEXT":
            s.texts.append(msg.text)
            continue
        if msg.get_type() == "MISSION_ACK":
            return msg
        s.m.mav.mission_item_int_send(1, 1, **items[msg.seq], mission_type=mission_type)


def _download(s: Session, mission_type: int = 0) -> list:
    s.m.mav.mission_request_list_send(1, 1, mission_type)
    count = s.recv("MISSION_COUNT", 3.0, lambda c: c.mission_type == mission_type)
    assert count is not None
    got = []
    for seq in range(count.count):
        s.m.mav.mission_request_int_send(1, 1, seq, mission_type)
        it = s.recv("MISSION_ITEM_INT", 3.0, lambda i, q=seq: i.seq == q)
        assert it is not None, f"no item {seq}"
        got.append(it)
    s.m.mav.mission_ack_send(1, 1, M.MAV_MISSION_ACCEPTED, mission_type)
    return got


def _mission(firmware: str, east: float = 2.0) -> list[dict]:
    lat, lon = HOME_LAT, HOME_LON + east * DEG_PER_M / np.cos(np.radians(HOME_LAT))
    items = [_item(0, M.MAV_CMD_NAV_WAYPOINT, HOME_LAT, HOME_LON, 0.0, M.MAV_FRAME_GLOBAL_INT)] \
        if firmware == "ardupilot" else []          # ArduPilot's item 0 is home
    items += [_item(len(items), M.MAV_CMD_NAV_TAKEOFF, alt=1.5),
              _item(len(items) + 1, M.MAV_CMD_NAV_WAYPOINT, lat, lon, 1.5, p1=1.0, p2=0.3),
              _item(len(items) + 2, M.MAV_CMD_NAV_LAND)]
    return items


def test_mission_upload_download_clear_and_set_current_are_all_answered(session):
    s = session
    items = _mission(s.vehicle.firmware.value)
    ack = _upload(s, items)
    assert ack.type == M.MAV_MISSION_ACCEPTED
    got = _download(s)
    assert [(g.seq, g.command, g.x, g.y, round(g.z, 3)) for g in got] == \
        [(i["seq"], i["command"], i["x"], i["y"], round(i["z"], 3)) for i in items]
    s.m.mav.mission_set_current_send(1, 1, len(items) - 1)
    cur = s.recv("MISSION_CURRENT", 3.0, lambda c: c.seq == len(items) - 1)
    assert cur is not None
    s.m.mav.mission_set_current_send(1, 1, 99)          # no such item: answered, unchanged, with a warning
    cur = s.recv("MISSION_CURRENT", 3.0)
    assert cur is not None and cur.seq == len(items) - 1
    s.m.mav.mission_clear_all_send(1, 1, 0)
    ack = s.recv("MISSION_ACK", 3.0)
    assert ack is not None and ack.type == M.MAV_MISSION_ACCEPTED
    home_only = [0] if s.vehicle.firmware.value == "ardupilot" else []   # AP_Mission keeps home
    assert [i.seq for i in _download(s)] == home_only
    ack = _upload(s, [])                                  # MISSION_COUNT 0: a clear, acknowledged
    assert ack.type == M.MAV_MISSION_ACCEPTED


def test_an_unsupported_item_is_refused_by_name_and_a_silent_uploader_is_cancelled(session):
    s = session
    items = _mission(s.vehicle.firmware.value)
    items[-1]["command"] = M.MAV_CMD_DO_SET_SERVO
    ack = _upload(s, items)
    assert ack.type == M.MAV_MISSION_UNSUPPORTED
    assert any(f"item {len(items) - 1}" in t and "not simulated" in t for t in s.texts), s.texts
    # an upload the ground station abandons: the vehicle asks again, then cancels
    s.m.mav.mission_count_send(1, 1, 2, 0)
    t0 = time.monotonic()
    requests = 0
    ack = None
    while time.monotonic() - t0 < 10 and ack is None:
        msg = s.recv(["MISSION_REQUEST_INT", "MISSION_ACK"], 2.0)
        if msg is not None and msg.get_type() == "MISSION_REQUEST_INT":
            requests += 1
        elif msg is not None:
            ack = msg
    assert ack is not None and ack.type == M.MAV_MISSION_OPERATION_CANCELLED
    assert requests >= 3


def test_a_short_mission_flies_takeoff_waypoint_land(session):
    s = session
    fw = s.vehicle.firmware.value
    items = _mission(fw)
    assert _upload(s, items).type == M.MAV_MISSION_ACCEPTED
    if fw == "ardupilot":   # armed in GUIDED, then MISSION_START (it sets auto_armed: AUTO may take off)
        assert s.command(M.MAV_CMD_DO_SET_MODE, M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 4) == M.MAV_RESULT_ACCEPTED
    else:                   # PX4 arms in mission mode
        assert s.command(M.MAV_CMD_DO_SET_MODE, M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 4, 4) == M.MAV_RESULT_ACCEPTED
    assert s.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    assert s.command(M.MAV_CMD_MISSION_START, 0, 0) == M.MAV_RESULT_ACCEPTED
    reached = []
    top = 0.0
    far_east = 0.0
    end = time.monotonic() + 30
    while time.monotonic() < end:
        msg = s.recv(["MISSION_ITEM_REACHED", "HEARTBEAT"], 0.5)
        if msg is not None and msg.get_type() == "MISSION_ITEM_REACHED":
            reached.append(msg.seq)
        x = s.vehicle.ap.state()
        top, far_east = max(top, x[2]), max(far_east, x[0])
        if not s.vehicle.ap.armed and reached:
            break
    first = 1 if fw == "ardupilot" else 0
    assert reached[:2] == [first, first + 1], reached
    assert not s.vehicle.ap.armed
    assert top == pytest.approx(1.5, abs=0.15) and far_east == pytest.approx(2.0, abs=0.35)
    assert s.vehicle.ap.state()[2] < 0.05


def test_rtl_and_reposition_from_a_ground_station(session):
    s = session
    fw = s.vehicle.firmware.value
    ap = s.vehicle.ap
    with s.vehicle._lock:
        guided = "GUIDED" if fw == "ardupilot" else "AUTO.LOITER"
        assert ap.set_mode("GUIDED" if fw == "ardupilot" else "POSCTL").ok and ap.arm().ok
        assert ap.takeoff(1.0).ok
    assert s.vehicle.wait_until(lambda v: v.ap.state()[2] > 0.9 and v.ap.landed_state == 2, 10)
    # DO_REPOSITION as COMMAND_INT, 2 m north at 2 m relative altitude; CHANGE_MODE set
    lat = int((HOME_LAT + 2.0 * DEG_PER_M) * 1e7)
    s.m.mav.command_int_send(1, 1, M.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, M.MAV_CMD_DO_REPOSITION, 0, 0, -1,
                             M.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE, 0, float("nan"), lat, int(HOME_LON * 1e7), 2.0)
    ack = s.recv("COMMAND_ACK", 3.0, lambda a: a.command == M.MAV_CMD_DO_REPOSITION)
    assert ack is not None and ack.result == M.MAV_RESULT_ACCEPTED
    assert s.vehicle.wait_until(lambda v: np.linalg.norm(v.ap.state()[0:3] - [0, 2, 2]) < 0.2, 10)
    assert ap.mode == guided
    # reboot is refused while armed
    assert s.command(M.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN, 1) in (M.MAV_RESULT_FAILED, M.MAV_RESULT_DENIED)
    # RTL: home, down, disarmed
    assert s.command(M.MAV_CMD_NAV_RETURN_TO_LAUNCH) == M.MAV_RESULT_ACCEPTED
    assert s.vehicle.wait_until(lambda v: not v.ap.armed, 40), ap.events[-5:]
    x = s.vehicle.ap.state()
    assert np.hypot(x[0], x[1]) < 0.3 and x[2] < 0.05


def test_reboot_restarts_the_vehicle_with_its_parameters_and_default_streams(session):
    s = session
    fw = s.vehicle.firmware.value
    name = "FS_GCS_TIMEOUT" if fw == "ardupilot" else "COM_DL_LOSS_T"
    s.vehicle.params.set(name, 17)
    s.command(M.MAV_CMD_SET_MESSAGE_INTERVAL, M.MAVLINK_MSG_ID_HIGHRES_IMU, 20000)
    assert s.recv("HIGHRES_IMU", 2.0) is not None
    assert s.command(M.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN, 1) == M.MAV_RESULT_ACCEPTED
    t0 = time.monotonic()
    time.sleep(0.3)
    s.m.recv_match(blocking=False)                       # drain what was in flight
    while s.m.recv_match(blocking=False) is not None:
        pass
    hb = s.recv("HEARTBEAT", 5.0)
    assert hb is not None and time.monotonic() - t0 >= 1.0   # silent while rebooting
    att = s.recv("ATTITUDE", 3.0) if fw == "px4" else None
    assert fw == "ardupilot" or (att is not None and att.time_boot_ms < 5000)   # boot time from 0
    assert s.recv("HIGHRES_IMU", 1.5) is None            # the requested rate is forgotten
    assert s.vehicle.params.get(name) == 17               # the parameters are not


@pytest.mark.parametrize("firmware", ["ardupilot", "px4"])
def test_default_streams_are_the_firmware_defaults(firmware):
    """ArduCopter: HEARTBEAT only until asked (SRx 0); REQUEST_DATA_STREAM POSITION at 4 Hz then gives
    GLOBAL_POSITION_INT and LOCAL_POSITION_NED. PX4 Normal mode: position and attitude from boot."""
    s = Session(firmware)
    try:
        seen = {}
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            msg = s.m.recv_match(blocking=True, timeout=0.1)
            if msg is not None:
                seen[msg.get_type()] = seen.get(msg.get_type(), 0) + 1
        if firmware == "px4":
            for name in ("GLOBAL_POSITION_INT", "LOCAL_POSITION_NED", "ATTITUDE", "SYS_STATUS", "ESTIMATOR_STATUS"):
                assert name in seen, (name, seen)
            assert seen["ATTITUDE"] > 25                  # 15 Hz
            return
        assert "GLOBAL_POSITION_INT" not in seen and "ATTITUDE" not in seen and "SYS_STATUS" not in seen, seen
        s.m.mav.request_data_stream_send(1, 1, M.MAV_DATA_STREAM_POSITION, 4, 1)
        assert s.recv("GLOBAL_POSITION_INT", 2.0) is not None and s.recv("LOCAL_POSITION_NED", 2.0) is not None
        assert s.vehicle.params.get("SR0_POSITION") == 4
    finally:
        s.close()


def test_px4_answers_request_protocol_version_and_ardupilot_does_not():
    for fw, want in (("px4", M.MAV_RESULT_ACCEPTED), ("ardupilot", M.MAV_RESULT_UNSUPPORTED)):
        s = Session(fw)
        try:
            assert s.command(M.MAV_CMD_REQUEST_PROTOCOL_VERSION, 1) == want
        finally:
            s.close()
