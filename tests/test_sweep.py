"""drone-sweep: Optuna studies over drone-train runs, on the `target` regression game so that trials take seconds.

A small sweep with SQLite (trials are ordinary runs, the best is exported as a drone-train config), a trial
that fails without stopping the study, a worker killed with SIGKILL and the study resumed, bad space files,
and two workers sharing one study on a real PostgreSQL server started here from the system's binaries.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import sqlalchemy.exc
import pytest

from policies.config import load_toml, make_config
from policies.sweep.objective import SweepSettings, make_pruner, run_trial
from policies.sweep.space import SpaceError, load_space
from policies.sweep.storage import open_storage

ROOT = Path(__file__).resolve().parents[1]
SWEEP = [sys.executable, "-m", "policies.sweep"]
FAST = ["--env", "target", "--eval-episodes", "32", "--evals", "1", "--heartbeat", "1"]


def _sweep(tmp: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    res = subprocess.run(SWEEP + ["--out", str(tmp / "sweeps"), *FAST, *args], capture_output=True, text=True,
                         timeout=timeout, cwd=tmp)
    return res


def _study(tmp: Path, name: str, storage: str | None = None) -> optuna.Study:
    # through the sweep's own opening, which survives racing a worker that is creating the tables
    return optuna.load_study(study_name=name, storage=open_storage(storage, tmp / "sweeps" / name))


def _states(study: optuna.Study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


@pytest.mark.parametrize("text, message", [
    ("[space]\nlearning_rate = { log = [0, 1e-3] }\n", ":2: learning_rate: a log-uniform range needs low > 0"),
    ("[space]\nclip = { uniform = [0.3, 0.1] }\n", ":2: clip: range [0.3, 0.1] must be finite with low < high"),
    ("[space]\n# the network\nhiden = { int = [32, 256] }\n", ":3: hiden: not a training setting"),
    ("[space]\nhorizon = { uniform = [8.0, 64.0] }\n", ":2: horizon: uniform distribution for a int setting"),
    ("[space]\nepochs = { int = [1, 4], step = 0 }\n", ":2: epochs: step must be a positive integer"),
    ("[space]\nhidden = { categorical = [64, \"big\"] }\n", ":2: hidden: value 'big' is not a int"),
    ("[space]\ntasks = { categorical = [\"hover\"] }\n", ":2: tasks: defines the problem"),
    ("[space]\ngamma = { normal = [0.9, 0.99] }\n", ":2: gamma: unknown key(s) normal"),
    ("[space\ngamma = 1\n", "not valid TOML"),
])
def test_a_bad_space_file_is_refused_naming_the_line(tmp_path, text, message):
    f = tmp_path / "space.toml"
    f.write_text(text)
    with pytest.raises(SpaceError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        load_space(f)
    res = _sweep(tmp_path, "--name", "bad", "--trials", "1", "--budget-steps", "1000", "--space", str(f))
    assert res.returncode == 2 and "space.toml" in res.stderr, res.stderr


@pytest.mark.parametrize("path", sorted(glob.glob(str(ROOT / "docs" / "sweep_*_space.toml"))),
                         ids=lambda p: Path(p).name)
def test_the_space_files_benchmarks_cite_still_load(path):
    # BENCHMARKS.md gives drone-sweep commands with these files; a renamed or retyped training setting
    # would break those commands without anything else noticing.
    names = {p.name for p in load_space(path)}
    assert {"learning_rate", "gamma"} <= names, names


def test_a_small_sweep_with_sqlite_exports_its_best_as_a_drone_train_config(tmp_path):
    space = tmp_path / "space.toml"
    # "tanh-ish" is not an activation: the trials that draw it fail, with the reason, and the study goes on
    space.write_text('[space]\nlearning_rate = { log = [3e-4, 3e-3] }\nhorizon = { int = [16, 48], step = 16 }\n'
                     'activation = { categorical = ["tanh", "tanh-ish"] }\n')
    res = _sweep(tmp_path, "--name", "small", "--trials", "3", "--budget-steps", "30000", "--space", str(space),
                 "--seed", "3", "--export-best", "best.toml")
    assert res.returncode == 0, res.stdout + res.stderr
    study = _study(tmp_path, "small")
    states = _states(study)
    assert states.get("COMPLETE", 0) + states.get("PRUNED", 0) == 3, states
    assert states.get("FAIL", 0) >= 1, states
    for t in study.get_trials(deepcopy=False):
        if t.state.name == "FAIL":
            assert "activation" in t.user_attrs["fail_reason"]
            assert (Path(t.user_attrs["run_dir"]) / "error.txt").is_file()
        if t.state.name == "COMPLETE":      # an ordinary run directory, evaluated at an unseen seed
            run = Path(tmp_path / t.user_attrs["run_dir"])
            assert (run / "model.pt").is_file() and (run / "config.toml").is_file()
            assert 0.0 <= t.value <= 1.0 and t.user_attrs["steps"] >= 30000
    best = max((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    cfg = make_config(load_toml(tmp_path / "best.toml"))
    assert cfg.env == "target" and cfg.learning_rate == pytest.approx(best.params["learning_rate"])
    assert cfg.horizon == best.params["horizon"] and cfg.activation == "tanh"
    assert (tmp_path / "sweeps" / "small" / "plots" / "history.png").is_file()
    assert f"best: trial {best.number}" in res.stdout
    # run again: the study already has its 3 finished trials, so nothing more is trained
    again = _sweep(tmp_path, "--name", "small", "--trials", "3", "--budget-steps", "30000", "--space", str(space))
    assert again.returncode == 0 and len(_study(tmp_path, "small").trials) == len(study.trials)


def test_the_pruner_compares_trials_at_the_same_evaluation_and_spares_the_first(tmp_path):
    # three finished trials that scored far above anything a short run reaches, at each of their evaluations
    study = optuna.create_study(direction="maximize", pruner=make_pruner(True))
    for _ in range(3):
        study.add_trial(optuna.trial.create_trial(value=1e9, intermediate_values={1: 1e9, 2: 1e9, 3: 1e9}))
    base = make_config(cli_values={"env": "target", "threads": 1})
    steps_per_update = base.num_envs * base.agents_per_env * base.horizon
    settings = SweepSettings(base, (), tmp_path, budget_steps=8 * steps_per_update, eval_episodes=32, evals=3)
    trial = study.ask()
    # judged at the second evaluation, against the others' second: not at its first, nor never (as when scores
    # were reported at the agent-step, which no other trial shared)
    with pytest.raises(optuna.TrialPruned, match="at evaluation 2,"):
        run_trial(trial, settings)
    assert sorted(study.trials[-1].intermediate_values) == [1, 2]


def test_of_two_trials_started_for_the_last_slot_the_later_one_stands_down():
    """Two workers count one free slot at the same moment and both create a trial: the storage's numbering
    decides, the earlier trial runs and the later one fails as surplus before sampling anything. Failed trials
    free their slot."""
    from policies.sweep.objective import SurplusTrial, claim_slot

    study = optuna.create_study()
    study.tell(study.ask(), 1.0)                       # trial 0 finished
    failed = study.ask()
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    first, second = study.ask(), study.ask()           # trials 2 and 3: both workers saw 1 of 2 slots free
    claim_slot(first, slots=2)
    with pytest.raises(SurplusTrial, match="2 earlier trials already fill the study's 2"):
        claim_slot(second, slots=2)
    assert second.user_attrs["fail_reason"].startswith("surplus") and second.params == {}
    claim_slot(second, slots=3)                        # a larger study has room for both


def _wait_running(tmp: Path, name: str, storage: str | None = None, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if storage is not None or (tmp / "sweeps" / name / "study.db").is_file():
            try:
                if _states(_study(tmp, name, storage)).get("RUNNING"):
                    return
            except KeyError:   # the study is not created yet
                pass
            except (sqlalchemy.exc.OperationalError, ValueError):   # raced the worker creating the tables (SQLite)
                pass
        time.sleep(0.2)
    raise AssertionError("no trial started")


_OPEN_AT = """
import sys, time
from pathlib import Path
from policies.sweep.storage import open_storage
start, dirs = float(sys.argv[1]), sys.argv[2:]
for k, d in enumerate(dirs):            # every process opens database k at the same moment, start + k/2 s
    time.sleep(max(0.0, start + 0.5 * k - time.time()))
    open_storage(None, Path(d))
