"""Preflight: every reason not to fly, checked before anything is armed, each refused with a clear message.

The checks, in order (a failed one is a refusal; a warning is printed and logged but does not stop):
  link          a vehicle heartbeat, a quadrotor, ArduPilot or PX4
  heartbeat     heartbeats keep coming (>= 0.5 Hz)
  telemetry     attitude and position at the rate the control loop needs (>= 0.8 x the control rate), fresh
  estimator     the flight controller's estimator is healthy and the position is finite; absolute or
                only relative position decides --frame auto
  battery       charge and per-cell voltage above the limits
  vehicle       disarmed, on the ground, standing level
  policy        the ONNX metadata matches this program (observation layout and size, env) and the flight
                (control rate, task), and the policy returns a finite in-range action here and now
  command path  the action mode can be flown on this firmware (ctbr: SET_ATTITUDE_TARGET with thrust
                semantics; rpm: actuator targets, PX4 <= 1.13 only)
  failsafes     the firmware's GCS-loss and setpoint-loss failsafes are enabled (deploy relies on them
                when the link goes)
  fence         a fence is defined (radius, ceiling), the vehicle is inside it and every target is inside
"""
from __future__ import annotations

import collections
import dataclasses
import math
import time
from typing import Any, Callable

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from firmware_bridge.modes import Firmware
from firmware_bridge.thrust import GUID_OPTIONS_THRUST_AS_THRUST, ThrustSemantics, thrust_semantics

from .command_map import UnsupportedCommandPath, check_command_path
from .config import DeployConfig
from .safety import estimate_cells

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclasses.dataclass
class Check:
    name: str
    status: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.status:>4}] {self.name:<13} {self.detail}"


class PreflightRefused(RuntimeError):
    """Preflight found a reason not to fly. str() lists every failed check."""

    def __init__(self, checks: list[Check]):
        self.checks = checks
        failed = [c for c in checks if c.status == FAIL]
        super().__init__("preflight refused:\n" + "\n".join(f"  - {c.name}: {c.detail}" for c in failed))


class TelemetryCounter:
    """Counts messages by type from the link's reader thread (for rates) and keeps the estimator flags."""

    def __init__(self):
        self.counts: collections.Counter = collections.Counter()
        self.ekf_flags: int | None = None
        self.ekf_kind: str = ""

    def __call__(self, msg) -> None:
        t = msg.get_type()
        self.counts[t] += 1
        if t in ("EKF_STATUS_REPORT", "ESTIMATOR_STATUS"):
            self.ekf_flags = int(msg.flags)
            self.ekf_kind = t

    def absolute_position(self) -> bool | None:
        """Does the estimator report an absolute horizontal position? None when it never said."""
        if self.ekf_flags is None:
            return None
        bit = mavlink.EKF_POS_HORIZ_ABS if self.ekf_kind == "EKF_STATUS_REPORT" else mavlink.ESTIMATOR_POS_HORIZ_ABS
        return bool(self.ekf_flags & bit)


@dataclasses.dataclass
class PreflightResult:
    checks: list[Check]
    frame: str                      # resolved navigation frame (home / local / relative)
    home_local: np.ndarray          # the takeoff point in the local ENU frame
    cells: int | None
    semantics: str
    command_path: str
    guid_options_to_set: int | None  # ArduPilot: GUID_OPTIONS value to write before flying (None: nothing)

    def table(self) -> str:
        return "\n".join(str(c) for c in self.checks)


# Waits for one PARAM_VALUE, doubling per try: a 57600-baud radio that also carries 50 Hz telemetry can take
# over a second to answer (the reply queues behind the streams), while a fast link answers the first.
PARAM_READ_TIMEOUTS = (0.4, 0.8, 1.6)
PARAM_ADVICE = ("no answer: a saturated link (lower the stream rates or raise the baud rate), another program "
                "holding the vehicle's parameter queue, or a parameter this firmware version does not have")


def read_param(link, name: str) -> float | None:
    """One parameter, or None when the vehicle does not answer within PARAM_READ_TIMEOUTS (2.8 s in all).
    ArduPilot does not answer a read of a name it does not have, so None also means 'no such parameter'."""
    for timeout in PARAM_READ_TIMEOUTS:
        try:
            return link.commands.get_param(name, timeout=timeout, retries=0)
        except Exception:
            continue
    return None


