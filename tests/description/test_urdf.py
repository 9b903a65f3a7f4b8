"""Robot description: the shipped xacro, and the validator on broken descriptions."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from sitebot.description.urdf import (JointType, RobotDescription, load_robot_description,
                                      parse_urdf, write_urdf_file)
from sitebot.errors import UrdfError

REQUIRED_LINKS = (
    "base_footprint", "base_link", "left_wheel_link", "right_wheel_link", "laser_link",
    "imu_link", "camera_link", "camera_color_optical_frame", "camera_depth_optical_frame",
    "arm_base_link", *(f"arm_link_{i}" for i in range(1, 7)), "tool0",
    "gripper_left_finger_link", "gripper_right_finger_link", "gripper_tcp",
)


@pytest.fixture(scope="module")
def desc() -> RobotDescription:
    return load_robot_description()


def _rpy_matrix(rpy: tuple[float, float, float]) -> np.ndarray:
    r, p, y = rpy
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _fk(desc: RobotDescription, link: str) -> np.ndarray:
    """4x4 pose of ``link`` in the root frame, all joints at zero."""
    by_child = {j.child: j for j in desc.joints.values()}
    chain = []
    while link != desc.root_link:
        j = by_child[link]
        chain.append(j)
        link = j.parent
    t = np.eye(4)
    for j in reversed(chain):
        step = np.eye(4)
        step[:3, :3] = _rpy_matrix(j.origin_rpy)
        step[:3, 3] = j.origin_xyz
        t = t @ step
    return t


# ---------------------------------------------------------------- the shipped robot
def test_default_description_has_the_required_names(desc: RobotDescription) -> None:
    assert desc.root_link == "base_footprint"
    assert desc.prefix == ""
    for link in REQUIRED_LINKS:
        assert link in desc.links, link
    assert desc.arm_joints == tuple(f"arm_joint_{i}" for i in range(1, 7))
    assert desc.wheel_joints == ("left_wheel_joint", "right_wheel_joint")
    assert desc.gripper_joints == ("gripper_left_finger_joint", "gripper_right_finger_joint")
    assert desc.actuated_joints == desc.wheel_joints + desc.arm_joints + (
        "gripper_left_finger_joint",)
    assert desc.joints["base_joint"].parent == "base_footprint"
    assert desc.joints["base_joint"].child == "base_link"


def test_joint_types_axes_and_limits(desc: RobotDescription) -> None:
    for name in desc.arm_joints:
        j = desc.joints[name]
        assert j.type is JointType.REVOLUTE
        assert j.lower < 0.0 < j.upper
        assert 0.5 <= j.velocity_limit <= 4.0
        assert 5.0 <= j.effort_limit <= 200.0
    for name in desc.wheel_joints:
        j = desc.joints[name]
        assert j.type is JointType.CONTINUOUS
        assert j.axis == (0.0, 1.0, 0.0)  # +velocity drives forward (+x)
        assert j.lower is None and j.upper is None
        assert j.velocity_limit == pytest.approx(15.0)
        assert j.effort_limit == pytest.approx(20.0)
    left, right = (desc.joints[n] for n in desc.gripper_joints)
    assert left.type is right.type is JointType.PRISMATIC
    assert (left.lower, left.upper) == (0.0, pytest.approx(0.04))
    assert left.mimic is None
    assert right.mimic is not None and right.mimic.joint == left.name
    assert right.mimic.multiplier == 1.0
    assert np.dot(left.axis, right.axis) == pytest.approx(-1.0)  # fingers move apart


def test_geometry_is_read_from_the_urdf(desc: RobotDescription) -> None:
    assert desc.wheel_radius_m == pytest.approx(0.10)
    assert desc.wheel_separation_m == pytest.approx(0.53)
    # base ~0.6 m across, camera on a mast at 1.2-1.4 m, lidar low on the base
    base = desc.link_infos["base_link"].collisions[0]
    assert base.kind == "box" and base.size[0] == pytest.approx(0.6)
    outer_width = desc.wheel_separation_m + 0.05
    assert 0.5 <= outer_width <= 0.7
    cam = _fk(desc, "camera_link")
    assert 1.2 <= cam[2, 3] <= 1.4
    forward = cam[:3, 0]
    assert forward[0] > 0.9 and -0.5 < forward[2] < -0.1  # looks forward, slightly down
    assert 0.2 <= _fk(desc, "laser_link")[2, 3] <= 0.5


def test_optical_frames_follow_the_optical_convention(desc: RobotDescription) -> None:
    cam = _fk(desc, "camera_link")[:3, :3]
    for frame in ("camera_color_optical_frame", "camera_depth_optical_frame"):
        opt = _fk(desc, frame)[:3, :3]
        rel = cam.T @ opt  # optical axes in camera_link coordinates
        np.testing.assert_allclose(rel[:, 2], [1, 0, 0], atol=1e-9)   # z forward
        np.testing.assert_allclose(rel[:, 0], [0, -1, 0], atol=1e-9)  # x right
        np.testing.assert_allclose(rel[:, 1], [0, 0, -1], atol=1e-9)  # y down


def test_masses_and_inertias_are_realistic(desc: RobotDescription) -> None:
    infos = desc.link_infos
    arm_links = ["arm_base_link", *(f"arm_link_{i}" for i in range(1, 7))]
    assert 40.0 <= infos["base_link"].mass_kg <= 60.0
    for link in arm_links:
        assert 0.2 <= infos[link].mass_kg <= 5.0, link
    total = sum(i.mass_kg for i in infos.values() if i.mass_kg)
    assert 55.0 <= total <= 80.0
    # inertia matches the primitive: wheel = solid cylinder about y
    w = infos["left_wheel_link"]
    assert w.inertia[3] == pytest.approx(0.5 * 2.0 * 0.1 ** 2)
    frames = [n for n, i in infos.items() if i.mass_kg is None]
    assert set(frames) == {"base_footprint", "imu_link", "camera_color_optical_frame",
                           "camera_depth_optical_frame", "tool0", "gripper_tcp"}


def test_ros2_control_block(desc: RobotDescription) -> None:
    root = ET.fromstring(desc.xml)
    blocks = root.findall("ros2_control")
    assert len(blocks) == 1
    rc = blocks[0]
    assert rc.get("name") == "SitebotSystem" and rc.get("type") == "system"
    assert rc.find("hardware/plugin").text.strip() == "mock_components/GenericSystem"
    joints = {j.get("name"): j for j in rc.findall("joint")}

    def ifaces(j: ET.Element, kind: str) -> list[str]:
        return [i.get("name") for i in j.findall(kind)]

    for name in desc.arm_joints + ("gripper_left_finger_joint",):
        assert ifaces(joints[name], "command_interface") == ["position", "velocity"]
        assert ifaces(joints[name], "state_interface") == ["position", "velocity", "effort"]
    for name in desc.wheel_joints:
        assert ifaces(joints[name], "command_interface") == ["velocity"]
        assert ifaces(joints[name], "state_interface") == ["position", "velocity"]
    assert ifaces(joints["gripper_right_finger_joint"], "command_interface") == []
    assert set(joints) == set(desc.actuated_joints) | {"gripper_right_finger_joint"}


def test_xacro_arguments(desc: RobotDescription) -> None:
    d = load_robot_description(mappings={"prefix": "r2_", "hardware_plugin": "my/Plugin",
                                         "use_sim": "true"})
    assert d.prefix == "r2_"
    assert d.root_link == "r2_base_footprint"
    assert len(d.links) == len(desc.links) and len(d.joints) == len(desc.joints)
    assert all(n.startswith("r2_") for n in d.links)
    assert all(n.startswith("r2_") for n in d.joints)
    assert d.arm_joints[0] == "r2_arm_joint_1"
    assert d.joints["r2_gripper_right_finger_joint"].mimic.joint == "r2_gripper_left_finger_joint"
    assert d.wheel_radius_m == desc.wheel_radius_m
    assert d.wheel_separation_m == desc.wheel_separation_m
    assert d.joint("arm_joint_3").name == "r2_arm_joint_3"
    rc = ET.fromstring(d.xml).find("ros2_control")
    assert rc.find("hardware/plugin").text.strip() == "my/Plugin"
    assert all(j.get("name").startswith("r2_") for j in rc.findall("joint"))
    params = {p.get("name"): p.text for p in rc.findall("hardware/param")}
    assert params["use_sim"] == "true"
    # use_sim adds PyBullet contact parameters to the 2 wheels and 2 casters
    assert len(ET.fromstring(d.xml).findall("link/contact")) == 4
    assert ET.fromstring(desc.xml).findall("link/contact") == []


def test_write_urdf_file_round_trips(desc: RobotDescription, tmp_path: Path) -> None:
    path = write_urdf_file(desc, tmp_path)
    assert path.parent == tmp_path and path.suffix == ".urdf"
    again = load_robot_description(path)
    assert again.links == desc.links
    assert again.joints == desc.joints
    sim = write_urdf_file(desc, tmp_path, frame_mass_kg=1e-3)
    assert sim != path
    heavy = load_robot_description(sim)
    assert all(i.mass_kg is not None for i in heavy.link_infos.values())
    assert heavy.link_infos["tool0"].mass_kg == pytest.approx(1e-3)


def test_description_is_immutable_and_hashable(desc: RobotDescription) -> None:
    with pytest.raises(Exception):
        desc.root_link = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        desc.joints["new"] = desc.joints["arm_joint_1"]  # type: ignore[index]
    assert hash(desc) == hash(load_robot_description())
    assert desc == load_robot_description()


# ---------------------------------------------------------------- broken descriptions
GOOD = """<?xml version="1.0"?>
<robot name="t">
  <link name="base"/>
  <link name="arm">
    <inertial>
      <mass value="1.0"/>
      <inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/>
    </inertial>
  </link>
  <joint name="j1" type="revolute">
    <parent link="base"/>
    <child link="arm"/>
    <axis xyz="0 0 1"/>
    <limit lower="-1" upper="1" velocity="1" effort="10"/>
  </joint>
