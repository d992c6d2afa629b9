"""The run recording (`stand-run/1`): a CSV written line by line while the motor spins.

    # drone-calibrate thrust-stand run (stand-run/1): 4 host columns, then the stand's line verbatim
    # meta: {"motor": 1, "fc": "/dev/ttyACM0", "stand": "/dev/ttyUSB0", "date": "...", ...}
    # stand-cal: {"schema": "thrust-stand-cal/1", "thrust": {...}, "torque": {...}}
    host_time,throttle,phase,segment,type,t_us,seq,thrust_raw,torque_raw,rpm,voltage_mv,current_ma,flags*checksum
    0.013204,0.0000,rest,0,$D,20512344,4711,84213,-11870,0.0,16412,310,7*75
    ...
    # end: {"reason": "completed", "stand": {"good": 9120, "skipped": {"bad checksum": 3}, ...}}

Every row is what the stand sent, untouched (its own comma-separated fields and checksum), after the
laptop's arrival time (s since the run started), the throttle it was commanding at that moment, the
plan phase and segment index. Garbage lines are recorded too (non-printable bytes escaped), so the file
is a faithful log and the offline fit re-validates every line: bad ones are skipped and counted again.
The file is line-buffered and fsync'ed every second, so a crash or a pulled cable leaves everything up to
the last second on disk; the `# end:` line is written on every exit path that Python still controls.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

from .protocol import LineError, LineStats, StandClock, StandInfo, StandSample, parse_line, Comment
from .rundata import RPM_TO_RAD_S, CalibrationDataError, RunData, from_columns
from .standcal import StandCal, StandCalError

FORMAT = "stand-run/1"
TITLE = f"# drone-calibrate thrust-stand run ({FORMAT}): 4 host columns, then the stand's line verbatim"
HEADER = ("host_time,throttle,phase,segment,type,t_us,seq,thrust_raw,torque_raw,rpm,voltage_mv,current_ma,"
          "flags*checksum")


class RunWriter:
    """Appends rows as they arrive (thread-safe); close() writes the `# end:` line."""

    def __init__(self, path: str | Path, meta: dict, cal: StandCal | None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "w", buffering=1, newline="\n", encoding="ascii", errors="backslashreplace")
        self._lock = threading.Lock()
        self._last_sync = time.monotonic()
        self.rows = 0
        self._f.write(TITLE + "\n")
        self._f.write("# meta: " + json.dumps(meta, sort_keys=True) + "\n")
        if cal is not None:
            self._f.write("# stand-cal: " + json.dumps(cal.to_dict(), sort_keys=True) + "\n")
        self._f.write(HEADER + "\n")
        self._sync()

    def record(self, host_time: float, throttle: float, phase: str, segment: int, line: str) -> None:
        with self._lock:
            if self._f.closed:
                return
            self._f.write(f"{host_time:.6f},{throttle:.4f},{phase},{segment},{line}\n")
            self.rows += 1
            if time.monotonic() - self._last_sync > 1.0:
                self._sync()

    def note(self, key: str, value) -> None:
        with self._lock:
            if not self._f.closed:
                self._f.write(f"# {key}: {json.dumps(value, sort_keys=True)}\n")

    def close(self, end: dict) -> None:
        with self._lock:
            if self._f.closed:
                return
            self._f.write("# end: " + json.dumps(end, sort_keys=True, default=str) + "\n")
            self._sync()
            self._f.close()

    def _sync(self) -> None:
        self._f.flush()
        try:
            os.fsync(self._f.fileno())
        except OSError:
            pass
        self._last_sync = time.monotonic()


def _header_json(line: str, key: str, path: Path, lineno: int):
    try:
        return json.loads(line.split(":", 1)[1])
    except (json.JSONDecodeError, IndexError):
        raise CalibrationDataError(f"{path}: line {lineno}: the '# {key}:' header is not valid JSON") from None


def read_stand_run(path: str | Path, cal: StandCal | None = None) -> RunData:
    """Read a stand-run/1 recording. `cal` overrides the calibration recorded in the file."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("ascii", errors="backslashreplace")
    except OSError as exc:
        raise CalibrationDataError(f"{p}: cannot read: {exc.strerror or exc}") from None
    lines = text.split("\n")
    if not lines or not lines[0].startswith("# drone-calibrate thrust-stand run"):
        raise CalibrationDataError(f"{p}: not a {FORMAT} recording (its first line should be {TITLE[:40]!r}...); "
                                   f"for a Tyto Robotics / RCbenchmark log use --format rcbenchmark")
    meta: dict = {}
    file_cal: StandCal | None = None
    stats = LineStats()
    clock = StandClock()
    cols: dict[str, list] = {k: [] for k in ("t", "throttle", "thrust", "torque", "speed", "voltage", "current")}
    fresh: dict[str, list] = {"thrust": [], "torque": [], "speed": []}
    header_seen = False
    last_t = -math.inf
    t_shift = 0.0
    last_host = None
    notes: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("# meta:"):
                meta = _header_json(line, "meta", p, lineno)
            elif line.startswith("# stand-cal:"):
                try:
                    file_cal = StandCal.from_dict(_header_json(line, "stand-cal", p, lineno), f"{p} (stand-cal header)")
                except StandCalError as exc:
                    raise CalibrationDataError(str(exc)) from None
            elif line.startswith("# end:"):
                meta["end"] = _header_json(line, "end", p, lineno)
            continue
        if not header_seen:
            if line.startswith("host_time,"):
                header_seen = True
                continue
            raise CalibrationDataError(f"{p}: line {lineno}: expected the column header {HEADER[:30]!r}...")
        parts = line.split(",", 4)
        if len(parts) < 5:
            stats.skip("bad host columns", lineno, line)
            continue
        try:
            host_t, throttle, segment = float(parts[0]), float(parts[1]), int(parts[3])
        except ValueError:
            stats.skip("bad host columns", lineno, line)
            continue
        if not (math.isfinite(host_t) and math.isfinite(throttle) and 0.0 <= throttle <= 1.0):
            stats.skip("bad host columns", lineno, line)
            continue
        try:
            s = parse_line(parts[4])
        except LineError as exc:
            stats.skip(exc.reason, lineno, parts[4])
            continue
        if isinstance(s, Comment):
            stats.comments += 1
            continue
        if isinstance(s, StandInfo):
            meta.setdefault("stand_info", {"name": s.name, "protocol": s.protocol, "line_rate_hz": s.line_rate_hz,
                                           "pulses_per_rev": s.pulses_per_rev, "hx711_rate_hz": s.hx711_rate_hz})
            continue
        assert isinstance(s, StandSample)
        stats.lost_lines += clock.gap(s.seq)
        t = clock.seconds(s.t_us) + t_shift
        if t <= last_t:
            if last_t - t > 0.1 and last_host is not None:
                # the stand restarted (its clock began again): continue its time from the laptop's clock
                t_shift += (last_t - t) + max(host_t - last_host, 1e-3)
                t = clock.seconds(s.t_us) + t_shift
                notes.append(f"stand clock restarted at line {lineno} (stand reset?); continued on the host clock")
            else:
                stats.skip("time went backwards", lineno, parts[4])
                continue
        last_t, last_host = t, host_t
        stats.good += 1
        _append_sample(cols, fresh, t, throttle, s, file_cal if cal is None else cal)
    if not header_seen:
        raise CalibrationDataError(f"{p}: no column header line; the file is truncated or not a recording")
    cal_used = cal if cal is not None else file_cal
    if cal_used is None or cal_used.thrust is None:
        raise CalibrationDataError(f"{p}: no thrust-cell calibration in the file; pass --stand-cal stand.json "
                                   f"(written by drone-calibrate scale)")
    run = from_columns(str(p), FORMAT, cols, stats, meta, fresh)
    run.notes.extend(notes)
    if cal_used.torque is None:
        run.notes.append("no torque-cell calibration: torque not used")
    run.meta["stand_cal"] = cal_used.to_dict()
    _check_garbage(run, p)
    return run


