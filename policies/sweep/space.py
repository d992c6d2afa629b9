"""The search space of a sweep: which TrainConfig fields vary, and how (log-uniform, uniform, int, categorical).

A space file is a TOML table of fields, one distribution each:

    [space]
    learning_rate = { log = [1e-4, 3e-3] }      # log-uniform between the bounds
    clip = { uniform = [0.1, 0.3] }
    horizon = { int = [16, 128], step = 16 }    # integers; `log = true` samples them log-uniformly
    hidden = { categorical = [32, 64, 128] }

Every field must be a TrainConfig field, every range ordered and inside what the field accepts; a mistake is
reported with the file, the line and the field, before any trial runs.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any

from ..config import TrainConfig

KINDS = ("log", "uniform", "int", "categorical")
# fields a sweep must not vary: they define the problem, not how it is solved, or are bookkeeping
NOT_SEARCHABLE = {"env", "tasks", "action_mode", "dr", "drone", "course", "physics_hz", "control_hz", "seed",
                  "total_steps", "device", "threads", "checkpoint_every", "log_every"}


class SpaceError(ValueError):
    """A search space that cannot be used; the message names the file, line and field."""


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    kind: str                  # one of KINDS
    low: float | None = None
    high: float | None = None
    step: int | None = None    # int only
    log: bool = False          # int only: sample log-uniformly
    choices: tuple = ()        # categorical only

    def suggest(self, trial) -> Any:
        if self.kind == "log":
            return trial.suggest_float(self.name, self.low, self.high, log=True)
        if self.kind == "uniform":
            return trial.suggest_float(self.name, self.low, self.high)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=self.step or 1, log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"{self.name}: one of {list(self.choices)}"
        extra = f", step {self.step}" if self.step else (", log" if self.log else "")
        return f"{self.name}: {self.kind} [{self.low:g}, {self.high:g}]{extra}"


# PPO and the model: ranges around the defaults wide enough to matter, narrow enough for a few dozen trials.
DEFAULT_SPACE: tuple[Param, ...] = (
    Param("learning_rate", "log", 1e-4, 5e-3),
    Param("horizon", "int", 8, 64, step=8),
    Param("epochs", "int", 1, 6),
    Param("minibatch_size", "categorical", choices=(2048, 4096, 8192, 16384, 32768)),
    Param("gamma", "uniform", 0.95, 0.995),
    Param("gae_lambda", "uniform", 0.8, 0.99),
    Param("clip", "uniform", 0.1, 0.3),
    Param("ent_coef", "log", 1e-5, 1e-2),
    Param("hidden", "categorical", choices=(32, 64, 128, 256)),
    Param("layers", "int", 1, 3),
    Param("init_log_std", "uniform", -1.5, 0.0),
    Param("num_envs", "categorical", choices=(8, 16, 32, 64)),
    Param("agents_per_env", "categorical", choices=(16, 32, 64, 128)),
)


def _fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in TrainConfig.fields()}


def _line_of(text: str, name: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if line.split("#", 1)[0].strip().startswith(f"{name} ") or line.strip().startswith(f"{name}="):
            return i
    return 0


def parse_param(name: str, spec: Any, where: str = "") -> Param:
    """One field's distribution; SpaceError naming `where` (file:line) and the field when it is unusable."""
    fields = _fields()

    def bad(msg: str) -> SpaceError:
        return SpaceError(f"{where}{name}: {msg}")

    if name not in fields:
        raise bad("not a training setting (drone-train --help lists them)")
    if name in NOT_SEARCHABLE:
        raise bad("defines the problem or the bookkeeping, not how it is solved: set it on the command line")
    if not isinstance(spec, dict):
        raise bad(f"expected a table like {{ log = [low, high] }}, got {spec!r}")
    kinds = [k for k in spec if k in KINDS and not (k == "log" and isinstance(spec[k], bool))]
    unknown = [k for k in spec if k not in KINDS + ("step",)]
    if unknown:
        raise bad(f"unknown key(s) {', '.join(unknown)}; a distribution is one of {', '.join(KINDS)}")
    if len(kinds) != 1:
        raise bad(f"give exactly one distribution ({', '.join(KINDS)}), got {kinds or 'none'}")
    kind = kinds[0]
    ftype = fields[name].type if isinstance(fields[name].type, str) else fields[name].type.__name__
    value = spec[kind]
    if kind == "categorical":
        if not isinstance(value, list) or not value:
            raise bad("categorical needs a non-empty list of values")
        default = getattr(TrainConfig(), name)
        for v in value:
            if type(v) is not type(default) and not (isinstance(default, float) and isinstance(v, int)):
                raise bad(f"value {v!r} is not a {ftype}")
        return Param(name, kind, choices=tuple(value))
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)):
        raise bad(f"{kind} needs [low, high], got {value!r}")
    low, high = float(value[0]), float(value[1])
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise bad(f"range [{value[0]}, {value[1]}] must be finite with low < high")
    if kind == "log" and low <= 0:
        raise bad(f"a log-uniform range needs low > 0, got {value[0]}")
    if kind == "int":
        if ftype != "int":
            raise bad(f"int distribution for a {ftype} setting")
        if low != int(low) or high != int(high):
            raise bad(f"int range needs integer bounds, got {value!r}")
        step = spec.get("step")
        if step is not None and (not isinstance(step, int) or step < 1):
            raise bad(f"step must be a positive integer, got {step!r}")
        return Param(name, kind, low, high, step=step, log=bool(spec.get("log", False)))
    if ftype != "float":
        raise bad(f"{kind} distribution for a {ftype} setting (use int or categorical)")
    if "step" in spec:
        raise bad("step applies to int distributions only")
    return Param(name, kind, low, high)


def load_space(path: str | Path) -> tuple[Param, ...]:
    """A space file (module docstring); SpaceError with file:line and the field on any mistake."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise SpaceError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpaceError(f"{p}: not valid TOML: {exc}") from None
    table = doc.get("space", doc)
    if not isinstance(table, dict) or not table:
        raise SpaceError(f"{p}: no fields; write a [space] table with one line per field")
    return tuple(parse_param(name, spec, f"{p}:{_line_of(text, name)}: ") for name, spec in table.items())


def default_space(env: str) -> tuple[Param, ...]:
    """DEFAULT_SPACE for the drone simulator; for an ocean game without the vector sizes (each game fixes how
    many agents share a board, policies/config.py OCEAN_DEFAULTS)."""
    if env == "drone":
        return DEFAULT_SPACE
    return tuple(p for p in DEFAULT_SPACE if p.name not in ("num_envs", "agents_per_env"))
