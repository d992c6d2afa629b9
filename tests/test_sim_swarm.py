"""drone-sim-vehicle --count N: several simulated vehicles, on one shared endpoint or one endpoint each.

Each has its own system id, physics and home (spaced east); on a shared link every vehicle hears every frame
and acts only on what is addressed to it, as vehicles behind one telemetry radio do.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from firmware_bridge.sim.swarm import SimSwarm, numbered_endpoints
from firmware_bridge.sim.vehicle import VehicleConfig
from test_deploy_support import SIM_VEHICLE, free_udp_port

ROOT = Path(__file__).resolve().parents[1]


def _collect(conn, kind: str, seconds: float, want: set[int] | None = None) -> dict[int, object]:
    """The last message of a kind from each system id, sending a GCS heartbeat meanwhile."""
    out: dict[int, object] = {}
    end = time.monotonic() + seconds
    next_hb = 0.0
    while time.monotonic() < end and not (want and want <= set(out)):
        if time.monotonic() >= next_hb:
            conn.mav.heartbeat_send(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0)
            next_hb = time.monotonic() + 0.5
        m = conn.recv_match(type=kind, blocking=True, timeout=0.2)
        if m is not None:
            out[m.get_srcSystem()] = m
    return out


def test_four_vehicles_on_one_udp_port_answer_each_to_its_own_system_id():
    port = free_udp_port()
    swarm = SimSwarm(f"udpin:127.0.0.1:{port}", 4, VehicleConfig(firmware="px4", ekf_init_s=0.2), spacing=3.0)
    swarm.start()
    conn = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=255, source_component=190)
    try:
        beats = _collect(conn, "HEARTBEAT", 10.0, want={1, 2, 3, 4})
        assert set(beats) == {1, 2, 3, 4}
        # each stands at its own home, 3 m apart towards the east, on the one link
        pos = _collect(conn, "GLOBAL_POSITION_INT", 10.0, want={1, 2, 3, 4})
        lon = [pos[k].lon * 1e-7 for k in (1, 2, 3, 4)]
        metres = [(b - a) * 111_319.5 * 0.6767 for a, b in zip(lon, lon[1:])]   # cos(47.4 deg)
        assert metres == pytest.approx([3.0, 3.0, 3.0], abs=0.05)
        # a command for vehicle 3 is carried out by vehicle 3 alone (once its estimator is up, as a GCS waits)
        assert swarm.vehicles[2].wait_until(lambda v: v.ap.ekf_ready and v.ap.landed, 10.0)
        conn.mav.command_long_send(3, 1, mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 0, 0, 0, 0, 0, 0)
        ack, said = None, []
        end = time.monotonic() + 5
        while time.monotonic() < end and ack is None:
            m = conn.recv_match(type=["COMMAND_ACK", "STATUSTEXT"], blocking=True, timeout=0.5)
            if m is not None and m.get_type() == "STATUSTEXT":
                said.append((m.get_srcSystem(), m.text))
            elif m is not None and m.command == mavlink.MAV_CMD_COMPONENT_ARM_DISARM:
                ack = m
        if ack is not None and ack.result != mavlink.MAV_RESULT_ACCEPTED:   # the reason follows as STATUSTEXT
            said += [(k, m.text) for k, m in _collect(conn, "STATUSTEXT", 1.0).items()]
        assert ack is not None and ack.get_srcSystem() == 3 and ack.result == mavlink.MAV_RESULT_ACCEPTED, said
        armed = [bool(v.ap.armed) for v in swarm.vehicles]
        assert armed == [False, False, True, False]
    finally:
        conn.close()
        swarm.close()


def test_separate_ptys_one_per_vehicle_from_the_command_line(tmp_path):
    link = tmp_path / "ttySIM"
    proc = subprocess.Popen(SIM_VEHICLE + ["--count", "3", "--link", "separate", "--port", f"pty:{link}",
                                           "--sysid", "7"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while len([ln for ln in lines if ln.startswith("serving on")]) < 3:
            line = proc.stdout.readline()
            assert line, f"drone-sim-vehicle --count 3 did not start: {lines}"
            lines.append(line.strip())
        assert "3 ardupilot quadrotors, sysids 7-9" in lines[0]
        for k, sysid in enumerate((7, 8, 9), start=1):
            tty = f"{link}{k}"
            assert os.path.realpath(tty).startswith("/dev/pts/")
            conn = mavutil.mavlink_connection(tty, baud=115200, source_system=255)
            try:
                assert set(_collect(conn, "HEARTBEAT", 8.0, want={sysid})) == {sysid}
            finally:
                conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0


def test_each_vehicle_can_fly_its_own_params_file_and_bad_counts_are_refused(tmp_path):
    cf2 = str(ROOT / "drone_sim" / "data" / "crazyflie2.json")
    swarm = SimSwarm("pty", 2, VehicleConfig(), drones=[cf2, None], shared=False)
    try:
        masses = [v.ap.mass for v in swarm.vehicles]
        assert masses[0] < 0.05 < masses[1]           # a Crazyflie and the nominal 5-inch quad
        assert [v.sysid for v in swarm.vehicles] == [1, 2]
    finally:
        swarm.close()
    assert numbered_endpoints("udpin:0.0.0.0:14550", 3) == ["udpin:0.0.0.0:14550", "udpin:0.0.0.0:14551",
                                                           "udpin:0.0.0.0:14552"]
    with pytest.raises(ValueError, match="serial ports cannot be numbered"):
        numbered_endpoints("/dev/ttyUSB0", 2)
    with pytest.raises(ValueError, match="past 255"):
        SimSwarm("pty", 3, VehicleConfig(system_id=254))
    res = subprocess.run(SIM_VEHICLE + ["--count", "3", "--drone", cf2, "--drone", cf2], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2 and "one params file for all vehicles or one each (3), got 2" in res.stderr
