"""drone-view: fly drones in the simulator and watch them in the raylib viewer, or record a video / screenshot.

    drone-view --tasks race --controller hover
    drone-view --tasks swarm --agents 16 --steps 500 --video swarm.mp4
    drone-view --tasks obstacles --steps 200 --screenshot obstacles.png --hidden

What flies the drones is an "actor": any object with `name`, `__call__(obs) -> actions` ((num_agents, 4)
in [-1, 1]) and `reset(mask)` (called with the agents whose episode just ended). `make_actor` builds
one from the command line; `run` drives an env, an actor and a viewer, and is what other tools (a policy
evaluator, the trainer's playback) can call with their own actor.

Offscreen (--video, --hidden) the window is hidden and frames come from a RenderTexture, but raylib
still needs a display: on a headless machine run under `xvfb-run -a drone-view ...`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from . import binding
from .config import ACTION_MODES, DR_PRESETS
from .controllers import HoverController
from .env import OBS_SIZE, OBS_VERSION
from .params import FileFormatError
from .screen import VideoOut, has_display
from .signals import StopRequest, sigterm_as_interrupt


class ViewPolicy(Protocol):
    """A trained policy as the viewers need it; policies.view builds one from a checkpoint or an ONNX file
    (the simulator does not read policy files: they belong to the `policies` package above it)."""

    metadata: dict[str, Any]     # env, obs_layout_version, obs_size, action_mode, control/physics rates
    obs_size: int
    action_size: int

    def actor(self, num_agents: int, name: str) -> Any:
        """An actor (name, __call__(obs), reset(mask)) for a batch of num_agents."""


# path -> ViewPolicy; ValueError with the reason when the file cannot be used
PolicyLoader = Callable[[str], ViewPolicy]

CONTROLLERS = ("hover", "random")


class HoverActor:
    """drone_sim.controllers.HoverController as an actor (ctbr only)."""

    name = "hover"

    def __init__(self, env):
        if env.action_mode != "ctbr":
            raise ValueError("the hover controller commands ctbr actions; use --action-mode ctbr "
                             "or --controller random")
        self.env = env
        self.ctl = HoverController(env.num_agents)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.ctl(obs, self.env.control_dt)

    def reset(self, mask: np.ndarray | None = None) -> None:
        self.ctl.reset(mask)


class RandomActor:
    """Uniform random actions around each drone's own hover command (ctbr thrust or rpm motor speeds)."""

    name = "random"

    def __init__(self, env, seed: int = 0, thrust_spread: float = 0.15, rate_spread: float = 0.25,
                 rpm_spread: float = 0.06):
        self.env = env
        self.rng = np.random.default_rng(seed)
        self.mode = ACTION_MODES.index(env.action_mode)
        if env.action_mode == "ctbr":
            self.spread = np.array([thrust_spread, rate_spread, rate_spread, rate_spread], dtype=np.float32)
        else:
            self.spread = np.full(4, rpm_spread, dtype=np.float32)
        self.base = np.zeros((env.num_agents, 4), dtype=np.float32)
        self.reset(None)

    def reset(self, mask: np.ndarray | None = None) -> None:
        """The drones of ended episodes were resampled: recompute their hover command."""
        agents = range(self.env.num_agents) if mask is None else np.flatnonzero(mask)
        for i in agents:
            self.base[i] = binding.hover_action(self.env.agent_info(int(i))["drone"], self.mode)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        noise = self.rng.uniform(-1.0, 1.0, self.base.shape).astype(np.float32) * self.spread
        return np.clip(self.base + noise, -1.0, 1.0)


