"""One thrust-stand run in memory, whatever file it came from: the fit only ever sees this.

Arrays are per sample, SI units; a channel the stand does not have is all NaN. The `fresh_*` masks say
which samples carry a new reading of that channel (our stand repeats the last HX711 conversion on the
lines between conversions; averaging repeats would overstate how many readings there were).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .protocol import LineStats

RPM_TO_RAD_S = 2.0 * math.pi / 60.0
# Standard gravity (m/s^2): what a kgf or gram-force is defined with, and what turns a reference mass into a
# force. The simulator's own g (drone_sim.GRAVITY, 9.81) is its world's, used for flight figures.
STANDARD_GRAVITY = 9.80665


class CalibrationDataError(ValueError):
    """A run file that cannot be fitted; the message names the file and the problem."""


@dataclasses.dataclass
class RunData:
    source: str
    format: str                     # "stand-run/1" or "rcbenchmark"
    t: np.ndarray                   # s, increasing
    throttle: np.ndarray            # commanded 0..1 (motor test fraction / ESC signal fraction)
    thrust: np.ndarray              # N (tared with the stand calibration; the fit re-tares at rest)
    torque: np.ndarray              # N m
    speed: np.ndarray               # rad/s
    voltage: np.ndarray             # V
    current: np.ndarray             # A
    fresh_thrust: np.ndarray
    fresh_torque: np.ndarray
    fresh_speed: np.ndarray
    stats: LineStats = dataclasses.field(default_factory=LineStats)
    meta: dict = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.t)

    @property
    def has_torque(self) -> bool:
        return bool(np.any(self.fresh_torque))

    @property
    def has_speed(self) -> bool:
        return bool(np.any(self.fresh_speed))

    def check(self) -> None:
        """Refuse a run the fit cannot use, saying why."""
        if len(self.t) == 0:
            raise CalibrationDataError(f"{self.source}: no usable samples ({self.stats.summary()})")
        if not np.any(self.fresh_thrust):
            raise CalibrationDataError(f"{self.source}: no thrust readings in {len(self.t)} samples")
        if not np.any(self.throttle > 0):
            raise CalibrationDataError(f"{self.source}: the motor was never commanded (throttle is 0 throughout)")


def from_columns(source: str, fmt: str, columns: dict[str, list], stats: LineStats, meta: dict | None = None,
                 fresh: dict[str, list] | None = None) -> RunData:
    """Build a RunData from per-sample lists (None/NaN for missing), sorted by time."""
    n = len(columns["t"])
    arr = {k: np.asarray([np.nan if v is None else v for v in columns.get(k, [None] * n)], dtype=float)
           for k in ("t", "throttle", "thrust", "torque", "speed", "voltage", "current")}
    fr = {}
    for k in ("thrust", "torque", "speed"):
        given = (fresh or {}).get(k)
        mask = np.isfinite(arr[k]) if given is None else (np.asarray(given, dtype=bool) & np.isfinite(arr[k]))
        fr[k] = mask
    order = np.argsort(arr["t"], kind="stable")
    return RunData(source, fmt, arr["t"][order], arr["throttle"][order], arr["thrust"][order], arr["torque"][order],
                   arr["speed"][order], arr["voltage"][order], arr["current"][order], fr["thrust"][order],
                   fr["torque"][order], fr["speed"][order], stats, meta or {})
