"""SIGTERM handled as Ctrl-C: every long-running program of the project stops the same way for both.

A scheduler, `kill`, `timeout` or a service manager stops a program with SIGTERM, whose default action ends
the process at once: no `finally`, no flushed file, no motor stopped. Raising KeyboardInterrupt instead
sends it down the path each program already takes for Ctrl-C (save, tidy up, exit 130).
"""
from __future__ import annotations

import signal
import threading


def sigterm_as_interrupt() -> None:
    """From now on SIGTERM raises KeyboardInterrupt in the main thread, like SIGINT (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
