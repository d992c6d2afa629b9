"""Task rules: ring crossings, rim contact, formation and obstacle collisions, per-agent resets, scores."""
import numpy as np
import pytest

import drone_sim
from drone_sim import binding
from drone_sim.controllers import HoverController
from conftest import nominal_drone, single, state

COURSE = {
    "rings": [
        {"position": [0.0, 0.0, 3.0], "normal": [1.0, 0.0, 0.0], "radius": 1.0},
        {"position": [6.0, 0.0, 3.0], "normal": [1.0, 0.0, 0.0], "radius": 1.0},
        {"position": [6.0, 6.0, 3.0], "normal": [-1.0, 0.0, 0.0], "radius": 1.0},
    ],
    "obstacles": [],
}


def race_env(agents=1):
    return single(task="race", mode="rpm", course=COURSE, agents=agents)


def fly_through(env, agent, pos, vel):
    """Put the drone at pos with velocity vel at hover thrust and take one 20 ms step."""
    d = env.agent_info(agent)["drone"]
    wh = binding.hover_omega(d)
    env.set_state(agent, state(pos=pos, vel=vel, motors=(wh,) * 4))
    a = np.tile(np.float32(2 * wh / d["omega_max"] - 1), (env.num_agents, 4))
    return env.step(a)


def test_ring_crossed_in_order_and_direction_counts():
    env = race_env()
    _, r, term, _, _ = fly_through(env, 0, (-0.1, 0.2, 3.0), (10.0, 0.0, 0.0))
    info = env.agent_info(0)
    assert not term[0]
    assert info["rings_passed"] == 1 and info["ring"] == 1
    assert r[0] > 0.5


def test_wrong_side_crossing_does_not_count():
    env = race_env()
    _, r, term, _, _ = fly_through(env, 0, (0.1, 0.2, 3.0), (-10.0, 0.0, 0.0))
    info = env.agent_info(0)
    assert not term[0]
    assert info["rings_passed"] == 0 and info["ring"] == 0


def test_out_of_order_crossing_does_not_count():
    env = race_env()
    _, _, term, _, _ = fly_through(env, 0, (5.9, 0.0, 3.0), (10.0, 0.0, 0.0))  # ring 1 while ring 0 is next
    info = env.agent_info(0)
    assert not term[0]
    assert info["rings_passed"] == 0 and info["ring"] == 0


def test_crossing_outside_the_radius_does_not_count():
    env = race_env()
    fly_through(env, 0, (-0.1, 0.0, 5.0), (10.0, 0.0, 0.0))  # 2 m above the centre, radius 1
    assert env.agent_info(0)["rings_passed"] == 0


def test_rim_contact_is_a_crash():
    env = race_env()
    _, r, term, _, _ = fly_through(env, 0, (-0.1, 0.0, 4.0), (10.0, 0.0, 0.0))  # through the top of the rim
    assert term[0] and r[0] == -1.0
    logs = env.logs()["race"]
    assert logs["crash_rate"] == 1.0


def test_fast_drone_cannot_tunnel_through_the_rim():
    env = race_env()
    _, _, term, _, _ = fly_through(env, 0, (-0.5, 0.0, 4.0), (40.0, 0.0, 0.0))  # 0.8 m per step, rim 5 cm
    assert term[0]


def test_swarm_drone_contact_is_a_crash_for_both():
    env = drone_sim.make(tasks="swarm", num_envs=1, agents_per_env=3, dr="nominal", action_mode="rpm",
                         horizon_s={"swarm": 100.0})
    d = env.agent_info(0)["drone"]
    wh = binding.hover_omega(d)
    env.set_state(0, state(pos=(0, 0, 4), motors=(wh,) * 4))
    env.set_state(1, state(pos=(0.1, 0, 4), motors=(wh,) * 4))
    env.set_state(2, state(pos=(5, 5, 4), motors=(wh,) * 4))
    a = np.full((3, 4), 2 * wh / d["omega_max"] - 1, dtype=np.float32)
    _, _, term, _, _ = env.step(a)
    assert term[0] and term[1] and not term[2]


def test_drone_contact_is_not_a_crash_in_hover_unless_enabled():
    for collide in (False, True):
        env = drone_sim.make(tasks="hover", num_envs=1, agents_per_env=2, dr="nominal", action_mode="rpm",
                             collide_all=collide, horizon_s={"hover": 100.0})
        d = env.agent_info(0)["drone"]
        wh = binding.hover_omega(d)
        env.set_state(0, state(pos=(0, 0, 4), motors=(wh,) * 4))
        env.set_state(1, state(pos=(0.1, 0, 4), motors=(wh,) * 4))
        _, _, term, _, _ = env.step(np.full((2, 4), 2 * wh / d["omega_max"] - 1, dtype=np.float32))
        assert bool(term[0]) == collide


