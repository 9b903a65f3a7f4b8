"""The task executor's ROS side besides its node (``sitebot.nodes.task_executor``): the
message conversions of plans and step outcomes, and :class:`RosPorts`, the transport of
the skills' ports.

:class:`RosPorts` supplies the hooks of :class:`sitebot.executor.ports.TrackedPorts` (which
keeps the robot's state and does the waiting): the node clock, the ``navigate_to_place``
and ``move_arm`` actions, the base speed on ``cmd_vel_in``, the gripper as a one-joint
trajectory on ``arm/joint_trajectory_in`` (gated by the supervisor like every motion), the
confirmation request on ``task/confirmation_request`` and the camera image; and
:func:`executor_authority`, the node's authority checks (:mod:`sitebot.executor.authority`)
with its key, its audit file (``<out_dir>/authority_audit.jsonl``) and its log.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np
import rclpy
from action_msgs.msg import GoalStatus
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.action import ActionClient
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from sitebot.config.params import dataclass_from_params
from sitebot.executor import MotionResult, Plan, Step, StepResult
from sitebot.executor.authority import KEY_PARAM, ExecutorAuthority, steps_digest
from sitebot.executor.ports import PortsConfig, TrackedPorts
from sitebot.executor.types import plan_from_fields
from sitebot.nodes import convert, convert_images
from sitebot.nodes.barrier_work import WorkerGate
from sitebot.nodes.common import QOS_SENSOR
from sitebot.perception.cloud import DepthError, check_depth_info, decode_depth
from sitebot.perception.fiducials import camera_mount
from sitebot.safety.audit import AuditLog
from sitebot.security import Authority
from sitebot.types import rpy_to_quaternion
from sitebot_interfaces.action import MoveArm, NavigateToPlace
from sitebot_interfaces.msg import GaugeReading, StepOutcome, TaskPlan, TaskStep

if TYPE_CHECKING:  # pragma: no cover
    from sitebot.nodes.task_executor import TaskExecutorNode

__all__ = ["RosPorts", "plan_from_msg", "step_msg", "outcome_msg", "executor_authority",
           "KEY_PARAM"]

_NAV_CODES = {NavigateToPlace.Result.CODE_SUCCEEDED: "succeeded",
              NavigateToPlace.Result.CODE_BLOCKED: "blocked",
              NavigateToPlace.Result.CODE_ABORTED: "aborted",
              NavigateToPlace.Result.CODE_CANCELED: "canceled"}
_ARM_CODES = {MoveArm.Result.CODE_SUCCEEDED: "succeeded",
              MoveArm.Result.CODE_NO_PLAN: "aborted",
              MoveArm.Result.CODE_NO_IK: "rejected",
              MoveArm.Result.CODE_INVALID_GOAL: "rejected",
              MoveArm.Result.CODE_ABORTED: "aborted",
              MoveArm.Result.CODE_CANCELED: "canceled"}


def plan_from_msg(msg: TaskPlan) -> Plan:
    """A TaskPlan message as an executor plan (arguments zipped from names and values)."""
    return plan_from_fields(((s.skill, s.arg_names, s.arg_values) for s in msg.steps),
                            msg.plan_id, msg.role, msg.instruction, msg.authority)


def executor_authority(node: "TaskExecutorNode") -> ExecutorAuthority:
    """The executor's authority checks: the key of ``authority_key_file`` (a missing or
    unsafe key is logged once as an error, and then no assertion is valid), audited to
    ``<out_dir>/authority_audit.jsonl`` and the log."""
    log = node.get_logger()
    out = Path(node.p["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    return ExecutorAuthority(Authority.open(node.p["authority_key_file"], log.error),
                             node.registry, AuditLog(out / "authority_audit.jsonl"),
                             node.ports.now, time.time, log.warning)


def step_msg(step: Step) -> TaskStep:
    names = sorted(step.args)
    return TaskStep(skill=step.skill, arg_names=names, arg_values=[step.args[n] for n in names])


def outcome_msg(r: StepResult, stamp) -> StepOutcome:
    out = StepOutcome(step=step_msg(r.step), outcome=int(r.outcome), message=r.message,
                      attempts=r.attempts, duration_s=float(r.duration_s),
                      images=list(r.images))
    for rd in r.readings:
        out.readings.append(GaugeReading(asset_id=rd.asset_id, valid=rd.valid,
                                         value=float(rd.value), unit=rd.unit,
                                         confidence=float(rd.confidence),
                                         failure_reason=rd.failure_reason))
        out.readings[-1].header.stamp = stamp
    return out


class RosPorts(TrackedPorts):
    """The executor's view of the robot over ROS: the transport hooks of
    :class:`sitebot.executor.ports.TrackedPorts` (clock, actions, publishers)."""

    def __init__(self, node: "TaskExecutorNode") -> None:
        super().__init__(node.registry, node.cancel_event,
                         dataclass_from_params(PortsConfig, node.p), node.approach_cfg,
                         node.p["pause_limit_s"])
        self.node = node
        # the plan thread's waits; the node's barrier participant binds it (barrier_work)
        self.gate = node.worker_gate = WorkerGate()
        self.image: Image | None = None
        self.depth: Image | None = None
        self.depth_info: CameraInfo | None = None
        self._depth_subs: list = []
        self._mount_frame: str | None = None
        self._depth_lock = threading.Lock()
        self.active_goal = None

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def sleep(self, seconds: float) -> None:
        """Wait *seconds* of node time (simulated time in simulation); gives up after a
        generous wall-clock bound so that a stopped clock cannot hang the executor.  In
        lockstep the wait ends at the node's first clock at or past the end, and the
        simulation waits for this thread to wait again (sitebot.nodes.barrier_work)."""
        t_end = self.now() + seconds
        self.gate.wait_until(lambda: self.now() >= t_end or not rclpy.ok(
            context=self.node.context), max(1.0, 20.0 * seconds))

    def set_image(self, msg: Image) -> None:
        """The camera's newest image (saved by :meth:`save_image`)."""
        self.image = msg

    def set_depth(self, msg: Image) -> None:
        """The depth camera's newest image, decoded only when a pick looks
        (:meth:`_depth_frame`)."""
        self.depth = msg

    def _watch_depth(self) -> None:
        """Subscribe to the depth camera at a pick's first look, not at start: missions
        without a pick do not receive its images, and in a lockstep simulation the
        simulator does not wait for this node to take every depth frame (the stack
        barrier counts only what a node subscribed to when it was built,
        sitebot.nodes.barrier_ack; a look waits for a frame newer than itself)."""
        with self._depth_lock:
            if self._depth_subs:
                return
            node = self.node
            self._depth_subs = [
                node.create_subscription(Image, "camera/depth/image_raw", self.set_depth,
                                         QOS_SENSOR),
                node.create_subscription(CameraInfo, "camera/depth/camera_info",
                                         self.set_depth_info, QOS_SENSOR)]

    def set_depth_info(self, msg: CameraInfo) -> None:
        self.depth_info = msg

    def _depth_frame(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        self._watch_depth()
        msg, info = self.depth, self.depth_info
        if msg is None:
            return None
        try:
            check_depth_info(None if info is None else (info.width, info.height),
                             (msg.width, msg.height))
            depth = decode_depth(msg.data, msg.width, msg.height, msg.step, msg.encoding,
                                 bool(msg.is_bigendian))
            frame = msg.header.frame_id.lstrip("/") or "camera_depth_optical_frame"
            if frame != self._mount_frame:      # the URDF's fixed joints, once per frame
                self.camera_mount = camera_mount(self.node.desc, self.node.p["base_frame"],
                                                 frame)
                self._mount_frame = frame
        except (DepthError, ValueError) as e:
            self.log(f"depth image unusable: {e}")
            return None
        depth = np.where(np.isfinite(depth), depth, np.inf).astype(np.float32)
        return depth, np.asarray(info.k, dtype=np.float64).reshape(3, 3), \
            convert.stamp_of(msg)

    def log(self, message: str) -> None:
        self.node.get_logger().info(message)
        self.node.event(message)

    def _run_goal(self, client: ActionClient, goal, timeout_s: float, codes: dict,
                  what: str) -> MotionResult:
        node = self.node
        if not client.wait_for_server(timeout_sec=node.p["server_wait_s"]):
            return MotionResult("unavailable", f"no {what} action server")
        fut = client.send_goal_async(goal)
        self._wait(fut, node.p["server_wait_s"])
        if not fut.done() or fut.result() is None:
            return MotionResult("unavailable", f"{what} goal not answered")
        handle = fut.result()
        if not handle.accepted:
            return MotionResult("rejected", f"{what} goal rejected")
        self.active_goal = handle
        try:
            res_fut = handle.get_result_async()
            t_end = self.now() + timeout_s
            self.gate.wait_until(lambda: res_fut.done() or self.cancel.is_set()
                                 or self.now() > t_end, max(30.0, 20.0 * timeout_s))
            if not res_fut.done():
                handle.cancel_goal_async()
                self._wait(res_fut, 5.0)
                if self.cancel.is_set():
                    return MotionResult("canceled", "plan canceled")
                return MotionResult("timeout", f"{what} took longer than {timeout_s:g} s")
            wrapped = res_fut.result()
        finally:
            self.active_goal = None
        if wrapped is None:
            return MotionResult("aborted", f"{what}: no result")
        result = wrapped.result
        if wrapped.status == GoalStatus.STATUS_CANCELED and not codes.get(result.code):
            return MotionResult("canceled", result.reason)
        return MotionResult(codes.get(result.code, "aborted"), result.reason)

    def _wait(self, fut, wall_s: float) -> None:
        """Until ``fut`` is done or ``wall_s`` have passed."""
        self.gate.wait_until(fut.done, wall_s)

    def navigate(self, place_id: str, timeout_s: float) -> MotionResult:
        goal = NavigateToPlace.Goal(place_id=place_id)
        return self._run_goal(self.node.nav_client, goal, timeout_s, _NAV_CODES, "navigation")

    def _arm_named(self, name: str, timeout_s: float) -> MotionResult:
        return self._run_goal(self.node.arm_client, MoveArm.Goal(named_pose=name), timeout_s,
                              _ARM_CODES, "arm")

    def _arm_pose(self, xyz_map: Sequence[float], rpy: Sequence[float],
                  timeout_s: float) -> MotionResult:
        ps = PoseStamped()
        ps.header.frame_id = self.node.p["map_frame"]
        ps.header.stamp = self.node.get_clock().now().to_msg()
        ps.pose.position.x, ps.pose.position.y, ps.pose.position.z = map(float, xyz_map)
        o = ps.pose.orientation
        o.x, o.y, o.z, o.w = rpy_to_quaternion(*rpy)
        return self._run_goal(self.node.arm_client, MoveArm.Goal(ee_pose=ps), timeout_s,
                              _ARM_CODES, "arm")

    def _arm_joints(self, positions: Sequence[float], timeout_s: float) -> MotionResult:
        return self._run_goal(self.node.arm_client,
                              MoveArm.Goal(joint_positions=[float(v) for v in positions]),
                              timeout_s, _ARM_CODES, "arm")

    def _drive(self, speed_mps: float) -> None:
        cmd = TwistStamped()
        cmd.header.stamp = self.node.get_clock().now().to_msg()
        cmd.header.frame_id = self.node.p["base_frame"]
        cmd.twist.linear.x = float(speed_mps)
        self.node.cmd_pub.publish(cmd)

    def _gripper(self, opening_m: float, duration_s: float) -> None:
        traj = JointTrajectory(joint_names=[self.config.gripper_joint])
        traj.header.stamp = self.node.get_clock().now().to_msg()
        traj.points = [JointTrajectoryPoint(
            positions=[float(opening_m)], velocities=[0.0],
            time_from_start=convert.to_duration(duration_s))]
        self.node.traj_pub.publish(traj)

    def _ask(self, question: str, plan_id: str) -> None:
        plan = self.node.authority.current
        digest = steps_digest(plan) if plan is not None and plan.plan_id == plan_id else ""
        self.node.confirm_pub.publish(String(data=json.dumps(
            {"plan_id": plan_id, "question": question, "role_required": "supervisor",
             "plan_digest": digest})))

    def save_image(self, name: str) -> str | None:
        img = self.image
        arr = None if img is None else convert_images.image_to_bgr(img)
        if arr is None:
            return None
        path = self.node.mission.image_path(name)
        cv2.imwrite(str(path), arr)
        return str(path)

    def stop_motion(self) -> None:
        g = self.active_goal
        if g is not None:
            g.cancel_goal_async()
        self._drive(0.0)
