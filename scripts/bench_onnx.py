"""Single-observation inference latency of exported policies, as the laptop runs them: one core, one thread.

Deploy runs one policy step per control tick (50 Hz by default: a 20 ms budget shared with telemetry,
the observation and the command), so what matters is the tail of one-observation calls, not batch
throughput: the table shows p50 / p99 / max over many calls after a warm-up, for the default MLP
(hidden 64, 2 layers) and the LSTM, through OnnxPolicy's single-step call, through a bare
InferenceSession.run (the runtime's own floor) and through the torch model (for comparison).

    python scripts/bench_onnx.py [--calls 20000] [--core N] [--markdown]

Timings on a loaded machine are noisy (the max above all); the load average is printed with the table.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import drone_sim  # noqa: E402
from policies.checkpoint import save_checkpoint  # noqa: E402
from policies.config import make_config  # noqa: E402
from policies.export import export_onnx  # noqa: E402
from policies.model import ActorCritic  # noqa: E402
from policies.onnx_policy import OnnxPolicy  # noqa: E402
from drone_sim.signals import exit_status_of  # noqa: E402


ROUNDS = 5


def _policy_files(tmp: Path, lstm: bool) -> tuple[ActorCritic, Path]:
    """A default-size policy with non-trivial normalization, checkpointed and exported as drone-train would."""
    torch.manual_seed(0)
    model = ActorCritic(drone_sim.OBS_SIZE, 4, lstm=lstm)
    with torch.no_grad():
        model.norm.mean.normal_(0.0, 1.0)
        model.norm.var.uniform_(0.1, 4.0)
    cfg = make_config(cli_values={"tasks": "hover", "lstm": lstm, "total_steps": 1})
    env = drone_sim.make(tasks="hover")
    name = "lstm" if lstm else "mlp"
    save_checkpoint(tmp / f"{name}.pt", model, None, cfg, env.config, 0, 0, 0.0)
    export_onnx(tmp / f"{name}.pt", tmp / f"{name}.onnx")
    return model.eval(), tmp / f"{name}.onnx"


def _time(fn: Callable[[int], object], calls: int, warmup: int) -> np.ndarray:
    """Per-call wall time in microseconds; fn(i) does call i."""
    for i in range(warmup):
        fn(i)
    out = np.empty(calls, np.int64)
    clock = time.perf_counter_ns
    for i in range(calls):
        t0 = clock()
        fn(i)
        out[i] = clock() - t0
    return out / 1e3


def _cases(model: ActorCritic, path: Path, obs: np.ndarray) -> dict[str, Callable[[int], object]]:
    """The three ways to run one observation through the policy, each carrying LSTM state step to step."""
    k = len(obs)
    policy = OnnxPolicy(path, threads=1)
    sess = policy.session
    x1 = [o.reshape(1, -1) for o in obs]
    t1 = [torch.from_numpy(o).reshape(1, -1) for o in obs]
    cases: dict[str, Callable[[int], object]] = {"OnnxPolicy(obs)": lambda i: policy(obs[i % k])}
    if model.is_lstm:
        st = {"h": np.zeros((1, model.hidden), np.float32), "c": np.zeros((1, model.hidden), np.float32)}

        def raw(i: int) -> None:
            _, st["h"], st["c"] = sess.run(["action", "h_out", "c_out"], {"obs": x1[i % k], "h": st["h"], "c": st["c"]})

        tstate = {"s": model.initial_state(1)}

        def torch_step(i: int) -> None:
            with torch.inference_mode():
                mean, _, tstate["s"] = model(t1[i % k], tstate["s"])
                model.deterministic(mean)
    else:
        def raw(i: int) -> None:
            sess.run(["action"], {"obs": x1[i % k]})

        def torch_step(i: int) -> None:
            with torch.inference_mode():
                model.deterministic(model(t1[i % k])[0])
    cases["session.run"] = raw
    cases["torch forward"] = torch_step
    return cases


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=20_000, help="timed calls per case")
    p.add_argument("--warmup", type=int, default=2_000, help="untimed calls first")
    p.add_argument("--core", type=int, help="CPU core to pin to (default: the last one allowed)")
    p.add_argument("--markdown", action="store_true", help="print a markdown table (for BENCHMARKS.md)")
    args = p.parse_args(argv)
    if args.calls < 100 or args.warmup < 0:
        p.error("--calls must be at least 100 and --warmup non-negative")
    allowed = sorted(os.sched_getaffinity(0))
    core = allowed[-1] if args.core is None else args.core
    if core not in allowed:
        p.error(f"--core {core}: not one of the allowed cores {allowed}")
    os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    obs = np.random.default_rng(0).normal(0.0, 1.5, (256, drone_sim.OBS_SIZE)).astype(np.float32)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for lstm in (False, True):
            model, path = _policy_files(Path(tmp), lstm)
            label = "LSTM 64" if lstm else "MLP 64x2"
            cases = _cases(model, path, obs)
            for fn in cases.values():
                _time(fn, 0, args.warmup)
            # the cases take turns in rounds, so a burst of load from elsewhere hits them all alike
            times: dict[str, list[np.ndarray]] = {case: [] for case in cases}
            for _ in range(ROUNDS):
                for case, fn in cases.items():
                    times[case].append(_time(fn, args.calls // ROUNDS, 0))
            for case, parts in times.items():
                us = np.concatenate(parts)
                rows.append((label, case, *np.percentile(us, [50, 99]), us.max(), us.mean()))
    import onnxruntime

    load = os.getloadavg()
    head = (f"single-observation latency, core {core} of {os.cpu_count()}, 1 thread, {args.calls // ROUNDS * ROUNDS} "
            f"calls in {ROUNDS} interleaved rounds after {args.warmup} warm-up; onnxruntime {onnxruntime.__version__}, torch {torch.__version__}, "
            f"{platform.processor() or platform.machine()}; load average {load[0]:.2f}")
    cols = ("policy", "path", "p50 us", "p99 us", "max us", "mean us")
    if args.markdown:
        print(head + "\n")
        print("| " + " | ".join(cols) + " |")
        print("|" + "|".join(["---"] * 2 + ["---:"] * 4) + "|")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | " + " | ".join(f"{v:.1f}" for v in r[2:]) + " |")
    else:
        print(head)
        print(f"{cols[0]:<9} {cols[1]:<16} " + " ".join(f"{c:>9}" for c in cols[2:]))
        for r in rows:
            print(f"{r[0]:<9} {r[1]:<16} " + " ".join(f"{v:9.1f}" for v in r[2:]))
    mlp_p99 = next(r[3] for r in rows if r[0] == "MLP 64x2" and r[1] == "OnnxPolicy(obs)")
    print(f"\ntarget: MLP p99 < 100 us through OnnxPolicy: {'met' if mlp_p99 < 100 else 'NOT met'} ({mlp_p99:.1f} us)")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status_of(main, "bench_onnx"))