def test_obstacle_contact_is_a_crash():
    env = drone_sim.make(tasks="obstacles", num_envs=1, agents_per_env=2, dr="nominal", action_mode="rpm",
                         horizon_s={"obstacles": 100.0})
    sphere = env.env_info(0)["course"]["obstacles"][0]
    d = env.agent_info(0)["drone"]
    wh = binding.hover_omega(d)
    env.set_state(0, state(pos=sphere["position"], motors=(wh,) * 4))
    env.set_state(1, state(pos=(-13, 0, 4), motors=(wh,) * 4))
    _, r, term, _, _ = env.step(np.full((2, 4), 2 * wh / d["omega_max"] - 1, dtype=np.float32))
    assert term[0] and r[0] == -1.0 and not term[1]


def test_agents_reset_on_their_own():
    env = drone_sim.make(tasks="hover", num_envs=1, agents_per_env=3, dr="nominal", action_mode="rpm",
                         horizon_s={"hover": 100.0})
    ctl_steps = 5
    d = env.agent_info(0)["drone"]
    a = np.full((3, 4), 2 * binding.hover_omega(d) / d["omega_max"] - 1, dtype=np.float32)
    for _ in range(ctl_steps):
        env.step(a)
    env.set_state(0, state(pos=(0, 0, 0.02), vel=(0, 0, -5)))  # dive into the floor
    _, _, term, trunc, _ = env.step(a)
    assert term[0] and not term[1] and not term[2] and not trunc.any()
    assert env.agent_info(0)["episode_length"] == 0  # already respawned
    assert env.agent_info(1)["episode_length"] == ctl_steps + 1
    assert env.states()[0][2] > 0.3  # respawned in the air, away from the floor


def test_horizon_truncates_every_agent_without_terminal():
    env = drone_sim.make(tasks="hover", num_envs=1, agents_per_env=4, dr="nominal", seed=2,
                         horizon_s={"hover": 1.0})
    ctl = HoverController(4)
    obs, _ = env.reset(seed=2)
    seen = False
    for _ in range(60):
        obs, _, term, trunc, _ = env.step(ctl(obs))
        assert not term.any()
        if trunc.any():
            assert trunc.all()
            seen = True
            break
    assert seen
    logs = env.logs()["hover"]
    assert logs["timeout_rate"] == 1.0 and logs["episodes"] == 4


def test_out_of_bounds_is_terminal():
    env = single(task="hover")
    d = env.agent_info(0)["drone"]
    wh = binding.hover_omega(d)
    env.set_state(0, state(pos=(14.95, 0, 3), vel=(10, 0, 0), motors=(wh,) * 4))
    _, r, term, _, _ = env.step(np.full((1, 4), 2 * wh / d["omega_max"] - 1, dtype=np.float32))
    assert term[0] and r[0] == -1.0
    assert env.logs()["hover"]["out_of_bounds_rate"] == 1.0


@pytest.mark.parametrize("task", drone_sim.TASKS)
def test_rewards_stay_in_unit_range_under_random_actions(task):
    env = drone_sim.make(tasks=task, num_envs=2, agents_per_env=8, seed=5)
    rng = np.random.default_rng(0)
    for _ in range(300):
        _, r, _, _, _ = env.step(rng.uniform(-1, 1, (16, 4)).astype(np.float32))
        assert r.min() >= -1.0 and r.max() <= 1.0


def test_generated_courses_are_sized_like_the_champion_track():
    lengths = []
    for seed in range(50):
        c = binding.generate_course(seed)
        rings = c["rings"]
        assert len(rings) == 7
        p = np.array([g["position"] for g in rings])
        assert np.all(np.abs(p[:, :2]) < 15.0) and np.all(p[:, 2] > 0.3) and np.all(p[:, 2] < 8.0)
        d = np.linalg.norm(np.roll(p, -1, axis=0) - p, axis=1)
        lengths.append(d.sum())
        # each ring faces the way from the previous ring
        for i, g in enumerate(rings):
            inc = p[i] - p[i - 1]
            assert np.dot(inc, g["normal"]) > 0
    assert 55.0 < np.mean(lengths) < 95.0


