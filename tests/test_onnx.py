"""ONNX export and the onnxruntime policy: parity with torch, metadata, drone-eval --onnx, bad files."""
import json

import numpy as np
import onnx
import pytest
import torch

import drone_sim
from policies.checkpoint import load_policy, save_checkpoint
from policies.cli import eval_main
from policies.config import make_config
from policies.evaluate import TorchPolicy, evaluate_task
from policies.export import _to_onnx_bytes, export_onnx
from policies.export import main as export_main
from policies.model import ActorCritic
from policies.onnx_policy import METADATA_KEYS, OnnxPolicy, OnnxPolicyError
from policies.train import train
from tiny_runs import TINY_HOVER

# tanh: the hover-only defaults use ReLU (TASK_DEFAULTS), whose unbounded hidden layer makes nearly every action of
# the sharpened head saturate, and the parity checks below need both the clamp and the linear range exercised
TINY = dict(TINY_HOVER, activation="tanh")
TOL = 1e-5


def _sharpen(path) -> None:
    """Give a trained checkpoint normalizer statistics far from (0, 1) and an action head that saturates:
    a tiny run leaves actions of ~0.01, where a 1e-5 parity bound would say little, and a forgotten
    normalization would go unnoticed."""
    data = torch.load(path, weights_only=False)
    st = data["model_state"]
    g = torch.Generator().manual_seed(7)
    n = st["norm.mean"].shape[0]
    st["norm.mean"] = st["norm.mean"] + torch.randn(n, generator=g)
    st["norm.var"] = torch.rand(n, generator=g) * 4.0 + 0.05
    last = max((k for k in st if k.startswith("actor.") and k.endswith(".weight")), key=lambda k: int(k.split(".")[1]))
    st[last] = st[last] * 150.0
    torch.save(data, path)


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    """Tiny trained MLP, LSTM and entity-pooling MLP policies (sharpened) and their ONNX exports."""
    root = tmp_path_factory.mktemp("onnx")
    out = {}
    for kind in ("mlp", "lstm", "entities"):
        train(make_config(cli_values=dict(TINY, lstm=kind == "lstm", entities=kind == "entities")), root / kind)
        ckpt = root / kind / "model.pt"
        _sharpen(ckpt)
        onnx_path = root / f"{kind}.onnx"
        export_onnx(ckpt, onnx_path)
        model, meta = load_policy(ckpt)
        out[kind] = {"ckpt": ckpt, "onnx": onnx_path, "model": model, "meta": meta}
    out["root"] = root
    return out


def _random_obs(model: ActorCritic, n: int, seed: int) -> np.ndarray:
    """Observations spread around the normalizer's statistics, 2% of them far beyond its clip."""
    g = np.random.default_rng(seed)
    std = torch.sqrt(model.norm.var + model.norm.eps).numpy()
    z = g.normal(0.0, 2.0, (n, model.obs_size))
    z[g.random(n) < 0.02] *= 20.0
    return (model.norm.mean.numpy() + std * z).astype(np.float32)


@torch.inference_mode()
def _torch_actions(model, obs, state=None, done=None):
    out, _, state = model(torch.from_numpy(obs), state, done)
    return model.deterministic(out).numpy(), state


@pytest.mark.parametrize("kind", ["mlp", "entities"])
def test_mlp_parity_on_random_and_simulator_observations(policies, kind):
    p = policies[kind]
    model, policy = p["model"], OnnxPolicy(p["onnx"])
    obs = _random_obs(model, 10_000, seed=1)
    ref, _ = _torch_actions(model, obs)
    got = policy(obs)
    raw = policy.session.run(["action"], {"obs": obs})[0]
    assert got.shape == (10_000, 4) and got.dtype == np.float32
    assert np.max(np.abs(got - ref)) < TOL and np.max(np.abs(raw - ref)) < TOL
    saturated = np.mean(np.abs(ref) == 1.0)
    assert 0.05 < saturated < 0.95, saturated  # both the clamp and the linear range are exercised
    # the normalization is inside the graph: without it the actions would be far off
    with torch.inference_mode():
        unnormalized = torch.clamp(model.actor(torch.from_numpy(obs)), -1, 1).numpy()
    assert np.max(np.abs(unnormalized - got)) > 0.1

    # 1000 observations from the simulator (all tasks), the env driven by the torch policy
    env = drone_sim.make(tasks="all", num_envs=12, agents_per_env=4, seed=3, action_mode="ctbr")
    obs_sim, _ = env.reset(3)
    recorded, worst = 0, 0.0
    while recorded < 1000:
        ref, _ = _torch_actions(model, obs_sim)
        worst = max(worst, float(np.max(np.abs(policy(obs_sim) - ref))))
        recorded += len(obs_sim)
        obs_sim, *_ = env.step(ref)
    env.close()
    assert worst < TOL


