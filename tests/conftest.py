import copy
import os
import select
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import drone_sim

DATA = Path(drone_sim.__file__).parent / "data"
G = 9.81


def with_tasks(obs, tasks: list[int]):
    """A torch batch of observations with row i's task one-hot set to say tasks[i]: what per-task heads and
    experts pick by."""
    import torch

    offset, count = drone_sim.OBS_LAYOUT["task"]
    out = obs.clone()
    out[:, offset:offset + count] = 0.0
    out[torch.arange(len(tasks)), offset + torch.tensor(tasks)] = 1.0
    return out


def nominal_drone(**changes) -> dict:
    d = copy.deepcopy(drone_sim.NOMINAL_DRONE)
    d.update(changes)
    return d


def single(task="hover", mode="rpm", drone=None, horizon=100.0, **kw):
    """One drone, no randomization, a long horizon: a physics test bench."""
    return drone_sim.make(tasks=task, num_envs=1, agents_per_env=kw.pop("agents", 1), action_mode=mode,
                          dr="nominal", drone=drone if drone is not None else nominal_drone(), seed=kw.pop("seed", 0),
                          horizon_s={task: horizon}, **kw)


def state(pos=(0, 0, 3), vel=(0, 0, 0), quat=(1, 0, 0, 0), rates=(0, 0, 0), motors=(0, 0, 0, 0)):
    return np.array([*pos, *vel, *quat, *rates, *motors], dtype=np.float32)


@pytest.fixture
def data_dir() -> Path:
    return DATA


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def display():
    """A private Xvfb server (it picks a free display number itself via -displayfd). -noreset: by default an X
    server resets when its last client disconnects, and a client that connects during the reset is refused; one
    window test's program closing just before the next one's opened was how a test run on a busy machine failed
    with "raylib could not open a window" (13 of 300 back-to-back connections refused without it, none with it)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        msg = "Xvfb is not installed (apt-get install xvfb); the viewer tests need a virtual X display"
        if _in_ci():
            pytest.fail(msg + " and CI is set, so they may not be skipped")
        pytest.skip(msg)
    r, w = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 20.0)
        number = os.read(r, 64).decode().strip() if ready else ""
        if not number:
            proc.kill()
            err = proc.communicate(timeout=5)[1].decode(errors="replace")
            pytest.fail(f"Xvfb did not start: {err.strip()[-500:]}")
        yield f":{number}"
    finally:
        os.close(r)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A policy from a few seconds of training: enough to check that tools load and fly it."""
    from policies.config import make_config
    from policies.train import train

    out = tmp_path_factory.mktemp("tiny") / "run"
    train(make_config(cli_values=dict(tasks="hover", num_envs=2, agents_per_env=8, horizon=8, minibatch_size=64,
                                      epochs=1, total_steps=256, log_every=0.0, threads=1)), out)
    return out / "model.pt"
