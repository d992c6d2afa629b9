"""Fly drone-deploy against real ArduCopter SITL and report what the firmware's ground truth says.

    python scripts/sitl_flight.py /path/to/ardupilot/build/sitl/bin/arducopter [--flights hover,goto,ctrlc,freeze,cut]

ArduCopter SITL is built from ArduPilot's source (see BENCHMARKS.md, "Real firmware", for how it was built
here); it cannot run in CI. Each flight starts a fresh SITL (`--model + -w`, the autotest copter defaults),
with this script's monitor on SERIAL0 (tcp 5760: it unblocks SITL's boot, sets the parameters below, and
records SIM_STATE, the simulator's true position, at 50 Hz) and drone-deploy on SERIAL1 (tcp 5762, or
through a relay the script can cut). The monitor sends no heartbeat and uses sysid 250, so the firmware's
GCS failsafe counts drone-deploy's heartbeats only.

Flights (the shipped hover_ctbr.onnx, takeoff to 1 m):
  hover   hold (0, 0, 1) for 10 s, land: takeoff height and hover error against ground truth
  goto    (0, 0, 1) -> (1.5, 0, 1) -> (0, 1.5, 1), 5 s each, land: error over each hold
  ctrlc   hover, SIGINT after 8 s of policy flight: drone-deploy lands and the vehicle disarms
  freeze  hover, SIGSTOP drone-deploy for good (a frozen laptop): GUID_TIMEOUT levels it, the GCS failsafe
          lands it; drift from the freeze to the failsafe and to touchdown
  cut     hover, the relay drops every byte both ways (a lost radio): the same failsafe, the same figures

Writes DIR/report.json and DIR/report.md (default runs/sitl/<time>/) and the flight logs under DIR/<flight>/.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pymavlink import mavutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from deploy.flightlog import read_log  # noqa: E402

# The vehicle's parameters for these flights: hardware.md's recommendations for a GCS-flown copter.
FLIGHT_PARAMS = {"FS_GCS_ENABLE": 5, "FS_GCS_TIMEOUT": 2.0, "GUID_TIMEOUT": 1.0}
MONITOR_SYSID = 250
EARTH_R = 6378137.0
FLIGHTS = ("hover", "goto", "ctrlc", "freeze", "cut")


class Monitor(threading.Thread):
    """SITL's SERIAL0: parameters, readiness, and the truth (SIM_STATE), modes and messages, wall-stamped."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.m = _connect(f"tcp:127.0.0.1:{port}", MONITOR_SYSID)
        self.truth: list[tuple[float, float, float, float]] = []      # (wall, lat deg, lon deg, alt m)
        self.heartbeats: list[tuple[float, str, bool]] = []          # (wall, mode, armed)
        self.texts: list[tuple[float, str]] = []
        self.prearm_ok = False
        self.local_position_at = 0.0
        self.ekf_abs = False
        self.version = ""
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.params: dict[str, float] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            msg = self.m.recv_match(blocking=True, timeout=0.2)
            if msg is None:
                continue
            now, t = time.time(), msg.get_type()
            with self.lock:
                if t == "SIM_STATE":
                    lat = msg.lat_int * 1e-7 if getattr(msg, "lat_int", 0) else msg.lat
                    lon = msg.lon_int * 1e-7 if getattr(msg, "lon_int", 0) else msg.lon
                    self.truth.append((now, lat, lon, msg.alt))
                elif t == "HEARTBEAT" and msg.get_srcSystem() == 1 and msg.autopilot != 8:
                    armed = bool(msg.base_mode & mavutil.mavlink.MAV_MODE_FLAG_SAFETY_ARMED)
                    self.heartbeats.append((now, mavutil.mode_string_v10(msg), armed))
                elif t == "STATUSTEXT":
                    self.texts.append((now, msg.text))
                elif t == "SYS_STATUS":
                    bit = mavutil.mavlink.MAV_SYS_STATUS_PREARM_CHECK
                    self.prearm_ok = bool(msg.onboard_control_sensors_health & bit)
                elif t == "LOCAL_POSITION_NED":
                    self.local_position_at = now
                elif t == "EKF_STATUS_REPORT":
                    self.ekf_abs = bool(msg.flags & mavutil.mavlink.EKF_POS_HORIZ_ABS)
                elif t == "PARAM_VALUE":
                    self.params[msg.param_id] = msg.param_value
                elif t == "AUTOPILOT_VERSION":
                    v = msg.flight_sw_version
                    self.version = f"{v >> 24 & 255}.{v >> 16 & 255}.{v >> 8 & 255}"

    def interval(self, msg_id: int, hz: float) -> None:
        self.m.mav.command_long_send(1, 1, mavutil.mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, 0, msg_id, 1e6 / hz,
                                     0, 0, 0, 0, 0)

    def set_param(self, name: str, value: float, timeout: float = 5.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.m.mav.param_set_send(1, 1, name.encode(), float(value), mavutil.mavlink.MAV_PARAM_TYPE_REAL32)
            t_try = time.monotonic() + 1.0
            while time.monotonic() < t_try:
                with self.lock:
                    if name in self.params and math.isclose(self.params[name], value, abs_tol=1e-4):
                        return
                time.sleep(0.05)
        raise RuntimeError(f"SITL did not confirm {name}={value}")

    def latest(self) -> tuple[str, bool] | None:
        with self.lock:
            return self.heartbeats[-1][1:] if self.heartbeats else None

    def close(self) -> None:
        self.stop.set()
        self.join(2.0)
        self.m.close()


def _connect(url: str, sysid: int, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while True:
        try:
            return mavutil.mavlink_connection(url, source_system=sysid, source_component=191, autoreconnect=True)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)


class Relay(threading.Thread):
    """A TCP relay between drone-deploy and SITL's SERIAL1 whose `cut` drops every byte both ways while
    keeping both sockets open: what a radio out of range does (no reset, no error, just silence)."""

    def __init__(self, target_port: int):
        super().__init__(daemon=True)
        self.target_port = target_port
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.cut = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        client, _ = self.server.accept()
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()
        self.stop.wait()
        for s in (client, upstream, self.server):
            s.close()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while not self.stop.is_set():
            try:
                data = src.recv(4096)
            except OSError:
                return
            if not data:
                return
            if not self.cut.is_set():
                try:
                    dst.sendall(data)
                except OSError:
                    return


def start_sitl(binary: Path, defaults: Path, workdir: Path) -> subprocess.Popen:
    cmd = [str(binary), "--model", "+", "--defaults", str(defaults), "-I0", "-w", "--serial0", "tcp:0"]
    log = open(workdir / "sitl.log", "w")
    return subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(mon: Monitor, timeout: float = 180.0) -> float:
    """Until SYS_STATUS says the pre-arm checks pass and the EKF has an absolute position and a local one
    (ArduCopter passes its pre-arm checks for STABILIZE before GPS, and sends LOCAL_POSITION_NED only once the
    EKF origin is set). Returns the seconds it took."""
    t0 = time.monotonic()
    mon.m.mav.command_long_send(1, 1, mavutil.mavlink.MAV_CMD_REQUEST_MESSAGE, 0,
                                mavutil.mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION, 0, 0, 0, 0, 0, 0)
    while time.monotonic() - t0 < timeout:
        if mon.prearm_ok and mon.ekf_abs and time.time() - mon.local_position_at < 1.0:
            return time.monotonic() - t0
        for msg_id in (mavutil.mavlink.MAVLINK_MSG_ID_SYS_STATUS, mavutil.mavlink.MAVLINK_MSG_ID_EKF_STATUS_REPORT,
                       mavutil.mavlink.MAVLINK_MSG_ID_LOCAL_POSITION_NED):
            mon.interval(msg_id, 2.0)
        time.sleep(1.0)
    raise RuntimeError(f"SITL not ready to arm within {timeout:g} s")


def deploy_cmd(port: int, logdir: Path, targets: list[str], then: str, hold: float) -> list[str]:
    exe = Path(sys.executable).with_name("drone-deploy")
    cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "deploy.cli"]),
           "--port", f"tcp:127.0.0.1:{port}", "--log", str(logdir), "--takeoff-alt", "1", "--hold", str(hold),
           "--then", then, "--quiet"]
    for t in targets:
        cmd.append(f"--target={t}")
    return cmd