def test_single_observation_call_matches_the_batch(policies):
    p = policies["mlp"]
    policy = OnnxPolicy(p["onnx"], action_mode="ctbr", control_hz=50.0)
    obs = _random_obs(p["model"], 3, seed=2)
    one = policy(obs[1])
    assert one.shape == (4,)
    np.testing.assert_array_equal(one, policy(obs)[1])
    with pytest.raises(ValueError, match=rf"shape \({drone_sim.OBS_SIZE},\) or \(batch, {drone_sim.OBS_SIZE}\)"):
        policy(obs[:, :40])
    # a drone_sim.view actor
    assert policy.name.startswith("onnx ") and policy.state is None
    policy.reset(None)
    policy.reset(np.ones(3, bool))


def test_lstm_parity_random_states_and_a_200_step_sequence_with_resets(policies):
    p = policies["lstm"]
    model, policy = p["model"], OnnxPolicy(p["onnx"])
    sess, H = policy.session, model.hidden
    g = np.random.default_rng(4)
    obs = _random_obs(model, 10_000, seed=5)
    h = g.uniform(-1, 1, (10_000, H)).astype(np.float32)
    c = g.uniform(-3, 3, (10_000, H)).astype(np.float32)
    a, h2, c2 = sess.run(["action", "h_out", "c_out"], {"obs": obs, "h": h, "c": c})
    ref, (th, tc) = _torch_actions(model, obs, (torch.from_numpy(h)[None], torch.from_numpy(c)[None]))
    assert max(np.max(np.abs(a - ref)), np.max(np.abs(h2 - th[0].numpy())), np.max(np.abs(c2 - tc[0].numpy()))) < TOL
    assert 0.05 < np.mean(np.abs(ref) == 1.0) < 0.95

    # 5 drones x 200 steps from the simulator; the torch model resets its state through its `done` input,
    # the raw session through zeroed h, c rows, OnnxPolicy through reset(mask). Drones 0 and 2 are also
    # reset by hand at step 100 (besides the env's own episode ends).
    env = drone_sim.make(tasks="all", num_envs=5, agents_per_env=1, seed=6)
    o, _ = env.reset(6)
    n = env.num_agents
    state, starts = model.initial_state(n), torch.ones(n)
    h, c = np.zeros((n, H), np.float32), np.zeros((n, H), np.float32)
    h_keep, c_keep = h.copy(), c.copy()  # a raw session that skips the hand reset
    worst, ends, skipped_diff = 0.0, 0, 0.0
    for t in range(200):
        if t == 100:
            forced = np.array([True, False, True, False, False])
            starts = torch.maximum(starts, torch.from_numpy(forced.astype(np.float32)))
            policy.reset(forced)
        reset = starts.numpy().astype(bool)
        h[reset] = c[reset] = 0.0
        ref, state = _torch_actions(model, o, state, starts)
        a, h, c = sess.run(["action", "h_out", "c_out"], {"obs": o, "h": h, "c": c})
        worst = max(worst, float(np.max(np.abs(a - ref))), float(np.max(np.abs(h - state[0][0].numpy()))),
                    float(np.max(np.abs(c - state[1][0].numpy()))), float(np.max(np.abs(policy(o) - ref))))
        if t == 100:
            env_reset = starts.numpy().astype(bool) & ~forced
            h_keep[env_reset] = c_keep[env_reset] = 0.0
            a_keep, _, _ = sess.run(None, {"obs": o, "h": h_keep, "c": c_keep})
            skipped_diff = float(np.max(np.abs(a_keep[[0, 2]] - ref[[0, 2]])))
        o, _, term, trunc, _ = env.step(ref)
        done = term | trunc
        ends += int(done.sum())
        policy.episode_ended(done)
        starts = torch.from_numpy(done.astype(np.float32))
        h_keep, c_keep = h.copy(), c.copy()
    env.close()
    assert worst < TOL
    assert skipped_diff > 1e-3  # the hand reset mattered, so the comparison above tested it
    assert ends > 0  # the env's own episode ends were exercised too

    with pytest.raises(ValueError, match="reset"):
        policy(o[:3])  # a different batch size needs reset() first
    policy.reset(None)
    assert policy(o[0]).shape == (4,) and policy.state[0].shape == (1, H)


