"""Build the C simulator with warnings as errors and run it under AddressSanitizer and UBSan."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "drone_sim" / "csrc"
WARNINGS = ["-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion", "-Wdouble-promotion", "-Werror"]


def _cc():
    cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler found (gcc or cc)")
    return cc


SANITIZE = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1"}


def _build_and_run(tmp_path, flags, env=None, source="test_env.c"):
    exe = tmp_path / source.replace(".c", "")
    cmd = [_cc(), "-std=c11", *WARNINGS, *flags, f"-I{CSRC}", str(ROOT / "tests" / "c" / source), "-o", str(exe),
           "-lm"]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, f"build failed:\n{' '.join(cmd)}\n{build.stderr}"
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert "all runs passed" in run.stdout
    return run


def test_headers_compile_cleanly_with_all_warnings_optimized(tmp_path):
    _build_and_run(tmp_path, ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math"])


def test_env_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    run = _build_and_run(tmp_path, SANITIZE, env=SANITIZER_ENV)
    assert "runtime error" not in run.stderr


def test_fast_neighbour_search_equals_the_plain_double_loop(tmp_path):
    run = _build_and_run(tmp_path, SANITIZE, env=SANITIZER_ENV, source="test_nearest.c")
    assert "0 mismatches" in run.stdout


def test_breakout_and_snake_under_sanitizers_with_random_and_hostile_actions(tmp_path):
    ocean = f"-I{ROOT / 'drone_sim' / 'ocean' / 'csrc'}"
    run = _build_and_run(tmp_path, [*SANITIZE, ocean], env=SANITIZER_ENV, source="test_breakout_snake.c")
    assert "runtime error" not in run.stderr


def test_ocean_envs_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    run = _build_and_run(tmp_path, SANITIZE, env=SANITIZER_ENV, source="test_ocean.c")
    assert "runtime error" not in run.stderr


def test_ocean_envs_compile_cleanly_with_all_warnings_optimized(tmp_path):
    _build_and_run(tmp_path, ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math"], source="test_ocean.c")
