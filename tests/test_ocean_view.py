"""drone-view --env NAME: the ocean games drawn in a real raylib window under Xvfb, played from the keyboard
(xdotool), and a trained policy loaded into the viewer. Screenshots go to test-output/ for a person to see."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import drone_sim

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-output"


def _env(display: str | None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if display is not None:
        env["DISPLAY"] = display
    return env


def _view(args, display, timeout=120.0):
    return subprocess.run([sys.executable, "-m", "policies.view", *args], cwd=ROOT, env=_env(display),
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name", ["target", "cartpole", "pong", "breakout", "snake", "connect4"])
def test_every_game_draws_a_real_picture(display, name):
    import cv2

    OUT.mkdir(exist_ok=True)
    png = OUT / f"ocean_{name}.png"
    png.unlink(missing_ok=True)
    res = _view(["--env", name, "--random", "--steps", "30", "--hidden", "--screenshot", str(png),
                 "--height", "400"], display)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] == 400
    env = drone_sim.make_ocean(name)
    assert abs(img.shape[1] / (400 - 28) - env.aspect) < 0.02  # the canvas keeps the game's aspect ratio
    colours = np.unique((img // 16).reshape(-1, 3), axis=0)
    assert len(colours) >= 4, f"{name}: only {len(colours)} colours: nothing drawn?"
    assert f"{name}: 30 steps" in res.stdout


def test_a_person_plays_from_the_keyboard(display):
    """The grid target game is turn-based for a person: it steps only on key presses."""
    xdotool = shutil.which("xdotool")
    if xdotool is None:
        pytest.skip("xdotool is not installed (apt-get install xdotool)")
    env = _env(display)
    proc = subprocess.Popen([sys.executable, "-m", "policies.view", "--env", "target", "--steps", "4"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wid, deadline = "", time.monotonic() + 30
        while not wid and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
            wid = subprocess.run([xdotool, "search", "--name", "drone-view"], env=env, capture_output=True,
                                 text=True).stdout.split("\n")[0].strip()
        assert wid, "no window appeared" + (f": {proc.stderr.read()}" if proc.poll() is not None else "")
        time.sleep(1.5)
        assert proc.poll() is None, "the game must wait for the player, not run by itself"
        for key in ("Right", "Right", "Up", "Left"):
            subprocess.run([xdotool, "key", "--window", wid, key], env=env, timeout=10)
            time.sleep(0.4)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"{out}\n{err}"
    assert "target: 4 steps" in out


def test_policy_checkpoint_in_the_game_viewer(display, tmp_path):
    from policies.config import make_config
    from policies.train import train

    out = tmp_path / "run"
    train(make_config(cli_values=dict(env="target", num_envs=8, horizon=8, minibatch_size=64, epochs=1,
                                      total_steps=256, log_every=0.0, threads=1)), out)
    res = _view(["--env", "target", "--policy", str(out / "model.pt"), "--steps", "20", "--hidden"], display)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    assert "target: 20 steps" in res.stdout
    res = _view(["--env", "pong", "--policy", str(out / "model.pt"), "--steps", "5", "--hidden"], display)
    assert res.returncode != 0 and "trained on target, not pong" in res.stderr


def test_unknown_game_is_a_clear_error():
    res = _view(["--env", "tetris", "--steps", "1"], None, timeout=60)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "unknown env 'tetris'" in res.stderr and "pong" in res.stderr
