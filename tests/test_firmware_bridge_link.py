"""The link and the simulated vehicle together, over a real pty (the /dev/ttyUSB0 code path) and over UDP.

connect -> identify -> arm -> change mode -> stream rate setpoints -> the vehicle's response shows in
telemetry; PX4 offboard refused without a setpoint stream; actuator targets into the rpm simulator;
motor test; parameters; takeoff and land. Flight tests run the vehicle in lockstep (each setpoint
advances the simulation 20 ms), so they take a fraction of the simulated time.
"""
import math
import time

import numpy as np
import pytest

from fb_helpers import vehicle_and_link, wait_for
from firmware_bridge import (CommandRejected, Firmware, OffboardError, UnsupportedError, actuator_targets_supported,
                             frames)
from firmware_bridge.commands import TYPEMASK_RATES_ONLY
from firmware_bridge.thrust import ctbr_to_setpoint


def fly(link, seconds_sim: float, message_fn, wall_hz: float = 400.0, step_s: float = 0.02):
    """Send one setpoint per lockstep tick (20 ms of simulated time) for seconds_sim; collect states."""
    out = []
    n = int(round(seconds_sim / step_s))
    period = 1.0 / wall_hz
    for _ in range(n):
        assert link.send(message_fn())
        time.sleep(period)
        out.append(link.state)
    return out


@pytest.mark.parametrize("kind", ["pty", "udp"])
def test_ardupilot_connect_arm_mode_and_rate_setpoints(kind):
    with vehicle_and_link(kind, firmware="ardupilot", system_id=7, lockstep=True) as (vehicle, link):
        info = link.info
        assert info.firmware == Firmware.ARDUPILOT and info.system_id == 7 and info.component_id == 1
        assert info.version == (4, 5, 0)
        cmd = link.commands
        # ArduPilot reads SET_ATTITUDE_TARGET.thrust as a climb rate unless GUID_OPTIONS bit 3 is set
        assert vehicle.ap.thrust_field_meaning() == "climb_rate"
        cmd.ensure_thrust_is_thrust()
        assert int(cmd.get_param("GUID_OPTIONS")) & 8 and vehicle.ap.thrust_field_meaning() == "thrust"
        hover = cmd.get_param("MOT_THST_HOVER")
        assert 0.1 < hover < 0.6
        assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        cmd.set_mode("GUIDED_NOGPS")
        cmd.arm()
        s = link.state
        assert s.armed and s.mode == "GUIDED_NOGPS" and vehicle.ap.armed

        # climb: thrust above hover, no rotation
        states = fly(link, 1.5, lambda: cmd.rates_message([0, 0, 0], hover * 1.35))
        assert wait_for(lambda: link.state.position_ned[2] < -0.5, 2.0), link.state.summary()
        assert states[-1].position_enu[2] > 0.3
        # yaw right (FRD +z) at 1 rad/s while hovering: NED yaw grows by ~1 rad per simulated second
        yaw0 = link.state.yaw
        fly(link, 1.0, lambda: cmd.rates_message([0, 0, 1.0], hover * 1.02))
        time.sleep(0.1)
        dyaw = frames.wrap_pi(link.state.yaw - yaw0)
        assert 0.5 < dyaw < 1.3, dyaw
        assert abs(link.state.body_rates_frd[2] - 1.0) < 0.3
        # roll right: the vehicle banks right-wing-down (positive NED roll)
        fly(link, 0.2, lambda: cmd.rates_message([1.5, 0, 0], hover * 1.02))
        time.sleep(0.1)
        assert link.state.roll > 0.1
        # the telemetry is fresh and time-stamped
        assert link.state.fresh(0.3)
        assert vehicle.handled["SET_ATTITUDE_TARGET"] >= 130
        assert link.stats.faults == 0 and vehicle.stats.faults == 0


