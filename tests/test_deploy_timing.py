"""The loop's clocks notice when the program itself stopped running (a frozen laptop, SIGSTOP), before or
during a wait, so the safety layer can say so instead of blaming the vehicle's silence (deploy/timing.py)."""
from __future__ import annotations

import threading
import time

import pytest

from deploy.timing import WallClock


class _StallingStop(threading.Event):
    """A stop event whose first wait oversleeps by `extra` seconds: the process frozen inside the wait."""

    def __init__(self, extra: float):
        super().__init__()
        self.extra = extra

    def wait(self, timeout=None):
        if self.extra:
            time.sleep(self.extra)
            self.extra = 0.0
        return super().wait(timeout)


def test_wall_clock_counts_a_stall_before_the_wait():
    clock = WallClock(50.0)
    stop = threading.Event()
    clock.wait(stop)
    clock.wait(stop)
    assert clock.stalled_s == 0.0
    time.sleep(0.5)                       # not running between two ticks
    clock.wait(stop)
    assert clock.stalled_s == pytest.approx(0.5, abs=0.1)
    clock.wait(stop)
    assert clock.stalled_s == 0.0


def test_wall_clock_counts_a_stall_inside_the_wait():
    clock = WallClock(50.0)
    clock.wait(threading.Event())
    clock.wait(_StallingStop(0.5))        # frozen while it slept towards the next tick
    assert clock.stalled_s == pytest.approx(0.5, abs=0.1)


def test_a_reset_is_not_a_stall():
    """Phases reset the clock after a blocking command (a mode change waits for its ACK): not a stall."""
    clock = WallClock(50.0)
    stop = threading.Event()
    clock.wait(stop)
    time.sleep(0.3)
    clock.reset()
    clock.wait(stop)
    assert clock.stalled_s == 0.0

