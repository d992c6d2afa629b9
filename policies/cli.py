"""Command lines: drone-train and drone-eval."""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
from math import nan
import sys
from pathlib import Path

from drone_sim.config import CRASH_CAUSES, DR_PRESETS
from drone_sim.signals import StopRequest, sigterm_as_interrupt

from .config import ConfigError, TrainConfig, load_toml, make_config


def crash_causes(row: dict) -> str:
    """What the crashes of an evaluation row hit, largest share first ('drone .031 floor .004'); '-' for none."""
    shares = sorted(((row.get(f"crash_{c}_rate", 0.0), c) for c in CRASH_CAUSES), reverse=True)
    return " ".join(f"{c} {v:.3f}".replace("0.", ".", 1) for v, c in shares if v > 0) or "-"


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drone-train",
        description="Train one PPO policy across drone tasks and randomized drones.")
    # No ArgumentDefaultsHelpFormatter here: each setting's help already names its TrainConfig default (the
    # parser's own defaults are None, so that only explicitly given flags override the config file).
    p.add_argument("--config", metavar="FILE.toml", help="settings file ([train] table); the command line wins")
    p.add_argument("--out", metavar="DIR", help="run directory (default runs/TASKS-TIMESTAMP)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    for f in TrainConfig.fields():
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            p.add_argument(flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction,
                           help=f"{f.metadata['help']} (default: {f.default})")
        else:
            p.add_argument(flag, dest=f.name, default=None, type=_number_or_str(f.default), metavar=f.name.upper(),
                           help=f"{f.metadata['help']} (default: {f.default})")
    return p


def _number_or_str(default):
    if isinstance(default, int):
        return lambda s: int(float(s)) if float(s).is_integer() else _bad_int(s)
    if isinstance(default, float):
        return float
    return str


def _bad_int(s: str):
    raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}")


def _check_tasks(tasks: str) -> None:
    import drone_sim

    drone_sim.parse_tasks(tasks)