def local_truth(mon: Monitor, origin: tuple[float, float, float]):
    """The truth as (wall, east, north, up) metres from the vehicle's resting point before the flight."""
    lat0, lon0, alt0 = origin
    k = math.pi / 180.0 * EARTH_R
    with mon.lock:
        rows = list(mon.truth)
    return [(w, (lon - lon0) * k * math.cos(math.radians(lat0)), (lat - lat0) * k, alt - alt0)
            for w, lat, lon, alt in rows]


def window(truth, t0: float, t1: float):
    return [r for r in truth if t0 <= r[0] <= t1]


def errors(rows, target) -> list[float]:
    return [math.dist(r[1:], target) for r in rows]


def fly(name: str, args, outdir: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"sitl-{name}-"))
    sitl = start_sitl(args.arducopter, args.defaults, work)
    mon = relay = deploy = None
    result: dict = {"flight": name}
    try:
        time.sleep(1.0)
        mon = Monitor(5760)
        mon.start()
        result["ready_s"] = round(wait_ready(mon), 1)
        for pname, value in {**FLIGHT_PARAMS, **args.params}.items():
            mon.set_param(pname, value)
        mon.interval(mavutil.mavlink.MAVLINK_MSG_ID_SIM_STATE, 50.0)
        time.sleep(1.0)
        with mon.lock:
            origin = mon.truth[-1][1:]
        result["firmware"] = f"ArduCopter {mon.version or '?'} SITL"
        port = 5762
        if name == "cut":
            relay = Relay(5762)
            relay.start()
            port = relay.port
        targets = {"goto": ["0,0,1", "1.5,0,1", "0,1.5,1"]}.get(name, ["0,0,1"])
        then = "land" if name in ("hover", "goto") else "stay"
        hold = 10.0 if name == "hover" else 5.0
        logdir = outdir / name
        out = open(outdir / f"{name}-deploy.txt", "w")
        t_start = time.time()
        deploy = subprocess.Popen(deploy_cmd(port, logdir, targets, then, hold), stdout=out, stderr=subprocess.STDOUT,
                                  cwd=ROOT)
        event_at = None
        if name in ("ctrlc", "freeze", "cut"):
            event_at = _wait_policy(logdir, 8.0, deploy, timeout=120.0)
            if event_at is not None:
                if name == "ctrlc":
                    deploy.send_signal(signal.SIGINT)
                elif name == "freeze":
                    deploy.send_signal(signal.SIGSTOP)
                else:
                    relay.cut.set()
        ended = _wait_end(mon, deploy, name, timeout=150.0)
        if name == "freeze":
            deploy.send_signal(signal.SIGCONT)
        if relay is not None:
            relay.cut.clear()
        try:
            result["deploy_exit"] = deploy.wait(timeout=90.0)
        except subprocess.TimeoutExpired:
            deploy.send_signal(signal.SIGINT)
            result["deploy_exit"] = deploy.wait(timeout=60.0)
        time.sleep(1.0)
        result.update(_figures(name, mon, origin, logdir, t_start, event_at, ended, targets, hold))
    except Exception as exc:  # a flight that could not be run is reported, the others still fly
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if deploy is not None and deploy.poll() is None:
            deploy.send_signal(signal.SIGCONT)
            deploy.kill()
        if relay is not None:
            relay.stop.set()
        if mon is not None:
            mon.close()
        os.killpg(sitl.pid, signal.SIGTERM)
        try:
            sitl.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(sitl.pid, signal.SIGKILL)
    return result