def test_generated_course_and_field_sizes_are_built_as_asked_or_refused_by_name():
    """A ring or obstacle count the simulator cannot build is refused, not clamped to something else silently."""
    env = drone_sim.make(tasks="race", num_envs=2, race_rings=binding.MAX_RINGS, seed=1)
    assert {len(env.env_info(i)["course"]["rings"]) for i in range(2)} == {binding.MAX_RINGS}
    env.close()
    env = drone_sim.make(tasks="obstacles", num_envs=2, obstacles=(binding.MAX_OBSTACLES,) * 2, seed=1)
    assert {len(env.env_info(i)["course"]["obstacles"]) for i in range(2)} == {binding.MAX_OBSTACLES}
    env.close()
    for rings in (2, binding.MAX_RINGS + 1, 7.5):
        with pytest.raises(ValueError, match=rf"race_rings: a whole number of rings within 3\.\.{binding.MAX_RINGS}"):
            drone_sim.make(tasks="race", race_rings=rings)
    for lo, hi in ((5, 4), (-1, 3), (0, binding.MAX_OBSTACLES + 1)):
        with pytest.raises(ValueError, match="obstacles: a count range"):
            drone_sim.make(tasks="obstacles", obstacles=(lo, hi))


def _blocked_lines(blocked_line_prob: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blocked, start states, goals) of every drone of a fresh obstacle-task vector: a line is blocked, computed here
    by hand, where the segment from the drone's start to its goal passes within a sphere's radius plus the drone's
    own of the sphere's centre."""
    extra = {} if blocked_line_prob is None else {"blocked_line_prob": blocked_line_prob}
    env = drone_sim.make(tasks="obstacles", num_envs=32, agents_per_env=8, seed=5, **extra)
    env.reset(5)
    x, goals = env.states(), env.targets()[0]
    blocked = []
    for i in range(env.num_agents):
        field = env.env_info(i // env.agents_per_env)["course"]["obstacles"]
        a, b = x[i, :3].astype(float), goals[i].astype(float)
        t = [np.clip((np.asarray(o["position"]) - a) @ (b - a) / ((b - a) @ (b - a)), 0.0, 1.0) for o in field]
        gaps = [np.linalg.norm(np.asarray(o["position"]) - (a + tj * (b - a))) - o["radius"]
                for o, tj in zip(field, t)]
        blocked.append(min(gaps) < env.agent_info(i)["drone"]["radius"])
    env.close()
    return np.array(blocked), x, goals


def test_blocked_line_prob_starts_that_share_of_obstacle_flights_behind_a_sphere():
    """The obstacle crashes are drones that fly at a sphere across their straight line to the goal, and drawn
    freely only about one line in five crosses one: --blocked-line-prob asks for more of them in training. At 0
    (drone-eval's) the random stream must be the one it always was, or every recorded figure would move."""
    free, x_default, goals_default = _blocked_lines(None)
    _, x_zero, _ = _blocked_lines(0.0)
    np.testing.assert_array_equal(x_zero, x_default)
    # drones 0, 1, 100 and 255: starts and goals (y, z) recorded with the simulator from before the option existed
    np.testing.assert_allclose(x_default[[0, 1, 100, 255], 1:3],
                               [[4.7070637, 4.405013], [-5.3457403, 1.7186022], [-6.1452518, 2.314662],
                                [4.505047, 6.2752914]], atol=1e-5)
    np.testing.assert_allclose(goals_default[[0, 1, 100, 255], 1:3],
                               [[-0.4150372, 1.9842054], [-3.5906935, 6.411409], [-5.0572643, 6.449478],
                                [10.914072, 1.5729849]], atol=1e-5)
    assert 0.08 < free.mean() < 0.35, free.mean()
    always, _, _ = _blocked_lines(1.0)
    assert always.mean() > 0.95, always.mean()
    half, _, _ = _blocked_lines(0.5)
    assert free.mean() + 0.15 < half.mean() < always.mean() - 0.15, (free.mean(), half.mean())
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"blocked_line_prob: a share within 0\.\.1"):
            drone_sim.make(tasks="obstacles", blocked_line_prob=bad)


def test_each_env_episode_picks_among_enabled_tasks():
    env = drone_sim.make(tasks="race:1,swarm:1", num_envs=16, agents_per_env=2, seed=1)
    seen = {env.env_info(i)["task_name"] for i in range(16)}
    assert seen == {"race", "swarm"}


