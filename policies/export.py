"""drone-export: a checkpoint's deterministic actor as one self-describing ONNX file, which the laptop flies.

Only the actor goes in (no critic, no log std): deploy needs nothing else. The observation normalization
is part of the graph, its running mean and variance frozen into constants, so the caller feeds raw
observations exactly as the C observation code builds them. Continuous policies output the mean clamped
to [-1, 1] (what TorchPolicy flies); discrete ones output the argmax action index (int64), not logits,
so every runtime acts identically without re-implementing a head. An LSTM policy's state is explicit:
inputs obs, h, c and outputs action, h_out, c_out, h and c of shape (batch, hidden); the caller zeroes a
row at an episode start. The batch dimension is dynamic.

Exporter: torch's TorchScript-based exporter (dynamo=False). For these small static graphs it gives the
cleanest result: Sub, Div, Clip, Gemm + Tanh layers and a final Clip for the MLP, and one ONNX LSTM op
whose gate weights are already reordered at export time (the torch.export-based exporter in torch 2.13
needs the extra onnxscript package, takes ~3 s instead of ~0.1 s, writes the weights to a side file by
default, and re-slices the LSTM gates at run time with nine Slice/Concat nodes). Opset 17 is loadable by
every onnxruntime of the last several years, so an older laptop install works too.

The file's metadata_props carry what deploy must check before flying the file (see onnx_policy.py,
METADATA_KEYS) and what a person needs to know what it was trained for.
"""
from __future__ import annotations

import argparse
import inspect
import io
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import drone_sim

from .checkpoint import CheckpointError, load_policy
from .model import ActorCritic, run_head
from .onnx_policy import ACTION, C_IN, C_OUT, FORMAT, H_IN, H_OUT, METADATA_KEYS, OBS, OnnxPolicy, OnnxPolicyError

OPSET = 17
MIN_OPSET, MAX_OPSET = 13, 20
PARITY_TOLERANCE = 1e-4  # the export is refused when onnxruntime and torch disagree by more
# torch >= 2.5 has both exporters and (from 2.9) defaults to the dynamo one; older torch only has the legacy one
_LEGACY = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}


class ExportError(ValueError):
    """A checkpoint that cannot be exported, or an export that failed its own check; names the problem."""


class _MlpActor(nn.Module):
    """The deterministic actor of an MLP ActorCritic: obs -> action."""

    def __init__(self, model: ActorCritic):
        super().__init__()
        self.norm, self.actor, self.discrete = model.norm, model.actor, model.discrete

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = run_head(self.actor, self.norm(obs), obs)
        return out.argmax(-1) if self.discrete else torch.clamp(out, -1.0, 1.0)


