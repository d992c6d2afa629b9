"""Game rules of the ocean envs target, cartpole, pong and connect4, driven through the vector API (and, for
connect4, the binding's debug_connect4_script hook that scripts the opponent)."""
import math

import numpy as np
import pytest

import drone_sim


def one(name, seed=0, num_envs=1):
    return drone_sim.make_ocean(name, num_envs=num_envs, seed=seed)


def act(env, *actions):
    return env.step(np.array(actions, dtype=np.int32))


# ---------------------------------------------------------------- target

N = 9  # TARGET_N


def target_cells(obs):
    ax, ay, gx, gy = (np.rint((obs[:4] + 1) * (N - 1) / 2)).astype(int)
    return ax, ay, gx, gy


def test_target_observation_layout():
    env = one("target", seed=5)
    o = env.observations[0]
    ax, ay, gx, gy = target_cells(o)
    assert (ax, ay) != (gx, gy)
    assert o[4] == pytest.approx((gx - ax) / (N - 1)) and o[5] == pytest.approx((gy - ay) / (N - 1))


@pytest.mark.parametrize("seed", range(5))
def test_target_reached_gives_plus_one_and_ends(seed):
    env = one("target", seed=seed)
    ax, ay, gx, gy = target_cells(env.observations[0])
    path = [4 if gx > ax else 3] * abs(gx - ax) + [2 if gy > ay else 1] * abs(gy - ay)
    for k, a in enumerate(path):
        obs, rew, term, trunc, _ = act(env, a)
        if k < len(path) - 1:
            assert rew[0] == pytest.approx(-0.01) and not term[0] and not trunc[0]
            assert tuple(target_cells(obs[0])[:2]) != (gx, gy)
    assert rew[0] == 1.0 and term[0] and not trunc[0]
    logs = env.logs()["target"]
    assert logs["score"] == 1.0 and logs["episode_length"] == len(path)
    assert logs["episode_return"] == pytest.approx(1.0 - 0.01 * (len(path) - 1))


def test_target_walls_and_truncation():
    env = one("target", seed=2)
    ax, ay, gx, gy = target_cells(env.observations[0])
    wall = 3 if gx > 0 else 4  # walk away from the goal into the wall; never reaches it
    for t in range(2 * N):
        obs, rew, term, trunc, _ = act(env, wall)
        if t < 2 * N - 1:
            assert not trunc[0] and not term[0]
            x = target_cells(obs[0])[0]
            assert x == (0 if wall == 3 else N - 1) or t < N
    assert trunc[0] and not term[0] and rew[0] == pytest.approx(-0.01)
    assert env.logs()["target"]["score"] == 0.0


# ---------------------------------------------------------------- cartpole


def test_cartpole_matches_the_reference_equations():
    env = one("cartpole", seed=3)
    o = env.observations[0].astype(np.float64)
    x, x_dot, th, th_dot = o[0] * 2.4, o[1] * 2.0, o[2] * math.radians(12), o[3] * 3.0
    for a in (1, 1, 0, 1, 0, 0, 0, 1):
        f = 10.0 if a else -10.0
        temp = (f + 0.05 * th_dot**2 * math.sin(th)) / 1.1
        th_acc = (9.8 * math.sin(th) - math.cos(th) * temp) / (0.5 * (4 / 3 - 0.1 * math.cos(th) ** 2 / 1.1))
        x_acc = temp - 0.05 * th_acc * math.cos(th) / 1.1
        x, x_dot, th, th_dot = x + 0.02 * x_dot, x_dot + 0.02 * x_acc, th + 0.02 * th_dot, th_dot + 0.02 * th_acc
        obs, rew, *_ = act(env, a)
        got = obs[0].astype(np.float64) * [2.4, 2.0, math.radians(12), 3.0]
        np.testing.assert_allclose(got, [x, x_dot, th, th_dot], atol=1e-5)
        assert rew[0] == 1.0


@pytest.mark.parametrize("push", [0, 1])
def test_cartpole_falls_over_under_a_constant_push(push):
    env = one("cartpole", seed=1)
    for t in range(200):
        obs, rew, term, trunc, _ = act(env, push)
        assert rew[0] == 1.0 and not trunc[0]
        if term[0]:
            break
    assert term[0] and t < 100
    logs = env.logs()["cartpole"]
    assert logs["score"] == logs["episode_length"] == logs["episode_return"] == t + 1


def test_cartpole_balanced_by_a_simple_controller_until_the_cap():
    env = one("cartpole", seed=0, num_envs=8)
    for t in range(500):
        o = env.observations
        # Push towards where the pole is leaning, a little ahead of time.
        obs, rew, term, trunc, _ = env.step(((o[:, 2] * math.radians(12) + 0.15 * o[:, 3]) > 0).astype(np.int32))
        assert not term.any()
        assert trunc.all() == (t == 499)
    logs = env.logs()["cartpole"]
    assert logs["episodes"] == 8 and logs["score"] == 500 and logs["episode_return"] == 500


