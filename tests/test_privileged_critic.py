"""The asymmetric critic: the simulator's privileged rows against a hand computation from each agent's drone, the
critic reading them while the actor (what is exported and flown) does not, and a run with --privileged-critic."""
import math

import numpy as np
import pytest
import torch

import drone_sim
from policies.checkpoint import load_policy
from policies.config import ConfigError, load_toml, make_config
from policies.export import export_onnx
from policies.model import ActorCritic
from policies.onnx_policy import OnnxPolicy
from policies.train import train
from tiny_runs import TINY_TWO_TASKS


def expected_row(info: dict) -> np.ndarray:
    """privileged.h's layout, computed here from the agent's drone as the binding reports it."""
    d, g = info["drone"], drone_sim.GRAVITY
    max_thrust = 4.0 * d["k_thrust"] * d["omega_max"] ** 2
    hover = d["mass"] * g / max_thrust
    parts = {
        "mass": [math.log(d["mass"])], "arm": [math.log(d["arm"])], "inertia": [math.log(v) for v in d["inertia"]],
        "thrust_to_weight": [1.0 / hover], "hover_thrust": [hover],
        "hover_belief_error": [info["hover_thrust_known"] - hover],
        "torque_ratio": [math.log(d["k_torque"] / d["k_thrust"])],
        "tau_up": [math.log(d["tau_up"])], "tau_down": [math.log(d["tau_down"])],
        "drag": [v / d["mass"] for v in d["drag"]],
        "ang_damp": [v / i for v, i in zip(d["ang_damp"], d["inertia"])],
        "gains": [*d["kp"], *d["ki"], *d["kd"]], "max_rate": d["max_rate"], "latency": [d["latency"]],
        "wind": [v / d["mass"] for v in d["wind"]], "obs_noise": [info["obs_noise"]],
    }
    row = np.full(drone_sim.PRIV_SIZE, np.nan)
    for name, (off, size) in drone_sim.PRIV_LAYOUT.items():
        assert len(parts[name]) == size, name
        row[off:off + size] = parts[name]
    assert not np.isnan(row).any()  # the layout covers every entry
    return row


def test_privileged_rows_describe_each_agents_drone_and_follow_respawns():
    env = drone_sim.make(tasks="race", num_envs=2, agents_per_env=4, seed=7)
    env.reset(11)
    for i in range(env.num_agents):
        np.testing.assert_allclose(env.privileged[i], expected_row(env.agent_info(i)), rtol=2e-5, atol=1e-6)
    # randomized drones differ from each other, so the rows do too
    assert np.ptp(env.privileged[:, drone_sim.PRIV_LAYOUT["mass"][0]]) > 0.1
    # a respawn draws another drone: its row is rewritten in the same step
    before = env.privileged.copy()
    env.actions[:] = -1.0   # motors off: every drone falls and crashes
    respawned = np.zeros(env.num_agents, bool)
    for _ in range(300):
        _, _, term, _, _ = env.step()
        respawned |= term
        if respawned.all():
            break
    assert respawned.all()
    for i in range(env.num_agents):
        np.testing.assert_allclose(env.privileged[i], expected_row(env.agent_info(i)), rtol=2e-5, atol=1e-6)
    assert not np.allclose(env.privileged, before)
    # a drone given by hand (the simulated vehicle's params file) is described too, its hover thrust known exactly
    drone = dict(env.agent_info(0)["drone"], mass=0.9, wind=[0.9, 0.0, 0.0])
    env.set_drone(0, drone)
    row = env.privileged[0]
    assert row[drone_sim.PRIV_LAYOUT["mass"][0]] == pytest.approx(math.log(0.9))
    assert row[drone_sim.PRIV_LAYOUT["wind"][0]] == pytest.approx(1.0)   # 0.9 N on 0.9 kg
    assert row[drone_sim.PRIV_LAYOUT["hover_belief_error"][0]] == pytest.approx(0.0, abs=1e-7)


def test_the_critic_reads_the_privileged_state_and_the_actor_does_not():
    torch.manual_seed(0)
    model = ActorCritic(drone_sim.OBS_SIZE, 4, privileged=drone_sim.PRIV_SIZE)
    obs = torch.randn(5, drone_sim.OBS_SIZE)
    p1, p2 = torch.randn(5, drone_sim.PRIV_SIZE), torch.randn(5, drone_sim.PRIV_SIZE)
    mean1, v1, _ = model(obs, privileged=p1)
    mean2, v2, _ = model(obs, privileged=p2)
    assert torch.equal(mean1, mean2)                   # the actor never sees it
    assert not torch.allclose(v1, v2)                  # the critic does
    mean0, v0, _ = model(obs)
    assert torch.equal(mean0, mean1) and v0 is None    # evaluation and export: the actor alone, no value
    with pytest.raises(ValueError, match="34 privileged values, got 3"):
        model(obs, privileged=torch.zeros(5, 3))
    # the LSTM's critic reads it beside the recurrent features
    lstm = ActorCritic(drone_sim.OBS_SIZE, 4, lstm=True, privileged=drone_sim.PRIV_SIZE)
    state = lstm.initial_state(5)
    m1, w1, _ = lstm(obs, state, privileged=p1)
    m2, w2, _ = lstm(obs, state, privileged=p2)
    assert torch.equal(m1, m2) and not torch.allclose(w1, w2)


def test_a_privileged_critic_run_trains_exports_and_resumes_only_as_itself(tmp_path):
    out = tmp_path / "run"
    train(make_config(cli_values={**TINY_TWO_TASKS, "privileged_critic": True}), out)
    model, meta = load_policy(out / "model.pt")
    assert model.privileged_size == drone_sim.PRIV_SIZE and meta["priv_version"] == drone_sim.PRIV_VERSION
    # its statistics were gathered: the mass column's running mean is a log of a drone mass, not the initial 0
    assert model.priv_norm.mean[drone_sim.PRIV_LAYOUT["mass"][0]] != 0.0
    # the exported file is the actor on the observation alone, and flies like the checkpoint
    onnx_path = tmp_path / "p.onnx"
    export_onnx(out / "model.pt", onnx_path)
    policy = OnnxPolicy(onnx_path)
    obs = np.random.default_rng(0).normal(size=(drone_sim.OBS_SIZE,)).astype(np.float32)
    with torch.no_grad():
        want = model.deterministic(model(torch.from_numpy(obs)[None])[0])[0].numpy()
    np.testing.assert_allclose(policy(obs), want, atol=1e-5)
    # a resume must keep the critic it was trained with
    cfg = load_toml(out / "config.toml")
    with pytest.raises(ValueError, match="privileged critic layout v1, this run asks for v0"):
        train(make_config(cfg, {"total_steps": 1024, "privileged_critic": False}), out, resume=True)
    s = train(make_config(cfg, {"total_steps": 1024}), out, resume=True)
    assert s["global_step"] == 1024
    with pytest.raises(ConfigError, match="privileged_critic: only the drone env"):
        make_config(cli_values={"env": "cartpole", "privileged_critic": True})
