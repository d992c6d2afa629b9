"""drone-sim-vehicle: serve a simulated ArduCopter or PX4 vehicle on a MAVLink endpoint (see firmware_bridge.sim)."""
from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading

from .. import signing
from ..transport import LinkDownError, PtyTransport, Transport, connect_hint, serve_endpoint
from .swarm import SimSwarm
from .vehicle import SensorNoise, SimVehicle, VehicleConfig


def endpoint_of(args: argparse.Namespace) -> str:
    """The --port URL, or what the older endpoint flags mean in that convention."""
    if args.port:
        return args.port
    if args.udp:
        return f"udpout:{args.udp}"
    if args.udpin:
        return f"udpin:{args.udpin}"
    if args.tcp:
        return f"tcpin:{args.tcp}"
    return f"pty:{args.pty}" if args.pty else "pty"


def make_transport(args: argparse.Namespace) -> Transport:
    return serve_endpoint(endpoint_of(args), args.baud)


def _parse_version(text: str) -> tuple[int, int, int]:
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"version must be X.Y.Z, got {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def _parse_offset(text: str) -> tuple[float, float]:
    try:
        north, east = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--home-offset expects NORTH,EAST in metres, got {text!r}") from None
    if not (math.isfinite(north) and math.isfinite(east)):
        raise argparse.ArgumentTypeError(f"--home-offset must be finite, got {text!r}")
    return north, east


