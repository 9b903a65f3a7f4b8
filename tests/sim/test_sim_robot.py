"""The simulated robot body: stability, drive kinematics, arm, isolation of simulations."""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import pybullet as pb
import pytest

from sitebot.control.hardware import CommandMode, HardwareCommand
from sitebot.description.urdf import RobotDescription, load_robot_description, write_urdf_file
from sitebot.errors import SimulationError
from sitebot.sim.robot import STOW_ARM_POSITIONS_RAD, SimHardware, SimRobot, SimRobotConfig

STEP_S = 1.0 / 240.0


@pytest.fixture(scope="module")
def desc() -> RobotDescription:
    return load_robot_description()


def _new_world() -> int:
    cid = pb.connect(pb.DIRECT)
    pb.setGravity(0, 0, -9.81, physicsClientId=cid)
    pb.setTimeStep(STEP_S, physicsClientId=cid)
    plane = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=cid)
    pb.createMultiBody(0, plane, physicsClientId=cid)
    return cid


@pytest.fixture
def world() -> Iterator[int]:
    cid = _new_world()
    yield cid
    pb.disconnect(cid)


def _step(cid: int, seconds: float) -> None:
    for _ in range(int(round(seconds / STEP_S))):
        pb.stepSimulation(physicsClientId=cid)


def _roll_pitch_deg(robot: SimRobot) -> tuple[float, float]:
    roll, pitch, _ = pb.getEulerFromQuaternion(robot.base_pose().orientation_xyzw)
    return math.degrees(roll), math.degrees(pitch)


def _wheels(robot: SimRobot, left_radps: float, right_radps: float) -> SimHardware:
    hw = SimHardware(robot, robot.description.wheel_joints)
    hw.write(HardwareCommand(CommandMode.VELOCITY, [left_radps, right_radps]))
    return hw


def test_robot_stands_still(world: int, desc: RobotDescription) -> None:
    robot = SimRobot(world, desc, (1.0, -2.0, 0.7), SimRobotConfig(), np.random.default_rng(0))
    start = robot.base_pose()
    assert (start.x_m, start.y_m, start.z_m) == pytest.approx((1.0, -2.0, 0.0))
    assert start.yaw_rad == pytest.approx(0.7)
    _step(world, 5.0)
    end = robot.base_pose()
    drift = math.hypot(end.x_m - start.x_m, end.y_m - start.y_m)
    assert drift < 0.01
    assert abs(end.z_m) < 0.005
    roll, pitch = _roll_pitch_deg(robot)
    assert abs(roll) < 1.0 and abs(pitch) < 1.0
    assert abs(math.degrees(end.yaw_rad - start.yaw_rad)) < 0.1
    tw = robot.base_twist()
    assert np.linalg.norm(tw.linear_mps) < 1e-3 and np.linalg.norm(tw.angular_radps) < 1e-2


def test_zero_velocity_command_holds_without_creep(world: int, desc: RobotDescription) -> None:
    robot = SimRobot(world, desc, (0.0, 0.0, 0.0))
    hw = _wheels(robot, 0.0, 0.0)
    for _ in range(20 * 30):  # 20 s, a zero command every 30 ms like a control loop
        hw.write(HardwareCommand(CommandMode.VELOCITY, [0.0, 0.0]))
        _step(world, 0.03)  # ~7 steps
    assert math.hypot(robot.base_pose().x_m, robot.base_pose().y_m) < 0.002


def test_forward_drive_matches_diff_drive_kinematics(world: int, desc: RobotDescription) -> None:
    robot = SimRobot(world, desc, (0.0, 0.0, math.pi / 2))
    speed_mps = 0.5
    wheel_radps = speed_mps / desc.wheel_radius_m
    _wheels(robot, wheel_radps, wheel_radps)
    _step(world, 0.5)  # accelerate
    p0 = robot.base_pose()
    _step(world, 4.0)
    p1 = robot.base_pose()
    measured = math.hypot(p1.x_m - p0.x_m, p1.y_m - p0.y_m) / 4.0
    assert measured == pytest.approx(speed_mps, rel=0.05)
    assert p1.y_m - p0.y_m > 1.9  # heading pi/2: forward is world +y
    assert abs(p1.x_m - p0.x_m) < 0.05
    tw = robot.base_twist()  # in the base frame: all forward
    assert tw.linear_mps[0] == pytest.approx(speed_mps, rel=0.05)
    assert abs(tw.linear_mps[1]) < 0.01
    roll, pitch = _roll_pitch_deg(robot)
    assert abs(roll) < 1.0 and abs(pitch) < 1.0


def test_rotation_rate_matches_diff_drive_kinematics(world: int, desc: RobotDescription) -> None:
    robot = SimRobot(world, desc, (0.0, 0.0, 0.0))
    yaw_rate = 0.5  # rad/s, turning left in place
    wheel = yaw_rate * desc.wheel_separation_m / 2.0 / desc.wheel_radius_m
    _wheels(robot, -wheel, wheel)
    _step(world, 0.5)
    yaws = []
    for _ in range(2 * 240):
        pb.stepSimulation(physicsClientId=world)
        yaws.append(robot.base_pose().yaw_rad)
    measured = (np.unwrap(yaws)[-1] - yaws[0]) / ((len(yaws) - 1) * STEP_S)
    assert measured == pytest.approx(yaw_rate, rel=0.05)
    pose = robot.base_pose()
    assert math.hypot(pose.x_m, pose.y_m) < 0.05  # turned on the spot