</robot>
"""


def _write(tmp_path: Path, text: str, name: str = "r.urdf") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_good_minimal_urdf_loads(tmp_path: Path) -> None:
    d = load_robot_description(_write(tmp_path, GOOD))
    assert d.root_link == "base" and d.links == ("base", "arm")
    assert d.joints["j1"].line == _line_of(GOOD, '<joint name="j1"')


@pytest.mark.parametrize("old,new,needle,words", [
    ('<mass value="1.0"/>', '<mass value="0.0"/>', "<mass", ["link 'arm'", "mass"]),
    ('izz="0.01"', 'izz="-0.01"', "<inertia ", ["link 'arm'", "positive definite"]),
    ('izz="0.01"', 'izz="0.05"', "<inertia ", ["link 'arm'", "triangle"]),
    ('<child link="arm"/>', '<child link="hand"/>', '<joint name="j1"', ["joint 'j1'", "'hand'"]),
    ('<limit lower="-1" upper="1" velocity="1" effort="10"/>', '', '<joint name="j1"',
     ["joint 'j1'", "<limit>"]),
    ('lower="-1" upper="1"', 'lower="1" upper="-1"', "<limit", ["joint 'j1'", "lower"]),
    ('velocity="1"', 'velocity="0"', "<limit", ["joint 'j1'", "velocity"]),
    ('effort="10"', '', "<limit", ["joint 'j1'", "effort"]),
    ('type="revolute"', 'type="hinge"', '<joint name="j1"', ["joint 'j1'", "revolute"]),
    ('<axis xyz="0 0 1"/>', '<axis xyz="0 0 x"/>', "<axis", ["joint 'j1'", "axis"]),
])
def test_broken_urdf_names_file_line_and_element(tmp_path: Path, old: str, new: str,
                                                 needle: str, words: list[str]) -> None:
    text = GOOD.replace(old, new)
    assert text != GOOD
    path = _write(tmp_path, text)
    with pytest.raises(UrdfError) as err:
        load_robot_description(path)
    e = err.value
    assert e.file == str(path.resolve())
    assert e.where == _line_of(text, needle)
    msg = str(e)
    assert msg.startswith(f"{path.resolve()}:{e.where}: ")
    for w in words:
        assert w in msg


def test_malformed_xml_gives_the_line(tmp_path: Path) -> None:
    text = GOOD.replace('<link name="base"/>', '<link name="base">')
    path = _write(tmp_path, text)
    with pytest.raises(UrdfError) as err:
        load_robot_description(path)
    assert "malformed XML" in str(err.value)
    assert isinstance(err.value.where, int) and err.value.where > 1


def test_structure_errors(tmp_path: Path) -> None:
    two_roots = GOOD.replace('<link name="base"/>', '<link name="base"/>\n  <link name="extra"/>')
    with pytest.raises(UrdfError, match="2 root links"):
        load_robot_description(_write(tmp_path, two_roots))
    cycle = GOOD.replace("</robot>", """  <link name="c"/>
  <joint name="j2" type="fixed"><parent link="c"/><child link="base"/></joint>
  <joint name="j3" type="fixed"><parent link="arm"/><child link="c"/></joint>
