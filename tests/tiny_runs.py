"""The smallest training runs the trainer's tests make: a few hundred agent-steps on one thread.

One definition, so that a change of a default that makes these runs slow or ill-formed (a minibatch larger than
the rollout, a checkpoint interval beyond the budget) is fixed once for every test that trains."""

TINY_HOVER = dict(tasks="hover", num_envs=2, agents_per_env=8, horizon=8, minibatch_size=64, epochs=2,
                  total_steps=512, log_every=0.0, checkpoint_every=256, threads=1)
# two tasks, so that anything chosen per task (a value head, the privileged wind of race) is exercised
TINY_TWO_TASKS = dict(TINY_HOVER, tasks="hover,race")


def train_and_export(tmp_path, **options):
    """A tiny two-task run with the model options given, trained into tmp_path/run: its directory, its model and
    its ONNX export. Every model option's test checks that the file flies like the checkpoint and that a resume
    keeps the option; this is the part they share."""
    from policies.checkpoint import load_policy
    from policies.config import make_config
    from policies.export import export_onnx
    from policies.onnx_policy import OnnxPolicy
    from policies.train import train

    out = tmp_path / "run"
    train(make_config(cli_values={**TINY_TWO_TASKS, **options}), out)
    model, _ = load_policy(out / "model.pt")
    export_onnx(out / "model.pt", tmp_path / "p.onnx")
    return out, model, OnnxPolicy(tmp_path / "p.onnx")
