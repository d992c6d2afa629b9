"""firmware_bridge.frames: every NED/FRD <-> ENU/FLU conversion, pinned with attitudes whose answer is known.

Each attitude is built independently in both frame sets (from what the drone physically does: where
its nose and its right side point), then the conversion must map one onto the other, and rotating body
vectors must agree with the world directions they are known to have.
"""
import math

import numpy as np
import pytest

from firmware_bridge import frames

D = math.radians


def axis_angle(axis, angle):
    a = np.asarray(axis, dtype=float)
    a /= np.linalg.norm(a)
    return np.array([math.cos(angle / 2), *(math.sin(angle / 2) * a)])


def same_rotation(q1, q2, tol=1e-9):
    return min(np.abs(q1 - q2).max(), np.abs(q1 + q2).max()) < tol


def test_world_vectors_swap_and_flip():
    # 1 m north, 2 m east, 3 m up
    enu = np.array([2.0, 1.0, 3.0])
    ned = frames.enu_to_ned(enu)
    np.testing.assert_allclose(ned, [1.0, 2.0, -3.0])
    np.testing.assert_allclose(frames.ned_to_enu(ned), enu)
    # batches of vectors
    batch = np.arange(12.0).reshape(4, 3)
    np.testing.assert_allclose(frames.ned_to_enu(frames.enu_to_ned(batch)), batch)


def test_body_vectors():
    # roll rate right-wing-down is +x in both; a left turn (yaw CCW) is +z FLU and -z FRD;
    # pitch nose-up is -y in FLU (y left) and +y in FRD (y right)
    np.testing.assert_allclose(frames.flu_to_frd([1.0, 0.0, 0.0]), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(frames.flu_to_frd([0.0, -0.5, 0.0]), [0.0, 0.5, 0.0])
    np.testing.assert_allclose(frames.flu_to_frd([0.0, 0.0, 0.3]), [0.0, 0.0, -0.3])
    np.testing.assert_allclose(frames.frd_to_flu(frames.flu_to_frd([0.1, 0.2, 0.3])), [0.1, 0.2, 0.3])


# (name, ENU/FLU quaternion, NED/FRD quaternion, roll, pitch, yaw in NED degrees, nose direction ENU)
CASES = [
    ("level facing north", axis_angle([0, 0, 1], D(90)), np.array([1.0, 0, 0, 0]), (0, 0, 0), [0, 1, 0]),
    ("level facing east", np.array([1.0, 0, 0, 0]), axis_angle([0, 0, 1], D(90)), (0, 0, 90), [1, 0, 0]),
    ("level facing south-west", axis_angle([0, 0, 1], D(-135)), axis_angle([0, 0, 1], D(-135)),
     (0, 0, -135), [-math.sqrt(0.5), -math.sqrt(0.5), 0]),
    ("north, nose up 30", None, None, (0, 30, 0),
     [0, math.cos(D(30)), math.sin(D(30))]),
    ("north, right wing down 20", None, None, (20, 0, 0), [0, 1, 0]),
    ("east, nose down 45, left wing down 10", None, None, (-10, -45, 90),
     [math.cos(D(45)), 0, -math.sin(D(45))]),
]


@pytest.mark.parametrize("name,q_enu,q_ned,rpy,nose", CASES, ids=[c[0] for c in CASES])
def test_known_attitudes(name, q_enu, q_ned, rpy, nose):
    roll, pitch, yaw = (D(a) for a in rpy)
    q_from_euler = frames.quat_from_euler(roll, pitch, yaw)
    if q_ned is not None:
        assert same_rotation(q_from_euler, q_ned), name
    q_ned = q_from_euler
    got_enu = frames.quat_ned_frd_to_enu_flu(q_ned)
    if q_enu is not None:
        assert same_rotation(got_enu, q_enu), name
    # round trip
    assert same_rotation(frames.quat_enu_flu_to_ned_frd(got_enu), q_ned)
    # the nose (body x) points where it should in both frames
    nose_enu = frames.rotate(got_enu, [1, 0, 0])
    np.testing.assert_allclose(nose_enu, nose, atol=1e-9)
    np.testing.assert_allclose(frames.rotate(q_ned, [1, 0, 0]), frames.enu_to_ned(nose), atol=1e-9)
    # the right side (FRD +y = FLU -y) and "down through the floor" (FRD +z = FLU -z) agree too
    for b_frd in ([0, 1, 0], [0, 0, 1]):
        w_ned = frames.rotate(q_ned, b_frd)
        w_enu = frames.rotate(got_enu, frames.frd_to_flu(b_frd))
        np.testing.assert_allclose(frames.ned_to_enu(w_ned), w_enu, atol=1e-9)
    # Euler angles come back
    r, p, y = frames.euler_from_quat(q_ned)
    assert (r, p, y) == pytest.approx((roll, pitch, yaw), abs=1e-9)


def test_right_wing_down_roll_lowers_the_right_side():
    q_ned = frames.quat_from_euler(D(20), 0, 0)  # facing north
    right_enu = frames.rotate(frames.quat_ned_frd_to_enu_flu(q_ned), [0, -1, 0])  # FLU -y is the right side
    # facing north the right side is east (+x ENU), and it dips below the horizon
    assert right_enu[0] == pytest.approx(math.cos(D(20)))
    assert right_enu[2] == pytest.approx(-math.sin(D(20)))


def test_body_rates_match_attitude_change():
    """A yaw rate to the right (FRD +z) turns the nose from north towards east."""
    q_ned = np.array([1.0, 0, 0, 0])
    rates_frd = np.array([0.0, 0.0, 0.5])
    dt = 1e-3
    q1 = frames.quat_mul(q_ned, np.array([1.0, *(0.5 * dt * rates_frd)]))
    assert frames.euler_from_quat(q1)[2] > 0  # NED yaw grows: clockwise seen from above
    # the same motion in ENU/FLU: FLU rate is -z, the ENU yaw (from east, CCW) decreases from 90 deg
    q_enu = frames.quat_ned_frd_to_enu_flu(q_ned)
    rates_flu = frames.frd_to_flu(rates_frd)
    q1_enu = frames.quat_mul(q_enu, np.array([1.0, *(0.5 * dt * rates_flu)]))
    assert same_rotation(frames.quat_enu_flu_to_ned_frd(q1_enu / np.linalg.norm(q1_enu)),
                         q1 / np.linalg.norm(q1), tol=1e-9)


def test_whole_state_round_trip():
    rng = np.random.default_rng(3)
    for _ in range(50):
        p, v, w = rng.normal(size=(3, 3))
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        out = frames.state_ned_to_enu(*frames.state_enu_to_ned(p, v, q, w))
        np.testing.assert_allclose(out[0], p)
        np.testing.assert_allclose(out[1], v)
        assert same_rotation(out[2], q, 1e-9)
        np.testing.assert_allclose(out[3], w)
        # converting the state is the same as converting what the body sees
        q_ned = frames.quat_enu_flu_to_ned_frd(q)
        np.testing.assert_allclose(frames.enu_to_ned(frames.rotate(q, w)), frames.rotate(q_ned, frames.flu_to_frd(w)),
                                   atol=1e-12)


def test_yaw_conventions():
    assert frames.yaw_enu_to_ned(math.pi / 2) == pytest.approx(0.0)   # ENU north is NED 0
    assert frames.yaw_enu_to_ned(0.0) == pytest.approx(math.pi / 2)   # east
    assert frames.yaw_ned_to_enu(math.pi) == pytest.approx(-math.pi / 2)  # south
    assert frames.wrap_pi(3 * math.pi) == pytest.approx(math.pi)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="quaternion"):
        frames.quat_ned_frd_to_enu_flu([0, 0, 0, 0])
    with pytest.raises(ValueError, match="3 components"):
        frames.enu_to_ned([1, 2])