def test_metadata_is_complete_and_correct(policies):
    for kind in ("mlp", "lstm"):
        p = policies[kind]
        proto = onnx.load(str(p["onnx"]))
        onnx.checker.check_model(proto, full_check=True)
        meta = {m.key: m.value for m in proto.metadata_props}
        assert set(meta) == set(METADATA_KEYS)
        ck, model = p["meta"], p["model"]
        assert meta["format"] == "drone-policy-onnx/1" and meta["env"] == "drone"
        assert int(meta["obs_layout_version"]) == drone_sim.OBS_VERSION
        assert int(meta["obs_size"]) == drone_sim.OBS_SIZE == 84
        assert meta["action_mode"] == "ctbr" and meta["action_output"] == "clamped_mean"
        assert float(meta["control_hz"]) == 50.0 and float(meta["physics_hz"]) == 500.0
        assert json.loads(meta["tasks"]) == {"hover": 1.0}
        assert json.loads(meta["domain_randomization"]) == {
            "preset": "default", "config": json.loads(json.dumps(ck["env_config"]["dr"]))}
        drone = json.loads(meta["drone_params"])
        assert drone == {"source": "", "params": json.loads(json.dumps(drone_sim.NOMINAL_DRONE))}
        assert json.loads(meta["course"]) is None
        assert int(meta["training_steps"]) == ck["global_step"] == 512
        assert meta["project_version"] == drone_sim.__version__
        assert meta["recurrent"] == ("true" if kind == "lstm" else "false")
        assert int(meta["state_size"]) == (64 if kind == "lstm" else 0)
        norm = json.loads(meta["obs_normalization"])
        np.testing.assert_allclose(norm["mean"], model.norm.mean.numpy(), rtol=1e-6)
        np.testing.assert_allclose(norm["std"], np.sqrt(model.norm.var.numpy() + 1e-8), rtol=1e-6)
        scaling = json.loads(meta["action_scaling"])
        d = drone_sim.NOMINAL_DRONE
        tmax = 4 * d["k_thrust"] * d["omega_max"] ** 2
        assert [x["name"] for x in scaling["dims"]] == ["collective_thrust", "roll_rate", "pitch_rate", "yaw_rate"]
        assert scaling["dims"][0]["high"] == pytest.approx(tmax) and scaling["dims"][0]["low"] == 0.0
        assert [x["high"] for x in scaling["dims"][1:]] == d["max_rate"]
        assert scaling["hover_action"][0] == pytest.approx(2 * d["mass"] * 9.81 / tmax - 1)
        # only the actor: no critic, no log std; the batch dimension is dynamic
        names = " ".join(i.name for i in proto.graph.initializer)
        assert "critic" not in names and "log_std" not in names
        obs_in = proto.graph.input[0].type.tensor_type.shape.dim
        assert obs_in[0].dim_param and obs_in[1].dim_value == drone_sim.OBS_SIZE
        assert [i.name for i in proto.graph.input] == (["obs", "h", "c"] if kind == "lstm" else ["obs"])


