"""`drone-deploy`: fly an ONNX policy on a MAVLink vehicle from this laptop.

    drone-deploy --port /dev/ttyUSB0 --baud 115200 --target 1,0,1.5 --target 1,1,1.5 --target 0,1,1
    drone-deploy --port udpin:0.0.0.0:14540 --task follow --frame relative   # PX4 SITL's offboard link
    drone-deploy --port /dev/pts/5 --dry-run --duration 20          # the loop runs; nothing is armed or sent
    drone-deploy --swarm --port udpin:0.0.0.0:14550 --sysids 1-4 --formation grid   # 4 vehicles, one radio/port
    drone-deploy --swarm --port /dev/ttyUSB0 --port /dev/ttyUSB1 --duration 60     # one radio per vehicle

Keys while flying: Ctrl-C (SIGINT) lands; Ctrl-\\ (SIGQUIT) or `k` disarms at once (the vehicle falls:
the last resort); `l` lands. Exit codes: 0 flown as planned or landed by the operator, 1 a safety
trigger ended the flight, 2 refused before arming, 3 still armed when drone-deploy stopped watching
(the firmware's failsafe is in charge), 4 killed.

Parameters it writes on the vehicle: ArduPilot GUID_OPTIONS, bit 3 set before arming (so that
SET_ATTITUDE_TARGET.thrust is thrust, not a climb rate), restored to the value it had once the vehicle
is disarmed again (not while it is armed or unreachable: the log and the last line say so). Nothing else;
--dry-run writes nothing.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

from rich.console import Console

from .config import ConfigError, DeployConfig, SafetyLimits, default_policy_path, parse_vec3
from .control import FlightControl
from .exits import EXIT_REFUSED
from .flight import Flight


VECTOR_OPTIONS = ("--target",)


def attach_vector_values(argv: list[str]) -> list[str]:
    """`--target -1,0,1` as `--target=-1,0,1`: argparse takes a value that starts with '-' and is not a plain
    number for an option and fails with "expected one argument", so a target west or south of home could
    not be written the natural way."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in VECTOR_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-") and "," in argv[i + 1]:
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="drone-deploy", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--port", action="append", required=True,
                    help="serial device (/dev/ttyUSB0), udpin:HOST:PORT, udpout:HOST:PORT or tcp:HOST:PORT; "
                         "--swarm: repeat it for one endpoint per vehicle")
    ap.add_argument("--baud", type=int, default=57600, help="serial baud rate (default 57600, a SiK radio)")
    ap.add_argument("--policy", metavar="FILE.onnx", help="policy exported by drone-export (default: the shipped "
                                                          "policies/pretrained/hover_ctbr.onnx)")
    ap.add_argument("--task", default="hover", help="hover | goto | follow | race | obstacles (default hover)")
    ap.add_argument("--target", action="append", default=[], metavar="X,Y,Z",
                    help="a target in --frame (metres); repeat for a mission flown in order")
    ap.add_argument("--course", metavar="COURSE.json", help="race/obstacle course (drone-course/1), home frame")
    ap.add_argument("--rate", type=float, help="control rate in Hz (default: the policy's)")
    ap.add_argument("--max-alt", type=float, help="ceiling above the takeoff point, m (default 3)")
    ap.add_argument("--fence", type=float, help="fence radius around the takeoff point, m (default 5)")
    ap.add_argument("--frame", default="auto", choices=["auto", "home", "local", "relative"],
                    help="how targets are given (default auto: home with an absolute position, else relative)")
    ap.add_argument("--takeoff-alt", type=float, default=1.0, help="takeoff height, m (default 1)")
    ap.add_argument("--handover-tolerance", type=float, default=0.5, metavar="M",
                    help="the policy takes over once the vehicle holds the takeoff height within 0.15 m, steady, "
                         "and within this distance across of the takeoff point (default 0.5 m; GPS-grade position)")
    ap.add_argument("--hold", type=float, default=5.0, help="seconds within --tolerance before the next target")
    ap.add_argument("--tolerance", type=float, default=0.3, help="target reached within this distance, m")
    ap.add_argument("--then", choices=["land", "stay"],
                    help="after the last target (default: land after several targets, stay with one or none)")
    ap.add_argument("--duration", type=float, help="land after this many seconds of policy flight (dry run: run time)")
    ap.add_argument("--dry-run", action="store_true", help="run the whole loop and log the commands; never arm")
    ap.add_argument("--log", default="flight-logs", metavar="DIR", help="flight log directory (default flight-logs)")
    ap.add_argument("--lockstep", action="store_true", help="pace by the vehicle (drone-sim-vehicle --lockstep)")
    ap.add_argument("--telemetry-latency-ms", type=float, default=0.0, help="delay model: telemetry age on arrival")
    ap.add_argument("--command-latency-ms", type=float, default=0.0, help="delay model: command to effect")
    ap.add_argument("--drone", metavar="PARAMS.json", help="drone params for the simulator's prediction")
    ap.add_argument("--signing-key", metavar="KEYFILE", help="MAVLink 2 signing key")
    ap.add_argument("--safety", action="append", default=[], metavar="KEY=VALUE",
                    help="a safety limit (max_tilt_deg=30, stale_after_s=0.2, ...) or response.TRIGGER=hold|land|"
                         "return|firmware; see deploy/config.py")
    ap.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to wait for a heartbeat")
    ap.add_argument("--landing-timeout", type=float, default=60.0,
                    help="seconds to watch a landing (or a vehicle left to its failsafe) before giving up (default 60)")
    ap.add_argument("--allow-rate-mismatch", action="store_true",
                    help="fly --rate although the policy was trained at another rate (loop benchmarks only)")
    ap.add_argument("--realtime", action="store_true",
                    help="run at real-time priority (SCHED_FIFO; needs CAP_SYS_NICE) so other programs cannot delay a tick")
    ap.add_argument("--quiet", action="store_true", help="no status line every second")
    ap.add_argument("--ui", action="store_true", help="open the operator window (deploy/ui/: drag the target, "
                                                      "arm, land, kill); the loop runs on its own thread")
    sw = ap.add_argument_group("swarm (deploy/swarm/: several vehicles, one policy trained on the swarm task)")
    sw.add_argument("--swarm", action="store_true",
                    help="fly every vehicle given (repeated --port, or one --port with --sysids) in formation")
    sw.add_argument("--sysids", default="all", metavar="IDS",
                    help="system ids on one shared --port: 1-4, 1,3,5 or all (every vehicle that answers; default)")
    sw.add_argument("--formation", default="line", help="line, grid, sphere or orbit: the swarm task's shapes "
                                                        "(default line)")
    sw.add_argument("--formation-file", metavar="FILE.json", help="slots from a drone-formation/1 file instead")
    sw.add_argument("--spacing", type=float, default=1.2, help="slot spacing, m (default 1.2, as trained)")
    sw.add_argument("--formation-yaw", type=float, default=0.0, help="heading of a line or grid, deg from east")
    sw.add_argument("--min-separation", type=float, default=0.5,
                    help="separation guard: a pair predicted closer than this within 0.5 s holds (default 0.5 m)")
    return ap