class _Progress:
    """Live progress in the terminal (rich), or plain lines when output is not a terminal."""

    def __init__(self, total: int):
        from rich.console import Console

        self.console = Console()
        self.live = None
        self.total = total
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(console=self.console, refresh_per_second=4)
            self.live.start()

    def __call__(self, r: dict) -> None:
        if self.live is not None:
            self.live.update(self._table(r))
        else:
            tasks = "  ".join(f"{t}: score {m.get('score', nan):.2f}"
                              + (f" crash {m['crash_rate']:.2f}" if "crash_rate" in m else "")
                              for t, m in r["tasks"].items())
            print(f"[{r['step'] / 1e6:7.2f}M / {r['total_steps'] / 1e6:.1f}M] {r['sps'] / 1e3:6.0f}k steps/s  "
                  f"pg {r['policy_loss']:+.4f} v {r['value_loss']:.3f} ent {r['entropy']:+.2f} kl {r['approx_kl']:.4f}"
                  f"  {tasks}", flush=True)

    def _table(self, r: dict):
        from rich.table import Table

        t = Table(title=f"drone-train  {r['step'] / 1e6:.2f}M / {r['total_steps'] / 1e6:.1f}M agent-steps  "
                        f"{r['sps'] / 1e3:.0f}k steps/s  {r['time_s']:.0f} s")
        for col in ("task", "episodes", "score", "crash", "out of bounds", "return", "length"):
            t.add_column(col, justify="right")
        for task, m in r["tasks"].items():
            t.add_row(task, f"{m['episodes']:.0f}", f"{m.get('score', nan):.3f}", f"{m.get('crash_rate', nan):.3f}",
                      f"{m.get('out_of_bounds_rate', nan):.3f}", f"{m.get('episode_return', nan):.1f}",
                      f"{m.get('episode_length', nan):.0f}")
        t.caption = (f"policy {r['policy_loss']:+.4f}  value {r['value_loss']:.4f}  entropy {r['entropy']:+.3f}  "
                     f"kl {r['approx_kl']:.4f}  clip {r['clip_fraction']:.3f}  lr {r['lr']:.2e}")
        return t

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def train_main(argv: list[str] | None = None) -> int:
    parser = _train_parser()
    args = parser.parse_args(argv)
    cli = {f.name: getattr(args, f.name) for f in TrainConfig.fields() if getattr(args, f.name) is not None}
    try:
        file_values = {}
        if args.config:
            file_values = load_toml(args.config)
        elif args.resume and args.out and (Path(args.out) / "config.toml").is_file():
            file_values = load_toml(Path(args.out) / "config.toml")
        cfg = make_config(file_values, cli)
        if cfg.env == "drone":
            _check_tasks(cfg.tasks)
    except (ConfigError, ValueError) as exc:
        parser.error(str(exc))
    if args.resume and not args.out:
        parser.error("--resume needs --out DIR (the run to continue)")
    name = cfg.tasks.replace(',', '_').replace(':', '') if cfg.env == "drone" else cfg.env
    out = Path(args.out or f"runs/{name}-"
                          f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    if args.resume and not (out / "checkpoints" / "latest.pt").is_file():
        parser.error(f"--resume: no checkpoint at {out / 'checkpoints' / 'latest.pt'}")

    from .train import train

    import os

    _freeze_startup_objects()

    is_main = int(os.environ.get("RANK", "0")) == 0
    progress = _Progress(cfg.total_steps) if is_main else None
    try:
        with StopRequest() as stop:
            summary = train(cfg, out, resume=args.resume, progress=progress,
                            stop=lambda _info: stop.check() or False)
    except KeyboardInterrupt:
        print("\ninterrupted: the latest checkpoint is in", out / "checkpoints", file=sys.stderr)
        return 130
    finally:
        if progress is not None:
            progress.close()
    if is_main:
        _print_summary(summary, out)
    return 0


def _print_summary(summary: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    c = Console()
    final = summary.get("final") or {"tasks": summary.get("last", {}).get("tasks", {}), "from_step": None}
    since = (f"episodes that ended after {final['from_step'] / 1e6:.2f}M steps" if final.get("from_step") is not None
             else "the last logging window")
    t = Table(title=f"done: {summary['global_step'] / 1e6:.1f}M agent-steps in {summary['wall_time_s']:.0f} s "
                    f"({summary['agent_steps_per_s'] / 1e3:.0f}k steps/s)\ntraining episodes: {since}")
    for col in ("task", "episodes", "score", "crash", "return"):
        t.add_column(col, justify="right")
    for task, m in final["tasks"].items():
        t.add_row(task, f"{m['episodes']:.0f}", f"{m.get('score', nan):.3f}", f"{m.get('crash_rate', nan):.3f}",
                  f"{m.get('episode_return', nan):.1f}")
    c.print(t)
    c.print(f"policy: {out / 'model.pt'}   curves: {out / 'curves.png'}   metrics: {out / 'metrics.csv'}")


def eval_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="drone-eval", description="Deterministic evaluation of a trained policy.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("checkpoint", nargs="?", help="a model.pt or checkpoints/latest.pt written by drone-train, or a "
                                                 "drone-export .onnx file (as --onnx)")
    p.add_argument("--onnx", metavar="POLICY.onnx",
                   help="evaluate this drone-export file with onnxruntime instead of a checkpoint (the env settings "
                        "come from its metadata)")
    p.add_argument("--tasks", help="tasks to evaluate (default: those it was trained on)")
    p.add_argument("--episodes", type=int, default=200, help="episodes per task and drone set")
    p.add_argument("--seed", type=int, default=12345, help="evaluation seed (unseen courses and drones)")
    p.add_argument("--drones", choices=("both", "randomized", *DR_PRESETS), default="both",
                   help="the nominal drone, the run's randomization preset (randomized), both, or a named preset "
                        "(default, wide: to compare policies trained on different presets on the same drones)")
    p.add_argument("--video", metavar="OUT.mp4",
                   help="after the table, record the policy flying each task (randomized drones) to an mp4; "
                        "with several tasks, one file per task: OUT-TASK.mp4 (needs a display, e.g. xvfb-run -a)")
    p.add_argument("--view", action="store_true",
                   help="after the table, watch the policy fly each task in the viewer window (close it for the next)")
    p.add_argument("--video-steps", type=int, default=500, help="control steps per task in --video / --view")
    p.add_argument("--video-agents", type=int, default=8, help="drones in the env shown by --video / --view")
    p.add_argument("--json", metavar="FILE", help="also write the table as JSON (one object per row, every metric)")
    args = p.parse_args(argv)
    if args.episodes < 1:
        p.error(f"--episodes must be at least 1, got {args.episodes}")
    if args.video and Path(args.video).suffix.lower() not in (".mp4", ".m4v", ".mov"):
        p.error(f"--video {args.video}: the mp4v codec writes .mp4 (or .m4v / .mov) files")
    if args.video_steps < 1 or args.video_agents < 1:
        p.error("--video-steps and --video-agents must be at least 1")
    if (args.checkpoint is None) == (args.onnx is None):
        p.error("give either a CHECKPOINT or --onnx POLICY.onnx")
    if args.checkpoint and Path(args.checkpoint).suffix.lower() == ".onnx":
        # what deploy flies is the exported file, so it is the one a user reaches for first
        args.onnx, args.checkpoint = args.checkpoint, None

    import drone_sim

    from .checkpoint import CheckpointError
    from .evaluate import drone_sets, evaluate_policy
    from .onnx_policy import OnnxPolicyError

    try:
        model, meta, make_policy = eval_policy_of(args.onnx or args.checkpoint, onnx=bool(args.onnx))
    except (CheckpointError, OnnxPolicyError) as exc:
        p.error(str(exc))
    try:
        tasks = list(drone_sim.parse_tasks(args.tasks or meta["tasks"]))
    except ValueError as exc:
        p.error(str(exc))
    sets = drone_sets(meta, args.drones)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"drone-eval {args.onnx or args.checkpoint}\n{meta['global_step'] / 1e6:.1f}M steps, "
                        f"{meta['action_mode']}, deterministic actions, seed {args.seed}")
    for col in ("task", "drones", "episodes", "score", "detail", "crash", "crashes hit", "out"):
        table.add_column(col, justify="right")
    sigterm_as_interrupt()
    # a long evaluation prints nothing until its table: say what it is doing (and, to a caller, that Ctrl-C and
    # SIGTERM now stop it cleanly)
    print(f"drone-eval: {len(tasks)} task(s) x {len(sets)} drone set(s), {args.episodes} episodes each ...",
          file=sys.stderr, flush=True)
    try:
        with StopRequest() as stop:
            rows = evaluate_policy(make_policy, meta, tasks, sets, episodes=args.episodes, seed=args.seed,
                                   stop=stop.check)
    except KeyboardInterrupt:
        print("drone-eval: interrupted; no table", file=sys.stderr)
        return 130
    for m in rows:
        v2 = m.get(m["detail_key"], float("nan"))
        table.add_row(m["task"], m["drones"], f"{m['episodes']:.0f}", f"{m['score_name']} {m['score']:.3f}",
                      f"{m['detail_name']} {'-' if math.isnan(v2) else f'{v2:.2f}'}", f"{m['crash_rate']:.3f}",
                      crash_causes(m), f"{m['out_of_bounds_rate']:.3f}")
    # piped output (logs, CI) would otherwise wrap at 80 columns
    Console(width=None if sys.stdout.isatty() else 140).print(table)
    if args.json:
        doc = {"format": "drone-eval/1", "policy": str(args.onnx or args.checkpoint), "seed": args.seed,
               "episodes_per_row": args.episodes, "global_step": meta["global_step"],
               "action_mode": meta["action_mode"], "rows": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=1, default=float) + "\n")
    if args.video or args.view:
        return _show(args, model, meta, tasks, sets[-1])
    return 0