class _LstmActor(nn.Module):
    """The deterministic actor of an LSTM ActorCritic for one step: (obs, h, c) -> (action, h, c)."""

    def __init__(self, model: ActorCritic):
        super().__init__()
        self.norm, self.encoder, self.lstm, self.actor = model.norm, model.encoder, model.lstm, model.actor
        self.discrete = model.discrete

    def forward(self, obs: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        x = self.encoder(self.norm(obs)).unsqueeze(0)
        y, (h2, c2) = self.lstm(x, (h.unsqueeze(0), c.unsqueeze(0)))
        out = self.actor(y.squeeze(0))
        action = out.argmax(-1) if self.discrete else torch.clamp(out, -1.0, 1.0)
        return action, h2.squeeze(0), c2.squeeze(0)


def action_scaling(action_mode: str, drone: dict[str, Any]) -> dict[str, Any]:
    """What an action value a in [-1, 1] commands, per dimension, on the given (nominal) drone.

    Mirrors quad_commands_rpm / quad_commands_ctbr in drone_sim/csrc/quadrotor.h: every dimension maps
    linearly, value = low + (a + 1) / 2 * (high - low). Randomized drones apply the same map with their own
    k_thrust, omega_max and max_rate, so the numbers are those of the drone the policy was centred on.
    """
    linear = "value = low + (a + 1) / 2 * (high - low), a in [-1, 1]"
    wmax = float(drone["omega_max"])
    if action_mode not in drone_sim.ACTION_MODES:
        raise ExportError(f"unknown action mode {action_mode!r}")
    hover = [float(a) for a in drone_sim.hover_action(drone, action_mode)]
    explicit: dict[str, Any] = {}
    if action_mode == "ctbr":
        tmax = float(drone_sim.max_thrust(drone))
        rates = [float(r) for r in drone["max_rate"]]
        explicit["max_rate"] = rates
        axes = ("body x (forward)", "body y (left)", "body z (up)")
        dims = [{"name": "collective_thrust", "unit": "N", "low": 0.0, "high": tmax,
                 "note": "sum of the four motor thrusts, 4 k_thrust omega_max^2 at a = 1"}]
        dims += [{"name": f"{n}_rate", "unit": "rad/s", "axis": axis, "low": -r, "high": r,
                  "note": "setpoint of the flight controller's rate loop (FLU body frame, right-handed)"}
                 for n, axis, r in zip(("roll", "pitch", "yaw"), axes, rates)]
    else:
        motors = ("front-right CCW (PX4/ArduPilot motor 1)", "rear-left CCW (motor 2)",
                  "front-left CW (motor 3)", "rear-right CW (motor 4)")
        dims = [{"name": f"motor{k}_speed", "unit": "rad/s", "motor": m, "low": 0.0, "high": wmax,
                 "note": "speed command; the motor follows it with a first-order lag"}
                for k, m in enumerate(motors)]
    return {"mode": action_mode, "map": linear, "dims": dims, "hover_action": hover, **explicit,
            "basis": "the nominal drone the policy was trained around (drone_params)"}


def build_metadata(model: ActorCritic, ckpt: dict[str, Any], opset: int = OPSET) -> dict[str, str]:
    """metadata_props for a checkpoint's policy: every key of onnx_policy.METADATA_KEYS, as strings."""
    env_name = ckpt.get("env", "drone")
    tcfg, env_cfg = ckpt["train_config"], ckpt["env_config"]
    norm = model.norm
    if env_name == "drone":
        action_mode = ckpt["action_mode"]
        scaling = action_scaling(action_mode, env_cfg["nominal"])
        tasks = {t: w for t, w in drone_sim.parse_tasks(ckpt["tasks"]).items() if w > 0}
        dr = {"preset": tcfg["dr"], "config": env_cfg["dr"]}
        drone = {"source": tcfg.get("drone", ""), "params": env_cfg["nominal"]}
        course = env_cfg.get("course")
    else:  # an ocean regression game: discrete actions, no drone
        action_mode = "discrete"
        scaling = {"mode": "discrete", "num_actions": model.action_size,
                   "map": "the output is the index of the chosen action (int64)"}
        tasks, dr, drone, course = {env_name: 1.0}, {"preset": "none", "config": {}}, {"source": "", "params": {}}, None
    values: dict[str, Any] = {
        "format": FORMAT,
        "env": env_name,
        "obs_layout_version": int(ckpt.get("obs_version", 0)),
        "obs_size": model.obs_size,
        "action_mode": action_mode,
        "action_size": model.action_size,
        "action_output": "argmax" if model.discrete else "clamped_mean",
        "action_scaling": scaling,
        "control_hz": float(ckpt["control_hz"]),
        "physics_hz": float(ckpt["physics_hz"]),
        "tasks": tasks,
        "domain_randomization": dr,
        "drone_params": drone,
        "course": course,
        "obs_normalization": {"in_graph": True, "clip": norm.clip,
                              "mean": norm.mean.tolist(), "std": torch.sqrt(norm.var + norm.eps).tolist(),
                              "formula": "clip((obs - mean) / std, -clip, clip)"},
        "model_config": model.config,
        "training_steps": int(ckpt["global_step"]),
        "project_version": str(ckpt.get("project_version", "unknown")),
        "recurrent": model.is_lstm,
        "state_size": model.hidden if model.is_lstm else 0,
        "exporter": f"torch {torch.__version__} TorchScript ONNX exporter, opset {opset}, "
                    f"drone-export {drone_sim.__version__}",
    }
    out = {}
    for key, kind in METADATA_KEYS.items():
        v = values[key]
        out[key] = (json.dumps(v, default=list) if kind == "json" else ("true" if v else "false") if kind == "bool"
                    else repr(v) if kind == "float" else str(v))
    return out


def _to_onnx_bytes(model: ActorCritic, opset: int) -> bytes:
    batch = 2  # a batch of 2 traces the batch dimension as a variable, never the constant 1
    obs = torch.zeros(batch, model.obs_size)
    if model.is_lstm:
        module: nn.Module = _LstmActor(model).eval()
        h = torch.zeros(batch, model.hidden)
        args: tuple = (obs, h, h.clone())
        inputs, outputs = [OBS, H_IN, C_IN], [ACTION, H_OUT, C_OUT]
    else:
        module, args = _MlpActor(model).eval(), (obs,)
        inputs, outputs = [OBS], [ACTION]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # the legacy exporter announces its deprecation, and warns about LSTM batch sizes that only matter
        # when the initial state is not an input (here it is)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # nn.LSTM's shape checks, traced once
        torch.onnx.export(module, args, buf, input_names=inputs, output_names=outputs, opset_version=opset,
                          dynamic_axes={name: {0: "batch"} for name in inputs + outputs},
                          do_constant_folding=True, **_LEGACY)
    return buf.getvalue()


def _parity(model: ActorCritic, path: Path, n: int = 256) -> float:
    """Max abs difference between onnxruntime and torch on observations spread around the normalizer's
    statistics (some beyond its clip) and, for an LSTM, random states."""
    g = np.random.default_rng(0)
    std = torch.sqrt(model.norm.var + model.norm.eps).numpy()
    obs = (model.norm.mean.numpy() + std * g.normal(0.0, 3.0, (n, model.obs_size))).astype(np.float32)
    sess = OnnxPolicy(path, obs_layout_version=None, obs_size=None, env=None).session
    feeds = {OBS: obs}
    with torch.inference_mode():
        if model.is_lstm:
            h = g.uniform(-1, 1, (n, model.hidden)).astype(np.float32)
            c = g.uniform(-2, 2, (n, model.hidden)).astype(np.float32)
            feeds.update({H_IN: h, C_IN: c})
            out, _, (th, tc) = model(torch.from_numpy(obs), (torch.from_numpy(h)[None], torch.from_numpy(c)[None]))
            ref = [model.deterministic(out).numpy(), th[0].numpy(), tc[0].numpy()]
        else:
            out, _, _ = model(torch.from_numpy(obs))
            ref = [model.deterministic(out).numpy()]
    got = sess.run(None, feeds)
    return max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) for a, b in zip(got, ref))


