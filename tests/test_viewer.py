"""The raylib viewer and drone-view, run for real under a virtual X server (Xvfb).

Screenshots land in test-output/ at the repo root so a person can look at them. Without Xvfb the
display tests are skipped locally, and fail when CI is set (CI must exercise the real window).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-output"


def _env(display: str | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if display is not None:
        env["DISPLAY"] = display
    return env


def _view(args: list[str], display: str | None, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "policies.view", *args], cwd=ROOT, env=_env(display),
                          capture_output=True, text=True, timeout=timeout)


def _read_png(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f"{path} is not a readable image"
    return img[:, :, ::-1]  # RGB


def _drone_visible(img: np.ndarray, x: float, y: float, color, half: int = 7) -> bool:
    """Pixels of the drone's own colour (any brightness: the body is lit) near its projected position."""
    h, w, _ = img.shape
    x0, x1 = max(int(x) - half, 0), min(int(x) + half + 1, w)
    y0, y1 = max(int(y) - half, 0), min(int(y) + half + 1, h)
    patch = img[y0:y1, x0:x1].reshape(-1, 3).astype(np.float64)
    c = np.asarray(color, dtype=np.float64)
    norm = np.linalg.norm(patch, axis=1) * np.linalg.norm(c)
    cos = patch @ c / np.maximum(norm, 1e-9)
    return int(np.sum((cos > 0.985) & (patch.max(axis=1) > 40))) >= 3


