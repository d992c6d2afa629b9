"""`drone-sweep`: search PPO and model settings with Optuna, each trial an ordinary drone-train run.

    drone-sweep --name hover --tasks hover --trials 30 --budget-seconds 20           # SQLite beside the trials
    drone-sweep --name hover --storage postgresql://sweep@db-host/sweeps ...          # same command on each machine
    drone-sweep --name mix --tasks race,swarm --objective score-time --budget-steps 20e6 --space my_space.toml
    drone-sweep --name hover --trials 0 --export-best best.toml                       # report only; then:
    drone-train --config best.toml

Trials live in runs/sweeps/NAME/trials/NNNN (config.toml, metrics, checkpoints, model.pt: drone-eval, drone-export
and drone-train --resume work on them); the study in runs/sweeps/NAME/study.db unless --storage says otherwise.
--trials is the number of finished trials the study should have: run the same command again, or on several
machines at once, and the workers share the work until it is reached. Plots go to runs/sweeps/NAME/plots.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from drone_sim.signals import StopRequest

from ..config import ConfigError, TrainConfig, load_toml, make_config
from .space import SpaceError, default_space, load_space


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drone-sweep", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--name", required=True, help="study name (and folder under --out)")
    p.add_argument("--out", default="runs/sweeps", help="where sweeps keep their trials (default runs/sweeps)")
    p.add_argument("--storage", metavar="URL", help="sqlite:///PATH, journal:PATH or a database server URL "
                                                    "(default: OUT/NAME/study.db)")
    p.add_argument("--trials", type=int, default=20, help="finished trials the study should reach (default 20)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--budget-steps", type=float, metavar="N", help="agent-steps per trial")
    budget.add_argument("--budget-seconds", type=float, metavar="S", help="training seconds per trial "
                                                                          "(evaluations excluded)")
    p.add_argument("--objective", choices=("score", "score-time"), default="score",
                   help="score: the best score reached within the budget; score-time: score and training seconds "
                        "together (a Pareto front)")
    p.add_argument("--space", metavar="FILE.toml", help="search space (default: the built-in PPO and model space; "
                                                        "see policies/sweep/space.py)")
    p.add_argument("--config", metavar="FILE.toml", help="base drone-train settings the trials start from")
    p.add_argument("--env", help="drone (default) or an ocean regression env (target, cartpole, ...)")
    p.add_argument("--tasks", help="drone tasks, as drone-train --tasks")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a base drone-train setting")
    p.add_argument("--eval-episodes", type=int, default=256, help="episodes of the final evaluation (default 256)")
    p.add_argument("--eval-seed", type=int, default=777_777, help="seed of the evaluations (unseen in training)")
    p.add_argument("--evals", type=int, default=3,
                   help="intermediate evaluations per trial (default 3); the pruner judges from the second on")
    p.add_argument("--no-prune", action="store_true", help="run every trial to its budget")
    p.add_argument("--seed", type=int, help="sampler seed (default: random, so that workers differ)")
    p.add_argument("--heartbeat", type=int, default=10, help="seconds between a running trial's heartbeats; a trial "
                                                             "silent for 3 of them is failed and queued again")
    p.add_argument("--export-best", metavar="FILE.toml", help="write the best trial's settings as a drone-train "
                                                               "config file")
    return p


def base_config(args: argparse.Namespace) -> TrainConfig:
    cli: dict = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        cli[key.strip()] = value.strip()
    if args.env:
        cli["env"] = args.env
    if args.tasks:
        cli["tasks"] = args.tasks
    cfg = make_config(load_toml(args.config) if args.config else {}, cli)
    if cfg.env == "drone":
        import drone_sim

        try:
            drone_sim.parse_tasks(cfg.tasks)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        base = base_config(args)
        space = load_space(args.space) if args.space else default_space(base.env)
    except (ConfigError, SpaceError) as exc:
        parser.error(str(exc))
    if args.trials < 0 or args.evals < 0 or args.eval_episodes < 1 or args.heartbeat < 1:
        parser.error("--trials and --evals must be >= 0, --eval-episodes and --heartbeat >= 1")
    if args.trials > 0 and args.budget_steps is None and args.budget_seconds is None:
        parser.error("give a budget per trial: --budget-steps N or --budget-seconds S")

    import warnings

    import optuna
    from rich.console import Console

    # fail_stale_trials and the matplotlib plots are marked experimental; their use here is deliberate
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    from .objective import SurplusTrial, SweepSettings, make_pruner, run_trial
    from .report import best_trial, export_best, summary_table, write_plots
    from .storage import open_storage

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    sweep_dir = Path(args.out) / args.name
    try:
        storage = open_storage(args.storage, sweep_dir, args.heartbeat)
        settings = None if args.trials == 0 else SweepSettings(
            base, space, sweep_dir, budget_steps=int(args.budget_steps) if args.budget_steps is not None else None,
            budget_seconds=args.budget_seconds, eval_episodes=args.eval_episodes, eval_seed=args.eval_seed,
            evals=args.evals, multi=args.objective == "score-time", slots=args.trials)
    except ValueError as exc:
        parser.error(str(exc))
    multi = args.objective == "score-time"
    optuna.logging.set_verbosity(optuna.logging.ERROR)   # each trial's outcome is printed below, with its reason
    pruner = make_pruner(not (multi or args.no_prune))
    try:
        study = optuna.create_study(study_name=args.name, storage=storage, load_if_exists=True,
                                    directions=["maximize", "minimize"] if multi else ["maximize"],
                                    sampler=optuna.samplers.TPESampler(seed=args.seed), pruner=pruner)
    except ValueError as exc:  # an existing study with other directions
        parser.error(f"study {args.name}: {exc}")
    study.set_user_attr("base_config", base.to_dict())
    console.print(f"drone-sweep {args.name}: {len(space)} settings searched, "
                  f"{'score and training time' if multi else 'best score within the budget'}, storage "
                  f"{'default ' + str(sweep_dir / 'study.db') if args.storage is None else args.storage.split('@')[-1]}")

    def counts() -> tuple[int, int]:
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
        running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
        return done, running

    last: dict = {}                               # what this worker's last trial raised, if anything

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        last.clear()
        try:
            return run_trial(trial, settings)
        except Exception as exc:
            last["error"] = exc
            raise

    def on_trial(study_: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        best = best_trial(study_)
        value = "-" if t.values is None else ", ".join(f"{v:.3f}" for v in t.values)
        why = t.user_attrs.get("fail_reason") or t.user_attrs.get("pruned_at_step")
        params = "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
        console.print(f"trial {t.number:>3} {t.state.name.lower():<8} {value:>14}"
                      + (f"  ({'pruned at step ' if t.state.name == 'PRUNED' else ''}{why})" if why else "")
                      + (f"  best: trial {best.number}" if best is not None else "") + f"\n    {params}")

    attempts = 0
    stop_request = StopRequest().__enter__()      # Ctrl-C / SIGTERM, also for the rest of the program
    interrupted = stop_request.requested
    if settings is not None:
        settings.interrupted = interrupted        # the running trial checks it at every update
    try:
        # one trial at a time, until the study (all workers together) has its finished trials; a worker never
        # starts a trial for a slot another worker's running trial fills. Failed trials (diverged, crashed) do
        # not fill a slot, so the attempts of this worker are capped. Two workers that see the last free slot at
        # the same moment both create a trial; objective.claim_slot makes the later one stand down.
        while settings is not None and not interrupted.is_set():
            optuna.storages.fail_stale_trials(study)
            done, running = counts()
            if done >= args.trials:
                break
            if done + running >= args.trials:
                # the remaining slots are other workers' running trials: wait for them (a killed worker's trial
                # turns stale after 3 missed heartbeats, is failed above, and its settings queued again)
                time.sleep(min(args.heartbeat, 5))
                continue
            if attempts >= 2 * args.trials + 5:
                console.print(f"drone-sweep: {attempts} trials started here without reaching {args.trials} finished "
                              "ones; see the failures above")
                break
            attempts += 1
            study.optimize(objective, n_trials=1, callbacks=[on_trial],
                           catch=(Exception,), gc_after_trial=True)
            if isinstance(last.get("error"), SurplusTrial):
                attempts -= 1     # another worker took the slot at the same moment: not a failed attempt
    except KeyboardInterrupt:
        console.print("drone-sweep: interrupted; the running trial is failed, the study kept (run again to go on)")
        return 130
    if interrupted.is_set():   # the KeyboardInterrupt was swallowed somewhere, the flag was not
        console.print("drone-sweep: interrupted; the study kept (run again to go on)")
        return 130
    done, running = counts()
    if running:
        console.print(f"drone-sweep: {running} trial(s) still running in other workers")
    console.print(summary_table(study, [p.name for p in space]))
    for path in write_plots(study, sweep_dir / "plots"):
        console.print(f"plot: {path}")
    if args.export_best:
        try:
            best = export_best(study, base, Path(args.export_best))
        except ValueError as exc:
            console.print(f"drone-sweep: {exc}")
            return 1
        console.print(f"best: trial {best.number} ({best.user_attrs.get('run_dir')}); settings in {args.export_best} "
                      f"(drone-train --config {args.export_best})")
    return 0


def entry() -> None:
    sys.exit(main())