def test_arc_drive_and_velocity_clipping(world: int, desc: RobotDescription) -> None:
    robot = SimRobot(world, desc, (0.0, 0.0, 0.0))
    hw = _wheels(robot, 100.0, 100.0)  # clipped to the URDF limit (15 rad/s)
    _step(world, 1.0)
    v = hw.read(1.0).velocities
    limit = desc.joints["left_wheel_joint"].velocity_limit
    np.testing.assert_allclose(v, [limit, limit], rtol=0.02)


def test_brake_stops_and_holds(world: int, desc: RobotDescription) -> None:
    robot = SimRobot(world, desc, (0.0, 0.0, 0.0))
    hw = _wheels(robot, 8.0, 8.0)
    _step(world, 1.5)
    assert robot.base_twist().linear_mps[0] == pytest.approx(0.8, rel=0.05)
    for _ in range(100):  # brake every 10 ms for 1 s
        hw.write(HardwareCommand.brake(2))
        _step(world, 10 * STEP_S)
    stopped = robot.base_pose()
    assert abs(robot.base_twist().linear_mps[0]) < 0.01
    _step(world, 5.0)
    later = robot.base_pose()
    assert math.hypot(later.x_m - stopped.x_m, later.y_m - stopped.y_m) < 0.002
    roll, pitch = _roll_pitch_deg(robot)
    assert abs(pitch) < 1.0


def test_arm_and_gripper_reach_position_targets(world: int, desc: RobotDescription) -> None:
    robot = SimRobot(world, desc, (0.0, 0.0, 0.0))
    hw = SimHardware(robot)
    assert hw.joint_names == desc.actuated_joints
    state = hw.read(0.0)
    np.testing.assert_allclose(state.positions[2:8], STOW_ARM_POSITIONS_RAD, atol=1e-3)
    target = np.array([0.6, 0.2, 1.2, -0.4, 0.8, 1.0])
    modes = [CommandMode.BRAKE] * 2 + [CommandMode.POSITION] * 7
    hw.write(HardwareCommand(modes, np.r_[0.0, 0.0, target, 0.03]))
    _step(world, 2.0)
    state = hw.read(2.0)
    np.testing.assert_allclose(state.positions[2:8], target, atol=0.01)
    assert state.positions[8] == pytest.approx(0.03, abs=1e-3)
    right = pb.getJointState(robot.body_id, robot.joint_index("gripper_right_finger_joint"),
                             physicsClientId=world)[0]
    assert right == pytest.approx(0.03, abs=1e-3)  # the mimic finger follows
    assert np.abs(state.velocities[2:]).max() < 0.05
    # the shoulder carries the arm's weight: a non-zero holding torque within the limit
    assert 1.0 < abs(state.efforts[3]) < desc.joints["arm_joint_2"].effort_limit
    # positions beyond the limits are clipped, not driven into the stop
    hw.write(HardwareCommand(modes, np.r_[0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 1.0]))
    _step(world, 3.0)
    state = hw.read(5.0)
    assert state.positions[3] == pytest.approx(desc.joints["arm_joint_2"].upper, abs=0.02)
    assert state.positions[8] == pytest.approx(0.04, abs=1e-3)


def test_effort_mode_reports_the_applied_effort(world: int, desc: RobotDescription) -> None:
    robot = SimRobot(world, desc, (0.0, 0.0, 0.0))
    hw = SimHardware(robot, ["arm_joint_1"])
    for _ in range(24):  # effort lasts one step: write it every step
        hw.write(HardwareCommand(CommandMode.EFFORT, [500.0]))  # clipped to 80 N*m
        pb.stepSimulation(physicsClientId=world)
    state = hw.read(0.1)
    assert state.efforts[0] == pytest.approx(desc.joints["arm_joint_1"].effort_limit)
    assert state.velocities[0] > 0.2  # the base joint accelerates