def read_renamed_param(link, names: tuple[str, ...]) -> tuple[str, float] | None:
    """The first of several names a parameter has had that the vehicle answers (newest name first)."""
    for name in names:
        value = read_param(link, name)
        if value is not None:
            return name, value
    return None


def gcs_sysid_names(version: tuple[int, int, int] | None) -> tuple[str, ...]:
    """ArduPilot 4.7 renamed SYSID_MYGCS to MAV_GCS_SYSID (ArduCopter Parameters.cpp conversion table);
    ask the name this version has first, then the other."""
    new_first = version is None or version >= (4, 7, 0)
    return ("MAV_GCS_SYSID", "SYSID_MYGCS") if new_first else ("SYSID_MYGCS", "MAV_GCS_SYSID")



def run_preflight(link, counter: TelemetryCounter, policy, config: DeployConfig, *,
                  check_targets: Callable[[np.ndarray, str], list[str]],
                  first_action: Callable[[np.ndarray, str], np.ndarray],
                  hover_thrust: float | None = None,
                  say: Callable[[str], None] = lambda s: None) -> PreflightResult:
    """Run every check; raise PreflightRefused listing the failures, or return what the flight needs.

    check_targets(home_local, frame) -> problems with the fence or targets; first_action(home_local,
    frame) -> the policy's action for the vehicle as it stands (both supplied by the runner, which owns
    the navigation frame); hover_thrust: the fraction of maximum thrust that hovers the drone flown (deploy.drone.flown_drone: what the
    observation tells the policy)."""
    checks: list[Check] = []
    rate = float(config.rate_hz or policy.control_hz)
    L = config.limits

    def add(name: str, status: str, detail: str) -> None:
        c = Check(name, status, detail)
        checks.append(c)
        say(str(c))

    info = link.info
    # --- link ------------------------------------------------------------------------------------
    kind = {mavlink.MAV_TYPE_QUADROTOR: "quadrotor"}.get(info.mav_type, f"MAV_TYPE {info.mav_type}")
    if info.firmware not in (Firmware.ARDUPILOT, Firmware.PX4):
        add("link", FAIL, f"vehicle sysid {info.system_id} runs autopilot {info.autopilot}, neither ArduPilot nor PX4")
    elif info.mav_type != mavlink.MAV_TYPE_QUADROTOR:
        add("link", FAIL, f"vehicle sysid {info.system_id} is a {kind}; the policies fly quadrotors (X layout)")
    else:
        add("link", OK, f"{info.firmware.value} {info.version_text} {kind}, sysid {info.system_id}, "
                        f"endpoint {link.endpoint}")

    # --- telemetry rates: measured over a window, waiting for the estimator meanwhile ------------------
    t0 = time.monotonic()
    c0 = dict(counter.counts)
    window = config.preflight_window_s
    time.sleep(window)
    deadline = t0 + max(config.preflight_timeout_s, window)
    while time.monotonic() < deadline:
        s = link.state
        if s.estimator_healthy and s.fresh(L.stale_after_s) and counter.ekf_flags is not None:
            break
        time.sleep(0.05)
    dt = time.monotonic() - t0
    rates = {k: (counter.counts[k] - c0.get(k, 0)) / dt for k in counter.counts}
    hb = rates.get("HEARTBEAT", 0.0)
    add("heartbeat", OK if hb >= 0.5 else FAIL,
        f"{hb:.1f} Hz" if hb >= 0.5 else f"only {hb:.2f} heartbeats/s from the vehicle (need >= 0.5): a flaky link")
    need = 0.8 * rate
    streams = ("ATTITUDE_QUATERNION", "LOCAL_POSITION_NED")
    if any(rates.get(m, 0.0) < need for m in streams):
        # One more window before refusing: a dip in one second (the laptop busy starting up, a burst of
        # retransmissions on the radio) is not a link too slow to fly on; a second slow window is.
        t1, c1 = time.monotonic(), dict(counter.counts)
        time.sleep(window)
        dt1 = time.monotonic() - t1
        for m in streams:
            rates[m] = max(rates.get(m, 0.0), (counter.counts[m] - c1.get(m, 0)) / dt1)
    problems = []
    for msg, what in zip(streams, ("attitude", "position")):
        r = rates.get(msg, 0.0)
        if r < need:
            problems.append(f"{what} ({msg}) at {r:.1f} Hz, need >= {need:.0f} Hz for a {rate:g} Hz loop")
    s = link.state
    if problems:
        add("telemetry", FAIL, "; ".join(problems) + " (raise the stream rate, SR*/MAV_*_RATE, or the baud rate)")
    elif not s.fresh(L.stale_after_s):
        add("telemetry", FAIL, f"attitude/position telemetry is stale (ages {s.age('attitude'):.2f} s / "
                               f"{s.age('position'):.2f} s, limit {L.stale_after_s:g} s)")
    else:
        add("telemetry", OK, f"attitude {rates.get('ATTITUDE_QUATERNION', 0):.0f} Hz, position "
                             f"{rates.get('LOCAL_POSITION_NED', 0):.0f} Hz (need {need:.0f}), link faults "
                             f"{link.stats.faults}")

    # --- estimator / position --------------------------------------------------------------------
    pos = s.position_enu
    absolute = counter.absolute_position()
    frame = config.frame
    if frame == "auto":
        frame = "relative" if absolute is False else "home"
    if not s.estimator_healthy:
        add("estimator", FAIL, f"the flight controller's estimator is not healthy after "
                               f"{config.preflight_timeout_s:g} s (no position estimate to fly on)")
    elif not np.all(np.isfinite(pos)) or s.age("position") > L.stale_after_s:
        add("estimator", FAIL, "no valid local position (LOCAL_POSITION_NED missing, stale or not finite)")
    else:
        how = {True: "absolute", False: "relative only", None: "unknown (no estimator status)"}[absolute]
        detail = f"healthy, position {how}; navigation frame: {frame}"
        if frame in ("home", "local") and absolute is False:
            add("estimator", WARN, detail + " (targets will drift with the estimate: see --frame relative)")
        else:
            add("estimator", OK, detail)

    # --- battery ---------------------------------------------------------------------------------
    v, rem = s.battery_voltage, s.battery_remaining
    cells = config.cells or estimate_cells(v)
    if not math.isfinite(v) and not math.isfinite(rem):
        add("battery", WARN, "the vehicle reports no battery state")
    else:
        bad = []
        if math.isfinite(rem) and rem < L.min_battery_remaining:
            bad.append(f"charge {100 * rem:.0f} % below {100 * L.min_battery_remaining:.0f} %")
        if cells and math.isfinite(v) and v / cells < L.min_cell_voltage:
            bad.append(f"{v:.2f} V = {v / cells:.2f} V/cell ({cells}S) below {L.min_cell_voltage:g} V/cell")
        text = f"{v:.2f} V ({cells}S, {v / cells:.2f} V/cell), {100 * rem:.0f} %" if cells and math.isfinite(v) \
            else f"{100 * rem:.0f} %"
        add("battery", FAIL if bad else OK, "; ".join(bad) if bad else text)

    # --- vehicle on the ground, disarmed, level --------------------------------------------------------
    tilt = math.degrees(math.acos(max(-1.0, min(1.0, math.cos(s.roll) * math.cos(s.pitch)))))
    if s.armed:
        add("vehicle", FAIL, f"already armed (mode {s.mode}): drone-deploy takes off itself; land and disarm first")
    elif s.landed_state == mavlink.MAV_LANDED_STATE_IN_AIR:
        add("vehicle", FAIL, "the vehicle reports being in the air")
    elif tilt > L.max_takeoff_tilt_deg:
        add("vehicle", FAIL, f"tilted {tilt:.0f} deg on the ground (limit {L.max_takeoff_tilt_deg:g}): not level")
    else:
        add("vehicle", OK, f"disarmed, {s.mode}, level ({tilt:.1f} deg)")

    # --- policy ----------------------------------------------------------------------------------
    m = policy.metadata
    pol_problems = []
    if abs(policy.control_hz - rate) > 1e-6 * rate:
        if config.allow_rate_mismatch:
            add("policy rate", WARN, f"trained at {policy.control_hz:g} Hz, flown at {rate:g} Hz "
                                     "(--allow-rate-mismatch: for loop-timing benchmarks only)")
        else:
            pol_problems.append(f"trained at {policy.control_hz:g} Hz, the loop would run at {rate:g} Hz (--rate)")
    trained = m.get("tasks") or {}
    if config.task not in trained:
        pol_problems.append(f"not trained on task {config.task!r} (tasks: {', '.join(trained) or 'none'})")
    if not pol_problems and np.all(np.isfinite(pos)):
        try:
            a = np.asarray(first_action(pos, frame), dtype=float)
            if a.shape != (4,) or not np.all(np.isfinite(a)) or np.max(np.abs(a)) > 1.0 + L.action_tolerance:
                pol_problems.append(f"its action for the vehicle as it stands is not finite and in [-1, 1]: {a.tolist()}")
        except Exception as exc:  # a policy that cannot run here must not take off
            pol_problems.append(f"it fails on the current observation: {type(exc).__name__}: {exc}")
    add("policy", FAIL if pol_problems else OK,
        "; ".join(pol_problems) if pol_problems else
        f"{policy.path.name}: {m['action_mode']}, obs v{m['obs_layout_version']} ({m['obs_size']}), "
        f"{policy.control_hz:g} Hz, tasks {', '.join(trained)}, {m['training_steps']:,} steps")

    # --- command path and thrust semantics -------------------------------------------------------------
    guid_to_set = None
    unreadable = ""
    semantics = thrust_semantics(info.firmware)
    if info.firmware == Firmware.ARDUPILOT and policy.action_mode == "ctbr":
        opts = read_param(link, "GUID_OPTIONS")
        if opts is None:  # unknown: assume ArduPilot's default (climb rate), which cannot be flown
            semantics = ThrustSemantics.CLIMB_RATE
            unreadable = f" (GUID_OPTIONS could not be read: {PARAM_ADVICE})"
        else:
            semantics = thrust_semantics(info.firmware, int(opts))
            if semantics == ThrustSemantics.CLIMB_RATE and not config.dry_run:
                guid_to_set = int(opts) | GUID_OPTIONS_THRUST_AS_THRUST
    path = ""
    try:
        # with the bit about to be set, the flight will have thrust-as-thrust semantics
        sem_for_check = ThrustSemantics.NORMALIZED_THRUST if guid_to_set is not None else semantics
        path = check_command_path(policy.action_mode, info.firmware, info.version, sem_for_check)
        note = ""
        if guid_to_set is not None:
            note = f"; GUID_OPTIONS will be set to {guid_to_set} (thrust as thrust)"
        elif config.dry_run and semantics == ThrustSemantics.CLIMB_RATE:
            note = "; GUID_OPTIONS bit 3 is clear (climb rate): a real run sets it"
        add("command path", OK, path + note)
    except UnsupportedCommandPath as exc:
        if config.dry_run and semantics == ThrustSemantics.CLIMB_RATE and policy.action_mode == "ctbr":
            add("command path", WARN, f"{exc} (dry run: nothing is written)")
            path = "ctbr -> SET_ATTITUDE_TARGET (would set GUID_OPTIONS bit 3)"
        else:
            add("command path", FAIL, str(exc) + unreadable)

    # --- hover thrust: the vehicle's learnt or configured hover against the drone the observation describes ----
    if policy.action_mode == "ctbr" and hover_thrust is not None:
        hv = hover_thrust_check(link, info.firmware, hover_thrust)
        if hv is not None:
            add("hover thrust", hv[0], hv[1])

    # --- firmware failsafes (what happens when the link goes) ------------------------------------------
    fs = _failsafe_check(link, info.firmware)
    add("failsafes", fs[0], fs[1])

    # --- fence and targets ------------------------------------------------------------------------
    fence_problems = check_targets(pos, frame) if np.all(np.isfinite(pos)) else ["no position to centre the fence on"]
    add("fence", FAIL if fence_problems else OK,
        "; ".join(fence_problems) if fence_problems else
        f"radius {L.fence_radius_m:g} m, ceiling {L.max_alt_m:g} m around the takeoff point, margin "
        f"{L.fence_margin_m:g} m; targets inside")

    if any(c.status == FAIL for c in checks):
        raise PreflightRefused(checks)
    return PreflightResult(checks, frame, np.asarray(pos, dtype=float), cells, semantics.value, path, guid_to_set)


