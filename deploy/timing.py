"""Fixed-rate pacing of the control loop and its deadline bookkeeping.

Wall-clock pacing (a real vehicle): tick k is due at t0 + k * period. The loop sleeps until then; a
tick's deadline is the start of the next period, and a tick whose command went out after its deadline
is a miss. A loop that fell more than a period behind (the laptop stalled) skips the ticks it lost
instead of bursting to catch up, and counts each as a miss; the safety layer lands after too many in a
row. `compute` is the time from waking to the command being sent (telemetry read, delay model,
observation, policy, safety checks, mapping, send); logging and bookkeeping after the send are `work`.
`cpu` is the loop thread's own CPU time over the same span (time.thread_time): on a machine shared with
other programs, compute minus cpu is time the loop was runnable or blocked but not running.

Vehicle pacing (drone-sim-vehicle --lockstep): the simulated vehicle advances one control period per
setpoint, so the loop runs as soon as the telemetry of the new period has arrived, and time is the
vehicle's clock. Deadlines have no meaning then; compute times are still recorded.

Garbage collection: Python's cyclic collector runs whenever allocations pass a threshold, in whichever thread
allocates, and a swarm flight measured 4-7 ms for a middle-generation collection and 45 ms for a full one,
inside the compute window. Before the flight the loop moves everything alive out of the collector's sight
(`settle_heap`), and each tick holds collection off from waking to the last command sent (`ComputeWindow`),
so a pending collection runs in the bookkeeping that follows. The links' reader threads wait over the same
span (firmware_bridge/gate.py: a reader parsing telemetry in Python holds the interpreter the tick needs).
"""
from __future__ import annotations

import array
import gc
import threading
import time

import numpy as np

from firmware_bridge.gate import ReaderGate


def settle_heap() -> None:
    """Collect once, then freeze what survives (modules, the policy, the links: alive until exit) so that no
    collection during the flight walks it. Called before the loop starts flying, where a pause does not matter."""
    gc.collect()
    gc.freeze()


class ComputeWindow:
    """Holds the cyclic garbage collector off between open() (the tick woke) and close() (its last command
    went out), and the links' reader threads at their gate (firmware_bridge/gate.py) over the same span, so that
    neither a collection nor a reader parsing telemetry takes the interpreter from the tick. Python switches the
    collector globally, so other threads' allocations cannot start one inside the window either; close() is
    idempotent and the tick calls it in a finally, so an exception in the tick cannot leave collection off or
    the readers held."""

    def __init__(self, gate: ReaderGate | None = None) -> None:
        self.gate = gate
        self._held = False

    def open(self) -> None:
        self._held = gc.isenabled()
        if self._held:
            gc.disable()
        if self.gate is not None:
            self.gate.close()

    def close(self) -> None:
        if self.gate is not None:
            self.gate.open()
        if self._held:
            self._held = False
            gc.enable()


class TimingStats:
    """Loop timing, thread-safe for readers (the UI) while the loop appends."""

    def __init__(self, period: float):
        self.period = period
        self.compute_ms = array.array("d")
        self.work_ms = array.array("d")
        self.cpu_ms = array.array("d")
        self.ticks = 0
        self.misses = 0
        self.skipped = 0
        self.max_late_ms = 0.0
        self._starts: list[float] = []
        self._lock = threading.Lock()
        self._fast: dict | None = None
        self._fast_at = 0

    def record(self, start: float, late: float, compute: float, work: float, missed: bool, skipped: int,
               cpu: float = 0.0) -> None:
        with self._lock:
            self.ticks += 1
            self.cpu_ms.append(cpu * 1e3)
            self.compute_ms.append(compute * 1e3)
            self.work_ms.append(work * 1e3)
            self.misses += int(missed) + skipped
            self.skipped += skipped
            self.max_late_ms = max(self.max_late_ms, late * 1e3)
            self._starts.append(start)
            if len(self._starts) > 512:
                del self._starts[:256]

    def summary_fast(self) -> dict:
        """Misses, loop rate and the p99 of the last 256 compute times, recomputed every 25 ticks: cheap
        enough to publish every tick for a HUD."""
        if self.ticks - self._fast_at >= 25 or self._fast is None:
            with self._lock:
                recent = np.frombuffer(self.compute_ms, dtype=float)[-256:].copy() if self.ticks else np.zeros(0)
            self._fast = {"compute_p99_ms": float(np.percentile(recent, 99)) if recent.size else 0.0,
                          "rate_hz": self.rate_hz()}
            self._fast_at = self.ticks
        return {**self._fast, "misses": self.misses}

    def rate_hz(self) -> float:
        """Ticks per second over the last ~second."""
        with self._lock:
            s = self._starts[-64:]
        if len(s) < 2 or s[-1] <= s[0]:
            return 0.0
        return (len(s) - 1) / (s[-1] - s[0])

    def summary(self) -> dict:
        with self._lock:
            c = np.frombuffer(self.compute_ms, dtype=float).copy() if self.ticks else np.zeros(0)
            w = np.frombuffer(self.work_ms, dtype=float).copy() if self.ticks else np.zeros(0)
            u = np.frombuffer(self.cpu_ms, dtype=float).copy() if self.ticks else np.zeros(0)
            out = {"ticks": self.ticks, "misses": self.misses, "skipped": self.skipped,
                   "max_late_ms": round(self.max_late_ms, 3), "period_ms": round(self.period * 1e3, 3)}
        for name, v in (("compute", c), ("cpu", u), ("work", w)):
            if v.size:
                out[f"{name}_p50_ms"] = round(float(np.percentile(v, 50)), 4)
                out[f"{name}_p99_ms"] = round(float(np.percentile(v, 99)), 4)
                out[f"{name}_max_ms"] = round(float(v.max()), 4)
        out["rate_hz"] = round(self.rate_hz(), 2)
        return out


