"""A policy exported by drone-export, run with onnxruntime: what deploy flies and what drone-eval --onnx checks.

This module imports neither torch nor onnx: the laptop that flies the drone needs only onnxruntime and
numpy here, and starting without torch saves seconds and hundreds of MB.

The file's metadata is checked before anything runs, because a policy whose observation layout, action
mode or input size differs from what the caller is about to feed it would still produce numbers, just
meaningless ones; refusing it with the reason is the only safe outcome.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np

import drone_sim

FORMAT = "drone-policy-onnx/1"

# graph input and output names (the LSTM state is (batch, state_size) float32, zeros at an episode start)
OBS, H_IN, C_IN = "obs", "h", "c"
ACTION, H_OUT, C_OUT = "action", "h_out", "c_out"

# every metadata key drone-export writes and how to read it back (metadata_props are strings)
METADATA_KEYS: dict[str, str] = {
    "format": "str",               # FORMAT
    "env": "str",                  # 'drone', or the ocean regression env the policy plays
    "obs_layout_version": "int",   # drone_sim.OBS_VERSION the policy was trained with (0 for ocean envs)
    "obs_size": "int",
    "action_mode": "str",          # rpm / ctbr; 'discrete' for ocean envs
    "action_size": "int",          # values per action (continuous) or number of actions (discrete)
    "action_output": "str",        # 'clamped_mean' (float32 in [-1, 1]) or 'argmax' (int64 action index)
    "action_scaling": "json",      # what [-1, 1] means per action dimension on the trained nominal drone
    "control_hz": "float",
    "physics_hz": "float",
    "tasks": "json",               # {task: weight}
    "domain_randomization": "json",  # {"preset": name, "config": the ranges sampled per episode}
    "drone_params": "json",        # {"source": params file or "", "params": the nominal drone}
    "course": "json",              # the race course trained on, or null (generated courses)
    "obs_normalization": "json",   # {"in_graph": true, mean, std, clip}: the caller feeds raw observations
    "model_config": "json",
    "training_steps": "int",
    "project_version": "str",
    "recurrent": "bool",
    "state_size": "int",           # LSTM hidden size (0 for an MLP)
    "exporter": "str",
}


class OnnxPolicyError(ValueError):
    """An ONNX policy file that cannot be used as asked; the message names the file and the problem."""


def _decode(path: Path, key: str, kind: str, text: str) -> Any:
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            if text not in ("true", "false"):
                raise ValueError(text)
            return text == "true"
        if kind == "json":
            return json.loads(text)
        return text
    except ValueError:
        raise OnnxPolicyError(f"{path}: metadata {key!r} should be {kind}, got {text[:80]!r}") from None


def _load_session(path: Path, threads: int):
    import onnxruntime as ort

    if not path.is_file():
        raise OnnxPolicyError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise OnnxPolicyError(f"{path}: empty file, not an ONNX model")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: a bad file is reported by the exception below
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for every kind of bad file
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "INVALID_PROTOBUF" in msg or "Protobuf parsing failed" in msg:
            raise OnnxPolicyError(f"{path}: not an ONNX model, or a truncated one (protobuf parsing failed)") from None
        raise OnnxPolicyError(f"{path}: onnxruntime cannot load it (not an ONNX policy, or an incomplete file): "
                              f"{msg[:300]}") from None


def read_metadata(session, path: Path) -> dict[str, Any]:
    """The decoded drone-export metadata of a loaded session; OnnxPolicyError when it is not ours."""
    raw = session.get_modelmeta().custom_metadata_map
    if "format" not in raw:
        raise OnnxPolicyError(f"{path}: ONNX model without drone-policy metadata (not written by drone-export?); "
                              f"its metadata keys: {', '.join(sorted(raw)) or 'none'}")
    if raw["format"] != FORMAT:
        raise OnnxPolicyError(f"{path}: metadata format {raw['format']!r}, this runtime reads {FORMAT!r}")
    missing = [k for k in METADATA_KEYS if k not in raw]
    if missing:
        raise OnnxPolicyError(f"{path}: metadata is missing {', '.join(missing)}")
    return {k: _decode(path, k, kind, raw[k]) for k, kind in METADATA_KEYS.items()}


class OnnxPolicy:
    """obs -> deterministic action through onnxruntime, carrying an LSTM policy's state between calls.

    The keyword arguments state what the caller is about to do with the policy; any disagreement with the
    file's metadata raises OnnxPolicyError. The defaults expect a drone policy whose observation layout is
    the one this simulator build produces (deploy builds observations with the same C code); pass None to
    skip a check. action_mode and control_hz are only checked when given.

    One step: obs (obs_size,) -> action (action_size,). A batch: (B, obs_size) -> (B, action_size); an
    LSTM policy then keeps B states, and reset(mask) zeroes those whose episode ended. The object is also
    a drone_sim.view actor (name, __call__, reset) and an evaluate_task policy (episode_ended).
    """

    def __init__(self, path: str | Path, *, action_mode: str | None = None,
                 obs_layout_version: int | None = drone_sim.OBS_VERSION, obs_size: int | None = drone_sim.OBS_SIZE,
                 env: str | None = "drone", control_hz: float | None = None, threads: int = 1,
                 name: str | None = None):
        self.path = Path(path)
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self._session = _load_session(self.path, threads)
        self.metadata = read_metadata(self._session, self.path)
        self._check_expectations(action_mode, obs_layout_version, obs_size, env, control_hz)
        self._check_graph()
        m = self.metadata
        self.obs_size: int = m["obs_size"]
        self.action_size: int = m["action_size"]
        self.action_mode: str = m["action_mode"]
        self.control_hz: float = m["control_hz"]
        self.recurrent: bool = m["recurrent"]
        self.state_size: int = m["state_size"]
        self.discrete: bool = m["action_output"] == "argmax"
        self.name = name or f"onnx {self.path.name}"
        self._outputs = [ACTION, H_OUT, C_OUT] if self.recurrent else [ACTION]
        self._h: np.ndarray | None = None
        self._c: np.ndarray | None = None

    # -- validation ---------------------------------------------------------------------------------
    def _check_expectations(self, action_mode, obs_layout_version, obs_size, env, control_hz) -> None:
        m, p = self.metadata, self.path
        if env is not None and m["env"] != env:
            raise OnnxPolicyError(f"{p}: a policy for env {m['env']!r}, expected {env!r}")
        if obs_layout_version is not None and m["obs_layout_version"] != obs_layout_version:
            raise OnnxPolicyError(f"{p}: trained on observation layout version {m['obs_layout_version']}, "
                                  f"expected version {obs_layout_version}")
        if obs_size is not None and m["obs_size"] != obs_size:
            raise OnnxPolicyError(f"{p}: takes {m['obs_size']} observation values, expected {obs_size}")
        if action_mode is not None and m["action_mode"] != action_mode:
            raise OnnxPolicyError(f"{p}: commands {m['action_mode']!r} actions, expected action mode {action_mode!r}")
        if control_hz is not None and abs(m["control_hz"] - control_hz) > 1e-6 * control_hz:
            raise OnnxPolicyError(f"{p}: trained at a control rate of {m['control_hz']:g} Hz, "
                                  f"expected {control_hz:g} Hz")

    def _check_graph(self) -> None:
        """The graph must match its own metadata: a file whose metadata was copied onto another model
        (or edited) would otherwise fail only at the first step, or not at all."""
        m, p = self.metadata, self.path
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        want_in = [OBS, H_IN, C_IN] if m["recurrent"] else [OBS]
        want_out = [ACTION, H_OUT, C_OUT] if m["recurrent"] else [ACTION]
        if sorted(inputs) != sorted(want_in) or not set(want_out) <= outputs:
            raise OnnxPolicyError(f"{p}: graph inputs {sorted(inputs)} / outputs {sorted(outputs)}, expected "
                                  f"{want_in} / {want_out} for a {'recurrent' if m['recurrent'] else 'feed-forward'} "
                                  f"policy")
        sizes = {OBS: m["obs_size"], H_IN: m["state_size"], C_IN: m["state_size"]}
        for name in want_in:
            shape = inputs[name].shape
            if len(shape) != 2 or shape[1] != sizes[name]:
                raise OnnxPolicyError(f"{p}: graph input {name!r} has shape {shape}, its metadata says "
                                      f"(batch, {sizes[name]})")
            if inputs[name].type != "tensor(float)":
                raise OnnxPolicyError(f"{p}: graph input {name!r} is {inputs[name].type}, expected tensor(float)")

    # -- running ------------------------------------------------------------------------------------
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action(s) for one observation (obs_size,) or a batch (B, obs_size)."""
        x = np.ascontiguousarray(obs, dtype=np.float32)
        single = x.ndim == 1
        if single:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self.obs_size:
            raise ValueError(f"{self.name}: observations must have shape ({self.obs_size},) or "
                             f"(batch, {self.obs_size}), got {np.shape(obs)}")
        if self.recurrent:
            b = x.shape[0]
            if self._h is None:
                self._h = np.zeros((b, self.state_size), np.float32)
                self._c = np.zeros((b, self.state_size), np.float32)
            elif self._h.shape[0] != b:
                raise ValueError(f"{self.name}: batch of {b} observations, but the recurrent state is for "
                                 f"{self._h.shape[0]}; reset() (all episodes) before changing the batch size")
            action, self._h, self._c = self._session.run(self._outputs, {OBS: x, H_IN: self._h, C_IN: self._c})
        else:
            action = self._session.run(self._outputs, {OBS: x})[0]
        return action[0] if single else action

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new episodes: all of them (mask None: the next call may use any batch size) or those where
        mask is true (the LSTM state of those agents is zeroed; other agents keep theirs)."""
        if mask is None:
            self._h = self._c = None
            return
        if self._h is None:
            return
        m = np.asarray(mask, dtype=bool).reshape(-1)
        if m.shape[0] != self._h.shape[0]:
            raise ValueError(f"{self.name}: reset mask has {m.shape[0]} entries for a state of {self._h.shape[0]}")
        self._h[m] = 0.0
        self._c[m] = 0.0

    def episode_ended(self, done: np.ndarray) -> None:
        """evaluate_task's hook: agents whose episode just ended start the next one from a zero state."""
        if self.recurrent:
            self.reset(done)

    @property
    def state(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The current LSTM state (h, c), each (B, state_size); None for an MLP or before the first call."""
        return None if self._h is None else (self._h, self._c)

    def clone(self, name: str | None = None) -> "OnnxPolicy":
        """Another policy on the same onnxruntime session (no reload), with its own fresh recurrent state."""
        other = copy.copy(self)
        other._h = other._c = None
        if name is not None:
            other.name = name
        return other

    # -- what the policy was trained to mean (typed reads of its metadata) ------------------------------
    @property
    def drone(self) -> dict[str, Any]:
        """The nominal drone the policy was trained around (a copy of the metadata's drone_params)."""
        d = self.metadata["drone_params"]
        params = d.get("params") if isinstance(d, dict) else None
        if not isinstance(params, dict):
            raise OnnxPolicyError(f"{self.path}: metadata drone_params has no params object")
        return copy.deepcopy(params)

    @property
    def max_rate(self) -> np.ndarray:
        """Body rates (rad/s, roll/pitch/yaw FLU) a ctbr action of 1 commanded in training.

        Files from drone-export carry it as action_scaling.max_rate; older ones only in the dims named
        roll_rate / pitch_rate / yaw_rate, which are read by those names."""
        if self.action_mode != "ctbr":
            raise OnnxPolicyError(f"{self.path}: a {self.action_mode!r} policy commands no body rates")
        scaling = self.metadata["action_scaling"]
        rates = scaling.get("max_rate") if isinstance(scaling, dict) else None
        if rates is None and isinstance(scaling, dict):
            by_name = {d.get("name"): d.get("high") for d in scaling.get("dims", []) if isinstance(d, dict)}
            rates = [by_name.get(n) for n in ("roll_rate", "pitch_rate", "yaw_rate")]
        try:
            out = np.asarray(rates, dtype=float)
        except (TypeError, ValueError):
            out = np.zeros(0)
        if out.shape != (3,) or not np.all(np.isfinite(out)) or not np.all(out > 0):
            raise OnnxPolicyError(f"{self.path}: metadata action_scaling gives no usable max_rate ({rates!r})")
        return out

    @property
    def hover_action(self) -> np.ndarray:
        """The action that hovers the nominal drone (what the simulator puts in last_action at a reset)."""
        scaling = self.metadata["action_scaling"]
        ha = scaling.get("hover_action") if isinstance(scaling, dict) else None
        if ha is None:
            return np.asarray(drone_sim.hover_action(self.drone, self.action_mode), dtype=np.float32)
        out = np.asarray(ha, dtype=np.float32)
        if out.shape != (self.action_size,) or not np.all(np.isfinite(out)):
            raise OnnxPolicyError(f"{self.path}: metadata action_scaling.hover_action {ha!r} is not "
                                  f"{self.action_size} finite values")
        return out

    @property
    def session(self):
        """The onnxruntime InferenceSession, for callers that bind buffers themselves."""
        return self._session
