"""The trainer: PPO math on tiny cases, normalization state, CLI errors, resume, LSTM, two-rank training."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import drone_sim
from policies.checkpoint import CheckpointError, load_checkpoint, load_policy
from policies.cli import train_main
from policies.config import ConfigError, load_toml, make_config
from policies.model import ActorCritic, RunningNorm
from policies.ppo import clipped_surrogate, compute_gae
from policies.train import lowest_reward, train
from tiny_runs import TINY_HOVER

ROOT = Path(__file__).resolve().parents[1]


def test_gae_matches_a_hand_computation():
    gamma, lam = 0.9, 0.8
    r = torch.tensor([[1.0], [0.5], [-1.0]])
    v = torch.tensor([[0.2], [0.4], [0.1], [0.7]])  # last row: bootstrap value
    d = torch.tensor([[0.0], [1.0], [0.0]])  # the episode ends after step 1
    adv, ret = compute_gae(r, v, d, gamma, lam)
    # by hand, backwards
    delta2 = -1.0 + 0.9 * 0.7 - 0.1
    a2 = delta2
    delta1 = 0.5 + 0.0 - 0.4  # terminal: no bootstrap
    a1 = delta1
    delta0 = 1.0 + 0.9 * 0.4 - 0.2
    a0 = delta0 + 0.9 * 0.8 * a1
    np.testing.assert_allclose(adv[:, 0].numpy(), [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0].numpy(), [a0 + 0.2, a1 + 0.4, a2 + 0.1], rtol=1e-6)
    # into the trainer's buffers: the same numbers, in place (returns are computed there only)
    out_adv, out_ret = torch.full_like(r, 9.0), torch.full_like(r, 9.0)
    adv2, ret2 = compute_gae(r, v, d, gamma, lam, out_adv=out_adv, out_ret=out_ret)
    assert adv2 is out_adv and ret2 is out_ret
    assert torch.equal(out_adv, adv) and torch.equal(out_ret, ret)


def test_clipped_surrogate_caps_the_incentive():
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    ratio = torch.tensor([1.5, 0.9, 0.5, 1.1], requires_grad=True)
    loss = clipped_surrogate(ratio, adv, 0.2)
    # min(r*A, clip(r)*A): 1.2, 0.9, -0.8, -1.1 -> mean 0.05, loss -0.05
    assert loss.item() == pytest.approx(-(1.2 + 0.9 - 0.8 - 1.1) / 4)
    loss.backward()
    # no gradient through the clipped terms (1.5 with A > 0, 0.5 with A < 0)
    np.testing.assert_allclose(ratio.grad.numpy(), [0.0, -0.25, 0.0, 0.25])


def test_running_norm_merges_batches_like_one_big_batch_and_survives_save_load():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 2, (500, 4)), rng.normal(-1, 0.5, (300, 4))
    norm = RunningNorm(4, eps=1e-12)
    for x in (a, b):
        t = torch.tensor(x, dtype=torch.float32)
        norm.update(t.mean(0), t.var(0, unbiased=False), len(x))
    both = np.concatenate([a, b])
    np.testing.assert_allclose(norm.mean.numpy(), both.mean(0), rtol=1e-4)
    np.testing.assert_allclose(norm.var.numpy(), both.var(0), rtol=1e-4)
    model = ActorCritic(4, 2)
    model.norm.load_state_dict(norm.state_dict())
    obs = torch.randn(5, 4)
    out = model(obs)[0]
    clone = ActorCritic(4, 2)
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone(obs)[0], out)
    torch.testing.assert_close(clone.norm.mean, norm.mean)


def test_entity_slots_share_their_normalization_and_are_read_in_any_order(tmp_path):
    """--entities: the nearest drones and obstacles go through one network per block, pooled; a drone or an
    obstacle must read the same whichever slot it is listed in, so the slots share their normalizer statistics
    too (pooled over the slots, checked by hand), and swapping two slots leaves action and value unchanged."""
    from policies.train import drone_entity_blocks

    blocks = drone_entity_blocks()
    assert blocks == [(drone_sim.OBS_LAYOUT["drones"][0], 3, 7), (drone_sim.OBS_LAYOUT["obstacles"][0], 3, 6)]
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (400, drone_sim.OBS_SIZE)) * rng.uniform(0.2, 3, drone_sim.OBS_SIZE) + rng.normal(0, 2, drone_sim.OBS_SIZE)
    model = ActorCritic(drone_sim.OBS_SIZE, 4, entities=blocks)
    t = torch.tensor(x, dtype=torch.float32)
    model.norm.update(t.mean(0), t.var(0, unbiased=False), len(x))
    off, n, stride = blocks[1]
    slots = x[:, off:off + n * stride].reshape(-1, n, stride).reshape(-1, stride)   # every slot's values together
    for k in range(n):
        got_m = model.norm.mean[off + k * stride:off + (k + 1) * stride].numpy()
        got_v = model.norm.var[off + k * stride:off + (k + 1) * stride].numpy()
        np.testing.assert_allclose(got_m, slots.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got_v, slots.var(0), rtol=1e-4)
    rest = [i for i in range(drone_sim.OBS_SIZE) if not any(o <= i < o + c * s for o, c, s in blocks)]
    np.testing.assert_allclose(model.norm.mean.numpy()[rest], x.mean(0)[rest], rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        for p in model.parameters():   # weights away from the tiny output init, so that differences show
            p.add_(torch.randn_like(p) * 0.3)
    obs = torch.tensor(x[:8], dtype=torch.float32)
    a, v, _ = model(obs)
    swapped = obs.clone()
    swapped[:, off:off + stride], swapped[:, off + 2 * stride:off + 3 * stride] = \
        obs[:, off + 2 * stride:off + 3 * stride], obs[:, off:off + stride]
    a2, v2, _ = model(swapped)
    torch.testing.assert_close(a2, a)
    torch.testing.assert_close(v2, v)
    moved = obs.clone()
    moved[:, off:off + stride] += 2.0     # but what an obstacle slot holds does reach the action
    assert (model(moved)[0] - a).abs().max() > 1e-3
    # it trains, is saved with its blocks and comes back the same from the checkpoint
    out = tmp_path / "ent"
    train(make_config(cli_values={**TINY_HOVER, "entities": True}), out)
    loaded, _ = load_policy(out / "model.pt")
    assert loaded.config["entities"] == [list(b) for b in blocks]
    torch.testing.assert_close(loaded(obs)[0], loaded(swapped)[0])
    with pytest.raises(ConfigError, match="entities: only for the drone env's MLP"):
        make_config(cli_values={"entities": True, "lstm": True})


@pytest.mark.parametrize("argv,message", [
    (["--tasks", "dance"], "unknown task 'dance'"),
    (["--action-mode", "pwm"], "action_mode must be one of rpm, ctbr"),
    (["--drone", "no/such/params.json"], "no such file"),
    (["--total-steps", "1.5"], "expected a whole number"),
    (["--resume"], "--resume needs --out"),
])
def test_cli_argument_errors_are_clear(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        train_main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_config_file_errors_and_precedence(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[train]\nlearning_rate = 0.01\nhorizon = 16\n")
    cfg = make_config(load_toml(p), {"horizon": 8})
    assert cfg.learning_rate == 0.01 and cfg.horizon == 8
    p.write_text("[train]\nlerning_rate = 0.01\n")
    with pytest.raises(ConfigError, match="unknown setting 'lerning_rate'"):
        load_toml(p)
    p.write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(p)


def test_kept_checkpoints_are_the_run_part_way(tmp_path):
    """--keep-checkpoint-every: a checkpoint per 256 agent-steps stays beside latest.pt, each with the weights of
    its own point of the run, so a run can be evaluated part-way after it ends."""
    out = tmp_path / "run"
    train(make_config(cli_values={**TINY_HOVER, "total_steps": 1024, "keep_checkpoint_every": 256}), out)
    kept = sorted((out / "checkpoints").glob("step_*.pt"))
    # 128 agent-steps per iteration: 256, 512 and 768 are kept; the end of the run is model.pt
    assert [p.name for p in kept] == [f"step_{n:012d}.pt" for n in (256, 512, 768)]
    models = [load_policy(p) for p in kept + [out / "model.pt"]]
    assert [meta["global_step"] for _, meta in models] == [256, 512, 768, 1024]
    first, last = models[0][0], models[-1][0]
    assert any(not torch.equal(a, b) for a, b in zip(first.parameters(), last.parameters()))  # trained on between
    # off by default: only the latest
    out2 = tmp_path / "run2"
    train(make_config(cli_values=TINY_HOVER), out2)
    assert [p.name for p in (out2 / "checkpoints").iterdir()] == ["latest.pt"]
    with pytest.raises(ConfigError, match="keep_checkpoint_every"):
        make_config(cli_values={**TINY_HOVER, "keep_checkpoint_every": -1})


def test_bad_checkpoint_file_is_a_clear_error(tmp_path):
    p = tmp_path / "x.pt"
    p.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_checkpoint(p)
    torch.save({"weights": 1}, p)
    with pytest.raises(CheckpointError, match="not a drone policy checkpoint"):
        load_checkpoint(p)


def test_train_writes_run_files_and_resumes(tmp_path):
    out = tmp_path / "run"
    s1 = train(make_config(cli_values=TINY_HOVER), out)
    assert s1["global_step"] == 512
    for name in ("config.toml", "metrics.jsonl", "metrics.csv", "curves.png", "model.pt", "summary.json",
                 "checkpoints/latest.pt"):
        assert (out / name).is_file(), name
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 512
    # resume to a larger budget: continues from the checkpoint, appends metrics
    s2 = train(make_config(load_toml(out / "config.toml"), {"total_steps": 1024}), out, resume=True)
    assert s2["global_step"] == 1024
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps[0] == 128 and steps[-1] == 1024 and steps == sorted(steps)
    model, meta = load_policy(out / "model.pt")
    assert meta["global_step"] == 1024 and meta["obs_version"] >= 1 and meta["action_mode"] == "ctbr"


def test_a_resume_refuses_another_model_and_names_each_difference(tmp_path):
    """A tanh network loads a ReLU network's weights without a shape error, and then flies another function:
    the resume must compare the whole model, not only the tensor shapes. (Hover trains a ReLU network.)"""
    out = tmp_path / "run"
    train(make_config(cli_values=TINY_HOVER), out)
    cfg = load_toml(out / "config.toml")
    with pytest.raises(ValueError, match=r"activation: checkpoint 'relu', this run 'tanh'") as err:
        train(make_config(cfg, {"total_steps": 1024, "activation": "tanh"}), out, resume=True)
    assert "hidden" not in str(err.value)
    with pytest.raises(ValueError, match=r"hidden: checkpoint 64, this run 32; layers: checkpoint 2, this run 3"):
        train(make_config(cfg, {"total_steps": 1024, "hidden": 32, "layers": 3}), out, resume=True)
    # the starting log-std only chooses the first weights: the resumed run keeps the learned one
    s = train(make_config(cfg, {"total_steps": 1024, "init_log_std": -1.0}), out, resume=True)
    assert s["global_step"] == 1024


def test_lstm_policy_trains_and_evaluates(tmp_path):
    out = tmp_path / "lstm"
    train(make_config(cli_values={**TINY_HOVER, "lstm": True}), out)
    model, _ = load_policy(out / "model.pt")
    assert model.is_lstm
    from policies.evaluate import TorchPolicy, evaluate_task

    m = evaluate_task(lambda n: TorchPolicy(model, n), "hover", dr="nominal", episodes=4, seed=1,
                      action_mode="ctbr", control_hz=50, physics_hz=500, num_envs=1, agents_per_env=4)
    assert m["episodes"] >= 4 and 0.0 <= m["score"] <= 1.0
    pol = TorchPolicy(model, 4)
    obs = np.zeros((4, drone_sim.OBS_SIZE), np.float32)
    a1 = pol(obs)
    a2 = pol(obs)  # the state moved on, so the same input may give another action
    assert a1.shape == (4, 4) and np.all(np.abs(a1) <= 1)
    pol.episode_ended(np.ones(4, bool))
    assert np.all(np.isfinite(a2))


def test_two_cpu_ranks_keep_identical_weights(tmp_path):
    out = tmp_path / "ddp"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "MASTER_", "LOCAL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533", "-m", "policies",
           "--out", str(out), *[f"--{k.replace('_', '-')}={v}" for k, v in TINY_HOVER.items()]]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["global_step"] == 512
    assert summary["rank_weight_spread"] == 0.0


def test_evaluation_counts_one_episode_per_drone_per_env_episode():
    """Falling drones crash and respawn many times; evaluation must still count each drone's first episode
    only, so the crash rate is the share of drones that crashed, not the share of episodes that ended."""
    from policies.evaluate import evaluate_task

    def fall(n):
        return lambda obs: np.tile(np.array([-1.0, 0.0, 0.0, 0.0], np.float32), (n, 1))

    m = evaluate_task(fall, "hover", dr="nominal", episodes=12, seed=3, action_mode="ctbr", control_hz=50,
                      physics_hz=500, num_envs=2, agents_per_env=4)
    assert m["episodes"] == 16  # two whole env-episodes of 8 drones
    assert m["crash_rate"] > 0.7 and m["score"] == 0.0


def test_the_final_figures_cover_at_least_one_episode_of_the_longest_task():
    """The run's closing table counts episodes that ended in its last stretch. A stretch shorter than an episode
    sees only the early endings, the crashes: a 99 %-success hover run once closed on "score 0, crash 1"."""
    from policies.train import final_window_start, make_env

    cfg = make_config({}, {"tasks": "hover"})       # horizon 8 steps at 50 Hz; hover episodes last 8 s
    env = make_env(cfg, 0)
    try:
        # 220 updates: 10 % is 22 updates = 3.5 s per agent; one hover episode is 400 steps = 50 updates
        assert final_window_start(cfg, env, 220) == 220 - 50
        assert final_window_start(cfg, env, 5000) == 5000 - 500   # long runs: the last 10 %
        assert final_window_start(cfg, env, 30) == 0              # shorter than an episode: the whole run
    finally:
        env.close()


def test_drone_eval_compares_policies_of_different_presets_on_the_same_drones():
    """A policy trained on `wide` is evaluated on its own preset by default and on `default` drones when asked,
    so it can be held against one trained on `default`."""
    from policies.evaluate import drone_sets

    meta = {"train_config": {"dr": "wide"}}
    assert drone_sets(meta, "randomized") == ["wide"]
    assert drone_sets(meta, "both") == ["nominal", "wide"]
    assert drone_sets(meta, "default") == ["default"]
    assert drone_sets({"train_config": {"dr": "nominal"}}, "randomized") == ["default"]


def test_training_fields_take_the_obstacle_count_asked_for():
    """--min-obstacles/--max-obstacles and --blocked-line-prob reach the simulator (a denser field and more blocked
    lines are curriculum levers; drone-eval keeps flying the defaults), and what the simulator cannot build is
    refused by name."""
    from policies.config import ConfigError
    from policies.train import make_env

    cfg = make_config({}, {"tasks": "obstacles", "num_envs": 6, "agents_per_env": 1, "min_obstacles": 30,
                           "max_obstacles": 32})
    env = make_env(cfg, 0)
    try:
        counts = {len(env.env_info(e)["course"]["obstacles"]) for e in range(6)}
        assert counts and counts <= {30, 31, 32}
    finally:
        env.close()
    # the config refuses what the simulator cannot build, with the simulator's own reason, before any env
    with pytest.raises(ConfigError, match=r"min_obstacles\.\.max_obstacles: obstacles: a count range lo <= hi"):
        make_config({}, {"tasks": "obstacles", "min_obstacles": 9, "max_obstacles": 4})
    with pytest.raises(ConfigError, match=r"within 0\.\.64, got 8, 65"):
        make_config({}, {"tasks": "obstacles", "max_obstacles": 65})
    # each one-number curriculum or shaping setting: its value reaches the env, and one out of range is refused
    for task, name, value, bad, message in (
            ("obstacles", "blocked_line_prob", 0.75, 1.5, r"blocked_line_prob must be in \[0, 1\], got 1\.5"),
            ("race", "race_tight_room", 0.6, -0.5, r"race_tight_room must be >= 0, got -0\.5")):
        env = make_env(make_config({}, {"tasks": task, "num_envs": 1, "agents_per_env": 1, name: value}), 0)
        try:
            assert env.config[name] == value
        finally:
            env.close()
        with pytest.raises(ConfigError, match=message):
            make_config({}, {"tasks": task, name: bad})


def test_a_crash_penalty_above_one_reaches_the_update(tmp_path):
    """The trainer clamps rewards, and that clamp once made --crash-penalty a no-op: with a penalty of 1000 the
    first update's value loss must show the crashes of an untrained policy at full weight."""
    assert lowest_reward(make_config(cli_values={"crash_penalty": 5.0})) == -5.0
    assert lowest_reward(make_config(cli_values={})) == -1.0
    value_loss = {}
    for penalty in (1.0, 1000.0):
        seen = []
        cfg = make_config(cli_values={**TINY_HOVER, "tasks": "obstacles", "horizon": 128, "minibatch_size": 512,
                                      "epochs": 1, "total_steps": 4096, "crash_penalty": penalty})
        train(cfg, tmp_path / str(penalty), stop=lambda info: seen.append(info["losses"]["value_loss"]) or True)
        value_loss[penalty] = seen[0]
    assert value_loss[1000.0] > 1000.0 * value_loss[1.0]


def test_the_speed_limit_can_be_kept_to_some_tasks():
    """--speed-limit-tasks obstacles limits the obstacle crossing alone; by default every task the simulator
    limits is limited (race never)."""
    from policies.train import make_env

    def limits(**values):
        env = make_env(make_config(cli_values={"tasks": "all", "num_envs": 1, "agents_per_env": 1, "speed_limit": 2.5,
                                               **values}), seed=0)
        return dict(zip(drone_sim.TASKS, env.config["speed_limit"]))

    assert limits() == {"hover": 2.5, "goto": 2.5, "follow": 2.5, "race": 0.0, "swarm": 2.5, "obstacles": 2.5}
    assert limits(speed_limit_tasks="obstacles") == {t: 2.5 if t == "obstacles" else 0.0 for t in drone_sim.TASKS}
    with pytest.raises(ConfigError, match="speed_limit_tasks"):
        make_config(cli_values={"speed_limit_tasks": "obstacle"})
