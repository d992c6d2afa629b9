"""deploy: fly an exported ONNX policy from a laptop over MAVLink, behind a safety layer, with flight logs.

    drone-deploy --port /dev/ttyUSB0 --target 1,0,1.5 --target 1,1,1.5     # preflight, arm, take off, fly, land
    drone-deploy --port /dev/pts/5 --dry-run                                # the whole loop, nothing armed or sent
    drone-replay flight-logs/flight-20260101-120000.jsonl                   # real vs simulated, loop timing, PNG

Modules: config (what a run is asked to do, safety limits), preflight (every reason not to fly),
flight (arm, take off, the control loop, responses, land), loop (one control tick), timing (fixed-rate
pacing, deadlines), estimate (state estimate, the simulator as predictor and delay model), observation
(the simulator's own C observation), command_map (action -> setpoint per firmware), safety (checks
that do not trust the policy), targets (navigation frame, fence, targets, missions), control (the
operator handle a UI holds), flightlog (append-only JSON lines), replay (drone-replay), cli (drone-deploy).
"""
from .config import ConfigError, DeployConfig, SafetyLimits, default_policy_path
from .control import FlightControl, Snapshot
from .flightlog import FlightLog, FlightLogError, read_log

__all__ = ["ConfigError", "DeployConfig", "FlightControl", "FlightLog", "FlightLogError", "SafetyLimits", "Snapshot",
           "default_policy_path", "read_log"]
