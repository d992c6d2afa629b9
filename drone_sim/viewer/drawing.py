"""The viewer's drawing vocabulary: raylib, the frame change, colours, the drone model's parts, the shaders,
and the helpers other windows reuse (deploy/ui/ draws with them)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

try:
    import pyray as rl
    import raylib as _c
except ImportError as exc:  # pragma: no cover - raylib is a declared dependency
    raise ImportError("the drone viewer needs raylib: pip install raylib") from exc


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

