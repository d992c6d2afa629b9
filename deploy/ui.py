"""The operator's window: fly the drone by dragging its target on a 3D map of the flying area (raylib).

    drone-ui --sim                                  # practice: a drone-sim-vehicle it starts itself, on a pty
    drone-ui --sim --lockstep --sim-arg=--noise-pos --sim-arg=0.02     # faster than real time, noisy sensors
    drone-deploy --port /dev/ttyUSB0 --ui           # the real vehicle, same window

What it shows: the floor grid, the fence (a cylinder around the takeoff point: solid at its radius and
ceiling, dashed where targets stop, the margin inside), the drone's pose from telemetry with a fading
trail, a translucent ghost where the simulator's one-step prediction puts it, the target (a white ball
with its floor disc and a drop line), the course rings when racing, and a HUD: phase, link state and
rates, mode, armed, battery, control-loop rate / compute p99 / deadline misses, distance to target,
prediction error, every safety trigger in red, and the flight's messages.

Controls (the buttons at the bottom do the same):
  left drag on the target (ball or floor disc): move it on the floor plane (height kept); elsewhere: orbit
  wheel or Up/Down / PageUp/PageDown: target height (0.1 m steps)    shift+wheel, +/-: zoom   right drag: pan
  T arm and take off   L land   H hold (freeze the target where the drone is)   Tab switch task
  K KILL: disarm at once, no confirmation (the drone falls)   C reset camera   P screenshot
  ESC or closing the window: land, and close once the vehicle is disarmed (close again: close now; the
  flight thread still lands before the program exits)

Why this shape: the control loop is deploy.flight.Flight running on its own thread; this window owns
the main thread (raylib/GLFW want it) and talks to the loop only through deploy.control.FlightControl:
requests are flag writes and a target update under a short lock, the state comes as the Snapshot the
loop publishes each tick. Nothing here holds a lock the loop waits on, so a slow frame (a software
renderer, a window being dragged) delays only the next frame, never a command. The interpreter's switch
interval is lowered while the window runs so the loop thread gets the GIL back within ~0.2 ms,
and the threads the window's creation starts (a software renderer's raster threads) run at a lower CPU
priority than the loop's.
Targets go through FlightControl.set_target, whose fence check is the one the loop uses; a refusal
(TargetError) is shown in red and the target in force is kept.
"""
from __future__ import annotations

import collections
import json
import math
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

import drone_sim
from drone_sim.viewer import Viewer, _blit_flipped, _col, _v3, rl

from .control import FlightControl, Snapshot
from .drone import flown_drone
from .targets import SUPPORTED_TASKS, TargetError

if TYPE_CHECKING:  # deploy.flight imports onnxruntime and pymavlink; the window needs neither to import
    import argparse

    from firmware_bridge import MavLink

    from .flight import Flight

TARGET_COLOR = (240, 240, 240)
REFUSED = (255, 70, 60)
FENCE = (235, 190, 60)
GHOST = (150, 200, 255)
OK_GREEN = (90, 220, 110)
WARN = (255, 190, 60)
HEIGHT_STEP = 0.1           # metres per wheel notch / key press
SEND_PERIOD = 0.1           # the target is sent at most this often while it moves (10 Hz)
TARGET_SPEED = 1.5          # m/s: how fast the sent target walks to where the operator put it (0: jump there)
GRAB_PX = 24                # how close (pixels) a press must be to the target to grab it

_HELP = ("drag target: move   wheel/Up/Down: height   drag: orbit   right drag: pan   shift+wheel: zoom   "
         "T takeoff  L land  H hold  Tab task  K KILL  C camera  P screenshot  ESC land+close")


