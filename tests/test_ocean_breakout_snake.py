"""Rules of the breakout and snake ocean games, checked through the Python API (drone_sim.make_ocean).

The generic contract (shapes, ranges, determinism, auto-reset) is tests/test_ocean.py's job; here each game's
own rules: lives and bricks in breakout, eating, growth, deaths, collisions and the turned view in snake, and
that a simple hand-written controller plays each game far better than random actions (so there is something
to learn, and the reward points at it).
"""
import numpy as np
import pytest

import drone_sim

BRICKS = 72
BRICK_REWARD = 4.0 / BRICKS
WIN = 11  # snake's view window side
UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
TURN_LEFT, STRAIGHT, TURN_RIGHT = 0, 1, 2


# ---------------------------------------------------------------- breakout

def tracking_actions(obs):
    """Keep the paddle under the ball."""
    paddle, ball = obs[:, 0], obs[:, 1]
    return np.where(ball > paddle + 0.03, 2, np.where(ball < paddle - 0.03, 1, 0)).astype(np.int32)


def fleeing_actions(obs):
    """Move the paddle away from the ball: every serve is lost."""
    return np.where(obs[:, 1] > obs[:, 0], 1, 2).astype(np.int32)


def test_breakout_first_observation_is_the_full_wall_and_a_ball_on_the_paddle():
    env = drone_sim.make_ocean("breakout", num_envs=2, seed=3)
    obs = env.observations
    assert obs.shape == (2, 5 + BRICKS)
    assert np.all(obs[:, 5:] == 1.0)
    np.testing.assert_allclose(obs[:, 1], obs[:, 0])  # served from the paddle
    assert np.all(obs[:, 4] < 0)                       # going up
    np.testing.assert_allclose(np.hypot(obs[:, 3], obs[:, 4]), 1.0, rtol=1e-5)


def test_breakout_losing_the_ball_costs_a_life_and_the_third_loss_ends_the_episode():
    env = drone_sim.make_ocean("breakout", num_envs=1, seed=0)
    losses = 0
    for _ in range(3000):
        obs, rew, term, trunc, _ = env.step(fleeing_actions(env.observations))
        assert not trunc[0]
        if rew[0] < 0:
            losses += 1
            assert rew[0] == -1.0
            if losses < 3:
                assert not term[0], "an episode ended with lives left"
                assert obs[0, 1] == pytest.approx(obs[0, 0]) and obs[0, 4] < 0, "no new serve from the paddle"
            else:
                assert term[0], "the third lost ball did not end the episode"
                assert np.all(obs[0, 5:] == 1.0), "the next episode did not start with a full wall"
                break
        else:
            assert not term[0]
    assert losses == 3
    log = env.logs()["breakout"]
    assert log["episodes"] == 1
    assert log["episode_return"] == pytest.approx(-3.0 + BRICK_REWARD * round(log["score"] * BRICKS), abs=1e-5)


def test_breakout_a_brick_hit_removes_the_brick_and_rewards_it():
    env = drone_sim.make_ocean("breakout", num_envs=1, seed=1)
    hits = 0
    for _ in range(2000):
        before = env.observations[0, 5:].copy()
        obs, rew, term, _, _ = env.step(tracking_actions(env.observations))
        if rew[0] > 0:
            broken = before - obs[0, 5:]
            assert set(np.unique(broken)) <= {0.0, 1.0}, "a brick came back"
            k = int(broken.sum())
            assert k >= 1
            assert rew[0] == pytest.approx(k * BRICK_REWARD)
            hits += 1
            if hits == 5:
                break
        else:
            assert np.array_equal(before, obs[0, 5:]) or term[0]
    assert hits == 5


def _breakout_score(policy, seed, num_envs=8, steps=4100):
    env = drone_sim.make_ocean("breakout", num_envs=num_envs, seed=seed)
    ended = np.zeros(num_envs, dtype=bool)
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(policy(env.observations))
        ended |= term | trunc
        if ended.all():
            break
    return env.logs()["breakout"]["score"]


def test_breakout_a_paddle_tracking_controller_clears_far_more_bricks_than_random_play():
    rng = np.random.default_rng(0)
    tracking = _breakout_score(tracking_actions, seed=5)
    random = _breakout_score(lambda obs: rng.integers(0, 3, len(obs), dtype=np.int32), seed=5)
    assert tracking > 0.6, tracking
    assert random < 0.2, random
    assert tracking > 4 * random


# ---------------------------------------------------------------- snake

def stage(env, snakes, foods, tries=200):
    """Put snakes [(x, y, heading, length)] and food [(x, y)] on env 0's board (other food is parked in a corner
    row). The board starts random, so a cell may be taken; then another seed is tried."""
    num_food = env.agents_per_env + 2
    foods = list(foods)
    side = {1: 12, 2: 15, 3: 18, 4: 20}[env.agents_per_env]
    parking = [(side - 1 - k, side - 1) for k in range(num_food - len(foods))]
    for seed in range(tries):
        env.reset(seed)
        ok = all(env._c.debug_snake_set(0, 1, f, x, y) == 0 for f, (x, y) in enumerate(foods + parking))
        ok = ok and all(env._c.debug_snake_set(0, 0, i, x, y, h, n) == 0 for i, (x, y, h, n) in enumerate(snakes))
        if ok:
            return env.observations
    raise AssertionError("could not stage the position")


