"""drone-view --env NAME: watch or play an ocean regression game, or watch a policy trained on it.

    drone-view --env pong                          # play it yourself (keyboard; the HUD says which keys)
    drone-view --env breakout --policy runs/breakout/model.pt
    drone-view --env snake --policy runs/snake/model.pt --steps 600 --video snake.mp4
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ..signals import StopRequest


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drone-view --env NAME",
                                description="Play an ocean regression game from the keyboard, or watch a policy "
                                            "trained on it with drone-train --env NAME.")
    p.add_argument("--env", required=True, help="the game: target, cartpole, pong, breakout, snake, connect4")
    p.add_argument("--policy", metavar="CHECKPOINT", help="a checkpoint from drone-train --env NAME (default: "
                                                          "you play from the keyboard)")
    p.add_argument("--random", action="store_true", help="uniformly random actions instead of the keyboard")
    p.add_argument("--agents", type=int, default=None, help="agents per env (snake: snakes on the board)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="stop after N steps (default: until the window closes)")
    p.add_argument("--fps", type=float, default=None, help="steps per second (default: the game's own pace)")
    p.add_argument("--video", metavar="OUT.mp4", help="render offscreen and write an mp4 (needs --steps)")
    p.add_argument("--screenshot", metavar="OUT.png", help="save the last frame")
    p.add_argument("--hidden", action="store_true", help="no visible window (needs --steps)")
    p.add_argument("--height", type=int, default=600, help="window height in pixels (width follows the game)")
    return p


class _RandomActor:
    name = "random"

    def __init__(self, env, seed: int):
        self.env, self.rng = env, np.random.default_rng(seed)

    def __call__(self, obs):
        return self.rng.integers(0, self.env.num_actions, self.env.num_agents, dtype=np.int32)

    def reset(self, mask=None) -> None:
        pass


def main(argv: list[str] | None = None, policy_loader=None) -> int:
    """drone-view --env GAME. policy_loader: see drone_sim.view.PolicyLoader (given by policies.view)."""
    p = build_parser()
    args = p.parse_args(argv)
    from . import ENVS, make_ocean

    if args.env not in ENVS:
        p.error(f"unknown env {args.env!r}; choose one of {', '.join(ENVS)}")
    if (args.video or args.hidden) and args.steps is None:
        p.error("--video and --hidden render offscreen: give --steps N")
    if args.steps is not None and args.steps < 1:
        p.error(f"--steps must be at least 1, got {args.steps}")
    if args.video and Path(args.video).suffix.lower() not in (".mp4", ".m4v", ".mov"):
        p.error(f"--video {args.video}: the mp4v codec writes .mp4 (or .m4v / .mov) files")
    policy = None
    if args.policy:
        if policy_loader is None:
            p.error("--policy: this entry point reads no policy files; run drone-view (python -m policies.view)")
        try:
            policy = policy_loader(args.policy)
        except ValueError as exc:
            p.error(f"--policy: {exc}")
        trained_on = policy.metadata.get("env", "drone")
        if trained_on != args.env:
            p.error(f"--policy {args.policy} was trained on {trained_on}, not {args.env}")
        if args.agents is None:
            args.agents = policy.metadata.get("train_config", {}).get("agents_per_env")
    try:
        env = make_ocean(args.env, num_envs=1, seed=args.seed, agents_per_env=args.agents)
    except ValueError as exc:
        p.error(str(exc))
    from ..screen import has_display

    if not has_display():
        print("drone-view: error: no display (DISPLAY is not set); run under xvfb-run -a", file=sys.stderr)
        return 1
    from .viewer import KeyboardActor, OceanViewer, play_specs

    spec = play_specs()[args.env]
    offscreen = bool(args.video or args.hidden)
    if policy is not None:
        if policy.obs_size != env.obs_size or policy.action_size != env.num_actions:
            p.error(f"--policy {args.policy}: its sizes (obs {policy.obs_size}, actions {policy.action_size}) "
                    f"do not match {args.env} (obs {env.obs_size}, actions {env.num_actions})")
        actor = policy.actor(env.num_agents, f"policy {Path(args.policy).name}")
    elif args.random or offscreen:
        actor = _RandomActor(env, args.seed)
    else:
        actor = None  # the keyboard: needs the window's key queue
    name = actor.name if actor is not None else "keyboard"
    fps = args.fps or (spec.fps if not spec.turn_based or actor is None else 4.0)
    viewer = OceanViewer(env, height=args.height, hidden=offscreen,
                         controller_name=name + (f"  ({spec.help})" if actor is None else ""))
    if actor is None:
        actor = KeyboardActor(env, spec, viewer, seed=args.seed)
    video = None
    status = 0
    try:
        if args.video:
            from ..screen import VideoOut

            Path(args.video).parent.mkdir(parents=True, exist_ok=True)
            video = VideoOut(args.video, fps, viewer.width, viewer.height)
        obs, _ = env.reset(args.seed)
        actor.reset(None)
        done, t_next = 0, time.perf_counter()
        with StopRequest() as stop:   # a stop checked each frame, not only a KeyboardInterrupt (why: view.run)
            while (args.steps is None or done < args.steps) and not viewer.should_close():
                stop.check()
                if viewer.paused or (actor.name == "keyboard" and not actor.wants_step()):
                    viewer.draw()
                    time.sleep(1 / 60)
                    continue
                obs, rewards, term, trunc, _ = env.step(actor(obs))
                ended = term | trunc
                actor.reset(ended)
                viewer.update(rewards, ended)
                viewer.draw()
                done += 1
                if video is not None:
                    video.write(viewer.frame())
                elif not offscreen:
                    t_next += 1.0 / fps
                    time.sleep(max(0.0, t_next - time.perf_counter()))
                    t_next = max(t_next, time.perf_counter() - 0.1)
        if args.screenshot:
            Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
            viewer.save_screenshot(args.screenshot)
            print(f"drone-view: wrote screenshot {args.screenshot}")
        if video is not None:
            video.close()
            print(f"drone-view: wrote video {args.video} ({video.frames} frames, {fps:g} fps)")
            video = None
        logs = env.logs().get(args.env)
        summary = (f"{logs['episodes']:g} episodes, return {logs['episode_return']:+.2f}, score {logs['score']:.2f}"
                   if logs else "no episode finished")
        print(f"drone-view: {args.env}: {done} steps, {summary}")
    except OSError as exc:
        print(f"drone-view: error: {exc}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        pass
    finally:
        if video is not None:
            video.close()
        viewer.close()
        env.close()
    return status
