"""What a swarm flight is asked to do: the vehicles, the formation and the separation guard, on top of the
settings every drone-deploy run has (DeployConfig: policy, rate, takeoff height, safety limits, logs)."""
from __future__ import annotations

import dataclasses
import math

from ..config import ConfigError, DeployConfig


@dataclasses.dataclass
class SwarmConfig:
    deploy: DeployConfig                       # port is unused here: `ports` names the endpoints
    ports: list[str] = dataclasses.field(default_factory=list)
    sysids: list[int] | None = None            # one shared port: these system ids; None: every vehicle that answers
    formation: str = "line"                    # a swarm-task shape (drone_sim.FORMATIONS)
    formation_file: str | None = None          # or slots from a drone-formation/1 file
    spacing_m: float = 1.2                     # slot spacing (the swarm task trains with 1.2 m)
    yaw_deg: float = 0.0                       # heading of a line or grid (0: along east)
    orbit_omega: float = 0.3                   # orbit: rad/s round the centre
    min_separation_m: float = 0.5              # the separation guard's minimum (predicted closest approach)
    guard_horizon_s: float = 0.5
    guard_clear_s: float = 3.0                 # a held pair lands if it has not cleared after this
    discover_s: float = 3.0                    # one shared port without --sysids: how long to listen for vehicles
    transition_speed_mps: float = 0.5          # how fast a vehicle's target moves to its slot (formation.lead_targets)
    takeoff_gap_s: float = 0.5                 # between one vehicle's takeoff ending and the next one arming

    def validate(self) -> "SwarmConfig":
        self.deploy.task = "swarm"
        self.deploy.validate()
        if self.deploy.dry_run:
            raise ConfigError("--swarm has no dry run yet: fly it on simulated vehicles (drone-sim-vehicle --count N)")
        if self.deploy.lockstep:
            raise ConfigError("--swarm paces itself by the wall clock; --lockstep paces by one vehicle")
        if not self.ports:
            raise ConfigError("--swarm needs the vehicles' endpoints: repeat --port, or one --port with --sysids")
        if len(self.ports) > 1 and self.sysids is not None:
            raise ConfigError("--sysids picks vehicles on one shared --port; with several --port each endpoint "
                              "carries one vehicle")
        if self.sysids is not None:
            if len(self.sysids) < 1 or len(set(self.sysids)) != len(self.sysids):
                raise ConfigError(f"--sysids must name distinct system ids, got {self.sysids}")
            if any(not 1 <= s <= 254 for s in self.sysids):
                raise ConfigError(f"system ids are 1..254, got {self.sysids}")
        for name in ("spacing_m", "min_separation_m", "guard_clear_s", "discover_s", "transition_speed_mps"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be positive, got {v}")
        if self.min_separation_m >= self.spacing_m:
            raise ConfigError(f"the separation guard's minimum ({self.min_separation_m:g} m) must be below the "
                              f"formation spacing ({self.spacing_m:g} m), or the formation itself trips it")
        return self


def parse_sysids(text: str) -> list[int] | None:
    """'1-4', '1,3,5', '2-3,7' or 'all' (None) -> system ids."""
    text = text.strip().lower()
    if text in ("all", ""):
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.partition("-")
            if sep:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise ConfigError(f"--sysids {text!r}: expected ids and ranges like 1-4 or 1,3,5, or all") from None
    return out
