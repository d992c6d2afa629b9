"""The operator's input: mouse and keys -> the target (dragged on the floor plane, walked there at a
bounded speed) and the flight's commands (take off, land, hold, task, kill, screenshot)."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from drone_sim.viewer import rl

from ..control import Snapshot
from ..targets import SUPPORTED_TASKS, TargetError
from .style import GRAB_PX, HEIGHT_STEP, SEND_PERIOD


class OperatorInput:
    """Mixin of OperatorWindow: reads the mouse and keys each frame and turns them into targets and
    requests on FlightControl. Uses the window's camera, size, session and control."""

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
