"""The install extras (setup.py) cover what each part imports, and the flying laptop needs no torch or opencv.

`pip install drone-sim2real[deploy]` is what goes on the laptop that flies the drone: drone-deploy,
drone-replay, drone-sim-vehicle, drone-calibrate. The check reads the installed package's metadata and
walks the module-level imports of each part, so a new import without its requirement fails here rather
than on a user's machine.
"""
from __future__ import annotations

import ast
import importlib.metadata as md
import re
import subprocess
import sys
from pathlib import Path

from test_deploy_support import deploy_cmd, sim_vehicle_process

ROOT = Path(__file__).resolve().parents[1]
DIST = "drone-sim2real"
OURS = {"drone_sim", "policies", "firmware_bridge", "deploy", "calibration"}
UI_FILES = {"drone_sim/view.py", "drone_sim/ocean/viewer.py", "drone_sim/ocean/view.py"} | \
    {p.relative_to(ROOT).as_posix() for p in (ROOT / "drone_sim/viewer").glob("*.py")}


def _requirements() -> dict[str, set[str]]:
    """extra ('' for the base install) -> distribution names (normalized)."""
    out: dict[str, set[str]] = {}
    for req in md.requires(DIST) or []:
        name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
        m = re.search(r'extra\s*==\s*"([^"]+)"', req)
        out.setdefault(m.group(1) if m else "", set()).add(_norm(name))
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _top_level_imports(path: Path) -> set[str]:
    """Third-party modules imported when the module is imported (not those imported inside functions)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()

    def visit(body):
        for node in body:
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
            elif isinstance(node, ast.Try):
                visit(node.body)
            elif isinstance(node, ast.If) and not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                visit(node.body)

    visit(tree.body)
    return {n for n in names if n not in OURS and n not in sys.stdlib_module_names and n != "__future__"}


def _files(*patterns: str) -> list[Path]:
    return sorted(p for pat in patterns for p in ROOT.glob(pat))


def _check(files: list[Path], allowed: set[str]) -> list[str]:
    dists = md.packages_distributions()
    bad = []
    for f in files:
        for mod in sorted(_top_level_imports(f)):
            provided = {_norm(d) for d in dists.get(mod, [mod])}
            if not provided & allowed:
                bad.append(f"{f.relative_to(ROOT)} imports {mod} ({', '.join(sorted(provided))}), not in {sorted(allowed)}")
    return bad


def test_each_extra_covers_what_its_part_imports():
    req = _requirements()
    base = req[""]
    assert {"numpy", "pymavlink"} <= _top_level_imports(ROOT / "deploy/flight.py")   # the walk sees imports
    assert "torch" in _top_level_imports(ROOT / "policies/model.py")
    sim = [p for p in _files("drone_sim/**/*.py") if p.relative_to(ROOT).as_posix() not in UI_FILES]
    deploy = [p for p in _files("deploy/**/*.py", "firmware_bridge/**/*.py", "calibration/**/*.py",
                                "policies/onnx_policy.py")
              if "deploy/ui/" not in p.as_posix()]
    ui = _files("deploy/ui/*.py") + [ROOT / f for f in sorted(UI_FILES)] + [ROOT / "policies/view.py"]
    train = _files("policies/**/*.py")
    bad = _check(sim, base) + _check(deploy, base | req["deploy"]) + _check(ui, base | req["ui"]) + \
        _check(train, base | req["train"])
    assert not bad, "imports without their requirement in setup.py:\n" + "\n".join(bad)
    assert req["test"] >= req["all"] >= req["train"] | req["deploy"] | req["ui"]


def test_the_flying_laptop_installs_no_torch_and_no_opencv():
    req = _requirements()
    for extra in ("deploy", "ui"):
        assert not {"torch", "opencv-python-headless", "opencv-python"} & (req[""] | req[extra]), extra


def test_drone_deploy_runs_without_torch_or_opencv(tmp_path):
    """A whole dry run (preflight, the loop, onnxruntime) in an interpreter where importing torch or cv2 fails."""
    tty = str(tmp_path / "ttySIM")
    blocked = ("import sys; sys.modules['torch'] = None; sys.modules['cv2'] = None; "
               "from deploy.cli import main; sys.exit(main())")
    with sim_vehicle_process(["--port", f"pty:{tty}"]):
        cmd = deploy_cmd(tty, tmp_path / "logs", "--dry-run", "--duration", "1.5", lockstep=False)
        cmd = [sys.executable, "-c", blocked] + cmd[cmd.index("--port"):]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "torch" not in res.stderr and "cv2" not in res.stderr
