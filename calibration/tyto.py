"""Import of Tyto Robotics / RCbenchmark thrust-stand logs (the CSV the RCbenchmark software writes).

What this relies on (the column headers, looked up in public logs and scripts that read them; not from a
published specification): one header row, then one row per sample, comma-separated, with columns like

    Time (s), ESC signal (µs), Servo 1 (µs), Servo 2 (µs), Servo 3 (µs), AccX (g), AccY (g), AccZ (g),
    Torque (N·m), Thrust (N), Voltage (V), Current (A), Motor Electrical Speed (RPM),
    Motor Optical Speed (RPM), Electrical Power (W), Mechanical Power (W), Motor Efficiency (%),
    Propeller Mech. Efficiency (N/W), Overall Efficiency (N/W), Vibration (g), App message, ...

(the 1580/1585 series; the 1520 has no torque column; the header often ends with a trailing comma, and
some columns are empty on most rows). The units in brackets follow the software's unit settings, so
thrust may be `(N)`, `(kgf)`, `(gf)`, `(lbf)` or `(ozf)` and torque `(N·m)`, `(N.m)`, `(Nm)`,
`(lbf·ft)`, `(lbf·in)` or `(ozf·in)`; all are converted to SI here. Used columns:

- `Time (s)` time; `ESC signal (µs)` the commanded pulse width, mapped to throttle 0..1 over
  `pwm_range` (default 1000..2000 µs); `Thrust (...)`, `Torque (...)`; `Voltage (V)`, `Current (A)`.
- speed: `Motor Optical Speed (RPM)` when it has readings (an optical probe counts propeller blades, set up
  in the software), else `Motor Electrical Speed (RPM)`, which the software derives from the phase
  frequency and the motor pole count you entered: both are taken as mechanical rpm; `rpm_scale`
  corrects a wrong pole count after the fact.

Matching is by the name before the bracket, case-insensitive, so `µ`/`u` or a cp1252-encoded file do
not matter. Rows whose time or ESC signal is not a number are skipped and counted; an empty cell is a
missing reading. The software's torque sign depends on the spin direction; the fit uses its magnitude.
"""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from .protocol import LineStats
from .rundata import RPM_TO_RAD_S, STANDARD_GRAVITY, CalibrationDataError, RunData, from_columns

FORMAT = "rcbenchmark"
_LB = 4.4482216152605        # N per lbf
_THRUST_UNITS = {"n": 1.0, "kgf": STANDARD_GRAVITY, "gf": STANDARD_GRAVITY * 1e-3, "lbf": _LB, "ozf": _LB / 16.0}
_TORQUE_UNITS = {"n·m": 1.0, "n.m": 1.0, "nm": 1.0, "n*m": 1.0, "n m": 1.0, "n-m": 1.0,
                 "lbf·ft": _LB * 0.3048, "lbf.ft": _LB * 0.3048, "lbf*ft": _LB * 0.3048, "lbf·in": _LB * 0.0254,
                 "lbf.in": _LB * 0.0254, "ozf·in": _LB / 16.0 * 0.0254, "ozf.in": _LB / 16.0 * 0.0254}


def _split(header: str) -> tuple[str, str]:
    """'Thrust (kgf)' -> ('thrust', 'kgf')."""
    m = re.match(r"^\s*(.*?)\s*(?:\((.*)\))?\s*$", header)
    name, unit = (m.group(1), m.group(2) or "") if m else (header, "")
    return re.sub(r"\s+", " ", name.strip().lower()), unit.strip().lower().replace("\u22c5", "·")


def _decode(raw: bytes) -> str:
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def looks_like_rcbenchmark(path: str | Path) -> bool:
    try:
        head = _decode(Path(path).read_bytes()[:4096]).lstrip()
    except OSError:
        return False
    first = head.split("\n", 1)[0]
    return "esc signal" in first.lower() and "time" in first.lower()


