"""The simulated vehicle's parameters as the real firmware has them, and preflight's reading of them.

Sources: MAVLink common.xml PARAM_VALUE (param_id is char[16]); ArduCopter Parameters.h / GCS.h (AP_Int8,
AP_Int16, AP_Int32, AP_Float of each parameter) and Parameters.cpp (SYSID_MYGCS -> MAV_GCS_SYSID in 4.7);
PX4 commander params (COM_DL_LOSS_T is PARAM_DEFINE_INT32, COM_OF_LOSS_T a float).
"""
from __future__ import annotations

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from deploy.preflight import WARN, OK, _failsafe_check, hover_thrust_check, read_param
from fb_helpers import vehicle_and_link
from firmware_bridge.modes import Firmware
from firmware_bridge.sim.params import MAX_PARAM_ID, ParamTable

I8, I16, I32, F = (mavlink.MAV_PARAM_TYPE_INT8, mavlink.MAV_PARAM_TYPE_INT16, mavlink.MAV_PARAM_TYPE_INT32,
                   mavlink.MAV_PARAM_TYPE_REAL32)
FIRMWARE_TYPES = {
    Firmware.ARDUPILOT: {"SYSID_THISMAV": I16, "SYSID_MYGCS": I16, "FRAME_CLASS": I8, "FRAME_TYPE": I8,
                         "ARMING_CHECK": I32, "DISARM_DELAY": I8, "FS_GCS_ENABLE": I8, "FS_GCS_TIMEOUT": F,
                         "GUID_OPTIONS": I32, "GUID_TIMEOUT": F, "LAND_SPEED": I16, "ANGLE_MAX": I16,
                         "BATT_CAPACITY": I32, "MOT_THST_HOVER": F, "MOT_SPOOL_TIME": F},
    Firmware.PX4: {"MAV_SYS_ID": I32, "COM_DL_LOSS_T": I32, "NAV_DLL_ACT": I32, "COM_OF_LOSS_T": F,
                   "COM_OBL_RC_ACT": I32, "COM_DISARM_PRFLT": F, "MIS_TAKEOFF_ALT": F, "MPC_THR_HOVER": F,
                   "BAT1_N_CELLS": I32, "COM_RC_IN_MODE": I32},
}
VERSIONS = {Firmware.ARDUPILOT: [(4, 5, 0), (4, 6, 2), (4, 7, 0)], Firmware.PX4: [(1, 13, 3), (1, 15, 0)]}


@pytest.mark.parametrize("firmware", [Firmware.ARDUPILOT, Firmware.PX4])
def test_every_parameter_name_fits_in_param_id(firmware):
    for version in VERSIONS[firmware]:
        table = ParamTable(firmware, version=version)
        long = [n for n in table.names() if len(n.encode("ascii")) > MAX_PARAM_ID]
        assert not long, f"{firmware.value} {version}: names over 16 characters: {long}"


@pytest.mark.parametrize("firmware", [Firmware.ARDUPILOT, Firmware.PX4])
def test_parameters_have_the_firmware_types(firmware):
    table = ParamTable(firmware, version=VERSIONS[firmware][0])
    for name, ptype in FIRMWARE_TYPES[firmware].items():
        assert table.at(table.index(name)).ptype == ptype, name


def test_arducopter_4_7_names_the_gcs_sysid_mav_gcs_sysid():
    old, new = ParamTable(Firmware.ARDUPILOT, version=(4, 6, 2)), ParamTable(Firmware.ARDUPILOT, version=(4, 7, 0))
    assert "SYSID_MYGCS" in old and "MAV_GCS_SYSID" not in old
    assert "MAV_GCS_SYSID" in new and "SYSID_MYGCS" not in new
    new.set("MAV_GCS_SYSID", 200)
    assert new.role("gcs_sysid") == 200          # the GCS failsafe follows the renamed parameter


@pytest.mark.parametrize("version,name", [((4, 5, 0), "SYSID_MYGCS"), ((4, 7, 0), "MAV_GCS_SYSID")])
def test_preflight_reads_the_gcs_sysid_under_either_name(version, name):
    """Preflight once read SYSID_MYGCS only: on 4.7 it got no answer and skipped the check in silence."""
    with vehicle_and_link("pty", firmware="ardupilot", firmware_version=version,
                          params={name: 200, "GUID_TIMEOUT": 0.5}) as (vehicle, link):
        status, detail = _failsafe_check(link, Firmware.ARDUPILOT)
    assert status == WARN and f"{name}=200 but this GCS is sysid 255" in detail, detail


def test_preflight_warns_about_a_long_guid_timeout_and_says_what_it_costs():
    with vehicle_and_link("pty", firmware="ardupilot", params={"GUID_TIMEOUT": 3.0}) as (vehicle, link):
        status, detail = _failsafe_check(link, Firmware.ARDUPILOT)
        assert status == WARN and "GUID_TIMEOUT=3s" in detail and "0.5-1 s" in detail, detail
        vehicle.params.set("GUID_TIMEOUT", 1.0)
        status, detail = _failsafe_check(link, Firmware.ARDUPILOT)
        assert status == OK, detail


@pytest.mark.parametrize("firmware,name", [("ardupilot", "MOT_THST_HOVER"), ("px4", "MPC_THR_HOVER")])
def test_preflight_compares_the_vehicle_hover_thrust_with_the_policy_drone(firmware, name):
    with vehicle_and_link("pty", firmware=firmware) as (vehicle, link):
        fw = Firmware(firmware)
        hover = vehicle.params.get(name)
        status, detail = hover_thrust_check(link, fw, hover)
        assert status == OK and name in detail, detail
        vehicle.params.set(name, 0.5)
        status, detail = hover_thrust_check(link, fw, 0.29)
        assert status == WARN and f"{name}=0.500" in detail and "+72 %" in detail, detail


def test_a_parameter_read_survives_a_slow_answer():
    """PARAM_READ_TIMEOUTS double per try: an answer that takes 1 s (a busy 57600-baud radio) is read,
    where three tries of 0.3 s each (0.9 s) gave up."""
    with vehicle_and_link("pty", firmware="ardupilot", command_latency_s=1.0) as (vehicle, link):
        assert read_param(link, "GUID_TIMEOUT") == pytest.approx(3.0)


@pytest.mark.parametrize("firmware,name", [("ardupilot", "EKF_STATUS_REPORT"), ("px4", "ESTIMATOR_STATUS")])
def test_the_link_asks_for_the_estimator_status(firmware, name):
    """Real ArduCopter streams nothing until asked (SRx rates default to 0), so preflight once waited its
    5 s for an EKF_STATUS_REPORT that never came and called the position 'unknown'."""
    with vehicle_and_link("pty", firmware=firmware) as (vehicle, link):
        msg_id = getattr(mavlink, f"MAVLINK_MSG_ID_{name}")
        assert vehicle.intervals.get(msg_id) == pytest.approx(0.5)
