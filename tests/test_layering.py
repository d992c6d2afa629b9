"""Imports run downward (docs/design.md "Packages and the direction of imports") and form no cycles.

Every import statement counts, including those inside functions: a lazy import is still a dependency,
it only moves the failure to run time. The graph is built from the source with ast, so nothing is
imported to check it.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("drone_sim", "policies", "firmware_bridge", "deploy", "calibration")
# what each package may import of ours (besides itself)
ALLOWED = {
    "drone_sim": set(),
    "policies": {"drone_sim"},
    "firmware_bridge": {"drone_sim"},
    "deploy": {"drone_sim", "policies", "firmware_bridge"},
    "calibration": {"drone_sim", "firmware_bridge"},
}
# the real-link modules of firmware_bridge never touch the simulator: only its sim/ subpackage does
REAL_LINK_FORBIDDEN = ("drone_sim", "firmware_bridge.sim")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "examples" in path.parts or "figures" in path.parts:
                continue
            out[_module_name(path)] = path
        for path in sorted((ROOT / pkg).rglob("*.pyx")):
            out[_module_name(path)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Our modules that `name` imports (the longest known prefix of each imported name)."""
    if path.suffix == ".pyx":
        return set()      # the binding imports numpy and C headers only
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    targets = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                stem = base[:len(base) - (node.level - 1)]
                mod = ".".join(stem + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:   # `from pkg import module` imports the module, else a name of `pkg`
                targets.append(f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod)
    found = set()
    ancestors = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
    for t in targets:
        parts = t.split(".")
        for k in range(len(parts), 0, -1):
            cand = ".".join(parts[:k])
            if cand in known:
                if cand != name and cand not in ancestors:   # a package is initialized before its modules anyway
                    found.add(cand)
                break
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def test_the_graph_sees_the_imports_it_should():
    """A walker that finds nothing would pass everything: check it on imports known to exist."""
    g = _graph()
    assert "drone_sim.binding" in g["drone_sim.env"]
    assert "policies.onnx_policy" in g["deploy.flight"]
    assert "firmware_bridge" in g["deploy.flight"]
    assert len(g) > 70


def test_packages_import_only_downward():
    bad = []
    for mod, deps in _graph().items():
        pkg = mod.split(".")[0]
        for dep in sorted(deps):
            dpkg = dep.split(".")[0]
            if dpkg != pkg and dpkg not in ALLOWED[pkg]:
                bad.append(f"{mod} imports {dep} ({pkg} may import {sorted(ALLOWED[pkg]) or 'nothing of ours'})")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_real_link_modules_never_touch_the_simulator():
    bad = []
    for mod, deps in _graph().items():
        if not (mod == "firmware_bridge" or mod.startswith("firmware_bridge.")) or mod == "firmware_bridge.sim" \
                or mod.startswith("firmware_bridge.sim."):
            continue
        for dep in sorted(deps):
            if any(dep == f or dep.startswith(f + ".") for f in REAL_LINK_FORBIDDEN):
                bad.append(f"{mod} imports {dep}")
    assert not bad, "firmware_bridge's link modules import the simulator:\n" + "\n".join(bad)


def test_no_import_cycles():
    g = _graph()
    # Tarjan's strongly connected components; a component of more than one module is a cycle
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    for v in sorted(g):
        if v not in index:
            visit(v)

    cycles = [" <-> ".join(sorted(comp)) for comp in comps if len(comp) > 1]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_class_over_500_lines():
    """Big classes were split along their seams (OperatorWindow: session, window, input, HUD; Viewer: window,
    scene, overlay; SimVehicle: vehicle, telemetry, handlers; SimAutopilot: navigation, bookkeeping;
    Flight: responses). A class that grows past this is a sign it does two things."""
    big = []
    for name, path in _modules().items():
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 500:
                big.append(f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not big, "classes over 500 lines:\n" + "\n".join(big)