# ---------------------------------------------------------------- pong

MAX_SPEED = 0.06  # PONG_MAX_SPEED


def pong_tracker(obs, aim=0.15):
    """Keep the paddle on the ball, offset so the ball leaves at an angle away from the opponent's paddle."""
    off = np.where(obs[:, 5] > 0, aim, -aim)
    d = obs[:, 1] - obs[:, 4] + off
    return np.where(d < -0.03, 1, np.where(d > 0.03, 2, 0)).astype(np.int32)


def test_pong_a_miss_ends_the_rally_and_scores_for_the_other_side():
    env = one("pong", seed=4, num_envs=4)
    prev = env.observations.copy()
    misses = wins = 0
    for _ in range(4000):
        obs, rew, term, trunc, _ = env.step(np.ones(4, dtype=np.int32))  # paddle parked at the top
        assert not trunc.any()
        for i in np.flatnonzero(rew == -1):
            misses += 1
            assert obs[i, 0] == 0.0, "the ball is served again from the middle"
            if not term[i]:
                assert obs[i, 7] == pytest.approx(prev[i, 7] + 0.2) and obs[i, 6] == prev[i, 6]
            else:
                assert prev[i, 7] == pytest.approx(0.8) and obs[i, 7] == 0.0
        for i in np.flatnonzero(rew == 1):
            wins += 1
            if not term[i]:
                assert obs[i, 6] == pytest.approx(prev[i, 6] + 0.2)
        other = (rew != 0) & (rew != 1) & (rew != -1)
        assert np.allclose(rew[other], 0.1), "only a return earns a fraction of a point"
        prev = obs.copy()
        if term.any():
            break
    assert term.any() and misses >= 5
    logs = env.logs()["pong"]
    assert logs["episodes"] == term.sum() and logs["score"] == -5.0


def test_pong_ball_speeds_up_on_returns_up_to_the_cap():
    env = one("pong", seed=1, num_envs=8)
    prev = env.observations.copy()
    returns = 0
    for _ in range(1500):
        obs, rew, *_ = env.step(pong_tracker(env.observations))
        for i in np.flatnonzero(np.isclose(rew, 0.1)):
            before = math.hypot(*prev[i, 2:4]) * MAX_SPEED
            after = math.hypot(*obs[i, 2:4]) * MAX_SPEED
            assert obs[i, 2] < 0, "a return sends the ball back towards the opponent"
            assert after == pytest.approx(min(before * 1.08, MAX_SPEED), rel=1e-4)
            returns += 1
        prev = obs.copy()
    assert returns > 20


def test_pong_tracking_controller_beats_the_opponent_and_random_loses():
    env = one("pong", seed=2, num_envs=16)
    for _ in range(3000):
        env.step(pong_tracker(env.observations))
    good = env.logs()["pong"]
    assert good["episodes"] >= 16 and good["score"] >= 3.0, good
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(1500):
        env.step(rng.integers(0, 3, 16))
    bad = env.logs()["pong"]
    assert bad["score"] <= -3.0, bad
    assert -5.0 <= bad["score"] and good["score"] <= 5.0


# ---------------------------------------------------------------- connect4

ROWS, COLS = 6, 7


def board(obs):
    """(rows from the bottom, columns): +1 agent, -1 opponent."""
    return obs[: ROWS * COLS].reshape(ROWS, COLS)


def play(env, agent_moves, script, agent_first=1):
    """Agent plays agent_moves against the scripted opponent; returns the per-step (reward, terminal)."""
    env._c.debug_connect4_script(0, script, agent_first)
    assert env.observations[0, 42] == (1.0 if agent_first else -1.0)
    out = []
    for m in agent_moves:
        _, rew, term, trunc, _ = act(env, m)
        out.append((float(rew[0]), bool(term[0])))
        assert not trunc[0]
    return out


