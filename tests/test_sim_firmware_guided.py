"""The simulated ArduCopter's GUIDED takeoff, landed state and auto-disarm, against ArduCopter's source.

Real ArduCopter (4.5-4.7) takes NAV_TAKEOFF as GUIDED's TakeOff sub-mode; a position target replaces it
(mode_guided.cpp set_destination -> pos_control_start), and position control on a landed vehicle does
nothing (pos_control_run: is_disarmed_or_landed -> make_safe_ground_handling). The vehicle then sits at
ground idle until DISARM_DELAY disarms it (motors.cpp auto_disarm_check). drone-deploy once streamed a
position target right after NAV_TAKEOFF and never left the ground on real ArduCopter, while this simulator
climbed: these tests pin the firmware's behaviour so such a bug fails here first. Simulated time throughout.
"""
from __future__ import annotations

import numpy as np
import pytest

from firmware_bridge.modes import Firmware
from firmware_bridge.sim.autopilot import Setpoint, SimAutopilot


def armed_in_guided(**params) -> SimAutopilot:
    ap = SimAutopilot(Firmware.ARDUPILOT)
    for name, value in params.items():
        ap.params.set(name, value)
    while not ap.ekf_ready:
        ap.step()
    assert ap.set_mode("GUIDED").ok
    assert ap.arm().ok
    return ap


def run(ap: SimAutopilot, seconds: float, each=None) -> list[tuple[float, float, bool, int]]:
    """Step for `seconds` of simulated time; (t, altitude, armed, landed_state) per step."""
    out = []
    for _ in range(int(round(seconds / ap.dt))):
        if each is not None:
            each(ap)
        ap.step()
        out.append((ap.t, float(ap.state()[2]), ap.armed, ap.landed_state))
    return out


def position(ap: SimAutopilot, xyz) -> Setpoint:
    return Setpoint("position", ap.t, position_enu=np.asarray(xyz, dtype=float))


def test_position_target_right_after_takeoff_keeps_arducopter_on_the_ground_until_auto_disarm():
    """NAV_TAKEOFF then, at once, a position target at the takeoff point (what drone-deploy did): the
    target replaces the TakeOff sub-mode while land_complete is still set (the motors take MOT_SPOOL_TIME
    to spool up), so the vehicle never lifts off, and DISARM_DELAY (10 s) later it disarms itself."""
    ap = armed_in_guided()
    armed_at = ap.t
    assert ap.takeoff(1.0).ok
    ap.on_setpoint(position(ap, (0.0, 0.0, 1.0)))
    trace = run(ap, 12.0, each=lambda a: a.on_setpoint(position(a, (0.0, 0.0, 1.0))) if a.armed else None)
    assert max(z for _, z, _, _ in trace) < 0.02, "climbed under position control from the ground"
    disarmed_at = next(t for t, _, armed, _ in trace if not armed)
    assert disarmed_at - armed_at == pytest.approx(10.0, abs=0.05)   # DISARM_DELAY
    assert all(ls == 1 for _, _, armed, ls in trace if armed)      # MAV_LANDED_STATE_ON_GROUND throughout
    assert any("auto-disarm" in what for _, what in ap.events)


def test_takeoff_without_setpoints_climbs_and_reports_takeoff_then_in_air():
    """With nothing sent until the takeoff is complete, the firmware's takeoff flies: spool-up for
    MOT_SPOOL_TIME (0.5 s) on the ground, then a climb; EXTENDED_SYS_STATE.landed_state goes ON_GROUND ->
    TAKEOFF -> IN_AIR (GCS_MAVLink_Copter.cpp landed_state: ON_GROUND while land_complete, TAKEOFF while
    the TakeOff sub-mode runs).
    A position target sent after that is flown (the vehicle is no longer landed)."""
    ap = armed_in_guided()
    assert ap.landed_state == 1
    assert ap.takeoff(1.0).ok
    t0 = ap.t
    trace = run(ap, 5.0)
    lift = next(t for t, z, _, _ in trace if z > 0.01)
    assert lift - t0 >= 0.5                                     # MOT_SPOOL_TIME on the ground first
    states = [ls for _, _, _, ls in trace]
    distinct = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert distinct == [1, 3, 2], distinct     # ON_GROUND while spooling up, TAKEOFF climbing, then IN_AIR
    assert abs(trace[-1][1] - 1.0) < 0.1
    assert ap.takeoff(2.0).reason == "already flying"          # land_complete is clear now
    trace = run(ap, 6.0, each=lambda a: a.on_setpoint(position(a, (1.0, 0.0, 1.0))))
    assert np.linalg.norm(ap.state()[0:3] - [1.0, 0.0, 1.0]) < 0.1
    assert all(armed for _, _, armed, _ in trace)


def test_attitude_target_with_positive_thrust_lifts_off_and_zero_thrust_stays_down():
    """GUIDED angle control on the ground: positive thrust (GUID_OPTIONS bit 3) or climb rate is taken as
    a takeoff (mode_guided.cpp angle_control_run: positive_thrust_or_climbrate); zero thrust stays landed."""
    ap = armed_in_guided(GUID_OPTIONS=8)
    rates = np.zeros(3)
    zero = run(ap, 2.0, each=lambda a: a.on_setpoint(Setpoint("rates", a.t, rates_flu=rates, thrust=0.0)))
    assert max(z for _, z, _, _ in zero) < 0.02 and ap.land_complete
    thrust = min(1.0, ap.hover * 1.3)
    up = run(ap, 2.0, each=lambda a: a.on_setpoint(Setpoint("rates", a.t, rates_flu=rates, thrust=thrust)))
    assert up[-1][1] > 0.3 and not ap.land_complete


def test_land_detector_sets_land_complete_one_second_after_touchdown():
    """Landed again with the throttle low: land_complete after LAND_DETECTOR_TRIGGER_SEC (1 s), and a
    GUIDED position target no longer lifts the vehicle (it needs a new takeoff)."""
    ap = armed_in_guided()
    assert ap.takeoff(1.0).ok
    run(ap, 4.0)
    trace = run(ap, 6.0, each=lambda a: a.on_setpoint(position(a, (0.0, 0.0, -0.5))))   # fly into the ground
    touchdown = next(t for t, z, _, _ in trace if z <= 0.03)
    assert ap.land_complete and ap.armed
    latched = ap._ground_low_since
    assert latched is not None and latched >= touchdown - 0.05
    trace = run(ap, 2.0, each=lambda a: a.on_setpoint(position(a, (0.0, 0.0, 1.0))))
    assert max(z for _, z, _, _ in trace) < 0.05
