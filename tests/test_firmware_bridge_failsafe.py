"""Failsafes of the simulated vehicle, in the documented times (firmware_bridge/README.md, "Failsafes"):

GCS heartbeat lost for FS_GCS_TIMEOUT / COM_DL_LOSS_T (wall-clock seconds) -> hold (BRAKE / AUTO.LOITER)
for SIM_FS_HOLD_S -> land at LAND_SPEED / MPC_LAND_SPEED -> disarm after touchdown.
Offboard setpoints lost for COM_OF_LOSS_T / GUID_TIMEOUT -> the same hold, land, disarm.
Flight timings are simulated seconds (read from the vehicle's event log and telemetry time stamps).
"""
import time

import pytest

from fb_helpers import vehicle_and_link, wait_for


def mode_times(vehicle) -> dict:
    return {what[5:]: t for t, what in vehicle.ap.events if what.startswith("mode ")}


def test_gcs_heartbeat_loss_holds_then_lands():
    params = {"FS_GCS_TIMEOUT": 2.0, "SIM_FS_HOLD_S": 1.0, "LAND_SPEED": 100}
    with vehicle_and_link("pty", firmware="ardupilot", speed=2.0, params=params) as (vehicle, link):
        cmd = link.commands
        assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        cmd.set_mode("GUIDED")
        cmd.arm()
        cmd.takeoff(1.5)
        assert wait_for(lambda: link.state.position_enu[2] > 1.4, 5.0)
        seen = []
        link.add_listener(lambda m: seen.append((time.monotonic(), m.get_type(), getattr(m, "custom_mode", None),
                                                 getattr(m, "base_mode", 0))) if m.get_type() == "HEARTBEAT" else None)

        link.heartbeat_enabled = False               # the laptop stops talking
        time.sleep(0.05)                             # (a heartbeat being sent right now still goes out)
        last_hb = link._last_heartbeat_sent
        assert wait_for(lambda: vehicle.ap.mode == "BRAKE", 4.0)
        t_hold_wall = time.monotonic()
        # detected after FS_GCS_TIMEOUT of silence (+ at most one 10 ms vehicle step and our polling)
        assert 2.0 <= t_hold_wall - last_hb < 2.5, t_hold_wall - last_hb
        assert wait_for(lambda: not vehicle.ap.armed, 10.0), vehicle.ap.events
        t = mode_times(vehicle)
        assert t["LAND"] - t["BRAKE"] == pytest.approx(1.0, abs=0.02)        # SIM_FS_HOLD_S, simulated
        touchdown = vehicle.ap.landed_since
        # from ~1.5 m at 1 m/s (the descent starts from a hold, so allow the brake-in)
        assert 1.3 < touchdown - t["LAND"] < 2.3, touchdown - t["LAND"]
        disarm_t = next(tt for tt, what in vehicle.ap.events if what.startswith("Disarming"))
        assert disarm_t - touchdown == pytest.approx(1.0, abs=0.05)
        texts = [what for _, what in vehicle.ap.events]
        assert any("GCS heartbeat lost" in x for x in texts)
        # the GCS saw it all in the heartbeats: BRAKE (17), LAND (9), then disarmed
        modes = [c for _, _, c, _ in seen]
        assert 17 in modes and 9 in modes
        assert wait_for(lambda: not link.state.armed, 2.0)
        assert any("Failsafe" in text for _, _, text in link.statustext)
        link.heartbeat_enabled = True
        assert wait_for(lambda: vehicle.ap.failsafe is None, 3.0)


def test_px4_offboard_setpoint_loss_holds_then_lands():
    params = {"COM_OF_LOSS_T": 0.5, "SIM_FS_HOLD_S": 1.0, "MPC_LAND_SPEED": 1.0, "COM_DISARM_LAND": 0.5}
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
        assert t["AUTO.LOITER"] - last_sp == pytest.approx(0.5, abs=0.03)     # COM_OF_LOSS_T
        assert t["AUTO.LAND"] - t["AUTO.LOITER"] == pytest.approx(1.0, abs=0.02)
        disarm_t = next(tt for tt, what in vehicle.ap.events if what.startswith("Disarming"))
        assert disarm_t - vehicle.ap.landed_since == pytest.approx(0.5, abs=0.05)
        assert link.state.position_enu[2] < 0.05
