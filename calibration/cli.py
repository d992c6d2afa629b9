"""`drone-calibrate`: scale, thrust-stand, fit, vehicle (and sim-stand, the emulated hardware).

Every error a user can cause (a wrong port, a bad file, a plan above the cap) ends with one line naming
the problem and exit status 2; a safety stop during a run exits 3 with the recording kept; Ctrl-C 130.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from drone_sim.signals import sigterm_as_interrupt

from .plan import build_plan, parse_steps, plan_duration
from .protocol import DEFAULT_BAUD
from .rundata import CalibrationDataError
from .standcal import StandCal, StandCalError

PROG = "drone-calibrate"


class UsageError(ValueError):
    pass


def _floats(text: str, n: int, what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{what}: expected {n} comma-separated numbers, got {text!r}") from None
    if len(vals) != n:
        raise UsageError(f"{what}: expected {n} comma-separated numbers, got {len(vals)}")
    return vals


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise UsageError(f"--pwm-range: write LOW:HIGH in microseconds, e.g. 1000:2000, got {text!r}") from None
    return lo, hi


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description="Thrust-stand calibration of the motors and the params "
                                 "file the simulator trains on (see hardware.md, 'The thrust stand').")
    sub = ap.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("scale", help="tare and scale a load cell with a known mass (writes the stand calibration)")
    s.add_argument("--stand", required=True, help="the stand's serial port (e.g. /dev/ttyACM0)")
    s.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    s.add_argument("--cell", choices=("thrust", "torque"), default="thrust")
    s.add_argument("--mass", type=float, required=True, help="reference mass (kg)")
    s.add_argument("--mass-tolerance", type=float, default=0.001, help="relative 1-sigma of the mass (default 0.1 %%)")
    s.add_argument("--lever", type=float, help="torque cell: distance of the hung mass from the motor axis (m)")
    s.add_argument("--seconds", type=float, default=3.0, help="averaging time per reading")
    s.add_argument("-o", "--out", default="stand.json", help="stand calibration file (cells already in it are kept)")

    t = sub.add_parser("thrust-stand", help="spin one motor through the flight controller and record the stand")
    t.add_argument("--stand", required=True, help="the stand's serial port (e.g. /dev/ttyACM0)")
    t.add_argument("--port", "--fc", dest="fc", required=True, metavar="URL",
                   help="the flight controller's MAVLink endpoint, as drone-deploy --port: a serial port, udpin:..., "
                        "tcp:... (--fc is the older name)")
    t.add_argument("--motor", type=int, required=True, help="motor number as the firmware's motor test counts it (ArduPilot: test order, 1 = front right then "
                   "clockwise; PX4: output number); see hardware.md")
    t.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="stand baud rate")
    t.add_argument("--fc-baud", type=int, default=115200)
    t.add_argument("--stand-cal", default="stand.json", help="from drone-calibrate scale (runs without it record raw "
                   "counts; fit them later with --stand-cal)")
    t.add_argument("--max-throttle", type=float, default=0.8, help="throttle cap 0..1 (default 0.8)")
    t.add_argument("--max-thrust", type=float, help="safety stop above this thrust (N)")
    t.add_argument("--min-throttle", type=float, default=0.1)
    t.add_argument("--levels", type=int, default=10, help="staircase levels from --min-throttle to the cap")
    t.add_argument("--hold", type=float, default=2.0, help="seconds per staircase level")
    t.add_argument("--steps", default="0.3:0.6", help="step pairs LOW:HIGH[,LOW:HIGH...] for the time constants; "
                   "'' for none")
    t.add_argument("--step-hold", type=float, default=0.8)
    t.add_argument("--step-repeats", type=int, default=3)
    t.add_argument("--rest", type=float, default=1.0, help="seconds at rest at both ends (re-tare)")
    t.add_argument("--stand-timeout", type=float, default=0.5, help="stop when the stand is silent this long (s)")
    t.add_argument("-o", "--out", help="run CSV (default runs/calibration/motorN-DATE.csv)")
    t.add_argument("--yes", action="store_true", help="skip the hazard confirmation (scripted runs only)")
    t.add_argument("--fit", action="store_true", help="fit the run at once (params.json and report.png beside it)")

    f = sub.add_parser("fit", help="fit motor constants from run CSVs (ours or Tyto Robotics / RCbenchmark)")
    f.add_argument("runs", nargs="+", help="run CSV files (several motors or repeats are pooled)")
    f.add_argument("--format", choices=("auto", "stand", "rcbenchmark"), default="auto")
    f.add_argument("--stand-cal", help="override the stand calibration recorded in our runs")
    f.add_argument("--pwm-range", default="1000:2000", help="RCbenchmark: ESC pulse range mapped to throttle 0..1")
    f.add_argument("--rpm-source", choices=("auto", "optical", "electrical"), default="auto")
    f.add_argument("--rpm-scale", type=float, default=1.0, help="RCbenchmark: multiply its rpm (wrong pole count)")
    f.add_argument("--vehicle", help="body from drone-calibrate vehicle (or an existing params file); "
                   "default: the simulator's nominal body, marked as not measured")
    f.add_argument("--name", default="", help="drone name in the params file")
    f.add_argument("--settle", type=float, help="seconds discarded at the start of each segment")
    f.add_argument("--k-torque", type=float, help="use this k_Q when the stand has no torque cell")
    f.add_argument("--tau-up", type=float, help="use this rise time constant when the run has no steps")
    f.add_argument("--tau-down", type=float)
    f.add_argument("-o", "--out", default="params.json", help="drone params file to write")
    f.add_argument("--report", help="PNG report (default: beside --out, NAME-report.png)")
    f.add_argument("--json", help="also write the fit summary as JSON here")

    v = sub.add_parser("vehicle", help="mass, arm length and inertia (bifilar pendulum or geometry)")
    v.add_argument("--mass", type=float, required=True, help="all-up mass with battery (kg)")
    v.add_argument("--mass-sigma", type=float, default=0.001, help="1-sigma of the mass (kg)")
    v.add_argument("--arm", type=float, required=True, help="centre to motor axis (m)")
    v.add_argument("--arm-sigma", type=float, default=0.001)
    v.add_argument("--name", default="")
    v.add_argument("--wire-separation", type=float, help="bifilar pendulum: distance between the wires D (m)")
    v.add_argument("--wire-length", type=float, help="bifilar pendulum: wire length L (m)")
    v.add_argument("--period-x", help="period about x: seconds, or TOTAL/COUNT (14.2/10)")
    v.add_argument("--period-y")
    v.add_argument("--period-z")
    v.add_argument("--period-sigma", type=float, default=0.005, help="relative 1-sigma of each period")
    v.add_argument("--length-sigma", type=float, default=0.002, help="1-sigma of D and L (m)")
    v.add_argument("--fixture-mass", type=float, default=0.0, help="mass of the hanging fixture (kg), hung too")
    v.add_argument("--fixture-inertia", help="fixture's own inertia about x,y,z (kg m^2), subtracted")
    v.add_argument("--geometry", action="store_true", help="estimate inertia from geometry instead (+-20 %%)")
    v.add_argument("--motor-mass", type=float, help="geometry: one motor with its propeller (kg)")
    v.add_argument("--body", help="geometry: central body LX,LY,LZ (m)")
    v.add_argument("-o", "--out", default="vehicle.json")

    e = sub.add_parser("sim-stand", help="emulated hardware: drone-sim-vehicle's motor test wired to an emulated "
                       "stand; prints both serial ports")
    e.add_argument("--motor", type=int, default=1)
    e.add_argument("--firmware", choices=("ardupilot", "px4"), default="ardupilot")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--fc-link", help="stable symlink for the vehicle's pty")
    e.add_argument("--stand-link", help="stable symlink for the stand's pty")
    e.add_argument("--write-cal", help="write the stand calibration a perfect 'scale' would give here")
    e.add_argument("--truth", help="JSON of MotorTruth overrides, e.g. '{\"k_thrust\": 9e-7}'")
    e.add_argument("--garbage", type=float, help="probability of a garbage line (default 0.01)")
    e.add_argument("--duration", type=float, help="exit after this many seconds")
    return ap


# ---------------------------------------------------------------------------------------------- commands
def cmd_scale(args) -> int:
    from .scale import scale_cell
    from .stand import StandPort

    out = Path(args.out)
    existing = StandCal.load(out) if out.exists() else None
    with StandPort(args.stand, args.baud) as port:
        port.wait_for_data()
        cell = scale_cell(port, args.cell, args.mass, args.lever, args.mass_tolerance, seconds=args.seconds)
    new = StandCal(**{args.cell: cell})
    cal = existing.merged(new) if existing else new
    cal.save(out)
    print(f"wrote {out}" + (" (other cell kept)" if existing else ""))
    return 0


def cmd_thrust_stand(args) -> int:
    from firmware_bridge import MavLink

    from .acquire import AcquireOptions, acquire, confirm_hazards, open_stand

    if not 1 <= args.motor <= 8:
        raise UsageError(f"--motor must be 1..8, got {args.motor}")
    steps = parse_steps(args.steps) if args.steps else []
    plan = build_plan(args.max_throttle, args.min_throttle, args.levels, args.hold, steps, args.step_hold,
                      args.step_repeats, args.rest)
    cal = None
    if args.stand_cal and Path(args.stand_cal).exists():
        cal = StandCal.load(args.stand_cal)
    else:
        if args.max_thrust is not None:
            raise UsageError(f"--max-thrust needs the stand calibration ({args.stand_cal} not found): run "
                             f"{PROG} scale first")
        print(f"note: no stand calibration {args.stand_cal!r}: recording raw counts (fit later with --stand-cal)")
    out = Path(args.out) if args.out else Path("runs/calibration") / (
        f"motor{args.motor}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.csv")
    if out.exists():
        raise UsageError(f"{out} exists: a recording is never overwritten; pick another --out")
    print(f"stand on {args.stand} ...")
    stand = open_stand(args.stand, args.baud)
    link = None
    try:
        info = stand.info
        print(f"  stand: {info.name} protocol {info.protocol}, {info.line_rate_hz:g} lines/s" if info else
              "  stand: streaming (no identification line yet)")
        print(f"flight controller on {args.fc} ...")
        link = MavLink(args.fc, args.fc_baud)
        vinfo = link.connect(timeout=10.0, request_streams=False)
        print(f"  vehicle: {vinfo.firmware.value} sysid {vinfo.system_id}, {'ARMED' if link.state.armed else 'disarmed'}")
        if not args.yes and not confirm_hazards(args.motor, plan, args.max_thrust):
            print("cancelled: nothing was spun")
            return 1
        print(f"running {len(plan)} segments, {plan_duration(plan):.0f} s, recording to {out}")
        opt = AcquireOptions(args.motor, plan, out, cal, args.max_throttle, args.max_thrust, args.stand_timeout,
                             meta={"command": " ".join(sys.argv)})
        res = acquire(stand, link, opt)
    finally:
        if link is not None:
            link.close()
        stand.close()
    print(f"{res.reason}: {res.rows} lines recorded in {res.duration:.1f} s to {res.path}")
    print(f"  stand lines: {stand.stats.summary()}")
    if not res.completed:
        return 3
    if args.fit:
        fit_args = build_parser().parse_args(["fit", str(out), "-o", str(out.with_suffix(".params.json"))])
        return cmd_fit(fit_args)
    print(f"next: {PROG} fit {out} --vehicle vehicle.json -o params.json")
    return 0


def cmd_fit(args) -> int:
    import drone_sim

    from .fit import FitOptions, fit_runs, load_run, summary_lines
    from .params_out import build_params, nominal_body, write_params
    from .report import write_report
    from .vehicle import load_body

    cal = StandCal.load(args.stand_cal) if args.stand_cal else None
    pwm = _range(args.pwm_range)
    runs = [load_run(p, args.format, cal, pwm_range=pwm, rpm_source=args.rpm_source, rpm_scale=args.rpm_scale)
            if _is_tyto(p, args.format) else load_run(p, args.format, cal) for p in args.runs]
    for r in runs:
        print(f"{r.source}: {r.format}, {len(r)} samples; {r.stats.summary()}")
        for n in r.notes:
            print(f"  note: {n}")
    res = fit_runs(runs, FitOptions(args.settle, k_torque=args.k_torque, tau_up=args.tau_up, tau_down=args.tau_down))
    for line in summary_lines(res):
        print(line)
    body = load_body(args.vehicle) if args.vehicle else nominal_body()
    out = Path(args.out)
    doc = build_params(res, body, args.name)
    loaded = write_params(doc, out)
    hover = res.hover(body["mass"])
    meas = hover["speed_measured"]
    print(f"hover ({body['mass']:g} kg): {hover['speed_fit']:.1f} rad/s per motor from the fit"
          + (f", {meas:.1f} rad/s on the measured curve" if meas else ", beyond the measured curve")
          + f", throttle {hover['throttle']:.3f}; thrust-to-weight "
          f"{drone_sim.thrust_to_weight({**loaded, 'mass': body['mass']}):.2f}")
    if not args.vehicle:
        print("note: body (mass, arm, inertia) is the simulator's nominal one: pass --vehicle vehicle.json")
    report = Path(args.report) if args.report else out.with_name(out.stem + "-report.png")
    write_report(res, report)
    print(f"wrote {out} and {report}")
    if args.json:
        Path(args.json).write_text(json.dumps(doc["provenance"]["fitted"] | {"summary": summary_lines(res)}, indent=2)
                                   + "\n")
    return 0


def _is_tyto(path: str, fmt: str) -> bool:
    from .tyto import looks_like_rcbenchmark

    return fmt == "rcbenchmark" or (fmt == "auto" and looks_like_rcbenchmark(path))


def cmd_vehicle(args) -> int:
    from .vehicle import Bifilar, geometry_inertia, parse_period, vehicle_doc

    if args.geometry:
        if args.motor_mass is None or args.body is None:
            raise UsageError("--geometry needs --motor-mass and --body LX,LY,LZ")
        inertia = geometry_inertia(args.mass, args.arm, args.motor_mass, tuple(_floats(args.body, 3, "--body")))
        sigma = [0.2 * i for i in inertia]
        details = {"motor_mass": args.motor_mass, "body": args.body, "note": "geometry estimate, +-20 %"}
        method = "geometry: point-mass motors on the X diagonals + uniform box body (NOT measured)"
    else:
        periods = [args.period_x, args.period_y, args.period_z]
        if args.wire_separation is None or args.wire_length is None or any(p is None for p in periods):
            raise UsageError("the bifilar pendulum needs --wire-separation, --wire-length and --period-x/-y/-z "
                             "(or use --geometry)")
        pend = Bifilar(args.wire_separation, args.wire_length, args.period_sigma, args.length_sigma)
        fixture = _floats(args.fixture_inertia, 3, "--fixture-inertia") if args.fixture_inertia else [0.0] * 3
        hung = args.mass + args.fixture_mass
        inertia, sigma = [], []
        for ax, ptext, fix in zip("xyz", periods, fixture):
            i, s = pend.inertia(hung, parse_period(ptext), args.mass_sigma / args.mass)
            if i - fix <= 0:
                raise UsageError(f"inertia about {ax}: the fixture's {fix:g} kg m^2 is more than the measured {i:.3g}")
            inertia.append(i - fix)
            sigma.append(s)
        details = {"wire_separation": args.wire_separation, "wire_length": args.wire_length,
                   "periods": dict(zip("xyz", periods)), "fixture_mass": args.fixture_mass,
                   "fixture_inertia": fixture}
        method = "bifilar pendulum: I = m g D^2 T^2 / (16 pi^2 L) about each axis"
    doc = vehicle_doc(args.name, args.mass, args.arm, inertia, sigma, args.mass_sigma, args.arm_sigma, method, details)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"mass {args.mass:g} kg, arm {args.arm:g} m, inertia "
          + ", ".join(f"I{ax}{ax} {i:.4g} +- {s:.2g}" for ax, i, s in zip("xyz", inertia, sigma)) + " kg m^2")
    print(f"wrote {args.out}")
    return 0


def cmd_sim_stand(args) -> int:
    import dataclasses
    import signal
    import threading

    from .emulator import MotorTruth, StandTruth, sim_stand
    from .synth import truth_cal

    overrides = json.loads(args.truth) if args.truth else {}
    fields = {f.name for f in dataclasses.fields(MotorTruth)}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise UsageError(f"--truth: unknown field(s) {', '.join(bad)} (known: {', '.join(sorted(fields))})")
    truth = MotorTruth(**overrides)
    stand = StandTruth() if args.garbage is None else StandTruth(garbage_prob=args.garbage)
    if args.write_cal:
        truth_cal(stand).save(args.write_cal)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with sim_stand(args.motor, truth, stand, args.seed, args.firmware, args.fc_link, args.stand_link) as hw:
        print(f"flight controller (drone-sim-vehicle, {args.firmware}) on {hw.fc_path}", flush=True)
        print(f"thrust stand (emulated, motor {args.motor}) on {hw.stand_path}", flush=True)
        print("truth: " + json.dumps(dataclasses.asdict(truth)), flush=True)
        stop.wait(args.duration if args.duration else None)
    return 0


COMMANDS = {"scale": cmd_scale, "thrust-stand": cmd_thrust_stand, "fit": cmd_fit, "vehicle": cmd_vehicle,
            "sim-stand": cmd_sim_stand}


def main(argv: list[str] | None = None) -> int:
    from .acquire import AbortRun
    from .scale import ScaleError
    from .stand import StandPortError
    from .steady_fit import FitError
    from .vehicle import VehicleError

    args = build_parser().parse_args(argv)
    sigterm_as_interrupt()   # a motor test stops the same way for SIGTERM as for Ctrl-C (acquire.py)
    try:
        return COMMANDS[args.cmd](args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except AbortRun as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 3
    except (UsageError, CalibrationDataError, StandCalError, FitError, StandPortError, ScaleError, VehicleError,
            ValueError, OSError) as exc:
        print(f"{PROG} {args.cmd}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - e.g. the flight controller not answering
        name = type(exc).__name__
        if name in ("VehicleNotFoundError", "CommandTimeout", "CommandRejected", "LinkDownError"):
            print(f"{PROG} {args.cmd}: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
