"""The flight log: one JSON object per line, appended and flushed as the flight goes, readable after a crash.

Format `drone-flight-log/1` (file `flight-YYYYmmdd-HHMMSS.jsonl` in the log directory):

    {"type": "header", "format": "drone-flight-log/1", "started": ISO time, "config": {...},
     "limits": {...}, "policy": {path, metadata}, "vehicle": {...}, "nav_origin_local": [x, y, z], ...}
    {"type": "step", "k": tick, "t": s since start (local clock), "vt": vehicle time s, "phase": "policy",
     "pos", "vel", "quat" (w,x,y,z body FLU -> ENU), "rates" (FLU): the telemetry in the navigation frame,
     "age": [attitude, position] s, "armed", "mode", "task", "target", "target_vel",
     "obs": [...] (policy input), "action": [...] (policy output), "cmd": {the setpoint sent} or null,
     "dry": true when the command was only logged (dry run), "pred": {"pos", "vel", "quat", "rates"}: the
     simulator's prediction of the NEXT step's state from this state and this command,
     "timing": {"late_ms", "compute_ms", "work_ms", "miss"}}
    {"type": "event", "t": ..., "vt": ..., "kind": "phase" | "command" | "safety" | "mode" | "armed" |
     "statustext" | "target" | "error" | "operator" | "preflight" | "would_send", ...}
    {"type": "end", "t": ..., "reason": ..., "exit_code": ..., "summary": {...}}

Why JSON lines: every record stands alone, so a flight cut short by a crash, a kill -9 or a power cut
loses at most the line being written; the reader skips a torn last line and says so. Each record is
flushed to the OS at once, and the file is fsync'ed about once a second from a helper thread (never in
the control loop, where an fsync could take milliseconds). NaN and infinities are written as the JSON
extensions NaN / Infinity, which Python's json reads back (a NaN action must be in the log).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

FORMAT = "drone-flight-log/1"


class FlightLogError(ValueError):
    """A file that is not a readable flight log; the message names the file and the problem."""


def _default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def unique_path(directory: Path, prefix: str, suffix: str = "") -> Path:
    """directory/PREFIX-TIME[SUFFIX], named by the local time; -2, -3 ... appended while the name is taken."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = directory / f"{prefix}-{stamp}{suffix}"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{prefix}-{stamp}-{n}{suffix}"
    return path


class StateEvents:
    """Logs the vehicle's arming and mode changes as events, against the last values seen (the first is not a
    change). One per vehicle log: the single flight's loop and each swarm member use it."""

    def __init__(self, log: "FlightLog"):
        self.log = log
        self._armed: bool | None = None
        self._mode: str | None = None

    def update(self, est) -> None:
        if est.armed != self._armed:
            if self._armed is not None:
                self.log.event("armed", est.t, vt=est.vt, armed=est.armed)
            self._armed = est.armed
        if est.mode != self._mode:
            if self._mode is not None:
                self.log.event("mode", est.t, vt=est.vt, mode=est.mode, previous=self._mode)
            self._mode = est.mode


