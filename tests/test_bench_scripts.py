"""The benchmark scripts still run against the code they measure (issue: bench_sim.py once failed at HEAD
because build_config gained a key its C config writer did not know). A quick mode, one small case each:
the point is that they run and report, not the figures."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def test_bench_sim_writes_every_config_key_build_config_makes():
    """config_to_c refuses a key it does not know: every task and mode's config must pass (no compiler)."""
    import bench_sim
    from drone_sim.config import ACTION_MODES, TASKS, build_config

    for task in TASKS:
        for mode in ACTION_MODES:
            lines = bench_sim.config_to_c(build_config(task, mode))
            assert any(line.startswith("c->evaluation = ") for line in lines)


def test_bench_sim_quick_run(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_sim.py"), "--quick", "--tasks", "hover",
                          "--modes", "ctbr", "--settings", "default", "--num-envs", "2"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "hover" in res.stdout