def _append_sample(cols, fresh, t, throttle, s: StandSample, cal: StandCal | None) -> None:
    from .protocol import FLAG_RPM, FLAG_THRUST, FLAG_TORQUE

    thrust = cal.thrust.convert(s.thrust_raw) if (cal and cal.thrust and s.thrust_raw is not None) else None
    torque = cal.torque.convert(s.torque_raw) if (cal and cal.torque and s.torque_raw is not None) else None
    cols["t"].append(t)
    cols["throttle"].append(throttle)
    cols["thrust"].append(thrust)
    cols["torque"].append(torque)
    cols["speed"].append(None if s.rpm is None else s.rpm * RPM_TO_RAD_S)
    cols["voltage"].append(None if s.voltage_mv is None else s.voltage_mv * 1e-3)
    cols["current"].append(None if s.current_ma is None else s.current_ma * 1e-3)
    fresh["thrust"].append(bool(s.flags & FLAG_THRUST))
    fresh["torque"].append(bool(s.flags & FLAG_TORQUE))
    fresh["speed"].append(bool(s.flags & FLAG_RPM))


def _check_garbage(run: RunData, p: Path) -> None:
    bad, good = run.stats.total_skipped, run.stats.good
    if good == 0:
        ex = "; ".join(f"line {n}: {r}" for n, r, _ in run.stats.examples[:3])
        raise CalibrationDataError(f"{p}: no valid stand line ({run.stats.summary()}; e.g. {ex})")
    if bad > good:
        raise CalibrationDataError(f"{p}: more garbage than data ({run.stats.summary()}): wrong file, or the "
                                   f"serial link was unusable (baud rate, cable)")
