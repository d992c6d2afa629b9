"""Physics of one quadrotor: hover, free fall, torques, motor lag, integrator order, quaternion norm, floor."""
import math

import numpy as np
import pytest

import drone_sim
from drone_sim import binding
from conftest import G, DATA, nominal_drone, single, state


def rpm_action(d, omegas):
    return np.array([[2.0 * w / d["omega_max"] - 1.0 for w in omegas]], dtype=np.float32)


def test_hover_at_computed_speed_holds_within_1mm_for_2s():
    d = nominal_drone()
    wh = binding.hover_omega(d)
    assert wh == pytest.approx(math.sqrt(d["mass"] * G / (4 * d["k_thrust"])), rel=1e-6)
    env = single(drone=d)
    env.set_state(0, state(pos=(1, 2, 3), motors=(wh,) * 4))
    a = rpm_action(d, (wh,) * 4)
    for _ in range(int(2.0 / env.control_dt)):
        _, _, term, trunc, _ = env.step(a)
        assert not term[0] and not trunc[0]
    s = env.states()[0]
    assert np.linalg.norm(s[0:3] - [1, 2, 3]) < 1e-3
    assert np.abs(s[3:6]).max() < 1e-3


def test_free_fall_matches_g():
    d = nominal_drone(drag=[0.0, 0.0, 0.0])
    env = single(drone=d)
    env.set_state(0, state(pos=(0, 0, 7.5), vel=(0.5, 0, 0)))
    a = rpm_action(d, (0,) * 4)
    t = 0.0
    for _ in range(40):
        env.step(a)
        t += env.control_dt
    s = env.states()[0]
    assert s[2] == pytest.approx(7.5 - 0.5 * G * t * t, abs=1e-4)
    assert s[5] == pytest.approx(-G * t, abs=1e-4)
    assert s[0] == pytest.approx(0.5 * t, abs=1e-4)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_pure_torque_gives_expected_angular_acceleration_and_sign(axis):
    d = nominal_drone(ang_damp=[0.0, 0.0, 0.0])
    wh = binding.hover_omega(d)
    dw = 30.0
    # motor 0 front-right CCW, 1 rear-left CCW, 2 front-left CW, 3 rear-right CW
    plus = {0: (1, 2), 1: (1, 3), 2: (2, 3)}[axis]  # motors that raise torque about +x / +y / +z
    m = [wh - dw if k not in plus else wh + dw for k in range(4)]
    env = single(drone=d, physics_hz=10000, control_hz=1000)
    env.set_state(0, state(motors=m))
    env.step(rpm_action(d, m))
    s = env.states()[0]
    t = [d["k_thrust"] * w * w for w in m]
    q = [d["k_torque"] * w * w for w in m]
    arm_d = d["arm"] / math.sqrt(2)
    torque = [arm_d * (-t[0] + t[1] + t[2] - t[3]), arm_d * (-t[0] + t[1] - t[2] + t[3]), -q[0] - q[1] + q[2] + q[3]]
    expected = torque[axis] / d["inertia"][axis]
    measured = s[10 + axis] / env.control_dt
    assert expected > 0
    assert measured == pytest.approx(expected, rel=0.01)
    others = [s[10 + k] for k in range(3) if k != axis]
    assert max(abs(x) for x in others) < 1e-6 * abs(s[10 + axis]) + 1e-9


def test_positive_pitch_rate_tilts_thrust_forward_and_roll_left_side_up():
    """FLU body: a positive pitch (about +y, left) lowers the nose, so thrust pushes the drone forward (+x)."""
    d = nominal_drone()
    wh = binding.hover_omega(d)
    env = single(drone=d)
    q = [math.cos(0.1), 0.0, math.sin(0.1), 0.0]  # +0.2 rad about body y
    env.set_state(0, state(quat=q, motors=(wh,) * 4))
    env.step(rpm_action(d, (wh,) * 4))
    assert env.states()[0][3] > 0.01


def test_motor_step_follows_first_order_lag():
    d = nominal_drone(tau_up=0.04, tau_down=0.02)
    w0, w1 = 800.0, 2000.0
    env = single(drone=d, physics_hz=2000, control_hz=100)
    env.set_state(0, state(pos=(0, 0, 7), motors=(w0,) * 4))
    a = rpm_action(d, (w1,) * 4)
    for k in range(1, 11):
        env.step(a)
        t = k * env.control_dt
        assert env.states()[0][13] == pytest.approx(w1 + (w0 - w1) * math.exp(-t / 0.04), rel=1e-4)
    # falling uses tau_down
    env.set_state(0, state(pos=(0, 0, 7), motors=(w1,) * 4))
    a = rpm_action(d, (w0,) * 4)
    env.step(a)
    assert env.states()[0][13] == pytest.approx(w0 + (w1 - w0) * math.exp(-env.control_dt / 0.02), rel=1e-4)


def _maneuver_final_state(physics_hz, integrator="rk4"):
    """A smooth scripted 1 s maneuver in rpm mode at 10 Hz control; returns the final state (float64).

    Large steps on purpose: below ~10 ms, float32 round-off (~2e-6 m here) hides RK4's truncation error."""
    d = nominal_drone()
    wh = binding.hover_omega(d)
    env = single(drone=d, physics_hz=physics_hz, control_hz=10, integrator=integrator)
    env.set_state(0, state(pos=(0, 0, 4), vel=(1.0, -0.5, 0.2), rates=(2.0, -1.5, 1.0), motors=(wh,) * 4))
    for k in range(10):
        t = k * 0.1
        m = [wh * (1 + 0.1 * math.sin(3 * t + j)) for j in range(4)]
        env.step(rpm_action(d, m))
    return env.states()[0].astype(np.float64)


