"""Every conversion between the simulator's frames and MAVLink's, in one place.

The simulator (and the policy) live in ENU world / FLU body coordinates; MAVLink, ArduPilot and PX4 use
NED world / FRD body (MAVLink common.xml: MAV_FRAME_LOCAL_NED, MAV_FRAME_BODY_FRD, and SET_ATTITUDE_TARGET.q
"from MAV_FRAME_LOCAL_NED to MAV_FRAME_BODY_FRD"). A sign slip here flies a drone into the ground, so
nothing else in the bridge or in deploy flips an axis by hand: it calls these functions, and
tests/test_firmware_bridge_frames.py pins them with attitudes whose answers are known.

Both changes of axes are proper rotations of 180 degrees, so each conversion is its own inverse:
- world: ENU (x east, y north, z up) <-> NED (x north, y east, z down): swap x and y, negate z
  (the rotation by pi about (1, 1, 0)/sqrt(2));
- body:  FLU (x forward, y left, z up) <-> FRD (x forward, y right, z down): negate y and z
  (the rotation by pi about x).
A body-to-world quaternion therefore changes as q_ned_frd = Q_W * q_enu_flu * Q_B, with Q_W and Q_B those
two rotations. Quaternions are (w, x, y, z), Hamilton convention, body-to-world, in both frame sets.
Euler angles (roll, pitch, yaw) are the aerospace Z-Y-X convention and are only meaningful in NED/FRD,
where MAVLink reports them (ATTITUDE); ENU yaw is measured from east counter-clockwise, NED yaw from
north clockwise: yaw_ned = pi/2 - yaw_enu.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

_H = math.sqrt(0.5)
# ENU <-> NED world axes: rotation by pi about (1, 1, 0)/sqrt(2).
_Q_WORLD = np.array([0.0, _H, _H, 0.0])
# FLU <-> FRD body axes: rotation by pi about x.
_Q_BODY = np.array([0.0, 1.0, 0.0, 0.0])


def _vec3(v: Sequence[float], name: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if a.shape[-1:] != (3,):
        raise ValueError(f"{name}: expected 3 components, got shape {a.shape}")
    return a


def _quat(q: Sequence[float], name: str = "quaternion") -> np.ndarray:
    a = np.asarray(q, dtype=np.float64)
    if a.shape != (4,):
        raise ValueError(f"{name}: expected 4 components (w, x, y, z), got shape {a.shape}")
    w, x, y, z = a.tolist()
    n = math.sqrt(w * w + x * x + y * y + z * z)
    if not math.isfinite(n) or n < 1e-6:
        raise ValueError(f"{name}: not a rotation (norm {n})")
    return a / n


# ---------------------------------------------------------------- vectors

# the axis swaps as an index permutation and signs: a control loop converts several vectors per vehicle per tick,
# and this is a few times faster than stacking the components
_WORLD_SWAP, _WORLD_SIGN = np.array([1, 0, 2]), np.array([1.0, 1.0, -1.0])
_BODY_SWAP, _BODY_SIGN = np.array([0, 1, 2]), np.array([1.0, -1.0, -1.0])


def enu_to_ned(v: Sequence[float]) -> np.ndarray:
    """World vector (position, velocity, acceleration) from ENU to NED. Works on (..., 3) arrays."""
    a = _vec3(v, "vector")
    return a[..., _WORLD_SWAP] * _WORLD_SIGN


def ned_to_enu(v: Sequence[float]) -> np.ndarray:
    """World vector from NED to ENU (the same axis swap: the conversion is its own inverse)."""
    return enu_to_ned(v)


def flu_to_frd(v: Sequence[float]) -> np.ndarray:
    """Body vector (body rates, specific force, body velocity) from FLU to FRD."""
    a = _vec3(v, "vector")
    return a[..., _BODY_SWAP] * _BODY_SIGN


def frd_to_flu(v: Sequence[float]) -> np.ndarray:
    """Body vector from FRD to FLU."""
    return flu_to_frd(v)


# ---------------------------------------------------------------- quaternions

def quat_mul(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Hamilton product a * b of (w, x, y, z) quaternions."""
    # plain floats: arithmetic on numpy scalars is several times slower, and the loop does this every tick
    aw, ax, ay, az = a.tolist() if isinstance(a, np.ndarray) else a
    bw, bx, by, bz = b.tolist() if isinstance(b, np.ndarray) else b
    return np.array([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ])


def _canonical(q: np.ndarray) -> np.ndarray:
    """q and -q are the same rotation; pick w >= 0 so that results compare and log stably."""
    return -q if q[0] < 0 else q


def quat_enu_flu_to_ned_frd(q: Sequence[float]) -> np.ndarray:
    """Body-to-world attitude from the simulator's (ENU world, FLU body) to MAVLink's (NED, FRD)."""
    return _canonical(quat_mul(quat_mul(_Q_WORLD, _quat(q)), _Q_BODY))


def quat_ned_frd_to_enu_flu(q: Sequence[float]) -> np.ndarray:
    """Body-to-world attitude from MAVLink's (NED world, FRD body) to the simulator's (ENU, FLU)."""
    return _canonical(quat_mul(quat_mul(_Q_WORLD, _quat(q)), _Q_BODY))


