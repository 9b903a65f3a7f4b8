"""Core modules never import rclpy (or ROS messages): algorithms stay testable without ROS
and nodes stay thin. Checked on the source, so an indirect import is caught too."""
from __future__ import annotations

import ast
from pathlib import Path

import sitebot

PKG = Path(sitebot.__file__).parent
# modules that are allowed to talk to ROS
ROS_SIDE = {"nodes", "demo.py", "mission.py", "bench.py", "safety_latency.py"}
# single ROS-side files inside otherwise core packages
ROS_SIDE_FILES = {"regress/driver.py"}
ROS_MODULES = ("rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "nav_msgs", "tf2_msgs",
               "rosgraph_msgs", "trajectory_msgs", "diagnostic_msgs", "std_srvs",
               "sitebot_interfaces", "builtin_interfaces", "rcl_interfaces")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_do_not_import_ros():
    core = [p for p in PKG.rglob("*.py")
            if p.relative_to(PKG).parts[0] not in ROS_SIDE
            and p.relative_to(PKG).as_posix() not in ROS_SIDE_FILES]
    assert len(core) >= 15, "the core should be found"
    offenders = {str(p.relative_to(PKG)): sorted(imported_modules(p) & set(ROS_MODULES))
                 for p in core}
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"core modules importing ROS: {offenders}"


def test_nodes_do_import_rclpy():
    # the check above would pass vacuously if the walk found nothing on the ROS side
    nodes = list((PKG / "nodes").glob("*.py"))
    assert sum("rclpy" in imported_modules(p) for p in nodes) >= 3