def test_many_states_converted_at_once_match_one_at_a_time():
    """A swarm converts all its vehicles' states in one call; each row must be the single conversion's answer
    (the known attitudes included, unnormalized quaternions too), and a quaternion that is not a rotation is
    refused, naming its row."""
    rng = np.random.default_rng(11)
    known = [(name, q_enu, q_ned) for name, q_enu, q_ned, *_ in CASES if q_ned is not None]
    ned = np.array([q_ned for _, _, q_ned in known])
    quats = np.vstack([rng.normal(size=(64, 4)) * rng.uniform(0.5, 3.0, size=(64, 1)), ned, -ned])
    rows = np.column_stack([rng.normal(size=(len(quats), 6)), quats, rng.normal(size=(len(quats), 3))])
    out = np.array(frames.states_ned_to_enu(rows.tolist()))
    for r, o in zip(rows, out):
        p, v, q, w = frames.state_ned_to_enu(r[0:3], r[3:6], r[6:10], r[10:13])
        np.testing.assert_allclose(o, np.concatenate([p, v, q, w]), rtol=0, atol=1e-15)
    for (name, q_enu, _), o in zip(known, out[64:]):
        assert same_rotation(o[6:10], q_enu, 1e-12), name
    rows[3, 0], rows[4, 11] = np.inf, np.nan   # a bad position or rate stays where it is, for the checks to name
    out = np.array(frames.states_ned_to_enu(rows.tolist()))
    assert not np.isfinite(out[3, 0:3]).all() and np.isfinite(out[3, 3:13]).all()
    assert not np.isfinite(out[4, 10:13]).all() and np.isfinite(out[4, 0:10]).all()
    np.testing.assert_allclose(out[3, 6:10], frames.quat_ned_frd_to_enu_flu(rows[3, 6:10]), atol=1e-15)
    for bad in ([0.0, 0.0, 0.0, 0.0], [np.nan, 1.0, 0.0, 0.0], [np.inf, 0.0, 0.0, 0.0]):
        rows[5, 6:10] = bad
        with pytest.raises(ValueError, match="row 5: not a rotation"):
            frames.states_ned_to_enu(rows.tolist())
    with pytest.raises(ValueError, match="row 0: expected 13 values"):
        frames.states_ned_to_enu(rows[:, :12].tolist())
