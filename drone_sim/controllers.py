"""A hand-written position controller that flies from the observation alone (ctbr actions).

It exists to prove that the observation and the actions mean what observation.h says they mean: it
decodes the body-frame target block, the rotation matrix and the velocities back into world
quantities, runs a PID loop on position (the integral absorbs each drone's unknown thrust-to-weight
ratio and the wind), and turns the wanted acceleration into collective thrust and body rates. The viewer uses it as
the "hover controller" and tests use it to fly every task's target block.
"""
from __future__ import annotations

import numpy as np

from .binding import GRAVITY as _G
from .binding import OBS_LAYOUT, OBS_SCALES, OBS_STRIDES
from .config import NOMINAL_DRONE
from .env import OBS_SIZE, OBS_VERSION

# The decoding below reads what each block of observation.h means; offsets and scales come from C, the
# meaning does not, so a new layout version must be looked at here before this controller flies it.
DECODES_OBS_VERSION = 2
if OBS_VERSION != DECODES_OBS_VERSION:
    raise ImportError(f"drone_sim.controllers decodes observation layout version {DECODES_OBS_VERSION}, the simulator "
                      f"builds version {OBS_VERSION}: update HoverController to the new observation.h")

_VEL, _ROT = OBS_LAYOUT["velocity"][0], OBS_LAYOUT["rotation"][0]
_TARGET, _DIST, _TVEL = (OBS_LAYOUT[k][0] for k in ("target_position", "target_distance", "target_velocity"))
_RING_N, _RING_R = OBS_LAYOUT["ring_normal"][0], OBS_LAYOUT["ring_radius"][0]
_DRONES, _DRONE_STRIDE = OBS_LAYOUT["drones"][0], OBS_STRIDES["drones"]
_OBST, _OBST_STRIDE = OBS_LAYOUT["obstacles"][0], OBS_STRIDES["obstacles"]
_VEL_SCALE, _DIST_SCALE = OBS_SCALES["velocity"], OBS_SCALES["target_distance"]
_DRONE_CLIP, _OBST_CLIP, _OBST_RADIUS = OBS_SCALES["drone_clip"], OBS_SCALES["obstacle_clip"], OBS_SCALES["obstacle_radius"]
_HOVER = OBS_LAYOUT["hover_thrust"][0]
_RADIUS, _RADIUS_SCALE = OBS_LAYOUT["radius"][0], OBS_SCALES["radius"]


