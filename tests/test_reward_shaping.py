"""The reward's shaping terms, each against a hand computation: the clearance penalty near what a drone can crash
into (obstacle surface, nearest drone, ring rim) and the penalty on changing the action from one step to the next.

Each test steps two envs that differ only in the term's weight, from the same state with the same action, so the
difference of their rewards is the term alone."""
import numpy as np
import pytest

import drone_sim
from drone_sim import binding
from conftest import single, state

MARGIN, WEIGHT = 0.3, 0.3


def _pair(task, agents=1, **kw):
    """The same env twice: the shaping term under test on, and off."""
    on = single(task=task, agents=agents, clearance_margin=MARGIN, clearance_weight=WEIGHT, smooth_weight=0.0, **kw)
    off = single(task=task, agents=agents, clearance_margin=MARGIN, clearance_weight=0.0, smooth_weight=0.0, **kw)
    return on, off


def _hover(env):
    d = env.agent_info(0)["drone"]
    wh = binding.hover_omega(d)
    return d, wh, np.full((env.num_agents, 4), 2 * wh / d["omega_max"] - 1, dtype=np.float32)


def _near(gap):
    return WEIGHT * (1.0 - max(gap, 0.0) / MARGIN) if gap < MARGIN else 0.0


@pytest.mark.parametrize("gap0", [0.05, 0.2, 0.5])
def test_closing_on_an_obstacle_costs_in_proportion_to_how_far_inside_the_margin(gap0):
    envs = _pair("obstacles", agents=2)
    rewards, gaps = [], []
    for env in envs:
        sphere = env.env_info(0)["course"]["obstacles"][0]
        d, wh, a = _hover(env)
        centre = np.array(sphere["position"], dtype=np.float32)
        direction = np.array([0.6, 0.8, 0.0], dtype=np.float32)
        start = centre + direction * (sphere["radius"] + d["radius"] + gap0)
        env.set_state(0, state(pos=start, motors=(wh,) * 4))
        env.set_state(1, state(pos=(-13, 0, 4), motors=(wh,) * 4))
        _, r, term, _, _ = env.step(a)
        assert not term[0]
        p = env.states()[0, :3]
        # the nearest obstacle's surface, after the step (the drone sank a hair under hover thrust)
        nearest = min(np.linalg.norm(p - np.array(o["position"])) - o["radius"]
                      for o in env.env_info(0)["course"]["obstacles"]) - d["radius"]
        rewards.append(float(r[0]))
        gaps.append(float(nearest))
    assert gaps[0] == pytest.approx(gaps[1], abs=1e-6)
    assert rewards[1] - rewards[0] == pytest.approx(_near(gaps[0]), abs=1e-5)
    # and by hand from where it started: 0.25, 0.1 and nothing at 5, 20 and 50 cm
    assert rewards[1] - rewards[0] == pytest.approx({0.05: 0.25, 0.2: 0.1, 0.5: 0.0}[gap0], abs=2e-3)


def test_closing_on_a_neighbour_costs_only_where_contact_is_a_crash():
    for task, collide in (("swarm", True), ("hover", False)):
        envs = _pair(task, agents=2)
        diffs = []
        for env in envs:
            d, wh, a = _hover(env)
            env.set_state(0, state(pos=(0, 0, 4), motors=(wh,) * 4))
            env.set_state(1, state(pos=(2 * d["radius"] + 0.1, 0, 4), motors=(wh,) * 4))
            _, r, term, _, _ = env.step(a)
            assert not term.any()
            p = env.states()[:, :3]
            gap = float(np.linalg.norm(p[0] - p[1]) - 2 * d["radius"])
            diffs.append((float(r[0]), float(r[1]), gap))
        (on0, on1, gap), (off0, off1, _) = diffs
        expected = _near(gap) if collide else 0.0
        assert off0 - on0 == pytest.approx(expected, abs=1e-5), task
        assert off1 - on1 == pytest.approx(expected, abs=1e-5), task
        if collide:
            assert expected == pytest.approx(WEIGHT * (1 - 0.1 / MARGIN), abs=2e-3)