# ---------------------------------------------------------------------------------------------- the flight
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
class OperatorWindow(Viewer):
    """The target-drag window. It borrows the project viewer's meshes, lighting shader, drone model and
    drawing helpers (a Viewer without an env: the state comes from telemetry, not from a simulator)."""

    def __init__(self, session: FlightThread, width: int = 1280, height: int = 720, title: str = "drone-ui",
                 fps: int = 30, supersample: int = 1, course: dict | None = None, frame_info: str | None = None,
                 screenshot_dir: str | None = None, exit_when_done: bool = False, min_drone_px: float = 22.0,
                 target_speed: float = TARGET_SPEED, frame_stall_ms: float = 0.0) -> None:
        if Viewer._open:
            raise RuntimeError("raylib supports one window per process: close the other window first")
        if width < 320 or height < 240:
            raise ValueError(f"window size {width}x{height} is too small (at least 320x240)")
        if supersample not in (1, 2):
            raise ValueError("supersample must be 1 or 2")
        if not 1 <= int(fps) <= 240:
            raise ValueError(f"frame rate {fps} must be within 1..240")
        if not (math.isfinite(target_speed) and target_speed >= 0):
            raise ValueError(f"target speed {target_speed} must be a number >= 0 (m/s; 0: no limit)")
        self.target_speed = float(target_speed)
        self.frame_stall_ms = max(0.0, float(frame_stall_ms))  # benchmark: busy Python work in every frame
        self.session = session
        self.control = session.control
        self.width, self.height, self.ss = int(width), int(height), int(supersample)
        self.hidden = False
        self.fps_target = int(fps)
        self.course = course
        self.frame_info_path = Path(frame_info) if frame_info else None
        self.screenshot_dir = Path(screenshot_dir) if screenshot_dir else None
        self.exit_when_done = bool(exit_when_done)
        # what Viewer's drawing helpers read
        self.drone_scale, self.min_drone_px, self.scale = 1.0, float(min_drone_px), 1.0
        self.show_trails, self.show_labels, self.show_help = True, True, True
        self._trails = [collections.deque(maxlen=400)]
        self._phase = np.zeros((1, 4))
        self._drone = session.drone_params()   # nominal until the flight has loaded its policy
        self._drone_final = False

        rl.set_trace_log_level(rl.LOG_WARNING)
        rl.set_config_flags(rl.FLAG_WINDOW_RESIZABLE)
        rl.init_window(self.width, self.height, title)
        if not rl.is_window_ready():
            raise RuntimeError("raylib could not open a window (no display? on a headless machine run under "
                               "xvfb-run, e.g. `xvfb-run -a drone-ui --sim`)")
        Viewer._open = True
        rl.set_exit_key(rl.KEY_ESCAPE)
        rl.set_target_fps(self.fps_target)
        self._load_resources()
        self.camera = rl.Camera3D(rl.Vector3(10, 10, 10), rl.Vector3(0, 0, 0), rl.Vector3(0, 1, 0), 45.0,
                                  rl.CAMERA_PERSPECTIVE)
        self.reset_camera()
        # state of the operator's interaction
        self.dragging = False
        self._drag_candidate: np.ndarray | None = None   # the floor point under the mouse while dragging
        self._drag_ok = True
        self._drag_why = ""
        self._drag_z = 0.0
        self._goal: np.ndarray | None = None             # where the operator put the target
        self._sent: np.ndarray | None = None             # the last target sent while walking to the goal
        self._step_t = 0.0
        self._orbiting = False
        self._error: tuple[float, str] | None = None      # (time, text) in red
        self._notice: tuple[float, str] | None = None     # (time, text) in white
        self.refusals = 0                                 # targets refused (TargetError), for the frame info
        self.targets_sent = 0
        self.closing = False                              # the window was closed: landing, then it closes
        self._rates = _Rates()
        self._prev_snap: Snapshot | None = None
        self._pred_err: float | None = None
        self._last_draw = None
        self._frame_rgb = None
        self._frames = 0
        self._frame_ms: collections.deque = collections.deque(maxlen=4000)
        self._fps = 0.0
        self._info: dict = {}
        self._info_t = 0.0
        self._shots = 0
        self._buttons: list[tuple[tuple[int, int, int, int], str, str, tuple]] = []
        self.renderer_threads: list[int] = []            # threads the window started, run at lower priority
        self._banner_rect: list[int] | None = None        # where the safety banner was drawn (frame info)
        self._last_shot: dict = {}                        # the last screenshot and what its frame showed

    # -- camera: an orbit around the middle of the fence, fixed unless the operator moves it -------------
    def reset_camera(self) -> None:
        self.yaw = math.radians(-60.0)
        self.pitch = math.radians(48.0)
        self.zoom = 0.85
        self.pan = np.zeros(3)

    def _fence(self) -> dict:
        snap = self.control.snapshot()
        if snap is not None and snap.fence:
            return snap.fence
        tg = self.control.targeting
        if tg is not None:
            return tg.fence.as_dict()
        lim = self.session.flight.config.limits
        return {"center": (0.0, 0.0), "ground_z": 0.0, "radius": lim.fence_radius_m, "max_alt": lim.max_alt_m,
                "margin": lim.fence_margin_m, "min_alt": lim.min_target_alt_m}

    def _update_camera(self) -> None:
        f = self._fence()
        c = np.array([f["center"][0], f["center"][1], f["ground_z"] + 0.35 * f["max_alt"]]) + self.pan
        d = (2.3 * f["radius"] + 3.0) * self.zoom
        eye = c + d * np.array([math.cos(self.pitch) * math.cos(self.yaw), math.cos(self.pitch) * math.sin(self.yaw),
                                math.sin(self.pitch)])
        eye[2] = max(eye[2], f["ground_z"] + 0.15)
        self.camera.position = _v3(eye)
        self.camera.target = _v3(c)
        self._eye, self._target = eye, c

    def _floor_point(self, mx: float, my: float, z: float) -> np.ndarray | None:
        """The world point under pixel (mx, my) on the horizontal plane at height z (None: above the horizon)."""
        ray = rl.get_screen_to_world_ray_ex(rl.Vector2(mx, my), self.camera, self.width, self.height)
        oy, dy = ray.position.y, ray.direction.y
        if abs(dy) < 1e-6:
            return None
        t = (z - oy) / dy
        if t <= 0:
            return None
        x, zz = ray.position.x + t * ray.direction.x, ray.position.z + t * ray.direction.z
        return np.array([x, -zz, z])  # raylib (x, y, z) -> world (x, -z, y)

    def _mouse(self) -> tuple[float, float]:
        """The mouse in frame pixels (the frame is drawn stretched over the window)."""
        m = rl.get_mouse_position()
        sw, sh = max(rl.get_screen_width(), 1), max(rl.get_screen_height(), 1)
        return m.x * self.width / sw, m.y * self.height / sh

    # -- operator actions (keys and buttons) -----------------------------------------------------------
    def _say(self, text: str, error: bool = False) -> None:
        if error:
            self._error = (time.monotonic(), text)
        else:
            self._notice = (time.monotonic(), text)

    def set_target(self, xyz: Sequence[float]) -> bool:
        """Send a target (navigation frame) through FlightControl; a refusal is shown and counted."""
        try:
            self.control.set_target([float(v) for v in xyz], frame="nav")
        except TargetError as exc:
            self.refusals += 1
            self._say(f"target refused: {exc}", error=True)
            return False
        self.targets_sent += 1
        return True

    def action(self, name: str) -> None:
        """One operator command: takeoff, land, hold, task, kill, camera, screenshot."""
        c = self.control
        snap = c.snapshot()
        if name == "kill":
            c.kill("kill key (operator UI)")
            self._say("KILL: disarming now", error=True)
        elif name == "land":
            c.request_land("land key (operator UI)")
            self._say("landing")
        elif name == "takeoff":
            if self.session.done:
                self._say("the flight has ended; start drone-ui again to fly again", error=True)
            elif snap is not None and snap.armed:
                self._say("already armed")
            elif not c.arm_gate:
                self._say("this flight arms by itself after preflight (--arm)")
            else:
                c.request_arm("arm key (operator UI)")
                self._say("arm and take off requested" + ("" if snap is not None and snap.phase == "idle" else
                                                          ": the vehicle arms once preflight has passed"))
        elif name == "hold":
            self._goal = self._sent = None
            try:
                p = c.hold_here()
                self.targets_sent += 1
                self._say(f"holding at ({p[0]:.2f}, {p[1]:.2f}, {p[2]:.2f})")
            except TargetError as exc:
                self._say(f"hold refused: {exc}", error=True)
        elif name == "task":
            tasks = list(SUPPORTED_TASKS)
            cur = snap.task if snap is not None else (c.targeting.task if c.targeting else tasks[0])
            nxt = tasks[(tasks.index(cur) + 1) % len(tasks)] if cur in tasks else tasks[0]
            tried = []
            for _ in range(len(tasks)):  # skip the tasks this flight cannot fly (race without a course)
                try:
                    c.set_task(nxt)
                    self._say(f"task {nxt}")
                    return
                except TargetError as exc:
                    tried.append(str(exc))
                    nxt = tasks[(tasks.index(nxt) + 1) % len(tasks)]
            self._say("task not switched: " + "; ".join(tried[:1]), error=True)
        elif name == "camera":
            self.reset_camera()
        elif name == "screenshot":
            self.screenshot()

    def screenshot(self) -> Path | None:
        """Save the last frame as a numbered PNG in --screenshot-dir (the current directory without one)."""
        d = self.screenshot_dir or Path(".")
        d.mkdir(parents=True, exist_ok=True)
        self._shots += 1
        path = d / f"drone-ui-{self._shots:03d}.png"
        self.save_screenshot(path)
        self._say(f"screenshot {path}")
        self._last_shot = {"screenshot": str(path), "screenshot_safety_banner": self._banner_rect}
        self._write_info(force=True)
        return path

    def _handle_input(self) -> None:
        mx, my = self._mouse()
        snap = self.control.snapshot()
        tgt = self._current_target(snap)
        shift = rl.is_key_down(rl.KEY_LEFT_SHIFT) or rl.is_key_down(rl.KEY_RIGHT_SHIFT)
        if rl.is_mouse_button_pressed(rl.MOUSE_BUTTON_LEFT):
            hit = self._button_at(mx, my)
            if hit is not None:
                self.action(hit)
            elif tgt is not None and self._near_target(tgt, mx, my):
                self.dragging, self._drag_candidate = True, None
                self._drag_z = float(self._goal[2] if self._goal is not None else tgt[2])
            else:
                self._orbiting = True
        if self.dragging:
            f = self._fence()
            p = self._floor_point(mx, my, f["ground_z"])
            if p is not None:
                p[2] = self._drag_z
                self._drag_candidate = p
                why = self._check(p)
                self._drag_ok, self._drag_why = why is None, why or ""
                if why is None:
                    self._goal = p
        if rl.is_mouse_button_released(rl.MOUSE_BUTTON_LEFT):
            if self.dragging and self._drag_candidate is not None:
                p = self._drag_candidate
                if self._drag_ok:
                    self._say(f"target ({p[0]:.2f}, {p[1]:.2f}, {p[2]:.2f})")
                else:
                    self.set_target(p)  # refused by FlightControl with the reason, which is shown; nothing sent
            self.dragging, self._orbiting, self._drag_candidate = False, False, None
        if self._orbiting and rl.is_mouse_button_down(rl.MOUSE_BUTTON_LEFT):
            d = rl.get_mouse_delta()
            self.yaw -= d.x * 0.008
            self.pitch = min(max(self.pitch + d.y * 0.006, math.radians(5.0)), math.radians(88.0))
        if rl.is_mouse_button_down(rl.MOUSE_BUTTON_RIGHT):
            d = rl.get_mouse_delta()
            right = np.array([-math.sin(self.yaw), math.cos(self.yaw), 0.0])
            fwd = np.array([math.cos(self.yaw), math.sin(self.yaw), 0.0])
            self.pan -= (right * d.x + fwd * d.y) * 0.012 * self.zoom
        wheel = rl.get_mouse_wheel_move()
        if wheel:
            if shift:
                self.zoom = min(max(self.zoom * (0.9 ** wheel), 0.2), 5.0)
            else:
                self._height(HEIGHT_STEP * (1 if wheel > 0 else -1) * max(1, round(abs(wheel))))
        key = rl.get_key_pressed()
        while key:
            name = {rl.KEY_T: "takeoff", rl.KEY_L: "land", rl.KEY_K: "kill", rl.KEY_H: "hold", rl.KEY_TAB: "task",
                    rl.KEY_C: "camera", rl.KEY_P: "screenshot"}.get(key)
            if name is not None:
                self.action(name)
            elif key in (rl.KEY_UP, rl.KEY_PAGE_UP):
                self._height(HEIGHT_STEP)
            elif key in (rl.KEY_DOWN, rl.KEY_PAGE_DOWN):
                self._height(-HEIGHT_STEP)
            elif key in (rl.KEY_EQUAL, rl.KEY_KP_ADD):
                self.zoom = max(self.zoom * 0.9, 0.2)
            elif key in (rl.KEY_MINUS, rl.KEY_KP_SUBTRACT):
                self.zoom = min(self.zoom / 0.9, 5.0)
            key = rl.get_key_pressed()

    def _height(self, dz: float) -> None:
        snap = self.control.snapshot()
        if self._goal is not None:
            base = self._goal
        elif self._current_target(snap) is not None:
            base = self._current_target(snap)
        else:
            self._say("no target yet (the flight sets one at takeoff)", error=True)
            return
        p = base.copy()
        p[2] += dz
        why = self._check(p)
        if why is not None:
            self.refusals += 1
            self._say(f"target refused: {why}", error=True)
            return
        self._goal = p
        self._say(f"target height {p[2] - self._fence()['ground_z']:.2f} m")

    def _current_target(self, snap: Snapshot | None) -> np.ndarray | None:
        """The target in force now: the flight's Targeting (updated by set_target at once, under its short
        lock) rather than the last snapshot's, which lags by up to a tick. Race targets are ring centres."""
        tg = self.control.targeting
        if tg is not None and (snap is None or snap.task != "race"):
            return tg.target
        return None if snap is None or snap.target is None else np.asarray(snap.target, dtype=float)

    def _check(self, p: np.ndarray) -> str | None:
        """Why p cannot be a target (None: it can): the flight's own check, the one set_target applies."""
        tg = self.control.targeting
        if tg is None:
            return "no flight is running yet (the navigation frame is set at preflight)"
        try:
            tg.resolve(p, "nav", None, None)
        except TargetError as exc:
            return str(exc)
        return None

    def _advance_target(self) -> None:
        """Walk the sent target to the operator's goal at target_speed, one set_target per SEND_PERIOD.

        Why: a drag moves the goal as fast as the mouse; a policy handed a target metres away in one step
        flies at it as hard as it can (in the simulator: tilt past the safety limit, a hold, a landing).
        The fence is a convex cylinder, so every point on the way between two accepted points is accepted."""
        if self._goal is None:
            return
        now = time.monotonic()
        if now - self._step_t < SEND_PERIOD:
            return
        dt = min(now - self._step_t, 4 * SEND_PERIOD)
        self._step_t = now
        snap = self.control.snapshot()
        cur = self._sent if self._sent is not None else self._current_target(snap)
        goal = self._goal
        if cur is None:
            nxt = goal
        else:
            d = goal - cur
            n = float(np.linalg.norm(d))
            step = self.target_speed * dt
            nxt = goal if (self.target_speed <= 0 or n <= step) else cur + d * (step / n)
        if not self.set_target(nxt):
            self._goal = self._sent = None
            return
        self._sent = nxt
        if nxt is goal:
            self._goal = self._sent = None

    def _near_target(self, tgt: np.ndarray, mx: float, my: float) -> bool:
        f = self._fence()
        for q in (tgt, np.array([tgt[0], tgt[1], f["ground_z"]])):
            x, y, on = self._screen(q)
            if on and math.hypot(x - mx, y - my) <= GRAB_PX:
                return True
        return False

    def _button_at(self, mx: float, my: float) -> str | None:
        for (x, y, w, h), name, _, _ in self._buttons:
            if x <= mx < x + w and y <= my < y + h:
                return name
        return None

    # -- the frame ---------------------------------------------------------------------------------------
    def draw(self) -> None:
        """Handle input, render one frame and show it."""
        now = time.perf_counter()
        if self._last_draw is not None:
            dt = max(now - self._last_draw, 1e-6)
            self._frame_ms.append(dt * 1e3)
            self._fps = 1.0 / dt if self._fps == 0.0 else 0.9 * self._fps + 0.1 / dt
        self._last_draw = now
        if rl.is_window_resized():
            self._resize(rl.get_screen_width(), rl.get_screen_height())
        self._update_camera()
        self._handle_input()
        self._advance_target()
        if self.frame_stall_ms:  # a deliberately slow frame: pure Python, holding the GIL but for switches
            t_end = time.perf_counter() + self.frame_stall_ms / 1e3
            while time.perf_counter() < t_end:
                pass
        snap = self.control.snapshot()
        self._track(snap)
        link = self.session.link
        if link is not None:
            self._rates.update(link.stats, time.monotonic())

        self._begin_scene()
        f = self._fence()
        self._draw_floor(f)
        if self.course is not None:
            self._draw_course({"task_name": snap.task if snap else "race", "course": self.course},
                              [{"ring": self._next_ring(snap)}])
        self._draw_fence(f)
        if snap is not None:
            self._draw_target(snap, f)
            self._draw_vehicle(snap)
        self._begin_overlay()
        self._draw_overlay(snap, f)
        rl.end_texture_mode()
        self._frame_rgb = None

        rl.begin_drawing()
        rl.clear_background(rl.BLACK)
        _blit_flipped(self._rt.texture, rl.get_screen_width(), rl.get_screen_height())
        rl.end_drawing()
        self._frames += 1
        self._write_info()

    def _track(self, snap: Snapshot | None) -> None:
        """Trail and prediction error from successive snapshots (the loop publishes one per tick; a frame
        sees the latest, so the error is measured when exactly one tick passed between two frames' snapshots)."""
        if snap is None or snap is self._prev_snap:
            return
        p = np.asarray(snap.position, dtype=float)
        tr = self._trails[0]
        if snap.armed or snap.position[2] > 0.05:
            if not tr or float(np.linalg.norm(tr[-1] - p)) > 0.01:
                tr.append(p)
        prev = self._prev_snap
        if prev is not None and prev.predicted_position is not None:
            period = 1.0 / float(getattr(self.session.flight, "rate", 0.0) or max(snap.loop_rate_hz, 1.0))
            if 0.0 < snap.vt - prev.vt < 1.5 * period:
                e = float(np.linalg.norm(p - np.asarray(prev.predicted_position)))
                self._pred_err = e if self._pred_err is None else 0.8 * self._pred_err + 0.2 * e
        self._prev_snap = snap

    def _next_ring(self, snap: Snapshot | None) -> int:
        if snap is None or not self.course or snap.target is None:
            return -1
        rings = self.course.get("rings", [])
        if not rings:
            return -1
        d = [float(np.linalg.norm(np.asarray(g["position"], float) - np.asarray(snap.target))) for g in rings]
        k = int(np.argmin(d))
        return k if d[k] < 1e-3 else -1

    # -- 3D ----------------------------------------------------------------------------------------------
    def _draw_floor(self, f: dict) -> None:
        cx, cy, z0 = f["center"][0], f["center"][1], f["ground_z"]
        half = math.ceil(f["radius"] + 2.0)
        rl.draw_plane(rl.Vector3(cx, z0, -cy), rl.Vector2(2 * half, 2 * half), _col((40, 46, 56)))
        self._line_width(1.0)
        z = z0 + 0.01
        for k in range(-half, half + 1):
            col = (95, 105, 120) if k % 5 == 0 else (62, 70, 82)
            self._line((cx + k, cy - half, z), (cx + k, cy + half, z), col)
            self._line((cx - half, cy + k, z), (cx + half, cy + k, z), col)
        self._line_width(3.0)  # axes at home: x east red, y north green, z up blue
        self._line((cx, cy, z), (cx + 1.0, cy, z), (230, 60, 60))
        self._line((cx, cy, z), (cx, cy + 1.0, z), (60, 210, 80))
        self._line((cx, cy, z0), (cx, cy, z0 + 1.0), (70, 120, 255))
        self._line_width(1.0)

    def _draw_fence(self, f: dict) -> None:
        cx, cy, z0 = f["center"][0], f["center"][1], f["ground_z"]
        r, top, m = f["radius"], z0 + f["max_alt"], f["margin"]
        n = 72
        ang = np.linspace(0.0, 2 * math.pi, n + 1)
        ring = np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], -1)
        self._line_width(2.0)
        for k in range(n):
            a, b = ring[k], ring[k + 1]
            self._line((a[0], a[1], z0 + 0.02), (b[0], b[1], z0 + 0.02), FENCE, 230)
            self._line((a[0], a[1], top), (b[0], b[1], top), FENCE, 150)
        for k in range(0, n, 6):
            a = ring[k]
            self._line((a[0], a[1], z0), (a[0], a[1], top), FENCE, 90)
        self._line_width(1.0)
        ri = r - m  # where targets may go (dashed)
        for k in range(0, n, 2):
            a0, a1 = ang[k], ang[k + 1]
            self._line((cx + ri * math.cos(a0), cy + ri * math.sin(a0), z0 + 0.02),
                       (cx + ri * math.cos(a1), cy + ri * math.sin(a1), z0 + 0.02), FENCE, 140)

    def _draw_target(self, snap: Snapshot, f: dict) -> None:
        z0 = f["ground_z"]
        t = self._current_target(snap)
        if t is not None and snap.task != "race":
            self._sphere(t, 0.09, TARGET_COLOR)
            rl.draw_sphere_wires(_v3(t), 0.3, 6, 8, rl.Color(240, 240, 240, 50))
            self._line((t[0], t[1], z0 + 0.01), t, (200, 200, 200), 120)
            self._disc((t[0], t[1], z0), 0.22, TARGET_COLOR, 150)
        if self._goal is not None:  # where the target is walking to
            g = self._goal
            self._disc((g[0], g[1], z0), 0.3, TARGET_COLOR, 70)
            rl.draw_sphere_wires(_v3(g), 0.12, 4, 8, rl.Color(240, 240, 240, 160))
        if self.dragging and self._drag_candidate is not None:
            p = self._drag_candidate
            col = TARGET_COLOR if self._drag_ok else REFUSED
            self._disc((p[0], p[1], z0), 0.26, col, 110)
            self._line((p[0], p[1], z0 + 0.01), p, col, 160)
            self._sphere(p, 0.07, col, 160)

    @staticmethod
    def _disc(p, r, color, alpha) -> None:
        x, y = float(p[0]), float(-p[1])
        z = float(p[2])
        rl.draw_cylinder_ex(rl.Vector3(x, z + 0.012, y), rl.Vector3(x, z + 0.016, y), r, r, 24,
                            _col(color, alpha))

    def _draw_vehicle(self, snap: Snapshot) -> None:
        if not self._drone_final and getattr(self.session.flight, "policy", None) is not None:
            self._drone, self._drone_final = self.session.drone_params(), True  # the policy's drone, once loaded
        d = self._drone
        arm, wmax = float(d.get("arm", 0.12)), max(float(d.get("omega_max", 1.0)), 1.0)
        p = np.asarray(snap.position, dtype=float)
        # drawn at least min_drone_px (arm length) on screen, as the viewer does for wide views
        focal = (self.height / 2) / math.tan(math.radians(self.camera.fovy) / 2)
        px_per_m = focal / max(float(np.linalg.norm(self._eye - p)), 1e-3)
        self.scale = max(1.0, self.min_drone_px / max(arm * px_per_m, 1e-6))
        u = self._motor_fraction(snap, d)
        st = np.zeros((1, 17))
        st[0, 0:3] = p
        st[0, 3:6] = snap.velocity
        st[0, 6:10] = snap.quaternion
        st[0, 10:13] = snap.rates
        st[0, 13:17] = u * wmax
        self._phase[0] += np.array([1.0, 1.0, -1.0, -1.0]) * u * 0.6
        self._draw_drones(np.array([0]), st, [{"drone": {"arm": arm, "omega_max": wmax}}])
        if snap.predicted_position is not None:  # a wire ghost, so the drone stays visible through it
            g = np.asarray(snap.predicted_position, dtype=float)
            r = arm * self.scale * 1.15
            rl.draw_sphere_wires(_v3(g), r, 5, 10, _col(GHOST, 110))
            self._sphere(g, 0.25 * r, GHOST, 150)
            self._line(p, g, GHOST, 200)

    @staticmethod
    def _motor_fraction(snap: Snapshot, d: dict) -> float:
        """Motor speed / omega_max for the prop colours: from the ctbr thrust command under the policy,
        the hover figure when the firmware flies, 0 disarmed (telemetry has no motor speeds)."""
        if not snap.armed:
            return 0.0
        if snap.action is not None and len(snap.action) == 4:
            return math.sqrt(min(max((snap.action[0] + 1.0) / 2.0, 0.0), 1.0))
        try:
            return math.sqrt(drone_sim.hover_thrust_fraction(d))
        except (KeyError, ValueError, TypeError):
            return 0.5

    # -- HUD -----------------------------------------------------------------------------------------------
    def _draw_overlay(self, snap: Snapshot | None, f: dict) -> None:
        w, h = self.width, self.height
        now = time.monotonic()
        if snap is not None and snap.target is not None and snap.task != "race":
            x, y, on = self._screen(snap.target)
            if on:
                self._text(f"target {snap.target[2] - f['ground_z']:.1f} m", x + 10, y - 8, 10, TARGET_COLOR)
        if self.dragging and self._drag_candidate is not None and not self._drag_ok:
            x, y, on = self._screen(self._drag_candidate)
            if on:
                self._text("outside the fence" if "fence" in self._drag_why else "refused: " + self._drag_why[:60],
                           x + 12, y - 20, 20, REFUSED)
        lines = self._status_lines(snap, f)
        pw = max(rl.measure_text(t, s) for t, s, _ in lines) + 24
        ph = sum(s + 7 for _, s, _ in lines) + 14
        self._panel(10, 10, pw, ph)
        y = 17
        for t, s, c in lines:
            self._text(t, 22, y, s, c)
            y += s + 7
        rlines = self._link_lines(snap)
        rw = max(rl.measure_text(t, s) for t, s, _ in rlines) + 24
        rh = sum(s + 7 for _, s, _ in rlines) + 14
        self._panel(w - rw - 10, 10, rw, rh)
        y = 17
        for t, s, c in rlines:
            self._text(t, w - rw + 2, y, s, c)
            y += s + 7
        # safety triggers: a red banner with the newest (between the panels, or under them), then the list
        self._banner_rect = None
        if snap is not None and snap.triggers:
            last = snap.triggers[-1]
            banner = f"SAFETY {last.get('kind')}: {last.get('detail')} -> {last.get('response')}"
            bw = min(rl.measure_text(banner, 20) + 24, w - 20)
            by = 10 if pw + rw + bw + 40 < w else max(ph, rh) + 20
            bx = int((w - bw) / 2)
            rl.draw_rectangle(bx, by, int(bw), 32, rl.Color(150, 20, 20, 230))
            self._text(banner, bx + 12, by + 6, 20, (255, 235, 235))
            self._banner_rect = [bx, by, int(bw), 32]
            yy = max(by + 40, rh + 20)
            for trig in snap.triggers[-4:]:
                t = f"{trig.get('kind')}: {str(trig.get('detail'))[:90]} -> {trig.get('response')}"
                self._text(t, w - rl.measure_text(t, 10) - 12, yy, 10, REFUSED)
                yy += 14
        # messages: the flight's own lines, then the operator's notices, errors in red
        msgs = [(t, s, (200, 205, 212)) for t, s in list(self.session.lines)[-4:]]
        if self._notice is not None and now - self._notice[0] < 6.0:
            msgs.append((self._notice[0], self._notice[1], (240, 240, 240)))
        if self._error is not None and now - self._error[0] < 8.0:
            msgs.append((self._error[0], self._error[1], REFUSED))
        msgs.sort(key=lambda m: m[0])
        y = h - 92 - 16 * len(msgs[-5:])
        for _, s, c in msgs[-5:]:
            self._text(s[:160], 14, y, 10 if c != REFUSED else 10, c)
            y += 16
        if self.closing:
            txt = "window closed: landing; it closes once the vehicle is disarmed (close again: now)"
            tw = rl.measure_text(txt, 20) + 24
            rl.draw_rectangle(int((w - tw) / 2), int(h / 2 - 20), int(tw), 40, rl.Color(20, 20, 20, 220))
            self._text(txt, (w - tw) / 2 + 12, h / 2 - 10, 20, WARN)
        self._draw_buttons(snap)
        self._text(_HELP, 12, h - 18, 10, (170, 175, 185))

    def _status_lines(self, snap: Snapshot | None, f: dict) -> list[tuple[str, int, tuple]]:
        s = self.session
        if snap is None:
            state = "connecting / preflight" if not s.done else "ended before the first tick"
            out = [(f"drone-ui: {state}", 20, (255, 255, 255))]
            if s.done:
                out.append((f"exit {s.exit_code}: {getattr(s.flight, 'reason', '')}"[:90], 10, REFUSED))
            return out
        phase = snap.phase.upper() + (" (dry run)" if snap.dry_run else "")
        if s.done:
            phase = f"ENDED (exit {s.exit_code})"
        armed = ("ARMED", REFUSED) if s.armed_now(snap) else ("disarmed", OK_GREEN)
        if s.done:
            armed = (armed[0] + " (last telemetry)", armed[1])
        px, py, pz = snap.position
        speed = float(np.linalg.norm(snap.velocity))
        rr, pp, yy = snap.euler_deg
        batt = f"battery {snap.battery_voltage:.2f} V" + (
            f"  {100 * snap.battery_remaining:.0f} %" if snap.battery_remaining >= 0 else "")
        tl = f"target {snap.target_label}" if snap.target is not None else "target -"
        if snap.target is not None:
            tx, ty, tz = snap.target
            tl += f"  ({tx:+.2f}, {ty:+.2f}, {tz:+.2f})"
        out = [
            (phase, 20, (255, 255, 255)),
            (f"{armed[0]}", 20, armed[1]),
            (f"mode {snap.mode}   task {snap.task}", 20, (220, 225, 232)),
            (f"pos ({px:+.2f}, {py:+.2f}, {pz:+.2f}) m   speed {speed:.2f} m/s", 10, (220, 225, 232)),
            (f"roll {rr:+.1f}  pitch {pp:+.1f}  yaw {yy:+.1f} deg", 10, (220, 225, 232)),
            (tl, 10, TARGET_COLOR),
            (f"distance to target {snap.distance_to_target:.2f} m", 20, (255, 255, 255)),
            (batt, 10, WARN if 0 <= snap.battery_remaining < 0.3 else (220, 225, 232)),
        ]
        if s.done:
            out.append((f"{getattr(s.flight, 'reason', '')}"[:90], 10, WARN))
        if snap.phase == "idle" and not s.done:
            out.append(("preflight passed: T (or the button) arms and takes off", 10, OK_GREEN))
        return out

    def _link_lines(self, snap: Snapshot | None) -> list[tuple[str, int, tuple]]:
        r = self._rates
        link = self.session.link
        if snap is None:
            ok, age = (link is not None and link.connected), float("nan")
        else:
            ok, age = snap.link_ok, snap.telemetry_age_s
        if self.session.done:
            out = [("LINK CLOSED (flight ended)", 20, (170, 175, 185))]
        else:
            out = [(("LINK OK" if ok else "LINK LOST"), 20, OK_GREEN if ok else REFUSED)]
        out += [(f"telemetry age {age * 1e3:.0f} ms" if math.isfinite(age) else "telemetry -", 10, (220, 225, 232)),
                (f"rx {r.rx_hz:.0f} msg/s  {r.rx_bps / 1000:.1f} kB/s   tx {r.tx_hz:.0f} msg/s", 10, (220, 225, 232))]
        if link is not None:
            st = link.stats
            bad = st.faults + st.garbage_bytes
            out.append((f"faults {st.faults}  garbage {st.garbage_bytes} B  losses {st.link_losses}", 10,
                        WARN if bad else (170, 175, 185)))
        if snap is not None:
            miss_col = REFUSED if snap.deadline_misses else (220, 225, 232)
            out += [(f"loop {snap.loop_rate_hz:5.1f} Hz   compute p99 {snap.compute_p99_ms:.2f} ms", 10,
                     (220, 225, 232)),
                    (f"deadline misses {snap.deadline_misses}", 10, miss_col)]
        pe = "-" if self._pred_err is None else (f"{1000 * self._pred_err:.2f} mm" if self._pred_err < 0.01
                                                 else f"{100 * self._pred_err:.1f} cm")
        out += [(f"sim one-step prediction error {pe}", 10, GHOST),
                (f"ui {self._fps:5.1f} fps", 10, (170, 175, 185))]
        return out

    def _draw_buttons(self, snap: Snapshot | None) -> None:
        task = snap.task if snap is not None else "-"
        specs = [("takeoff", "T  arm + take off", (40, 110, 60)), ("land", "L  land", (60, 80, 130)),
                 ("hold", "H  hold", (60, 80, 130)), ("task", f"Tab  task: {task}", (60, 80, 130)),
                 ("kill", "K  KILL", (170, 25, 25))]
        x, y, bh = 12, self.height - 60, 30
        self._buttons = []
        mx, my = self._mouse()
        for name, label, col in specs:
            bw = rl.measure_text(label, 20) + 24
            hover = x <= mx < x + bw and y <= my < y + bh
            c = tuple(min(255, v + 40) for v in col) if hover else col
            rl.draw_rectangle(x, y, bw, bh, _col(c, 230))
            rl.draw_rectangle_lines(x, y, bw, bh, rl.Color(200, 205, 212, 200))
            self._text(label, x + 12, y + 5, 20, (255, 255, 255))
            self._buttons.append(((x, y, bw, bh), name, label, col))
            x += bw + 10

    # -- frame info (tests, benchmarks) ---------------------------------------------------------------
    def frame_stats(self) -> dict:
        """Frame rate figures over the window's life (frame time = one main-loop iteration)."""
        ft = np.asarray(self._frame_ms) if self._frame_ms else np.zeros(0)
        if not ft.size:
            return {"frames": self._frames}
        return {"frames": self._frames, "fps_mean": round(1000.0 / float(ft.mean()), 2),
                "frame_p50_ms": round(float(np.percentile(ft, 50)), 2),
                "frame_p99_ms": round(float(np.percentile(ft, 99)), 2), "frame_max_ms": round(float(ft.max()), 2),
                "target_fps": self.fps_target}

    def _write_info(self, force: bool = False, extra: dict | None = None) -> None:
        """--frame-info: what the window shows, where (pixels), and its frame rate; rewritten atomically
        every 0.25 s so a test or script can aim the mouse at the target and at grid points."""
        if self.frame_info_path is None:
            return
        now = time.monotonic()
        if not force and now - self._info_t < 0.25:
            return
        self._info_t = now
        snap = self.control.snapshot()
        f = self._fence()
        grid = {}
        r = int(math.floor(f["radius"]))
        for i in range(-r, r + 1):
            for j in range(-r, r + 1):
                p = (f["center"][0] + i, f["center"][1] + j, f["ground_z"])
                x, y, on = self._screen(p)
                if on:
                    grid[f"{i},{j}"] = [round(x, 1), round(y, 1)]
        info = {"width": self.width, "height": self.height, "frames": self._frames, "fps": round(self._fps, 2),
                "stats": self.frame_stats(), "renderer_threads_lowered": len(self.renderer_threads),
                "closing": self.closing, "flight_done": self.session.done, "safety_banner": self._banner_rect,
                "exit_code": self.session.exit_code, "refusals": self.refusals, "targets_sent": self.targets_sent,
                "error": self._error[1] if self._error else None, "fence": f, "grid_screen": grid,
                "camera": {"yaw_deg": math.degrees(self.yaw), "pitch_deg": math.degrees(self.pitch), "zoom": self.zoom}}
        if snap is not None:
            tgt = self._current_target(snap)  # the target in force (the snapshot's lags by up to a tick)
            info.update(phase=snap.phase, armed=self.session.armed_now(snap), mode=snap.mode,
                        position=list(snap.position),
                        target=None if tgt is None else [float(v) for v in tgt], task=snap.task,
                        distance_to_target=snap.distance_to_target, triggers=list(snap.triggers),
                        loop_rate_hz=snap.loop_rate_hz, compute_p99_ms=snap.compute_p99_ms,
                        deadline_misses=snap.deadline_misses)
            if tgt is not None:
                x, y, on = self._screen(tgt)
                fx, fy, fon = self._screen((tgt[0], tgt[1], f["ground_z"]))
                info["target_screen"] = [round(x, 1), round(y, 1)] if on else None
                info["target_floor_screen"] = [round(fx, 1), round(fy, 1)] if fon else None
        info["goal"] = None if self._goal is None else [float(v) for v in self._goal]  # a walk in progress
        if self.course is not None:
            rings = []
            for k, g in enumerate(self.course.get("rings", [])):
                x, y, on = self._screen(g["position"])
                rings.append({"index": k, "screen": [round(x, 1), round(y, 1)] if on else None,
                              "next": k == self._next_ring(snap)})
            info["rings"] = rings
        info.update(self._last_shot)
        if extra:
            info.update(extra)
        tmp = self.frame_info_path.with_name(self.frame_info_path.name + ".tmp")
        tmp.write_text(json.dumps(info, default=str))
        os.replace(tmp, self.frame_info_path)

    # -- main loop -------------------------------------------------------------------------------------
    def run(self) -> None:
        """Render until the window is closed and (after asking the flight to land) the flight has ended."""
        old = sys.getswitchinterval()
        sys.setswitchinterval(0.0002)  # the loop thread gets the GIL back quickly from Python drawing code
        try:
            while True:
                if rl.window_should_close():
                    if self.closing or self.session.done:
                        break
                    self.closing = True
                    self.control.request_land("window closed")
                    self._say("window closed: landing")
                if self.control.quit_requested and not self.closing:
                    self.closing = True      # SIGINT / SIGTERM: the flight lands, then the window goes
                    self._say(f"{self.control.quit_requested}: landing, then closing")
                if self.session.done and (self.closing or self.exit_when_done):
                    self.draw()
                    break
                self.draw()
        finally:
            if self.session.done:  # else the loop (still landing) keeps the short interval
                sys.setswitchinterval(old)
            self._write_info(force=True)

    def close(self) -> None:
        """Release the window (the flight keeps running; see run_window)."""
        if Viewer._open:
            self._write_info(force=True)
        super().close()