def swarm_config_from_args(args: argparse.Namespace):
    """The SwarmConfig of a --swarm command line; ConfigError naming the bad option."""
    from .swarm.config import SwarmConfig, parse_sysids

    base = config_from_args(args, swarm=True)
    if base.policy is None:
        base.policy = str(default_policy_path(swarm=True))
    return SwarmConfig(deploy=base, ports=list(args.port), sysids=parse_sysids(args.sysids),
                       formation=args.formation, formation_file=args.formation_file, spacing_m=args.spacing,
                       yaw_deg=args.formation_yaw, min_separation_m=args.min_separation).validate()


def config_from_args(args: argparse.Namespace, swarm: bool = False) -> DeployConfig:
    """The DeployConfig an argument list asks for; ConfigError naming the bad option."""
    if len(args.port) > 1 and not swarm:
        raise ConfigError(f"--port given {len(args.port)} times: one vehicle takes one --port (--swarm flies several)")
    limits = SafetyLimits()
    if args.fence is not None:
        limits.fence_radius_m = args.fence
    if args.max_alt is not None:
        limits.max_alt_m = args.max_alt
    for item in args.safety:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--safety expects KEY=VALUE, got {item!r}")
        limits.set(key.strip(), value.strip())
    cfg = DeployConfig(
        port=args.port[0], baud=args.baud, policy=args.policy, task="swarm" if swarm else args.task,
        targets=[parse_vec3(t) for t in args.target], course=args.course, rate_hz=args.rate, frame=args.frame,
        dry_run=args.dry_run, log_dir=args.log, takeoff_alt_m=args.takeoff_alt, hold_at_target_s=args.hold,
        handover_tolerance_m=args.handover_tolerance,
        target_tolerance_m=args.tolerance, then=args.then, duration_s=args.duration, lockstep=args.lockstep,
        telemetry_latency_s=args.telemetry_latency_ms / 1000.0, command_latency_s=args.command_latency_ms / 1000.0,
        drone=args.drone, signing_key=args.signing_key, connect_timeout_s=args.connect_timeout,
        landing_timeout_s=args.landing_timeout,
        allow_rate_mismatch=args.allow_rate_mismatch, realtime=args.realtime, limits=limits)
    return cfg.validate()


