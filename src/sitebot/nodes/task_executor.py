"""task_executor: runs validated task plans through the skill library.

Action server ``execute_plan`` (sitebot_interfaces/action/ExecutePlan): a plan in, feedback
per step, a result with per-step outcomes and readings; with ``auto_execute``, also the ``ok``
plans on ``task/plan`` (from the task_planner), one at a time.  The skills reach the robot
through :class:`sitebot.nodes.executor_io.RosPorts`: the ``navigate_to_place`` and
``move_arm`` actions, the gripper on ``arm/joint_trajectory_in`` (gated by the supervisor),
``gauges`` and ``fiducials``, the camera image, ``safety/state``, the robot pose
(``odometry/filtered`` or dead reckoning). High-risk steps ask on ``task/confirmation_request``
(std_msgs/String, JSON) and wait for a supervisor's ``task/confirm`` (TaskCommand:
in_reply_to = plan id, text yes/no).  Roles and confirmations count only with valid signed
assertions (:mod:`sitebot.executor.authority`).  The node feeds the ports' state
(:class:`sitebot.executor.ports.TrackedPorts`) and runs each plan in a thread of its own
(:class:`PlanRunner`, :class:`MissionLog`; the node spins one thread); every run writes
``<out_dir>/<plan id>/report.json`` (steps, readings, events, path, timings) and images.
"""
from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import cv2
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState, LaserScan
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from sitebot.config.params import ParamSpec, ParamType, dataclass_from_params
from sitebot.description.kinematics import planar_frame_pose
from sitebot.description.urdf import load_robot_description
from sitebot.executor import (ExecutionResult, ExecutorConfig, Plan, PlanRunner, Reading,
                              ResultCode, StepResult)
from sitebot.executor.approach import ApproachConfig, FrontScan
from sitebot.executor.config import CORE_SCHEMA
from sitebot.executor.locate import Cluster
from sitebot.executor.mission import MissionLog, final_status, step_status
from sitebot.executor.ports import PortsConfig
from sitebot.nodes import convert, convert_images
from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR, QOS_STATE, declare_schema, run_node
from sitebot.nodes.executor_io import (KEY_PARAM, RosPorts, executor_authority, outcome_msg,
                                       plan_from_msg)
from sitebot.site.bundle import load_bundle
from sitebot.site.params import SITE_PARAMS
from sitebot.types import Pose2D, se2_compose
from sitebot_interfaces.action import ExecutePlan, MoveArm, NavigateToPlace
from sitebot_interfaces.msg import (FiducialDetectionArray, GaugeReading, ObstacleArray,
                                    SafetyState, TaskCommand, TaskPlan)

S, F, B = ParamType.STRING, ParamType.FLOAT, ParamType.BOOL

NODE_SCHEMA = (
    *SITE_PARAMS,
    ParamSpec("pose_source", S, "dead_reckoning", "robot pose: 'filter' = odometry/filtered "
              "(map frame); 'dead_reckoning' = odom composed with the initial pose",
              choices=("filter", "dead_reckoning")),
    ParamSpec("out_dir", S, "out/missions", "folder for mission reports and images"),
    ParamSpec("auto_execute", B, True, "run 'ok' plans arriving on task/plan"),
    ParamSpec("server_wait_s", F, 5.0, "waiting for an action server to appear (wall)", 0.1,
              120.0, unit="s"),
    ParamSpec("base_frame", S, "base_footprint", "robot base frame"),
    ParamSpec("map_frame", S, "map", "map frame"),
    KEY_PARAM,
)
SCHEMA = NODE_SCHEMA[:5] + CORE_SCHEMA + NODE_SCHEMA[5:]


class TaskExecutorNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("task_executor", **kwargs)
        self.p = declare_schema(self, SCHEMA, on_change=self._on_params)
        site = load_bundle(self.p["site"])
        self.registry = site.registry
        self.spawn = tuple(site.initial_pose(self.p["initial_pose"]))
        self.config = dataclass_from_params(ExecutorConfig, self.p)
        self.approach_cfg = dataclass_from_params(ApproachConfig, self.p, "approach_")
        self.desc = load_robot_description()
        self.laser_pose: dict[str, Pose2D] = {}
        self.cancel_event = threading.Event()
        self.busy = threading.Lock()
        self.mission = MissionLog(self.p["out_dir"])
        self.ports = RosPorts(self)           # (and self.worker_gate: the plan thread's waits)
        self.authority = executor_authority(self)
        self.runner = PlanRunner(self.registry, self.ports, self.config, self.authority.authorised,
                                 site.scene)
        self.nav_client = ActionClient(self, NavigateToPlace, "navigate_to_place")
        self.arm_client = ActionClient(self, MoveArm, "move_arm")
        self.cmd_pub = self.create_publisher(TwistStamped, "cmd_vel_in", QOS_COMMAND)
        self.traj_pub = self.create_publisher(JointTrajectory, "arm/joint_trajectory_in",
                                              QOS_COMMAND)
        self.confirm_pub = self.create_publisher(String, "task/confirmation_request",
                                                 QOS_COMMAND)
        self.status_pub = self.create_publisher(String, "task/status", QOS_STATE)
        for typ, topic, fn, qos in (
                (SafetyState, "safety/state", self.on_safety, QOS_STATE),
                (Odometry, "odometry/filtered", self.on_filtered, QOS_STATE),
                (Odometry, "odom", self.on_odom, QOS_STATE),
                (LaserScan, "scan", self.on_scan, QOS_SENSOR),
                (Image, "camera/color/image_raw", self.ports.set_image, QOS_SENSOR),
                (GaugeReading, "gauges", self.on_gauge, QOS_SENSOR),
                (FiducialDetectionArray, "fiducials", self.on_fiducials, QOS_SENSOR),
                (ObstacleArray, "obstacles", self.on_obstacles, QOS_SENSOR),
                (JointState, "joint_states", self.on_joints, QOS_STATE),
                (TaskCommand, "task/confirm", self.on_confirm, QOS_COMMAND),
                (TaskPlan, "task/plan", self.on_plan, QOS_COMMAND)):
            self.create_subscription(typ, topic, fn, qos)
        self.server = ActionServer(self, ExecutePlan, "execute_plan", self.execute_cb,
                                   goal_callback=self.goal_cb, cancel_callback=self.cancel_cb)
        self.get_logger().info(
            f"task executor on site '{self.registry.site}' (pose: {self.p['pose_source']}, "
            f"arm: {'on' if self.p['use_arm'] else 'off'})")

    def _on_params(self, changed: dict) -> None:
        """The ports' and the report folder's parameters follow a change at once; the rest
        take effect at the next start."""
        self.ports.config = dataclass_from_params(PortsConfig, self.p)
        self.ports.pause_limit_s = self.p["pause_limit_s"]
        self.mission.out_dir = Path(self.p["out_dir"])

    # -- inputs -------------------------------------------------------------------------
    def _guard(self, what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as e:  # a malformed message must not kill the executor
            self.get_logger().warning(f"{what}: ignored malformed message: "
                                      f"{type(e).__name__}: {e}", throttle_duration_sec=2.0)

    def on_safety(self, msg: SafetyState) -> None:
        now = self.ports.now()
        self.ports.update_safety(msg.level, msg.estop_latched, msg.reasons, now)
        self.mission.safety_level(now, int(msg.level), list(msg.reasons))

    def _set_pose(self, pose: Sequence[float]) -> None:
        if not self.ports.update_pose(pose):
            self.get_logger().warning("non-finite pose ignored", throttle_duration_sec=2.0)
        elif self.busy.locked():
            self.mission.record_path(self.ports.now(), pose[0], pose[1])

    def on_filtered(self, msg: Odometry) -> None:
        if self.p["pose_source"] == "filter":
            self._set_pose(convert.planar_pose(msg.pose.pose))

    def on_odom(self, msg: Odometry) -> None:
        odom = convert.planar_pose(msg.pose.pose)
        self.ports.update_odom(odom)
        if self.p["pose_source"] == "dead_reckoning":
            self._set_pose(se2_compose(self.spawn, odom))

    def on_scan(self, msg: LaserScan) -> None:
        self._guard("scan", self._scan, msg)

    def _scan(self, msg: LaserScan) -> None:
        frame = msg.header.frame_id
        if frame not in self.laser_pose:
            self.laser_pose[frame] = planar_frame_pose(self.desc, self.p["base_frame"], frame)
        self.ports.update_scan(FrontScan(self.ports.now(), msg.ranges, msg.angle_min,
                                         msg.angle_increment, msg.range_max,
                                         self.laser_pose[frame]))

    def on_gauge(self, msg: GaugeReading) -> None:
        self._guard("gauges", self._gauge, msg)

    def _gauge(self, msg: GaugeReading) -> None:
        now = self.ports.now()
        crop_path = ""
        if msg.valid and msg.crop.width > 0 and self.busy.locked():
            arr = convert_images.image_to_bgr(msg.crop)
            if arr is not None:
                crop_path = str(self.mission.crop_path(msg.asset_id, now))
                cv2.imwrite(crop_path, arr)
        self.ports.add_gauge(now, Reading(
            msg.asset_id, float(msg.value), msg.unit, float(msg.confidence),
            bool(msg.valid) and math.isfinite(msg.value), msg.failure_reason,
            convert.from_time(msg.header.stamp), crop_path))

    def on_fiducials(self, msg: FiducialDetectionArray) -> None:
        self.ports.update_tags(self.ports.now(), [
            (int(d.tag_id), (d.pose_base.position.x, d.pose_base.position.y))
            for d in msg.detections])

    def on_obstacles(self, msg: ObstacleArray) -> None:
        self.ports.update_obstacles(msg.header.frame_id == self.p["map_frame"], [
            Cluster(o.center.x, o.center.y, o.size.x, o.size.y, o.size.z)
            for o in msg.obstacles])

    def on_joints(self, msg: JointState) -> None:
        self.ports.update_joints(msg.name, msg.position, msg.velocity)

    def on_confirm(self, msg: TaskCommand) -> None:
        role = self.authority.answer_role(msg.in_reply_to, msg.text, msg.authority, msg.role)
        self.event(self.ports.receive_answer(role, msg.in_reply_to, msg.text))

    def on_plan(self, msg: TaskPlan) -> None:
        if msg.status != TaskPlan.STATUS_OK or not self.p["auto_execute"]:
            return
        try:
            plan = plan_from_msg(msg)
        except ValueError as e:
            self.event(f"plan {msg.plan_id} malformed: {e}")
            return
        if not self.busy.acquire(blocking=False):
            self.event(f"plan {plan.plan_id} refused: another plan is running")
            return
        self.worker_gate.hold()           # released by the plan's thread when it ends
        threading.Thread(target=self._run_locked, daemon=True,
                         args=(*self.authority.admit(plan, False, ""), None, True)).start()

    # -- action -------------------------------------------------------------------------
    def goal_cb(self, goal) -> GoalResponse:
        if goal.plan.status != TaskPlan.STATUS_OK:
            self.event("execute_plan goal rejected: the plan's status is not ok")
            return GoalResponse.REJECT
        if self.busy.locked():
            self.event("execute_plan goal rejected: another plan is running")
            return GoalResponse.REJECT
        self.worker_gate.hold()   # from here to execute_cb's end, a simulation waits for it
        return GoalResponse.ACCEPT

    def cancel_cb(self, goal_handle) -> CancelResponse:
        self.cancel_event.set()
        return CancelResponse.ACCEPT

    async def execute_cb(self, goal_handle):
        result = ExecutePlan.Result()
        try:
            plan = plan_from_msg(goal_handle.request.plan)
        except ValueError as e:
            goal_handle.abort()
            result.code, result.reason = ResultCode.REJECTED, str(e)
            self.worker_gate.release()
            return result
        if not self.busy.acquire(blocking=False):
            goal_handle.abort()
            result.code, result.reason = ResultCode.REJECTED, "another plan is running"
            self.worker_gate.release()
            return result

        def feedback(i: int, n: int, state: str, r: StepResult) -> None:
            fb = ExecutePlan.Feedback(step_index=i, step_count=n, state=state,
                                      current=outcome_msg(r, self.get_clock().now().to_msg()))
            goal_handle.publish_feedback(fb)

        # the plan runs in its own thread (skills block on actions); this coroutine awaits it
        req = goal_handle.request
        admitted = self.authority.admit(plan, bool(req.confirmed), req.authority)
        res = await self.worker_gate.run(self._run_locked, *admitted, feedback)
        result.code, result.reason = int(res.code), res.reason
        stamp = self.get_clock().now().to_msg()
        result.steps = [outcome_msg(s, stamp) for s in res.steps]
        if res.code is ResultCode.SUCCEEDED:
            goal_handle.succeed()
        elif res.code is ResultCode.CANCELED and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        else:
            goal_handle.abort()
        return result

    def _status(self, status: dict) -> None:
        self.status_pub.publish(String(data=json.dumps(status)))

    def _run_locked(self, plan: Plan, confirmed: bool, feedback,
                    release: bool = False) -> ExecutionResult:
        """Run *plan* (the caller holds ``busy`` and the worker gate) and write its report."""
        try:
            self.cancel_event.clear()
            self.mission.begin(plan, self.ports.now(), time.monotonic())

            def fb(i: int, n: int, state: str, r: StepResult) -> None:
                self._status(step_status(plan, i, n, state, r))
                if feedback:
                    feedback(i, n, state, r)

            res = self.runner.run(plan, confirmed=confirmed, feedback=fb,
                                  cancel=self.cancel_event)
            report = self.mission.end(plan, res, self.ports.now(), time.monotonic())
            self._status(final_status(plan, res, report))
            return res
        finally:
            self.busy.release()
            if release:
                self.worker_gate.release()

    def event(self, text: str) -> None:
        self.mission.event(self.ports.now(), text)


def main(args: list[str] | None = None) -> int:
    return run_node(TaskExecutorNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