def _failsafe_check(link, firmware: Firmware) -> tuple[str, str]:
    """The flight controller's own failsafes for a lost link: GCS heartbeat loss and setpoint loss."""
    mygcs = None
    if firmware == Firmware.ARDUPILOT:
        names = ("FS_GCS_ENABLE", "FS_GCS_TIMEOUT", "GUID_TIMEOUT")
        sysid_names = gcs_sysid_names(link.info.version)
        mygcs = read_renamed_param(link, sysid_names)
    else:
        names = ("NAV_DLL_ACT", "COM_DL_LOSS_T", "COM_OF_LOSS_T")
    gcs, timeout, sp = (read_param(link, n) for n in names)
    if gcs is None:
        return WARN, f"could not read {names[0]} ({PARAM_ADVICE}): make sure the GCS-loss failsafe is on (hardware.md)"
    if int(gcs) == 0:
        return FAIL, (f"{names[0]} = 0: the flight controller has no GCS-loss failsafe, and drone-deploy relies on "
                      f"it when the link is lost (set {names[0]}, see hardware.md)")
    parts = [f"{names[0]}={int(gcs)}"]
    if timeout is not None:
        parts.append(f"{names[1]}={timeout:g}s")
    if sp is not None:
        parts.append(f"{names[2]}={sp:g}s")
    warnings = []
    if firmware == Firmware.ARDUPILOT:
        if mygcs is None:
            warnings.append(f"could not read {' or '.join(sysid_names)} ({PARAM_ADVICE}): check that it is "
                            f"{link.source_system}, this GCS's sysid, or the GCS failsafe ignores our heartbeats")
        elif int(mygcs[1]) != link.source_system:
            warnings.append(f"{mygcs[0]}={int(mygcs[1])} but this GCS is sysid {link.source_system}: ArduPilot will "
                            "not count our heartbeats for its GCS failsafe")
        if sp is not None and sp > GUID_TIMEOUT_ADVISED_S:
            warnings.append(f"GUID_TIMEOUT={sp:g}s: if the laptop freezes, the last body-rate command is flown for "
                            f"{sp:g} s before the vehicle levels and holds (with 3 s ArduCopter SITL drifted 1.6-2.3 m); "
                            f"set it to 0.5-1 s (hardware.md)")
    elif sp is not None and sp > 5.0:
        warnings.append(f"{names[2]} above 5 s: a lost setpoint stream is noticed late")
    if warnings:
        return WARN, ", ".join(parts) + "; " + "; ".join(warnings)
    return OK, ", ".join(parts)



