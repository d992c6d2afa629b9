"""A standard MAVLink client connects to `drone-sim-vehicle` and sees a healthy vehicle.

The client is pymavlink's generic mavutil connection: an implementation independent of firmware_bridge
(its own serial code, parser and ArduPilot/PX4 mode tables). It runs the connection sequence a ground
station such as QGroundControl runs (firmware_bridge/README.md lists it): heartbeat and autopilot
identification, AUTOPILOT_VERSION and capabilities, the full parameter download with index/count
bookkeeping and re-requests, mission/fence/rally counts, home position, telemetry streams, sensor health
and pre-arm state, then a mode change and arming with mavutil's own helpers. The vehicle is the real
console script in a subprocess on a pty, so the test also covers the command line.
"""
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("MAVLINK20", "1")
from pymavlink import mavutil  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def vehicle_command() -> list[str]:
    exe = Path(sys.executable).parent / "drone-sim-vehicle"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("drone-sim-vehicle")
    return [found] if found else [sys.executable, "-m", "firmware_bridge.sim"]


@pytest.fixture(params=["ardupilot", "px4"])
def vehicle_process(request):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(vehicle_command() + ["--firmware", request.param, "--sysid", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    path = None
    deadline = time.monotonic() + 30
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("serving on "):
            path = line.split("serving on ", 1)[1].strip()
            break
    if path is None:
        proc.kill()
        pytest.fail(f"drone-sim-vehicle did not print its port: {lines} {proc.stderr.read()}")
    assert path.startswith("/dev/pts/")
    yield request.param, path, proc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read()


def recv(m, types, timeout=3.0, cond=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        msg = m.recv_match(type=types, blocking=True, timeout=0.1)
        if msg is not None and (cond is None or cond(msg)):
            return msg
    return None


def command(m, cmd, *params, timeout=2.0):
    p = list(params) + [0] * (7 - len(params))
    for attempt in range(3):
        m.mav.command_long_send(m.target_system, m.target_component, cmd, attempt, *p)
        ack = recv(m, "COMMAND_ACK", timeout / 3, lambda a: a.command == cmd)
        if ack is not None:
            return ack.result
    return None


def test_standard_client_connects_like_a_ground_station(vehicle_process):
    firmware, path, proc = vehicle_process
    m = mavutil.mavlink_connection(path, baud=115200, source_system=255,
                                   source_component=mavutil.mavlink.MAV_COMP_ID_MISSIONPLANNER)
    try:
        m.mav.heartbeat_send(mavutil.mavlink.MAV_TYPE_GCS, mavutil.mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0)
        hb = m.wait_heartbeat(timeout=5)
        assert hb is not None
        assert m.target_system == 3
        m.target_component = hb.get_srcComponent()
        expected_ap = (mavutil.mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA if firmware == "ardupilot"
                       else mavutil.mavlink.MAV_AUTOPILOT_PX4)
        assert hb.autopilot == expected_ap and hb.type == mavutil.mavlink.MAV_TYPE_QUADROTOR
        assert m.WIRE_PROTOCOL_VERSION == "2.0"

        # AUTOPILOT_VERSION: MAVLink 2, parameter encoding
        assert command(m, mavutil.mavlink.MAV_CMD_REQUEST_MESSAGE,
                       mavutil.mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION) == 0
        ver = recv(m, "AUTOPILOT_VERSION")
        assert ver.capabilities & mavutil.mavlink.MAV_PROTOCOL_CAPABILITY_MAVLINK2
        bytewise = bool(ver.capabilities & mavutil.mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE)
        assert bytewise == (firmware == "px4")
        assert command(m, mavutil.mavlink.MAV_CMD_REQUEST_PROTOCOL_VERSION, 1) in (0, 3)  # answered, not ignored

        # the full parameter download, as a GCS does it (with re-requests of missing indices)
        m.mav.param_request_list_send(m.target_system, m.target_component)
        params, count = {}, None
        end = time.monotonic() + 10
        while time.monotonic() < end and (count is None or len(params) < count):
            pv = recv(m, "PARAM_VALUE", 0.5)
            if pv is None:
                for i in set(range(count or 0)) - set(params):
                    m.mav.param_request_read_send(m.target_system, m.target_component, b"", i)
                continue
            count = pv.param_count
            params[pv.param_index] = pv
        assert count and len(params) == count and set(params) == set(range(count))
        names = {p.param_id: p for p in params.values()}
        sysid_name = "SYSID_THISMAV" if firmware == "ardupilot" else "MAV_SYS_ID"
        raw = names[sysid_name]
        value = struct.unpack("<i", struct.pack("<f", raw.param_value))[0] if bytewise else raw.param_value
        assert value == 3
        # a parameter write is echoed
        # a parameter write, with the type the download announced (COM_DL_LOSS_T is an INT32 on PX4), is echoed
        fs = "FS_GCS_TIMEOUT" if firmware == "ardupilot" else "COM_DL_LOSS_T"
        ptype = names[fs].param_type
        is_int = ptype != mavutil.mavlink.MAV_PARAM_TYPE_REAL32
        assert is_int == (firmware == "px4")
        wire = struct.unpack("<f", struct.pack("<i", 12))[0] if (is_int and bytewise) else 12.0
        m.mav.param_set_send(m.target_system, m.target_component, fs.encode(), wire, ptype)
        echo = recv(m, "PARAM_VALUE", 2.0, lambda p: p.param_id == fs)
        assert echo is not None and echo.param_type == ptype
        got = struct.unpack("<i", struct.pack("<f", echo.param_value))[0] if (is_int and bytewise) else echo.param_value
        assert got == pytest.approx(12.0)

        # missions, fence, rally: empty lists (ArduPilot's mission always holds home as item 0)
        for mission_type in (0, 1, 2):
            m.mav.mission_request_list_send(m.target_system, m.target_component, mission_type)
            mc = recv(m, "MISSION_COUNT", 2.0, lambda c: c.mission_type == mission_type)
            assert mc is not None and mc.count == (1 if firmware == "ardupilot" and mission_type == 0 else 0)
        assert command(m, mavutil.mavlink.MAV_CMD_REQUEST_MESSAGE, mavutil.mavlink.MAVLINK_MSG_ID_HOME_POSITION) == 0
        assert recv(m, "HOME_POSITION") is not None

        # telemetry streams the way MAVProxy asks ArduPilot for them (PX4 ignores REQUEST_DATA_STREAM and
        # streams its Normal-mode set from boot), the rest by SET_MESSAGE_INTERVAL, and health
        m.mav.request_data_stream_send(m.target_system, m.target_component, mavutil.mavlink.MAV_DATA_STREAM_ALL,
                                       10, 1)
        for t in ("ATTITUDE", "GLOBAL_POSITION_INT", "SYS_STATUS", "VFR_HUD"):
            assert recv(m, t, 3.0) is not None, t
        for t in ("HIGHRES_IMU", "EXTENDED_SYS_STATE"):
            msg_id = getattr(mavutil.mavlink, f"MAVLINK_MSG_ID_{t}")
            assert command(m, mavutil.mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, msg_id, 100000) == 0
            assert recv(m, t, 3.0) is not None, t
        prearm = mavutil.mavlink.MAV_SYS_STATUS_PREARM_CHECK
        st = recv(m, "SYS_STATUS", 3.0, lambda s: s.onboard_control_sensors_health & prearm)
        assert st is not None, "pre-arm checks never passed"
        present = st.onboard_control_sensors_present
        assert present == st.onboard_control_sensors_enabled and st.onboard_control_sensors_health & present == present
        assert st.voltage_battery > 14000 and st.battery_remaining > 90
        est = "EKF_STATUS_REPORT" if firmware == "ardupilot" else "ESTIMATOR_STATUS"
        e = recv(m, est, 3.0)
        assert e is not None and e.flags & 1  # attitude estimate valid

        # fly-ready: mavutil's own mode table and arming helpers
        mode = "GUIDED" if firmware == "ardupilot" else "POSCTL"
        m.set_mode(mode)
        hb = recv(m, "HEARTBEAT", 3.0, lambda h: mavutil.mode_string_v10(h) == mode)
        assert hb is not None, f"mode {mode} not reached"
        m.arducopter_arm()
        assert recv(m, "HEARTBEAT", 3.0, lambda h: h.base_mode & mavutil.mavlink.MAV_MODE_FLAG_SAFETY_ARMED)
        m.arducopter_disarm()
        assert recv(m, "HEARTBEAT", 3.0, lambda h: not h.base_mode & mavutil.mavlink.MAV_MODE_FLAG_SAFETY_ARMED)
        texts = [msg.text for msg in [m.messages.get("STATUSTEXT")] if msg is not None]
        assert texts and "Disarm" in texts[0]
    finally:
        m.close()
    assert proc.poll() is None  # the vehicle survived a whole GCS session


def test_command_line_rejects_bad_input():
    from firmware_bridge.sim.cli import main

    with pytest.raises(SystemExit):
        main(["--param", "NO_EQUALS_SIGN"])
    assert main(["--drone", "/nonexistent/params.json", "--duration", "0.1"]) == 2
    assert main(["--param", "FS_GCS_TIMEOUT=9999", "--duration", "0.1"]) == 2
