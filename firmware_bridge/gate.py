"""ReaderGate: a control loop's way to keep the links' reader threads from taking the interpreter mid-tick.

Every link has a reader thread (MavLink, and the one thread of a shared port) that parses telemetry in Python.
CPython runs one thread at a time (the GIL): when the control loop calls something that lets go of it (the
policy in onnxruntime, the simulator's C observation, a socket write), a reader that woke meanwhile takes it
and keeps it until it has parsed what arrived, and the loop waits. A swarm flight of 8 vehicles measured that
as most of its slowest ticks: the policy call's span grew from 0.1 ms to 1 ms.

The loop closes the gate when a tick wakes and opens it when its last command is out (deploy.timing.ComputeWindow).
A reader waits at the gate after its blocking read returns and before it parses, holding no lock, so the loop
never waits for a reader; the data waits in the operating system's buffer, at most one tick's compute (~1-2 ms),
and nothing is lost. A gate left closed (a loop that died mid-tick) holds a reader back at most `max_wait_s` at a
time, so the links keep their heartbeats and their staleness checks.
"""
from __future__ import annotations

import threading


class ReaderGate:
    def __init__(self, max_wait_s: float = 0.05):
        self.max_wait_s = max_wait_s
        self._open = threading.Event()
        self._open.set()
        self.held_back = 0        # times a reader found the gate closed (for benchmarks and tests)

    def close(self) -> None:
        """The loop's tick started: readers wait from their next parse on."""
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def wait(self) -> None:
        """A reader thread, before parsing: returns at once while open, else when the loop opens it (or after
        max_wait_s). Waiting lets go of the interpreter."""
        if not self._open.is_set():
            self.held_back += 1
            self._open.wait(self.max_wait_s)