HOVER_PARAMS = {Firmware.ARDUPILOT: ("MOT_THST_HOVER", "MOT_THST_EXPO"), Firmware.PX4: ("MPC_THR_HOVER", "THR_MDL_FAC")}
HOVER_MISMATCH = 0.15   # relative difference that gets a warning


def hover_thrust_check(link, firmware: Firmware, drone_hover: float) -> tuple[str, str] | None:
    """Compare the thrust the vehicle hovers at with the one the drone flown hovers at (the --drone file, else the
    policy's nominal drone: the figure the observation gives the policy).

    Both are normalized collective thrust, the unit SET_ATTITUDE_TARGET.thrust carries: ArduPilot's
    MOT_THST_HOVER lives in the thrust domain that MOT_THST_EXPO linearizes (AP_MotorsMulticopter), PX4's
    MPC_THR_HOVER in the thrust-setpoint domain that THR_MDL_FAC maps to the motors. A policy trained on
    another drone hovers at its own figure and must close the gap itself (it flew 9-16 cm low on PX4 SITL
    with MPC_THR_HOVER 0.5 against 0.29); since layout v2 the observation carries the drone's hover thrust, so a
    --drone params file measured on the thrust stand (drone-calibrate) tells the policy the right figure."""
    hover_name, curve_name = HOVER_PARAMS[firmware]
    hover, curve = read_param(link, hover_name), read_param(link, curve_name)
    if hover is None:
        return WARN, f"could not read {hover_name} ({PARAM_ADVICE}); the drone flown hovers at {drone_hover:.3f}"
    text = (f"vehicle {hover_name}={hover:.3f}" + (f" ({curve_name}={curve:g})" if curve is not None else "")
            + f", drone flown {drone_hover:.3f}")
    if abs(hover - drone_hover) > HOVER_MISMATCH * drone_hover:
        return WARN, (text + f": {100 * (hover / drone_hover - 1):+.0f} %. The observation tells the policy the "
                      "drone flown's figure, so it closes the gap with its own feedback, at a cost in hold accuracy "
                      "(a v1 policy held 9-16 cm low on PX4 SITL); measure the drone (drone-calibrate) and pass "
                      "--drone, or train on it (hardware.md, Calibration)")
    return OK, text


# hardware.md asks for 0.5-1 s: with the default 3 s a frozen laptop's last body-rate command was flown for 3 s
# on ArduCopter SITL, and the vehicle drifted 1.6-2.3 m before the GCS failsafe took over (BENCHMARKS.md).
GUID_TIMEOUT_ADVISED_S = 1.0


def summary_of(checks: list[Check]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(c) for c in checks]
