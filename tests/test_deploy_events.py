"""What the vehicle says reaches drone-deploy's flight log, whichever protocol it says it in."""
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
