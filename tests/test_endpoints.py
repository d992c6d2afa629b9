"""One endpoint convention for every console script: `--port URL` in pymavlink/MAVProxy forms.

drone-sim-vehicle serves on the URL given (its older --pty/--udp/--udpin/--tcp flags are aliases of it)
and prints the URL a ground station opens to reach it; drone-deploy and drone-calibrate open the same forms.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

import pytest

from firmware_bridge import MavLink
from firmware_bridge.sim.cli import build_parser, endpoint_of
from firmware_bridge.transport import EndpointError, PtyTransport, serve_endpoint
from test_deploy_support import SIM_VEHICLE


def _free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _vehicle(*args: str):
    """drone-sim-vehicle with these endpoint options; yields (process, the URL it says to connect with)."""
    proc = subprocess.Popen(SIM_VEHICLE + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        hint, seen, end = None, [], time.monotonic() + 20
        while time.monotonic() < end:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip())
            if line.startswith("connect with: "):
                hint = line.split("MavLink('", 1)[1].split("')", 1)[0]
                break
        assert hint is not None, f"drone-sim-vehicle {' '.join(args)} did not start: {seen}"
        yield proc, hint
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _heartbeat(url: str) -> str:
    with MavLink(url, 115200) as link:
        info = link.connect(timeout=15.0, request_streams=False)
        return info.firmware.value


def test_the_old_flags_are_aliases_of_port():
    p = build_parser()
    assert endpoint_of(p.parse_args([])) == "pty"
    assert endpoint_of(p.parse_args(["--pty"])) == "pty"
    assert endpoint_of(p.parse_args(["--pty", "/tmp/x"])) == "pty:/tmp/x"
    assert endpoint_of(p.parse_args(["--udp", "127.0.0.1:14550"])) == "udpout:127.0.0.1:14550"
    assert endpoint_of(p.parse_args(["--udpin", "0.0.0.0:14551"])) == "udpin:0.0.0.0:14551"
    assert endpoint_of(p.parse_args(["--tcp", "0.0.0.0:5760"])) == "tcpin:0.0.0.0:5760"
    assert endpoint_of(p.parse_args(["--port", "tcpin:127.0.0.1:5761"])) == "tcpin:127.0.0.1:5761"
    with pytest.raises(SystemExit):
        p.parse_args(["--port", "pty", "--tcp", "0.0.0.0:5760"])     # one endpoint


def test_serve_endpoint_forms_and_errors(tmp_path):
    link = tmp_path / "ttySIM"
    t = serve_endpoint(f"pty:{link}")
    try:
        assert isinstance(t, PtyTransport) and os.path.realpath(link) == t.slave_path
    finally:
        t.close()
    with pytest.raises(EndpointError, match="unknown endpoint"):
        serve_endpoint("bogus:1234")


def test_drone_sim_vehicle_serves_each_url_form_and_says_how_to_connect(tmp_path):
    link = tmp_path / "ttySIM"
    with _vehicle("--port", f"pty:{link}") as (_, hint):
        assert os.path.realpath(link) == os.path.realpath(hint)
        assert _heartbeat(str(link)) == "ardupilot"
    tcp = _free_port()
    with _vehicle("--port", f"tcpin:127.0.0.1:{tcp}", "--firmware", "px4") as (_, hint):
        assert hint == f"tcp:127.0.0.1:{tcp}"
        assert _heartbeat(hint) == "px4"
    udp = _free_port(socket.SOCK_DGRAM)
    with _vehicle("--port", f"udpin:127.0.0.1:{udp}") as (_, hint):
        assert hint == f"udpout:127.0.0.1:{udp}"
        assert _heartbeat(hint) == "ardupilot"
    # the vehicle sends to a ground station listening there (as ArduPilot SITL's --out, QGC on 14550)
    gcs = _free_port(socket.SOCK_DGRAM)
    with MavLink(f"udpin:127.0.0.1:{gcs}") as listening:
        listening.open()
        with _vehicle("--port", f"udpout:127.0.0.1:{gcs}") as (_, hint):
            assert hint == f"udpin:0.0.0.0:{gcs}"
            assert listening.wait_vehicle(15.0).firmware.value == "ardupilot"


def test_a_bad_url_is_refused_with_its_name():
    res = subprocess.run(SIM_VEHICLE + ["--port", "serial-ish:9"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "serial-ish:9" in res.stderr and "unknown endpoint" in res.stderr


def test_a_listening_udp_port_answers_every_vehicle_that_sends_to_it():
    """Two vehicles (two simulator processes, two SITL instances) sending to one ground-station port from their own
    addresses both hear what the ground station sends; answering only the last sender would cut the other off."""
    import socket as _socket

    from firmware_bridge.transport import open_endpoint

    gcs = open_endpoint("udpin:127.0.0.1:0")
    port = gcs.local_address[1]
    a, b = (_socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM) for _ in range(2))
    try:
        for s in (a, b):
            s.bind(("127.0.0.1", 0))
            s.settimeout(2.0)
            s.sendto(b"hello", ("127.0.0.1", port))
            assert gcs.read(1.0) == b"hello"
        assert gcs.write(b"to all")
        assert a.recvfrom(100)[0] == b"to all" and b.recvfrom(100)[0] == b"to all"
    finally:
        a.close()
        b.close()
        gcs.close()


def test_a_shared_port_holds_writes_and_sends_them_as_one_datagram_that_parses_frame_by_frame():
    """drone-deploy --swarm sends every vehicle's command of a tick in one write: nothing leaves while held, then
    one datagram per peer whose frames a MAVLink parser reads one by one, in order; a port that is down reports
    the lost batch."""
    import socket as _socket

    from pymavlink.dialects.v20 import ardupilotmega as mavlink

    from firmware_bridge.shared import SharedTransport
    from firmware_bridge.transport import open_endpoint

    gcs = open_endpoint("udpin:127.0.0.1:0")
    shared = SharedTransport(gcs, close_when_unused=False, route_by_sender=True)
    views = [shared.view(k) for k in (1, 2, 3)]
    peer = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(0.3)
        peer.sendto(mavlink.MAVLink(None, srcSystem=1).heartbeat_encode(2, 3, 0, 0, 0).pack(mavlink.MAVLink(None)),
                    ("127.0.0.1", gcs.local_address[1]))
        time.sleep(0.2)   # the shared reader has heard the peer: the port now answers it
        frames = []
        for k, v in enumerate(views):
            mav = mavlink.MAVLink(None, srcSystem=255)
            frames.append(mav.set_attitude_target_encode(0, k + 1, 1, 7, [1, 0, 0, 0], 0.1 * k, 0.0, 0.0, 0.5)
                          .pack(mav))
        shared.hold_writes()
        assert all(v.write(f) for v, f in zip(views, frames))
        with pytest.raises(_socket.timeout):
            peer.recvfrom(4096)            # held: nothing left yet
        assert shared.flush_writes()
        data, _ = peer.recvfrom(4096)
        assert data == b"".join(frames)    # one datagram, the three frames in the order written
        parsed = mavlink.MAVLink(None).parse_buffer(data)
        assert [m.target_system for m in parsed] == [1, 2, 3]
        assert views[0].write(frames[0])   # not held any more: straight out
        assert peer.recvfrom(4096)[0] == frames[0]
        many = frames * 10                 # more than one datagram holds: the first ones leave while held
        shared.hold_writes()
        assert all(views[0].write(f) for f in many)
        early, _ = peer.recvfrom(4096)
        assert len(early) <= SharedTransport.MAX_BATCH and len(early) % len(frames[0]) == 0
        assert shared.flush_writes()
        rest, _ = peer.recvfrom(4096)
        assert early + rest == b"".join(many)
        shared.hold_writes()
        views[1].write(frames[1])
        gcs.sock.close()                   # the port fails before the batch leaves
        assert shared.flush_writes() is False
    finally:
        peer.close()
        shared.close()


def test_a_closed_reader_gate_holds_telemetry_back_until_the_tick_is_done_and_loses_none():
    """While a control loop computes, the shared port's reader waits at the gate (firmware_bridge/gate.py) instead
    of parsing; what arrived meanwhile is routed as soon as the gate opens, every frame in order. A gate never
    opened again holds a reader back only max_wait_s at a time."""
    import socket as _socket

    from pymavlink.dialects.v20 import ardupilotmega as mavlink

    from firmware_bridge.gate import ReaderGate
    from firmware_bridge.shared import SharedTransport
    from firmware_bridge.transport import open_endpoint

    gcs = open_endpoint("udpin:127.0.0.1:0")
    shared = SharedTransport(gcs, close_when_unused=False, route_by_sender=True)
    view = shared.view(1)
    peer = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    vehicle = mavlink.MAVLink(None, srcSystem=1)

    def heartbeat(k: int) -> bytes:
        return vehicle.heartbeat_encode(2, 3, 0, k, 0).pack(vehicle)

    try:
        peer.bind(("127.0.0.1", 0))
        gate = shared.gate = ReaderGate(max_wait_s=10.0)
        gate.close()
        for k in range(5):
            peer.sendto(heartbeat(k), ("127.0.0.1", gcs.local_address[1]))
        assert view.read(0.3) == b""           # held back at the gate: nothing routed
        assert gate.held_back >= 1
        gate.open()
        got = []
        while len(got) < 5:
            data = view.read(1.0)
            assert data, f"only {len(got)} of 5 frames arrived after the gate opened"
            got += [m.custom_mode for m in mavlink.MAVLink(None).parse_buffer(data)]
        assert got == [0, 1, 2, 3, 4]
        slow = shared.gate = ReaderGate(max_wait_s=0.2)
        slow.close()                           # a loop that died with the gate closed
        t0 = time.monotonic()
        peer.sendto(heartbeat(9), ("127.0.0.1", gcs.local_address[1]))
        data = view.read(2.0)
        assert data and 0.1 < time.monotonic() - t0 < 1.5
    finally:
        peer.close()
        shared.close()