@pytest.mark.parametrize("agent_moves, script", [
    ([0, 1, 2, 3], [0, 1, 2]),                      # horizontal, bottom row
    ([3, 3, 3, 3], [4, 4, 4]),                      # vertical
    ([0, 1, 3, 2, 6, 3], [1, 2, 2, 3, 3]),          # diagonal / : (0,0) (1,1) (2,2) (3,3)
    ([6, 5, 3, 4, 0, 3], [5, 4, 4, 3, 3]),          # diagonal \ : (6,0) (5,1) (4,2) (3,3)
    ([1, 2, 4, 5, 3], [1, 2, 4, 5]),                # horizontal, completed in the middle
], ids=["horizontal", "vertical", "diagonal", "antidiagonal", "middle"])
def test_connect4_four_in_a_row_wins(agent_moves, script):
    env = one("connect4")
    before = None
    env._c.debug_connect4_script(0, script, 1)
    for m in agent_moves[:-1]:
        _, rew, term, _, _ = act(env, m)
        assert rew[0] == 0 and not term[0]
        before = board(env.observations[0]).copy()
    _, rew, term, _, _ = act(env, agent_moves[-1])
    assert rew[0] == 1.0 and term[0]
    assert (before == 1).sum() == len(agent_moves) - 1 and (before == -1).sum() == len(script)
    logs = env.logs()["connect4"]
    assert logs["score"] == 1.0 and logs["episode_return"] == 1.0 and logs["episode_length"] == len(agent_moves)


def test_connect4_opponent_four_in_a_row_loses():
    env = one("connect4")
    steps = play(env, [6, 6, 5, 5], [0, 1, 2, 3])
    assert steps == [(0.0, False)] * 3 + [(-1.0, True)]
    assert env.logs()["connect4"]["score"] == 0.0


def test_connect4_illegal_move_loses():
    env = one("connect4")
    steps = play(env, [0, 0, 0, 0], [0, 0, 0])
    assert steps == [(0.0, False)] * 3 + [(-1.0, True)]
    assert env.logs()["connect4"]["score"] == 0.0


def drawn_game():
    """A move order that fills the board with no four in a row: column c holds colours (row + s[c]) % 2 with
    s = 0 0 1 1 0 0 1 (colour 0 moves first), so runs are at most two long in every direction."""
    s = [0, 0, 1, 1, 0, 0, 1]
    heights = [0] * COLS
    moves = []

    def search(k):
        if k == ROWS * COLS:
            return True
        for c in range(COLS):
            if heights[c] < ROWS and (heights[c] + s[c]) % 2 == k % 2:
                heights[c] += 1
                moves.append(c)
                if search(k + 1):
                    return True
                heights[c] -= 1
                moves.pop()
        return False

    assert search(0)
    return moves[0::2], moves[1::2]


@pytest.mark.parametrize("agent_first", [1, 0])
def test_connect4_full_board_is_a_draw(agent_first):
    first, second = drawn_game()
    env = one("connect4")
    agent, script = (first, second) if agent_first else (second, first)
    steps = play(env, agent, script, agent_first)
    assert steps == [(0.0, False)] * 20 + [(0.0, True)]
    logs = env.logs()["connect4"]
    assert logs["score"] == 0.5 and logs["episode_length"] == 21


def test_connect4_random_vs_random_plays_legal_games():
    env = one("connect4", seed=3, num_envs=64)
    rng = np.random.default_rng(1)
    for _ in range(300):
        obs = env.observations
        b = obs[:, : ROWS * COLS].reshape(-1, ROWS, COLS)
        # Gravity: no piece above an empty cell; counts follow who started.
        filled = b != 0
        assert not np.any(filled[:, 1:] & ~filled[:, :-1])
        mine, theirs = (b == 1).sum(axis=(1, 2)), (b == -1).sum(axis=(1, 2))
        np.testing.assert_array_equal(theirs - mine, np.where(obs[:, 42] > 0, 0, 1))
        legal = ~filled[:, ROWS - 1]
        choice = np.array([rng.choice(np.flatnonzero(row)) for row in legal], dtype=np.int32)
        env.step(choice)
    logs = env.logs()["connect4"]
    assert logs["episodes"] > 500
    assert 0.3 < logs["score"] < 0.7  # an even match, first-move advantage averaged out
    assert 4 <= logs["episode_length"] <= 21


def test_connect4_hard_opponent_blocks_and_wins():
    env = one("connect4_hard")
    # The agent threatens the bottom row at column 3 after 0, 1, 2: the opponent blocks it.
    play(env, [0, 1, 2], [6, 6], agent_first=1)
    assert board(env.observations[0])[0, 3] == -1
    # The opponent holds three in column 5 and wins there at once.
    steps = play(env, [0, 2, 4, 6], [5, 5, 5], agent_first=1)
    assert steps[-1] == (-1.0, True)
    # The default opponent is random: it blocks the same threat only in some of the games.
    env = one("connect4", seed=0, num_envs=32)
    for i in range(32):
        env._c.debug_connect4_script(i, [], 1)
    for m in (0, 1, 2):
        env.step(np.full(32, m, dtype=np.int32))
    blocked = np.count_nonzero(env.observations[:, 3] == -1)
    assert 0 < blocked < 32