def export_onnx(checkpoint_path: str | Path, out_path: str | Path, *, opset: int = OPSET) -> dict[str, str]:
    """Export a drone-train checkpoint's deterministic actor to out_path; returns the metadata written.

    The file is checked (onnx.checker, then onnxruntime against torch) before it replaces out_path, so a
    failed export never leaves a half-written or wrong policy where deploy would pick it up.
    """
    import onnx

    try:
        model, ckpt = load_policy(checkpoint_path)
    except CheckpointError as exc:
        raise ExportError(str(exc)) from None
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset {opset}: choose between {MIN_OPSET} and {MAX_OPSET} (the legacy exporter's range "
                          f"that carries this graph)")
    out = Path(out_path)
    if out.suffix.lower() != ".onnx":
        raise ExportError(f"{out}: the output file should end in .onnx")
    meta = build_metadata(model, ckpt, opset)
    try:
        model_proto = onnx.load_from_string(_to_onnx_bytes(model, opset))
        del model_proto.metadata_props[:]
        for key, value in meta.items():
            model_proto.metadata_props.add(key=key, value=value)
        model_proto.graph.name = "drone_policy"
        model_proto.doc_string = (f"Deterministic actor of {Path(checkpoint_path).name} for {meta['env']} "
                                  f"({meta['action_mode']}); see metadata_props.")
        onnx.checker.check_model(model_proto, full_check=True)
    except (torch.onnx.errors.OnnxExporterError, onnx.checker.ValidationError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{checkpoint_path}: ONNX export failed (opset {opset}): {first}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    try:
        onnx.save(model_proto, tmp)
        try:
            diff = _parity(model, tmp)
        except OnnxPolicyError as exc:
            raise ExportError(f"{out}: the exported graph does not load in onnxruntime: {exc}") from None
        if not diff <= PARITY_TOLERANCE:
            raise ExportError(f"{out}: onnxruntime and torch disagree by {diff:.3g} (> {PARITY_TOLERANCE:g}); "
                              f"not written")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return meta


def main(argv: list[str] | None = None) -> int:
    """drone-export CHECKPOINT [-o policy.onnx]"""
    p = argparse.ArgumentParser(prog="drone-export",
                                description="Export a trained policy's deterministic actor to ONNX (with its "
                                            "observation normalization and deploy metadata).")
    p.add_argument("checkpoint", help="a model.pt or checkpoints/latest.pt written by drone-train")
    p.add_argument("-o", "--out", metavar="POLICY.onnx", help="output file (default: the checkpoint's name, .onnx)")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset, {MIN_OPSET} to {MAX_OPSET} (default {OPSET})")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(".onnx")
    try:
        meta = export_onnx(args.checkpoint, out, opset=args.opset)
    except ExportError as exc:
        p.error(str(exc))
    kind = f"LSTM ({meta['state_size']} state)" if meta["recurrent"] == "true" else "MLP"
    print(f"drone-export: wrote {out} ({out.stat().st_size / 1024:.0f} KiB): {kind}, {meta['env']} "
          f"{meta['action_mode']} actions, observation layout v{meta['obs_layout_version']} ({meta['obs_size']} "
          f"values), {float(meta['control_hz']):g} Hz, {int(meta['training_steps']):,} training steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