def _parse_param(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--param expects NAME=VALUE, got {text!r}")
    try:
        return name.strip().upper(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--param {name}: {value!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="drone-sim-vehicle", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Parameters (failsafe timings, GUID_OPTIONS ...) are listed in "
                                        "firmware_bridge/README.md and can be set with --param or over MAVLink.")
    ep = ap.add_mutually_exclusive_group()
    ep.add_argument("--port", metavar="URL",
                    help="where to serve, in pymavlink/MAVProxy URL forms: pty (the default), pty:LINK (and keep a "
                         "symlink LINK to it), udpout:HOST:PORT (send to a GCS listening there), udpin:HOST:PORT, "
                         "tcpin:HOST:PORT (listen), or a serial device")
    ep.add_argument("--pty", nargs="?", const="", default=None, metavar="LINK", help="same as --port pty[:LINK]")
    ep.add_argument("--udp", metavar="HOST:PORT", help="same as --port udpout:HOST:PORT")
    ep.add_argument("--udpin", metavar="HOST:PORT", help="same as --port udpin:HOST:PORT")
    ep.add_argument("--tcp", metavar="HOST:PORT", help="same as --port tcpin:HOST:PORT")
    ap.add_argument("--baud", type=int, default=115200, help="baud rate when --port is a serial device")
    ap.add_argument("--firmware", choices=["ardupilot", "px4"], default="ardupilot")
    ap.add_argument("--firmware-version", type=_parse_version, metavar="X.Y.Z",
                    help="the version to emulate and announce (default ArduCopter 4.5.0 / PX4 1.13.3); "
                         "parameter names follow it (ArduPilot 4.7: MAV_GCS_SYSID)")
    ap.add_argument("--sysid", type=int, default=1)
    ap.add_argument("--drone", metavar="PARAMS.json", action="append",
                    help="drone params JSON (default: the nominal 5-inch quad); with --count, once for all vehicles "
                         "or once per vehicle")
    ap.add_argument("--count", type=int, default=1, metavar="N",
                    help="N vehicles, system ids --sysid .. --sysid+N-1, homes --spacing m apart (east)")
    ap.add_argument("--link", choices=("shared", "separate"), default="shared",
                    help="with --count: all vehicles on the one --port (frames routed by system id, like one telemetry "
                         "radio), or one endpoint each (consecutive ports, or one pty each)")
    ap.add_argument("--spacing", type=float, default=2.0, metavar="M", help="with --count: metres between homes")
    ap.add_argument("--home-offset", type=_parse_offset, default=(0.0, 0.0), metavar="NORTH,EAST",
                    help="where this vehicle's home (the first one's, with --count) stands from the reference home, "
                         "m: vehicles of several drone-sim-vehicle processes on one field")
    ap.add_argument("--physics-hz", type=float, default=500.0)
    ap.add_argument("--loop-hz", type=float, default=100.0, help="flight controller loop and fastest telemetry rate")
    ap.add_argument("--noise-pos", type=float, default=0.0, help="position noise 1-sigma (m)")
    ap.add_argument("--noise-vel", type=float, default=0.0, help="velocity noise 1-sigma (m/s)")
    ap.add_argument("--noise-att-deg", type=float, default=0.0, help="attitude noise 1-sigma (deg)")
    ap.add_argument("--noise-gyro", type=float, default=0.0, help="gyro noise 1-sigma (rad/s)")
    ap.add_argument("--noise-accel", type=float, default=0.0, help="accelerometer noise 1-sigma (m/s^2)")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="delay before a received message takes effect")
    ap.add_argument("--telemetry-latency-ms", type=float, default=0.0, help="delay of everything sent")
    ap.add_argument("--signing-key", metavar="KEYFILE", help="MAVLink 2 signing key file (see firmware_bridge.signing)")
    ap.add_argument("--lockstep", action="store_true", help="advance one control period per received setpoint")
    ap.add_argument("--lockstep-dt", type=float, default=0.02)
    ap.add_argument("--speed", type=float, default=1.0, help="real-time factor when free-running")
    ap.add_argument("--param", type=_parse_param, action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--heading-deg", type=float, default=0.0, help="initial heading, degrees from north")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--duration", type=float, default=None, help="exit after this many seconds")
    ap.add_argument("--log-level", default="WARNING")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s: %(message)s")
    drones = args.drone or []
    if args.count != 1:
        return _swarm_main(args, drones)
    if len(drones) > 1:
        print("drone-sim-vehicle: error: several --drone files for one vehicle (give --count N)", file=sys.stderr)
        return 2
    try:
        cfg = _vehicle_config(args)
        cfg.drone = drones[0] if drones else None
        transport = make_transport(args)
        try:
            vehicle = SimVehicle(transport, cfg)
        except BaseException:
            transport.close()
            raise
    except (ValueError, OSError, LinkDownError, signing.SigningKeyError) as exc:  # EndpointError is a ValueError
        print(f"drone-sim-vehicle: error: {exc}", file=sys.stderr)
        return 2
    where = transport.path if isinstance(transport, PtyTransport) else transport.name
    hint = f"MavLink('{connect_hint(transport)}'), drone-deploy --port {connect_hint(transport)}"
    print(f"drone-sim-vehicle: {cfg.firmware.value} quadrotor, sysid {cfg.system_id}, "
          f"{'lockstep' if cfg.lockstep else f'real time x{cfg.speed:g}'}, signing "
          f"{'on' if cfg.signing_key else 'off'}", flush=True)
    print(f"serving on {where}", flush=True)
    print(f"connect with: {hint}", flush=True)
    stop = threading.Event()

    def _stop(*_):
        vehicle._running = False
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        vehicle.run(args.duration)
    finally:
        vehicle.close()
    return 0



def _vehicle_config(args: argparse.Namespace) -> VehicleConfig:
    return VehicleConfig(
        firmware=args.firmware, system_id=args.sysid, physics_hz=args.physics_hz, loop_hz=args.loop_hz,
        noise=SensorNoise(args.noise_pos, args.noise_vel, math.radians(args.noise_att_deg), args.noise_gyro,
                          args.noise_accel),
        command_latency_s=args.latency_ms / 1000.0, telemetry_latency_s=args.telemetry_latency_ms / 1000.0,
        signing_key=args.signing_key, lockstep=args.lockstep, lockstep_dt=args.lockstep_dt, speed=args.speed,
        seed=args.seed, heading_deg=args.heading_deg, params=dict(args.param), firmware_version=args.firmware_version,
        home_offset_m=args.home_offset)


def _swarm_main(args: argparse.Namespace, drones: list[str]) -> int:
    """--count N: a SimSwarm; one 'serving on' line per endpoint, naming the system ids behind it."""
    try:
        swarm = SimSwarm(endpoint_of(args), args.count, _vehicle_config(args), shared=args.link == "shared",
                         spacing=args.spacing, drones=drones, baud=args.baud)
    except (ValueError, OSError, LinkDownError, signing.SigningKeyError) as exc:
        print(f"drone-sim-vehicle: error: {exc}", file=sys.stderr)
        return 2
    ids = [v.sysid for v in swarm.vehicles]
    cfg = swarm.vehicles[0].config
    print(f"drone-sim-vehicle: {args.count} {cfg.firmware.value} quadrotors, sysids {ids[0]}-{ids[-1]}, homes "
          f"{args.spacing:g} m apart, {'lockstep' if cfg.lockstep else f'real time x{cfg.speed:g}'}, {args.link} "
          f"link", flush=True)
    for k, t in enumerate(swarm.endpoints):
        who = f"sysids {ids[0]}-{ids[-1]}" if len(swarm.endpoints) == 1 else f"sysid {ids[k]}"
        where = t.path if isinstance(t, PtyTransport) else t.name
        print(f"serving on {where} ({who})", flush=True)
        print(f"connect with: MavLink('{connect_hint(t)}')", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    swarm.start()
    try:
        stop.wait(args.duration)
    finally:
        swarm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