def make_actor(args: argparse.Namespace, env, policy=None):
    """The actor named on the command line: a trained policy (`policy`, what a policy_loader returned) or one
    of the two controllers. Every actor has `name`, `__call__(obs) -> actions` and `reset(mask)`."""
    if policy is not None:
        meta = policy.metadata
        if meta.get("env", "drone") != "drone":
            raise ValueError(f"the policy plays the {meta['env']} game, not the drones: drone-view --env {meta['env']}")
        version = meta.get("obs_layout_version", meta.get("obs_version"))
        if version != OBS_VERSION or meta["obs_size"] != OBS_SIZE:
            raise ValueError(f"the policy reads observation layout v{version} ({meta['obs_size']} values); this "
                             f"simulator builds v{OBS_VERSION} ({OBS_SIZE} values)")
        if meta["action_mode"] != env.action_mode:
            raise ValueError(f"the policy commands {meta['action_mode']} actions, the env is in {env.action_mode}")
        return policy.actor(env.num_agents, f"policy {Path(args.policy).name}")
    if args.controller == "hover":
        return HoverActor(env)
    return RandomActor(env, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drone-view",
        description="Fly drones in the C simulator and watch them in a raylib 3D viewer, "
                    "or record a video / screenshot offscreen.",
        epilog="Ocean regression games: drone-view --env NAME [--policy CKPT] (see drone-view --env x --help). "
               "In the window: left drag rotate, wheel zoom, right drag pan, F follow, R reset camera, "
               "N/P next/previous env, T trails, L labels, H help, SPACE pause, ESC quit.")
    g = p.add_argument_group("simulation")
    g.add_argument("--tasks", default="hover",
                   help="tasks as drone_sim.make takes them: hover, race,swarm, race:2,swarm:1, all (default hover)")
    g.add_argument("--agents", type=int, default=8, help="drones per env (default 8)")
    g.add_argument("--num-envs", type=int, default=1, help="envs in the vector (default 1)")
    g.add_argument("--env-index", type=int, default=0,
                   help="which env of the vector to show (default 0; N/P switch in the window)")
    g.add_argument("--action-mode", choices=ACTION_MODES, default=None,
                   help="ctbr or rpm (default: the policy's, or ctbr)")
    g.add_argument("--dr", choices=DR_PRESETS, default="nominal",
                   help="domain randomization preset (default nominal)")
    g.add_argument("--drone", metavar="PARAMS.json", help="drone params file (replaces the nominal drone)")
    g.add_argument("--course", metavar="COURSE.json", help="race course file (rings, obstacles)")
    g.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    g.add_argument("--controller", choices=CONTROLLERS, default="hover",
                   help="hover: the position controller of drone_sim.controllers (ctbr only); "
                        "random: uniform random actions around hover (default hover)")
    g.add_argument("--policy", metavar="CHECKPOINT",
                   help="fly a policy trained by drone-train (model.pt, checkpoints/*.pt) or exported by drone-export "
                        "(.onnx) instead of a controller; "
                        "the env takes the policy's action mode and rates")
    g.add_argument("--steps", type=int, default=None,
                   help="stop after N control steps (default: run until the window is closed)")
    g.add_argument("--speed", type=float, default=1.0,
                   help="simulated seconds per real second in the window; 0 = as fast as possible (default 1). "
                        "Offscreen runs never wait.")
    o = p.add_argument_group("output")
    o.add_argument("--video", metavar="OUT.mp4", help="render offscreen (hidden window) and write an mp4 video")
    o.add_argument("--fps", type=float, default=None, help="video frame rate (default: the control rate)")
    o.add_argument("--screenshot", metavar="OUT.png", help="save the last frame to a PNG file")
    o.add_argument("--frame-info", metavar="OUT.json",
                   help="write what the last frame shows (camera, drones with pixel positions) as JSON")
    o.add_argument("--hidden", action="store_true", help="no visible window (needs --steps)")
    o.add_argument("--width", type=int, default=1280, help="frame width in pixels (default 1280)")
    o.add_argument("--height", type=int, default=720, help="frame height in pixels (default 720)")
    o.add_argument("--drone-scale", type=float, default=1.0,
                   help="draw drones at least this many times their real size (default 1)")
    o.add_argument("--min-drone-px", type=float, default=16.0,
                   help="wide views draw drones larger so that an arm is at least this many pixels long "
                        "(default 16; 0 = always true size x --drone-scale); the HUD says when drones are enlarged")
    o.add_argument("--supersample", type=int, choices=(1, 2), default=2,
                   help="render the 3D scene at 2x and filter down (default 2; 1 is faster)")
    return p


