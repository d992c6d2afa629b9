"""drone-deploy meeting real firmware: what the vehicle says reaches the flight log whichever protocol it uses,
and the takeoff handover suits the position source."""
from __future__ import annotations


def test_px4_events_reach_the_flight_log(tmp_path):
    """PX4 reports failsafes as EVENT messages (the events protocol); once none reached the flight log."""
    from pymavlink.dialects.v20 import ardupilotmega as mavlink

    from deploy.config import DeployConfig
    from deploy.flight import Flight
    from deploy.flightlog import FlightLog, read_log
    from firmware_bridge.dialect import Event

    flight = Flight(DeployConfig(port="/dev/null"), say=lambda s: None)
    flight.log = FlightLog.create(tmp_path)
    flight.log.header()
    mav = mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
    ev = mav.decode(bytearray(Event(0, 0, 0x01ABCDEF, 4242, 3, 0x42, [5, 6] + [0] * 38).pack(mav)))
    flight._on_message(ev)
    flight.log.close()
    rec = [e for e in read_log(flight.log.path).events if e.get("kind") == "px4_event"]
    assert rec and rec[0]["id"] == "0x01abcdef" and rec[0]["severity"] == 2 and rec[0]["sequence"] == 3
    assert rec[0]["time_boot_ms"] == 4242 and rec[0]["arguments"] == "0506"


def test_handover_criteria_suit_a_gps_grade_position():
    """The policy takes over at the takeoff height (0.15 m), steady (< 0.3 m/s), within --handover-tolerance
    across: a GPS-grade hold wandering 0.3-0.5 m (PX4 SITL) is accepted at the default 0.5 m, where the old
    0.15 m in 3D timed out one takeoff in three."""
    import numpy as np

    from deploy.flight import handover_ready

    wander = np.array([0.35, -0.2, 0.05])
    assert handover_ready(wander, 0.1, 0.5)
    assert not handover_ready(wander, 0.1, 0.15)                       # a motion-capture tolerance
    assert not handover_ready(np.array([0.0, 0.0, 0.2]), 0.1, 0.5)     # not yet at the height
    assert not handover_ready(np.array([0.0, 0.0, 0.0]), 0.4, 0.5)     # still moving
