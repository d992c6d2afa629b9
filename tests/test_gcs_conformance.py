"""The ground-control tools users actually use fly `drone-sim-vehicle`, both personalities, a whole session.

Two independent clients, installed by scripts/setup.sh (never skipped in CI):
- MAVProxy (its own venv, .venv-gcs: its GUI dependencies would clash with this project's opencv), driven
  through its console: connect, parameter download and set, GUIDED (ArduPilot) or POSCTL (PX4), arm,
  takeoff, a three-item mission uploaded with `wp load` and flown in AUTO, then land and disarm.
- MAVSDK-Python 4 (MAVSDK's C++ core as a native library): connect, health, parameters, arm, takeoff,
  goto (DO_REPOSITION), a mission uploaded with its raw-mission plugin and started, RTL to touchdown.

The vehicle is the console script in a subprocess (pty for MAVProxy, UDP for MAVSDK, as each is used
with SITL) at twice real time, so a session takes tens of seconds. Every wait is for what the tool says
or reports, with a deadline, never a fixed sleep.
"""
from __future__ import annotations

import math
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fb_helpers import free_udp_port
from test_firmware_bridge_gcs import REPO, vehicle_command

HOME_LAT, HOME_LON = 47.397742, 8.545594       # firmware_bridge.sim.constants: the simulated home
DEG_PER_M = 1.0 / 111_319.5
MAVPROXY = REPO / ".venv-gcs" / "bin" / "mavproxy.py"


class Console:
    """A console program (MAVProxy, the vehicle) whose output is read on a thread and waited on."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict | None = None):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, cwd=cwd, env=env, bufsize=1)
        self.out: list[str] = []
        self._q: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.out.append(line)
            self._q.put(line)

    def expect(self, pattern: str, timeout: float = 20.0) -> re.Match:
        """The first new line matching pattern (lines before it are consumed)."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self._q.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            m = rx.search(line)
            if m:
                return m
        raise AssertionError(f"no {pattern!r} within {timeout:g} s; last output:\n" + "".join(self.out[-40:]))

    def ask(self, line: str, pattern: str, timeout: float = 20.0, every: float = 1.0) -> re.Match:
        """Send line until the answer matches (for a cached value that changes once the vehicle echoes)."""
        end = time.monotonic() + timeout
        while True:
            self.send(line)
            try:
                return self.expect(pattern, min(every, max(0.1, end - time.monotonic())))
            except AssertionError:
                if time.monotonic() >= end:
                    raise

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _vehicle(tmp_path: Path, firmware: str, endpoint: list[str]) -> Console:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    v = Console(vehicle_command() + endpoint + ["--firmware", firmware, "--speed", "2"], tmp_path, env)
    v.expect(r"^serving on ", 30)
    return v


def _east(metres: float) -> float:
    return HOME_LON + metres * DEG_PER_M / math.cos(math.radians(HOME_LAT))


def _mission_file(path: Path, firmware: str) -> int:
    """QGC WPL 110 (what `wp load` reads): takeoff to 1.5 m, a waypoint 2 m east, land. ArduPilot's list
    starts with home (item 0, never flown); PX4's does not."""
    rows = []
    if firmware == "ardupilot":
        rows.append((1, 0, 16, 0, HOME_LAT, HOME_LON, 488.0))
    rows += [(0, 3, 22, 0, 0.0, 0.0, 1.5), (0, 3, 16, 1, HOME_LAT, _east(2.0), 1.5), (0, 3, 21, 0, 0.0, 0.0, 0.0)]
    lines = ["QGC WPL 110"]
    for seq, (cur, frame, cmd, p1, lat, lon, alt) in enumerate(rows):
        lines.append(f"{seq}\t{cur}\t{frame}\t{cmd}\t{p1}\t0\t0\t0\t{lat:.7f}\t{lon:.7f}\t{alt}\t1")
    path.write_text("\n".join(lines) + "\n")
    return len(rows)


@pytest.mark.parametrize("firmware", ["ardupilot", "px4"])
def test_mavproxy_session(tmp_path, firmware):
    assert MAVPROXY.exists(), f"{MAVPROXY} missing: scripts/setup.sh installs MAVProxy there"
    link = tmp_path / "ttySIM"
    veh = _vehicle(tmp_path, firmware, ["--pty", str(link)])
    mp = Console([str(MAVPROXY), f"--master={link}", "--baudrate", "115200", f"--state-basedir={tmp_path}",
                  "--nowait", "--default-modules=mode,param,wp,arm,cmdlong,misc,rally,fence,log,link,signing,"
                  "battery,relay,terrain"], tmp_path)
    ardu = firmware == "ardupilot"
    try:
        mp.expect(r"Detected vehicle 1:1", 30)
        n = int(mp.expect(r"Received (\d+) parameters", 60).group(1))
        assert n > 20
        name = "FS_GCS_TIMEOUT" if ardu else "MIS_TAKEOFF_ALT"
        mp.send(f"param set {name} 4")
        mp.ask(f"param show {name}", rf"{name}\s+4(\.0)?\b")
        count = _mission_file(tmp_path / "mission.txt", firmware)
        mp.send(f"wp load {tmp_path / 'mission.txt'}")
        mp.expect(rf"Loaded {count} waypoints", 20)
        mp.expect(r"Sent all \d+ waypoints|Sent waypoint \d+ :", 20)
        mp.send("wp list")
        mp.expect(rf"Requesting {count} waypoints", 20)
        # mode changes: MAVProxy's `mode NAME` on ArduPilot; on PX4 (whose modes are main/sub pairs that its
        # `mode` command cannot send) DO_SET_MODE with custom main and sub mode through `long`
        px4_mode = "long DO_SET_MODE 1 {} {}".format
        mp.send("mode GUIDED" if ardu else px4_mode(3, 0))                 # PX4 POSCTL: main mode 3
        mp.expect(r"Mode GUIDED" if ardu else r"DO_SET_MODE: ACCEPTED")
        mp.send("arm throttle")
        mp.expect(r"\bARMED\b")
        mp.send("takeoff 2")
        mp.expect(r"NAV_TAKEOFF: ACCEPTED")
        assert veh.proc.poll() is None
        time.sleep(0.5)
        mp.send("mode AUTO" if ardu else px4_mode(4, 4))                   # PX4 AUTO.MISSION: 4, 4
        # MAVProxy prints MISSION_CURRENT as "waypoint N": the mission runs to its last item, the landing,
        # which ends the flight
        mp.expect(rf"\bwaypoint {count - 1}\b", 40)
        mp.expect(r"\bDISARMED\b", 60)
        mp.send("mode LAND" if ardu else px4_mode(4, 6))                   # landed and disarmed: still taken
        mp.expect(r"DO_SET_MODE: ACCEPTED", 10)
    finally:
        mp.close()
        veh.close()
    text = "".join(mp.out)
    assert "Traceback" not in text, text[-3000:]
    assert ("Mode AUTO" if ardu else "Mode MISSION") in text and re.search(r"\bwaypoint [12]\b", text), text[-3000:]


