"""launch/robot.launch.yaml, the whole stack on a real robot (issue 21, item 5), read with
sitebot's launcher without starting anything.

The file includes hardware.launch.yaml, whose robot_description is xacro's output through
``$(command ...)``: only ``ros2 launch`` runs that, and ``sitebot launch`` refuses it (as
tests/launcher/test_rcl_round_trip.py notes for hardware.launch.yaml).  Here the package's
share folder is stood in by one whose hardware.launch.yaml has that one value replaced by
the command's own text (so the xacro call and its ``hardware_plugin`` argument can be
read); every other file is the package's own.  The ROS packages a ROS install provides
(robot_state_publisher, controller_manager) resolve to placeholder paths."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from test_rcl_round_trip import _inline_files, _rcl_values, _same

from sitebot import paths
from sitebot.config.params import load_params_file
from sitebot.errors import LaunchError
from sitebot.launcher import LaunchDescription, NodeProcess, load_launch

SHARE = paths.share_dir()
ROBOT = SHARE / "launch" / "robot.launch.yaml"
HARDWARE = SHARE / "launch" / "hardware.launch.yaml"
_ROS_PACKAGES = {"robot_state_publisher", "controller_manager"}

#: the processes with default arguments: hardware.launch.yaml's five, then the stack
HARDWARE_PROCESSES = {"robot_state_publisher", "controller_manager", "spawner_base",
                      "spawner_arm", "control_loop"}
AUTONOMY = {"safety_supervisor", "camera_perception", "spatial_perception", "localization",
            "navigation", "arm_planner", "task_planner", "task_executor", "web_console",
            "site_viz"}
DEFAULT_PROCESSES = HARDWARE_PROCESSES | {"map_server", "survey_recorder"} | \
    AUTONOMY - {"site_viz"}

#: the sensor topic each argument maps onto (the names sitebot's nodes subscribe)
SENSOR_ARGS = {"scan_topic": "scan", "imu_topic": "imu/data",
               "camera_image_topic": "camera/color/image_raw",
               "camera_info_topic": "camera/camera_info",
               "depth_image_topic": "camera/depth/image_raw",
               "depth_info_topic": "camera/depth/camera_info",
               "odom_topic": "odom"}
#: a driver's names (realsense2_camera 4.x, a lidar and an IMU in their own namespaces)
DRIVER_TOPICS = {"scan_topic": "/front_lidar/scan", "imu_topic": "/imu_0/data",
                 "camera_image_topic": "/camera/camera/color/image_raw",
                 "camera_info_topic": "/camera/camera/color/camera_info",
                 "depth_image_topic": "/camera/camera/depth/image_rect_raw",
                 "depth_info_topic": "/camera/camera/depth/camera_info",
                 "odom_topic": "/base/odom"}


def _resolver(pkg: str, exe: str):
    return [f"/opt/ros/bin/{pkg}/{exe}"] if pkg in _ROS_PACKAGES else None


@pytest.fixture
def share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The package's data, with hardware.launch.yaml's ``$(command '...')`` replaced by the
    command text it would run."""
    root = tmp_path / "share"
    (root / "launch").mkdir(parents=True)
    for d in sorted({*paths.DATA_DIRS, "sites"} - {"launch"}):
        if (SHARE / d).exists():
            (root / d).symlink_to(SHARE / d)
    stub, n = re.subn(r"\$\(command '([^']*)'\)", r"\1", HARDWARE.read_text())
    assert n == 1, f"hardware.launch.yaml: {n} $(command ...) values, 1 expected"
    (root / "launch" / "hardware.launch.yaml").write_text(stub)
    monkeypatch.setattr(paths, "share_dir", lambda: root)
    return root


def robot(**args: str) -> LaunchDescription:
    return load_launch(ROBOT, args, resolver=_resolver)


