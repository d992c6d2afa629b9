"""A raylib 3D viewer for a DroneVecEnv: arena, drones (attitude, props, trails), targets, rings, obstacles, HUD.

    env = drone_sim.make("race", agents_per_env=8, dr="nominal")
    viewer = Viewer(env, controller_name="hover")
    obs, _ = env.reset()
    while not viewer.should_close():
        obs, rewards, term, trunc, _ = env.step(actions)
        viewer.update(rewards, term | trunc)
        viewer.draw()
    viewer.close()

The viewer shows one env of the vector (env 0 by default; agent i belongs to env i // agents_per_env);
N / P switch env while it runs. Every frame is rendered into an offscreen RenderTexture, so the same
pixels go to the window, to `frame()` (numpy RGB) for videos and to `save_screenshot()`; with
hidden=True no window is ever shown (raylib still needs a display: run under xvfb-run on a headless box).

Frames. The simulator's world is ENU with z up, raylib's is y up: a world point (x, y, z) is drawn at
raylib (x, z, -y), a proper rotation, so handedness and triangle winding are kept. Quaternions are
(w, x, y, z) body-to-world, body FLU. Motors follow the X layout of quadrotor.h: 0 front-right (CCW),
1 rear-left (CCW), 2 front-left (CW), 3 rear-right (CW), at (+-arm/sqrt2, +-arm/sqrt2) in body x/y.

What is drawn: front arms red, rear arms grey, body in the agent's colour; each prop is a disc whose
colour is its motor speed (blue slow .. red at omega_max) with a blade that turns the way the prop spins
(slowed down to be visible); a floor shadow and drop line give height; a fading trail of recent positions.
Rings are numbered in course order, the rings some drone is heading for are orange, an arrow gives the
direction of passage. Targets are white markers (swarm: formation slots in the agent's colour).

Controls: left drag rotate, wheel zoom, right drag pan, F follow the drones on/off, R reset the camera,
N / P next / previous env, T trails, L labels, H help, SPACE pause (the caller's loop reads `paused`).
"""
from __future__ import annotations

import math
import time
from collections import deque
from typing import Sequence

import numpy as np

try:
    import pyray as rl
    import raylib as _c
except ImportError as exc:  # pragma: no cover - raylib is a declared dependency
    raise ImportError("the drone viewer needs raylib: pip install raylib") from exc

from .config import FORMATIONS

_ffi = _c.ffi

# world (ENU, z up) -> raylib (y up)
_C = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# body-frame motor directions (unit, multiplied by arm): X layout of quadrotor.h
_S = 1.0 / math.sqrt(2.0)
MOTOR_DIRS = np.array([[_S, -_S, 0.0], [-_S, _S, 0.0], [_S, _S, 0.0], [-_S, -_S, 0.0]])
MOTOR_SPIN = np.array([1.0, 1.0, -1.0, -1.0])  # +1 CCW seen from above, -1 CW
FRONT_MOTORS = (0, 2)

PALETTE = [
    (66, 135, 245), (245, 130, 48), (60, 180, 75), (230, 25, 75), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255), (170, 110, 40),
    (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128),
]

SKY = (20, 24, 32)
FLOOR = (40, 46, 56)
RING_IDLE = (95, 145, 210)
RING_NEXT = (255, 165, 30)
OBSTACLE = (200, 105, 70)

_VS = """#version 330
in vec3 vertexPosition;
in vec3 vertexNormal;
uniform mat4 mvp;
uniform mat4 matModel;
uniform mat4 matNormal;
out vec3 fragNormal;
out vec3 fragPos;
void main() {
    fragPos = vec3(matModel * vec4(vertexPosition, 1.0));
    fragNormal = normalize(vec3(matNormal * vec4(vertexNormal, 0.0)));
    gl_Position = mvp * vec4(vertexPosition, 1.0);
}
"""