def eval_policy_of(path: str, onnx: bool):
    """(model, checkpoint-like metadata, make_policy(n)) of a checkpoint or a drone-export file, as drone-eval
    flies it: the torch model through TorchPolicy, the ONNX file through onnxruntime (one clone per env)."""
    if onnx:
        model, meta = _load_onnx(path)
        return model, meta, lambda n: model.clone()
    from .checkpoint import load_policy
    from .evaluate import TorchPolicy

    model, meta = load_policy(path)
    return model, meta, lambda n: TorchPolicy(model, n)


def _load_onnx(path: str):
    """(OnnxPolicy, checkpoint-like metadata) of a drone-export file, so the evaluation below runs the same env
    as for the checkpoint it came from (drone params and course travel inside the file)."""
    from .onnx_policy import OnnxPolicy

    policy = OnnxPolicy(path)
    m = policy.metadata
    drone = m["drone_params"]
    tcfg = {"dr": m["domain_randomization"]["preset"], "drone": drone["params"] if drone["source"] else None,
            "course": m["course"]}
    return policy, {"global_step": m["training_steps"], "action_mode": m["action_mode"], "tasks": m["tasks"],
                    "control_hz": m["control_hz"], "physics_hz": m["physics_hz"], "train_config": tcfg}


def _show(args, model, meta: dict, tasks: list[str], dr: str) -> int:
    """drone-eval --video / --view: the evaluated policy flying each task in the viewer."""
    import drone_sim
    from drone_sim.view import play

    from .evaluate import PolicyActor

    tcfg = meta["train_config"]
    for task in tasks:
        env = drone_sim.make(tasks=task, num_envs=1, agents_per_env=args.video_agents,
                             action_mode=meta["action_mode"], seed=args.seed, dr=dr, drone=tcfg["drone"] or None,
                             course=tcfg["course"] or None, physics_hz=meta["physics_hz"],
                             control_hz=meta["control_hz"])
        name = f"{Path(args.onnx or args.checkpoint).name} ({dr} drones)"
        actor = model.clone(name) if args.onnx else PolicyActor(model, env.num_agents, name=name)
        video = None
        if args.video:
            v = Path(args.video)
            video = v if len(tasks) == 1 else v.with_name(f"{v.stem}-{task}{v.suffix}")
        try:
            n = play(env, actor, video=video, steps=args.video_steps if video else None)
        except (RuntimeError, OSError) as exc:
            print(f"drone-eval: error: {exc}", file=sys.stderr)
            return 1
        finally:
            env.close()
        if video:
            print(f"drone-eval: wrote {video} ({n} steps of {task})")
    return 0


def _freeze_startup_objects() -> None:
    """Move everything allocated so far (torch, numpy, rich: hundreds of thousands of objects that live until
    exit) out of the garbage collector's sight. Without it every full collection during training walks them
    all, and so does the interpreter's shutdown: 1.2-1.5 s of a 20 s hover run went to that final walk."""
    import gc

    gc.collect()
    gc.freeze()


def train_entry() -> None:
    code = train_main()
    _freeze_startup_objects()  # what training allocated too: the shutdown need not walk it
    sys.exit(code)


def eval_entry() -> None:
    sys.exit(eval_main())
