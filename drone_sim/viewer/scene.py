"""The 3D scene of the viewer: mesh primitives, the arena, the course, targets and the drones."""
from __future__ import annotations

import math

import numpy as np

from .drawing import (_BLADE0, _BODY_PARTS_LIN, _BODY_PARTS_ORG, _C, _PROP_R, FLOOR, FRONT_MOTORS, MOTOR_DIRS, OBSTACLE,
                      PALETTE, RING_IDLE, RING_NEXT, SKY, _c, _ffi, _perp_basis, _rod_body, quat_to_matrix,
                      raylib_point, rgba, rl, speed_color, world_to_raylib)


class Scene:
    """Mixin of Viewer: draws the world into the 3D render texture (camera, meshes and shader from Viewer)."""

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

    def _begin_scene(self) -> None:
        """Start a frame's 3D pass: into the 3D render texture, sky background, this camera, and the eye
        position the lighting shader needs. Subclasses (the operator window) draw their own scene in it."""
        rl.begin_texture_mode(self._rt3d)
        rl.clear_background(rgba(SKY))
        rl.begin_mode_3d(self.camera)
        rl.set_shader_value(self._shader, self._loc_view, rl.ffi.new("float[3]", world_to_raylib(self._eye).tolist()),
                            rl.SHADER_UNIFORM_VEC3)

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