_FS = """#version 330
in vec3 fragNormal;
in vec3 fragPos;
uniform vec4 colDiffuse;
uniform vec3 lightDir;
uniform vec3 viewPos;
out vec4 finalColor;
void main() {
    vec3 n = normalize(fragNormal);
    vec3 l = normalize(-lightDir);
    float diff = max(dot(n, l), 0.0);
    float hemi = 0.5 + 0.5 * n.y;
    vec3 v = normalize(viewPos - fragPos);
    float spec = pow(max(dot(reflect(-l, n), v), 0.0), 24.0);
    vec3 c = colDiffuse.rgb * (0.30 + 0.25 * hemi + 0.60 * diff) + vec3(0.25 * spec);
    finalColor = vec4(min(c, vec3(1.0)), colDiffuse.a);
}
"""

_HELP = ("drag: rotate   wheel: zoom   right drag: pan   F: follow   R: reset camera   "
         "N/P: env   T: trails   L: labels   H: help   SPACE: pause   ESC: quit")


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(n, 4) quaternions (w, x, y, z) -> (n, 3, 3) rotation matrices (body-to-world)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def world_to_raylib(p: Sequence[float]) -> np.ndarray:
    """World ENU point(s) (..., 3) -> raylib (x, z, -y)."""
    p = np.asarray(p, dtype=np.float64)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], -1)


def raylib_point(p) -> "rl.Vector3":
    """A world point as a raylib Vector3."""
    return rl.Vector3(float(p[0]), float(p[2]), float(-p[1]))


def rgba(rgb, a: int = 255) -> "rl.Color":
    return rl.Color(int(rgb[0]), int(rgb[1]), int(rgb[2]), int(a))


def speed_color(u: float) -> tuple[int, int, int]:
    """Motor speed fraction 0..1 -> blue, cyan, green, yellow, red."""
    stops = [(0.0, (40, 70, 255)), (0.3, (40, 200, 255)), (0.5, (60, 220, 90)), (0.7, (250, 220, 40)),
             (1.0, (255, 40, 30))]
    u = min(max(float(u), 0.0), 1.0)
    for (u0, c0), (u1, c1) in zip(stops, stops[1:]):
        if u <= u1:
            f = (u - u0) / (u1 - u0)
            return tuple(int(c0[k] + f * (c1[k] - c0[k])) for k in range(3))
    return stops[-1][1]