def test_rpm_policy_scaling_and_action_mode_checks(tmp_path):
    cfg = make_config(cli_values=dict(TINY, action_mode="rpm"))
    env = drone_sim.make(action_mode="rpm")
    model = ActorCritic(drone_sim.OBS_SIZE, 4)
    save_checkpoint(tmp_path / "rpm.pt", model, None, cfg, env.config, 1000, 1, 1.0)
    meta = export_onnx(tmp_path / "rpm.pt", tmp_path / "rpm.onnx")
    scaling = json.loads(meta["action_scaling"])
    d = drone_sim.NOMINAL_DRONE
    assert meta["action_mode"] == "rpm" and [x["high"] for x in scaling["dims"]] == [d["omega_max"]] * 4
    hover_w = (d["mass"] * 9.81 / (4 * d["k_thrust"])) ** 0.5
    assert scaling["hover_action"] == pytest.approx([2 * hover_w / d["omega_max"] - 1] * 4)
    OnnxPolicy(tmp_path / "rpm.onnx", action_mode="rpm")
    with pytest.raises(OnnxPolicyError, match="commands 'rpm' actions, expected action mode 'ctbr'"):
        OnnxPolicy(tmp_path / "rpm.onnx", action_mode="ctbr")


def _rewrite(src, dst, metadata=None, drop=(), proto=None):
    """Save an ONNX model (src's, or proto) with src's metadata edited."""
    base = onnx.load(str(src))
    meta = {m.key: m.value for m in base.metadata_props}
    meta.update(metadata or {})
    for k in drop:
        meta.pop(k, None)
    out = proto if proto is not None else base
    del out.metadata_props[:]
    for k, v in meta.items():
        out.metadata_props.add(key=k, value=v)
    onnx.save(out, str(dst))
    return dst


def test_bad_files_give_clear_errors(policies, tmp_path):
    good = policies["mlp"]["onnx"]
    text = tmp_path / "notes.onnx"
    text.write_text("this is a note, not a model\n")
    with pytest.raises(OnnxPolicyError, match="not an ONNX model"):
        OnnxPolicy(text)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(OnnxPolicyError, match="truncated"):
        OnnxPolicy(cut)
    with pytest.raises(OnnxPolicyError, match="no such file"):
        OnnxPolicy(tmp_path / "missing.onnx")

    # another input size: with our metadata copied onto it, or with metadata that admits the size
    other = onnx.load_from_string(_to_onnx_bytes(ActorCritic(30, 4), 17))
    copied = _rewrite(good, tmp_path / "copied.onnx", proto=other)
    with pytest.raises(OnnxPolicyError, match=r"graph input 'obs' has shape \['batch', 30\], its metadata says "
                                              rf"\(batch, {drone_sim.OBS_SIZE}\)"):
        OnnxPolicy(copied)
    honest = _rewrite(good, tmp_path / "honest.onnx", {"obs_size": "30"}, proto=onnx.load_from_string(
        _to_onnx_bytes(ActorCritic(30, 4), 17)))
    with pytest.raises(OnnxPolicyError, match=f"takes 30 observation values, expected {drone_sim.OBS_SIZE}"):
        OnnxPolicy(honest)

    # an ONNX model that is not ours, and one missing a key
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(_to_onnx_bytes(ActorCritic(drone_sim.OBS_SIZE, 4), 17))
    with pytest.raises(OnnxPolicyError, match="without drone-policy metadata"):
        OnnxPolicy(plain)
    with pytest.raises(OnnxPolicyError, match="metadata is missing action_mode"):
        OnnxPolicy(_rewrite(good, tmp_path / "partial.onnx", drop=["action_mode"]))
    with pytest.raises(OnnxPolicyError, match="'control_hz' should be float"):
        OnnxPolicy(_rewrite(good, tmp_path / "garbled.onnx", {"control_hz": "fast"}))

    # what the caller expects
    with pytest.raises(OnnxPolicyError, match="expected action mode 'rpm'"):
        OnnxPolicy(good, action_mode="rpm")
    with pytest.raises(OnnxPolicyError, match=f"observation layout version {drone_sim.OBS_VERSION}, expected version 99"):
        OnnxPolicy(good, obs_layout_version=99)
    old = _rewrite(good, tmp_path / "old.onnx", {"obs_layout_version": str(drone_sim.OBS_VERSION - 1)})
    with pytest.raises(OnnxPolicyError, match="observation layout version"):
        OnnxPolicy(old)  # by default, this simulator build's layout is expected
    with pytest.raises(OnnxPolicyError, match="control rate of 50 Hz, expected 100 Hz"):
        OnnxPolicy(good, control_hz=100.0)