def _ring_course(first_radius=1.0):
    """Three rings, the first in the plane x = 0 about (0, 0, 3) and facing +x, the others 6 m on."""
    return {"rings": [{"position": [0.0, 0.0, 3.0], "normal": [1.0, 0.0, 0.0], "radius": first_radius},
                      {"position": [6.0, 0.0, 3.0], "normal": [1.0, 0.0, 0.0], "radius": 1.0},
                      {"position": [6.0, 6.0, 3.0], "normal": [-1.0, 0.0, 0.0], "radius": 1.0}],
            "obstacles": []}


def test_passing_close_to_a_ring_rim_costs():
    course = _ring_course()
    rewards = []
    for env in _pair("race", course=course):
        d, wh, a = _hover(env)
        # 0.25 m in front of the ring's plane, level with its top: the rim is 0.25 m away
        env.set_state(0, state(pos=(-0.25, 0.0, 4.0), motors=(wh,) * 4))
        _, r, term, _, _ = env.step(a)
        assert not term[0]
        p = env.states()[0, :3].astype(np.float64)
        rho = np.hypot(p[1], p[2] - 3.0)
        rim = np.hypot(rho - 1.0, p[0])
        rewards.append((float(r[0]), rim - d["radius"] - 0.05))     # COURSE_RIM_THICKNESS, 5 cm
    (on, gap), (off, _) = rewards
    assert 0 < gap < MARGIN
    assert off - on == pytest.approx(_near(gap), abs=1e-4)


@pytest.mark.parametrize("ring_radius, height, vx, expected", [
    (1.0, 0.65, 5.0, 0.15),    # the line crosses 0.35 m inside the rim: a 0.15 m gap, half the 0.3 m margin
    (1.0, 0.0, 5.0, 0.0),      # a centred line costs nothing
    (1.0, 1.3, 5.0, 0.2),      # a line 0.3 m outside the rim clips it too: a 0.1 m gap
    (1.0, 0.65, -5.0, 0.0),    # flying away from the plane
    (0.4, 0.0, 5.0, 0.0),      # a ring barely wider than the drone (0.2 m of room), centred: free
    (0.4, 0.1, 5.0, 0.15),     # 0.1 m off its centre: half the room used, half the weight (0.2 on the plain margin)
])
def test_a_line_that_will_clip_a_ring_rim_costs_before_it_gets_there(ring_radius, height, vx, expected):
    """rim_lookahead: where the drone's velocity crosses a ring's plane within the look-ahead, the crossing point's
    rim gap costs now, against the margin or the room the ring leaves the drone, whichever is smaller."""
    course = _ring_course(ring_radius)
    rewards = []
    for ahead in (0.3, 0.0):
        env = single(task="race", course=course, clearance_margin=MARGIN, clearance_weight=WEIGHT, smooth_weight=0.0,
                     rim_lookahead=ahead)
        d, wh, a = _hover(env)
        # 1 m before the plane at 5 m/s: 0.18 s from it after the step, within 0.3 s; the rim itself is > 0.9 m off
        env.set_state(0, state(pos=(-1.0, 0.0, 3.0 + height), vel=(vx, 0, 0), motors=(wh,) * 4))
        _, r, term, _, _ = env.step(a)
        assert not term[0]
        s = env.states()[0].astype(np.float64)
        cross = s[:3] + s[3:6] * (-s[0] / s[3])                     # on the plane x = 0
        gap = abs(np.hypot(cross[1], cross[2] - 3.0) - ring_radius) - d["radius"] - 0.05
        m = min(MARGIN, ring_radius - d["radius"] - 0.05)
        ahead_cost = WEIGHT * (1 - max(gap, 0) / m) if s[3] > 0 and gap < m else 0.0
        rewards.append((float(r[0]), ahead_cost))
    (on, by_hand), (off, _) = rewards
    assert off - on == pytest.approx(by_hand, abs=1e-4)
    assert off - on == pytest.approx(expected, abs=5e-3)