UI_NICE = 10


def _threads() -> set[int]:
    """Native ids of this process's threads (Linux /proc; empty elsewhere)."""
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()


def _lower_priority(tids: set[int], nice: int = UI_NICE) -> list[int]:
    """Lower the CPU priority (per-thread nice, Linux) of the given threads; returns those changed.

    Used on the threads the window's creation started: a software OpenGL renderer (Mesa llvmpipe, as
    under Xvfb or on a laptop without a GPU driver) runs one raster thread per core, which would otherwise
    compete with the control loop for every core. Only threads that never run Python are lowered: the
    window's own (main) thread keeps its priority, since a lowered thread holding the GIL while the
    kernel prefers other work would hold the loop up (priority inversion)."""
    changed = []
    for tid in sorted(tids):
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
            changed.append(tid)
        except (OSError, AttributeError):
            pass
    return changed


def run_window(flight: "Flight", *, arm_gate: bool = True, course: dict | None = None, **window) -> int:
    """Fly `flight` (a deploy.flight.Flight, not started) with the operator window: the control loop on
    its own thread, the window on this one. Returns the flight's exit code once it has ended (closing
    the window asks it to land first; the loop finishes the landing even if the window is gone)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise RuntimeError("no display for the operator window (DISPLAY is not set; on a headless machine run "
                           "under xvfb-run)")
    session = FlightThread(flight, arm_gate=arm_gate)
    if course is None and getattr(flight.config, "course", None):
        try:
            course = drone_sim.load_course(flight.config.course)
        except (OSError, ValueError):
            course = None  # the flight refuses the bad course itself, with the message shown
    before = _threads()
    win = OperatorWindow(session, course=course, **window)  # before the flight: nothing to land if it fails
    win.renderer_threads = _lower_priority(_threads() - before - {threading.get_native_id()})
    session.start()
    try:
        win.run()
    except BaseException:
        flight.control.request_land("operator UI error")
        raise
    finally:
        if not session.done:
            flight.control.request_land("window closed")
        win.close()
        if not session.done:
            print("drone-ui: window closed; waiting for the flight to land and disarm", flush=True)
        session.join()
    return int(session.exit_code if session.exit_code is not None else 1)


# ---------------------------------------------------------------------------------------------- drone-ui
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
    cmd = [exe] if exe else [sys.executable, "-m", "firmware_bridge.sim_vehicle"]
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


def build_parser() -> "argparse.ArgumentParser":
    """drone-ui's own options; everything else is a drone-deploy option (see drone-deploy --help)."""
    import argparse

    ap = argparse.ArgumentParser(
        prog="drone-ui", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The operator window: drag the target, watch the drone and the simulator's prediction.\n"
                    "Other options are drone-deploy's (--policy, --task, --course, --fence, --max-alt,\n"
                    "--takeoff-alt, --target, --lockstep, --log ...: see drone-deploy --help).",
        epilog=next(p for p in __doc__.split("\n\n") if p.startswith("Controls")))
    ap.add_argument("--sim", action="store_true", help="practice: start a drone-sim-vehicle on a pty and fly it")
    ap.add_argument("--sim-arg", action="append", default=[], metavar="ARG",
                    help="an argument for drone-sim-vehicle (repeat; write --sim-arg=--noise-pos --sim-arg=0.02)")
    ap.add_argument("--arm", action="store_true", help="arm and take off as soon as preflight passes (no T key)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=30, help="window frame rate cap (default 30)")
    ap.add_argument("--supersample", type=int, default=1, choices=[1, 2], help="render the 3D view at 2x and filter")
    ap.add_argument("--frame-info", metavar="JSON", help="keep writing what the window shows (pixels, state) here")
    ap.add_argument("--screenshot-dir", metavar="DIR", help="where P saves screenshots (default: here)")
    ap.add_argument("--exit-when-done", action="store_true", help="close the window when the flight has ended")
    ap.add_argument("--frame-stall-ms", type=float, default=0.0, help=argparse.SUPPRESS)  # scripts/bench_ui.py
    ap.add_argument("--target-speed", type=float, default=TARGET_SPEED, metavar="M/S",
                    help=f"the target walks to where it was dragged at this speed (default {TARGET_SPEED:g}; 0: jumps)")
    return ap


def ui_window_options(args: "argparse.Namespace") -> dict:
    """The OperatorWindow keywords from parsed drone-ui / drone-deploy --ui options."""
    return dict(width=args.width, height=args.height, fps=args.fps, supersample=args.supersample,
                frame_info=args.frame_info, screenshot_dir=args.screenshot_dir, exit_when_done=args.exit_when_done,
                target_speed=args.target_speed, frame_stall_ms=getattr(args, "frame_stall_ms", 0.0))


def main(argv: list[str] | None = None) -> int:
    """drone-ui: `--sim` for practice against a simulated vehicle it starts; with `--port` it is
    `drone-deploy --ui` (the real vehicle)."""
    import signal

    from .cli import attach_vector_values, config_from_args
    from .cli import build_parser as deploy_parser
    from .config import ConfigError
    from .flight import EXIT_REFUSED, Flight

    argv = attach_vector_values(list(sys.argv[1:] if argv is None else argv))
    ui_args, rest = build_parser().parse_known_args(argv)
    dp = deploy_parser()
    dp.prog = "drone-ui"
    if not ui_args.sim and "--port" not in rest and not any(a.startswith("--port=") for a in rest):
        print("drone-ui: error: give --sim (practice against a simulated vehicle) or --port PORT", file=sys.stderr)
        return EXIT_REFUSED
    sim = None
    try:
        if ui_args.sim:
            if "--port" in rest or any(a.startswith("--port=") for a in rest):
                print("drone-ui: error: --sim starts its own vehicle; leave out --port", file=sys.stderr)
                return EXIT_REFUSED
            lockstep = "--lockstep" in rest
            sim_args = list(ui_args.sim_arg) + (["--lockstep"] if lockstep and "--lockstep" not in ui_args.sim_arg
                                                else [])
            sim, port = launch_sim_vehicle(sim_args)
            print(f"drone-ui: simulated vehicle on {port}", flush=True)
            rest += ["--port", port, "--baud", "115200"]
        args = dp.parse_args(rest)
        try:
            cfg = config_from_args(args)
        except ConfigError as exc:
            print(f"drone-ui: error: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        control = FlightControl()
        signal.signal(signal.SIGINT, lambda *_: control.request_quit("Ctrl-C"))
        signal.signal(signal.SIGTERM, lambda *_: control.request_quit("SIGTERM"))
        flight = Flight(cfg, control, say=lambda line: print(line, flush=True))
        try:
            code = run_window(flight, arm_gate=not ui_args.arm, **ui_window_options(ui_args))
        except (RuntimeError, ValueError) as exc:
            print(f"drone-ui: error: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        if flight.log is not None:
            print(f"flight log: {flight.log.path}", flush=True)
        return code
    finally:
        if sim is not None:
            sim.terminate()
            try:
                sim.wait(timeout=5)
            except subprocess.TimeoutExpired:
                sim.kill()
                sim.wait()


if __name__ == "__main__":
    sys.exit(main())