def _cross(a, b) -> np.ndarray:
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _perp_basis(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors v, w with (v, u, w) a right-handed orthonormal basis (v x u = w)."""
    a = (0.0, 0.0, 1.0) if abs(u[2]) < 0.9 else (1.0, 0.0, 0.0)
    v = _cross(u, a)
    v /= math.sqrt(v @ v)
    return v, _cross(v, u)


def _rod_body(u: np.ndarray, length: float, radius: float, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Body-frame linear map of the unit cylinder mesh (axis local y) onto a rod along unit u.

    up must be perpendicular to u; local x -> up * radius, y -> u * length, z -> (up x u) * radius.
    """
    up = np.asarray(up, dtype=np.float64)
    return np.column_stack([up * radius, np.asarray(u, np.float64) * length, _cross(up, u) * radius])


# The drawn drone, per unit arm length in the body frame: body box, nose, 4 arms, 4 motor bells, 4 blades.
_PROP_R = 0.5
_BLADE0 = 10
_BODY_PARTS_LIN = np.stack(
    [np.diag([0.9, 0.55, 0.3]), np.eye(3) * 0.13]
    + [_rod_body(MOTOR_DIRS[m], 1.0, 0.07) for m in range(4)]
    + [_rod_body((0.0, 0.0, 1.0), 0.18, 0.13, up=(1.0, 0.0, 0.0)) for m in range(4)]
    + [np.zeros((3, 3))] * 4)  # blades: filled per frame (they turn)
_BODY_PARTS_ORG = np.stack(
    [np.zeros(3), np.array([0.45, 0.0, 0.12])]
    + [np.zeros(3)] * 4
    + [MOTOR_DIRS[m] - (0.0, 0.0, 0.04) for m in range(4)]
    + [np.zeros(3)] * 4)


def blit_flipped(texture, width: int, height: int) -> None:
    """Draw a render texture over (0, 0, width, height). Render textures are stored bottom-up (OpenGL's
    convention), so the source rectangle has a negative height to show them the right way up."""
    rl.draw_texture_pro(texture, rl.Rectangle(0, 0, texture.width, -texture.height), rl.Rectangle(0, 0, width, height),
                        rl.Vector2(0, 0), 0.0, rl.WHITE)


class Viewer:
    """Draws one env of a DroneVecEnv with raylib; see the module docstring."""

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

    # -- drawing helpers (hot paths call the raw cffi functions of `raylib`: pyray's wrappers cost ~15x more) --
    def _mesh(self, mesh, linear: np.ndarray, origin: np.ndarray, color, alpha: int = 255) -> None:
        m = np.eye(4, dtype=np.float32)
        m[:3, :3] = _C @ linear
        m[:3, 3] = _C @ origin
        self._meshes(mesh, m[None], [color], alpha)

    def _meshes(self, mesh, mats: np.ndarray, colors, alpha: int = 255) -> None:
        """Draw a mesh once per (4, 4) raylib transform in mats (row-major, i.e. raylib's Matrix layout)."""
        mats = np.ascontiguousarray(mats, dtype=np.float32)
        ptr = _ffi.cast("Matrix *", _ffi.from_buffer(mats))
        maps = self._mat.maps
        for k in range(len(mats)):
            c = colors[k]
            maps[0].color = (c[0], c[1], c[2], alpha)
            _c.DrawMesh(mesh, self._mat, ptr[k])

    def _sphere(self, p, r, color, alpha=255) -> None:
        self._mesh(self._mesh_sphere, np.eye(3) * r, np.asarray(p, dtype=np.float64), color, alpha)

    def _rod(self, a, b, r, color, alpha=255) -> None:
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        axis = b - a
        length = np.linalg.norm(axis)
        if length < 1e-9:
            return
        v, w = _perp_basis(axis / length)
        self._mesh(self._mesh_cyl, np.column_stack([v * r, axis, w * r]), a, color, alpha)

    def _ring(self, center, normal, radius, color) -> None:
        n = np.asarray(normal, dtype=np.float64)
        n = n / max(np.linalg.norm(n), 1e-9)
        v, w = _perp_basis(n)  # torus axis is local z: map local (x, y, z) -> (v, w, n) (right-handed)
        self._mesh(self._mesh_torus, np.column_stack([v, w, n]) * radius, np.asarray(center, np.float64), color)

    @staticmethod
    def _shadow(p, r, alpha=90) -> None:
        x, y = float(p[0]), float(-p[1])
        _c.DrawCylinderEx((x, 0.004, y), (x, 0.006, y), r, r, 20, (0, 0, 0, alpha))

    @staticmethod
    def _line(a, b, color, alpha=255) -> None:
        _c.DrawLine3D((a[0], a[2], -a[1]), (b[0], b[2], -b[1]), (color[0], color[1], color[2], alpha))

    def _line_width(self, w: float) -> None:
        _c.rlDrawRenderBatchActive()
        _c.rlSetLineWidth(w * self.ss)

    # -- the frame --------------------------------------------------------------------------------------
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

    def _begin_scene(self) -> None:
        """Start a frame's 3D pass: into the 3D render texture, sky background, this camera, and the eye
        position the lighting shader needs. Subclasses (the operator window) draw their own scene in it."""
        rl.begin_texture_mode(self._rt3d)
        rl.clear_background(rgba(SKY))
        rl.begin_mode_3d(self.camera)
        rl.set_shader_value(self._shader, self._loc_view, rl.ffi.new("float[3]", world_to_raylib(self._eye).tolist()),
                            rl.SHADER_UNIFORM_VEC3)

    def _begin_overlay(self) -> None:
        """End the 3D pass and start the 2D one: the frame texture gets the 3D picture, then labels and HUD
        are drawn over it (end with rl.end_texture_mode())."""
        rl.end_mode_3d()
        rl.end_texture_mode()
        rl.begin_texture_mode(self._rt)
        rl.clear_background(rl.BLACK)
        blit_flipped(self._rt3d.texture, self.width, self.height)

    def _draw_arena(self) -> None:
        hx, hy, hz = self.arena
        rl.draw_plane(rl.Vector3(0, 0, 0), rl.Vector2(2 * hx, 2 * hy), rgba(FLOOR))
        self._line_width(1.0)
        z = 0.01
        for x in np.arange(-math.floor(hx), math.floor(hx) + 1e-6, 1.0):
            major = abs(round(x)) % 5 == 0
            self._line((x, -hy, z), (x, hy, z), (95, 105, 120) if major else (62, 70, 82))
        for y in np.arange(-math.floor(hy), math.floor(hy) + 1e-6, 1.0):
            major = abs(round(y)) % 5 == 0
            self._line((-hx, y, z), (hx, y, z), (95, 105, 120) if major else (62, 70, 82))
        self._line_width(2.0)
        corners = [(-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy)]
        for k in range(4):
            (x0, y0), (x1, y1) = corners[k], corners[(k + 1) % 4]
            self._line((x0, y0, z), (x1, y1, z), (150, 160, 175))
            self._line((x0, y0, hz), (x1, y1, hz), (110, 118, 130), 180)
            self._line((x0, y0, 0), (x0, y0, hz), (110, 118, 130), 180)
        # world axes at the origin: x (east) red, y (north) green, z (up) blue
        self._line_width(3.0)
        self._line((0, 0, z), (1.5, 0, z), (230, 60, 60))
        self._line((0, 0, z), (0, 1.5, z), (60, 210, 80))
        self._line((0, 0, 0), (0, 0, 1.5), (70, 120, 255))
        self._line_width(1.0)

    def _draw_course(self, info: dict, agent_infos: list) -> None:
        course = info.get("course") or {}
        rings = course.get("rings", []) if info.get("task_name") == "race" else []
        obstacles = course.get("obstacles", [])
        nxt = {a["ring"] for a in agent_infos}
        for k, g in enumerate(rings):
            c, n, r = np.asarray(g["position"], float), np.asarray(g["normal"], float), float(g["radius"])
            color = RING_NEXT if k in nxt else RING_IDLE
            self._ring(c, n, r, color)
            bottom = c - np.array([0, 0, r * 1.07])
            if bottom[2] > 0.05:
                self._rod((c[0], c[1], 0.0), bottom, 0.035, (120, 125, 135))
            self._shadow(c, r * 0.9, 50)
            n = n / max(np.linalg.norm(n), 1e-9)
            tip = c + n * 0.45 * r
            _c.DrawCylinderEx((c[0], c[2], -c[1]), (tip[0], tip[2], -tip[1]), 0.09 * r, 0.0, 10, (*color, 200))
        for o in obstacles:
            c, r = np.asarray(o["position"], float), float(o["radius"])
            self._shadow(c, r, 70)
            self._sphere(c, r, OBSTACLE)

    def _draw_targets(self, info: dict, pos: np.ndarray, tpos: np.ndarray) -> None:
        task = info.get("task_name")
        if task == "race":
            return  # the targets are the centres of the next rings, drawn in orange
        cfg = self.env.config
        if task == "swarm":
            r = float(cfg.get("formation_radius", 0.3))
            for j in range(len(pos)):
                color = PALETTE[j % len(PALETTE)]
                self._sphere(tpos[j], 0.06, color)
                rl.draw_sphere_wires(raylib_point(tpos[j]), r, 4, 8, rgba(color, 60))
                self._line(pos[j], tpos[j], color, 120)
            return
        r = float(cfg.get("goal_radius", 0.5) if task == "obstacles" else
                  cfg.get("follow_radius", 0.5) if task == "follow" else cfg.get("success_radius", 0.3))
        seen = set()
        for j in range(len(pos)):
            key = tuple(np.round(tpos[j], 2))
            if key not in seen:
                seen.add(key)
                self._sphere(tpos[j], 0.08, (240, 240, 240))
                rl.draw_sphere_wires(raylib_point(tpos[j]), r, 6, 8, rl.Color(240, 240, 240, 45))
                self._line((tpos[j][0], tpos[j][1], 0.0), tpos[j], (200, 200, 200), 90)
                self._shadow(tpos[j], r * 0.6, 60)
            self._line(pos[j], tpos[j], PALETTE[j % len(PALETTE)], 70)

    def _draw_drones(self, idx: np.ndarray, st: np.ndarray, agent_infos: list) -> None:
        n = len(idx)
        R = quat_to_matrix(st[:, 6:10])                                            # (n, 3, 3)
        p = st[:, :3]
        arm = np.array([a["drone"]["arm"] for a in agent_infos]) * self.scale       # (n,)
        wmax = np.array([max(a["drone"]["omega_max"], 1.0) for a in agent_infos])
        speed = st[:, 13:17] / wmax[:, None]                                        # (n, 4)
        phase = self._phase[idx]                                                    # (n, 4)
        # shadows and drop lines first (translucent, under everything)
        for j in range(n):
            if p[j, 2] > -0.5:
                self._shadow(p[j], arm[j] * 1.2, 110)
                self._line((p[j, 0], p[j, 1], 0.0), p[j], (150, 160, 170), 70)
        if self.show_trails:
            self._line_width(2.0)
            for j in range(n):
                tr = self._trails[j]
                color = PALETTE[j % len(PALETTE)]
                m = len(tr)
                for k in range(1, m):
                    self._line(tr[k - 1], tr[k], color, int(40 + 200 * k / m))
            self._line_width(1.0)

        # opaque parts, all in the body frame per unit arm length: (n, parts, 3, 3) and origins (n, parts, 3)
        lin = np.broadcast_to(_BODY_PARTS_LIN, (n,) + _BODY_PARTS_LIN.shape).copy()
        org = np.broadcast_to(_BODY_PARTS_ORG, (n,) + _BODY_PARTS_ORG.shape).copy()
        u = np.stack([np.cos(phase), np.sin(phase), np.zeros_like(phase)], -1)      # (n, 4, 3) blade dirs
        r_prop = _PROP_R
        for m in range(4):
            lin[:, _BLADE0 + m] = np.stack([_rod_body(u[j, m], 2 * r_prop, 0.035) for j in range(n)])
            org[:, _BLADE0 + m] = MOTOR_DIRS[m] + [0.0, 0.0, 0.15] - u[:, m] * r_prop
        lin = np.einsum("nij,npjk->npik", R, lin) * arm[:, None, None, None]
        org = p[:, None, :] + np.einsum("nij,npj->npi", R, org) * arm[:, None, None]
        mats = np.zeros((n, lin.shape[1], 4, 4), dtype=np.float32)
        mats[..., :3, :3] = np.einsum("ij,npjk->npik", _C, lin)
        mats[..., :3, 3] = org @ _C.T
        mats[..., 3, 3] = 1.0
        self._meshes(self._mesh_cube, mats[:, 0], [PALETTE[j % len(PALETTE)] for j in range(n)])
        self._meshes(self._mesh_sphere, mats[:, 1], [(250, 250, 250)] * n)
        arm_colors = [(215, 55, 50) if m in FRONT_MOTORS else (105, 110, 118) for m in range(4)]
        cyl_colors = []
        for j in range(n):
            cyl_colors += arm_colors + [(45, 45, 50)] * 4 + [speed_color(speed[j, m]) for m in range(4)]
        self._meshes(self._mesh_cyl, mats[:, 2:].reshape(-1, 4, 4), cyl_colors)

        # translucent prop discs last, coloured by motor speed
        zb = R[:, :, 2]
        for j in range(n):
            for m in range(4):
                c = p[j] + R[j] @ (MOTOR_DIRS[m] + [0.0, 0.0, 0.14]) * arm[j]
                e = c + zb[j] * 0.01 * arm[j]
                col = speed_color(speed[j, m])
                _c.DrawCylinderEx((c[0], c[2], -c[1]), (e[0], e[2], -e[1]), r_prop * arm[j], r_prop * arm[j], 24,
                                  (col[0], col[1], col[2], 80))

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