def test_the_rim_lookahead_ends_at_its_horizon():
    course = _ring_course()
    costs = {}
    for ahead in (0.5, 0.3, 0.0):
        env = single(task="race", course=course, clearance_margin=MARGIN, clearance_weight=WEIGHT, smooth_weight=0.0,
                     rim_lookahead=ahead)
        d, wh, a = _hover(env)
        # 2 m before the plane at 5 m/s, on a line 0.35 m inside the rim: 0.38 s from the plane after the step
        env.set_state(0, state(pos=(-2.0, 0.0, 3.65), vel=(5.0, 0, 0), motors=(wh,) * 4))
        _, r, _, _, _ = env.step(a)
        costs[ahead] = float(r[0])
    assert costs[0.0] - costs[0.3] == pytest.approx(0.0, abs=1e-6)
    assert costs[0.0] - costs[0.5] == pytest.approx(0.15, abs=5e-3)


def test_changing_the_action_costs_its_squared_change():
    weight = 0.1
    out = []
    for w in (weight, 0.0):
        env = single(task="hover", smooth_weight=w, clearance_weight=0.0)
        obs, _ = env.reset()
        start, size = drone_sim.OBS_LAYOUT["last_action"]
        last = obs[0, start:start + size].copy()                     # what the drone spawned with
        d, wh, a = _hover(env)
        env.set_state(0, state(pos=(0, 0, 3), motors=(wh,) * 4))
        a = a.copy()
        a[0] += np.float32([0.4, -0.2, 0.1, 0.0])
        r1 = float(env.step(a)[1][0])                                # (the env's reward buffer is reused)
        r2 = float(env.step(a)[1][0])                                # the same action again: no change
        out.append((r1, r2, a[0] - last))
    (on1, on2, change), (off1, off2, _) = out
    assert off1 - on1 == pytest.approx(weight * 0.25 * float(np.sum(change.astype(np.float64) ** 2)), abs=1e-6)
    assert off2 - on2 == pytest.approx(0.0, abs=1e-7)


def test_crashes_are_logged_by_what_they_hit():
    env = drone_sim.make(tasks="swarm", num_envs=1, agents_per_env=3, dr="nominal", action_mode="rpm",
                         horizon_s={"swarm": 100.0})
    d, wh, a = _hover(env)
    env.set_state(0, state(pos=(0, 0, 4), motors=(wh,) * 4))
    env.set_state(1, state(pos=(0.1, 0, 4), motors=(wh,) * 4))
    env.set_state(2, state(pos=(5, 5, 0.02), vel=(0, 0, -5)))       # into the floor
    env.step(a)
    logs = env.logs()["swarm"]
    assert logs["crash_rate"] == 1.0
    assert logs["crash_drone_rate"] == pytest.approx(2 / 3) and logs["crash_floor_rate"] == pytest.approx(1 / 3)
    assert sum(logs[f"crash_{c}_rate"] for c in drone_sim.config.CRASH_CAUSES) == pytest.approx(1.0)


def _felt(gap, closing, t):
    """The clearance the penalty sees: the gap less clearance_time x the closing speed (when closing)."""
    return gap - t * max(closing, 0.0)


