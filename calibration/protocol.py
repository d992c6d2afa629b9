"""The thrust stand's line protocol: what the microcontroller sketch (firmware/thrust_stand) prints.

One ASCII line per sample, NMEA-style so that a corrupted line is recognised instead of believed:

    $D,<t_us>,<seq>,<thrust_raw>,<torque_raw>,<rpm>,<voltage_mv>,<current_ma>,<flags>*<CS>

- `t_us`: the microcontroller's micros() (uint32, wraps every 71.6 min; the reader unwraps it).
- `seq`: line counter mod 65536; a gap means lines were lost on the way (counted, not an error).
- `thrust_raw`, `torque_raw`: HX711 24-bit signed counts (tare and scale live on the laptop, in the
  stand calibration file written by `drone-calibrate scale`). A reading at the converter's rail
  (-8388608 or 8388607) is a known HX711 glitch (a read that raced the conversion) and is rejected.
- `rpm`: mechanical revolutions per minute (the sketch divides by the pulses per revolution).
- `voltage_mv`, `current_ma`: supply voltage and current, integers.
- `flags`: bit 0 thrust cell, bit 1 torque cell, bit 2 rpm, bit 3 power: which channels hold a NEW
  reading in this line (the HX711 converts at 80 Hz, lines come at 200 Hz: the others repeat).
- An empty field means the channel is not fitted on this stand.
- `*CS`: two hex digits, XOR of every character between `$` and `*` (as NMEA 0183).

Other lines: `$I,thrust-stand,<protocol>,<line_rate_hz>,<pulses_per_rev>,<hx711_rate_hz>*CS` identifies
the sketch (at boot and in answer to `?`); lines starting with `#` are free-text messages. The laptop
sends `?\\n` to ask for the identification line. Anything else is garbage: it is skipped and counted by
reason (LineStats), never raised out of the reader.
"""
from __future__ import annotations

import collections
import dataclasses

PROTOCOL_VERSION = 1
DATA_FIELDS = ("t_us", "seq", "thrust_raw", "torque_raw", "rpm", "voltage_mv", "current_ma", "flags")
FLAG_THRUST, FLAG_TORQUE, FLAG_RPM, FLAG_POWER = 1, 2, 4, 8
HX711_RAILS = (-8388608, 8388607)
MAX_LINE = 160
DEFAULT_BAUD = 500000


