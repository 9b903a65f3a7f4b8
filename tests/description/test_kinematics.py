"""Forward kinematics (sitebot.description.kinematics): quaternions against transforms3d, joint transforms
of the real robot description against PyBullet's link poses."""
from __future__ import annotations

import math
from typing import Iterator, Mapping

import numpy as np
import pybullet as pb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transforms3d.euler import euler2quat

from sitebot.description.kinematics import JointTransformer, Transform, transform_matrix
from sitebot.description.urdf import RobotDescription, load_robot_description
from sitebot.sim.robot import SimRobot, SimRobotConfig
from sitebot.types import (quaternion_multiply, quaternion_to_yaw, rpy_to_quaternion,
                           yaw_to_quaternion)

ANGLE = st.floats(min_value=-math.pi, max_value=math.pi, allow_nan=False, allow_infinity=False)
PROPS = settings(derandomize=True, max_examples=200, deadline=None)

ARM_Q = (0.3, -0.7, 1.1, 0.5, -0.9, 1.3)   # within every arm joint's limits [rad]


@pytest.fixture(scope="module")
def desc() -> RobotDescription:
    return load_robot_description()


@pytest.fixture(scope="module")
def jt(desc: RobotDescription) -> JointTransformer:
    return JointTransformer(desc.joints.values())


def _wrap(a: float) -> float:
    return math.atan2(math.sin(a), math.cos(a))


def _chain(transforms: list[Transform], root: str, tip: str) -> np.ndarray:
    """Compose parent->child transforms from ``root`` down to ``tip``."""
    by_child = {t.child: t for t in transforms}
    assert len(by_child) == len(transforms), "a frame has two parents"
    m = np.eye(4)
    frame = tip
    while frame != root:
        t = by_child[frame]
        m = transform_matrix(t) @ m
        frame = t.parent
    return m


def _fk(jt: JointTransformer, positions: Mapping[str, float], tip: str,
        root: str = "base_footprint") -> np.ndarray:
    return _chain(jt.static_transforms() + jt.transforms(positions), root, tip)


def _pose_matrix(position, orientation_xyzw) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = np.array(pb.getMatrixFromQuaternion(orientation_xyzw)).reshape(3, 3)
    m[:3, 3] = position
    return m


# ---------------------------------------------------------------------------- quaternions
@PROPS
@given(ANGLE, ANGLE, ANGLE)
def test_rpy_to_quaternion_matches_transforms3d(roll: float, pitch: float, yaw: float) -> None:
    w, x, y, z = euler2quat(roll, pitch, yaw, "sxyz")
    q = rpy_to_quaternion(roll, pitch, yaw)
    assert q == pytest.approx((x, y, z, w), abs=1e-12)
    assert math.fsum(c * c for c in q) == pytest.approx(1.0, abs=1e-12)


@PROPS
@given(st.floats(min_value=-20.0, max_value=20.0, allow_nan=False))
def test_yaw_quaternion_round_trip(yaw: float) -> None:
    q = yaw_to_quaternion(yaw)
    assert q == pytest.approx(rpy_to_quaternion(0.0, 0.0, yaw), abs=1e-12)
    assert _wrap(quaternion_to_yaw(q) - yaw) == pytest.approx(0.0, abs=1e-9)


@PROPS
@given(st.floats(min_value=-1.4, max_value=1.4), st.floats(min_value=-1.4, max_value=1.4), ANGLE)
def test_quaternion_to_yaw_of_tilted_rotation(roll: float, pitch: float, yaw: float) -> None:
    # for |pitch| < pi/2 the heading of Rz(yaw) Ry(pitch) Rx(roll) is exactly yaw
    got = quaternion_to_yaw(rpy_to_quaternion(roll, pitch, yaw))
    assert _wrap(got - yaw) == pytest.approx(0.0, abs=1e-9)


