"""Choose the checkpoint of a run to keep: every checkpoint kept part-way (drone-train --keep-checkpoint-every) and the
final model.pt, each through drone-eval's evaluation on one seed, and the one with the fewest crashes.

    python scripts/pick_checkpoint.py runs/X --seed 777 --episodes 512 [--from-step 130e6] [--json pick.json]

Why: in the teacher recipe the obstacle crash rate is lowest part-way through a run and climbs again as PPO trades
safety for speed (BENCHMARKS, issue 18's eleventh and twelfth rounds). Choose on a seed other than the one the
figures are reported on (drone-eval's default 12345): the best of several checkpoints on the reporting seed is
biased towards that seed's episodes.

The rule: the lowest sum of the crash rates over the evaluated tasks (randomized drones); a tie goes to the later
checkpoint. It prints every checkpoint's scores too, so a pick that buys its crashes with a task's score can be seen.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policies.cli import eval_policy_of  # noqa: E402
from policies.evaluate import drone_sets, evaluate_policy  # noqa: E402

import drone_sim  # noqa: E402
from drone_sim.signals import StopRequest  # noqa: E402


def candidates(run: Path, from_step: float = 0.0) -> list[Path]:
    """The run's kept checkpoints from from_step on, in training order, then model.pt."""
    kept = sorted((run / "checkpoints").glob("step_*.pt"))
    kept = [p for p in kept if int(p.stem.removeprefix("step_")) >= from_step]
    final = run / "model.pt"
    if not final.is_file():
        raise FileNotFoundError(f"{final}: the run has not finished (no model.pt)")
    return kept + [final]


def crash_sum(rows: list[dict]) -> float:
    return sum(r["crash_rate"] for r in rows)


def pick(results: list[dict]) -> dict:
    """The result with the lowest crash sum; the later one of a tie (results in training order)."""
    return min(reversed(results), key=lambda r: r["crash_sum"])


def evaluate(path: Path, tasks: str | None, episodes: int, seed: int, stop: Callable[[], None] | None = None) -> dict:
    _, meta, make_policy = eval_policy_of(str(path), onnx=False)   # the checkpoint as drone-eval flies it
    rows = evaluate_policy(make_policy, meta, list(drone_sim.parse_tasks(tasks or meta["tasks"])),
                           drone_sets(meta, "randomized"), episodes=episodes, seed=seed, stop=stop)
    return {"checkpoint": str(path), "global_step": meta["global_step"], "crash_sum": crash_sum(rows), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a drone-train run directory")
    p.add_argument("--seed", type=int, default=777, help="evaluation seed to choose on (not the one you report on)")
    p.add_argument("--episodes", type=int, default=512, help="episodes per task")
    p.add_argument("--tasks", help="tasks to evaluate (default: those the run trained on)")
    p.add_argument("--from-step", type=float, default=0.0, help="leave out checkpoints kept before this step")
    p.add_argument("--json", type=Path, help="also write every result and the pick as JSON")
    args = p.parse_args(argv)
    if args.episodes < 1:
        p.error(f"--episodes must be at least 1, got {args.episodes}")
    try:
        paths = candidates(args.run, args.from_step)
    except FileNotFoundError as exc:
        p.error(str(exc))
    results = []
    print(f"{len(paths)} checkpoint(s), {args.episodes} episodes per task, seed {args.seed}; score/crash per task:",
          flush=True)
    try:
        with StopRequest() as stop:     # Ctrl-C and SIGTERM, checked at every evaluation step
            for path in paths:
                r = evaluate(path, args.tasks, args.episodes, args.seed, stop=stop.check)
                results.append(r)
                scores = "  ".join(f"{row['task']} {row['score']:.3f}/{row['crash_rate']:.3f}" for row in r["rows"])
                print(f"{r['global_step'] / 1e6:8.1f}M  crash sum {r['crash_sum']:.3f}  {scores}", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted after {len(results)} of {len(paths)} checkpoints; no pick", file=sys.stderr)
        return 130
    best = pick(results)
    print(f"pick: {best['checkpoint']} ({best['global_step'] / 1e6:.1f}M steps, crash sum {best['crash_sum']:.3f} "
          f"on seed {args.seed})")
    if args.json:
        args.json.write_text(json.dumps({"format": "drone-checkpoint-pick/1", "seed": args.seed,
                                         "episodes_per_task": args.episodes, "rule": "lowest sum of crash rates",
                                         "pick": best["checkpoint"], "results": results}, indent=1, default=float)
                             + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
