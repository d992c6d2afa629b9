"""drone-sweep: hyperparameter search over drone-train runs on Optuna (see cli.py for the command).

Modules: space (what varies and how; the default PPO/model space and space files), objective (one trial: a
run with sampled settings, evaluated like drone-eval, pruned on intermediate scores), storage (SQLite, journal
or a database server shared by several machines), report (best trials, plots, the best settings as a config).
"""
