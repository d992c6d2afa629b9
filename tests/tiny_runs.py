"""The smallest training runs the trainer's tests make: a few hundred agent-steps on one thread.

One definition, so that a change of a default that makes these runs slow or ill-formed (a minibatch larger than
the rollout, a checkpoint interval beyond the budget) is fixed once for every test that trains."""

TINY_HOVER = dict(tasks="hover", num_envs=2, agents_per_env=8, horizon=8, minibatch_size=64, epochs=2,
                  total_steps=512, log_every=0.0, checkpoint_every=256, threads=1)
# two tasks, so that anything chosen per task (a value head, the privileged wind of race) is exercised
TINY_TWO_TASKS = dict(TINY_HOVER, tasks="hover,race")
