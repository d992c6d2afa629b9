"""What the operator window draws over the 3D scene: status lines, link rates, buttons, messages, and the
frame info file tests and benchmarks read."""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from drone_sim.viewer import rgba, rl

from ..control import Snapshot
from .style import _HELP, GHOST, OK_GREEN, REFUSED, TARGET_COLOR, WARN


class Hud:
    """Mixin of OperatorWindow: the 2D overlay and the frame info, from the loop's latest Snapshot."""

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
            rl.draw_rectangle(x, y, bw, bh, rgba(c, 230))
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
