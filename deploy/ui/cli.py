"""drone-ui: the operator window for practice (--sim) or a real vehicle (--port); drone-deploy's options."""
from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from ..control import FlightControl
from . import __doc__ as UI_DOC
from .session import launch_sim_vehicle
from .style import TARGET_SPEED
from .window import run_window

if TYPE_CHECKING:
    import argparse


def build_parser() -> "argparse.ArgumentParser":
    """drone-ui's own options; everything else is a drone-deploy option (see drone-deploy --help)."""
    import argparse

    ap = argparse.ArgumentParser(
        prog="drone-ui", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The operator window: drag the target, watch the drone and the simulator's prediction.\n"
                    "Other options are drone-deploy's (--policy, --task, --course, --fence, --max-alt,\n"
                    "--takeoff-alt, --target, --lockstep, --log ...: see drone-deploy --help).",
        epilog=next(p for p in UI_DOC.split("\n\n") if p.startswith("Controls")))
    ap.add_argument("--sim", action="store_true", help="practice: start a drone-sim-vehicle on a pty and fly it")
    ap.add_argument("--sim-arg", action="append", default=[], metavar="ARG",
                    help="an argument for drone-sim-vehicle (repeat; write --sim-arg=--noise-pos --sim-arg=0.02)")
    ap.add_argument("--arm", action="store_true", help="arm and take off as soon as preflight passes (no T key)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=30, help="window frame rate cap (default 30)")
    ap.add_argument("--supersample", type=int, default=1, choices=[1, 2], help="render the 3D view at 2x and filter")
    ap.add_argument("--frame-info", metavar="JSON", help="keep writing what the window shows (pixels, state) here")
    ap.add_argument("--screenshot-dir", metavar="DIR", help="where P saves screenshots (default: here)")
    ap.add_argument("--exit-when-done", action="store_true", help="close the window when the flight has ended")
    ap.add_argument("--frame-stall-ms", type=float, default=0.0, help=argparse.SUPPRESS)  # scripts/bench_ui.py
    ap.add_argument("--target-speed", type=float, default=TARGET_SPEED, metavar="M/S",
                    help=f"the target walks to where it was dragged at this speed (default {TARGET_SPEED:g}; 0: jumps)")
    return ap


def ui_window_options(args: "argparse.Namespace") -> dict:
    """The OperatorWindow keywords from parsed drone-ui / drone-deploy --ui options."""
    return dict(width=args.width, height=args.height, fps=args.fps, supersample=args.supersample,
                frame_info=args.frame_info, screenshot_dir=args.screenshot_dir, exit_when_done=args.exit_when_done,
                target_speed=args.target_speed, frame_stall_ms=getattr(args, "frame_stall_ms", 0.0))


def main(argv: list[str] | None = None) -> int:
    """drone-ui: `--sim` for practice against a simulated vehicle it starts; with `--port` it is
    `drone-deploy --ui` (the real vehicle)."""
    import signal

    from ..cli import attach_vector_values
    from ..cli import build_parser as deploy_parser
    from ..cli import config_from_args
    from ..config import ConfigError
    from ..exits import EXIT_REFUSED
    from ..flight import Flight

    argv = attach_vector_values(list(sys.argv[1:] if argv is None else argv))
    ui_args, rest = build_parser().parse_known_args(argv)
    dp = deploy_parser()
    dp.prog = "drone-ui"
    if not ui_args.sim and "--port" not in rest and not any(a.startswith("--port=") for a in rest):
        print("drone-ui: error: give --sim (practice against a simulated vehicle) or --port PORT", file=sys.stderr)
        return EXIT_REFUSED
    sim = None
    try:
        if ui_args.sim:
            if "--port" in rest or any(a.startswith("--port=") for a in rest):
                print("drone-ui: error: --sim starts its own vehicle; leave out --port", file=sys.stderr)
                return EXIT_REFUSED
            lockstep = "--lockstep" in rest
            sim_args = list(ui_args.sim_arg) + (["--lockstep"] if lockstep and "--lockstep" not in ui_args.sim_arg
                                                else [])
            sim, port = launch_sim_vehicle(sim_args)
            print(f"drone-ui: simulated vehicle on {port}", flush=True)
            rest += ["--port", port, "--baud", "115200"]
        args = dp.parse_args(rest)
        try:
            cfg = config_from_args(args)
        except ConfigError as exc:
            print(f"drone-ui: error: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        control = FlightControl()
        signal.signal(signal.SIGINT, lambda *_: control.request_quit("Ctrl-C"))
        signal.signal(signal.SIGTERM, lambda *_: control.request_quit("SIGTERM"))
        flight = Flight(cfg, control, say=lambda line: print(line, flush=True))
        try:
            code = run_window(flight, arm_gate=not ui_args.arm, **ui_window_options(ui_args))
        except (RuntimeError, ValueError) as exc:
            print(f"drone-ui: error: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        if flight.log is not None:
            print(f"flight log: {flight.log.path}", flush=True)
        return code
    finally:
        if sim is not None:
            sim.terminate()
            try:
                sim.wait(timeout=5)
            except subprocess.TimeoutExpired:
                sim.kill()
                sim.wait()


if __name__ == "__main__":
    sys.exit(main())