def _check_args(p: argparse.ArgumentParser, args: argparse.Namespace, policy_meta: dict | None = None) -> None:
    if policy_meta is not None:
        if policy_meta.get("env", "drone") != "drone":
            p.error(f"--policy {args.policy} plays the {policy_meta['env']} game, not the drones: "
                    f"drone-view --env {policy_meta['env']} --policy {args.policy}")
        if args.action_mode not in (None, policy_meta["action_mode"]):
            p.error(f"--action-mode {args.action_mode}: the policy {args.policy} was trained for "
                    f"{policy_meta['action_mode']} actions")
        args.action_mode = policy_meta["action_mode"]
    elif args.action_mode is None:
        args.action_mode = "ctbr"
    if args.agents < 1:
        p.error(f"--agents must be at least 1, got {args.agents}")
    if args.num_envs < 1:
        p.error(f"--num-envs must be at least 1, got {args.num_envs}")
    if not 0 <= args.env_index < args.num_envs:
        p.error(f"--env-index {args.env_index} is out of range: there are {args.num_envs} env(s), "
                f"0..{args.num_envs - 1}")
    if policy_meta is None and args.controller == "hover" and args.action_mode != "ctbr":
        p.error("--controller hover commands ctbr actions (collective thrust + body rates); "
                f"it cannot fly --action-mode {args.action_mode}. Use --action-mode ctbr or --controller random.")
    if args.steps is not None and args.steps < 1:
        p.error(f"--steps must be at least 1, got {args.steps}")
    if args.video and args.steps is None:
        p.error("--video renders offscreen in a hidden window: give --steps N to say how long to record")
    if args.hidden and args.steps is None:
        p.error("--hidden needs --steps N (a hidden window cannot be closed)")
    if args.fps is not None and not args.fps > 0:
        p.error(f"--fps must be positive, got {args.fps}")
    if args.speed < 0:
        p.error(f"--speed must be >= 0, got {args.speed}")
    if not (64 <= args.width <= 8192 and 64 <= args.height <= 8192):
        p.error(f"--width/--height must be within 64..8192, got {args.width}x{args.height}")
    if not args.drone_scale > 0:
        p.error(f"--drone-scale must be positive, got {args.drone_scale}")
    if args.min_drone_px < 0:
        p.error(f"--min-drone-px must be >= 0, got {args.min_drone_px}")
    if args.video and Path(args.video).suffix.lower() not in (".mp4", ".m4v", ".mov"):
        p.error(f"--video {args.video}: the mp4v codec writes .mp4 (or .m4v / .mov) files")
    for opt in ("drone", "course"):
        path = getattr(args, opt)
        if path and not Path(path).is_file():
            p.error(f"--{opt} {path}: no such file")


def run(env, actor, viewer=None, steps: int | None = None, video=None, speed: float = 1.0,
        max_steps_per_frame: int = 10) -> int:
    """Step env with actor and show it in viewer; returns the number of control steps done.

    video: an object with write(rgb_frame) (see VideoOut); with it (or a hidden viewer) every step is
    drawn and nothing waits. In a visible window the simulation keeps to `speed` simulated seconds per
    real second (0 = as fast as possible): when drawing is slower than the control rate, up to
    max_steps_per_frame steps run between two frames, and beyond that the simulation slows down.
    Stops after `steps`, when the window closes, or on Ctrl-C.
    """
    obs, _ = env.reset()
    actor.reset(None)
    dt = env.control_dt
    done = 0
    realtime = viewer is not None and not viewer.hidden and video is None and speed > 0
    wall0 = time.perf_counter()
    try:
        # the stop is checked each frame: a KeyboardInterrupt that lands in a weakref callback or a __del__ (raylib's
        # and numpy's objects have them) is dropped by Python, and the viewer would run on (seen under SIGTERM in CI)
        with StopRequest() as stop:
            while steps is None or done < steps:
                stop.check()
                if viewer is not None and viewer.should_close():
                    break
                if viewer is not None and viewer.paused:
                    viewer.draw()
                    time.sleep(1.0 / 60.0)
                    wall0 = time.perf_counter() - done * dt / max(speed, 1e-9)
                    continue
                n = 1
                if realtime:
                    due = int((time.perf_counter() - wall0) * speed / dt) - done
                    if due > max_steps_per_frame:  # drawing cannot keep up: slow the simulation down instead
                        wall0 += (due - max_steps_per_frame) * dt / speed
                        due = max_steps_per_frame
                    n = max(1, due)
                    if steps is not None:
                        n = min(n, steps - done)
                for _ in range(n):
                    actions = actor(obs)
                    obs, rewards, term, trunc, _ = env.step(actions)
                    ended = term | trunc
                    actor.reset(ended)
                    done += 1
                    if viewer is not None:
                        viewer.update(rewards, ended)
                if viewer is not None:
                    viewer.draw()
                    if video is not None:
                        video.write(viewer.frame())
                    if realtime:
                        wait = wall0 + done * dt / speed - time.perf_counter()
                        if wait > 0:
                            time.sleep(wait)
    except KeyboardInterrupt:
        print(f"drone-view: interrupted after {done} steps", file=sys.stderr)
    return done


