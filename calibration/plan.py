"""The throttle plan of a thrust-stand run: rest, a staircase up and down, repeated steps, rest.

- rest (motor stopped) at both ends: the fit re-tares the load cells there and interpolates drift;
- the staircase (levels evenly from min_throttle to the cap, up then down, each held `hold` s) gives the
  steady-state curves; going down as well shows hysteresis and heating as scatter instead of bias;
- steps between two throttles (each held `step_hold` s, repeated) give the rise and fall time constants
  from large, clean transitions (the staircase transitions are fitted too).
Every throttle is clipped to the cap; the cap itself is never above 1.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PlanSegment:
    phase: str          # rest | stair | step
    throttle: float     # 0..1
    duration: float     # s


def parse_steps(text: str) -> list[tuple[float, float]]:
    """'0.25:0.5,0.35:0.65' -> [(0.25, 0.5), (0.35, 0.65)]."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            lo, hi = (float(v) for v in part.split(":"))
        except ValueError:
            raise ValueError(f"step {part!r}: write LOW:HIGH throttles, e.g. 0.3:0.6") from None
        if not (0 < lo < hi <= 1):
            raise ValueError(f"step {part!r}: need 0 < LOW < HIGH <= 1")
        out.append((lo, hi))
    return out


def build_plan(max_throttle: float = 0.8, min_throttle: float = 0.1, levels: int = 10, hold: float = 2.0,
               steps: list[tuple[float, float]] | None = None, step_hold: float = 0.8, step_repeats: int = 3,
               rest: float = 1.0) -> list[PlanSegment]:
    if not 0 < max_throttle <= 1:
        raise ValueError(f"the throttle cap must be in (0, 1], got {max_throttle}")
    if not 0 < min_throttle < max_throttle:
        raise ValueError(f"the lowest level {min_throttle} must be above 0 and below the cap {max_throttle}")
    if levels < 2 or hold <= 0 or step_hold <= 0 or rest <= 0 or step_repeats < 0:
        raise ValueError("need at least 2 levels and positive hold, step-hold and rest times")
    plan = [PlanSegment("rest", 0.0, rest)]
    ladder = [min_throttle + (max_throttle - min_throttle) * k / (levels - 1) for k in range(levels)]
    for x in ladder + ladder[-2::-1]:
        plan.append(PlanSegment("stair", round(x, 4), hold))
    for lo, hi in steps or []:
        lo, hi = min(lo, max_throttle), min(hi, max_throttle)
        if hi - lo < 0.05:
            continue
        for _ in range(step_repeats):
            plan.append(PlanSegment("step", lo, step_hold))
            plan.append(PlanSegment("step", hi, step_hold))
        plan.append(PlanSegment("step", lo, step_hold))
    plan.append(PlanSegment("rest", 0.0, rest))
    assert all(0.0 <= s.throttle <= max_throttle + 1e-9 for s in plan)
    return plan


def plan_duration(plan: list[PlanSegment]) -> float:
    return sum(s.duration for s in plan)