def test_hand_written_controller_keeps_under_its_speed_cap():
    """HoverController(max_speed=v) asks for at most v m/s: on goto's far targets the drones cruise near v instead
    of closing as fast as the tilt limit allows (crash_report's scripted reference relies on it)."""
    peak = {}
    for cap in (2.0, None):
        env = drone_sim.make(tasks="goto", num_envs=2, agents_per_env=8, seed=4, dr="nominal")
        ctl = HoverController(env.num_agents, max_speed=cap)
        obs, _ = env.reset()
        speeds = []
        for _ in range(300):
            obs, _, term, trunc, _ = env.step(ctl(obs, env.control_dt))
            ctl.reset(term | trunc)
            speeds.append(np.linalg.norm(env.states()[:, 3:6], axis=1))
        peak[cap] = float(np.max(speeds))
    assert 1.8 < peak[2.0] < 2.5
    assert peak[None] > 4.0


@pytest.mark.parametrize("task,metric,minimum", [
    ("hover", "success", 0.95), ("goto", "success", 0.9), ("follow", "share_within_radius", 0.7),
    ("race", "rings_passed", 4.0), ("swarm", "share_in_slot", 0.4), ("obstacles", "success", 0.6),
])
def test_hand_written_controller_flies_every_task_from_the_observation(task, metric, minimum):
    """The PD controller only reads the observation: if it flies each task, the target block means what it says."""
    env = drone_sim.make(tasks=task, num_envs=4, agents_per_env=8, seed=3, dr="nominal")
    ctl = HoverController(env.num_agents)
    obs, _ = env.reset()
    for _ in range(1500):
        obs, _, term, trunc, _ = env.step(ctl(obs, env.control_dt))
        ctl.reset(term | trunc)
    logs = env.logs()[task]
    assert logs[metric] >= minimum, logs


def test_hand_written_controller_passes_rings_of_randomized_drones_without_touching_their_rims():
    """The controller closes on a ring only as fast as it can bring its offset from the axis within its share of
    the room the ring leaves it, so large drones (radius up to 0.37 m in rings from 0.6 m) pass clear of the rim.
    The law without that funnel, at the same 3 m/s, ended on a rim in 0.16 of these 128 drone-episodes (0.21 of
    drone-eval's 512); with it 0.03 (0.016 of the 512; BENCHMARKS, issue 18)."""
    env = drone_sim.make(tasks="race", num_envs=16, agents_per_env=8, seed=3, dr="default", evaluation=True)
    ctl = HoverController(env.num_agents)
    obs, _ = env.reset(3)
    for _ in range(round(env.config["horizon_s"][drone_sim.TASKS.index("race")] / env.control_dt)):
        obs, _, term, trunc, _ = env.step(ctl(obs, env.control_dt))
        ctl.reset(term | trunc)
    logs = env.logs()["race"]
    assert logs["episodes"] == env.num_agents
    assert logs["crash_rate"] <= 0.06 and logs["rings_passed"] >= 4.0, logs


@pytest.mark.parametrize("kwargs,message", [
    (dict(ring_funnel=0.0), r"ring_funnel must be positive and finite, got 0\.0"),
    (dict(max_speed=-3.0), r"max_speed must be positive and finite, got -3\.0"),
    (dict(kd=float("nan")), r"kd must be positive and finite, got nan"),
    (dict(ki=-1.0), r"ki must be zero or positive and finite, got -1\.0"),
    (dict(max_rate=(10.0, 10.0)), r"max_rate must be 3 positive finite rad/s values, got \[10\.0, 10\.0\]"),
])
def test_hand_written_controller_refuses_settings_it_cannot_fly_by_name(kwargs, message):
    """A zero funnel divided by zero and a negative cap flew the drone away from its target, silently; the teacher
    and crash_report pass user-given speeds straight in, so the error names the setting."""
    with pytest.raises(ValueError, match=message):
        HoverController(4, **kwargs)
    with pytest.raises(ValueError, match="num_agents must be at least 1, got 0"):
        HoverController(0)


def test_hand_written_controller_refuses_observations_of_another_shape():
    """Rows of another layout, or more rows than it keeps integrals for, are an error naming both shapes rather
    than numpy's broadcast message from deep in the loop."""
    env = drone_sim.make(tasks="hover", num_envs=1, agents_per_env=4, seed=0, dr="nominal")
    ctl = HoverController(env.num_agents)
    obs, _ = env.reset()
    assert ctl(obs).shape == (4, 4)
    with pytest.raises(ValueError, match=rf"shape \(n, {obs.shape[1]}\).*got \(4, {obs.shape[1] - 1}\)"):
        ctl(obs[:, :-1])
    with pytest.raises(ValueError, match="3 observation rows for 4 drones"):
        ctl(obs[:3])
    with pytest.raises(ValueError, match="3 observation rows for 2 listed rows"):
        ctl(obs[:3], rows=np.array([0, 1]))
    assert ctl(obs[:2], rows=np.array([1, 3])).shape == (2, 4)