def play(env, actor, *, video: str | Path | None = None, steps: int | None = None, width: int = 1280,
         height: int = 720, screenshot: str | Path | None = None, title: str | None = None) -> int:
    """Show `actor` flying `env` in a window, or record it to an mp4 offscreen when `video` is given.

    For other tools (drone-eval --view / --video) that already have an env and an actor. Returns the number
    of control steps run. Raises RuntimeError when there is no display (raylib needs one even offscreen).
    """
    if not has_display():
        raise RuntimeError("no display (DISPLAY is not set); raylib needs one even offscreen: run under xvfb-run -a")
    if video is not None and steps is None:
        raise ValueError("recording a video needs a number of steps")
    from .viewer import Viewer

    viewer = Viewer(env, width=width, height=height, hidden=video is not None,
                    controller_name=title or actor.name)
    out = None
    try:
        if video is not None:
            Path(video).parent.mkdir(parents=True, exist_ok=True)
            out = VideoOut(video, 1.0 / env.control_dt, width, height)
        n = run(env, actor, viewer, steps=steps, video=out)
        if screenshot is not None:
            viewer.save_screenshot(str(screenshot))
        return n
    finally:
        if out is not None:
            out.close()
        viewer.close()


def main(argv: list[str] | None = None, policy_loader: PolicyLoader | None = None) -> int:
    """drone-view. policy_loader reads `--policy` files; the simulator cannot (policy files belong to the
    `policies` package above it), so the console script passes policies.view's (see PolicyLoader)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    sigterm_as_interrupt()
    if any(a == "--env" or a.startswith("--env=") for a in argv):  # an ocean regression game, not drones
        from .ocean.view import main as ocean_main

        return ocean_main(argv, policy_loader)
    parser = build_parser()
    args = parser.parse_args(argv)
    policy = None
    if args.policy:
        if policy_loader is None:
            parser.error("--policy: this entry point reads no policy files; run drone-view (python -m policies.view)")
        try:
            policy = policy_loader(args.policy)
        except ValueError as exc:
            parser.error(f"--policy: {exc}")
    _check_args(parser, args, policy.metadata if policy else None)

    import drone_sim

    rates = {}
    if policy is not None:
        rates = {"physics_hz": policy.metadata["physics_hz"], "control_hz": policy.metadata["control_hz"]}
    try:
        env = drone_sim.make(tasks=args.tasks, num_envs=args.num_envs, agents_per_env=args.agents,
                             action_mode=args.action_mode, seed=args.seed, dr=args.dr, drone=args.drone,
                             course=args.course, **rates)
    except (ValueError, FileFormatError) as exc:
        parser.error(str(exc))
    try:
        actor = make_actor(args, env, policy)
    except ValueError as exc:
        parser.error(str(exc))

    if not has_display():
        print("drone-view: error: no display (DISPLAY is not set). raylib needs one even offscreen; "
              "run under a virtual X server: xvfb-run -a drone-view ...", file=sys.stderr)
        return 1

    for out in (args.video, args.screenshot, args.frame_info):
        if out:
            Path(out).parent.mkdir(parents=True, exist_ok=True)

    from .viewer import Viewer

    hidden = bool(args.hidden or args.video)
    try:
        viewer = Viewer(env, env_index=args.env_index, width=args.width, height=args.height, hidden=hidden,
                        controller_name=actor.name, drone_scale=args.drone_scale, supersample=args.supersample,
                        min_drone_px=args.min_drone_px)
    except RuntimeError as exc:
        print(f"drone-view: error: {exc}", file=sys.stderr)
        return 1
    video = None
    status = 0
    try:
        if args.video:
            fps = args.fps if args.fps is not None else 1.0 / env.control_dt
            video = VideoOut(args.video, fps, args.width, args.height)
        steps = run(env, actor, viewer, steps=args.steps, video=video, speed=args.speed)
        if args.screenshot:
            viewer.save_screenshot(args.screenshot)
            print(f"drone-view: wrote screenshot {args.screenshot} ({args.width}x{args.height})")
        if args.frame_info:
            Path(args.frame_info).write_text(json.dumps(viewer.frame_info(), indent=1))
        if video is not None:
            video.close()
            print(f"drone-view: wrote video {args.video} ({video.frames} frames, {args.width}x{args.height}, "
                  f"{fps:g} fps)")
            video = None
        print(f"drone-view: {steps} steps ({steps * env.control_dt:.2f} s simulated)")
        for task, log in env.logs().items():
            print(f"  {task}: {log['episodes']:g} episodes, return {log['episode_return']:+.2f}, "
                  f"score {log['score']:.2f}, crash {log['crash_rate']:.2f}, "
                  f"out of bounds {log['out_of_bounds_rate']:.2f}")
    except OSError as exc:
        print(f"drone-view: error: {exc}", file=sys.stderr)
        status = 1
    finally:
        if video is not None:
            video.close()
        viewer.close()
        env.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
