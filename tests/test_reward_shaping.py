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


def test_passing_close_to_a_ring_rim_costs():
    course = {"rings": [{"position": [0.0, 0.0, 3.0], "normal": [1.0, 0.0, 0.0], "radius": 1.0},
                        {"position": [6.0, 0.0, 3.0], "normal": [1.0, 0.0, 0.0], "radius": 1.0},
                        {"position": [6.0, 6.0, 3.0], "normal": [-1.0, 0.0, 0.0], "radius": 1.0}],
             "obstacles": []}
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
