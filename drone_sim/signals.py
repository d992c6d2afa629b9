"""SIGTERM handled as Ctrl-C: every long-running program of the project stops the same way for both
(sigterm_as_interrupt), and a stop request that a swallowed KeyboardInterrupt cannot lose (StopRequest).

A scheduler, `kill`, `timeout` or a service manager stops a program with SIGTERM, whose default action ends
the process at once: no `finally`, no flushed file, no motor stopped. Raising KeyboardInterrupt instead
sends it down the path each program already takes for Ctrl-C (save, tidy up, exit 130).
"""
from __future__ import annotations

import signal
import sys
import threading
from typing import Callable


def sigterm_as_interrupt() -> None:
    """From now on SIGTERM raises KeyboardInterrupt in the main thread, like SIGINT (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)


class StopRequest:
    """Ctrl-C and SIGTERM, made to stick: the handler records the request and raises KeyboardInterrupt, and a loop
    calls check() at a safe point of every iteration. A KeyboardInterrupt raised inside a library's catch-all
    (seen with drone-train and drone-sweep on a loaded machine: the run went on) is swallowed there; the
    recorded request is not.

        with StopRequest() as stop:
            while working:
                stop.check()
                ...
    """

    def __init__(self):
        self.requested = threading.Event()
        self._previous: dict[int, object] = {}
        self._previous_hook = None

    def _unraisable(self, info) -> None:
        # Python reports an exception it must drop (raised in a weakref callback or a __del__) with a traceback
        # on stderr; our KeyboardInterrupt is not lost, it is recorded, so that report is noise
        if isinstance(info.exc_value, KeyboardInterrupt) and self.requested.is_set():
            return
        self._previous_hook(info)

    def _handler(self, signum, frame):
        self.requested.set()
        raise KeyboardInterrupt

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
            self._previous_hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, signal.default_int_handler if previous is None else previous)
        self._previous.clear()
        if self._previous_hook is not None:
            sys.unraisablehook, self._previous_hook = self._previous_hook, None

    def check(self) -> None:
        """Raise KeyboardInterrupt if a stop was requested (a no-op otherwise)."""
        if self.requested.is_set():
            raise KeyboardInterrupt


def exit_status_of(main: Callable[[], int | None], name: str) -> int:
    """main's exit status, for the short scripts (benchmarks, measurements) that have no loop to check a
    StopRequest in. SIGTERM is taken as Ctrl-C, so that either unwinds main through its `finally` blocks, which
    stop the simulated vehicles and drone-deploy children the script started (SIGTERM's default action ended the
    script alone and left those running); one line replaces the traceback, and the status is 130."""
    sigterm_as_interrupt()
    try:
        return main() or 0
    except KeyboardInterrupt:
        print(f"{name}: interrupted; no results written", file=sys.stderr, flush=True)
        return 130