def food_count(env, env_index=0):
    cmds = env.render_commands(env_index)
    food = (cmds["kind"] == 1) & (cmds["r"] == 230) & (cmds["g"] == 60)
    return int(food.sum())


def window(obs, agent=0):
    return obs[agent, : WIN * WIN].reshape(WIN, WIN)


def test_snake_eating_grows_by_exactly_one_and_rewards_one():
    env = drone_sim.make_ocean("snake", num_envs=1, seed=0, agents_per_env=1)
    max_len = 12 * 12 // 2
    obs = stage(env, [(5, 5, RIGHT, 3)], [(6, 5)])
    assert obs[0, 121] == pytest.approx(3 / max_len)
    assert window(obs)[4, 5] == 1.0  # the food is right ahead
    assert obs[0, 122] == pytest.approx(1 / 12) and obs[0, 123] == 0.0
    obs, rew, term, trunc, _ = env.step(np.array([STRAIGHT], dtype=np.int32))
    assert rew[0] == 1.0 and not term[0] and not trunc[0]
    assert obs[0, 121] == pytest.approx(4 / max_len)
    assert food_count(env) == 3, "eaten food did not reappear"
    obs, rew, *_ = env.step(np.array([STRAIGHT], dtype=np.int32))
    assert obs[0, 121] == pytest.approx(4 / max_len), "grew without eating"
    # the body is 4 cells long: head plus three behind, in the agent's own colour
    w = window(obs)
    assert list(w[5:9, 5]) == [-0.5] * 4 and w[9, 5] != -0.5


def test_snake_hitting_the_wall_kills_and_the_snake_respawns():
    env = drone_sim.make_ocean("snake", num_envs=1, seed=0, agents_per_env=1)
    obs = stage(env, [(11, 5, RIGHT, 3)], [(2, 2)])
    assert np.all(window(obs)[:5] == -1.0)  # every cell ahead is wall
    obs, rew, term, trunc, _ = env.step(np.array([STRAIGHT], dtype=np.int32))
    assert rew[0] == -1.0 and term[0] and not trunc[0]
    assert obs[0, 121] == pytest.approx(3 / 72), "the respawned snake is not a fresh one"
    assert window(obs)[5, 5] == -0.5
    log = env.logs()["snake"]
    assert log["episodes"] == 1 and log["episode_return"] == -1.0 and log["score"] == 0.0
    _, rew, term, *_ = env.step(np.array([STRAIGHT], dtype=np.int32))
    assert rew[0] == 0.0 and not term[0], "respawned facing a wall"


def test_snake_turns_are_relative_to_the_heading():
    env = drone_sim.make_ocean("snake", num_envs=1, seed=0, agents_per_env=1)
    # heading up at the top-left corner: left (into x = -1) is death, right is fine
    stage(env, [(0, 3, UP, 3)], [])
    _, rew, term, *_ = env.step(np.array([TURN_RIGHT], dtype=np.int32))
    assert not term[0]
    stage(env, [(0, 3, UP, 3)], [])
    _, rew, term, *_ = env.step(np.array([TURN_LEFT], dtype=np.int32))
    assert term[0] and rew[0] == -1.0
    # out-of-range actions go straight
    stage(env, [(5, 5, RIGHT, 3)], [(9, 5)])
    for _ in range(3):
        env.step(np.array([7], dtype=np.int32))
    _, rew, *_ = env.step(np.array([-3], dtype=np.int32))
    assert rew[0] == 1.0


def test_snake_head_on_collisions_kill_both_snakes():
    env = drone_sim.make_ocean("snake", num_envs=1, seed=0, agents_per_env=2)
    # both heads move onto the same cell (food there or not)
    stage(env, [(5, 7, RIGHT, 3), (7, 7, LEFT, 3)], [(6, 7)])
    _, rew, term, trunc, _ = env.step(np.array([STRAIGHT, STRAIGHT], dtype=np.int32))
    assert list(rew) == [-1.0, -1.0] and term.all() and not trunc.any()
    assert food_count(env) == 4, "food under a head-on collision was lost"
    # heads swapping cells run into each other's necks
    stage(env, [(5, 7, RIGHT, 3), (6, 7, LEFT, 3)], [])
    _, rew, term, *_ = env.step(np.array([STRAIGHT, STRAIGHT], dtype=np.int32))
    assert list(rew) == [-1.0, -1.0] and term.all()
    assert env.logs()["snake"]["episodes"] == 4


def test_snake_running_into_another_snake_kills_only_the_one_that_ran_in():
    env = drone_sim.make_ocean("snake", num_envs=1, seed=0, agents_per_env=2)
    stage(env, [(5, 3, DOWN, 3), (8, 4, RIGHT, 6)], [])  # snake 1 lies along y = 4 from x = 3 to 8
    obs, rew, term, *_ = env.step(np.array([STRAIGHT, STRAIGHT], dtype=np.int32))
    assert rew[0] == -1.0 and term[0]
    assert rew[1] == 0.0 and not term[1]