def test_invalid_commands_change_nothing(world: int, desc: RobotDescription) -> None:
    robot = SimRobot(world, desc, (0.0, 0.0, 0.0))
    hw = SimHardware(robot)
    with pytest.raises(ValueError, match="joint 'arm_joint_3'"):
        hw.write(HardwareCommand(CommandMode.POSITION,
                                 [0, 0, 0, 0, math.nan, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match="9 joints"):
        hw.write(HardwareCommand(CommandMode.POSITION, [0.0]))
    with pytest.raises(ValueError, match="mimics"):
        SimHardware(robot, ["gripper_right_finger_joint"])
    with pytest.raises(ValueError, match="not a movable joint"):
        SimHardware(robot, ["base_joint"])
    _step(world, 1.0)
    np.testing.assert_allclose(hw.read(1.0).positions[2:8], STOW_ARM_POSITIONS_RAD, atol=2e-3)


def test_reset_puts_the_robot_back_and_clears_holds(world: int, desc: RobotDescription) -> None:
    robot = SimRobot(world, desc, (0.0, 0.0, 0.0))
    hw = _wheels(robot, 6.0, 4.0)
    _step(world, 2.0)
    hw.write(HardwareCommand.brake(2))
    _step(world, 1.0)
    hw.write(HardwareCommand.brake(2))  # latches the (large) wheel angles
    robot.reset((3.0, 1.0, -1.0))
    assert robot.generation == 2
    hw.write(HardwareCommand.brake(2))  # must not drive the wheels back to old angles
    _step(world, 2.0)
    pose = robot.base_pose()
    assert (pose.x_m, pose.y_m) == pytest.approx((3.0, 1.0), abs=0.005)
    assert pose.yaw_rad == pytest.approx(-1.0, abs=0.005)
    assert np.abs(hw.read(0.0).positions).max() < 0.05


def test_two_simulations_in_one_process_do_not_interfere(desc: RobotDescription) -> None:
    a, b = _new_world(), _new_world()
    try:
        ra = SimRobot(a, desc, (0.0, 0.0, 0.0), name="a")
        rb = SimRobot(b, desc, (0.0, 0.0, 0.0), name="b")
        assert (ra.client_id, rb.client_id) == (a, b)
        _wheels(ra, 5.0, 5.0)
        hb = SimHardware(rb)
        for _ in range(480):  # step both, interleaved
            pb.stepSimulation(physicsClientId=a)
            pb.stepSimulation(physicsClientId=b)
        assert ra.base_pose().x_m == pytest.approx(0.95, abs=0.05)
        assert abs(rb.base_pose().x_m) < 0.002
        np.testing.assert_allclose(hb.read(0.0).positions[:2], 0.0, atol=0.01)
        assert pb.getNumBodies(physicsClientId=a) == pb.getNumBodies(physicsClientId=b) == 2
    finally:
        pb.disconnect(a)
        pb.disconnect(b)


def test_names_and_prefixes(world: int) -> None:
    d = load_robot_description(mappings={"prefix": "r1_"})
    robot = SimRobot(world, d, (0.0, 0.0, 0.0), SimRobotConfig(collision_group_bit=7))
    assert robot.link_index("r1_base_footprint") == -1
    assert robot.link_index("laser_link") == robot.link_index("r1_laser_link") >= 0
    assert robot.joint_index("arm_joint_1") == robot.joint_index("r1_arm_joint_1")
    assert robot.collision_group == 1 << 7
    assert SimHardware(robot).joint_names[0] == "r1_left_wheel_joint"
    with pytest.raises(SimulationError, match="no link 'antenna'"):
        robot.link_index("antenna")
    with pytest.raises(SimulationError, match="no joint"):
        robot.joint_index("elbow")
    tcp = robot.link_pose("gripper_tcp")
    assert 0.2 < tcp.position_m[2] < 1.0


def test_prewritten_urdf_and_frame_masses(world: int, desc: RobotDescription,
                                          tmp_path) -> None:
    path = write_urdf_file(desc, tmp_path)  # no frame inertials: PyBullet would use 1 kg
    robot = SimRobot(world, desc, (0.0, 0.0, 0.0), urdf_path=path)
    for frame in ("base_footprint", "tool0", "gripper_tcp", "camera_color_optical_frame"):
        mass = pb.getDynamicsInfo(robot.body_id, robot.link_index(frame),
                                  physicsClientId=world)[0]
        assert mass == pytest.approx(1e-3)
    total = sum(pb.getDynamicsInfo(robot.body_id, i, physicsClientId=world)[0]
                for i in range(-1, pb.getNumJoints(robot.body_id, physicsClientId=world)))
    expected = sum(i.mass_kg or 0.0 for i in desc.link_infos.values())
    assert total == pytest.approx(expected, abs=0.01)
    _step(world, 2.0)
    assert math.hypot(robot.base_pose().x_m, robot.base_pose().y_m) < 0.005


@pytest.mark.parametrize("kwargs,field", [
    ({"wheel_lateral_friction": -1.0}, "wheel_lateral_friction"),
    ({"caster_friction": math.nan}, "caster_friction"),
    ({"collision_group_bit": 2}, "collision_group_bit"),
    ({"initial_arm_positions_rad": (0.0,) * 5}, "initial_arm_positions_rad"),
    ({"frame_link_mass_kg": 0.0}, "frame_link_mass_kg"),
    ({"position_gain": 2.0}, "position_gain"),
])
def test_config_validation_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SimRobotConfig(**kwargs)


def test_initial_positions_outside_limits_are_rejected(world: int, desc: RobotDescription) -> None:
    cfg = SimRobotConfig(initial_arm_positions_rad=(0.0, 3.0, 0.0, 0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="arm_joint_2"):
        SimRobot(world, desc, (0.0, 0.0, 0.0), cfg)
    with pytest.raises(ValueError, match="pose_xyyaw"):
        SimRobot(world, desc, (0.0, math.inf, 0.0))
