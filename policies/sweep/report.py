"""What a sweep shows and leaves behind: the best trials as a table, PNG plots, and the best settings as a
drone-train config file."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ..config import TrainConfig
from ..train import config_toml


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]


def best_trials(study: optuna.Study, k: int = 5) -> list[optuna.trial.FrozenTrial]:
    """Single objective: the k best; two objectives (score, seconds): the Pareto front, best score first."""
    done = finished(study)
    if not done:
        return []
    if len(study.directions) == 1:
        return sorted(done, key=lambda t: t.value, reverse=True)[:k]
    return sorted(study.best_trials, key=lambda t: -t.values[0])


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    best = best_trials(study, 1)
    return best[0] if best else None


def summary_table(study: optuna.Study, space_names: list[str]):
    """A rich Table of the best trials (or the Pareto front) with their settings."""
    from rich.table import Table

    states = {s.name.lower(): 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    for t in study.get_trials(deepcopy=False):
        if t.state.name.lower() in states:
            states[t.state.name.lower()] += 1
    multi = len(study.directions) > 1
    title = (f"study {study.study_name}: " + ", ".join(f"{n} {s}" for s, n in states.items()) +
             ("\nPareto front (score up, training seconds down)" if multi else "\nbest trials"))
    table = Table(title=title)
    for col in ("trial", "score", "train s", "steps", *space_names):
        table.add_column(col, justify="right")
    for t in best_trials(study):
        score = t.values[0] if multi else t.value
        table.add_row(str(t.number), f"{score:.3f}", f"{t.user_attrs.get('train_seconds', float('nan')):.1f}",
                      f"{t.user_attrs.get('steps', 0) / 1e6:.2f}M",
                      *[_fmt(t.params.get(n)) for n in space_names])
    return table


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return "-" if v is None else str(v)


def write_plots(study: optuna.Study, out: Path) -> list[Path]:
    """Optimization history (or Pareto front) and parameter importances as PNG files; those that cannot be
    drawn yet (too few finished trials) are skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    out.mkdir(parents=True, exist_ok=True)
    done = finished(study)
    multi = len(study.directions) > 1
    plots: list[tuple[str, Any]] = []
    if done:
        if multi:
            plots.append(("pareto_front.png", lambda: ovm.plot_pareto_front(
                study, target_names=["score", "training seconds"])))
        else:
            plots.append(("history.png", lambda: ovm.plot_optimization_history(study)))
    varied = {k for t in done for k in t.params if len({str(u.params.get(k)) for u in done}) > 1}
    if len(done) >= 3 and varied:
        target = (lambda t: t.values[0]) if multi else None
        plots.append(("importances.png", lambda: ovm.plot_param_importances(study, target=target,
                                                                             target_name="score")))
    written = []
    for name, draw in plots:
        try:
            ax = draw()
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. importances of constant scores
            print(f"drone-sweep: plot {name} skipped: {exc}")
            continue
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.set_size_inches(8, 5)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(out / name)
    return written


def export_best(study: optuna.Study, base: TrainConfig, path: Path) -> optuna.trial.FrozenTrial:
    """The best trial's settings over the base configuration, as a file for `drone-train --config`."""
    best = best_trial(study)
    if best is None:
        raise ValueError(f"study {study.study_name} has no finished trial to export yet")
    params = {k: v for k, v in best.params.items() if k in {f.name for f in TrainConfig.fields()}}
    cfg = dataclasses.replace(base, **params)
    cfg.total_steps = int(best.user_attrs.get("steps", base.total_steps))
    text = config_toml(cfg).replace(
        "# effective configuration of this run (drone-train --config accepts this file)",
        f"# drone-sweep {study.study_name}: trial {best.number}, score "
        f"{(best.values[0] if len(study.directions) > 1 else best.value):.4f} at an unseen seed"
        f"{' on randomized drones' if base.env == 'drone' else ''}\n# drone-train --config {path.name}", 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return best