def test_quaternion_multiply_composes_rotations() -> None:
    a = rpy_to_quaternion(0.0, 0.0, 0.4)
    b = rpy_to_quaternion(0.0, 0.0, 0.5)
    assert quaternion_multiply(a, b) == pytest.approx(rpy_to_quaternion(0.0, 0.0, 0.9), abs=1e-12)
    r = rpy_to_quaternion(0.3, -0.2, 1.1)
    m = transform_matrix(Transform("a", "b", (0, 0, 0), quaternion_multiply(r, r)))
    mr = transform_matrix(Transform("a", "b", (0, 0, 0), r))
    assert np.allclose(m, mr @ mr, atol=1e-12)


# ---------------------------------------------------------------------------- the robot
def test_static_transforms_are_exactly_the_fixed_joints(desc: RobotDescription,
                                                        jt: JointTransformer) -> None:
    fixed = [j for j in desc.joints.values() if j.type.value == "fixed"]
    moving = [j for j in desc.joints.values() if j.type.value != "fixed"]
    static = jt.static_transforms()
    assert len(fixed) == 13 and len(static) == len(fixed)
    assert {(t.parent, t.child) for t in static} == {(j.parent, j.child) for j in fixed}
    by_child = {t.child: t for t in static}
    for j in fixed:
        t = by_child[j.child]
        assert t.translation == tuple(j.origin_xyz)
        assert t.rotation_xyzw == pytest.approx(rpy_to_quaternion(*j.origin_rpy), abs=1e-15)
    assert set(jt.moving_joint_names) == {j.name for j in moving}
    assert len(jt.transforms({})) == len(moving) == 10
    # the fixed camera tilt: 0.2618 rad pitch about y
    cam = by_child["camera_link"]
    assert cam.rotation_xyzw == pytest.approx((0.0, math.sin(0.1309), 0.0, math.cos(0.1309)))


def test_prefix_is_prepended_to_every_frame(desc: RobotDescription) -> None:
    pjt = JointTransformer(desc.joints.values(), prefix="robot2/")
    frames = [t for t in pjt.static_transforms() + pjt.transforms({})]
    assert len(frames) == 23
    assert all(t.parent.startswith("robot2/") and t.child.startswith("robot2/") for t in frames)


def test_tcp_at_zero_is_the_sum_of_the_origins(jt: JointTransformer) -> None:
    m = _fk(jt, {}, "gripper_tcp")
    # base 0.1 + arm mount 0.21 + 0.06 + 0.12 + 0.35 + 0.3 + 0.08 + 0.08 + tool 0.03 + tcp 0.085
    assert m[:3, 3] == pytest.approx((0.08, 0.0, 1.415), abs=1e-12)
    assert np.allclose(m[:3, :3], np.eye(3), atol=1e-12)


def test_revolute_joint_rotates_about_its_axis(jt: JointTransformer) -> None:
    # arm_joint_2 (axis y) at +90 deg tips the rest of the arm (1.065 m above it) to +x
    m0 = _fk(jt, {}, "gripper_tcp")
    m = _fk(jt, {"arm_joint_2": math.pi / 2}, "gripper_tcp")
    shoulder_z = 0.1 + 0.21 + 0.06 + 0.12
    reach = m0[2, 3] - shoulder_z
    assert reach == pytest.approx(0.925)
    assert m[:3, 3] == pytest.approx((0.08 + reach, 0.0, shoulder_z), abs=1e-12)
    # arm_joint_1 (axis z) at +90 deg with the arm tipped: the tcp swings to +y
    m = _fk(jt, {"arm_joint_1": math.pi / 2, "arm_joint_2": math.pi / 2}, "gripper_tcp")
    assert m[:3, 3] == pytest.approx((0.08, reach, shoulder_z), abs=1e-12)


def test_non_finite_position_is_taken_as_zero(jt: JointTransformer) -> None:
    assert np.allclose(_fk(jt, {"arm_joint_3": math.nan}, "gripper_tcp"),
                       _fk(jt, {}, "gripper_tcp"), atol=0)


