"""The Viewer window: state, camera and input, the frame loop (render textures), frames and screenshots."""
from __future__ import annotations

import math
import time
from collections import deque

import numpy as np

from .drawing import _C, _FS, _VS, MOTOR_SPIN, blit_flipped, raylib_point, rl
from .overlay import Overlay
from .scene import Scene


class Viewer(Scene, Overlay):
    """Draws one env of a DroneVecEnv with raylib; see drone_sim.viewer's docstring."""

    _open = False

    def __init__(self, env, env_index: int = 0, width: int = 1280, height: int = 720, title: str = "drone-view",
                 hidden: bool = False, controller_name: str = "", drone_scale: float = 1.0, trail_length: int = 75,
                 supersample: int = 2, show_help: bool | None = None, min_drone_px: float = 16.0):
        if Viewer._open:
            raise RuntimeError("raylib supports one window per process: close the other Viewer first")
        if width < 64 or height < 64:
            raise ValueError(f"window size {width}x{height} is too small (at least 64x64)")
        if supersample not in (1, 2):
            raise ValueError("supersample must be 1 or 2")
        self.env = env
        self.width, self.height = int(width), int(height)
        self.hidden = bool(hidden)
        self.controller_name = controller_name
        self.drone_scale = float(drone_scale)    # drones are drawn at least this many times their size
        self.min_drone_px = float(min_drone_px)  # ... and at least this long an arm on screen (pixels)
        self.scale = self.drone_scale            # the scale of the last frame
        self.trail_length = int(trail_length)
        self.ss = int(supersample)
        self.show_help = (not hidden) if show_help is None else bool(show_help)
        self.show_trails = True
        self.show_labels = True
        self.follow = True
        self.paused = False
        arena = env.config.get("arena", (15.0, 15.0, 8.0))
        self.arena = tuple(float(a) for a in arena)
        self._env_index = 0
        self.env_index = env_index

        rl.set_trace_log_level(rl.LOG_WARNING)
        flags = rl.FLAG_WINDOW_HIDDEN if self.hidden else (rl.FLAG_WINDOW_RESIZABLE | rl.FLAG_MSAA_4X_HINT)
        rl.set_config_flags(flags)
        rl.init_window(self.width, self.height, title)
        if not rl.is_window_ready():
            raise RuntimeError("raylib could not open a window (no display? on a headless machine run under "
                               "xvfb-run, e.g. `xvfb-run -a drone-view ...`)")
        Viewer._open = True
        rl.set_exit_key(rl.KEY_ESCAPE)
        self._load_resources()

        self.camera = rl.Camera3D(rl.Vector3(10, 10, 10), rl.Vector3(0, 0, 0), rl.Vector3(0, 1, 0), 45.0,
                                  rl.CAMERA_PERSPECTIVE)
        self.reset_camera()
        self._rewards = np.zeros(env.num_agents, dtype=np.float32)
        self._phase = np.zeros((env.num_agents, 4))
        self._fps = 0.0
        self._last_draw = None
        self._updates = 0
        self._cam_updates = 0
        self._sim_rate = 0.0
        self._rate_t0 = time.perf_counter()
        self._rate_n0 = 0
        self._frame_rgb: np.ndarray | None = None
        self._info: dict = {}

    # -- setup ----------------------------------------------------------------------------------------
    def _load_resources(self) -> None:
        w, h, s = self.width, self.height, self.ss
        self._rt3d = rl.load_render_texture(w * s, h * s)
        rl.set_texture_filter(self._rt3d.texture, rl.TEXTURE_FILTER_BILINEAR)
        self._rt = rl.load_render_texture(w, h)
        rl.set_texture_filter(self._rt.texture, rl.TEXTURE_FILTER_BILINEAR)
        self._shader = rl.load_shader_from_memory(_VS, _FS)
        self._loc_light = rl.get_shader_location(self._shader, "lightDir")
        self._loc_view = rl.get_shader_location(self._shader, "viewPos")
        light = _C @ np.array([-0.35, 0.45, -0.82])
        light /= np.linalg.norm(light)
        rl.set_shader_value(self._shader, self._loc_light, rl.ffi.new("float[3]", light.tolist()),
                            rl.SHADER_UNIFORM_VEC3)
        self._mat = rl.load_material_default()
        self._mat.shader = self._shader
        self._mesh_sphere = rl.gen_mesh_sphere(1.0, 16, 24)     # unit radius, centred
        self._mesh_cyl = rl.gen_mesh_cylinder(1.0, 1.0, 12)     # radius 1, y from 0 to 1
        self._mesh_cube = rl.gen_mesh_cube(1.0, 1.0, 1.0)       # centred, side 1
        self._mesh_torus = rl.gen_mesh_torus(0.06, 2.0, 12, 64)  # major radius 1, axis z (local)

    # -- state ----------------------------------------------------------------------------------------
    @property
    def env_index(self) -> int:
        return self._env_index

    @env_index.setter
    def env_index(self, e: int) -> None:
        if not 0 <= int(e) < self.env.num_envs:
            n = self.env.num_envs
            raise ValueError(f"env index {e} out of range: the vector has {n} env(s) (0..{n - 1})")
        self._env_index = int(e)
        self._trails = [deque(maxlen=self.trail_length) for _ in range(self.env.agents_per_env)]
        self._center = None

    @property
    def agents(self) -> range:
        """Flat agent indices of the env on screen."""
        n = self.env.agents_per_env
        return range(self._env_index * n, (self._env_index + 1) * n)

    def reset_camera(self) -> None:
        self.yaw = math.radians(-60.0)    # azimuth of the eye around the world z axis
        self.auto_yaw = True              # swing behind the drones' mean heading until the user rotates
        self.pitch = math.radians(32.0)   # elevation of the eye
        self.zoom = 1.0
        self.pan = np.zeros(3)
        self._center = None
        self._dist = None

    def update(self, rewards: np.ndarray | None = None, dones: np.ndarray | None = None) -> None:
        """Record what the last env.step() did: trails, rewards; dones clears the trails of respawned drones."""
        if rewards is not None:
            self._rewards[:] = np.asarray(rewards, dtype=np.float32).reshape(-1)[: self.env.num_agents]
        states = self.env.states()
        d = None if dones is None else np.asarray(dones, dtype=bool).reshape(-1)
        for j, i in enumerate(self.agents):
            p = states[i, :3].astype(np.float64)
            tr = self._trails[j]
            if (d is not None and d[i]) or (tr and np.linalg.norm(tr[-1] - p) > 2.0):
                tr.clear()
            tr.append(p)
        # prop blades: slowed-down spin, direction from the X layout
        idx = list(self.agents)
        wmax = np.array([[self.env.agent_info(i)["drone"]["omega_max"]] for i in idx])
        self._phase[idx] += MOTOR_SPIN * states[idx, 13:17] / np.maximum(wmax, 1.0) * 0.6
        self._updates += 1

    def should_close(self) -> bool:
        return (not self.hidden) and rl.window_should_close()

    # -- input ----------------------------------------------------------------------------------------
    def _handle_input(self) -> None:
        if self.hidden:
            return
        if rl.is_mouse_button_down(rl.MOUSE_BUTTON_LEFT):
            d = rl.get_mouse_delta()
            self.yaw -= d.x * 0.008
            if d.x or d.y:
                self.auto_yaw = False
            self.pitch = min(max(self.pitch + d.y * 0.006, math.radians(3.0)), math.radians(88.0))
        if rl.is_mouse_button_down(rl.MOUSE_BUTTON_RIGHT):
            d = rl.get_mouse_delta()
            dist = self._dist or 10.0
            right = np.array([-math.sin(self.yaw), math.cos(self.yaw), 0.0])
            fwd = np.array([math.cos(self.yaw), math.sin(self.yaw), 0.0])
            # grab the scene: the point under the cursor follows it (fwd points from the target to the eye)
            self.pan -= (right * d.x + fwd * d.y) * dist * self.zoom * 0.0015
        wheel = rl.get_mouse_wheel_move()
        if wheel:
            self.zoom = min(max(self.zoom * (0.9 ** wheel), 0.05), 20.0)
        # the queue of pressed keys: a press and release within one (slow) frame still counts
        key = rl.get_key_pressed()
        while key:
            if key == rl.KEY_F:
                self.follow = not self.follow
            elif key == rl.KEY_R:
                self.reset_camera()
            elif key == rl.KEY_T:
                self.show_trails = not self.show_trails
            elif key == rl.KEY_L:
                self.show_labels = not self.show_labels
            elif key == rl.KEY_H:
                self.show_help = not self.show_help
            elif key == rl.KEY_SPACE:
                self.paused = not self.paused
            elif key == rl.KEY_N:
                self.env_index = (self._env_index + 1) % self.env.num_envs
            elif key == rl.KEY_P:
                self.env_index = (self._env_index - 1) % self.env.num_envs
            key = rl.get_key_pressed()

    def _update_camera(self, pos: np.ndarray, vel: np.ndarray, dt: float) -> None:
        """Orbit camera around the drones' centroid, far enough back to see them all; auto yaw (see draw)."""
        hx, hy, hz = self.arena

        def inside(q):
            return q[np.all(np.abs(q[:, :2]) < (hx + 5, hy + 5), axis=1) & (q[:, 2] < hz + 5) & (q[:, 2] > -5)]

        if self.follow and len(pos):
            pts = inside(pos)
            if not len(pts):
                pts = np.zeros((1, 3))
            c = pts.mean(axis=0)
            spread = float(np.max(np.linalg.norm(pts - c, axis=1)))
        else:
            c = np.array([0.0, 0.0, hz * 0.3])
            spread = max(hx, hy)
        dist = max(4.0, 2.6 * spread + 2.5)
        first = self._center is None
        a = 1.0 if first else min(1.0, dt * 2.5)
        if self.follow and self.auto_yaw and len(vel):
            want = None
            v = vel[:, :2].mean(axis=0)
            if float(np.hypot(*v)) > 0.8:  # flying: look along the flight, from behind and a little to the side
                want = math.atan2(-v[1], -v[0]) + 0.45
            elif len(pts) >= 3:  # a flat group (line, vertical grid): look at its broad side, a little skewed
                evals, evecs = np.linalg.eigh(np.cov((pts[:, :2] - c[:2]).T))
                if evals[1] > 0.5 and evals[0] < 0.3 * evals[1]:
                    nrm = evecs[:, 0]
                    cands = [math.atan2(nrm[1], nrm[0]) + 0.35, math.atan2(-nrm[1], -nrm[0]) + 0.35]
                    want = min(cands, key=lambda y: abs((y - self.yaw + math.pi) % (2 * math.pi) - math.pi))
            if want is not None:
                err = (want - self.yaw + math.pi) % (2 * math.pi) - math.pi
                self.yaw += err * (1.0 if first else min(1.0, dt * 1.2))
        self._center = c if self._center is None else self._center + a * (c - self._center)
        self._dist = dist if self._dist is None else self._dist + a * (dist - self._dist)
        target = self._center + self.pan
        d = self._dist * self.zoom
        eye = target + d * np.array([math.cos(self.pitch) * math.cos(self.yaw),
                                     math.cos(self.pitch) * math.sin(self.yaw), math.sin(self.pitch)])
        eye[2] = max(eye[2], 0.15)
        # drones at least min_drone_px (arm length) on screen: wide views draw them larger
        arm = float(np.mean([self.env.agent_info(i)["drone"]["arm"] for i in self.agents]))
        focal = (self.height / 2) / math.tan(math.radians(self.camera.fovy) / 2)
        px_per_m = focal / max(float(np.linalg.norm(eye - target)), 1e-3)
        scale = max(self.drone_scale, self.min_drone_px / max(arm * px_per_m, 1e-6))
        self.scale = scale if first else self.scale + a * (scale - self.scale)
        self.camera.position = raylib_point(eye)
        self.camera.target = raylib_point(target)
        self._eye, self._target = eye, target

    def draw(self) -> None:
        """Handle input, render one frame (3D scene + HUD) and show it in the window (when visible)."""
        now = time.perf_counter()
        dt = 1.0 / 30.0 if self._last_draw is None else max(now - self._last_draw, 1e-6)
        self._last_draw = now
        inst = 1.0 / dt
        self._fps = inst if self._fps == 0.0 else 0.9 * self._fps + 0.1 * inst
        if now - self._rate_t0 > 0.5:
            self._sim_rate = (self._updates - self._rate_n0) * self.env.control_dt / (now - self._rate_t0)
            self._rate_t0, self._rate_n0 = now, self._updates
        if not self.hidden and rl.is_window_resized():
            self._resize(rl.get_screen_width(), rl.get_screen_height())
        self._handle_input()

        env = self.env
        states = env.states()
        idx = np.array(list(self.agents))
        st = states[idx].astype(np.float64)
        pos = st[:, :3]
        info = env.env_info(self._env_index)
        tpos, tvel = env.targets()
        # camera smoothing runs on simulated time when the sim advanced (offscreen videos look the same at any
        # rendering speed), on wall time when paused
        sim_dt = (self._updates - self._cam_updates) * env.control_dt
        self._cam_updates = self._updates
        self._update_camera(pos, st[:, 3:6], sim_dt if sim_dt > 0 else dt)
        agent_infos = [env.agent_info(int(i)) for i in idx]

        self._begin_scene()
        self._draw_arena()
        self._draw_course(info, agent_infos)
        self._draw_targets(info, pos, tpos[idx].astype(np.float64))
        self._draw_drones(idx, st, agent_infos)
        self._begin_overlay()
        self._draw_labels(info, idx, pos)
        self._draw_hud(info, idx, st, tpos[idx], agent_infos)
        rl.end_texture_mode()
        self._frame_rgb = None
        self._info = self._frame_info(info, idx, pos)

        if not self.hidden:
            rl.begin_drawing()
            rl.clear_background(rl.BLACK)
            blit_flipped(self._rt.texture, rl.get_screen_width(), rl.get_screen_height())
            rl.end_drawing()

    def _resize(self, w: int, h: int) -> None:
        if w < 64 or h < 64 or (w, h) == (self.width, self.height):
            return
        rl.unload_render_texture(self._rt3d)
        rl.unload_render_texture(self._rt)
        self.width, self.height = w, h
        s = self.ss
        self._rt3d = rl.load_render_texture(w * s, h * s)
        rl.set_texture_filter(self._rt3d.texture, rl.TEXTURE_FILTER_BILINEAR)
        self._rt = rl.load_render_texture(w, h)
        rl.set_texture_filter(self._rt.texture, rl.TEXTURE_FILTER_BILINEAR)

    def frame(self) -> np.ndarray:
        """The last rendered frame as (height, width, 3) uint8 RGB, top row first."""
        if self._frame_rgb is None:
            img = rl.load_image_from_texture(self._rt.texture)
            try:
                if img.format != rl.PIXELFORMAT_UNCOMPRESSED_R8G8B8A8:
                    rl.image_format(rl.ffi.addressof(img), rl.PIXELFORMAT_UNCOMPRESSED_R8G8B8A8)
                buf = rl.ffi.buffer(img.data, img.width * img.height * 4)
                rgba = np.frombuffer(buf, dtype=np.uint8).reshape(img.height, img.width, 4)
                self._frame_rgb = np.ascontiguousarray(rgba[::-1, :, :3])  # GL rows are bottom-up
            finally:
                rl.unload_image(img)
        return self._frame_rgb

    def frame_info(self) -> dict:
        """What the last frame shows: camera, drones with their pixel positions and colours, rings."""
        return self._info

    def save_screenshot(self, path) -> None:
        """Write the last frame to an image file (PNG by extension)."""
        import cv2

        if self._last_draw is None:
            self.draw()
        if not cv2.imwrite(str(path), self.frame()[:, :, ::-1]):
            raise OSError(f"could not write the screenshot {path}")

    def close(self) -> None:
        if not Viewer._open:
            return
        for m in (self._mesh_sphere, self._mesh_cyl, self._mesh_cube, self._mesh_torus):
            rl.unload_mesh(m)
        rl.unload_shader(self._shader)
        rl.unload_render_texture(self._rt3d)
        rl.unload_render_texture(self._rt)
        rl.close_window()
        Viewer._open = False

    def __enter__(self) -> "Viewer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