@pytest.mark.parametrize("kind", ["pty", "udp"])
def test_px4_offboard_needs_a_setpoint_stream(kind):
    with vehicle_and_link(kind, firmware="px4", lockstep=True) as (vehicle, link):
        assert link.info.firmware == Firmware.PX4
        cmd = link.commands
        assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        # the bridge refuses before sending anything ...
        sent = vehicle.handled["COMMAND_LONG"]
        with pytest.raises(OffboardError, match="setpoint stream"):
            cmd.set_mode("OFFBOARD")
        assert vehicle.handled["COMMAND_LONG"] == sent
        # ... and the vehicle refuses too when asked anyway
        with pytest.raises(CommandRejected) as exc:
            cmd.set_mode("OFFBOARD", require_setpoint_stream=False)
        assert exc.value.result == 2  # MAV_RESULT_DENIED
        assert any("Offboard refused" in t for t in exc.value.statustext)
        assert link.state.mode == "POSCTL"

        # stream first, then switch: accepted; arm in offboard; fly
        hover = cmd.get_param("MPC_THR_HOVER")
        thrust = {"value": hover * 0.5}
        cmd.start_setpoint_stream(lambda: cmd.rates_message([0, 0, 0], thrust["value"]), rate_hz=100, prestream_s=0.3)
        cmd.set_mode("OFFBOARD")
        cmd.arm()
        assert link.state.mode == "OFFBOARD" and link.state.armed
        thrust["value"] = hover * 1.4
        assert wait_for(lambda: link.state.position_enu[2] > 0.5, 5.0), link.state.summary()
        cmd.stop_setpoint_stream()


def test_px4_actuator_targets_drive_the_motors():
    with vehicle_and_link("pty", firmware="px4", lockstep=True) as (vehicle, link):
        cmd = link.commands
        assert actuator_targets_supported(link.info.firmware, link.info.version)  # simulated PX4 1.13
        assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        motors = {"value": [0.0] * 4}
        cmd.start_setpoint_stream(lambda: cmd.motors_message(motors["value"]), rate_hz=100, prestream_s=0.3)
        cmd.set_mode("OFFBOARD")
        cmd.arm()
        motors["value"] = [0.64] * 4   # above the hover speed (sqrt of the hover thrust fraction)
        assert wait_for(lambda: link.state.position_enu[2] > 0.4, 5.0), link.state.summary()
        assert vehicle.ap.active == "rpm"
        # motors 1 and 2 (front-right, rear-left) spin CCW: speeding them up yaws the frame clockwise
        yaw0 = link.state.yaw
        motors["value"] = [0.62, 0.62, 0.55, 0.55]
        assert wait_for(lambda: frames.wrap_pi(link.state.yaw - yaw0) > 0.3, 5.0)
        cmd.stop_setpoint_stream()


def test_ardupilot_has_no_actuator_targets_and_motor_test_works():
    with vehicle_and_link("pty", firmware="ardupilot") as (vehicle, link):
        cmd = link.commands
        with pytest.raises(UnsupportedError, match="ArduPilot|ardupilot"):
            cmd.send_motors([0.5] * 4)
        cmd.motor_test(2, 30, 0.5)
        assert vehicle.wait_until(lambda v: v.ap.state()[14] > 100.0, 2.0)  # motor 2 = sim motor index 1
        w = vehicle.ap.state()[13:17]
        assert w[0] == 0.0 and w[2] == 0.0 and w[3] == 0.0
        assert vehicle.wait_until(lambda v: v.ap.motor_test is None, 2.0)
        assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        cmd.arm()
        with pytest.raises(CommandRejected):
            cmd.motor_test(1, 30, 0.5)   # never with the vehicle armed
        cmd.disarm()