@pytest.mark.parametrize("heading,speed", [("towards", 1.0), ("away", 1.0), ("across", 1.0), ("towards", 3.0)])
def test_an_obstacle_approached_fast_is_felt_further_out(heading, speed):
    t_ahead, gap0 = 0.5, 0.5                     # 0.5 m from the surface: outside the plain 0.3 m margin
    rewards, felt = [], []
    for env in _pair("obstacles", agents=2, clearance_time=t_ahead):
        sphere = env.env_info(0)["course"]["obstacles"][0]
        d, wh, a = _hover(env)
        centre = np.array(sphere["position"], dtype=np.float32)
        out = np.array([0.6, 0.8, 0.0], dtype=np.float32)           # from the centre to the drone
        v = {"towards": -out, "away": out, "across": np.array([0.8, -0.6, 0.0], np.float32)}[heading] * speed
        env.set_state(0, state(pos=centre + out * (sphere["radius"] + d["radius"] + gap0), vel=v, motors=(wh,) * 4))
        env.set_state(1, state(pos=(-13, 0, 4), motors=(wh,) * 4))
        _, r, term, _, _ = env.step(a)
        assert not term[0]
        s = env.states()[0].astype(np.float64)
        f = min(_felt(np.linalg.norm(s[:3] - o["position"]) - o["radius"] - d["radius"],
                      -np.dot(s[:3] - o["position"], s[3:6]) / np.linalg.norm(s[:3] - o["position"]), t_ahead)
                for o in env.env_info(0)["course"]["obstacles"])
        rewards.append(float(r[0]))
        felt.append(f)
    expected = _near(felt[0])
    assert rewards[1] - rewards[0] == pytest.approx(expected, abs=1e-4)
    if heading == "towards":        # 0.5 m - 0.5 s x 1 m/s: at the surface as far as the penalty is concerned
        assert expected > 0.25
    else:                           # receding or passing by: only the plain 0.5 m, outside the margin
        assert expected == 0.0


def test_neighbours_converging_are_felt_further_out_and_parting_ones_are_not():
    t_ahead = 0.5
    for sign, costs in ((1.0, True), (-1.0, False)):
        diffs = []
        for env in _pair("swarm", agents=2, clearance_time=t_ahead):
            d, wh, a = _hover(env)
            sep = 2 * d["radius"] + 0.8
            env.set_state(0, state(pos=(0, 0, 4), vel=(sign, 0, 0), motors=(wh,) * 4))
            env.set_state(1, state(pos=(sep, 0, 4), vel=(-sign, 0, 0), motors=(wh,) * 4))
            _, r, term, _, _ = env.step(a)
            assert not term.any()
            s = env.states().astype(np.float64)
            dp = s[1, :3] - s[0, :3]
            closing = float(np.dot(dp, s[0, 3:6] - s[1, 3:6]) / np.linalg.norm(dp))
            gap = float(np.linalg.norm(dp) - 2 * d["radius"])
            diffs.append((float(r[0]), float(r[1]), _felt(gap, closing, t_ahead)))
        (on0, on1, f), (off0, off1, _) = diffs
        assert off0 - on0 == pytest.approx(_near(f), abs=1e-4)
        assert off1 - on1 == pytest.approx(_near(f), abs=1e-4)
        assert (_near(f) > 0.2) == costs       # 0.8 m apart closing at 2 m/s: felt as 0 - 0.2 m; parting: 0.8 m


@pytest.mark.parametrize("task, speed, expected", [
    ("goto", 2.0, 0.0),                # under the 3 m/s limit: free
    ("goto", 4.5, 0.5 * 0.5),          # half the limit over it: half the weight
    ("obstacles", 7.0, 0.5 * 4 / 3),   # beyond twice the limit it keeps growing: slowing down always pays
    ("race", 7.0, 0.0),                # race has no limit by default
])
def test_flying_faster_than_the_task_speed_limit_costs(task, speed, expected):
    weight = 0.5
    rewards, speeds = [], []
    for w in (weight, 0.0):
        env = single(task=task, clearance_weight=0.0, smooth_weight=0.0, speed_weight=w)
        d, wh, a = _hover(env)
        # high above the course, flying sideways: nothing near, nothing to pass
        env.set_state(0, state(pos=(0, -10, 7), vel=(0, speed, 0), motors=(wh,) * 4))
        _, r, term, _, _ = env.step(a)
        assert not term[0]
        rewards.append(float(r[0]))
        speeds.append(float(np.linalg.norm(env.states()[0, 3:6])))
    v = speeds[0]
    limit = drone_sim.config.sim_default("speed_limit")[task]
    by_hand = weight * max((v - limit) / limit, 0.0) if limit > 0 else 0.0
    assert rewards[1] - rewards[0] == pytest.approx(by_hand, abs=1e-5)
    assert by_hand == pytest.approx(expected, abs=0.02)   # the step barely changed the speed