def _keys(control: FlightControl, stop: threading.Event) -> None:
    """Single keys from a terminal: k kills, l lands (cbreak mode, restored on exit)."""
    import select
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        while not stop.is_set():
            r, _, _ = select.select([fd], [], [], 0.1)
            if not r:
                continue
            ch = os.read(fd, 1).decode("ascii", "ignore").lower()
            if ch == "k":
                control.kill("kill key")
            elif ch == "l":
                control.request_land("land key")
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _status(control: FlightControl, console: Console, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        s = control.snapshot()
        if s is None:
            continue
        trig = f" [red]{s.triggers[-1]['kind']}[/red]" if s.triggers else ""
        console.print(f"[dim]{s.phase:>8}[/dim] {'ARMED' if s.armed else 'disarmed'} {s.mode:<10} "
                      f"pos ({s.position[0]:+.2f},{s.position[1]:+.2f},{s.position[2]:+.2f}) "
                      f"target {s.target_label} d={s.distance_to_target:.2f} m  loop {s.loop_rate_hz:.0f} Hz "
                      f"p99 {s.compute_p99_ms:.2f} ms misses {s.deadline_misses}{trig}", highlight=False)


def _swarm_status(swarm, console: Console, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        line = swarm.status_line()
        if line:
            console.print(f"[dim]{line}[/dim]", highlight=False)


def main(argv: list[str] | None = None) -> int:
    console = Console(stderr=False, highlight=False, soft_wrap=True)
    args = build_parser().parse_args(attach_vector_values(list(sys.argv[1:] if argv is None else argv)))
    try:
        cfg = swarm_config_from_args(args) if args.swarm else config_from_args(args)
    except ConfigError as exc:
        console.print(f"drone-deploy: error: {exc}")
        return EXIT_REFUSED
    control = FlightControl()

    def on_sigint(*_):
        control.request_land("Ctrl-C")

    def on_sigterm(*_):
        control.request_land("SIGTERM")

    def on_sigquit(*_):
        control.kill("Ctrl-\\ (SIGQUIT)")

    signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGQUIT, on_sigquit)
    stop = threading.Event()
    threads = []
    if not args.quiet and not args.swarm:
        threads.append(threading.Thread(target=_status, args=(control, console, stop), daemon=True))
    dry_run = cfg.deploy.dry_run if args.swarm else cfg.dry_run
    if sys.stdin.isatty() and not dry_run:
        threads.append(threading.Thread(target=_keys, args=(control, stop), daemon=True))
    for t in threads:
        t.start()
    say = lambda line: console.print(line, markup=False, highlight=False)  # noqa: E731
    if args.swarm:
        from .swarm.flight import SwarmFlight

        swarm = SwarmFlight(cfg, control, say=say)
        if not args.quiet:
            threading.Thread(target=_swarm_status, args=(swarm, console, stop), daemon=True).start()
        try:
            if args.ui:   # every vehicle and its slot; dragging the target moves the formation
                from .ui import run_window
                from .ui.swarm import SwarmWindow

                try:
                    return run_window(swarm, window_class=SwarmWindow)
                except RuntimeError as exc:
                    if swarm.members:
                        raise
                    console.print(f"drone-deploy: error: {exc}", markup=False)
                    return EXIT_REFUSED
            return swarm.run()
        finally:
            stop.set()
            time.sleep(0.05)
    flight = Flight(cfg, control, say=say)
    try:
        if args.ui:  # the operator window owns the main thread, the loop gets its own (deploy/ui/)
            from .ui import run_window
            code = run_window(flight)
        else:
            code = flight.run()
    except RuntimeError as exc:
        if not args.ui or flight.log is not None:
            raise
        console.print(f"drone-deploy: error: {exc}", markup=False)  # no window could open: nothing was flown
        return EXIT_REFUSED
    finally:
        stop.set()
        time.sleep(0.05)
    if flight.log is not None:
        console.print(f"flight log: {flight.log.path} (drone-replay {flight.log.path})", markup=False)
    return code


if __name__ == "__main__":
    sys.exit(main())
