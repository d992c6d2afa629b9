"""`drone-calibrate thrust-stand`: spin one motor through the flight controller and record the stand.

The motor is driven by the flight controller (MAV_CMD_DO_MOTOR_TEST over MAVLink, the command every
ground station uses for its motor test page), so the ESC, its protocol and the firmware's output
mapping are exactly those that will fly. The stand's sketch streams its line protocol on a second USB
port; every line it sends is written to the run CSV as it arrives (runlog.RunWriter), so whatever
happens the recording up to the last second is on disk.

Safety, in the order it acts:
- the plan is clipped to the throttle cap (`--max-throttle`, default 0.8) before anything spins, and
  refused if it would need more;
- a confirmation prompt names the hazards and needs the word `spin` typed (`--yes` for scripted runs);
- every motor test command carries a short timeout (`lease`, 1 s) and is refreshed twice a second, so a
  laptop that dies, hangs or loses the link leaves the motor spinning at most that long: the flight
  controller stops it by itself;
- the motor is stopped (motor test at 0 %, sent with retries) on Ctrl-C, on loss of the stand's serial
  data (port error, or no valid line for `--stand-timeout`), on loss of the flight controller (no
  heartbeat), if the vehicle reports armed, on a thrust above `--max-thrust`, and on any exception.
"""
from __future__ import annotations

import dataclasses
import datetime
import math
import signal
import threading
import time
from pathlib import Path
from typing import Callable

from .plan import PlanSegment, plan_duration
from .protocol import DEFAULT_BAUD, StandSample
from .runlog import RunWriter
from .stand import StandPort, StandPortError
from .standcal import StandCal

HAZARDS = """\
About to spin motor {motor} WITH ITS PROPELLER up to {cap:.0f} % throttle for {duration:.0f} s.
  - A propeller at speed cuts to the bone and throws fragments: stand behind the stand, out of the
    propeller's plane, wear eye protection, nothing loose (hair, sleeves, cables) near it.
  - The stand must be clamped or bolted down: the thrust ({thrust}) lifts or topples a loose stand.
  - Check the propeller is tight and undamaged, and spins the way the motor test page says.
  - A LiPo battery at high current can catch fire: use a current-limited bench supply or a battery
    with a fuse, on a non-flammable surface, and keep the run attended.
  - The flight controller must be DISARMED with no other propellers fitted.
Stop at any time with Ctrl-C: the motor stops and the recording is kept."""


class AbortRun(RuntimeError):
    """A safety condition ended the run; the motor has been told to stop."""


@dataclasses.dataclass
class AcquireOptions:
    motor: int
    plan: list[PlanSegment]
    out: Path
    cal: StandCal | None = None
    max_throttle: float = 0.8
    max_thrust: float | None = None         # N, abort above this (tared with the stand calibration)
    stand_timeout: float = 0.5              # s without a valid stand line -> stop
    fc_timeout: float = 3.0                 # s without a flight-controller heartbeat -> stop
    lease: float = 1.0                      # s: timeout carried by every motor test command
    refresh: float = 0.5                    # s between motor test refreshes within a segment
    meta: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class AcquireResult:
    path: Path
    reason: str
    completed: bool
    rows: int
    stand_stats: dict
    duration: float


class MotorDriver:
    """The motor-test side: throttle commands through the flight controller, and a stop that retries."""

    def __init__(self, link, motor: int):
        self.link = link
        self.motor = motor
        self.throttle = 0.0

    def set(self, throttle: float, lease: float) -> None:
        self.throttle = throttle
        self.link.commands.motor_test(self.motor, round(100.0 * throttle, 2), lease)

    def stop(self) -> bool:
        """Throttle 0 with a short timeout; tries for about a second. True when the vehicle acknowledged."""
        self.throttle = 0.0
        for _ in range(4):
            try:
                self.link.commands.motor_test(self.motor, 0.0, 0.1)
                return True
            except Exception:      # noqa: BLE001 - whatever failed, keep trying to stop the motor
                time.sleep(0.05)
        return False


def confirm_hazards(motor: int, plan: list[PlanSegment], max_thrust: float | None,
                    ask: Callable[[str], str] | None = None, out: Callable[[str], None] = print) -> bool:
    """Show the hazards and require the word 'spin'."""
    ask = ask or input
    cap = 100.0 * max(s.throttle for s in plan)
    thrust = f"up to {max_thrust:.1f} N" if max_thrust else "several newtons"
    out(HAZARDS.format(motor=motor, cap=cap, duration=plan_duration(plan), thrust=thrust))
    try:
        answer = ask("Type 'spin' to start, anything else to cancel: ")
    except EOFError:
        return False
    return answer.strip().lower() == "spin"


def check_plan(plan: list[PlanSegment], cap: float) -> None:
    if not 0.0 < cap <= 1.0:
        raise ValueError(f"--max-throttle must be in (0, 1], got {cap}")
    top = max(s.throttle for s in plan)
    if top > cap + 1e-9:
        raise ValueError(f"the plan goes to throttle {top:.2f}, above the cap {cap:.2f}")