class HoverController:
    """PID position controller for a batch of drones in ctbr mode."""

    def __init__(self, num_agents: int, max_rate=tuple(NOMINAL_DRONE["max_rate"]), kp: float = 2.0,
                 kd: float = 2.2, ki: float = 1.5, k_att: float = 6.0, max_tilt_acc: float = 6.0,
                 ring_speed: float = 3.0, max_speed: float | None = None, ring_aim: float = 0.3,
                 ring_funnel: float = 0.5, ring_gain: float = 2.0):
        """max_speed (m/s): the velocity the position loop asks for is capped there (None: no cap, the drone
        closes a far target as fast as its tilt limit allows).

        Race: the drone flies along a ring's axis at ring_speed only inside a funnel: its offset from the axis
        at most ring_aim of the room the ring leaves it (ring radius less its own), plus ring_funnel metres per
        metre still to go to the ring's plane. Outside the funnel it closes on the plane only as far as the
        funnel allows, backing off when nearer, so it does not reach the plane off-centre while still
        correcting the offset; ring_gain (1/s, over kp/kd) is how fast it corrects it. Without the funnel (and
        with a gain of 1.5), 0.21 of drone-eval's randomized race episodes ended on a rim at 3 m/s; with them
        0.016 (BENCHMARKS, issue 18)."""
        if int(num_agents) < 1:
            raise ValueError(f"HoverController: num_agents must be at least 1, got {num_agents!r}")
        max_rate = np.asarray(max_rate, dtype=np.float32)
        if max_rate.shape != (3,) or not np.all(np.isfinite(max_rate)) or not np.all(max_rate > 0.0):
            raise ValueError(f"HoverController: max_rate must be 3 positive finite rad/s values, got {max_rate.tolist()}")
        # Each of these divides or scales a command: zero or a negative value would fly the drone backwards or
        # divide by zero (ring_funnel) rather than fail, so they are refused here, by name.
        positive = dict(kp=kp, kd=kd, k_att=k_att, max_tilt_acc=max_tilt_acc, ring_speed=ring_speed,
                        ring_funnel=ring_funnel, ring_gain=ring_gain)
        if max_speed is not None:
            positive["max_speed"] = max_speed
        for name, value in positive.items():
            if not (np.isfinite(value) and value > 0.0):
                raise ValueError(f"HoverController: {name} must be positive and finite, got {value!r}")
        for name, value in dict(ki=ki, ring_aim=ring_aim).items():
            if not (np.isfinite(value) and value >= 0.0):
                raise ValueError(f"HoverController: {name} must be zero or positive and finite, got {value!r}")
        self.max_rate = max_rate
        self.max_speed = max_speed
        self.kp, self.kd, self.ki, self.k_att = kp, kd, ki, k_att
        self.max_tilt_acc = max_tilt_acc
        self.ring_speed, self.ring_aim, self.ring_funnel, self.ring_gain = ring_speed, ring_aim, ring_funnel, ring_gain
        self.integral = np.zeros((num_agents, 3), dtype=np.float32)

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Forget the integral of agents whose episode ended (all when mask is None)."""
        if mask is None:
            self.integral[:] = 0.0
        else:
            self.integral[np.asarray(mask, dtype=bool)] = 0.0

    def __call__(self, obs: np.ndarray, dt: float = 0.02, rows: np.ndarray | None = None) -> np.ndarray:
        """Actions for obs; with rows (agent indices), obs holds only those agents' rows, and only their integrals
        are read and advanced: a caller that needs a few drones' actions pays for those alone."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim != 2 or obs.shape[1] != OBS_SIZE:
            raise ValueError(f"HoverController: observations must have shape (n, {OBS_SIZE}) (layout version "
                             f"{OBS_VERSION}), got {obs.shape}")
        n = obs.shape[0]
        want = len(self.integral) if rows is None else len(np.atleast_1d(rows))
        if n != want:
            raise ValueError(f"HoverController: {n} observation rows for "
                             + (f"{want} drones" if rows is None else f"{want} listed rows"))
        R = obs[:, _ROT:_ROT + 9].reshape(n, 3, 3)  # body-to-world
        v = np.einsum("nij,nj->ni", R, obs[:, _VEL:_VEL + 3] * _VEL_SCALE)
        # target: direction from the clipped vector, length from the tanh-coded distance
        tb = obs[:, _TARGET:_TARGET + 3]
        tn = np.linalg.norm(tb, axis=1, keepdims=True)
        dist = _DIST_SCALE * np.arctanh(np.clip(obs[:, _DIST:_DIST + 1], 0.0, 0.999999))
        p_rel_b = tb / np.maximum(tn, 1e-9) * dist
        p_rel = np.einsum("nij,nj->ni", R, p_rel_b)
        tv = np.einsum("nij,nj->ni", R, obs[:, _TVEL:_TVEL + 3] * _VEL_SCALE)

        # race: go through the ring along its normal, inside the funnel (see __init__)
        has_ring = obs[:, _RING_R] > 0
        ring_n = np.einsum("nij,nj->ni", R, obs[:, _RING_N:_RING_N + 3])
        along = np.sum(p_rel * ring_n, axis=1, keepdims=True)   # to the ring's plane, along its normal
        lateral = p_rel - along * ring_n                         # from the drone to the ring's axis
        offset = np.linalg.norm(lateral, axis=1, keepdims=True)
        aim = self.ring_aim * np.maximum(obs[:, _RING_R:_RING_R + 1] - obs[:, _RADIUS:_RADIUS + 1] * _RADIUS_SCALE, 0.0)
        in_funnel = offset <= aim + self.ring_funnel * np.maximum(along, 0.0)
        room_to_go = along - (offset - aim) / self.ring_funnel   # how far it may close before leaving the funnel
        speed_along = np.where(in_funnel, self.ring_speed, np.clip(room_to_go, -self.ring_speed, self.ring_speed))
        tv = np.where(has_ring[:, None], ring_n * speed_along, tv)

        near = (dist < 1.5) & ~has_ring[:, None]  # integrate only while holding a point (anti wind-up)
        integral = self.integral if rows is None else self.integral[rows]
        integral += np.where(near, np.clip(p_rel, -1.0, 1.0) * dt, 0.0)
        np.clip(integral, -6.0, 6.0, out=integral)
        if rows is not None:
            self.integral[rows] = integral
        # race: converge onto the ring's axis (lateral offset only) while flying along its normal
        p_cmd = np.where(has_ring[:, None], self.ring_gain * lateral, p_rel)
        # a PD loop on position, written as a velocity loop so that the velocity asked for can be capped
        v_want = self.kp / self.kd * p_cmd + tv
        if self.max_speed is not None:
            speed = np.linalg.norm(v_want, axis=1, keepdims=True)
            v_want *= np.minimum(1.0, self.max_speed / np.maximum(speed, 1e-9))
        acc = self.kd * (v_want - v) + self.ki * integral

        # keep clear of obstacles and other drones (repulsion from the nearest ones)
        for k in range(3):
            o = obs[:, _OBST + k * _OBST_STRIDE:_OBST + (k + 1) * _OBST_STRIDE]
            radius = o[:, 3] * _OBST_RADIUS
            rel = np.einsum("nij,nj->ni", R, o[:, :3] * _OBST_CLIP)
            d = np.linalg.norm(rel, axis=1)
            gap = d - radius
            push = np.where((radius > 0) & (gap < 2.5), 8.0 * (2.5 - gap) / 2.5, 0.0)
            acc -= rel / np.maximum(d, 1e-6)[:, None] * push[:, None]
            dr = obs[:, _DRONES + k * _DRONE_STRIDE:_DRONES + (k + 1) * _DRONE_STRIDE]
            rel = np.einsum("nij,nj->ni", R, dr[:, :3] * _DRONE_CLIP)
            d = np.linalg.norm(rel, axis=1)
            push = np.where((dr[:, 6] > 0) & (d < 1.0), 6.0 * (1.0 - d), 0.0)
            acc -= rel / np.maximum(d, 1e-6)[:, None] * push[:, None]

        horiz = np.linalg.norm(acc[:, :2], axis=1, keepdims=True)
        acc[:, :2] *= np.minimum(1.0, self.max_tilt_acc / np.maximum(horiz, 1e-9))
        acc[:, 2] = np.clip(acc[:, 2], -0.7 * _G, 2.0 * _G)
        acc[:, 2] += _G

        z_b = R[:, :, 2]
        thrust_acc = np.sum(acc * z_b, axis=1)
        z_des = acc / np.linalg.norm(acc, axis=1, keepdims=True)
        err_w = np.cross(z_b, z_des)
        err_b = np.einsum("nji,nj->ni", R, err_w)  # R^T err
        rates = self.k_att * err_b
        # yaw: face the target when it is far, otherwise hold heading
        far = dist[:, 0] > 1.0
        rates[:, 2] = np.where(far, 1.5 * np.arctan2(p_rel_b[:, 1], p_rel_b[:, 0]), 0.0)

        actions = np.empty((n, 4), dtype=np.float32)
        # the observation says what fraction of full thrust holds this drone up (its hover thrust)
        actions[:, 0] = 2.0 * obs[:, _HOVER] * thrust_acc / _G - 1.0
        actions[:, 1:] = rates / self.max_rate
        return np.clip(actions, -1.0, 1.0)
