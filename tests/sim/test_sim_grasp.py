"""Grasp assist: a tool between closing fingers is held; opening the fingers lets it go."""
from __future__ import annotations

import numpy as np
import pybullet as pb
import pytest

from sitebot.control.hardware import CommandMode, HardwareCommand
from sitebot.description.urdf import load_robot_description
from sitebot.sim.grasp import GraspAssist
from sitebot.sim.robot import SimHardware, SimRobot, SimRobotConfig

STEP_S = 1.0 / 240.0


def _steps(cid: int, assist: GraspAssist, seconds: float) -> None:
    for _ in range(int(round(seconds / STEP_S))):
        pb.stepSimulation(physicsClientId=cid)
        assist.update()


@pytest.fixture()
def rig():
    cid = pb.connect(pb.DIRECT)
    pb.setGravity(0, 0, -9.81, physicsClientId=cid)
    pb.setTimeStep(STEP_S, physicsClientId=cid)
    pb.createMultiBody(0, pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=cid),
                       physicsClientId=cid)
    desc = load_robot_description()
    robot = SimRobot(cid, desc, (0.0, 0.0, 0.0),
                     SimRobotConfig(initial_gripper_opening_m=0.04), np.random.default_rng(0))
    hw = SimHardware(robot, list(desc.arm_joints) + [desc.gripper_joints[0]])
    yield cid, robot, hw, desc
    pb.disconnect(cid)


def test_tool_between_fingers_is_held_and_released(rig) -> None:
    cid, robot, hw, desc = rig
    arm = [robot.initial_positions()[j] for j in desc.arm_joints]
    hw.write(HardwareCommand(CommandMode.POSITION, arm + [0.04]))
    for _ in range(240):
        pb.stepSimulation(physicsClientId=cid)
    tcp = robot.link_pose("gripper_tcp")
    # a 3 cm wide, 0.3 kg tool exactly at the TCP, kinematically held there until grasped
    half = (0.015, 0.015, 0.02)
    tool = pb.createMultiBody(0.3, pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half,
                                                           physicsClientId=cid),
                              basePosition=tcp.position_m, baseOrientation=tcp.orientation_xyzw,
                              physicsClientId=cid)
    hold = pb.createConstraint(tool, -1, -1, -1, pb.JOINT_FIXED, (0, 0, 0), (0, 0, 0),
                               tcp.position_m, physicsClientId=cid)
    assist = GraspAssist(robot, [tool])
    assert assist.update() is None                  # fingers wide open: nothing held
    hw.write(HardwareCommand(CommandMode.POSITION, arm + [0.0]))
    _steps(cid, assist, 1.0)
    assert assist.held == tool
    q = pb.getJointState(robot.body_id, robot.joint_index(desc.gripper_joints[0]),
                         physicsClientId=cid)[0]
    assert 0.010 <= q <= 0.02                        # stopped on the 3 cm tool, not closed
    pb.removeConstraint(hold, physicsClientId=cid)
    # move the arm: the tool follows the TCP within 1 cm
    moved = list(arm)
    moved[0] += 0.6
    hw.write(HardwareCommand(CommandMode.POSITION, moved + [0.0]))
    _steps(cid, assist, 2.0)
    tcp = np.array(robot.link_pose("gripper_tcp").position_m)
    pos = np.array(pb.getBasePositionAndOrientation(tool, physicsClientId=cid)[0])
    assert np.linalg.norm(pos - tcp) < 0.01
    # open: released, and the tool falls
    hw.write(HardwareCommand(CommandMode.POSITION, moved + [0.04]))
    _steps(cid, assist, 1.5)
    assert assist.held is None
    z = pb.getBasePositionAndOrientation(tool, physicsClientId=cid)[0][2]
    assert z < pos[2] - 0.08                        # fell (onto the chassis below)


def test_closing_on_nothing_holds_nothing(rig) -> None:
    cid, robot, hw, desc = rig
    far = pb.createMultiBody(0.3, pb.createCollisionShape(pb.GEOM_BOX, halfExtents=(0.02,) * 3,
                                                          physicsClientId=cid),
                             basePosition=(2.0, 0.0, 0.02), physicsClientId=cid)
    assist = GraspAssist(robot, [far])
    arm = [robot.initial_positions()[j] for j in desc.arm_joints]
    hw.write(HardwareCommand(CommandMode.POSITION, arm + [0.0]))
    _steps(cid, assist, 1.0)
    assert assist.held is None
    q = pb.getJointState(robot.body_id, robot.joint_index(desc.gripper_joints[0]),
                         physicsClientId=cid)[0]
    assert q < 0.002                                  # closed fully: the executor sees a miss
