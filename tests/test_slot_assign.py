"""Formation slot assignment (slot_assign.h, drone_sim.assign_slots): the rule the swarm task trains with and
deploy flies with. What matters is that converging drones' straight paths do not cross."""
import itertools

import numpy as np
import pytest

import drone_sim


def cost(pos, slots, assign):
    return float(sum(np.sum((np.asarray(slots[s]) - np.asarray(p)) ** 2) for p, s in zip(pos, assign)))


def greedy(pos, slots):
    """The rule before slot_assign.h: each drone in turn takes the nearest free slot."""
    free, out = list(range(len(slots))), []
    for p in pos:
        d = [np.linalg.norm(slots[s] - p) for s in free]
        out.append(free.pop(int(np.argmin(d))))
    return out


def min_separation_on_straight_paths(pos, slots, assign, steps=200):
    """Smallest distance between any two drones that fly straight to their slots over the same time span."""
    a, g = np.asarray(pos, float), np.asarray(slots, float)[assign]
    best = np.inf
    for t in np.linspace(0.0, 1.0, steps + 1):
        x = (1 - t) * a + t * g
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        best = min(best, d[np.triu_indices(len(x), 1)].min())
    return best


def test_a_trade_that_uncrosses_two_paths_is_made():
    # greedy: drone 0 takes the slot at 0.4 beside it, and drone 1 must fly through it to the slot at -2
    pos = np.array([[0.0, 0, 2], [1.0, 0, 2]])
    slots = np.array([[0.4, 0, 2], [-2.0, 0, 2]])
    assert greedy(pos, slots) == [0, 1]
    assert min_separation_on_straight_paths(pos, slots, [0, 1]) < 0.05
    assert drone_sim.assign_slots(pos, slots) == [1, 0]
    assert min_separation_on_straight_paths(pos, slots, [1, 0]) >= 1.0 / np.sqrt(2) - 1e-9


@pytest.mark.parametrize("seed", range(20))
def test_random_formations_no_pair_would_trade_and_paths_keep_apart(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 13))
    m = n + int(rng.integers(0, 4))
    pos = rng.uniform(-6, 6, (n, 3))
    slots = rng.uniform(-2, 2, (m, 3))
    assign = drone_sim.assign_slots(pos, slots)
    assert sorted(set(assign)) == sorted(assign) and all(0 <= s < m for s in assign)
    assert cost(pos, slots, assign) <= cost(pos, slots, greedy(pos, slots)) + 1e-4
    g = slots[assign]
    for i, j in itertools.combinations(range(n), 2):   # (a_i - a_j) . (g_i - g_j) >= 0: no trade lowers the sum
        assert np.dot(pos[i] - pos[j], g[i] - g[j]) >= -1e-3, (i, j)
    for i in range(n):                                  # no drone has a free slot nearer than its own
        for s in set(range(m)) - set(assign):
            assert np.sum((slots[s] - pos[i]) ** 2) >= np.sum((g[i] - pos[i]) ** 2) - 1e-4
    starts = np.linalg.norm(pos[:, None] - pos[None], axis=-1)[np.triu_indices(n, 1)]
    goals = np.linalg.norm(g[:, None] - g[None], axis=-1)[np.triu_indices(n, 1)]
    bound = min(starts.min(), goals.min()) / np.sqrt(2)
    assert min_separation_on_straight_paths(pos, slots, assign) >= bound - 1e-3


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least 3 slots"):
        drone_sim.assign_slots(np.zeros((3, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        drone_sim.assign_slots([[np.nan, 0, 0]], [[0, 0, 0]])
    assert drone_sim.assign_slots(np.zeros((0, 3)), [[0, 0, 0]]) == []


@pytest.mark.parametrize("seed", range(4))
def test_the_swarm_task_assigns_slots_by_this_rule(seed):
    """At the start of every formation the env's targets are its slots, and no two drones would trade them."""
    env = drone_sim.make(tasks="swarm", num_envs=2, agents_per_env=16, seed=seed)
    env.reset(seed)
    pos, targets = env.states()[:, :3].astype(float), env.targets()[0].astype(float)
    for e in range(2):
        rows = slice(16 * e, 16 * (e + 1))
        p, g = pos[rows], targets[rows]
        assert len({tuple(x) for x in g.round(4)}) == 16            # one slot each
        assert cost(p, g, range(16)) <= cost(p, g, greedy(p, g)) + 1e-3
        for i, j in itertools.combinations(range(16), 2):
            assert np.dot(p[i] - p[j], g[i] - g[j]) >= -1e-3, (e, i, j)
