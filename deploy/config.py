"""What one deploy run is asked to do, and the safety limits it flies under.

Every threshold the safety layer uses lives in SafetyLimits with a default chosen for a first flight of
a small quadrotor indoors or in a netted area: a 5 m fence, 3 m ceiling, 60 deg tilt, 3 m/s. They are
deliberately conservative; the tilt limit leaves room for the 40-50 deg a trained policy banks on a 1 m
step, beyond 60 deg it is losing control. A user widens them on purpose (`--fence`, `--max-alt`,
`--safety KEY=VALUE`), never by accident. The names double as the log's and the UI's names for the triggers.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

RESPONSES = ("hold", "land", "return", "firmware")

# Every trigger the safety layer can raise, and what it does by default:
#   hold      the firmware's position hold (BRAKE / AUTO.LOITER) for hold_s, then land
#   land      the firmware's LAND where the vehicle is
#   return    position setpoints back to a point inside the fence (the firmware's position controller), then land
#   firmware  stop commanding and leave it to the flight controller's own failsafe (link loss, pilot override)
DEFAULT_RESPONSES: dict[str, str] = {
    "fence": "return",
    "altitude": "return",
    "tilt": "hold",
    "speed": "hold",
    "action_nonfinite": "hold",
    "action_range": "hold",
    "observation_nonfinite": "hold",
    "stale_telemetry": "hold",
    "link_lost": "firmware",
    "laptop_stalled": "firmware",
    "deadline": "hold",
    "battery": "land",
    "exception": "hold",
    "mode_changed": "firmware",
    "flight_time": "land",
}


class ConfigError(ValueError):
    """A setting that cannot be flown; the message names it."""


@dataclasses.dataclass
class SafetyLimits:
    """Thresholds of the safety layer. Distances in metres, angles in degrees (user-facing), times in seconds."""

    fence_radius_m: float = 5.0        # horizontal distance from home (the takeoff point)
    max_alt_m: float = 3.0             # height above home
    fence_margin_m: float = 0.5        # a return flies this far back inside the fence; targets keep this clear
    min_target_alt_m: float = 0.3      # targets lower than this above home are refused
    max_tilt_deg: float = 60.0         # angle between body z and world z (trained policies bank 40-50 deg on a 1 m step)
    max_speed_mps: float = 3.0         # norm of the velocity estimate
    stale_after_s: float = 0.25        # attitude or position telemetry older than this: stale
    link_lost_after_s: float = 1.0     # nothing from the vehicle for this long: link lost, the firmware is in charge
    action_tolerance: float = 1e-3     # an action component beyond 1 + this is out of range
    max_consecutive_misses: int = 25   # control deadlines missed in a row (0.5 s at 50 Hz): the laptop stalled
    hold_s: float = 2.0                # hold response: firmware position hold this long before landing
    return_timeout_s: float = 15.0     # return response: land after this even if the return point is not reached
    min_battery_remaining: float = 0.3  # preflight: refuse below this charge fraction (when the vehicle reports it)
    min_cell_voltage: float = 3.6      # preflight: refuse below this per-cell voltage (cells estimated from 4.25 V/cell)
    land_battery_remaining: float = 0.15  # in flight: land below this
    land_cell_voltage: float = 3.3     # in flight: land below this (under load)
    max_takeoff_tilt_deg: float = 15.0  # preflight: the vehicle must stand roughly level
    max_flight_s: float = 0.0          # land after this long under policy control (0: no limit)
    responses: dict[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_RESPONSES))

    def validate(self) -> "SafetyLimits":
        positive = ("fence_radius_m", "max_alt_m", "max_tilt_deg", "max_speed_mps", "stale_after_s",
                    "link_lost_after_s", "hold_s", "return_timeout_s")
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"safety limit {name} must be a positive number, got {v!r}")
        for name in ("fence_margin_m", "min_target_alt_m", "action_tolerance", "min_battery_remaining", "min_cell_voltage",
                     "land_battery_remaining", "land_cell_voltage", "max_takeoff_tilt_deg", "max_flight_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"safety limit {name} must be a number >= 0, got {v!r}")
        if self.max_tilt_deg >= 90:
            raise ConfigError(f"safety limit max_tilt_deg must be below 90, got {self.max_tilt_deg}")
        if self.fence_margin_m >= self.fence_radius_m:
            raise ConfigError(f"fence margin {self.fence_margin_m} m must be smaller than the fence radius "
                              f"{self.fence_radius_m} m")
        if self.min_target_alt_m >= self.max_alt_m - self.fence_margin_m:
            raise ConfigError(f"the ceiling --max-alt {self.max_alt_m} m leaves no room for targets above "
                              f"{self.min_target_alt_m} m with a {self.fence_margin_m} m margin")
        if self.stale_after_s >= self.link_lost_after_s:
            raise ConfigError("stale_after_s must be shorter than link_lost_after_s")
        if self.max_consecutive_misses < 1:
            raise ConfigError("max_consecutive_misses must be at least 1")
        for trigger, response in self.responses.items():
            if trigger not in DEFAULT_RESPONSES:
                raise ConfigError(f"unknown safety trigger {trigger!r}; known: {', '.join(DEFAULT_RESPONSES)}")
            if response not in RESPONSES:
                raise ConfigError(f"safety response for {trigger} must be one of {', '.join(RESPONSES)}, got "
                                  f"{response!r}")
        return self

    def set(self, key: str, value: str) -> None:
        """`--safety KEY=VALUE`: a threshold by its field name, or `response.TRIGGER=hold|land|return|firmware`."""
        if key.startswith("response."):
            self.responses[key[len("response."):]] = value.strip().lower()
            return
        fields = {f.name: f for f in dataclasses.fields(self) if f.name != "responses"}
        if key not in fields:
            raise ConfigError(f"unknown safety setting {key!r}; known: {', '.join(fields)}, response.TRIGGER")
        try:
            num = float(value)
        except ValueError:
            raise ConfigError(f"safety setting {key}: {value!r} is not a number") from None
        setattr(self, key, int(num) if fields[key].type in ("int", int) else num)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DeployConfig:
    """One drone-deploy run (the CLI fills it; tests and the UI build it directly)."""

    port: str = "/dev/ttyUSB0"
    baud: int = 57600
    policy: str | None = None          # None: the shipped pretrained policy
    task: str = "hover"
    targets: list[tuple[float, float, float]] = dataclasses.field(default_factory=list)
    course: str | None = None
    rate_hz: float | None = None       # None: the policy's control rate
    frame: str = "auto"                # auto | home | local | relative (see targets.py)
    dry_run: bool = False
    log_dir: str = "flight-logs"
    takeoff_alt_m: float = 1.0
    hold_at_target_s: float = 5.0      # a mission moves on after this long within tolerance of a target
    target_tolerance_m: float = 0.3
    then: str | None = None            # after the last target: stay (hold it) | land; None: land after a
                                       # mission of several targets, stay with one target or none
    duration_s: float | None = None    # dry run: how long to run (default 10 s); flight: land after this long
    lockstep: bool = False             # pace the loop by the vehicle's telemetry (drone-sim-vehicle --lockstep)
    telemetry_latency_s: float = 0.0   # delay model: age of telemetry when it arrives
    command_latency_s: float = 0.0     # delay model: time from sending a command to the vehicle acting on it
    drone: str | None = None           # drone params JSON for the simulator's prediction (default: the policy's)
    signing_key: str | None = None
    connect_timeout_s: float = 10.0
    preflight_window_s: float = 1.0    # telemetry rates are measured over this window
    preflight_timeout_s: float = 5.0   # how long preflight waits for the estimator to become ready
    cells: int | None = None           # battery cells (None: estimated from the voltage)
    onnx_threads: int = 1
    realtime: bool = False             # SCHED_FIFO priority for the process (--realtime)
    allow_rate_mismatch: bool = False  # benchmarks only: fly --rate although the policy was trained at another
    landing_timeout_s: float = 60.0    # how long to wait for the firmware to land and disarm
    takeoff_timeout_s: float = 20.0    # how long the climb to the takeoff altitude may take
    handover_tolerance_m: float = 0.5  # horizontal offset from the takeoff point the policy may take over at
    limits: SafetyLimits = dataclasses.field(default_factory=SafetyLimits)

    def validate(self) -> "DeployConfig":
        self.limits.validate()
        if self.rate_hz is not None and not (math.isfinite(self.rate_hz) and 1.0 <= self.rate_hz <= 1000.0):
            raise ConfigError(f"--rate must be between 1 and 1000 Hz, got {self.rate_hz}")
        if self.frame not in ("auto", "home", "local", "relative"):
            raise ConfigError(f"--frame must be auto, home, local or relative, got {self.frame!r}")
        if self.then not in (None, "stay", "land"):
            raise ConfigError(f"--then must be stay or land, got {self.then!r}")
        if not (0.2 <= self.takeoff_alt_m <= self.limits.max_alt_m - 0.1):
            raise ConfigError(f"takeoff altitude {self.takeoff_alt_m:g} m must be between 0.2 m and "
                              f"{self.limits.max_alt_m - 0.1:g} m (below the ceiling --max-alt)")
        for lat in (self.telemetry_latency_s, self.command_latency_s):
            if not (math.isfinite(lat) and 0.0 <= lat <= 0.5):
                raise ConfigError(f"latencies of the delay model must be within 0..0.5 s, got {lat}")
        if self.lockstep and (self.telemetry_latency_s or self.command_latency_s):
            raise ConfigError("the delay model runs on the wall clock, and a --lockstep vehicle's clock is not "
                              "the wall clock: leave --telemetry-latency-ms / --command-latency-ms at 0 with --lockstep")
        if self.duration_s is not None and not (self.duration_s > 0):
            raise ConfigError(f"--duration must be positive, got {self.duration_s}")
        if not (0.05 <= self.handover_tolerance_m <= self.limits.fence_radius_m):
            raise ConfigError(f"--handover-tolerance must be between 0.05 m and the fence radius, "
                              f"got {self.handover_tolerance_m}")
        if not (math.isfinite(self.landing_timeout_s) and self.landing_timeout_s > 0):
            raise ConfigError(f"--landing-timeout must be positive, got {self.landing_timeout_s}")
        if self.hold_at_target_s < 0 or self.target_tolerance_m <= 0:
            raise ConfigError("--hold must be >= 0 and --tolerance > 0")
        return self


def parse_vec3(text: str, what: str = "--target") -> tuple[float, float, float]:
    """'x,y,z' -> a finite 3-tuple; ConfigError naming the option otherwise."""
    parts = [p for p in text.replace(" ", "").split(",") if p != ""]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{what} {text!r}: expected three numbers x,y,z") from None
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{what} {text!r}: expected three finite numbers x,y,z")
    return values  # type: ignore[return-value]


DEFAULT_POLICY = "hover_ctbr.onnx"      # the shipped hover/goto/follow ctbr policy (policies/pretrained/hover_ctbr.md)
SWARM_POLICY = "swarm_ctbr.onnx"        # the shipped policy trained on small formations (policies/pretrained/swarm_ctbr.md)


def default_policy_path(swarm: bool = False) -> Path:
    """The shipped pretrained policy drone-deploy flies without --policy (a ctbr policy at 50 Hz trained on
    hover, goto and follow; multitask_ctbr.onnx beside it flies every task, --policy to choose it), or with
    `swarm` the one drone-deploy --swarm flies (a hover policy was never trained to keep off its neighbours)."""
    import policies

    return Path(policies.__file__).resolve().parent / "pretrained" / (SWARM_POLICY if swarm else DEFAULT_POLICY)


def vec_list(v: Sequence[float], digits: int = 5) -> list[float]:
    """A vector as a JSON-ready list rounded to `digits` decimals (keeps the flight log compact). numpy rounds
    the whole vector at once: the per-element round() this replaced was a third of a swarm tick's CPU, spent
    on the observations written to the logs."""
    return np.round(np.asarray(v, dtype=np.float64), digits).tolist()
