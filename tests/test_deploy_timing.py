"""The loop's clocks notice when the program itself stopped running (a frozen laptop, SIGSTOP), before or
during a wait, so the safety layer can say so instead of blaming the vehicle's silence; and no garbage
collection runs between a tick's wake-up and its commands (deploy/timing.py)."""
from __future__ import annotations

import gc
import sys
import threading
import time
from pathlib import Path

import pytest

from deploy.timing import ComputeWindow, WallClock, settle_heap


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



# ---------------------------------------------------------------- garbage collection and the compute window
def _synthetic_swarm(tmp_path, count=4):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import bench_swarm

    return bench_swarm, bench_swarm.synthetic_swarm(count, None, tmp_path)


def test_the_swarm_tick_computes_with_the_collector_held_off_and_restores_it(tmp_path):
    """A collection inside the compute window delays every vehicle's command (a full one took 45 ms in a flight),
    and so does a link's reader parsing telemetry: the policy, called inside the window, runs with the collector
    off and the readers' gate closed; after the tick both are back, also when the policy raised."""
    bench, f = _synthetic_swarm(tmp_path)
    seen = []
    real = f.policy

    class Watching:
        action_size, max_rate, action_mode = real.action_size, real.max_rate, real.action_mode

        def __call__(self, obs):
            seen.append((gc.isenabled(), f.window.gate.is_open))
            return real(obs)

    f.policy = Watching()
    assert gc.isenabled()
    bench.fresh_telemetry(f)
    f._tick()
    assert seen == [(False, False)] and gc.isenabled() and f.window.gate.is_open
    assert f.timing.ticks == 1 and all(m.link.stats.send_dropped == 1 for m in f.members)  # every command went out

    class Failing(Watching):
        def __call__(self, obs):
            raise RuntimeError("policy failed")

    f.policy = Failing()
    bench.fresh_telemetry(f)
    with pytest.raises(RuntimeError):
        f._tick()
    assert gc.isenabled() and f.window.gate.is_open
    for m in f.members:
        m.log.close()


def test_compute_window_leaves_a_disabled_collector_disabled():
    """A program that switched the collector off itself keeps it off after a tick."""
    w = ComputeWindow()
    gc.disable()
    try:
        w.open()
        assert not gc.isenabled()
        w.close()
        assert not gc.isenabled()
    finally:
        gc.enable()
    w.open()
    assert not gc.isenabled()
    w.close()
    w.close()
    assert gc.isenabled()


def test_settle_heap_freezes_what_is_alive():
    before = gc.get_freeze_count()
    keep = [[i] for i in range(1000)]
    settle_heap()
    try:
        assert gc.get_freeze_count() >= before + len(keep)
    finally:
        gc.unfreeze()