def test_a_speed_limit_for_an_unknown_task_is_refused():
    with pytest.raises(ValueError, match="speed_limit: unknown task rcae"):
        drone_sim.make(tasks="race", num_envs=1, speed_limit={"rcae": 5.0})


@pytest.mark.parametrize("penalty", [1.0, 5.0])
def test_a_crash_and_leaving_the_arena_end_with_minus_the_crash_penalty(penalty):
    """The one reward allowed outside [-1, 1]: a crash must be able to cost more than a step of progress earns."""
    env = single(task="obstacles", agents=2, crash_penalty=penalty)
    sphere = env.env_info(0)["course"]["obstacles"][0]
    d, wh, a = _hover(env)
    inside = np.array(sphere["position"], dtype=np.float32) + np.array([0.0, 0.0, 0.5 * sphere["radius"]], np.float32)
    env.set_state(0, state(pos=inside, motors=(wh,) * 4))
    half_x, _, height = drone_sim.config.sim_default("arena")
    env.set_state(1, state(pos=(half_x + 1.0, 0, 0.5 * height), motors=(wh,) * 4))    # a metre past the wall
    _, r, term, _, _ = env.step(a)
    assert term[0] and term[1]
    assert float(r[0]) == pytest.approx(-penalty)
    assert float(r[1]) == pytest.approx(-penalty)


def test_a_negative_crash_penalty_is_refused():
    from policies.config import ConfigError, TrainConfig
    with pytest.raises(ConfigError, match="crash_penalty must be >= 0"):
        TrainConfig(crash_penalty=-1.0).validate()


@pytest.mark.parametrize("tight_room,expected", [
    (0.5, 0.0),     # the ring leaves 0.8 m of room, more than asked: paid as before
    (1.6, 0.2),     # half the room asked for: full progress at 2.5 m/s, so 2 m/s earns 0.4 instead of 0.2
    (8.0, 0.3),     # a tenth: the speed is held at a fifth (1 m/s), and 2 m/s earns the step's full 0.5
])
def test_race_progress_towards_a_tight_ring_pays_in_full_at_a_lower_speed(tight_room, expected):
    """race_tight_room R: towards a ring that leaves the drone less room than R (ring radius less the drone's
    radius and the rim), progress pays in full at 5 m/s * room / R, at least a fifth of it."""
    course = _ring_course(1.0)
    out = []
    for room in (tight_room, 0.0):
        env = single(task="race", course=course, clearance_weight=0.0, smooth_weight=0.0, race_tight_room=room)
        d, wh, a = _hover(env)
        # 4 m before the ring on its axis at 2 m/s: far from the rim, no crossing within the two steps
        env.set_state(0, state(pos=(-4.0, 0.0, 3.0), vel=(2.0, 0, 0), motors=(wh,) * 4))
        env.step(a)                      # the first step measures progress from the spawn, not from here
        before = np.linalg.norm(env.states()[0, :3] - (0.0, 0.0, 3.0))
        _, r, term, _, _ = env.step(a)
        after = np.linalg.norm(env.states()[0, :3] - (0.0, 0.0, 3.0))
        assert not term[0]
        room_m = 1.0 - d["radius"] - 0.05
        v_paid = 5.0 * (min(max(room_m / room, 0.2), 1.0) if room > 0 else 1.0)
        by_hand = 0.5 * min((before - after) / (v_paid * env.control_dt), 1.0)
        out.append((float(r[0]), by_hand))
    (on, on_hand), (off, off_hand) = out
    assert on - off == pytest.approx(on_hand - off_hand, abs=1e-4)
    assert on - off == pytest.approx(expected, abs=5e-3)


def test_a_negative_race_tight_room_is_refused():
    with pytest.raises(ValueError, match=r"race_tight_room: zero \(off\) or a positive value, got -1\.0"):
        single(task="race", course=_ring_course(1.0), race_tight_room=-1.0)