</robot>""")
    with pytest.raises(UrdfError, match="cycle"):
        load_robot_description(_write(tmp_path, cycle))
    two_parents = GOOD.replace("</robot>", """  <joint name="j2" type="fixed"><parent link="base"/><child link="arm"/></joint>
</robot>""")
    with pytest.raises(UrdfError, match="child of two joints") as err:
        load_robot_description(_write(tmp_path, two_parents))
    assert err.value.where == _line_of(two_parents, '<joint name="j2"')
    dup = GOOD.replace('<link name="base"/>', '<link name="base"/>\n  <link name="base"/>')
    with pytest.raises(UrdfError, match="duplicate link"):
        load_robot_description(_write(tmp_path, dup))
    mimic = GOOD.replace("</joint>", '  <mimic joint="nope"/>\n  </joint>')
    with pytest.raises(UrdfError, match="'nope'"):
        load_robot_description(_write(tmp_path, mimic))
    not_robot = "<?xml version='1.0'?>\n<sdf/>\n"
    with pytest.raises(UrdfError, match="<robot>"):
        load_robot_description(_write(tmp_path, not_robot))


def test_continuous_joint_needs_velocity_and_effort_only(tmp_path: Path) -> None:
    text = GOOD.replace('type="revolute"', 'type="continuous"').replace(
        'lower="-1" upper="1" ', '')
    d = load_robot_description(_write(tmp_path, text))
    assert d.joints["j1"].velocity_limit == 1.0 and d.joints["j1"].lower is None
    with pytest.raises(UrdfError, match="effort"):
        load_robot_description(_write(tmp_path, text.replace(' effort="10"', '')))


def test_broken_xacro_names_the_file(tmp_path: Path) -> None:
    src = tmp_path / "bad.urdf.xacro"
    src.write_text('<?xml version="1.0"?>\n<robot xmlns:xacro="http://www.ros.org/wiki/xacro" '
                   'name="b">\n  <link name="a">\n</robot>\n')
    with pytest.raises(UrdfError) as err:
        load_robot_description(src)
    assert err.value.file == str(src) and err.value.where == 4
    # an element error after expansion names the joint (no source line exists)
    src.write_text(GOOD.replace("<robot", '<robot xmlns:xacro="http://www.ros.org/wiki/xacro"')
                   .replace('velocity="1"', 'velocity="${-1}"'))
    with pytest.raises(UrdfError) as err:
        load_robot_description(src)
    assert err.value.where == "joint 'j1'"
    assert "expanded URDF" in str(err.value)
    src.write_text(GOOD.replace('<mass value="1.0"/>', '<mass value="${undefined_property}"/>'))
    with pytest.raises(UrdfError, match="undefined_property"):
        load_robot_description(src)


def test_loader_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(UrdfError, match="not found"):
        load_robot_description(tmp_path / "missing.urdf")
    with pytest.raises(UrdfError, match="only to .xacro"):
        load_robot_description(_write(tmp_path, GOOD), mappings={"prefix": "a_"})


def test_parse_urdf_from_text() -> None:
    d = parse_urdf(GOOD)
    assert d.source == Path("<string>") and d.movable_joints == ("j1",)
    with pytest.raises(UrdfError, match="wheel"):
        d.wheel_joints