def test_rk4_converges_at_fourth_order_and_euler_at_first():
    ref = _maneuver_final_state(2560)
    err = {}
    for integ in ("rk4", "euler"):
        for hz in (40, 80):
            s = _maneuver_final_state(hz, integ)
            err[integ, hz] = np.linalg.norm(s[:3] - ref[:3])
    assert err["rk4", 40] / err["rk4", 80] > 10  # 16 in theory
    assert 1.6 < err["euler", 40] / err["euler", 80] < 2.5  # 2 in theory
    assert err["rk4", 80] < err["euler", 80] / 1000


def test_quaternion_norm_stays_one_while_tumbling():
    d = nominal_drone()
    env = single(drone=d)
    env.set_state(0, state(pos=(0, 0, 7), rates=(15.0, -9.0, 4.0), motors=(2000, 1200, 1900, 900)))
    a = rpm_action(d, (2000, 1200, 1900, 900))
    for _ in range(25):
        env.step(a)
        q = env.states()[0][6:10]
        assert abs(np.linalg.norm(q) - 1.0) < 1e-6


def test_crazyflie_hover_speed_from_simulation_matches_formula(data_dir):
    p = drone_sim.load_drone_params(data_dir / "crazyflie2.json")
    formula = math.sqrt(p["mass"] * G / (4 * p["k_thrust"]))
    # find by bisection the constant motor speed at which the simulated drone neither climbs nor sinks
    lo, hi = 0.3 * p["omega_max"], p["omega_max"]
    for _ in range(30):
        w = 0.5 * (lo + hi)
        env = single(drone=p)
        env.set_state(0, state(pos=(0, 0, 4), motors=(w,) * 4))
        env.step(rpm_action(p, (w,) * 4))
        env.step(rpm_action(p, (w,) * 4))
        if env.states()[0][5] > 0:
            hi = w
        else:
            lo = w
    assert 0.5 * (lo + hi) == pytest.approx(formula, rel=0.01)
    assert binding.hover_omega(p) == pytest.approx(formula, rel=1e-5)


def test_resting_on_the_floor_does_not_fall_through_and_is_not_a_crash():
    d = nominal_drone()
    env = single(drone=d)
    env.set_state(0, state(pos=(0, 0, 0)))
    for _ in range(50):
        _, _, term, _, _ = env.step(rpm_action(d, (0,) * 4))
        assert not term[0]
    s = env.states()[0]
    assert s[2] == 0.0 and abs(s[5]) < 1e-6


def test_touching_the_floor_fast_is_a_crash():
    d = nominal_drone()
    env = single(drone=d)
    env.set_state(0, state(pos=(0, 0, 0.05), vel=(0, 0, -4.0)))
    _, r, term, trunc, _ = env.step(rpm_action(d, (0,) * 4))
    assert term[0] and not trunc[0] and r[0] == -1.0
    assert env.logs()["hover"]["crash_rate"] == 1.0


def test_ctbr_holds_hover_and_follows_a_rate_command():
    d = nominal_drone()
    env = single(mode="ctbr", drone=d)
    wh = binding.hover_omega(d)
    env.set_state(0, state(pos=(0, 0, 4), motors=(wh,) * 4))
    hover = np.array([binding.hover_action(d, 1)], dtype=np.float32)
    for _ in range(50):
        env.step(hover)
    s = env.states()[0]
    assert np.linalg.norm(s[0:3] - [0, 0, 4]) < 0.01
    # command a roll rate of 0.3 * max_rate; the rate loop should reach it within 0.3 s
    cmd = hover.copy()
    cmd[0, 1] = 0.3
    for _ in range(15):
        env.step(cmd)
    assert env.states()[0][10] == pytest.approx(0.3 * d["max_rate"][0], rel=0.1)


def test_ctbr_mixer_saturates_without_nan():
    d = nominal_drone()
    env = single(mode="ctbr", drone=d)
    env.set_state(0, state(pos=(0, 0, 6), motors=(1500,) * 4))
    for a in ([1, 1, 1, 1], [-1, -1, 1, -1], [1, -1, -1, 1]):
        env.step(np.array([a], dtype=np.float32))
        s = env.states()[0]
        assert np.all(np.isfinite(s))
        assert np.all(s[13:17] >= 0) and np.all(s[13:17] <= d["omega_max"] * 1.0001)


def test_a_drone_resting_tilted_on_the_floor_sits_level_and_can_take_off():
    d = nominal_drone()
    env = single(drone=d)
    yaw = 0.7
    tilted = [np.cos(0.2) * np.cos(yaw / 2), np.sin(0.2), 0.0, np.cos(0.2) * np.sin(yaw / 2)]
    tilted = list(np.array(tilted) / np.linalg.norm(tilted))
    env.set_state(0, state(pos=(0, 0, 0), quat=tilted, rates=(1.0, -1.0, 0.0)))
    env.step(rpm_action(d, (0,) * 4))
    s = env.states()[0]
    assert s[2] == 0.0 and abs(s[7]) < 1e-6 and abs(s[8]) < 1e-6  # level
    assert abs(2 * np.arctan2(s[9], s[6]) - yaw) < 0.05  # heading kept
    w = 0.9 * d["omega_max"]
    for _ in range(25):
        env.step(rpm_action(d, (w,) * 4))
    s = env.states()[0]
    assert s[2] > 0.5 and abs(s[0]) < 0.05 and abs(s[1]) < 0.05  # straight up
