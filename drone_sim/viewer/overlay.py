"""What the viewer draws over the scene: labels, the HUD panel, text, and the frame info tests read."""
from __future__ import annotations

import math

import numpy as np

from ..config import FORMATIONS
from .drawing import _HELP, PALETTE, SKY, blit_flipped, raylib_point, rgba, rl, speed_color


class Overlay:
    """Mixin of Viewer: 2D drawing over the 3D frame (screen projection, text, panels, HUD)."""

    def _begin_overlay(self) -> None:
        """End the 3D pass and start the 2D one: the frame texture gets the 3D picture, then labels and HUD
        are drawn over it (end with rl.end_texture_mode())."""
        rl.end_mode_3d()
        rl.end_texture_mode()
        rl.begin_texture_mode(self._rt)
        rl.clear_background(rl.BLACK)
        blit_flipped(self._rt3d.texture, self.width, self.height)

    def _screen(self, p) -> tuple[float, float, bool]:
        """World point -> (x, y) pixel in the output frame, and whether it is in front of the camera and on screen."""
        fwd = self._target - self._eye
        front = float(np.dot(np.asarray(p, float) - self._eye, fwd)) > 0.0
        v = rl.get_world_to_screen_ex(raylib_point(p), self.camera, self.width, self.height)
        on = front and 0 <= v.x < self.width and 0 <= v.y < self.height
        return float(v.x), float(v.y), on

    def _text(self, text: str, x: float, y: float, size: int = 20, color=(235, 238, 242), alpha: int = 255) -> None:
        rl.draw_text(text, int(x), int(y), size, rgba(color, alpha))

    def _draw_labels(self, info: dict, idx: np.ndarray, pos: np.ndarray) -> None:
        if not self.show_labels:
            return
        if info.get("task_name") == "race":
            for k, g in enumerate((info.get("course") or {}).get("rings", [])):
                top = np.asarray(g["position"], float) + np.array([0, 0, float(g["radius"]) * 1.25])
                x, y, on = self._screen(top)
                if on:
                    self._text(str(k + 1), x - 5, y - 18, 20, (255, 220, 150))
        for j in range(len(idx)):
            x, y, on = self._screen(pos[j])
            if on:
                self._text(str(int(idx[j])), x + 8, y - 22, 10, PALETTE[j % len(PALETTE)])

    def _panel(self, x, y, w, h) -> None:
        rl.draw_rectangle(int(x), int(y), int(w), int(h), rl.Color(8, 10, 14, 185))
        rl.draw_rectangle_lines(int(x), int(y), int(w), int(h), rl.Color(90, 100, 115, 200))

    def _draw_hud(self, info: dict, idx: np.ndarray, st: np.ndarray, tpos: np.ndarray, agent_infos: list) -> None:
        env = self.env
        task = info.get("task_name", "?")
        title = task
        if task == "swarm":
            f = info.get("formation", 0)
            title += f" ({FORMATIONS[f] if 0 <= f < len(FORMATIONS) else f})"
        if task == "race":
            title += f" ({len((info.get('course') or {}).get('rings', []))} rings)"
        rew = self._rewards[idx]
        mode = env.action_mode
        lines = [
            (title, 20, (255, 255, 255)),
            (f"env {self._env_index} of {env.num_envs}   drones {len(idx)}"
             + (f" of {env.num_agents}" if env.num_envs > 1 else ""), 20, None),
            (f"t {info.get('t', 0.0):6.2f} s   step {info.get('step', 0)}/{info.get('horizon', 0)}", 20, None),
            (f"reward mean {float(rew.mean()):+.3f}", 20, None),
            (f"controller {self.controller_name or '-'}   action {mode}", 20, None),
            (f"fps {self._fps:5.1f}   sim x{self._sim_rate:.2f}" + ("   PAUSED" if self.paused else ""), 20, None),
        ]
        if abs(self.scale - 1.0) > 0.05:
            lines.append((f"drones drawn {self.scale:.1f}x their size", 10, (180, 185, 195)))
        pw = max(rl.measure_text(t, sz) for t, sz, _ in lines) + 24
        ph = sum(sz + 8 for _, sz, _ in lines) + 16
        self._panel(10, 10, pw, ph)
        y = 18
        for t, sz, c in lines:
            self._text(t, 22, y, sz, c or (220, 225, 232))
            y += sz + 8

        # per-agent table, right side
        rows = []
        for j, i in enumerate(idx):
            a = agent_infos[j]
            dist = float(np.linalg.norm(st[j, :3] - tpos[j]))
            if task == "race":
                extra = f"ring {a['ring'] + 1} passed {a['rings_passed']}"
            elif task == "swarm":
                extra = f"slot {a['slot']:2d} err {dist:4.2f} m"
            else:
                extra = f"dist {dist:5.2f} m" + (" *" if a.get("reached") else "")
            rows.append((j, f"{int(i):3d}  r {float(rew[j]):+.2f}  R {a['episode_return']:+7.2f}  {extra}"))
        size, row_h = 10, 16
        max_rows = max(1, (self.height - 90) // row_h)
        shown = rows[:max_rows]
        if shown:
            tw = max(rl.measure_text(t, size) for _, t in shown) + 40
            x0 = self.width - tw - 10
            self._panel(x0, 10, tw, row_h * len(shown) + 26 + (row_h if len(rows) > len(shown) else 0))
            self._text(" id  reward  return", x0 + 26, 16, size, (180, 185, 195))
            y = 32
            for j, t in shown:
                rl.draw_rectangle(x0 + 8, y + 1, 12, 8, rgba(PALETTE[j % len(PALETTE)]))
                self._text(t, x0 + 26, y, size)
                y += row_h
            if len(rows) > len(shown):
                self._text(f"... {len(rows) - len(shown)} more", x0 + 26, y, size, (180, 185, 195))

        # legend: prop colours; help line
        y = self.height - (56 if self.show_help else 30)
        x = 12
        self._text("prop speed", x, y + 2, 10, (200, 205, 212))
        x += rl.measure_text("prop speed", 10) + 8
        for k in range(40):
            rl.draw_rectangle(x + 3 * k, y, 3, 14, rgba(speed_color(k / 39)))
        self._text("0", x - 1, y + 16, 10, (170, 175, 185))
        self._text("max", x + 110, y + 16, 10, (170, 175, 185))
        x += 130
        self._text("front arms red, white dot = nose; blades turn with the props", x, y + 2, 10, (200, 205, 212))
        if self.show_help:
            self._text(_HELP, 12, self.height - 22, 10, (170, 175, 185))

    def _frame_info(self, info: dict, idx: np.ndarray, pos: np.ndarray) -> dict:
        drones = []
        for j in range(len(idx)):
            x, y, on = self._screen(pos[j])
            drones.append({"agent": int(idx[j]), "position": [float(v) for v in pos[j]], "screen": [x, y],
                           "visible": bool(on), "color": list(PALETTE[j % len(PALETTE)])})
        rings = []
        if info.get("task_name") == "race":
            for g in (info.get("course") or {}).get("rings", []):
                x, y, on = self._screen(g["position"])
                rings.append({"position": list(g["position"]), "screen": [x, y], "visible": bool(on)})
        return {"width": self.width, "height": self.height, "env": self._env_index, "task": info.get("task_name"),
                "t": float(info.get("t", 0.0)), "step": int(info.get("step", 0)),
                "camera": {"position": self._eye.tolist(), "target": self._target.tolist()},
                "drone_scale": self.scale, "drones": drones, "rings": rings,
                "view": {"yaw_deg": math.degrees(self.yaw), "pitch_deg": math.degrees(self.pitch), "zoom": self.zoom,
                         "pan": self.pan.tolist(), "follow": self.follow, "auto_yaw": self.auto_yaw,
                         "paused": self.paused, "trails": self.show_trails, "labels": self.show_labels},
                "background": list(SKY)}

    # -- output ---------------------------------------------------------------------------------------
