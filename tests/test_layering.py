"""The layout's rules, checked on the source (see docs/architecture.md, "Layout"):

* core packages never import rclpy or ROS messages: algorithms stay testable without ROS;
* the package import graph has no cycle;
* no package references a layer above its own (core < nodes < tools, regress < apps <
  cli), whether by an import statement or by naming a module in a string
  (``importlib.import_module("sitebot.nodes.x")``, ``"sitebot.nodes.x:SCHEMA"``,
  ``f"sitebot.nodes.{name}"``): the string forms are edges too, so importlib cannot dodge.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import sitebot

PKG = Path(sitebot.__file__).parent
#: packages (or root modules) allowed to talk to ROS
ROS_SIDE = {"nodes", "apps", "tools"}
#: single ROS-side files inside otherwise core packages
ROS_SIDE_FILES = {"regress/driver.py"}
ROS_MODULES = ("rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "nav_msgs", "tf2_msgs",
               "rosgraph_msgs", "trajectory_msgs", "diagnostic_msgs", "std_srvs",
               "sitebot_interfaces", "builtin_interfaces", "rcl_interfaces",
               "visualization_msgs", "rosidl_runtime_py", "rclpy_message_converter")
#: the layers above core (rank 0): adapters; then orchestration (benchmarks and evaluations,
#: the regression runner, which drives whole launched stacks, and campaigns of regression
#: runs); the CLI commands; the CLI entry. A module may reference its own rank or below.
RANK = {"nodes": 1, "tools": 2, "regress": 2, "campaign": 2, "apps": 3, "cli": 4}
MODULE_IN_STRING = re.compile(r"\bsitebot\.([a-z_][a-z0-9_]*)(?:\.[a-z_][a-z0-9_]*)*")


def package_of(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _docstring_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def imported_modules(path: Path) -> set[str]:
    """Top-level names of everything ``path`` imports (absolute imports)."""
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def sitebot_edges(path: Path) -> dict[str, set[str]]:
    """{'import': packages imported, 'string': packages named in string constants}."""
    tree = ast.parse(path.read_text(), str(path))
    docs = _docstring_nodes(tree)
    imports, strings = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            raise AssertionError(f"{path}: relative import (the tree uses absolute imports)")
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] == "sitebot":
                if len(parts) > 1:
                    imports.add(parts[1])
                else:        # from sitebot import x
                    imports.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "sitebot" and len(parts) > 1:
                    imports.add(parts[1])
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docs):
            strings.update(m.group(1) for m in MODULE_IN_STRING.finditer(node.value))
    known = {package_of(p) for p in PKG.rglob("*.py")}
    return {"import": imports & known, "string": strings & known}


def _files():
    return [p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts]


def test_core_modules_do_not_import_ros():
    core = [p for p in _files()
            if package_of(p) not in ROS_SIDE
            and p.relative_to(PKG).as_posix() not in ROS_SIDE_FILES]
    assert len(core) >= 60, "the core should be found"
    offenders = {str(p.relative_to(PKG)): sorted(imported_modules(p) & set(ROS_MODULES))
                 for p in core}
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"core modules importing ROS: {offenders}"


def test_nodes_do_import_rclpy():
    # the check above would pass vacuously if the walk found nothing on the ROS side
    nodes = list((PKG / "nodes").glob("*.py"))
    assert sum("rclpy" in imported_modules(p) for p in nodes) >= 10


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for p in _files():
        pkg = package_of(p)
        e = sitebot_edges(p)
        graph.setdefault(pkg, set()).update((e["import"] | e["string"]) - {pkg, "__init__"})
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_no_import_cycle_between_packages():
    graph = package_graph()
    assert {"control", "safety", "sim", "nodes", "apps", "tools"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "package import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle():
    # the check above must be able to fail
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_core_does_not_reach_up_to_nodes_apps_or_tools():
    offenders = {}
    for p in _files():
        pkg = package_of(p)
        e = sitebot_edges(p)
        rank = RANK.get(pkg, 0)
        bad = {q for q in e["import"] | e["string"] if RANK.get(q, 0) > rank}
        if bad:
            offenders[str(p.relative_to(PKG))] = sorted(bad)
    assert offenders == {}, f"references that reach up a layer: {offenders}"


def test_string_module_names_are_seen(tmp_path):
    # importlib with a literal, a 'module:attr' target and an f-string are all edges
    src = tmp_path / "m.py"
    src.write_text('"""Docstring naming sitebot.apps is not an edge."""\n'
                   'import importlib\n'
                   'importlib.import_module("sitebot.nodes.camera_perception")\n'
                   'T = "sitebot.tools.spatial_eval:main"\n'
                   'def f(n):\n    return f"sitebot.apps.{n}"\n')
    e = sitebot_edges(src)
    assert e["string"] == {"nodes", "tools", "apps"}
    assert e["import"] == set()


#: the layout's size limits (issue 18): a node is an adapter, a core module one concern
NODE_MAX_LINES = 300
MODULE_MAX_LINES = 700


def test_modules_stay_within_their_size_limits():
    over = {}
    for p in _files():
        n = len(p.read_text().splitlines())
        limit = NODE_MAX_LINES if package_of(p) == "nodes" else MODULE_MAX_LINES
        if n > limit:
            over[str(p.relative_to(PKG))] = (n, limit)
    assert over == {}, f"modules over their line limit (lines, limit): {over}"


#: shared concepts with one home (sitebot/types.py); a def or class of these names (or of
#: their old private copies) anywhere else is a copy
ONE_HOME = {"wrap_angle", "_wrap_angle", "wrap", "se2_compose", "se2_inverse", "se2_apply",
            "compose", "_compose", "inverse", "_inverse", "Pose2D", "SafetyLevel", "Mode",
            "StopCategory", "DiagnosticLevel", "Diagnostic", "yaw_to_quaternion",
            "_yaw_quaternion", "quaternion_to_yaw", "_yaw_of", "rpy_to_quaternion",
            "rpy_matrix", "_rpy_matrix", "quaternion_matrix", "quat_to_matrix",
            "matrix_to_quat", "quaternion_multiply", "_quat_multiply"}


def test_shared_types_and_geometry_have_one_home():
    homes: dict[str, list[str]] = {}
    for p in _files():
        for node in ast.parse(p.read_text(), str(p)).body:      # module-level definitions
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in ONE_HOME:
                homes.setdefault(node.name, []).append(str(p.relative_to(PKG)))
    copies = {k: v for k, v in homes.items() if v != ["types.py"]}
    assert copies == {}, f"defined outside sitebot/types.py: {copies}"
    assert {"wrap_angle", "Pose2D", "SafetyLevel", "StopCategory", "se2_compose"} <= set(homes)
