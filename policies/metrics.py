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


def plot_curves(metrics_path: str | Path, png_path: str | Path) -> None:
    """Learning curves per task (score, crash rate, return) and the losses, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_jsonl(metrics_path)
    tasks = sorted({t for r in records for t in r.get("tasks", {})})
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    panels = [("score", "task score"), ("crash_rate", "crash rate"), ("episode_return", "episode return")]
    for ax, (key, title) in zip(axes.flat, panels):
        for task in tasks:
            pts = [(r["step"], r["tasks"][task][key]) for r in records
                   if key in r.get("tasks", {}).get(task, {})]
            if pts:
                ax.plot(*zip(*pts), label=task)
        ax.set_title(title)
        ax.set_xlabel("agent-steps")
        ax.grid(alpha=0.3)
        if tasks:
            ax.legend()
    ax = axes.flat[3]
    for key in ("policy_loss", "value_loss", "entropy", "approx_kl"):
        ax.plot([r["step"] for r in records], [r[key] for r in records], label=key)
    ax.set_title("PPO")
    ax.set_xlabel("agent-steps")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