def inline_params(proc: NodeProcess) -> dict[str, object]:
    """The inline parameters a process gets (launch_ros's parameter files), merged."""
    out: dict[str, object] = {}
    for f in _inline_files(proc.cmd):
        (_, body), = yaml.safe_load(f.read_text()).items()
        out.update(body["ros__parameters"])
    return out


def all_params(proc: NodeProcess) -> dict[str, object]:
    """Every parameter a node gets: its sections of the parameter files and its inline
    parameters, in command-line order."""
    out: dict[str, object] = {}
    for i, a in enumerate(proc.cmd):
        if i and proc.cmd[i - 1] == "--params-file":
            for section, values in load_params_file(a).items():
                if section.strip("/") in ("**", proc.node_name):
                    out.update(values)
    return out


def remaps(proc: NodeProcess) -> dict[str, str]:
    pairs = [a for i, a in enumerate(proc.cmd) if i and proc.cmd[i - 1] == "-r"]
    return dict(p.split(":=", 1) for p in pairs if not p.startswith("__"))


def subscribed_sensor_topics(exe: str) -> set[str]:
    """The sensor topics (of SENSOR_ARGS) the node module names: what it subscribes."""
    spec = importlib.util.find_spec(f"sitebot.nodes.{exe}")
    assert spec is not None and spec.origin, f"no node module sitebot.nodes.{exe}"
    text = Path(spec.origin).read_text()
    return {t for t in SENSOR_ARGS.values() if f'"{t}"' in text}


# ------------------------------------------------------------------------------ the stack
def test_the_description_lists_the_stack(share):
    d = robot()
    assert {p.name for p in d} == DEFAULT_PROCESSES, sorted(p.name for p in d)
    assert len(d) == 16
    assert "survey_recorder" not in {p.name for p in robot(survey="false")}
    with_viz = robot(site_viz="true")
    assert {p.name for p in with_viz} == DEFAULT_PROCESSES | {"site_viz"}
    assert all(p.node_name == p.name for p in with_viz)


def test_console_false_drops_the_console(share):
    d = robot(console="false")
    assert {p.name for p in d} == DEFAULT_PROCESSES - {"web_console"}
    assert len(d) == 15
    # without the console nobody clicks Run: the executor runs plans as they come
    assert inline_params(d.process("task_executor"))["auto_execute"] is True
    assert inline_params(robot().process("task_executor"))["auto_execute"] is False


def test_the_arguments_and_their_defaults(share):
    d = robot()
    declared = {a.name for a in d.declared}
    assert {"site", "initial_pose", "hardware_plugin", "arm_controller_type", "console",
            "site_viz", *SENSOR_ARGS} <= declared
    assert d.arguments["site"] == "substation" and d.arguments["initial_pose"] == ""
    assert d.arguments["hardware_plugin"] == "mock_components/GenericSystem"
    assert {a: d.arguments[a] for a in SENSOR_ARGS} == {
        **{a: t for a, t in SENSOR_ARGS.items() if a != "odom_topic"},
        "odom_topic": "/diff_drive_controller/odom"}


def test_the_hardware_plugin_reaches_xacro(share):
    d = robot(hardware_plugin="acme_drives/AcmeSystem")
    urdf = inline_params(d.process("robot_state_publisher"))["robot_description"]
    assert urdf.startswith("xacro ") and urdf.endswith(
        "/urdf/sitebot.urdf.xacro hardware_plugin:=acme_drives/AcmeSystem"), urdf


# ---------------------------------------------------------------- site and initial pose
def declares(node: str, parameter: str) -> bool:
    from sitebot.nodes.schemas import schema_for
    return any(s.name == parameter for s in schema_for(node))


@pytest.mark.parametrize("site, start", [("/srv/sites/plant_7", "3.5 -1.25 1.5708"),
                                         ("substation", "dock_a"), ("datacentre", "")])
