"""The laptop end of the stand's USB serial port: a reader thread that splits, parses and counts lines.

Every received line goes to the `on_line` callback with its arrival time and, when it is valid, the
parsed sample, so the recorder can keep the stand's output verbatim (garbage included) while the
safety monitor looks only at good samples. Nothing on the line raises out of the reader: a garbage
line is counted in `stats`; a port failure (USB unplugged, pty closed) ends the thread and sets
`error`, which the acquisition turns into a motor stop.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from .protocol import (DEFAULT_BAUD, MAX_LINE, Comment, LineError, LineStats, StandClock, StandInfo, StandSample,
                       parse_line)

LineCallback = Callable[[float, str, "StandSample | None"], None]


class StandPortError(RuntimeError):
    """The stand's port could not be opened or gave no valid data."""


def printable(raw: bytes) -> str:
    """A received line as text that fits on one CSV row: non-printable bytes become escapes."""
    text = raw.decode("latin-1").rstrip("\r")
    if text.isascii() and text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")


class StandPort:
    """pyserial port + reader thread. Use as a context manager or call open() / close()."""

    def __init__(self, path: str, baud: int = DEFAULT_BAUD, on_line: LineCallback | None = None):
        self.path = path
        self.baud = int(baud)
        self.on_line = on_line
        self.stats = LineStats()
        self.clock = StandClock()
        self.info: StandInfo | None = None
        self.latest: StandSample | None = None
        self.last_good = -float("inf")       # time.monotonic() of the last valid data line
        self.bytes_in = 0
        self.error: str | None = None
        self.comments: list[str] = []
        self._port = None
        self._running = False
        self._thread: threading.Thread | None = None
        self._lineno = 0
        self._cond = threading.Condition()

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> "StandPort":
        import serial  # pyserial

        try:
            self._port = serial.Serial(self.path, self.baud, timeout=0.05, write_timeout=0.5)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise StandPortError(f"{self.path}: cannot open the stand's serial port at {self.baud} baud: {exc}") from None
        self._serial = serial
        self._running = True
        self._thread = threading.Thread(target=self._run, name=f"stand-{self.path}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if self._port is not None:
            try:
                self._port.close()
            except Exception:
                pass

    def __enter__(self) -> "StandPort":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ use
    def request_info(self) -> None:
        """Ask the sketch for its identification line ($I)."""
        try:
            self._port.write(b"?\n")
        except Exception:
            pass

    def wait_for_data(self, timeout: float = 3.0) -> StandSample:
        """The first valid data line, or StandPortError saying what came instead (wrong baud, no sketch)."""
        end = time.monotonic() + timeout
        self.request_info()
        with self._cond:
            while self.latest is None and self.error is None:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.1))
        if self.error is not None:
            raise StandPortError(self.error)
        if self.latest is None:
            what = (f"{self.bytes_in} bytes, {self.stats.total_skipped} unusable lines"
                    + (f" ({', '.join(f'{n} {r}' for r, n in self.stats.skipped.most_common(3))})"
                       if self.stats.skipped else ""))
            raise StandPortError(f"{self.path}: no valid stand data line within {timeout:g} s: {what} "
                                 f"(wrong baud rate? the sketch expects {self.baud}; sketch not flashed?)")
        return self.latest

    def collect(self, seconds: float) -> list[StandSample]:
        """Good samples received during the next `seconds` (used by the scale procedure)."""
        got: list[StandSample] = []
        prev = self.on_line

        def grab(t, text, sample):
            if sample is not None:
                got.append(sample)
            if prev is not None:
                prev(t, text, sample)

        self.on_line = grab
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if self.error is not None:
                    raise StandPortError(self.error)
                time.sleep(0.02)
        finally:
            self.on_line = prev
        return got

    # ------------------------------------------------------------------ reader thread
    def _run(self) -> None:
        buf = b""
        while self._running:
            try:
                n = self._port.in_waiting
                data = self._port.read(n if n > 0 else 1)
            except (self._serial.SerialException, OSError, TypeError, ValueError) as exc:
                self.error = f"{self.path}: stand serial port failed: {exc}"
                break
            if not data:
                continue
            self.bytes_in += len(data)
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                self._handle(time.monotonic(), raw)
            if len(buf) > 4 * MAX_LINE:
                self._handle(time.monotonic(), buf)
                buf = b""
        with self._cond:
            self._cond.notify_all()

    def _handle(self, t_host: float, raw: bytes) -> None:
        self._lineno += 1
        text = printable(raw)
        sample = None
        try:
            parsed = parse_line(raw.decode("latin-1"))
        except LineError as exc:
            self.stats.skip(exc.reason, self._lineno, text)
        else:
            if isinstance(parsed, StandSample):
                sample = parsed
                self.stats.good += 1
                self.stats.lost_lines += self.clock.gap(parsed.seq)
                self.clock.seconds(parsed.t_us)
                with self._cond:
                    self.latest = parsed
                    self.last_good = t_host
                    self._cond.notify_all()
            elif isinstance(parsed, StandInfo):
                self.info = parsed
            elif isinstance(parsed, Comment):
                self.stats.comments += 1
                if len(self.comments) < 50:
                    self.comments.append(parsed.text)
        cb = self.on_line
        if cb is not None and text:
            cb(t_host, text, sample)