def _wait_policy(logdir: Path, seconds: float, deploy: subprocess.Popen, timeout: float) -> float | None:
    """Wall time once drone-deploy has flown the policy for `seconds` (from its log), or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and deploy.poll() is None:
        logs = sorted(logdir.glob("flight-*.jsonl"))
        if logs:
            log = read_log(logs[-1])
            started = _started(log)
            phases = [e for e in log.events if e.get("kind") == "phase" and e.get("phase") == "policy"]
            if phases and log.steps and log.steps[-1]["t"] - phases[0]["t"] >= seconds:
                return started + log.steps[-1]["t"]
        time.sleep(0.5)
    return None


def _wait_end(mon: Monitor, deploy: subprocess.Popen, name: str, timeout: float) -> float | None:
    """Wall time the vehicle disarmed after having been armed (or None)."""
    end = time.monotonic() + timeout
    was_armed = False
    while time.monotonic() < end:
        latest = mon.latest()
        if latest is not None:
            was_armed = was_armed or latest[1]
            if was_armed and not latest[1]:
                return time.time()
        if name in ("hover", "goto", "ctrlc") and deploy.poll() is not None and not was_armed:
            return None
        time.sleep(0.1)
    return None


def _started(log) -> float:
    return dt.datetime.fromisoformat(log.header["started"]).timestamp()


def _figures(name, mon, origin, logdir, t_start, event_at, disarmed_at, targets, hold) -> dict:
    truth = local_truth(mon, origin)
    logs = sorted(logdir.glob("flight-*.jsonl"))
    log = read_log(logs[-1]) if logs else None
    out: dict = {"disarmed": disarmed_at is not None, "flight_log": str(logs[-1]) if logs else None}
    if log is None:
        return out
    started = _started(log)
    phase_t = {}
    for e in log.events:
        if e.get("kind") == "phase":
            phase_t.setdefault(e["phase"], started + e["t"])
    out["end_reason"] = log.end["reason"] if log.end else None
    if "policy" in phase_t:
        climb = window(truth, phase_t.get("takeoff", t_start), phase_t["policy"])
        out["takeoff_height_m"] = round(max(r[3] for r in climb), 3) if climb else None
        out["takeoff_s"] = round(phase_t["policy"] - phase_t.get("takeoff", t_start), 1)
    # hold windows: the last `hold` seconds before each target switch / the landing / the injected event
    switches = [started + e["t"] for e in log.events if e.get("kind") == "target" and e.get("index") is not None]
    ends = switches[1:] + [event_at if event_at is not None else phase_t.get("landing", time.time())]
    holds = []
    for i, (tgt, t1) in enumerate(zip(targets, ends)):
        rows = window(truth, t1 - min(hold, 5.0), t1)
        e = errors(rows, [float(v) for v in tgt.split(",")])
        if e:
            last = errors(window(truth, t1 - 1.0, t1), [float(v) for v in tgt.split(",")])
            holds.append({"target": tgt, "mean_error_m": round(sum(e) / len(e), 3), "max_error_m": round(max(e), 3),
                          "last_s_error_m": round(sum(last) / len(last), 3) if last else None})
    out["holds"] = holds
    if event_at is not None:
        at = window(truth, event_at - 0.1, event_at + 0.1)
        p0 = at[0][1:] if at else None
        modes = [(w, m) for w, m, armed in mon.heartbeats if w >= event_at]
        changes = []
        for w, m in modes:
            if not changes or changes[-1][1] != m:
                changes.append((w, m))
        out["modes_after"] = [(round(w - event_at, 2), m) for w, m in changes]
        fs = next(((w, m) for w, m in changes if m in ("LAND", "RTL", "BRAKE")), None)
        if p0 is not None:
            def drift(t1):
                rows = window(truth, event_at, t1)
                return round(max(math.hypot(r[1] - p0[0], r[2] - p0[1]) for r in rows), 3) if rows else None
            if fs is not None:
                out["failsafe"] = {"mode": fs[1], "after_s": round(fs[0] - event_at, 2), "drift_m": drift(fs[0])}
            if disarmed_at is not None:
                out["drift_to_disarm_m"] = drift(disarmed_at)
                out["event_to_disarm_s"] = round(disarmed_at - event_at, 1)
        out["statustext_after"] = [txt for w, txt in mon.texts if w >= event_at][:12]
    if truth:
        out["final_height_m"] = round(truth[-1][3], 3)
    return out


def report_md(results: list[dict]) -> str:
    lines = ["| flight | ready | takeoff height | hold error mean / max (m) | mode after the event | drift | exit | end |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        holds = "; ".join(f"{h['target']}: {h['mean_error_m']:.3f} / {h['max_error_m']:.3f}" for h in r.get("holds", []))
        fs = r.get("failsafe")
        fs_text = f"{fs['mode']} after {fs['after_s']} s" if fs else ""
        fs_text += f"; disarmed after {r['event_to_disarm_s']} s" if r.get("event_to_disarm_s") else ""
        drift = ""
        if fs:
            drift = f"{fs['drift_m']} m to the mode change, {r.get('drift_to_disarm_m')} m to disarm"
        lines.append(f"| {r['flight']} | {r.get('ready_s', '')} s | {r.get('takeoff_height_m', '')} m | {holds} | "
                     f"{fs_text} | {drift} | {r.get('deploy_exit', '')} | {r.get('end_reason') or r.get('error', '')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("arducopter", type=Path, help="the arducopter SITL binary (build/sitl/bin/arducopter)")
    ap.add_argument("--defaults", type=Path, help="parameter defaults (default: Tools/autotest/default_params/"
                                                  "copter.parm of the binary's source tree)")
    ap.add_argument("--flights", default=",".join(FLIGHTS), help=f"comma-separated subset of {','.join(FLIGHTS)}")
    ap.add_argument("--out", type=Path, help="report directory (default runs/sitl/<time>)")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help=f"a vehicle parameter for every flight (over {FLIGHT_PARAMS})")
    args = ap.parse_args(argv)
    if not args.arducopter.is_file():
        ap.error(f"{args.arducopter}: no such file")
    args.arducopter = args.arducopter.resolve()
    if args.defaults is None:
        args.defaults = args.arducopter.parents[3] / "Tools" / "autotest" / "default_params" / "copter.parm"
    if not args.defaults.is_file():
        ap.error(f"{args.defaults}: no such file (give --defaults)")
    try:
        args.params = {k: float(v) for k, v in (p.split("=", 1) for p in args.param)}
    except ValueError:
        ap.error("--param takes NAME=VALUE with a number")
    flights = [f for f in args.flights.split(",") if f]
    unknown = set(flights) - set(FLIGHTS)
    if unknown:
        ap.error(f"unknown flights: {', '.join(sorted(unknown))}")
    out = args.out or ROOT / "runs" / "sitl" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in flights:
        print(f"flight {name} ...", flush=True)
        r = fly(name, args, out)
        print(json.dumps(r, indent=1), flush=True)
        results.append(r)
    (out / "report.json").write_text(json.dumps(results, indent=1))
    (out / "report.md").write_text(report_md(results))
    print(report_md(results))
    print(f"report: {out / 'report.md'}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