class LineError(ValueError):
    """A line that is not a valid stand line; .reason is a short category used for counting."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class StandSample:
    t_us: int
    seq: int
    thrust_raw: int | None
    torque_raw: int | None
    rpm: float | None
    voltage_mv: int | None
    current_ma: int | None
    flags: int


@dataclasses.dataclass(frozen=True)
class StandInfo:
    name: str
    protocol: int
    line_rate_hz: float
    pulses_per_rev: int
    hx711_rate_hz: float


@dataclasses.dataclass(frozen=True)
class Comment:
    text: str


def checksum(payload: str) -> str:
    """XOR of the characters between '$' and '*', as two upper-case hex digits."""
    x = 0
    for ch in payload.encode("ascii"):
        x ^= ch
    return f"{x:02X}"


def _field(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(int(v))


def format_data_line(s: StandSample) -> str:
    """The line the sketch prints for sample s (without the newline)."""
    payload = "D," + ",".join(_field(getattr(s, f)) for f in DATA_FIELDS)
    return f"${payload}*{checksum(payload)}"


def format_info_line(info: StandInfo) -> str:
    payload = (f"I,{info.name},{info.protocol},{info.line_rate_hz:g},{info.pulses_per_rev},"
               f"{info.hx711_rate_hz:g}")
    return f"${payload}*{checksum(payload)}"


def _int(text: str, name: str) -> int | None:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise LineError("bad number", f"{name}={text!r}") from None


def _float(text: str, name: str) -> float | None:
    if text == "":
        return None
    try:
        v = float(text)
    except ValueError:
        raise LineError("bad number", f"{name}={text!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise LineError("bad number", f"{name}={text!r}")
    return v


def parse_line(line: str) -> StandSample | StandInfo | Comment:
    """Parse one line (newline stripped or not). Raises LineError with a countable reason."""
    line = line.strip("\r\n")
    if not line.strip():
        raise LineError("empty line")
    if len(line) > MAX_LINE:
        raise LineError("line too long", f"{len(line)} characters")
    if line.startswith("#"):
        return Comment(line[1:].strip())
    if not line.isascii() or not line.isprintable():
        raise LineError("not printable ASCII")
    if not line.startswith("$"):
        raise LineError("no '$' start")
    star = line.rfind("*")
    if star < 0 or len(line) - star != 3:
        raise LineError("no checksum")
    payload, cs = line[1:star], line[star + 1:].upper()
    if checksum(payload) != cs:
        raise LineError("bad checksum", f"{cs} != {checksum(payload)}")
    parts = payload.split(",")
    kind = parts[0]
    if kind == "D":
        if len(parts) != 1 + len(DATA_FIELDS):
            raise LineError("wrong field count", f"{len(parts) - 1} fields, expected {len(DATA_FIELDS)}")
        t_us = _int(parts[1], "t_us")
        seq = _int(parts[2], "seq")
        if t_us is None or seq is None or t_us < 0 or seq < 0:
            raise LineError("bad number", "t_us and seq are required and non-negative")
        thrust, torque = _int(parts[3], "thrust_raw"), _int(parts[4], "torque_raw")
        for v in (thrust, torque):
            if v is not None and (v <= HX711_RAILS[0] or v >= HX711_RAILS[1]):
                raise LineError("load cell at rail", str(v))
        rpm = _float(parts[5], "rpm")
        if rpm is not None and rpm < 0:
            raise LineError("bad number", f"rpm={rpm}")
        flags = _int(parts[8], "flags")
        return StandSample(t_us, seq, thrust, torque, rpm, _int(parts[6], "voltage_mv"),
                           _int(parts[7], "current_ma"), flags or 0)
    if kind == "I":
        if len(parts) != 6:
            raise LineError("wrong field count", f"info line with {len(parts) - 1} fields")
        try:
            return StandInfo(parts[1], int(parts[2]), float(parts[3]), int(parts[4]), float(parts[5]))
        except ValueError:
            raise LineError("bad number", "in info line") from None
    raise LineError("unknown line type", repr(kind[:8]))


class LineStats:
    """Counts of skipped lines by reason, plus the first few examples (line number, text) for messages."""

    def __init__(self, keep_examples: int = 5):
        self.skipped: collections.Counter = collections.Counter()
        self.examples: list[tuple[int, str, str]] = []
        self.good = 0
        self.comments = 0
        self.lost_lines = 0
        self._keep = keep_examples

    def skip(self, reason: str, lineno: int, text: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples) < self._keep:
            self.examples.append((lineno, reason, text[:80]))

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        if not self.skipped:
            return f"{self.good} good lines, none skipped" + (f", {self.lost_lines} lost" if self.lost_lines else "")
        parts = ", ".join(f"{n} {r}" for r, n in self.skipped.most_common())
        out = f"{self.good} good lines, {self.total_skipped} skipped ({parts})"
        if self.lost_lines:
            out += f", {self.lost_lines} lost in transit (sequence gaps)"
        return out

    def as_dict(self) -> dict:
        return {"good": self.good, "skipped": dict(self.skipped), "comments": self.comments,
                "lost_lines": self.lost_lines}


class StandClock:
    """Unwraps the sketch's uint32 micros() into seconds and counts sequence gaps."""

    def __init__(self):
        self._last_us: int | None = None
        self._offset = 0
        self._last_seq: int | None = None

    def seconds(self, t_us: int) -> float:
        if self._last_us is not None and t_us < self._last_us and self._last_us - t_us > (1 << 31):
            self._offset += 1 << 32
        self._last_us = t_us
        return (t_us + self._offset) * 1e-6

    def gap(self, seq: int) -> int:
        """Lines lost between the previous line and this one (0 when contiguous)."""
        gap = 0 if self._last_seq is None else (seq - self._last_seq - 1) % 65536
        self._last_seq = seq
        return gap if gap < 32768 else 0
