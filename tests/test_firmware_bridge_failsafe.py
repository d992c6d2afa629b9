"""Failsafes of the simulated vehicle, with the real firmwares' actions and timings (firmware_bridge/README.md,
"Failsafes"):

ArduCopter: GCS heartbeat lost for FS_GCS_TIMEOUT (wall clock) -> FS_GCS_ENABLE's action (events.cpp
failsafe_gcs_on_event: 1 RTL, 5 LAND, 7 BRAKE); GUID_TIMEOUT without a new attitude target is no failsafe:
GUIDED levels and holds its altitude (mode_guided.cpp angle_control_run).
PX4: offboard setpoints lost for COM_OF_LOSS_T -> COM_OBL_RC_ACT's action (4 land, 0 with no sticks: hold);
data link lost -> NAV_DLL_ACT's action.
Flight timings are simulated seconds (read from the vehicle's event log and telemetry time stamps).
"""
import time

import numpy as np
import pytest

from fb_helpers import vehicle_and_link, wait_for


def mode_times(vehicle) -> dict:
    return {what[5:]: t for t, what in vehicle.ap.events if what.startswith("mode ")}


def _take_off(link, vehicle, alt: float = 1.5) -> None:
    cmd = link.commands
    assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
    cmd.set_mode("GUIDED")
    cmd.arm()
    cmd.takeoff(alt)
    assert wait_for(lambda: link.state.position_enu[2] > alt - 0.1, 8.0)


def test_gcs_heartbeat_loss_lands_with_fs_gcs_enable_5():
    params = {"FS_GCS_ENABLE": 5, "FS_GCS_TIMEOUT": 2.0, "LAND_SPEED": 100}
    with vehicle_and_link("pty", firmware="ardupilot", speed=2.0, params=params) as (vehicle, link):
        _take_off(link, vehicle)
        seen = []
        link.add_listener(lambda m: seen.append((time.monotonic(), m.get_type(), getattr(m, "custom_mode", None),
                                                 getattr(m, "base_mode", 0))) if m.get_type() == "HEARTBEAT" else None)

        link.heartbeat_enabled = False               # the laptop stops talking
        time.sleep(0.05)                             # (a heartbeat being sent right now still goes out)
        last_hb = link._last_heartbeat_sent
        assert wait_for(lambda: vehicle.ap.mode == "LAND", 4.0)
        t_fs_wall = time.monotonic()
        # detected after FS_GCS_TIMEOUT of silence (+ at most one 10 ms vehicle step and our polling)
        assert 2.0 <= t_fs_wall - last_hb < 2.5, t_fs_wall - last_hb
        assert "BRAKE" not in mode_times(vehicle)   # straight to the action: no hold first
        assert wait_for(lambda: not vehicle.ap.armed, 10.0), vehicle.ap.events
        t = mode_times(vehicle)
        touchdown = vehicle.ap.landed_since
        # from ~1.5 m at 1 m/s (the descent starts from a hover, so allow the brake-in)
        assert 1.3 < touchdown - t["LAND"] < 2.3, touchdown - t["LAND"]
        disarm_t = next(tt for tt, what in vehicle.ap.events if what.startswith("Disarming"))
        assert disarm_t - touchdown == pytest.approx(1.0, abs=0.05)
        texts = [what for _, what in vehicle.ap.events]
        assert any("GCS heartbeat lost" in x for x in texts)
        modes = [c for _, _, c, _ in seen]
        assert 9 in modes                            # the GCS saw LAND (9) in the heartbeats
        assert wait_for(lambda: not link.state.armed, 2.0)
        assert any("Failsafe" in text for _, _, text in link.statustext)
        link.heartbeat_enabled = True
        assert wait_for(lambda: vehicle.ap.failsafe is None, 3.0)


def test_gcs_heartbeat_loss_returns_home_with_fs_gcs_enable_1():
    """FS_GCS_ENABLE 1: RTL. ArduCopter climbs at least RTL_ABS_MIN_CLIMB (2.5 m) when close to home (the
    RTL_CONE_SLOPE cone), up to RTL_ALT, flies home, descends and lands, then disarms."""
    params = {"FS_GCS_ENABLE": 1, "FS_GCS_TIMEOUT": 2.0, "RTL_ALT": 1500, "LAND_SPEED": 100, "WPNAV_SPEED_DN": 300}
    with vehicle_and_link("pty", firmware="ardupilot", speed=4.0, params=params) as (vehicle, link):
        _take_off(link, vehicle, 1.0)
        link.send(link.commands.position_message((0.0, 1.0, -1.0)))   # NED: 1 m east of home, 1 m up
        assert wait_for(lambda: abs(link.state.position_enu[0] - 1.0) < 0.1, 5.0)
        link.heartbeat_enabled = False
        assert wait_for(lambda: vehicle.ap.mode == "RTL", 5.0)
        top = 0.0
        end = time.monotonic() + 20
        while vehicle.ap.armed and time.monotonic() < end:
            top = max(top, float(vehicle.ap.state()[2]))
            time.sleep(0.01)
        assert not vehicle.ap.armed, vehicle.ap.events[-5:]
        # cone: min(RTL_ALT 15 m, max(1 m x 3, 1 m + 2.5 m)) = 3.5 m
        assert top == pytest.approx(3.5, abs=0.25)
        x = vehicle.ap.state()
        assert np.hypot(x[0], x[1]) < 0.3 and x[2] < 0.05  # came down at home
        link.heartbeat_enabled = True


