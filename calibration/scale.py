"""`drone-calibrate scale`: tare and scale a load cell of the stand with a known mass.

The sketch streams raw HX711 counts; this turns them into newtons (thrust cell) or newton-metres
(torque cell, the mass hung on a lever arm of known length) and writes the stand calibration file
(standcal.py). Two readings, each the robust mean of a few seconds of fresh conversions: empty, then
loaded with the reference. The 1-sigma of the scale combines the two means' standard errors with the
stated tolerance of the reference mass (and of the lever length), so the fit can carry it into k_T and k_Q.
"""
from __future__ import annotations

import datetime
import math
from typing import Callable

import numpy as np

from .protocol import FLAG_THRUST, FLAG_TORQUE
from .segments import robust_mean
from .stand import StandPort
from .standcal import CellCal, G


class ScaleError(RuntimeError):
    """The scale procedure could not produce a trustworthy calibration; the message says why."""


def read_counts(port: StandPort, channel: str, seconds: float) -> tuple[float, float, int]:
    """Robust mean, its standard error and the count of fresh raw readings of one cell."""
    flag = FLAG_THRUST if channel == "thrust" else FLAG_TORQUE
    samples = port.collect(seconds)
    raw = np.array([getattr(s, f"{channel}_raw") for s in samples
                    if s.flags & flag and getattr(s, f"{channel}_raw") is not None], dtype=float)
    rm = robust_mean(raw, min_n=5)
    if rm is None:
        raise ScaleError(f"{port.path}: only {len(raw)} {channel}-cell readings in {seconds:g} s "
                         f"(is that cell fitted and wired? {port.stats.summary()})")
    return rm.value, rm.se, rm.n


def scale_cell(port: StandPort, channel: str, mass_kg: float, lever_m: float | None = None,
               mass_sigma_rel: float = 0.001, lever_sigma_m: float = 0.0005, seconds: float = 3.0,
               ask: Callable[[str], str] | None = None, out: Callable[[str], None] = print) -> CellCal:
    """Interactive two-point calibration of the thrust cell (lever None) or the torque cell."""
    ask = ask or input
    if channel not in ("thrust", "torque"):
        raise ValueError(f"channel must be thrust or torque, got {channel!r}")
    if not mass_kg > 0:
        raise ValueError(f"the reference mass must be positive, got {mass_kg}")
    if channel == "torque" and not (lever_m and lever_m > 0):
        raise ValueError("the torque cell needs --lever: the distance from the motor axis to where the mass hangs (m)")
    ask(f"Remove every load from the {channel} cell (motor still, nothing touching it), then press Enter: ")
    zero, zero_se, n0 = read_counts(port, channel, seconds)
    out(f"  empty: {zero:.1f} counts (+- {zero_se:.2f}, {n0} readings)")
    where = "on the thrust cell, pressing the way the thrust will" if channel == "thrust" else \
        f"on the torque arm, {lever_m:g} m from the motor axis"
    ask(f"Put the {mass_kg:g} kg reference mass {where}, wait until it is still, then press Enter: ")
    loaded, loaded_se, n1 = read_counts(port, channel, seconds)
    out(f"  loaded: {loaded:.1f} counts (+- {loaded_se:.2f}, {n1} readings)")
    load = mass_kg * G * (lever_m if channel == "torque" else 1.0)
    delta = loaded - zero
    noise = math.hypot(zero_se, loaded_se) * math.sqrt(min(n0, n1))
    if abs(delta) < 20 * max(noise, 1.0):
        raise ScaleError(f"the {channel} reading changed by only {delta:.1f} counts with the mass on "
                         f"(noise {noise:.1f}): is the mass on the cell, the cell wired to the HX711 (E+/E-/A+/A-)?")
    k = delta / load
    rel = math.sqrt((math.hypot(zero_se, loaded_se) / abs(delta)) ** 2 + mass_sigma_rel ** 2
                    + ((lever_sigma_m / lever_m) ** 2 if channel == "torque" else 0.0))
    ref = f"{mass_kg:g} kg at {G} m/s^2" + (f" on a {lever_m:g} m lever" if channel == "torque" else "")
    unit = "N" if channel == "thrust" else "N m"
    out(f"  {channel} cell: offset {zero:.1f} counts, {k:.6g} counts per {unit} (1-sigma {100 * rel:.2f} %)")
    return CellCal(zero, k, rel, ref, datetime.date.today().isoformat())
