"""Grasp assist for the simulation: a closed gripper holding an object keeps it.

PyBullet's friction between two parallel fingers and a small tool is fragile (objects slip
or get flung when the arm accelerates). A real gripper of this class holds such tools
firmly, so the simulation models a held object as rigidly attached: when both fingers touch
a movable body and the fingers have stopped closing, a fixed constraint joins the body to
the gripper's TCP at the relative pose it has then; when the fingers open past the release
width, the constraint is removed and the body falls under physics again.

Nothing here decides what the robot does: the executor still commands the gripper through
the control loop, and reads from ``joint_states`` whether the fingers stopped on something.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import pybullet as pb

from sitebot.sim.robot import SimRobot

__all__ = ["GraspAssist", "GraspConfig"]


@dataclass(frozen=True)
class GraspConfig:
    touch_distance_m: float = 0.01       # a finger within this of the body counts as touching
    closing_speed_mps: float = 0.005      # finger speed below which it has stopped
    release_opening_m: float = 0.03       # fingers opened beyond this release the body
    max_force_n: float = 200.0            # constraint force (a firm grip, not infinite)


class GraspAssist:
    """Attaches a touched movable body to the closed gripper of *robot*."""

    def __init__(self, robot: SimRobot, movable_bodies: Iterable[int],
                 finger_links: tuple[str, str] = ("gripper_left_finger_link",
                                                  "gripper_right_finger_link"),
                 finger_joint: str = "gripper_left_finger_joint", tcp_link: str = "gripper_tcp",
                 config: GraspConfig | None = None) -> None:
        self.robot = robot
        self.cid = robot.client_id
        self.bodies = tuple(movable_bodies)
        self.fingers = tuple(robot.link_index(n) for n in finger_links)
        self.finger_joint = robot.joint_index(finger_joint)
        self.tcp = robot.link_index(tcp_link)
        self.config = config or GraspConfig()
        self.held: int | None = None
        self._constraint: int | None = None

    def _touching(self, body: int) -> bool:
        d = self.config.touch_distance_m
        return all(pb.getClosestPoints(self.robot.body_id, body, d, linkIndexA=f,
                                       physicsClientId=self.cid) for f in self.fingers)

    def update(self) -> int | None:
        """Call once per physics step; returns the held body id (or None)."""
        q, qd = pb.getJointState(self.robot.body_id, self.finger_joint,
                                 physicsClientId=self.cid)[:2]
        cfg = self.config
        if self.held is not None:
            if q > cfg.release_opening_m or not self._touching(self.held) and qd > 0:
                self.release()
            return self.held
        if qd > cfg.closing_speed_mps or q > cfg.release_opening_m or not self.bodies:
            return None                                      # opening or wide open
        tcp = pb.getLinkState(self.robot.body_id, self.tcp, computeForwardKinematics=True,
                              physicsClientId=self.cid)[4]
        for body in self.bodies:
            pos = pb.getBasePositionAndOrientation(body, physicsClientId=self.cid)[0]
            if sum((a - b) ** 2 for a, b in zip(pos, tcp)) > 0.09:   # > 0.3 m away
                continue
            if self._touching(body):
                self._attach(body)
                break
        return self.held

    def _attach(self, body: int) -> None:
        tcp_pos, tcp_orn = pb.getLinkState(self.robot.body_id, self.tcp,
                                           computeForwardKinematics=True,
                                           physicsClientId=self.cid)[4:6]
        b_pos, b_orn = pb.getBasePositionAndOrientation(body, physicsClientId=self.cid)
        inv_pos, inv_orn = pb.invertTransform(tcp_pos, tcp_orn)
        rel_pos, rel_orn = pb.multiplyTransforms(inv_pos, inv_orn, b_pos, b_orn)
        self._constraint = pb.createConstraint(
            self.robot.body_id, self.tcp, body, -1, pb.JOINT_FIXED, (0, 0, 0),
            parentFramePosition=rel_pos, childFramePosition=(0, 0, 0),
            parentFrameOrientation=rel_orn, childFrameOrientation=(0, 0, 0, 1),
            physicsClientId=self.cid)
        pb.changeConstraint(self._constraint, maxForce=self.config.max_force_n,
                            physicsClientId=self.cid)
        self.held = body

    def release(self) -> None:
        if self._constraint is not None:
            pb.removeConstraint(self._constraint, physicsClientId=self.cid)
        self._constraint = None
        self.held = None
