"""The autonomy stack never reads a simulation world: only the simulator (the ``sim``
package and the ``simulator`` node) and the simulation's harness (benchmarks and evaluations
in ``tools``, the regression runner, the demo, the checker, ``sitebot site export``) may
import the world model or its loader.  Every other module gets its site from a bundle
(:mod:`sitebot.site.bundle`)."""
from __future__ import annotations

import ast
from pathlib import Path

import sitebot

PKG = Path(sitebot.__file__).parent
#: the simulator and its harness (judges with ground truth, exports bundles)
ALLOWED = ("sim/", "tools/", "regress/", "nodes/simulator.py", "apps/demo.py",
           "apps/check.py", "apps/site.py", "apps/regress.py", "apps/evaluate.py",
           "apps/bench.py")
WORLD_MODULES = ("sitebot.sim",)


def _sim_imports(path: Path, root: Path = PKG) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if node.module == "sitebot":
                names = [f"sitebot.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith("sitebot.sim."):       # importlib by name
            names = [node.value]
        found += [f"{path.relative_to(root)}:{node.lineno}: {n}" for n in names
                  if n == "sitebot.sim" or n.startswith(WORLD_MODULES[0] + ".")][:1]
    return found


def test_no_module_outside_the_simulation_imports_the_world() -> None:
    modules = sorted(PKG.rglob("*.py"))
    assert len(modules) > 150
    outside = [p for p in modules if not str(p.relative_to(PKG)).startswith(ALLOWED)]
    assert len(outside) > 100                       # the stack: nodes, core packages, apps
    offenders = [hit for p in outside for hit in _sim_imports(p)]
    assert offenders == [], "modules outside the simulation import it:\n" + "\n".join(offenders)


def test_the_check_finds_a_world_import(tmp_path) -> None:
    """The scan sees each form of import (so the test above can fail)."""
    forms = ["from sitebot.sim.world_loader import load_world\n",
             "import sitebot.sim.world_loader\n",
             "from sitebot.sim import world_loader\n",
             "import importlib\nimportlib.import_module('sitebot.sim.world_loader')\n"]
    for i, text in enumerate(forms):
        p = tmp_path / f"probe_{i}.py"
        p.write_text(text)
        assert len(_sim_imports(p, tmp_path)) == 1, text
    (tmp_path / "clean.py").write_text("from sitebot.site.bundle import load_bundle\n")
    assert _sim_imports(tmp_path / "clean.py", tmp_path) == []