def test_race_screenshot(display):
    OUT.mkdir(exist_ok=True)
    png, info_path = OUT / "viewer_race.png", OUT / "viewer_race.json"
    for p in (png, info_path):
        p.unlink(missing_ok=True)
    res = _view(["--tasks", "race", "--controller", "hover", "--steps", "120", "--screenshot", str(png),
                 "--frame-info", str(info_path), "--width", "1024", "--height", "640"], display)
    assert res.returncode == 0, f"drone-view failed:\n{res.stdout}\n{res.stderr}"
    assert png.is_file()
    img = _read_png(png)
    assert img.shape == (640, 1024, 3)

    # not a uniform image: many colours, real contrast
    colors = np.unique((img // 8).reshape(-1, 3), axis=0)
    assert len(colors) > 100, f"only {len(colors)} distinct colours"
    assert img.std() > 10

    info = json.loads(info_path.read_text())
    assert info["task"] == "race" and info["step"] == 120
    assert (info["width"], info["height"]) == (1024, 640)
    drones = [d for d in info["drones"] if d["visible"]]
    assert len(drones) >= 6, f"only {len(drones)} of 8 drones in view: {info['camera']}"
    seen = [d["agent"] for d in drones if _drone_visible(img, *d["screen"], d["color"])]
    in_view = [d["agent"] for d in drones]
    assert len(seen) >= len(drones) // 2 + 1, f"drones drawn at their positions: {seen} of {in_view}"
    # where a drone is drawn the frame differs from the empty background
    d = drones[0]
    x, y = (int(v) for v in d["screen"])
    patch = img[max(y - 6, 0):y + 7, max(x - 6, 0):x + 7].reshape(-1, 3).astype(int)
    assert np.abs(patch - np.array(info["background"])).sum(axis=1).max() > 60
    assert any(g["visible"] for g in info["rings"]), "no ring of the course in view"


def test_video(display, tmp_path):
    import cv2

    OUT.mkdir(exist_ok=True)
    video = OUT / "viewer_swarm.mp4"
    video.unlink(missing_ok=True)
    res = _view(["--tasks", "swarm", "--agents", "6", "--video", str(video), "--steps", "60",
                 "--width", "640", "--height", "360", "--supersample", "1"], display)
    assert res.returncode == 0, f"drone-view failed:\n{res.stdout}\n{res.stderr}"
    cap = cv2.VideoCapture(str(video))
    assert cap.isOpened(), f"OpenCV cannot open {video}"
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    assert 58 <= len(frames) <= 61, f"{len(frames)} frames"
    assert frames[0].shape == (360, 640, 3)
    assert abs(fps - 50.0) < 0.5  # the control rate
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.5, "the video does not move"


def test_window_input(display):
    """A visible window takes mouse and keys (sent with xdotool): rotate, zoom, toggles, pause, ESC quits."""
    import time

    xdotool = shutil.which("xdotool")
    if xdotool is None:
        pytest.skip("xdotool is not installed (apt-get install xdotool): cannot send input to the window")
    OUT.mkdir(exist_ok=True)
    info_path = OUT / "viewer_input.json"
    info_path.unlink(missing_ok=True)
    env = _env(display)
    proc = subprocess.Popen([sys.executable, "-m", "policies.view", "--tasks", "swarm", "--agents", "4",
                             "--supersample", "1", "--width", "800", "--height", "500",
                             "--screenshot", str(OUT / "viewer_input.png"), "--frame-info", str(info_path)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def xdo(*args):
        return subprocess.run([xdotool, *args], env=env, capture_output=True, text=True, timeout=10)

    try:
        wid = ""
        deadline = time.monotonic() + 30
        while not wid and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
            wid = xdo("search", "--name", "drone-view").stdout.split("\n")[0].strip()
        assert wid, "no drone-view window appeared" + (f": {proc.stderr.read()}" if proc.poll() is not None else "")
        time.sleep(1.0)
        xdo("mousemove", "--window", wid, "400", "250", "mousedown", "--window", wid, "1",
            "mousemove", "--window", wid, "500", "230", "sleep", "0.3",
            "mousemove", "--window", wid, "600", "210", "sleep", "0.3", "mouseup", "--window", wid, "1")
        for _ in range(3):
            xdo("click", "--window", wid, "5")  # wheel down: zoom out
            time.sleep(0.1)
        for key in ("t", "l", "space"):
            xdo("key", "--window", wid, key)
            time.sleep(0.4)
        time.sleep(0.5)
        xdo("key", "--window", wid, "Escape")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"{out}\n{err}"
    view = json.loads(info_path.read_text())["view"]
    assert view["auto_yaw"] is False and abs(view["yaw_deg"] + 60.0) > 5.0, view  # the drag rotated the camera
    assert view["zoom"] > 1.2, view
    assert view["paused"] and not view["trails"] and not view["labels"], view


@pytest.mark.parametrize("args, words", [
    (["--controller", "hover", "--action-mode", "rpm"], ["hover", "ctbr"]),
    (["--tasks", "nosuchtask", "--steps", "1"], ["unknown task", "nosuchtask"]),
    (["--video", "x.mp4"], ["--steps"]),
    (["--drone", "/nonexistent/params.json"], ["no such file"]),
])
def test_bad_arguments(args, words):
    # no display needed: arguments are checked before any window opens
    res = _view(args, display=None, timeout=60)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr, res.stderr
    for w in words:
        assert w in res.stderr, f"{w!r} not in: {res.stderr}"


def test_frames_and_layout():
    """Pure geometry of the viewer (no window): the world -> raylib map and the motor layout."""
    from drone_sim.viewer import MOTOR_DIRS, MOTOR_SPIN, quat_to_matrix, world_to_raylib

    m = world_to_raylib(np.eye(3))  # images of the world axes, as rows
    assert np.linalg.det(m) == pytest.approx(1.0)  # a rotation: handedness kept
    assert np.allclose(world_to_raylib([0, 0, 1]), [0, 1, 0])  # world up is raylib up
    # X layout, body FLU: 0 front-right, 1 rear-left, 2 front-left, 3 rear-right; 0/1 CCW, 2/3 CW
    assert np.all(np.sign(MOTOR_DIRS[:, :2]) == [[1, -1], [-1, 1], [1, 1], [-1, -1]])
    assert list(MOTOR_SPIN) == [1, 1, -1, -1]
    # quaternion body-to-world: 90 deg yaw turns body x (nose) to world y
    q = np.array([[np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]])
    assert np.allclose(quat_to_matrix(q)[0] @ [1, 0, 0], [0, 1, 0], atol=1e-9)


def test_policy_in_drone_view_and_drone_eval_video(display, tiny_checkpoint, tmp_path):
    import cv2

    png = tmp_path / "policy.png"
    res = _view(["--policy", str(tiny_checkpoint), "--steps", "20", "--hidden", "--screenshot", str(png),
                 "--width", "320", "--height", "200", "--supersample", "1"], display)
    assert res.returncode == 0, f"drone-view --policy failed:\n{res.stdout}\n{res.stderr}"
    assert png.is_file() and "20 steps" in res.stdout

    video = tmp_path / "eval.mp4"
    res = subprocess.run([sys.executable, "-c", "from policies.cli import eval_entry; eval_entry()",
                          str(tiny_checkpoint), "--episodes", "8", "--drones", "nominal", "--video", str(video),
                          "--video-steps", "25", "--video-agents", "2"],
                         cwd=ROOT, env=_env(display), capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, f"drone-eval --video failed:\n{res.stdout}\n{res.stderr}"
    assert "hover" in res.stdout and "success" in res.stdout  # the table came first
    cap = cv2.VideoCapture(str(video))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert 24 <= frames <= 26, f"{frames} frames"


def test_policy_with_the_wrong_action_mode_is_refused(tiny_checkpoint):
    res = _view(["--policy", str(tiny_checkpoint), "--action-mode", "rpm", "--steps", "1"], display=None, timeout=60)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "ctbr" in res.stderr and "--action-mode rpm" in res.stderr, res.stderr
    res = _view(["--policy", str(tiny_checkpoint.parent / "missing.pt"), "--steps", "1"], display=None, timeout=60)
    assert res.returncode != 0 and "no such checkpoint" in res.stderr, res.stderr


def test_exported_onnx_policy_flies_in_drone_view(display, tiny_checkpoint, tmp_path):
    from policies.export import export_onnx

    onnx_path = tmp_path / "tiny.onnx"
    export_onnx(tiny_checkpoint, onnx_path)
    res = _view(["--policy", str(onnx_path), "--steps", "10", "--hidden", "--width", "320", "--height", "200",
                 "--supersample", "1"], display)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    assert "10 steps" in res.stdout
    res = _view(["--policy", str(onnx_path), "--action-mode", "rpm", "--steps", "1"], None, timeout=60)
    assert res.returncode != 0 and "ctbr" in res.stderr