@pytest.mark.parametrize("firmware", ["ardupilot", "px4"])
def test_parameters_read_write_and_range_check(firmware):
    with vehicle_and_link("pty", firmware=firmware) as (vehicle, link):
        cmd = link.commands
        if firmware == "px4":
            assert cmd.get_param("COM_RC_IN_MODE") == 4         # an INT32 sent bytewise
            assert cmd.set_param("NAV_DLL_ACT", 3) == 3
            assert vehicle.params.get("NAV_DLL_ACT") == 3
            assert cmd.set_param("COM_OF_LOSS_T", 0.5) == pytest.approx(0.5)
            assert vehicle.params.role("setpoint_timeout_s") == pytest.approx(0.5)
            with pytest.raises(CommandRejected, match="kept"):
                cmd.set_param("MPC_LAND_SPEED", 50.0)           # out of range: the vehicle keeps its value
        else:
            assert cmd.get_param("FRAME_CLASS") == 1
            assert cmd.set_param("FS_GCS_TIMEOUT", 3.0) == pytest.approx(3.0)
            assert vehicle.params.role("gcs_timeout_s") == pytest.approx(3.0)
            assert cmd.set_param("LAND_SPEED", 80) == 80
            assert vehicle.params.role("land_speed") == pytest.approx(0.8)


def test_ardupilot_takeoff_and_land_in_guided():
    with vehicle_and_link("pty", firmware="ardupilot", speed=3.0) as (vehicle, link):
        cmd = link.commands
        assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        with pytest.raises(CommandRejected):
            cmd.takeoff(1.5)                        # not armed, not GUIDED
        cmd.set_mode("GUIDED")
        cmd.arm()
        cmd.takeoff(1.5)
        assert wait_for(lambda: abs(link.state.position_enu[2] - 1.5) < 0.1, 6.0), link.state.summary()
        assert wait_for(lambda: link.state.landed_state == 2, 1.0)      # MAV_LANDED_STATE_IN_AIR
        cmd.land()
        assert link.state.mode == "LAND"
        assert wait_for(lambda: not link.state.armed, 10.0), link.state.summary()
        assert link.state.position_enu[2] < 0.05


def test_attitude_setpoint_with_climb_rate_semantics():
    """ArduPilot default: SET_ATTITUDE_TARGET attitude + thrust-as-climb-rate (0.5 = hold altitude)."""
    with vehicle_and_link("pty", firmware="ardupilot", lockstep=True) as (vehicle, link):
        cmd = link.commands
        assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        cmd.set_mode("GUIDED_NOGPS")
        cmd.arm()
        level = frames.quat_from_euler(0, 0, 0)
        # MOT_SPOOL_TIME (0.5 s) on the ground first, then a climb at 0.8 x WPNAV_SPEED_UP
        fly(link, 1.5, lambda: cmd.attitude_message(level, 0.9))
        z1 = link.state.position_enu[2]
        assert z1 > 0.5
        fly(link, 1.0, lambda: cmd.attitude_message(level, 0.5))            # hold altitude
        z2 = link.state.position_enu[2]
        assert abs(link.state.velocity_ned[2]) < 0.3
        # pitch nose down 10 deg: accelerates north (heading north)
        tilted = frames.quat_from_euler(0, math.radians(-10), 0)
        fly(link, 1.0, lambda: cmd.attitude_message(tilted, 0.5))
        time.sleep(0.05)
        assert link.state.pitch == pytest.approx(math.radians(-10), abs=math.radians(3))
        assert link.state.velocity_ned[0] > 0.5
        assert abs(link.state.position_enu[2] - z2) < 0.5


def test_setpoint_messages_are_well_formed():
    with vehicle_and_link("pty", firmware="px4") as (vehicle, link):
        cmd = link.commands
        m = cmd.rates_message([0.1, -0.2, 0.3], 0.4)
        assert m.type_mask == TYPEMASK_RATES_ONLY == 128
        assert (m.body_roll_rate, m.body_pitch_rate, m.body_yaw_rate) == pytest.approx((0.1, -0.2, 0.3))
        a = cmd.attitude_message([1, 0, 0, 0], 0.5)
        assert a.type_mask == 7
        rates, thrust = ctbr_to_setpoint([0.0, 0.5, 0.5, -1.0], (7.0, 7.0, 3.0))
        assert thrust == 0.5
        np.testing.assert_allclose(rates, [3.5, -3.5, 3.0])  # FLU (3.5, 3.5, -3) in FRD
        with pytest.raises(ValueError):
            cmd.rates_message([0, 0, float("nan")], 0.5)
        with pytest.raises(ValueError):
            cmd.attitude_message([0, 0, 0, 0], 0.5)