def test_command_lines_refuse_bad_inputs(policies, tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(SystemExit) as e:
        export_main([str(text), "-o", str(tmp_path / "x.onnx")])
    assert e.value.code == 2 and "not a readable torch checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(SystemExit) as e:
        export_main([str(policies["mlp"]["ckpt"]), "-o", str(tmp_path / "x.pt")])
    assert e.value.code == 2 and "should end in .onnx" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        eval_main(["--onnx", str(text)])
    assert e.value.code == 2 and "not an ONNX model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        eval_main([str(policies["mlp"]["ckpt"]), "--onnx", str(policies["mlp"]["onnx"])])
    assert e.value.code == 2 and "either a CHECKPOINT or --onnx" in capsys.readouterr().err
    assert export_main([str(policies["lstm"]["ckpt"]), "-o", str(tmp_path / "sub" / "p.onnx")]) == 0
    assert "LSTM (64 state)" in capsys.readouterr().out and (tmp_path / "sub" / "p.onnx").is_file()


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("│")]


def _same_figures(a: list[str], b: list[str]) -> None:
    """Two drone-eval tables of one policy, run by torch and by onnxruntime. The sharpened policy's actions differ
    by float rounding (up to TOL), which can flip whether a borderline episode crashes, and which ones do differs
    between CPUs: task, drone set and episode count must match exactly, the detail column (a time or a distance)
    within a tenth, every other figure (rates) within two episodes' share."""
    import re

    def figures(cell: str) -> list[float]:
        return [float(x) for x in re.findall(r"\d*\.?\d+", cell)]

    assert len(a) == len(b)
    for row_a, row_b in zip(a, b):
        ca, cb = [c.strip() for c in row_a.split("│")][1:-1], [c.strip() for c in row_b.split("│")][1:-1]
        assert ca[:3] == cb[:3], (row_a, row_b)                     # task, drones, episodes
        share = 2.0 / int(ca[2]) + 1e-3
        for k, (x, y) in enumerate(zip(ca[3:], cb[3:]), start=3):
            assert re.sub(r"[\d.]+", "#", x) == re.sub(r"[\d.]+", "#", y), (row_a, row_b)   # same labels
            for u, v in zip(figures(x), figures(y)):
                assert abs(u - v) <= (0.1 * abs(u) + 0.02 if k == 4 else share), (row_a, row_b)


def test_drone_eval_onnx_gives_the_checkpoints_metrics(policies, capsys):
    p = policies["mlp"]
    assert eval_main([str(p["ckpt"]), "--episodes", "16", "--seed", "3"]) == 0
    from_ckpt = _table_rows(capsys.readouterr().out)
    assert eval_main(["--onnx", str(p["onnx"]), "--episodes", "16", "--seed", "3"]) == 0
    from_onnx = _table_rows(capsys.readouterr().out)
    assert len(from_ckpt) == 2      # nominal and randomized drones
    _same_figures(from_ckpt, from_onnx)
    # an .onnx file named where a checkpoint goes is evaluated as --onnx, not refused as a broken checkpoint
    assert eval_main([str(p["onnx"]), "--episodes", "16", "--seed", "3"]) == 0
    assert _table_rows(capsys.readouterr().out) == from_onnx
    # the raw figures, not only the rounded table, for the LSTM (state carried across episode ends)
    q = policies["lstm"]
    kw = dict(dr="default", episodes=16, seed=4, action_mode="ctbr", control_hz=50.0, physics_hz=500.0)
    policy = OnnxPolicy(q["onnx"])
    ref = evaluate_task(lambda n: TorchPolicy(q["model"], n), "hover", **kw)
    got = evaluate_task(lambda n: policy.clone(), "hover", **kw)
    assert set(ref) == set(got)
    for k in ref:
        assert got[k] == pytest.approx(ref[k], rel=1e-5, abs=1e-6, nan_ok=True), k


