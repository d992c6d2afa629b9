"""The quick part of the trainer regression suite (scripts/regression.py --quick): the trivial target game
and cartpole must reach their targets with the project trainer on their fixed budgets and seed."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_regression_suite_passes(tmp_path):
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    report = out / "regression_quick.md"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "regression.py"), "--quick", "--out",
                          str(tmp_path / "runs"), "--report", str(report)],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"regression suite failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    text = report.read_text()
    assert "| target |" in text and "| cartpole |" in text and "FAIL" not in text