def test_prismatic_finger_and_its_mimic(jt: JointTransformer) -> None:
    ts = {t.child: t for t in jt.transforms({"gripper_left_finger_joint": 0.02})}
    left, right = ts["gripper_left_finger_link"], ts["gripper_right_finger_link"]
    assert left.translation == pytest.approx((0.0, 0.02, 0.04), abs=1e-15)
    assert right.translation == pytest.approx((0.0, -0.02, 0.04), abs=1e-15)   # axis (0,-1,0)
    assert left.rotation_xyzw == right.rotation_xyzw == (0.0, 0.0, 0.0, 1.0)
    # an explicit position of the mimic joint wins over its leader
    ts = {t.child: t for t in jt.transforms({"gripper_left_finger_joint": 0.02,
                                              "gripper_right_finger_joint": 0.035})}
    assert ts["gripper_right_finger_link"].translation == pytest.approx((0.0, -0.035, 0.04))
    # fingers apart by twice the opening
    m_l = _fk(jt, {"gripper_left_finger_joint": 0.03}, "gripper_left_finger_link")
    m_r = _fk(jt, {"gripper_left_finger_joint": 0.03}, "gripper_right_finger_link")
    assert np.linalg.norm(m_l[:3, 3] - m_r[:3, 3]) == pytest.approx(0.06, abs=1e-12)


# ---------------------------------------------------------------------------- vs PyBullet
@pytest.fixture(scope="module")
def bullet(desc: RobotDescription) -> Iterator[SimRobot]:
    cid = pb.connect(pb.DIRECT)
    try:
        yield SimRobot(cid, desc, (0.0, 0.0, 0.0), SimRobotConfig(), np.random.default_rng(0))
    finally:
        pb.disconnect(cid)


def _bullet_pose_in_base(robot: SimRobot, positions: Mapping[str, float], link: str) -> np.ndarray:
    cid, body = robot.client_id, robot.body_id
    for name in robot.description.movable_joints:
        pb.resetJointState(body, robot.joint_index(name), positions.get(name, 0.0), 0.0,
                           physicsClientId=cid)
    base = robot.base_pose()
    tip = robot.link_pose(link)
    t_base = _pose_matrix((base.x_m, base.y_m, base.z_m), base.orientation_xyzw)
    t_tip = _pose_matrix(tip.position_m, tip.orientation_xyzw)
    return np.linalg.inv(t_base) @ t_tip


@pytest.mark.parametrize("arm", [(0.0,) * 6, ARM_Q], ids=["zero", "bent"])
def test_tcp_matches_pybullet(bullet: SimRobot, jt: JointTransformer, desc: RobotDescription,
                              arm: tuple[float, ...]) -> None:
    q = dict(zip(desc.arm_joints, arm))
    ours = _fk(jt, q, "gripper_tcp")
    theirs = _bullet_pose_in_base(bullet, q, "gripper_tcp")
    assert np.linalg.norm(ours[:3, 3] - theirs[:3, 3]) < 0.002
    assert np.allclose(ours[:3, :3], theirs[:3, :3], atol=1e-3)
    if arm != (0.0,) * 6:   # the bent pose really moved the tcp
        assert np.linalg.norm(ours[:3, 3] - (0.08, 0.0, 1.415)) > 0.2


def test_fingers_match_pybullet(bullet: SimRobot, jt: JointTransformer,
                                desc: RobotDescription) -> None:
    q = dict(zip(desc.arm_joints, ARM_Q))
    q["gripper_left_finger_joint"] = 0.025
    q_bullet = dict(q, gripper_right_finger_joint=0.025)   # PyBullet does not apply <mimic>
    for link in ("gripper_left_finger_link", "gripper_right_finger_link", "camera_link",
                 "laser_link"):
        ours = _fk(jt, q, link)
        theirs = _bullet_pose_in_base(bullet, q_bullet, link)
        assert np.linalg.norm(ours[:3, 3] - theirs[:3, 3]) < 0.002, link
        assert np.allclose(ours[:3, :3], theirs[:3, :3], atol=1e-3), link
