"""The operator window: a raylib window over the flight, its camera and 3D scene, and run_window, which
flies a Flight with it (the loop on its own thread, the window on the main one)."""
from __future__ import annotations

import collections
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import drone_sim
from drone_sim.viewer import Viewer, blit_flipped, raylib_point, rgba, rl

from ..control import Snapshot
from .hud import Hud
from .input import OperatorInput
from .session import FlightThread, _Rates
from .style import FENCE, GHOST, REFUSED, TARGET_COLOR, TARGET_SPEED

if TYPE_CHECKING:  # deploy.flight imports onnxruntime and pymavlink; the window needs neither to import
    from ..flight import Flight


class OperatorWindow(OperatorInput, Hud, Viewer):
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
        self.camera.position = raylib_point(eye)
        self.camera.target = raylib_point(c)
        self._eye, self._target = eye, c

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
        blit_flipped(self._rt.texture, rl.get_screen_width(), rl.get_screen_height())
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
        rl.draw_plane(rl.Vector3(cx, z0, -cy), rl.Vector2(2 * half, 2 * half), rgba((40, 46, 56)))
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
            rl.draw_sphere_wires(raylib_point(t), 0.3, 6, 8, rl.Color(240, 240, 240, 50))
            self._line((t[0], t[1], z0 + 0.01), t, (200, 200, 200), 120)
            self._disc((t[0], t[1], z0), 0.22, TARGET_COLOR, 150)
        if self._goal is not None:  # where the target is walking to
            g = self._goal
            self._disc((g[0], g[1], z0), 0.3, TARGET_COLOR, 70)
            rl.draw_sphere_wires(raylib_point(g), 0.12, 4, 8, rl.Color(240, 240, 240, 160))
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
                            rgba(color, alpha))

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
            rl.draw_sphere_wires(raylib_point(g), r, 5, 10, rgba(GHOST, 110))
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


def run_window(flight: "Flight", *, arm_gate: bool = True, course: dict | None = None,
               window_class: type | None = None, **window) -> int:
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
    win = (window_class or OperatorWindow)(session, course=course, **window)  # before the flight: nothing to land
                                                                             # if it fails
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
