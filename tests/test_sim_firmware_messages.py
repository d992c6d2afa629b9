"""What the simulated vehicle says about itself, against the real firmware's source.

ArduCopter GCS_MAVLink_Copter.cpp base_mode(): STABILIZE_ENABLED | MANUAL_INPUT_ENABLED | CUSTOM_MODE_ENABLED
in every mode, GUIDED_ENABLED while the horizontal position controller runs (GUIDED flying on position
targets: 89, plus SAFETY_ARMED (128) = 217). MAVLink common.xml SYS_STATUS: a sensor the vehicle uses is present,
enabled and healthy in the three bitmasks; a vehicle reporting an absolute position has a GPS.
"""
from __future__ import annotations

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from fb_helpers import vehicle_and_link, wait_for
from firmware_bridge.sim.autopilot import Setpoint

F = mavlink


def _flags(vehicle) -> int:
    return vehicle._heartbeat().base_mode


def test_arducopter_base_mode_keeps_manual_input_and_flags_position_control():
    with vehicle_and_link("pty", firmware="ardupilot", connect=False) as (vehicle, link):
        ap = vehicle.ap
        assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        base = F.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | F.MAV_MODE_FLAG_STABILIZE_ENABLED | \
            F.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
        assert _flags(vehicle) == base                          # STABILIZE, disarmed: 81
        with vehicle._lock:
            assert ap.set_mode("GUIDED").ok and ap.arm().ok
        assert _flags(vehicle) == base | F.MAV_MODE_FLAG_SAFETY_ARMED    # on the ground: no position control
        with vehicle._lock:
            assert ap.takeoff(1.0).ok
        assert vehicle.wait_until(lambda v: v.ap.state()[2] > 0.9, 10.0)
        assert _flags(vehicle) == base | F.MAV_MODE_FLAG_SAFETY_ARMED | F.MAV_MODE_FLAG_GUIDED_ENABLED   # 217
        with vehicle._lock:
            ap.on_setpoint(Setpoint("rates", ap.t, rates_flu=np.zeros(3), thrust=ap.hover))
        assert _flags(vehicle) == base | F.MAV_MODE_FLAG_SAFETY_ARMED    # angle control: no position control
        with vehicle._lock:
            assert ap.land().ok
        assert _flags(vehicle) & F.MAV_MODE_FLAG_GUIDED_ENABLED                 # LAND flies on position control
        assert _flags(vehicle) & F.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED


def test_px4_sys_status_declares_the_gps_it_reports_positions_from():
    with vehicle_and_link("pty", firmware="px4", connect=False) as (vehicle, link):
        assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        s = vehicle._sys_status()
        gps = F.MAV_SYS_STATUS_SENSOR_GPS
        assert s.onboard_control_sensors_present & gps
        assert s.onboard_control_sensors_enabled & gps
        assert s.onboard_control_sensors_health & gps
