"""A raylib window for the ocean regression games: draws an env's display list, shows a HUD, and lets a
person play from the keyboard.

Each C game describes its picture as a list of rectangles, circles and lines in a [0,1] x [0,1] canvas
(ocean.h: DrawCmd); this module only maps the canvas to pixels. Keeping the drawing in C means the picture
is exactly the state the policy sees, with no Python mirror of each game's rules to keep in sync.

The same frame goes to the window, to `frame()` (numpy RGB, for videos) and to `save_screenshot()`;
with hidden=True no window is shown (raylib still needs a display: xvfb-run on a headless machine).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

try:
    import pyray as rl
except ImportError as exc:  # pragma: no cover - raylib is a declared dependency
    raise ImportError("the ocean viewer needs raylib: pip install raylib") from exc

DRAW_RECT, DRAW_CIRCLE, DRAW_LINE = 0, 1, 2
HUD_HEIGHT = 28
BACKGROUND = (18, 20, 26)


@dataclass(frozen=True)
class PlaySpec:
    """How a person plays a game: keys -> the env's discrete actions.

    idle: the action when no key is held (None: repeat the last one). turn_based: the game only steps when a
    key is pressed (board games, the grid target), otherwise it runs at `fps` steps per second.
    """

    fps: float
    keys: dict[int, int] = field(default_factory=dict)
    idle: int | None = 0
    turn_based: bool = False
    help: str = ""


def _digit_keys() -> list[int]:
    names = ("ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN")
    return [getattr(rl, f"KEY_{n}") for n in names]


def play_specs() -> dict[str, PlaySpec]:
    """Keyboard layouts per game (the key codes come from raylib, hence a function)."""
    return {
        "target": PlaySpec(8, {rl.KEY_UP: 1, rl.KEY_DOWN: 2, rl.KEY_LEFT: 3, rl.KEY_RIGHT: 4}, 0, True,
                           "arrows move"),
        "cartpole": PlaySpec(25, {rl.KEY_LEFT: 0, rl.KEY_RIGHT: 1}, None, False, "left / right push the cart"),
        "pong": PlaySpec(60, {rl.KEY_UP: 1, rl.KEY_DOWN: 2}, 0, False, "up / down move the right paddle"),
        "breakout": PlaySpec(60, {rl.KEY_LEFT: 1, rl.KEY_RIGHT: 2}, 0, False, "left / right move the paddle"),
        "snake": PlaySpec(8, {rl.KEY_LEFT: 0, rl.KEY_RIGHT: 2}, 1, False, "left / right turn snake 1"),
        "connect4": PlaySpec(30, dict(zip(_digit_keys(), range(7))), None, True,
                             "keys 1-7 drop a piece in that column"),
        "connect4_hard": PlaySpec(30, dict(zip(_digit_keys(), range(7))), None, True,
                                  "keys 1-7 drop a piece in that column"),
    }


class KeyboardActor:
    """A person at the keyboard plays agent 0; the other agents (snake) follow `others` or act randomly."""

    def __init__(self, env, spec: PlaySpec, viewer: "OceanViewer", others=None, seed: int = 0):
        self.env, self.spec, self.others, self.viewer = env, spec, others, viewer
        self.name = "keyboard"
        self.last = spec.idle if spec.idle is not None else 0
        self.rng = np.random.default_rng(seed)

    def wants_step(self) -> bool:
        """Turn-based games wait for a key press; real-time ones always step."""
        if not self.spec.turn_based:
            return True
        return any(k in self.spec.keys for k in self.viewer.pressed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if self.others is not None:
            actions = np.asarray(self.others(obs)).astype(np.int32)
        else:
            actions = self.rng.integers(0, self.env.num_actions, self.env.num_agents, dtype=np.int32)
        a = None
        for key in self.viewer.pressed:  # taps (press and release within one frame) count too
            if key in self.spec.keys:
                a = self.spec.keys[key]
        if a is None and not self.spec.turn_based:
            for key, action in self.spec.keys.items():
                if rl.is_key_down(key):
                    a = action
        if a is None:
            a = self.spec.idle if self.spec.idle is not None else self.last
        self.last = a
        actions[0] = a
        return actions

    def reset(self, mask=None) -> None:
        if self.others is not None and hasattr(self.others, "reset"):
            self.others.reset(mask)


class OceanViewer:
    """One env of an OceanVecEnv in a window (or hidden, for videos and screenshots)."""

    _open = False

    def __init__(self, env, env_index: int = 0, width: int | None = None, height: int = 600, hidden: bool = False,
                 controller_name: str = "", title: str | None = None):
        if OceanViewer._open:
            raise RuntimeError("raylib supports one window per process: close the other viewer first")
        if not 0 <= env_index < env.num_envs:
            raise ValueError(f"env index {env_index} is out of range: 0..{env.num_envs - 1}")
        self.env, self.env_index = env, env_index
        aspect = float(getattr(env, "aspect", 1.0) or 1.0)
        self.height = int(height)
        self.width = int(width) if width else int(round((height - HUD_HEIGHT) * aspect))
        if self.width < 64 or self.height < 64:
            raise ValueError(f"window size {self.width}x{self.height} is too small (at least 64x64)")
        self.hidden = bool(hidden)
        self.controller_name = controller_name
        self.paused = False
        self.returns = np.zeros(env.num_agents, dtype=np.float64)
        self.last_return = float("nan")
        self.episodes = 0
        self.steps = 0
        rl.set_trace_log_level(rl.LOG_WARNING)
        rl.set_config_flags(rl.FLAG_WINDOW_HIDDEN if self.hidden else rl.FLAG_MSAA_4X_HINT)
        rl.init_window(self.width, self.height, title or f"drone-view --env {env.name}")
        if not rl.is_window_ready():
            raise RuntimeError("raylib could not open a window (no display? run under xvfb-run -a)")
        OceanViewer._open = True
        rl.set_exit_key(rl.KEY_ESCAPE)
        self._rt = rl.load_render_texture(self.width, self.height)
        self._frame_rgb: np.ndarray | None = None
        self._drawn = False
        self.pressed: list[int] = []  # keys pressed during the last frame, in order (raylib's key queue)

    def should_close(self) -> bool:
        return (not self.hidden) and rl.window_should_close()

    def update(self, rewards: np.ndarray, dones: np.ndarray) -> None:
        """Track agent 0's return for the HUD."""
        self.steps += 1
        self.returns += rewards
        for i in np.flatnonzero(dones):
            if i == self.env_index * self.env.agents_per_env:
                self.last_return = float(self.returns[i])
                self.episodes += 1
            self.returns[i] = 0.0

    def _canvas(self) -> tuple[float, float, float, float]:
        return 0.0, float(HUD_HEIGHT), float(self.width), float(self.height - HUD_HEIGHT)

    def draw(self) -> None:
        x0, y0, w, h = self._canvas()
        rl.begin_texture_mode(self._rt)
        rl.clear_background(rl.Color(*BACKGROUND, 255))
        for kind, x, y, cw, ch, r, g, b, a in self.env.render_commands(self.env_index):
            col = rl.Color(int(r), int(g), int(b), int(a))
            if kind == DRAW_RECT:
                rl.draw_rectangle_rec(rl.Rectangle(x0 + x * w, y0 + y * h, max(cw * w, 1.0), max(ch * h, 1.0)), col)
            elif kind == DRAW_CIRCLE:
                rl.draw_circle_v(rl.Vector2(x0 + x * w, y0 + y * h), max(cw * w, 1.0), col)
            elif kind == DRAW_LINE:
                rl.draw_line_ex(rl.Vector2(x0 + x * w, y0 + y * h), rl.Vector2(x0 + cw * w, y0 + ch * h), 2.0, col)
        rl.draw_rectangle(0, 0, self.width, HUD_HEIGHT, rl.Color(30, 33, 42, 255))
        last = "-" if np.isnan(self.last_return) else f"{self.last_return:+.2f}"
        agent0 = self.env_index * self.env.agents_per_env
        hud = (f"{self.env.name}  {self.controller_name}  step {self.steps}  return {self.returns[agent0]:+.2f}  "
               f"last episode {last}  episodes {self.episodes}" + ("  PAUSED" if self.paused else ""))
        rl.draw_text(hud, 8, 7, 16, rl.Color(225, 228, 235, 255))
        rl.end_texture_mode()
        self._frame_rgb = None
        self._drawn = True
        if not self.hidden:
            rl.begin_drawing()
            t = self._rt.texture
            rl.draw_texture_rec(t, rl.Rectangle(0, 0, t.width, -t.height), rl.Vector2(0, 0), rl.WHITE)
            rl.end_drawing()  # also polls input: read the key queue, since a quick tap never shows as "down"
            self.pressed = []
            key = rl.get_key_pressed()
            while key:
                if key == rl.KEY_SPACE:
                    self.paused = not self.paused
                else:
                    self.pressed.append(key)
                key = rl.get_key_pressed()

    def frame(self) -> np.ndarray:
        """The last frame as (height, width, 3) uint8 RGB, top row first."""
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

    def save_screenshot(self, path) -> None:
        import cv2

        if not self._drawn:
            self.draw()
        if not cv2.imwrite(str(path), self.frame()[:, :, ::-1]):
            raise OSError(f"could not write the screenshot {path}")

    def close(self) -> None:
        if not OceanViewer._open:
            return
        rl.unload_render_texture(self._rt)
        rl.close_window()
        OceanViewer._open = False