def test_discrete_policy_exports_its_argmax(tmp_path):
    """Ocean regression games have discrete actions: the file outputs the chosen action's index."""
    cfg = make_config(cli_values={"env": "cartpole", "total_steps": 1})
    model = ActorCritic(4, 2, discrete=True, lstm=True)
    with torch.no_grad():
        model.actor[-1].weight.mul_(100.0)
    env_config = {"env": "cartpole", "agents_per_env": 1, "obs_size": 4, "num_actions": 2}
    save_checkpoint(tmp_path / "cp.pt", model, None, cfg, env_config, 64, 1, 1.0)
    meta = export_onnx(tmp_path / "cp.pt", tmp_path / "cp.onnx")
    assert (meta["env"], meta["action_mode"], meta["action_output"]) == ("cartpole", "discrete", "argmax")
    with pytest.raises(OnnxPolicyError, match="a policy for env 'cartpole', expected 'drone'"):
        OnnxPolicy(tmp_path / "cp.onnx")
    policy = OnnxPolicy(tmp_path / "cp.onnx", env="cartpole", obs_layout_version=0, obs_size=4)
    obs = np.random.default_rng(0).normal(0, 1, (500, 4)).astype(np.float32)
    ref, _ = _torch_actions(model, obs, model.initial_state(500))
    got = policy(obs)
    assert got.dtype == np.int64 and set(np.unique(ref)) == {0, 1}
    np.testing.assert_array_equal(got, ref)


def test_onnx_policy_flies_as_a_viewer_actor_like_the_torch_actor(policies):
    """drone_sim.view.run (headless here) drives actors through name, __call__ and reset(mask)."""
    from drone_sim.view import run

    from policies.evaluate import PolicyActor

    q = policies["lstm"]
    states = []
    for actor in (PolicyActor(q["model"], 8), OnnxPolicy(q["onnx"], name="lstm onnx")):
        env = drone_sim.make(tasks="hover", num_envs=2, agents_per_env=4, seed=9)
        assert run(env, actor, steps=60) == 60
        states.append(env.states().copy())
        env.close()
    # 60 closed-loop steps amplify float round-off (onnxruntime and torch sum in different orders, and differently
    # again on another CPU: a clean-clone run on an AVX-512 machine saw one motor 0.72 rad/s apart at 1945 rad/s,
    # with the body state within 1e-3). The state must agree to 1e-3 (m, m/s, rad/s); motor speeds, up to about
    # 4600 rad/s on these randomized drones, to 2 rad/s (under 1e-3 of their range)
    np.testing.assert_allclose(states[1][:, :13], states[0][:, :13], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(states[1][:, 13:], states[0][:, 13:], rtol=1e-4, atol=2.0)


def test_drone_eval_json_is_the_table_as_data(policies, capsys, tmp_path):
    """drone-eval --json: every row of the printed table, with every metric, for scripts (and drone-sweep)."""
    import json

    p = policies["mlp"]
    out = tmp_path / "eval.json"
    assert eval_main([str(p["ckpt"]), "--episodes", "16", "--seed", "3", "--json", str(out)]) == 0
    table = _table_rows(capsys.readouterr().out)
    doc = json.loads(out.read_text())
    assert doc["format"] == "drone-eval/1" and doc["seed"] == 3 and len(doc["rows"]) == len(table) == 2
    for row, line in zip(doc["rows"], table):
        cells = [c.strip() for c in line.strip("│").split("│")]
        assert cells[0] == row["task"] == "hover" and cells[1] == row["drones"]
        assert cells[3] == f"{row['score_name']} {row['score']:.3f}"
        assert cells[5] == f"{row['crash_rate']:.3f}" and row["episodes"] >= 16