class FlightLog:
    """Append-only JSON-lines writer; thread-safe (the loop, the supervisor and the CLI all write)."""

    def __init__(self, path: str | os.PathLike, fsync_period_s: float = 1.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # line-buffered text is not enough: write whole records and flush each explicitly
        self._f = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self.records = 0
        self.errors = 0
        self._closed = False
        self._dirty = False
        self._stop = threading.Event()
        self._syncer = threading.Thread(target=self._sync_loop, args=(fsync_period_s,), name="flightlog-fsync",
                                        daemon=True)
        self._syncer.start()

    @classmethod
    def create(cls, directory: str | os.PathLike, prefix: str = "flight") -> "FlightLog":
        """A new log file in directory, named by the local time (a suffix keeps names unique)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        return cls(unique_path(d, prefix, ".jsonl"))

    @property
    def t0(self) -> float:
        return self._t0

    def rel(self, t: float | None = None) -> float:
        return round((time.monotonic() if t is None else t) - self._t0, 6)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the OS. Never raises: a full disk must not stop the loop
        (the failure is counted and reported at the end)."""
        try:
            line = json.dumps(record, separators=(",", ":"), default=_default)
        except (TypeError, ValueError) as exc:
            line = json.dumps({"type": "event", "kind": "error", "detail": f"unloggable record: {exc}"})
        with self._lock:
            if self._closed:
                return
            try:
                self._f.write(line + "\n")
                self._f.flush()
                self.records += 1
                self._dirty = True
            except OSError:
                self.errors += 1

    def header(self, **fields: Any) -> None:
        self.write({"type": "header", "format": FORMAT,
                    "started": _dt.datetime.now().astimezone().isoformat(timespec="milliseconds"), **fields})

    def event(self, kind: str, t: float | None = None, **fields: Any) -> None:
        self.write({"type": "event", "t": self.rel(t), "kind": kind, **fields})

    def end(self, reason: str, exit_code: int, summary: dict[str, Any]) -> None:
        self.write({"type": "end", "t": self.rel(), "reason": reason, "exit_code": exit_code, "summary": summary})

    def _sync_loop(self, period: float) -> None:
        while not self._stop.wait(period):
            self.sync()

    def sync(self) -> None:
        with self._lock:
            if self._closed or not self._dirty:
                return
            fd = self._f.fileno()
            self._dirty = False
        try:
            os.fsync(fd)
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self.sync()
        with self._lock:
            if not self._closed:
                self._closed = True
                self._f.close()


# ---------------------------------------------------------------------------------------------- reading

class LogData:
    """A flight log read back: header, step records as arrays, events, the end record (None if the
    process died before writing it) and what was skipped."""

    def __init__(self, path: Path, header: dict, steps: list[dict], events: list[dict], end: dict | None,
                 torn_lines: int, bad_lines: list[int]):
        self.path = path
        self.header = header
        self.steps = steps
        self.events = events
        self.end = end
        self.torn_lines = torn_lines
        self.bad_lines = bad_lines

    @property
    def complete(self) -> bool:
        return self.end is not None

    def array(self, key: str, width: int | None = None, where: list[dict] | None = None) -> np.ndarray:
        """A step field over all steps (missing or null values as NaN)."""
        rows = self.steps if where is None else where
        out = []
        for r in rows:
            v = r.get(key)
            if isinstance(v, dict):
                v = None
            if v is None:
                out.append([math.nan] * (width or 1) if width else math.nan)
            else:
                out.append(v)
        if width:
            return np.asarray([x if isinstance(x, list) and len(x) == width else [math.nan] * width for x in out],
                              dtype=float).reshape(len(out), width)
        return np.asarray([x if isinstance(x, (int, float)) and not isinstance(x, bool) else
                           (float(x) if isinstance(x, bool) else math.nan) for x in out], dtype=float)

    def nested(self, key: str, sub: str, width: int) -> np.ndarray:
        out = np.full((len(self.steps), width), math.nan)
        for i, r in enumerate(self.steps):
            d = r.get(key)
            if isinstance(d, dict) and isinstance(d.get(sub), list) and len(d[sub]) == width:
                out[i] = d[sub]
            elif isinstance(d, dict) and isinstance(d.get(sub), (int, float)) and width == 1:
                out[i, 0] = d[sub]
        return out


def _lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    for i, raw in enumerate(lines):
        last = i == len(lines) - 1
        if not raw.strip():
            continue
        yield i + 1, raw.decode("utf-8", "replace"), last


def read_log(path: str | os.PathLike) -> LogData:
    """Read a flight log, tolerating a torn final line (a crash mid-write) and counting corrupt ones."""
    p = Path(path)
    if not p.is_file():
        raise FlightLogError(f"{p}: no such file")
    header: dict | None = None
    steps, events = [], []
    end = None
    torn, bad = 0, []
    for lineno, text, last in _lines(p):
        try:
            rec = json.loads(text)
        except json.JSONDecodeError:
            if last:
                torn += 1
            else:
                bad.append(lineno)
            continue
        if not isinstance(rec, dict):
            bad.append(lineno)
            continue
        kind = rec.get("type")
        if kind == "header":
            if rec.get("format") != FORMAT:
                raise FlightLogError(f"{p}: format {rec.get('format')!r}, this reader reads {FORMAT!r}")
            header = rec
        elif kind == "step":
            steps.append(rec)
        elif kind == "event":
            events.append(rec)
        elif kind == "end":
            end = rec
        else:
            bad.append(lineno)
    if header is None:
        raise FlightLogError(f"{p}: no {FORMAT} header line (not a drone-deploy flight log, or an empty one)")
    return LogData(p, header, steps, events, end, torn, bad)
