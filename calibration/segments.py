"""From a run to fit inputs: constant-throttle segments, re-tare at rest, steady-state points.

Segments are maximal runs of one commanded throttle. The same code serves our recordings and
RCbenchmark logs, which is why nothing here relies on our plan's phase labels.

Re-tare: load cells drift (temperature, creep), so the zero recorded by `drone-calibrate scale` is
refreshed from every stretch where the motor is at rest (our plan starts and ends with one) and drift
between them is interpolated linearly in time.

Steady points: the tail of each segment after `settle` seconds; mean of the fresh readings after robust
outlier rejection (median +- 4 x 1.4826 MAD), with the standard error of that mean. Rejected readings
are counted, so a vibration spike or an HX711 glitch costs one reading, never a biased point.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .rundata import RunData


@dataclasses.dataclass
class Segment:
    i0: int
    i1: int                 # exclusive
    throttle: float
    t_start: float
    t_end: float            # time of the first sample of the next segment (or the last sample)

    @property
    def duration(self) -> float:
        return self.t_end - self.t_start


@dataclasses.dataclass
class RobustMean:
    value: float
    se: float
    n: int
    rejected: int


@dataclasses.dataclass
class SteadyPoint:
    throttle: float
    t0: float
    t1: float
    speed: RobustMean | None
    thrust: RobustMean | None
    torque: RobustMean | None
    voltage: float
    current: float


def split_segments(run: RunData, tol: float = 1e-4) -> list[Segment]:
    thr = run.throttle
    if len(thr) == 0:
        return []
    change = np.flatnonzero(np.abs(np.diff(thr)) > tol) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(thr)]])
    out = []
    for a, b in zip(starts, ends):
        t_end = run.t[b] if b < len(thr) else run.t[b - 1]
        out.append(Segment(int(a), int(b), float(np.median(thr[a:b])), float(run.t[a]), float(t_end)))
    return out


def robust_mean(x: np.ndarray, k: float = 4.0, min_n: int = 3) -> RobustMean | None:
    x = x[np.isfinite(x)]
    if len(x) < min_n:
        return None
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    scale = max(mad, 1e-12 * max(1.0, abs(med)))
    keep = np.abs(x - med) <= k * scale
    if mad == 0:
        keep = np.ones_like(x, dtype=bool)
    y = x[keep]
    se = float(np.std(y, ddof=1) / np.sqrt(len(y))) if len(y) > 1 else float("inf")
    return RobustMean(float(np.mean(y)), se, int(len(y)), int(len(x) - len(y)))


def _window(run: RunData, seg: Segment, settle: float) -> np.ndarray:
    t = run.t[seg.i0:seg.i1]
    return (t >= seg.t_start + settle) & (t < seg.t_end - 1e-9)


def rest_mask(run: RunData, segments: list[Segment], settle: float) -> list[tuple[Segment, np.ndarray]]:
    """Segments where the motor is at rest (throttle 0, or speed below 2 % of the run's maximum)."""
    vmax = np.nanmax(run.speed) if run.has_speed else np.nan
    out = []
    for seg in segments:
        sl = slice(seg.i0, seg.i1)
        w = _window(run, seg, settle)
        if run.has_speed and np.isfinite(vmax) and vmax > 0:
            sp = run.speed[sl]
            still = np.where(np.isfinite(sp), sp < 0.02 * vmax, seg.throttle <= 1e-4)
            m = w & still
            if seg.throttle <= 0.15 and m.sum() >= 3:
                out.append((seg, m))
        elif seg.throttle <= 1e-4 and w.sum() >= 3:
            out.append((seg, w))
    return out


def retare(run: RunData, segments: list[Segment], settle: float) -> dict:
    """Subtract the at-rest zero of thrust and torque (interpolated in time); returns what was done."""
    info: dict = {}
    rests = rest_mask(run, segments, settle)
    for name in ("thrust", "torque"):
        values = getattr(run, name)
        fresh = getattr(run, f"fresh_{name}")
        ts, zs = [], []
        for seg, m in rests:
            sl = slice(seg.i0, seg.i1)
            rm = robust_mean(values[sl][m & fresh[sl]])
            if rm is not None:
                ts.append(float(np.mean(run.t[sl][m])))
                zs.append(rm.value)
        if not ts:
            info[name] = {"rest_segments": 0}
            continue
        zero = np.interp(run.t, ts, zs)
        values -= zero
        info[name] = {"rest_segments": len(ts), "zero_first": zs[0], "zero_last": zs[-1],
                      "drift_per_s": (zs[-1] - zs[0]) / (ts[-1] - ts[0]) if len(ts) > 1 and ts[-1] > ts[0] else 0.0}
    return info


def steady_points(run: RunData, segments: list[Segment], settle: float, min_samples: int = 5) -> list[SteadyPoint]:
    """One point per segment long enough to average after `settle` seconds."""
    out = []
    for seg in segments:
        sl = slice(seg.i0, seg.i1)
        w = _window(run, seg, settle)
        if w.sum() < min_samples:
            continue

        def mean(name: str) -> RobustMean | None:
            values = getattr(run, name)[sl]
            fresh = getattr(run, f"fresh_{name}")[sl]
            return robust_mean(values[w & fresh], min_n=min_samples)

        thrust = mean("thrust")
        if thrust is None:
            continue
        v, c = run.voltage[sl][w], run.current[sl][w]
        out.append(SteadyPoint(seg.throttle, float(run.t[sl][w][0]), float(run.t[sl][w][-1]), mean("speed"), thrust,
                               mean("torque"), float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan"),
                               float(np.nanmedian(c)) if np.isfinite(c).any() else float("nan")))
    return out