def read_rcbenchmark(path: str | Path, pwm_range: tuple[float, float] = (1000.0, 2000.0),
                     rpm_source: str = "auto", rpm_scale: float = 1.0) -> RunData:
    """Read an RCbenchmark CSV log into a RunData (SI units, throttle 0..1)."""
    p = Path(path)
    try:
        text = _decode(p.read_bytes())
    except OSError as exc:
        raise CalibrationDataError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if pwm_range[1] <= pwm_range[0]:
        raise CalibrationDataError(f"pwm range {pwm_range} must increase")
    rows = csv.reader(io.StringIO(text))
    header = None
    for header in rows:
        if any(c.strip() for c in header):
            break
    if not header or not any(c.strip() for c in header):
        raise CalibrationDataError(f"{p}: empty file")
    names = [_split(h) for h in header]
    index = {name: (i, unit) for i, (name, unit) in enumerate(names) if name}

    def col(*candidates: str, required: str | None = None):
        for c in candidates:
            if c in index:
                return index[c]
        if required:
            found = ", ".join(h.strip() for h in header if h.strip())
            raise CalibrationDataError(f"{p}: no {required} column (looked for {' or '.join(repr(c) for c in candidates)}; "
                                       f"the file has: {found[:300]})")
        return None

    t_col = col("time", required="'Time (s)'")
    esc_col = col("esc signal", "esc", required="'ESC signal (µs)'")
    thrust_col = col("thrust", required="'Thrust (N)' / 'Thrust (kgf)'")
    torque_col = col("torque")
    volt_col, curr_col = col("voltage"), col("current")
    optical, electrical = col("motor optical speed"), col("motor electrical speed")
    thrust_k = _THRUST_UNITS.get(thrust_col[1])
    if thrust_k is None:
        raise CalibrationDataError(f"{p}: unknown thrust unit {thrust_col[1]!r} (known: {', '.join(_THRUST_UNITS)})")
    torque_k = None
    if torque_col is not None:
        torque_k = _TORQUE_UNITS.get(torque_col[1].replace(" ", "") if torque_col[1] != "n m" else "n m")
        if torque_k is None:
            raise CalibrationDataError(f"{p}: unknown torque unit {torque_col[1]!r} (known: {', '.join(_TORQUE_UNITS)})")

    stats = LineStats()
    raw_rows = []
    for lineno, row in enumerate(rows, start=2):
        if not any(c.strip() for c in row):
            continue
        raw_rows.append((lineno, row))

    def cell(row, c):
        if c is None or c[0] >= len(row):
            return None
        s = row[c[0]].strip()
        if s == "":
            return None
        try:
            v = float(s)
        except ValueError:
            raise ValueError(s) from None
        if not math.isfinite(v):
            raise ValueError(s)
        return v

    # which speed column: optical if it has readings (and was not ruled out), else electrical
    speed_col = None
    if rpm_source not in ("auto", "optical", "electrical"):
        raise CalibrationDataError(f"rpm source must be auto, optical or electrical, got {rpm_source!r}")
    if rpm_source in ("auto", "optical") and optical is not None and _has_values(raw_rows, optical[0]):
        speed_col = optical
    elif rpm_source in ("auto", "electrical") and electrical is not None:
        speed_col = electrical
    elif rpm_source == "optical":
        raise CalibrationDataError(f"{p}: --rpm-source optical but 'Motor Optical Speed (RPM)' has no readings")
    span = pwm_range[1] - pwm_range[0]
    cols: dict[str, list] = {k: [] for k in ("t", "throttle", "thrust", "torque", "speed", "voltage", "current")}
    last_t = -math.inf
    for lineno, row in raw_rows:
        text = ",".join(row)
        try:
            t, esc, thrust = cell(row, t_col), cell(row, esc_col), cell(row, thrust_col)
            torque, volts, amps = cell(row, torque_col), cell(row, volt_col), cell(row, curr_col)
            rpm = cell(row, speed_col)
        except ValueError as exc:
            stats.skip("bad number", lineno, f"{exc.args[0]!r} in {text[:60]}")
            continue
        if t is None or esc is None:
            stats.skip("no time or ESC signal", lineno, text)
            continue
        if t <= last_t:
            stats.skip("time went backwards", lineno, text)
            continue
        last_t = t
        stats.good += 1
        cols["t"].append(t)
        cols["throttle"].append(min(1.0, max(0.0, (esc - pwm_range[0]) / span)))
        cols["thrust"].append(None if thrust is None else thrust * thrust_k)
        cols["torque"].append(None if torque is None or torque_k is None else torque * torque_k)
        cols["speed"].append(None if rpm is None else rpm * rpm_scale * RPM_TO_RAD_S)
        cols["voltage"].append(volts)
        cols["current"].append(amps)
    if stats.good == 0:
        raise CalibrationDataError(f"{p}: no usable rows ({stats.summary()})")
    if stats.total_skipped > stats.good:
        raise CalibrationDataError(f"{p}: more unusable rows than data ({stats.summary()})")
    meta = {"thrust_unit": thrust_col[1], "torque_unit": torque_col[1] if torque_col else None,
            "speed_column": ("optical" if speed_col is optical else "electrical") if speed_col else None,
            "pwm_range_us": list(pwm_range), "rpm_scale": rpm_scale}
    run = from_columns(str(p), FORMAT, cols, stats, meta)
    if speed_col is None:
        run.notes.append("no motor speed column: k_T and k_Q cannot be fitted")
    return run


def _has_values(rows, i: int) -> bool:
    for _, row in rows:
        if i < len(row):
            try:
                if float(row[i]) > 0:
                    return True
            except ValueError:
                continue
    return False
