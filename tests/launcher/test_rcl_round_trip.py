"""Every shipped launch file's inline parameters survive the round trip a node's parameters
make under ``ros2 launch``: launch_ros writes them to a parameter file with ``yaml.dump`` and
rcl's own YAML parser reads that file (issue 21, defect 1: ``fiducial_fields: [x, "y"]``
reached rcl as ``- y``, a boolean, and the localization node died at start).

``sitebot launch`` now hands inline parameters over the same way, so each file written here
is read by rcl exactly as the node would read it: through ``rclpy.init`` with
``--params-file`` and a node of the process's name and namespace that declares what it is
given.  The values rcl hands the node must equal the ones the launch file meant (read back
with PyYAML, which is how the launcher wrote them)."""
from __future__ import annotations

from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.context import Context

from sitebot.launcher import load_launch
from sitebot.paths import data_path

LAUNCH_FILES = sorted(data_path("launch").glob("*.launch.yaml"))
#: the ROS packages a ROS install provides (robot_state_publisher, controller_manager,
#: rviz2, ...): only the command line matters here, not the program
_ROS_PACKAGES = {"robot_state_publisher", "controller_manager", "rviz2", "teleop_twist_keyboard"}


def _resolver(pkg: str, exe: str):
    return [f"/opt/ros/bin/{pkg}/{exe}"] if pkg in _ROS_PACKAGES else None


def _args(launch_file: Path, tmp_path: Path) -> dict[str, str]:
    """Values for the arguments a file requires (regress files: what the runner writes)."""
    from sitebot.config.yamlio import load_yaml
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    known = {"sim_params": str(empty), "supervisor_params": str(empty),
             "node_params": str(empty), "world": "substation", "site": "substation",
             "out_dir": str(tmp_path)}
    required = [item["arg"]["name"] for item in load_yaml(launch_file)["launch"]
                if "arg" in item and "default" not in item["arg"]]
    return {name: known.get(name, "x") for name in required}


def _inline_files(cmd: list[str]) -> list[Path]:
    return [Path(a) for i, a in enumerate(cmd)
            if i and cmd[i - 1] == "--params-file" and "sitebot_launch_params_" in a]


def _rcl_values(path: Path, name: str, namespace: str) -> dict[str, object]:
    """The parameters rcl gives node ``namespace/name`` from ``path``."""
    ctx = Context()
    rclpy.init(context=ctx, args=["--ros-args", "--params-file", str(path)])
    try:
        node = rclpy.create_node(name, namespace=namespace, context=ctx,
                                 automatically_declare_parameters_from_overrides=True)
        try:
            return {n: node.get_parameter(n).value for n in node._parameters}
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


def _same(a: object, b: object) -> bool:
    if isinstance(a, (list, tuple)) or hasattr(a, "tolist"):
        a = list(a.tolist() if hasattr(a, "tolist") else a)
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(b, bool) or isinstance(a, bool):
        return type(a) is type(b) and a == b
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_inline_parameters_reach_the_node_as_meant(launch_file, tmp_path):
    if launch_file.name == "hardware.launch.yaml":
        pytest.skip("runs xacro through $(command): ros2 launch only (its robot_description "
                    "is typed str: test_the_urdf_parameter_is_a_string)")
    if launch_file.name == "robot.launch.yaml":
        pytest.skip("includes hardware.launch.yaml ($(command)): read through rcl in "
                    "test_robot_launch.py, with that one value stood in")
    d = load_launch(launch_file, _args(launch_file, tmp_path), resolver=_resolver)
    checked = 0
    for proc in d:
        if proc.node_name is None:
            continue
        for f in _inline_files(proc.cmd):
            (key, body), = yaml.safe_load(f.read_text()).items()
            meant = body["ros__parameters"]
            got = _rcl_values(f, proc.node_name, proc.namespace)
            for pname, value in meant.items():
                assert pname in got, f"{launch_file.name}: {proc.node_name}: '{pname}' lost"
                assert _same(got[pname], value), (
                    f"{launch_file.name}: node {proc.node_name}: parameter '{pname}' is "
                    f"{value!r} in the launch file but rcl reads {got[pname]!r}")
                checked += 1
    if launch_file.name in ("mission.launch.yaml", "console.launch.yaml"):
        assert checked >= 20, checked           # the files that met defect 1 were read


def test_the_urdf_parameter_is_a_string():
    """hardware.launch.yaml (issue 21, defect 2): the xacro output is typed str, so launch_ros
    does not read the URDF as YAML."""
    from sitebot.config.yamlio import load_yaml
    items = [p for item in load_yaml(data_path("launch", "hardware.launch.yaml"))["launch"]
             if "node" in item for p in item["node"].get("param", [])
             if p.get("name") == "robot_description"]
    assert items and all(p.get("type") == "str" for p in items), items


def test_sitebot_launch_refuses_what_rcl_would_misread(tmp_path):
    """The defect itself, caught before anything starts, naming the launch file and line."""
    from sitebot.apps.check import validate_launch_params
    from sitebot.errors import ConfigError
    f = tmp_path / "t.launch.yaml"
    f.write_text('launch:\n- node:\n    pkg: sitebot\n    exec: localization\n'
                 '    name: localization\n    param:\n'
                 '    - {name: fiducial_fields, value: [x, "y"]}\n')
    with pytest.raises(ConfigError) as e:
        validate_launch_params(load_launch(f))
    text = str(e.value)
    assert text.startswith(f"{f}:2: ") and "'y' is a boolean" in text, text
    assert "put the value in a parameter file, quoted" in text
