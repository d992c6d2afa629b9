"""Every long-running console script stops cleanly on Ctrl-C (SIGINT) and on SIGTERM: it exits with its
interrupted code and a message, without a traceback, and leaves what it writes in order.

drone-deploy (lands first) and drone-ui are covered in test_deploy_faults.py and test_deploy_ui.py, the motor
test of drone-calibrate in test_calibration_safety.py; drone-export and drone-replay finish in seconds. Of the
scripts, regression.py (minutes per game) and crash_report.py are covered here; pick_checkpoint passes its
evaluations the same stop check as drone-eval; the benchmark and measurement scripts end through
drone_sim.signals.exit_status_of, tested with the two that fly drone-deploy against a simulated vehicle.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

BIN = Path(sys.executable).parent


def _script(name: str, module: str) -> list[str]:
    exe = BIN / name
    return [str(exe)] if exe.exists() else [sys.executable, "-m", module]


def _group_members(pgid: int) -> list[str]:
    """The live (not zombie) processes of a process group, as 'pid name' (from /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:          # ended while we looked
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if rest[0] != "Z" and int(rest[2]) == pgid:
            members.append(f"{stat.parent.name} {name}")
    return members


def _interrupt(cmd: list[str], sig: int, ready: str | None, cwd: Path, env: dict | None = None,
               timeout: float = 120, after: float = 0.5) -> tuple[int, str]:
    """Start cmd, wait until its output shows `ready` (None: a fixed 4 s for a program that prints nothing while it
    works), send sig `after` seconds later; (exit code, output). The output is read on a thread, so that a
    program that never shows `ready` fails the test after `timeout` instead of blocking it on a read.

    The program runs in a process group of its own, and once it has exited none of the processes it started may
    be left in that group: a simulated vehicle or a drone-deploy left running is the failure this catches."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    out: list[str] = []
    seen = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            out.append(line)
            if ready is not None and ready in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if ready is None:
            time.sleep(4.0)
            assert proc.poll() is None, f"{cmd[0]} ended by itself: {''.join(out)[-2000:]}"
        else:
            assert seen.wait(timeout), f"{cmd[0]} never showed {ready!r}: {''.join(out)[-2000:]}"
        time.sleep(after)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        reader.join(timeout=10)
        deadline = time.monotonic() + 10
        while _group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _group_members(proc.pid)
        assert not left, f"{cmd[0]} exited {proc.returncode} and left running: {left}; {''.join(out)[-2000:]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError):     # whatever a failed test left behind
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, "".join(out)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_drone_train_saves_and_stops(tmp_path, sig):
    run = tmp_path / "run"
    cmd = _script("drone-train", "policies") + ["--env", "target", "--total-steps", "1e9", "--out", str(run),
                                                  "--log-every", "0.2", "--checkpoint-every", "2000"]
    code, out = _interrupt(cmd, sig, "steps/s", tmp_path, env={"COLUMNS": "200"})
    assert code == 130, out[-2000:]
    assert "interrupted: the latest checkpoint is in" in out and "Traceback" not in out
    assert (run / "checkpoints" / "latest.pt").is_file() and (run / "metrics.jsonl").stat().st_size > 0


def test_drone_sim_vehicle_stops_on_both(tmp_path):
    for sig in (signal.SIGINT, signal.SIGTERM):
        code, out = _interrupt(_script("drone-sim-vehicle", "firmware_bridge.sim"), sig, "connect with", tmp_path)
        assert code == 0 and "Traceback" not in out, out
        code, out = _interrupt(_script("drone-sim-vehicle", "firmware_bridge.sim") + ["--count", "3"], sig,
                               "connect with", tmp_path)
        assert code == 0 and "Traceback" not in out, out


def test_drone_sweep_keeps_its_study(tmp_path):
    import optuna

    cmd = _script("drone-sweep", "policies.sweep") + ["--name", "s", "--out", str(tmp_path), "--env", "target",
                                                      "--trials", "5", "--budget-seconds", "60", "--heartbeat", "1"]
    code, out = _interrupt(cmd, signal.SIGTERM, "drone-sweep s:", tmp_path)
    assert code == 130 and "interrupted" in out and "Traceback" not in out, out[-2000:]
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")
    assert [t.state.name for t in study.trials] in ([], ["FAIL"])   # the interrupted trial is failed, not left running


def test_drone_eval_and_drone_view(tmp_path, tiny_checkpoint, display):
    cmd = [sys.executable, "-c", "from policies.cli import eval_entry; eval_entry()", str(tiny_checkpoint),
           "--episodes", "1000000"]
    code, out = _interrupt(cmd, signal.SIGTERM, "drone-eval: 1 task(s)", tmp_path)
    assert code == 130 and "interrupted" in out and "Traceback" not in out, out
    cmd = _script("drone-view", "policies.view") + ["--tasks", "hover", "--steps", "1000000", "--hidden",
                                                    "--width", "320", "--height", "200"]
    code, out = _interrupt(cmd, signal.SIGTERM, None, tmp_path, env={"DISPLAY": display})
    assert code == 0 and "interrupted after" in out and "Traceback" not in out, out


class _StopInDel:
    """Sends this process SIGTERM from inside a __del__, where Python drops the KeyboardInterrupt the handler raises
    (it reports it as unraisable): what happened to drone-view under CI's SIGTERM, deterministically."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)


class _StopAtFifthCall:
    """A zero-action actor (drone-view's) or policy (drone-eval's) that drops a _StopInDel at its fifth call."""
    name = "zero"

    def __init__(self, num_agents: int):
        self.calls, self.actions = 0, np.zeros((num_agents, 4), np.float32)

    def __call__(self, obs):
        self.calls += 1
        if self.calls == 5:
            _StopInDel()        # dropped at once: its __del__ runs here
        return self.actions

    def reset(self, ended) -> None:
        pass


def test_the_viewer_loop_stops_on_a_sigterm_whose_interrupt_python_dropped(capsys):
    import drone_sim
    from drone_sim.signals import sigterm_as_interrupt
    from drone_sim.view import run

    env = drone_sim.make(tasks="hover", num_envs=1, agents_per_env=2, action_mode="ctbr", seed=0)
    previous = signal.getsignal(signal.SIGTERM)
    sigterm_as_interrupt()
    try:
        done = run(env, _StopAtFifthCall(env.num_agents), viewer=None, steps=200)
    finally:
        signal.signal(signal.SIGTERM, previous)
        env.close()
    assert done == 5, done    # stopped at the next step's check, not after all 200
    assert "drone-view: interrupted after 5 steps" in capsys.readouterr().err


def test_drone_eval_stops_on_a_sigterm_whose_interrupt_python_dropped(monkeypatch, capsys):
    """drone-eval checks the recorded stop at every step (CI saw drone-view run on after such a drop)."""
    import policies.cli as cli

    made: list[_StopAtFifthCall] = []
    meta = {"tasks": "hover", "global_step": 0, "action_mode": "ctbr", "control_hz": 50.0, "physics_hz": 500.0,
            "train_config": {"dr": "default", "drone": "", "course": ""}}
    monkeypatch.setattr(cli, "eval_policy_of",
                        lambda path, onnx: (None, meta, lambda n: made.append(_StopAtFifthCall(n)) or made[-1]))
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = cli.eval_main(["unused.pt", "--episodes", "256", "--drones", "randomized"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    calls = [policy.calls for policy in made]
    assert code == 130 and calls == [5], (code, calls)   # one policy, stopped at the next step's check
    assert "drone-eval: interrupted; no table" in capsys.readouterr().err


@pytest.mark.parametrize("env", ["drone", "cartpole"])
def test_a_sweep_trials_evaluation_stops_at_the_next_step_once_interrupted(env):
    """drone-sweep's trial evaluations (objective.score_of) check the interrupt flag before every step, as the
    training loop does at every update: a swallowed KeyboardInterrupt must not leave a final evaluation of
    minutes running after Ctrl-C."""
    from policies.config import make_config
    from policies.model import ActorCritic
    from policies.sweep.objective import score_of
    from policies.train import env_spaces, make_env

    cfg = make_config(cli_values={"env": env, "tasks": "hover"} if env == "drone" else {"env": env})
    probe = make_env(cfg, num_envs=1, seed=0)
    obs_size, action_size, discrete = env_spaces(probe)
    probe.close()
    model = ActorCritic(obs_size, action_size, discrete=discrete)
    calls = []

    def stop() -> None:
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_of(model, cfg, episodes=10_000, seed=0, stop=stop)
    assert len(calls) == 5


def test_the_regression_suite_stops_on_sigterm(tmp_path):
    """scripts/regression.py trains for minutes per game: SIGTERM while training ends it with 130 and a line that
    says so, and the last report is left as it was (a partial suite is no verdict)."""
    report = tmp_path / "report.md"
    report.write_text("the last whole suite's report\n")
    cmd = [sys.executable, str(Path(__file__).resolve().parents[1] / "scripts" / "regression.py"), "--envs",
           "cartpole", "--out", str(tmp_path / "runs"), "--report", str(report)]
    code, out = _interrupt(cmd, signal.SIGTERM, "cartpole: training", tmp_path, after=2.0)
    assert code == 130, out[-2000:]
    assert "interrupted during cartpole after 0 of 1 game(s)" in out and "Traceback" not in out, out[-2000:]
    assert report.read_text() == "the last whole suite's report\n"


def test_crash_report_stops_on_sigterm(tmp_path):
    """scripts/crash_report.py runs drone-eval's evaluation per task (minutes at 512 episodes): SIGTERM ends it
    with 130 and a line naming the task, and an earlier --json file is not replaced by an unfinished one."""
    out_json = tmp_path / "crashes.json"
    out_json.write_text("an earlier report\n")
    script = Path(__file__).resolve().parents[1] / "scripts" / "crash_report.py"
    cmd = [sys.executable, str(script), "--policy", "scripted", "--tasks", "hover,obstacles", "--episodes",
           "2000000", "--json", str(out_json)]
    # hover's 2M episodes take minutes: the stop comes during hover
    code, out = _interrupt(cmd, signal.SIGTERM, "episodes each", tmp_path)
    assert code == 130, out[-2000:]
    assert "crash_report: interrupted during hover" in out and "Traceback" not in out, out[-2000:]
    assert out_json.read_text() == "an earlier report\n"


@pytest.mark.parametrize("script, ready", [
    ("thrust_smoothness.py", "thrust_smoothness: drone-deploy, no noise, no latency"),
    ("bench_deploy.py", "bench_deploy: flight"),
], ids=["thrust_smoothness", "bench_deploy"])
def test_a_measurement_script_stops_its_vehicle_and_drone_deploy_on_sigterm(tmp_path, script, ready):
    """The measurement scripts fly drone-deploy against a simulated vehicle, each a process of its own. SIGTERM
    while they fly ends the script with 130 and one line, and takes both down with it (SIGTERM's default action
    ended the script alone: the vehicle and drone-deploy ran on, orphaned)."""
    name = script.removesuffix(".py")
    cmd = [sys.executable, str(Path(__file__).resolve().parents[1] / "scripts" / script)]
    if name == "bench_deploy":
        cmd += ["flight", "--out", str(tmp_path / "figures")]
    code, out = _interrupt(cmd, signal.SIGTERM, ready, tmp_path, after=3.0)
    assert code == 130, out[-2000:]
    assert f"{name}: interrupted; no results written" in out and "Traceback" not in out, out[-2000:]
    assert not (tmp_path / "figures").exists()