def acquire(stand: StandPort, link, opt: AcquireOptions, log: Callable[[str], None] = print) -> AcquireResult:
    """Run the plan with an open stand port and a connected MavLink; always stops the motor, always
    closes the recording with an `# end:` line naming why it ended."""
    check_plan(opt.plan, opt.max_throttle)
    if link.state.armed:
        raise AbortRun("the vehicle is ARMED: disarm it (motor tests run disarmed only)")
    driver = MotorDriver(link, opt.motor)
    meta = {"motor": opt.motor, "stand": stand.path, "fc": getattr(link, "endpoint", "?"),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "max_throttle": opt.max_throttle, "stand_baud": stand.baud,
            "vehicle": {"firmware": getattr(link.info.firmware, "value", str(link.info.firmware)),
                        "sysid": link.info.system_id, "version": link.info.version_text},
            "plan": [[s.phase, s.throttle, s.duration] for s in opt.plan], **opt.meta}
    if stand.info is not None:
        meta["stand_info"] = dataclasses.asdict(stand.info)
    writer = RunWriter(opt.out, meta, opt.cal)
    where = {"phase": "rest", "segment": 0}
    t0 = time.monotonic()
    thrust_alarm: list[float] = []

    def on_line(t_host: float, text: str, sample: StandSample | None) -> None:
        writer.record(t_host - t0, driver.throttle, where["phase"], where["segment"], text)
        if (sample is not None and opt.max_thrust is not None and opt.cal is not None and opt.cal.thrust is not None
                and sample.thrust_raw is not None):
            f = abs(opt.cal.thrust.convert(sample.thrust_raw))
            if f > opt.max_thrust:
                thrust_alarm.append(f)

    stand.on_line = on_line
    reason, completed = "completed", False
    interrupted = threading.Event()
    previous_handler = _catch_sigint(interrupted)
    try:
        for i, seg in enumerate(opt.plan):
            where["phase"], where["segment"] = seg.phase, i
            log(f"  segment {i + 1}/{len(opt.plan)}: {seg.phase} throttle {seg.throttle:.2f} for {seg.duration:g} s")
            end = time.monotonic() + seg.duration
            if interrupted.is_set():
                raise KeyboardInterrupt
            _check_safety(stand, link, opt, time.monotonic(), thrust_alarm)
            driver.set(seg.throttle, opt.lease)
            next_refresh = time.monotonic() + opt.refresh
            while True:
                now = time.monotonic()
                if now >= end:
                    break
                if interrupted.is_set():
                    raise KeyboardInterrupt
                _check_safety(stand, link, opt, now, thrust_alarm)
                if seg.throttle > 0 and now >= next_refresh:
                    driver.set(seg.throttle, opt.lease)      # renew the lease (the FC's own timeout)
                    next_refresh = now + opt.refresh
                time.sleep(min(0.01, max(0.0, end - now)))
        completed = True
    except KeyboardInterrupt:
        reason = "stopped by the user (Ctrl-C)"
    except AbortRun as exc:
        reason = f"safety stop: {exc}"
    except Exception as exc:       # noqa: BLE001 - recorded, then re-raised after the motor is stopped
        reason = f"error: {type(exc).__name__}: {exc}"
        raise
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler[0])
            signal.signal(signal.SIGTERM, previous_handler[1])
        stopped = driver.stop()
        time.sleep(0.2)       # the spin-down goes into the recording too
        stand.on_line = None
        writer.close({"reason": reason, "motor_stop_acknowledged": stopped, "stand": stand.stats.as_dict(),
                      "duration_s": round(time.monotonic() - t0, 3)})
        if not stopped:
            log("WARNING: the flight controller did not acknowledge the motor stop: it stops by itself within "
                f"{opt.lease:g} s (motor test timeout); unplug the battery if it does not")
    return AcquireResult(opt.out, reason, completed, writer.rows, stand.stats.as_dict(), time.monotonic() - t0)


def _catch_sigint(flag: threading.Event):
    """Ctrl-C and SIGTERM set `flag` instead of raising wherever the main thread happens to be: a
    KeyboardInterrupt raised inside a library's catch-all (pymavlink and pyserial have some) would be
    swallowed and the motor would keep its plan. Returns the (SIGINT, SIGTERM) handlers to restore, or None
    off the main thread (where signals cannot be handled; a KeyboardInterrupt still stops the run there)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.signal(signal.SIGINT, lambda *_: flag.set())
    previous_term = signal.signal(signal.SIGTERM, lambda *_: flag.set())
    return (signal.default_int_handler if previous is None else previous,
            signal.SIG_DFL if previous_term is None else previous_term)


def _check_safety(stand: StandPort, link, opt: AcquireOptions, now: float, thrust_alarm: list[float]) -> None:
    if stand.error is not None:
        raise AbortRun(f"stand serial link lost ({stand.error})")
    if now - stand.last_good > opt.stand_timeout:
        raise AbortRun(f"no valid line from the stand for {now - stand.last_good:.2f} s "
                       f"({stand.stats.summary()})")
    st = link.state
    age = st.age("heartbeat", now)
    if not math.isfinite(age) or age > opt.fc_timeout:
        raise AbortRun(f"no heartbeat from the flight controller for {age:.1f} s")
    if st.armed:
        raise AbortRun("the vehicle armed during the motor test")
    if thrust_alarm:
        raise AbortRun(f"thrust {thrust_alarm[0]:.2f} N above --max-thrust {opt.max_thrust:g} N")


def open_stand(path: str, baud: int = DEFAULT_BAUD, timeout: float = 3.0) -> StandPort:
    """Open the stand's port and wait for its first valid data line (clear error otherwise)."""
    port = StandPort(path, baud).open()
    try:
        port.wait_for_data(timeout)
    except StandPortError:
        port.close()
        raise
    # give the sketch a moment to answer the identification request
    deadline = time.monotonic() + 0.5
    while port.info is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return port
