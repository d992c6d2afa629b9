"""Trainer regression suite: train each ocean game on a fixed budget and seed, evaluate, compare to targets.

    python scripts/regression.py               # the full suite; report in docs/regression/
    python scripts/regression.py --quick       # the CI part: target and cartpole (a few minutes)
    python scripts/regression.py --envs pong,snake --out /tmp/reg

A drone result means little if the trainer silently broke; these small games have known solutions, so a
run that misses its target points at the trainer (or the env), not at the drone task. Each game's budget
and hyperparameters are its defaults in policies/config.py (OCEAN_DEFAULTS) unless the target table
(scripts/regression_targets.toml) overrides them; the seed is fixed. The exit status is 1 when any game
misses its target.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import tomllib
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drone_sim.signals import StopRequest  # noqa: E402

TARGETS = ROOT / "scripts" / "regression_targets.toml"


def load_targets(path: Path = TARGETS) -> dict[str, dict]:
    table = tomllib.loads(path.read_text())
    for name, t in table.items():
        if "target" not in t:
            raise SystemExit(f"{path}: [{name}] has no target")
    return table


def run_one(name: str, spec: dict, out: Path, seed: int, episodes: int,
            stop: Callable[[], None] | None = None) -> dict:
    """Train, then evaluate the trained policy deterministically and a random policy for reference. `stop`
    (a StopRequest's check) is called at every update and evaluation step: it ends the game by raising."""
    from policies.checkpoint import load_policy
    from policies.config import make_config
    from policies.evaluate import TorchPolicy, evaluate_ocean
    from policies.train import train

    overrides = {k: v for k, v in spec.items() if k not in ("target", "means", "quick")}
    cfg = make_config(cli_values={"env": name, "seed": seed, "log_every": 1.0, **overrides})
    t0 = time.time()
    summary = train(cfg, out / name, stop=None if stop is None else lambda _info: stop() or False)
    wall = time.time() - t0
    model, _ = load_policy(out / name / "model.pt")
    agents = cfg.agents_per_env
    trained = evaluate_ocean(lambda n: TorchPolicy(model, n), name, episodes=episodes, seed=seed + 10_000,
                             agents_per_env=agents, stop=stop)
    rng = np.random.default_rng(seed)

    def random_policy(n):
        return lambda obs: rng.integers(0, model.action_size, n, dtype=np.int32)

    baseline = evaluate_ocean(random_policy, name, episodes=episodes, seed=seed + 20_000, agents_per_env=agents,
                              stop=stop)
    return {"env": name, "target": spec["target"], "means": spec.get("means", ""), "score": trained["score"],
            "random_score": baseline["score"], "episodes": trained["episodes"], "steps": summary["global_step"],
            "train_s": wall, "steps_per_s": summary["agent_steps_per_s"], "passed": trained["score"] >= spec["target"],
            "curve": str(out / name / "metrics.jsonl")}


def write_report(results: list[dict], out_md: Path, out_png: Path, command: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.4), squeeze=False)
    for ax, r in zip(axes[0], results):
        recs = [json.loads(line) for line in open(r["curve"]) if line.strip()]
        pts = [(x["step"], x["tasks"][r["env"]]["score"]) for x in recs if r["env"] in x.get("tasks", {})]
        if pts:
            ax.plot(*zip(*pts), label="training (stochastic)")
        ax.axhline(r["target"], color="green", ls="--", lw=1, label="target")
        ax.axhline(r["score"], color="black", lw=1, label="final eval (deterministic)")
        ax.axhline(r["random_score"], color="grey", ls=":", lw=1, label="random policy")
        ax.set_title(f"{r['env']} ({'pass' if r['passed'] else 'FAIL'})")
        ax.set_xlabel("agent-steps")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    lines = ["# Trainer regression report", "",
             f"Command: `{command}`  ",
             f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}; "
             f"{time.strftime('%Y-%m-%d')}", "",
             "| env | score (deterministic eval) | target | random policy | result | agent-steps | train time | steps/s | score means |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['env']} | {r['score']:.3f} | {r['target']:g} | {r['random_score']:.3f} | "
                     f"{'pass' if r['passed'] else '**FAIL**'} | {r['steps'] / 1e6:.2f}M | {r['train_s']:.0f} s | "
                     f"{r['steps_per_s'] / 1e3:.0f}k | {r['means']} |")
    lines += ["", f"![curves]({out_png.name})", ""]
    out_md.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", help="comma-separated games (default: all in the target table)")
    p.add_argument("--quick", action="store_true", help="only the games marked quick (the CI part)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--episodes", type=int, default=200, help="evaluation episodes per game")
    p.add_argument("--out", default="runs/regression", help="run directories")
    p.add_argument("--report", default=str(ROOT / "docs" / "regression" / "report.md"),
                   help="markdown report (the PNG of curves is written beside it)")
    args = p.parse_args(argv)
    targets = load_targets()
    names = list(targets)
    if args.envs:
        names = [n.strip() for n in args.envs.split(",") if n.strip()]
        unknown = [n for n in names if n not in targets]
        if unknown:
            p.error(f"no target for {', '.join(unknown)}; known: {', '.join(targets)}")
    if args.quick:
        names = [n for n in names if targets[n].get("quick")]
    from rich.console import Console
    from rich.table import Table

    console = Console()
    results = []
    name = ""
    try:
        with StopRequest() as stop:     # Ctrl-C and SIGTERM, checked at every update and evaluation step
            for name in names:
                console.print(f"[bold]{name}[/]: training ...")
                r = run_one(name, targets[name], Path(args.out), args.seed, args.episodes, stop=stop.check)
                console.print(f"  {name}: score {r['score']:.3f} (target {r['target']:g}, random "
                              f"{r['random_score']:.3f}) in {r['train_s']:.0f} s -> {'pass' if r['passed'] else 'FAIL'}")
                results.append(r)
    except KeyboardInterrupt:
        # a partial suite is no regression verdict: the report (whose table reads as the whole suite) is left as
        # it was; what finished was printed above, and the checkpoints the interrupted game wrote are kept
        console.print(f"regression: interrupted during {name} after {len(results)} of {len(names)} game(s); "
                      f"no report written (runs in {args.out})")
        return 130
    table = Table(title="trainer regression")
    for col in ("env", "score", "target", "random", "result", "steps", "time"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(r["env"], f"{r['score']:.3f}", f"{r['target']:g}", f"{r['random_score']:.3f}",
                      "[green]pass[/]" if r["passed"] else "[red]FAIL[/]", f"{r['steps'] / 1e6:.2f}M",
                      f"{r['train_s']:.0f} s")
    console.print(table)
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    write_report(results, report, report.with_name(report.stem + "_curves.png"),
                 "python scripts/regression.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    console.print(f"report: {report}")
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