def test_every_autonomy_node_gets_the_site_and_the_initial_pose(share, site, start):
    """``site`` to all of them; ``initial_pose`` to each that tracks the robot's pose (it
    declares the parameter), and to no other."""
    d = robot(site=site, initial_pose=start, site_viz="true")
    posed = set()
    for name in AUTONOMY:
        got = inline_params(d.process(name))
        assert got.get("site") == site, name
        assert ("initial_pose" in got) == declares(name, "initial_pose"), name
        if "initial_pose" in got:
            assert got["initial_pose"] == start, name
            posed.add(name)
    assert posed >= {"safety_supervisor", "localization", "navigation", "spatial_perception",
                     "arm_planner", "task_executor", "web_console"}, posed
    assert inline_params(d.process("map_server")) == {"site": site}


def test_no_node_gets_a_world_parameter(share):
    d = robot(site_viz="true")
    for proc in d:
        if proc.node_name is not None:
            assert "world" not in all_params(proc), proc.name


# ------------------------------------------------------------------------ sensor topics
def test_the_driver_topics_are_mapped_onto_what_each_node_subscribes(share):
    d = robot(site_viz="true", **DRIVER_TOPICS)
    to_arg = {t: a for a, t in SENSOR_ARGS.items()}
    mapped = 0
    for proc in d:
        if proc.package != "sitebot":
            assert remaps(proc) == {}, proc.name
            continue
        wanted = subscribed_sensor_topics(proc.executable)
        assert remaps(proc) == {t: DRIVER_TOPICS[to_arg[t]] for t in wanted}, proc.name
        mapped += len(wanted)
    # scan 5, odom 8, imu 2, colour image 4, colour info 2, depth image 1, depth info 1
    assert mapped == 23


def test_the_defaults_map_each_topic_onto_itself_but_odometry(share):
    d = robot()
    for name in ("safety_supervisor", "localization", "spatial_perception"):
        r = remaps(d.process(name))
        assert r.pop("odom") == "/diff_drive_controller/odom", name
        assert all(k == v for k, v in r.items()), (name, r)


# ---------------------------------------------------------------------- ROS's own readers
def test_inline_parameters_reach_the_nodes_through_rcl(share):
    """As test_rcl_round_trip.py does for the files sitebot launch can run: each inline
    parameter file, read by rcl's own parser, gives the node what the launch file meant."""
    d = robot(initial_pose="3.5 -1.25 1.5708", site_viz="true")
    checked = 0
    for proc in d:
        for f in _inline_files(proc.cmd):
            (_, body), = yaml.safe_load(f.read_text()).items()
            got = _rcl_values(f, proc.node_name, proc.namespace)
            for name, value in body["ros__parameters"].items():
                assert name in got and _same(got[name], value), (proc.name, name, value,
                                                                 got.get(name))
                checked += 1
    # robot_state_publisher 1, control_loop 2, map_server 1, safety_supervisor 8,
    # localization 4, camera_perception 1, spatial_perception 2, navigation 4,
    # arm_planner 2, task_planner 1, task_executor 5, web_console 7, site_viz 1,
    # survey_recorder 1
    assert checked == 40, checked


def test_the_node_parameters_pass_the_schemas(share):
    """What ``sitebot check`` does for a launch file it can resolve."""
    from sitebot.apps.check import validate_launch_params
    from sitebot.nodes.schemas import NODE_SCHEMAS
    d = robot(site_viz="true")
    validated = set(validate_launch_params(d))
    assert validated == {p.name for p in d if p.package == "sitebot"
                         and p.executable in NODE_SCHEMAS}
    assert AUTONOMY | {"control_loop"} <= validated, validated


def test_sitebot_launch_refuses_it_for_the_xacro_call_only():
    """The real file: ``sitebot launch`` stops at hardware.launch.yaml's $(command ...),
    naming it; ``sitebot check`` reports it checked in structure."""
    with pytest.raises(LaunchError) as e:
        robot()
    assert "$(command ...)" in str(e.value) and "hardware.launch.yaml" in str(e.value)
    from sitebot.apps.check import check_file
    result = check_file(ROBOT)
    assert result.status == "OK" and "structure checked" in result.text, result.line()
