"""The ocean env contract (drone_sim/ocean/csrc/ocean.h), checked for every env in drone_sim.ocean.ENVS."""
import gymnasium
import numpy as np
import pytest

import drone_sim
from drone_sim import ocean
from drone_sim.ocean import binding

ENVS = ocean.ENVS


def rollout(name, seed, steps=300, num_envs=4, action_seed=0):
    env = drone_sim.make_ocean(name, num_envs=num_envs, seed=seed)
    rng = np.random.default_rng(action_seed)
    frames = [env.observations.copy()]
    for _ in range(steps):
        obs, rew, term, trunc, _ = env.step(rng.integers(0, env.num_actions, env.num_agents))
        frames.append(np.concatenate([obs.ravel(), rew, term, trunc]).copy())
    return frames


def random_steps(env, steps, seed=0):
    """Yields after each step with random legal actions."""
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, env.num_actions, (steps, env.num_agents)).astype(np.int32)
    for t in range(steps):
        yield env.step(actions[t])


def test_envs_listed_and_exported():
    assert {"target", "cartpole", "pong", "connect4"} <= set(ENVS)
    assert drone_sim.make_ocean is ocean.make_ocean
    assert [s["name"] for s in binding.specs()] == list(ENVS)


@pytest.mark.parametrize("name", ENVS)
def test_same_seed_same_rollout_and_different_seed_differs(name):
    a, b = rollout(name, seed=3), rollout(name, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c = rollout(name, seed=4)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("name", ENVS)
def test_reset_reseeds(name):
    env = drone_sim.make_ocean(name, num_envs=4, seed=1)
    first = env.observations.copy()
    for _ in random_steps(env, 50):
        pass
    obs, info = env.reset(seed=1)
    assert obs is env.observations and info == {}
    np.testing.assert_array_equal(obs, first)
    assert not env.terminals.any() and not env.truncations.any() and not env.rewards.any()


@pytest.mark.parametrize("name", ENVS)
def test_first_observation_is_real(name):
    env = drone_sim.make_ocean(name, num_envs=16, seed=7)
    assert np.all(np.any(env.observations != 0, axis=1)), "an agent's first observation is all zero"
    env.reset(seed=8)
    assert np.all(np.any(env.observations != 0, axis=1))


@pytest.mark.parametrize("name", ENVS)
def test_observations_and_rewards_in_range(name):
    env = drone_sim.make_ocean(name, num_envs=16, seed=0)
    assert env.observation_space.shape == (env.num_agents, env.obs_size)
    for obs, rew, term, trunc, _ in random_steps(env, 500):
        assert np.all(np.isfinite(obs)) and np.abs(obs).max() <= 1.5, np.abs(obs).max()
        assert np.all(np.isfinite(rew)) and rew.min() >= -1.0 and rew.max() <= 1.0
        assert not np.any(term & trunc), "terminal and truncation together"


@pytest.mark.parametrize("name", ENVS)
def test_out_of_range_actions_are_harmless(name):
    env = drone_sim.make_ocean(name, num_envs=4, seed=0)
    n = env.num_agents
    for a in (-1, env.num_actions, 2**31 - 1, -(2**31)):
        for _ in range(20):
            obs, rew, term, trunc, _ = env.step(np.full(n, a, dtype=np.int64))
            assert np.all(np.isfinite(obs)) and np.abs(rew).max() <= 1.0


@pytest.mark.parametrize("name", ENVS)
def test_episodes_end_and_logs_report_them(name):
    env = drone_sim.make_ocean(name, num_envs=32, seed=0)
    assert env.logs() == {}
    ended = 0
    for _, _, term, trunc, _ in random_steps(env, 20000):
        ended += int(np.count_nonzero(term | trunc))
        if ended >= 8:
            break
    assert ended > 0, "no episode ended in 20000 random steps"
    logs = env.logs(clear=False)
    assert set(logs) == {name}
    entry = logs[name]
    assert set(entry) == {"episodes", "episode_return", "episode_length", "score"}
    assert entry["episodes"] == ended
    assert entry["episode_length"] >= 1 and all(np.isfinite(v) for v in entry.values())
    assert env.logs()[name]["episodes"] == ended  # clear=False kept them
    assert env.logs() == {}


@pytest.mark.parametrize("name", ENVS)
def test_buffers_are_zero_copy(name):
    env = drone_sim.make_ocean(name, num_envs=4, seed=0)
    obs, _ = env.reset()
    assert obs is env.observations
    obs2, rew, term, trunc, info = env.step(np.zeros(env.num_agents, dtype=np.int32))
    assert obs2 is env.observations and rew is env.rewards and info == {}
    assert term.dtype == np.bool_ and trunc.dtype == np.bool_
    assert np.shares_memory(term, env.terminals) and np.shares_memory(trunc, env.truncations)
    c = env._c
    assert c.observations is env.observations and c.actions is env.actions and c.rewards is env.rewards
    # Writing env.actions and stepping with None uses them.
    env.actions[:] = 1
    before = env.observations.copy()
    env.step()
    assert env.observations is obs and not np.shares_memory(before, env.observations)


@pytest.mark.parametrize("name", ENVS)
def test_spaces(name):
    env = drone_sim.make_ocean(name, num_envs=2, seed=0)
    s = ocean.spec(name)
    assert env.obs_size == s["obs_size"] == env.observations.shape[1]
    assert env.single_action_space == gymnasium.spaces.Discrete(s["num_actions"])
    assert env.single_observation_space.shape == (s["obs_size"],)
    assert isinstance(env.action_space, gymnasium.spaces.MultiDiscrete)
    assert env.action_space.shape == (env.num_agents,)
    assert env.agents_per_env == s["default_agents"] and env.num_agents == 2 * s["default_agents"]
    env.step(env.action_space.sample())
    assert env._c.name == name and env._c.num_actions == env.num_actions and env._c.aspect == pytest.approx(s["aspect"])


@pytest.mark.parametrize("name", ENVS)
def test_render_commands_inside_the_canvas(name):
    env = drone_sim.make_ocean(name, num_envs=2, seed=0)
    for t, _ in enumerate(random_steps(env, 60)):
        if t % 20:
            continue
        for i in range(env.num_envs):
            cmds = env.render_commands(i)
            assert cmds.dtype == ocean.DRAW_DTYPE and 0 < len(cmds) <= 512
            assert set(np.unique(cmds["kind"])) <= {0, 1, 2}
            for f in ("x", "y"):
                assert np.all((cmds[f] >= -1e-3) & (cmds[f] <= 1 + 1e-3)), f
            rects, lines = cmds[cmds["kind"] == 0], cmds[cmds["kind"] == 2]
            assert np.all(rects["x"] + rects["w"] <= 1 + 1e-3) and np.all(rects["y"] + rects["h"] <= 1 + 1e-3)
            for f in ("w", "h"):  # a line's end point
                assert np.all((lines[f] >= -1e-3) & (lines[f] <= 1 + 1e-3)), f
    with pytest.raises(IndexError):
        env.render_commands(2)


def test_step_rejects_bad_actions_clearly():
    env = drone_sim.make_ocean("target", num_envs=3, seed=0)
    with pytest.raises(TypeError, match="integers"):
        env.step(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        env.step(np.zeros(4, dtype=np.int32))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((3, 1), dtype=np.int32))
    env.step([0, 1, 2])  # lists of ints are fine
    np.testing.assert_array_equal(env.actions, [0, 1, 2])


def test_binding_checks_buffers_by_name():
    n, size = 2, ocean.spec("target")["obs_size"]

    def bufs(**over):
        b = dict(observations=np.zeros((n, size), np.float32), actions=np.zeros(n, np.int32),
                 rewards=np.zeros(n, np.float32), terminals=np.zeros(n, np.uint8), truncations=np.zeros(n, np.uint8))
        b.update(over)
        return b

    with pytest.raises(TypeError, match="actions: dtype must be int32"):
        binding.COceanVec("target", n, 1, **bufs(actions=np.zeros(n, np.int64)))
    with pytest.raises(ValueError, match=r"observations: shape must be \(2, 6\)"):
        binding.COceanVec("target", n, 1, **bufs(observations=np.zeros((n, size + 1), np.float32)))
    with pytest.raises(ValueError, match="rewards: must be a writeable C-contiguous"):
        binding.COceanVec("target", n, 1, **bufs(rewards=np.zeros(2 * n, np.float32)[::2]))
    with pytest.raises(TypeError, match="terminals: expected a numpy array"):
        binding.COceanVec("target", n, 1, **bufs(terminals=[0, 0]))
    binding.COceanVec("target", n, 1, **bufs())


def test_unknown_env_and_bad_agent_counts():
    with pytest.raises(ValueError) as err:
        drone_sim.make_ocean("tetris")
    for name in ENVS:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="agents_per_env"):
        drone_sim.make_ocean("cartpole", agents_per_env=2)
    with pytest.raises(ValueError, match="num_envs"):
        drone_sim.make_ocean("cartpole", num_envs=0)