def _wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:g} s")


@pytest.mark.parametrize("firmware", ["ardupilot", "px4"])
def test_mavsdk_session(tmp_path, firmware):
    mavsdk = pytest.importorskip("mavsdk", reason="scripts/setup.sh installs mavsdk (the test extra)")
    from mavsdk import ComponentType, Configuration, Mavsdk
    from mavsdk.plugins.action import Action
    from mavsdk.plugins.mission_raw import MissionRaw
    from mavsdk.plugins.param import Param
    from mavsdk.plugins.telemetry import Telemetry

    assert mavsdk.__version__ >= "4"
    port = free_udp_port()
    veh = _vehicle(tmp_path, firmware, ["--udp", f"127.0.0.1:{port}"])
    sdk = Mavsdk(Configuration.create_with_component_type(ComponentType.GROUND_STATION))
    try:
        assert int(sdk.add_any_connection(f"udpin://127.0.0.1:{port}")) == 0     # ConnectionResult.SUCCESS
        system = sdk.first_autopilot(15.0)
        assert system is not None, "MAVSDK found no autopilot"
        tel, act, par, mission = Telemetry(system), Action(system), Param(system), MissionRaw(system)
        for setter in (tel.set_rate_position, tel.set_rate_in_air, tel.set_rate_landed_state, tel.set_rate_health):
            setter(5.0)
        _wait(lambda: tel.health().is_armable and tel.health().is_global_position_ok, 15, "armable with a position")
        hover = "MOT_THST_HOVER" if firmware == "ardupilot" else "MPC_THR_HOVER"
        assert 0.1 < par.get_param_float(hover) < 0.8
        timeout_name = "FS_GCS_TIMEOUT" if firmware == "ardupilot" else "COM_OF_LOSS_T"
        par.set_param_float(timeout_name, 4.0)
        assert par.get_param_float(timeout_name) == pytest.approx(4.0)
        act.set_takeoff_altitude(2.0)
        act.arm()
        act.takeoff()
        _wait(lambda: tel.position().relative_altitude_m > 1.8, 20, "takeoff to 2 m")
        _wait(lambda: tel.in_air(), 5, "in air")
        act.goto_location(HOME_LAT, _east(2.0), tel.position().absolute_altitude_m, float("nan"))
        _wait(lambda: abs((tel.position().longitude_deg - HOME_LON) / DEG_PER_M *
                          math.cos(math.radians(HOME_LAT)) - 2.0) < 0.3, 20, "goto 2 m east")
        act.return_to_launch()
        _wait(lambda: not tel.armed(), 60, "RTL to touchdown and disarm")
        pos = tel.position()
        assert abs(pos.longitude_deg - HOME_LON) / DEG_PER_M < 0.5 and pos.relative_altitude_m < 0.2
        # a mission: upload, download, clear (the raw plugin speaks the MAVLink mission protocol as given)
        items = _mavsdk_items(firmware)
        mission.upload_mission(items)
        got = mission.download_mission()
        assert [(i.command, i.x, i.y) for i in got] == [(i.command, i.x, i.y) for i in items]
        mission.clear_mission()
        left = mission.download_mission()          # ArduPilot keeps home as item 0; PX4 clears to nothing
        assert [i.seq for i in left] == ([0] if firmware == "ardupilot" else [])
    finally:
        sdk.destroy()
        veh.close()


def _mavsdk_items(firmware: str):
    from mavsdk.plugins.mission_raw import MissionItem

    rows = []
    if firmware == "ardupilot":
        rows.append((0, 16, int(HOME_LAT * 1e7), int(HOME_LON * 1e7), 0.0))
    rows += [(3, 22, 0, 0, 1.5), (3, 16, int(HOME_LAT * 1e7), int(_east(2.0) * 1e7), 1.5), (3, 21, 0, 0, 0.0)]
    return [MissionItem(seq, frame, cmd, int(seq == 0), 1, 0.0, 0.0, 0.0, float("nan"), x, y, z, 0)
            for seq, (frame, cmd, x, y, z) in enumerate(rows)]