def quat_to_rotmat(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix (body-to-world) of a (w, x, y, z) quaternion."""
    w, x, y, z = _quat(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def rotate(q: Sequence[float], v: Sequence[float]) -> np.ndarray:
    """Vector v given in the body frame, expressed in the world frame."""
    return quat_to_rotmat(q) @ _vec3(v, "vector")


def quat_from_euler(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Quaternion of aerospace Z-Y-X Euler angles (radians); use in NED/FRD, as MAVLink does."""
    cr, sr = math.cos(0.5 * roll), math.sin(0.5 * roll)
    cp, sp = math.cos(0.5 * pitch), math.sin(0.5 * pitch)
    cy, sy = math.cos(0.5 * yaw), math.sin(0.5 * yaw)
    return _canonical(np.array([
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    ]))


def euler_from_quat(q: Sequence[float]) -> tuple[float, float, float]:
    """(roll, pitch, yaw) in radians, Z-Y-X, of a NED/FRD quaternion (what MAVLink's ATTITUDE reports)."""
    w, x, y, z = _quat(q)
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return roll, pitch, yaw


def yaw_enu_to_ned(yaw_enu: float) -> float:
    """Heading from ENU (from east, counter-clockwise) to NED (from north, clockwise), wrapped to (-pi, pi]."""
    return wrap_pi(0.5 * math.pi - yaw_enu)


def yaw_ned_to_enu(yaw_ned: float) -> float:
    """Heading from NED to ENU (the same reflection: its own inverse)."""
    return wrap_pi(0.5 * math.pi - yaw_ned)


def wrap_pi(a: float) -> float:
    """Angle wrapped to (-pi, pi]."""
    a = math.fmod(a + math.pi, 2 * math.pi)
    if a <= 0:
        a += 2 * math.pi
    return a - math.pi


# ---------------------------------------------------------------- whole states

def state_enu_to_ned(position: Sequence[float], velocity: Sequence[float], quaternion: Sequence[float],
                     body_rates: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Position, velocity (world), attitude (body-to-world) and body rates from ENU/FLU to NED/FRD."""
    return (enu_to_ned(position), enu_to_ned(velocity), quat_enu_flu_to_ned_frd(quaternion),
            flu_to_frd(body_rates))


def state_ned_to_enu(position: Sequence[float], velocity: Sequence[float], quaternion: Sequence[float],
                     body_rates: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Position, velocity (world), attitude (body-to-world) and body rates from NED/FRD to ENU/FLU."""
    return (ned_to_enu(position), ned_to_enu(velocity), quat_ned_frd_to_enu_flu(quaternion),
            frd_to_flu(body_rates))


def states_ned_to_enu(rows: Sequence[Sequence[float]]) -> list[list[float]]:
    """state_ned_to_enu for many vehicles at once, on plain floats: rows of (position 3, velocity 3, quaternion 4,
    body rates 3), NED/FRD in, ENU/FLU out, the quaternions normalized and with w >= 0 as the single conversion
    gives them. A swarm's loop converts every vehicle's state every tick, at the start of a tick that finds the
    processor's caches cold (BENCHMARKS.md "Swarm"); a dozen numpy calls on 8 rows cost five times this loop then.
    Raises as the single version does for a quaternion that is not a rotation, naming the row."""
    out = []
    for i, r in enumerate(rows):
        if len(r) != 13:
            raise ValueError(f"state row {i}: expected 13 values (position, velocity, quaternion, body rates), "
                             f"got {len(r)}")
        x = [r[a] * ca + r[b] * cb for a, ca, b, cb in _STATE_TERMS]
        n = math.sqrt(x[6] * x[6] + x[7] * x[7] + x[8] * x[8] + x[9] * x[9])   # orthogonal map: the input's norm
        if not (1e-6 <= n < math.inf):
            raise ValueError(f"quaternion row {i}: not a rotation (norm {n})")
        if x[6] < 0:
            n = -n
        x[6], x[7], x[8], x[9] = x[6] / n, x[7] / n, x[8] / n, x[9] / n
        out.append(x)
    return out


def _state_terms() -> tuple[tuple[int, float, int, float], ...]:
    """The whole state's change of axes (every part of it is linear) as, for each output value, the two input
    values and coefficients it sums (a signed swap has the second coefficient 0); built by converting the basis
    vectors with the single-vehicle functions, so the two cannot disagree."""
    m = np.zeros((13, 13))
    for k in range(13):
        e = np.eye(13)[k]
        m[k, 0:3], m[k, 3:6], m[k, 10:13] = ned_to_enu(e[0:3]), ned_to_enu(e[3:6]), frd_to_flu(e[10:13])
        m[k, 6:10] = quat_mul(quat_mul(_Q_WORLD, e[6:10]), _Q_BODY)   # before normalizing and the sign choice
    terms = []
    for j in range(13):
        t = [(k, float(m[k, j])) for k in range(13) if m[k, j] != 0.0]
        if len(t) not in (1, 2):
            raise RuntimeError(f"converted state value {j} sums {len(t)} values; states_ned_to_enu takes two")
        # a single term is paired with itself at 0: a non-finite value then spoils only its own output
        (a, ca), (b, cb) = t if len(t) == 2 else (t[0], (t[0][0], 0.0))
        terms.append((a, ca, b, cb))
    return tuple(terms)


_STATE_TERMS = _state_terms()


# Metres per degree of latitude (and of longitude at the equator) on the spherical Earth of the flat-Earth
# approximation; over the few hundred metres a swarm spans, its error is far below GPS noise.
M_PER_DEG_LAT = 111_319.5


def enu_offset(reference: Sequence[float], point: Sequence[float]) -> np.ndarray:
    """Where `point` (latitude deg, longitude deg, altitude m) is from `reference` (the same), in metres east,
    north and up: how vehicles that each report their own local frame are placed in one swarm frame."""
    lat0, lon0, alt0 = (float(v) for v in reference)
    lat, lon, alt = (float(v) for v in point)
    north = (lat - lat0) * M_PER_DEG_LAT
    east = (lon - lon0) * M_PER_DEG_LAT * math.cos(math.radians(lat0))
    return np.array([east, north, alt - alt0])