def test_drone_params_file_noise_and_latency(data_dir):
    """The vehicle flies the drone of a params JSON, adds the configured sensor noise, delays commands."""
    from firmware_bridge.sim.vehicle import SensorNoise

    noise = SensorNoise(position=0.05, attitude=math.radians(1.0))
    with vehicle_and_link("pty", firmware="ardupilot", drone=str(data_dir / "crazyflie2.json"), noise=noise,
                          command_latency_s=0.2) as (vehicle, link):
        cmd = link.commands
        cmd.timeout = 1.0
        d = vehicle.ap.drone
        assert d["mass"] == pytest.approx(0.027)
        hover = 0.027 * 9.81 / (4 * d["k_thrust"] * d["omega_max"] ** 2)
        assert cmd.get_param("MOT_THST_HOVER") == pytest.approx(hover, rel=1e-3)
        xs = []
        link.add_listener(lambda m: xs.append(m.x) if m.get_type() == "LOCAL_POSITION_NED" else None)
        time.sleep(0.6)
        assert len(xs) > 15 and 0.03 < float(np.std(xs)) < 0.08    # the drone sits still; the reports scatter
        assert vehicle.ap.state()[0] == 0.0
        t0 = time.monotonic()
        cmd.set_mode("GUIDED")                                   # takes effect 0.2 s (simulated) later
        assert time.monotonic() - t0 >= 0.19


def test_thrust_semantics_and_action_mappings():
    from firmware_bridge import thrust

    assert thrust.thrust_semantics(Firmware.PX4) == thrust.ThrustSemantics.NORMALIZED_THRUST
    assert thrust.thrust_semantics(Firmware.ARDUPILOT, guid_options=0) == thrust.ThrustSemantics.CLIMB_RATE
    assert thrust.thrust_semantics(Firmware.ARDUPILOT, guid_options=8) == thrust.ThrustSemantics.NORMALIZED_THRUST
    for a in ([-1, 0, 0, 0], [1, 1, -1, 0.5], [0.2, 0.1, -0.3, 0.9]):
        rates, t = thrust.ctbr_to_setpoint(a, (7.0, 7.0, 3.0))
        np.testing.assert_allclose(thrust.setpoint_to_ctbr(rates, t, (7.0, 7.0, 3.0)), a, atol=1e-12)
    for climb in (-1.5, -0.4, 0.0, 1.0, 2.5):
        assert thrust.thrust_field_to_climb_rate(thrust.climb_rate_to_thrust_field(climb)) == pytest.approx(climb)
    assert thrust.thrust_field_to_climb_rate(0.5) == 0.0
    np.testing.assert_allclose(thrust.rpm_to_motor_throttle([-1, 0, 1, 0.5]), [0, 0.5, 1, 0.75])
    # a swarm maps all its rows at once: each row as the single mapping does, out-of-range clipped, NaN kept
    rows = np.array([[-1, 0, 0, 0], [1, 1, -1, 0.5], [0.2, 0.1, -0.3, 0.9], [1.7, -2.0, 0.3, 1.01],
                     [np.nan, 0.1, 0.2, 0.3], [0.0, 0.1, np.nan, 0.3]])
    rates, thrusts = thrust.ctbr_to_setpoints(rows, (7.0, 7.0, 3.0))
    for a, r, t in zip(rows, rates, thrusts):
        r1, t1 = thrust.ctbr_to_setpoint(a, (7.0, 7.0, 3.0))
        np.testing.assert_array_equal(r, r1)
        np.testing.assert_array_equal(t, t1)
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        thrust.ctbr_to_setpoints(rows[:, :3], (7.0, 7.0, 3.0))