class WallClock:
    """Fixed-rate wall-clock pacing."""

    lockstep = False

    def __init__(self, rate_hz: float):
        self.period = 1.0 / rate_hz
        self._next: float | None = None
        self.stalled_s = 0.0   # how long before this tick the loop was not running (lost ticks x period)

    def reset(self) -> None:
        """Start a fresh schedule (a new phase after a blocking command): the pause is not a miss."""
        self._next = None

    def wait(self, stop: threading.Event) -> tuple[float, float, float, int]:
        """Sleep until the next tick is due. Returns (now, due time, deadline, ticks skipped)."""
        now = time.monotonic()
        if self._next is None:
            self._next = now
        while True:
            now = time.monotonic()
            delay = self._next - now
            if delay <= 0:
                break
            if stop.wait(min(delay, 0.05)):
                break
        # fell behind by more than a tick (before the wait or during it: a process stopped while it slept
        # wakes up late): drop the lost ticks
        skipped = 0
        now = time.monotonic()
        if now - self._next > self.period:
            skipped = int((now - self._next) / self.period)
            self._next += skipped * self.period
        self.stalled_s = skipped * self.period
        due = self._next
        self._next = due + self.period
        return time.monotonic(), due, due + self.period, skipped


class VehicleClock:
    """Pacing by the vehicle's telemetry clock (lockstep simulation): wait until attitude and position
    samples newer than the last tick's have arrived, or `timeout` of wall time."""

    lockstep = True

    def __init__(self, rate_hz: float, link, timeout: float = 0.2):
        self.period = 1.0 / rate_hz
        self.link = link
        self.timeout = timeout
        self._cond = threading.Condition()
        self._att = 0
        self._pos = 0
        self._used = (0, 0)
        self._last: float | None = None
        self.stalled_s = 0.0   # wall time between the last tick and this one beyond the wait's timeout
        link.add_listener(self._on_message)

    def _on_message(self, msg) -> None:
        t = msg.get_type()
        if t in ("ATTITUDE_QUATERNION", "LOCAL_POSITION_NED"):
            with self._cond:
                if t == "ATTITUDE_QUATERNION":
                    self._att = msg.time_boot_ms
                else:
                    self._pos = msg.time_boot_ms
                self._cond.notify_all()

    def reset(self) -> None:
        self._last = None

    def wait(self, stop: threading.Event) -> tuple[float, float, float, int]:
        end = time.monotonic() + self.timeout
        with self._cond:
            while not stop.is_set():
                if self._att > self._used[0] and self._pos > self._used[1]:
                    break
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.02))
            self._used = (self._att, self._pos)
        now = time.monotonic()
        # a tick takes the wait (at most `timeout`) and a few ms of work: more than that since the last one,
        # and the loop was not running (stopped before or during the wait)
        self.stalled_s = 0.0 if self._last is None else max(0.0, now - self._last - self.timeout)
        self._last = now
        return now, now, now + self.period, 0