def test_snake_may_follow_a_tail_that_moves_away():
    env = drone_sim.make_ocean("snake", num_envs=1, seed=0, agents_per_env=2)
    # snake 0's head is just behind snake 1's tail (at (4, 4)), which leaves as snake 1 moves
    stage(env, [(3, 4, RIGHT, 3), (7, 4, RIGHT, 4)], [])
    _, rew, term, *_ = env.step(np.array([STRAIGHT, STRAIGHT], dtype=np.int32))
    assert not term.any() and list(rew) == [0.0, 0.0]


def test_snake_view_turns_with_the_heading():
    env = drone_sim.make_ocean("snake", num_envs=1, seed=0, agents_per_env=1)
    foods = [(6, 3), (1, 9), (8, 9)]
    views, food_dirs = [], []
    for heading in range(4):
        obs = stage(env, [(4, 6, heading, 1)], foods)
        views.append(window(obs).copy())
        food_dirs.append(obs[0, 122:124].copy())
    # heading up, the window is the board itself around the head (4, 6): the left wall x = -1 is column 0
    up = np.zeros((WIN, WIN), dtype=np.float32)
    up[:, 0] = -1.0
    up[5, 5] = -0.5
    for x, y in foods:
        up[5 + y - 6, 5 + x - 4] = 1.0
    np.testing.assert_array_equal(views[0], up)
    for heading in range(1, 4):
        np.testing.assert_array_equal(views[heading], np.rot90(up, heading))
    # nearest food (6, 3) is 2 right and 3 up of the head; in each heading's frame (ahead, right):
    side = 12
    expected = {UP: (3, 2), RIGHT: (2, -3), DOWN: (-3, -2), LEFT: (-2, 3)}
    for heading, (ahead, right) in expected.items():
        np.testing.assert_allclose(food_dirs[heading], [ahead / side, right / side])


def greedy_actions(obs, side):
    """Towards the nearest food, never into a wall or a body when a free cell is next to the head."""
    w = obs[:, : WIN * WIN].reshape(-1, WIN, WIN)
    ahead, right = obs[:, 122], obs[:, 123]
    u = 1.0 / side
    # distance to the food after each move: left moves the food right by a cell, right moves it left
    dist = np.stack([np.abs(ahead) + np.abs(right + u), np.abs(ahead - u) + np.abs(right),
                     np.abs(ahead) + np.abs(right - u)], axis=1)
    free = np.stack([w[:, 5, 4], w[:, 4, 5], w[:, 5, 6]], axis=1) >= 0
    dist = np.where(free, dist, 1e9)
    dist[:, 1] -= 1e-6  # ties: straight
    return np.argmin(dist, axis=1).astype(np.int32)


def _snake_food_rate(policy, seed, num_envs=16, steps=600):
    env = drone_sim.make_ocean("snake", num_envs=num_envs, seed=seed)
    eaten = 0
    for _ in range(steps):
        _, rew, *_ = env.step(policy(env.observations))
        eaten += int((rew > 0).sum())
    return eaten / (steps * env.num_agents), env.logs()["snake"]


def test_snake_greedy_controller_eats_far_more_than_random_play():
    rng = np.random.default_rng(0)
    greedy, greedy_log = _snake_food_rate(lambda obs: greedy_actions(obs, 20), seed=1)
    random, random_log = _snake_food_rate(lambda obs: rng.integers(0, 3, len(obs), dtype=np.int32), seed=1)
    assert greedy > 5 * random, (greedy, random)
    assert greedy_log["score"] > 5.0 and random_log["score"] < 1.0, (greedy_log, random_log)


@pytest.mark.parametrize("agents", [1, 3, 8])
def test_snake_food_count_stays_constant(agents):
    env = drone_sim.make_ocean("snake", num_envs=2, seed=4, agents_per_env=agents)
    rng = np.random.default_rng(1)
    for t in range(300):
        env.step(rng.integers(0, 3, env.num_agents, dtype=np.int32) if t % 2 else greedy_actions(env.observations, 20))
        assert food_count(env, 0) == agents + 2 and food_count(env, 1) == agents + 2


def test_snake_test_hook_refuses_taken_cells_and_other_envs():
    env = drone_sim.make_ocean("snake", num_envs=1, seed=0, agents_per_env=2)
    stage(env, [(5, 5, RIGHT, 3), (5, 8, RIGHT, 3)], [])
    before = env.observations.copy()
    assert env._c.debug_snake_set(0, 0, 0, 5, 8, RIGHT, 3) == -1  # on snake 1
    assert env._c.debug_snake_set(0, 0, 0, 1, 5, RIGHT, 3) == -1  # tail through the wall
    assert env._c.debug_snake_set(0, 1, 0, 4, 5) == -1            # food onto a body
    np.testing.assert_array_equal(env.observations, before)
    with pytest.raises(TypeError):
        drone_sim.make_ocean("breakout")._c.debug_snake_set(0, 1, 0, 1, 1)
