"""Training metrics: JSON lines and CSV as they come, TensorBoard when installed, PNG curves at the end."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path


def flatten(record: dict) -> dict[str, float]:
    """{'tasks': {'race': {'score': 1}}} -> {'race/score': 1}; other keys unchanged."""
    flat = {k: v for k, v in record.items() if k != "tasks"}
    for task, m in record.get("tasks", {}).items():
        for k, v in m.items():
            flat[f"{task}/{k}"] = v
    return flat


class MetricsWriter:
    """Appends one record per logging step to metrics.jsonl (complete) and metrics.csv (fixed columns)."""

    def __init__(self, out_dir: str | Path, append: bool = False):
        self.dir = Path(out_dir)
        self.jsonl = open(self.dir / "metrics.jsonl", "a" if append else "w", buffering=1)
        self.csv_path = self.dir / "metrics.csv"
        self.columns: list[str] | None = None
        if append and self.csv_path.is_file():
            with open(self.csv_path) as f:
                header = f.readline().strip()
            self.columns = header.split(",") if header else None
        elif not append and self.csv_path.exists():
            self.csv_path.unlink()
        self.records: list[dict] = []
        self.last: dict = {}
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.dir / "tensorboard"))
        except Exception:  # tensorboard is optional
            self.tb = None

    def write(self, record: dict) -> None:
        self.jsonl.write(json.dumps(record, default=float) + "\n")
        flat = flatten(record)
        if self.columns is None:
            self.columns = list(flat)
            with open(self.csv_path, "w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        with open(self.csv_path, "a", newline="") as f:
            csv.writer(f).writerow([flat.get(c, "") for c in self.columns])
        if self.tb is not None:
            for k, v in flat.items():
                if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
                    self.tb.add_scalar(k, v, record["step"])
        self.records.append(record)
        self.last = record

    def close(self) -> None:
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
        if self.records:
            plot_curves(self.dir / "metrics.jsonl", self.dir / "curves.png")


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _smoothed(steps: list[float], values: list[float], weights: list[float], min_weight: float) -> list[float]:
    """Episode-weighted trailing average over at least `min_weight` episodes: a logging window may hold only
    a couple of episodes of a task, so raw per-window figures jump between 0 and 1."""
    out, acc_v, acc_w, start = [], 0.0, 0.0, 0
    for i, (v, w) in enumerate(zip(values, weights)):
        acc_v += v * w
        acc_w += w
        while start < i and acc_w - weights[start] >= min_weight:
            acc_v -= values[start] * weights[start]
            acc_w -= weights[start]
            start += 1
        out.append(acc_v / acc_w if acc_w > 0 else math.nan)
    return out


def _aux_title(names: set[str]) -> str:
    # several tasks' figures are named in the legend; listing them all in the title ran into the next panel's
    return f"task figure: {names.pop()}" if len(names) == 1 else "task figure (each task's own, in the legend)"


def plot_curves(metrics_path: str | Path, png_path: str | Path, smooth_episodes: float = 2000.0) -> None:
    """Learning curves per task (score, crash rate, return, the task's own figure), throughput and the PPO
    statistics, one PNG. Thin lines are the raw logging windows, thick ones episode-weighted averages."""
    # The object API rather than pyplot, and fixed margins rather than tight_layout: together half a second of
    # every drone-train's exit (a sizeable part of a 20 s hover run), for the same picture.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = read_jsonl(metrics_path)
    tasks = sorted({t for r in records for t in r.get("tasks", {})})
    fig = Figure(figsize=(16, 8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    fig.subplots_adjust(left=0.045, right=0.985, bottom=0.065, top=0.96, wspace=0.2, hspace=0.3)
    std = {"episode_return", "episode_length", "score", "crash_rate", "out_of_bounds_rate", "timeout_rate",
           "episodes"}
    aux = {t: k for r in records for t, m in r.get("tasks", {}).items() for k in m if k not in std}
    panels = [("score", "task score"), ("crash_rate", "crash rate (training, stochastic actions)"),
              ("episode_return", "episode return"), (None, _aux_title(set(aux.values())))]
    for ax, (key, title) in zip(axes.flat, panels):
        for c, task in enumerate(tasks):
            k = key or aux.get(task)
            if k is None:
                continue
            pts = [(r["step"], r["tasks"][task][k], r["tasks"][task]["episodes"]) for r in records
                   if k in r.get("tasks", {}).get(task, {}) and not math.isnan(r["tasks"][task][k])]
            if not pts:
                continue
            x, y, w = (list(v) for v in zip(*pts))
            color = f"C{c}"
            ax.plot(x, y, color=color, alpha=0.2, lw=0.7)
            ax.plot(x, _smoothed(x, y, w, smooth_episodes), color=color, lw=2,
                    label=task if key else f"{task}: {k}")
        ax.set_title(title)
        ax.set_xlabel("agent-steps")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    ax = axes.flat[4]
    ax.plot([r["step"] for r in records], [r["sps"] / 1e3 for r in records])
    ax.set_title("throughput (k agent-steps/s, since the run started)")
    ax.set_xlabel("agent-steps")
    ax.grid(alpha=0.3)
    ax = axes.flat[5]
    teacher = ("teacher_loss",) if any(r.get("teacher_loss", 0.0) > 0.0 for r in records) else ()
    for key in ("policy_loss", "value_loss", "entropy", "approx_kl") + teacher:
        ax.plot([r["step"] for r in records], [r.get(key, math.nan) for r in records], label=key)
    ax.set_title("PPO")
    ax.set_xlabel("agent-steps")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(png_path, dpi=90)