"""


def test_workers_started_together_on_a_new_sqlite_study_all_open_it(tmp_path):
    """Four workers launched at once (a shell loop, a job array) race to create the tables and stamp the schema
    version of one new SQLite file; before the fix the losers died on a unique violation of alembic_version
    (six rounds in ten of four workers)."""
    dirs = [str(tmp_path / f"study{k}") for k in range(6)]
    start = time.time() + 8.0                          # after every process has imported optuna, even when busy
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, str(start), *dirs], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    failed = [o for p, o in zip(procs, outs) if p.returncode != 0]
    assert not failed, failed[0][-1500:]
    for d in dirs:
        assert optuna.get_all_study_summaries(open_storage(None, Path(d))) == []


def test_a_killed_worker_leaves_the_study_consistent_and_the_next_start_resumes(tmp_path):
    args = SWEEP + ["--out", str(tmp_path / "sweeps"), *FAST, "--name", "killed", "--trials", "2",
                    "--budget-seconds", "4", "--seed", "5"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_running(tmp_path, "killed")
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)      # mid-trial: no chance to tidy up
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = _study(tmp_path, "killed").trials
    assert [t.state.name for t in killed] == ["RUNNING"]
    res = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    trials = _study(tmp_path, "killed").trials
    states = [t.state.name for t in trials]
    assert "RUNNING" not in states and states[0] == "FAIL"             # the stale trial, failed by its heartbeat
    assert states.count("COMPLETE") + states.count("PRUNED") == 2
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert len(retried) == 1 and retried[0].params == trials[0].params  # its settings were queued again


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("initdb")
    assert exe, "PostgreSQL's server binaries are not installed (scripts/setup.sh installs them)"
    return Path(exe).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A PostgreSQL server of our own: initdb in a temporary directory, listening on a free local port.
    (Not under pytest's tmp_path: run as root, the server runs as the postgres user, who cannot enter it.)"""
    bindir = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="drone-sweep-pg-"))
    data = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:     # the server refuses to run as root: run it as the postgres system user
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-U", "sweep", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)
    port = _free_port()
    log = root / "server.log"
    subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                              "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, timeout=90)
    try:
        subprocess.run(as_user + [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "sweep",
                                  "sweeps"], check=True, capture_output=True, timeout=60)
        yield f"postgresql://sweep@127.0.0.1:{port}/sweeps"
    finally:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_one_study_on_a_postgresql_server(tmp_path, postgres):
    """Two processes stand in for two machines: the same command, the same --storage."""
    args = SWEEP + [*FAST, "--name", "shared", "--storage", postgres, "--trials", "4", "--budget-steps", "20000",
                    "--no-prune"]
    workers = [subprocess.Popen(args + ["--out", str(tmp_path / f"machine{k}")], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for k in (1, 2)]
    outs = [w.communicate(timeout=400)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs
    study = optuna.load_study(study_name="shared", storage=postgres)
    trials = study.trials
    assert [t.state.name for t in trials].count("COMPLETE") == 4, [t.state.name for t in trials]
    assert len({t.number for t in trials}) == len(trials)                  # one study, no trial twice
    dirs = [t.user_attrs["run_dir"] for t in trials]
    assert len(set(dirs)) == len(dirs)
    machines = {p for d in dirs for p in Path(d).parts if p.startswith("machine")}
    assert machines == {"machine1", "machine2"}, dirs                      # both workers ran trials
    for d in dirs:
        assert (Path(d) / "model.pt").is_file()