def test_guid_timeout_levels_and_holds_altitude_in_guided():
    """ArduCopter: no attitude target for GUID_TIMEOUT -> level, zero climb rate; still GUIDED, no failsafe."""
    params = {"GUID_TIMEOUT": 0.5, "GUID_OPTIONS": 8}
    with vehicle_and_link("pty", firmware="ardupilot", lockstep=False, speed=2.0, params=params) as (vehicle, link):
        _take_off(link, vehicle, 1.5)
        cmd = link.commands
        hover = cmd.get_param("MOT_THST_HOVER")
        # a last command that rolls right and climbs: after GUID_TIMEOUT the vehicle must stop doing it
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            cmd.send_ctbr([2 * hover * 1.2 - 1, 0.3, 0.0, 0.0], (7.0, 7.0, 3.0))
            time.sleep(0.02)
        last = vehicle.ap.setpoint_times[-1]
        assert vehicle.wait_until(lambda v: v.ap.t > last + 3.0, 5.0)
        x = vehicle.ap.state()
        assert vehicle.ap.mode == "GUIDED" and vehicle.ap.failsafe is None and vehicle.ap.armed
        R_zz = 1 - 2 * (x[7] ** 2 + x[8] ** 2)
        assert R_zz > np.cos(np.radians(3))          # level
        assert abs(x[5]) < 0.1                       # not climbing or sinking


def test_px4_offboard_setpoint_loss_lands_with_com_obl_rc_act_4():
    params = {"COM_OF_LOSS_T": 0.5, "COM_OBL_RC_ACT": 4, "MPC_LAND_SPEED": 1.0, "COM_DISARM_LAND": 0.5}
    with vehicle_and_link("pty", firmware="px4", lockstep=True, speed=2.0, params=params) as (vehicle, link):
        cmd = link.commands
        assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        hover = cmd.get_param("MPC_THR_HOVER")
        thrust = {"v": hover * 0.5}
        cmd.start_setpoint_stream(lambda: cmd.rates_message([0, 0, 0], thrust["v"]), rate_hz=100, prestream_s=0.3)
        cmd.set_mode("OFFBOARD")
        cmd.arm()
        thrust["v"] = hover * 1.3
        assert wait_for(lambda: link.state.position_enu[2] > 1.0, 5.0)
        thrust["v"] = hover
        time.sleep(0.2)
        cmd.stop_setpoint_stream()
        last_sp = vehicle.ap.setpoint_times[-1]
        assert wait_for(lambda: not vehicle.ap.armed, 10.0), vehicle.ap.events
        t = mode_times(vehicle)
        assert t["AUTO.LAND"] - last_sp == pytest.approx(0.5, abs=0.03)     # COM_OF_LOSS_T, then the action
        disarm_t = next(tt for tt, what in vehicle.ap.events if what.startswith("Disarming"))
        assert disarm_t - vehicle.ap.landed_since == pytest.approx(0.5, abs=0.05)
        assert link.state.position_enu[2] < 0.05


def test_px4_offboard_entry_needs_one_setpoint_younger_than_com_of_loss_t():
    """PX4 (offboardCheck.cpp; 1.13 Commander offboard_control_update): the offboard signal is present while
    the last setpoint is younger than COM_OF_LOSS_T. One setpoint is enough to switch; an old one is not."""
    with vehicle_and_link("pty", firmware="px4", params={"COM_OF_LOSS_T": 1.0}) as (vehicle, link):
        cmd = link.commands
        assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        link.send(cmd.rates_message([0, 0, 0], 0.0))
        assert vehicle.wait_until(lambda v: len(v.ap.setpoint_times) == 1, 1.0)
        assert vehicle.ap.set_mode("OFFBOARD").ok
        assert vehicle.ap.set_mode("POSCTL").ok
        assert vehicle.wait_until(lambda v: v.ap.t - v.ap.setpoint_times[-1] > 1.05, 3.0)
        r = vehicle.ap.set_mode("OFFBOARD")
        assert not r.ok and "COM_OF_LOSS_T" in r.reason
