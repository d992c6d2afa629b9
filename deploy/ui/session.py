"""The flight on its own thread, as the window sees it, and the practice vehicle drone-ui starts."""
from __future__ import annotations

import collections
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import drone_sim

from ..control import FlightControl, Snapshot
from ..drone import flown_drone

if TYPE_CHECKING:  # deploy.flight imports onnxruntime and pymavlink; the window needs neither to import
    from firmware_bridge import MavLink

    from ..flight import Flight


class FlightThread:
    """A deploy.flight.Flight run on its own thread, so the window can own the main thread.

    Why a thread and not a process: the loop and the window share FlightControl, which was made for that
    (plain attribute writes, one lock held for microseconds); a process would need a second protocol."""

    def __init__(self, flight: "Flight", arm_gate: bool = True) -> None:
        self.flight = flight
        self.control: FlightControl = flight.control
        self.control.arm_gate = bool(arm_gate)
        self.lines: collections.deque = collections.deque(maxlen=8)   # what the flight said, for the HUD
        self.exit_code: int | None = None
        self.error: BaseException | None = None
        say = flight.say

        def tee(line: str) -> None:
            self.lines.append((time.monotonic(), str(line)))
            say(line)

        flight.say = tee
        self._thread = threading.Thread(target=self._run, name="drone-deploy control loop", daemon=True)

    def _run(self) -> None:
        try:
            self.exit_code = self.flight.run()
        except BaseException as exc:  # noqa: BLE001 - shown in the window; Flight.run logged it
            self.error = exc
            self.exit_code = getattr(self.flight, "exit_code", 1) or 1
            self.lines.append((time.monotonic(), f"control loop crashed: {type(exc).__name__}: {exc}"))

    def start(self) -> "FlightThread":
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and self._thread.ident is not None

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def link(self) -> "MavLink | None":
        return getattr(self.flight, "link", None)

    def armed_now(self, snap: Snapshot | None) -> bool | None:
        """Armed, as the HUD shows it: the loop's snapshot while it runs; after the flight ended (no more
        ticks), the link's last vehicle state (a kill's disarm comes after the last tick)."""
        if self.done and self.link is not None:
            return bool(self.link.state.armed)
        return None if snap is None else bool(snap.armed)

    def drone_params(self) -> dict:
        """The drone as flown (for drawing its size and prop speeds): the flight's own choice once it has made
        it (deploy.drone.flown_drone), the same rule before; the nominal drone when that cannot be read yet
        (the flight itself refuses a bad --drone file and says why)."""
        if getattr(self.flight, "drone", None) is not None:
            return dict(self.flight.drone)
        try:
            return flown_drone(getattr(self.flight.config, "drone", None), getattr(self.flight, "policy", None))
        except (OSError, ValueError):
            return dict(drone_sim.NOMINAL_DRONE)


class _Rates:
    """Per-second rates of the link's growing counters (frames in/out, bytes in), over ~1 s windows."""

    def __init__(self) -> None:
        self._t0: float | None = None
        self._c0: tuple = ()
        self.rx_hz = self.tx_hz = self.rx_bps = 0.0

    def update(self, stats, now: float) -> None:
        c = (stats.frames_ok, stats.frames_sent, stats.bytes_received)
        if self._t0 is None:
            self._t0, self._c0 = now, c
            return
        dt = now - self._t0
        if dt >= 1.0:
            self.rx_hz, self.tx_hz, self.rx_bps = ((a - b) / dt for a, b in zip(c, self._c0))
            self._t0, self._c0 = now, c


# ---------------------------------------------------------------------------------------------- the window


def _die_with_parent() -> None:
    """In the simulator's child process: SIGKILL when drone-ui dies, however it dies (kill -9 included),
    so a practice vehicle never outlives its window (Linux prctl PR_SET_PDEATHSIG). SIGKILL rather than
    SIGTERM: with its window gone the practice vehicle has nothing to save, and its death must not depend
    on its own signal handling (with SIGTERM one full-suite run left it running)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def launch_sim_vehicle(args: Sequence[str] = (), timeout: float = 20.0) -> tuple[subprocess.Popen, str]:
    """Start drone-sim-vehicle on a pty in a subprocess; returns it and the pty path it serves on.

    Its output keeps being read (and echoed with a prefix) by a thread so a full pipe never stalls it."""
    exe = shutil.which("drone-sim-vehicle", path=str(Path(sys.executable).parent)) or shutil.which("drone-sim-vehicle")
    cmd = [exe] if exe else [sys.executable, "-m", "firmware_bridge.sim"]
    cmd += ["--pty", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    found: "queue.Queue[str | None]" = queue.Queue()
    seen: list[str] = []

    def drain() -> None:  # one reader for the process's whole life: it announces the pty, then echoes
        announced = False
        for line in proc.stdout:
            line = line.rstrip()
            m = None if announced else re.search(r"serving on (\S+)", line)
            if m:
                announced = True
                found.put(m.group(1))
            elif not announced:
                seen.append(line)
            print(f"[sim] {line}", flush=True)
        if not announced:
            found.put(None)

    threading.Thread(target=drain, name="drone-sim-vehicle output", daemon=True).start()
    try:
        port = found.get(timeout=timeout)
    except queue.Empty:
        port = None
    if port is None:
        proc.kill()
        proc.wait(timeout=5)
        raise RuntimeError("drone-sim-vehicle did not start: " + " | ".join(seen)[-600:])
    return proc, port
