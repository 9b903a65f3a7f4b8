"""arm_planner: collision-free arm motion through the safety supervisor.

Action server ``move_arm`` (sitebot_interfaces/action/MoveArm): a named pose (config), a
joint goal or an end-effector pose (``ee_pose``, frame ``base_footprint``, ``base_link``
or ``map``; an all-zero quaternion = position only).  The goal is planned by
:class:`sitebot.arm.motion.ArmMotion` (IK, OMPL RRTConnect + shortcutting + dense re-check,
ruckig timing) and the trajectory published on ``arm/joint_trajectory_in``
(trajectory_msgs/JointTrajectory) for the supervisor, which forwards it to the control
loop.  The goal then waits (feedback: state, progress 0..1 of the duration) until
``joint_states`` reach it; the result carries a code and a reason.  A new goal preempts the
running one (aborted, "preempted"); cancel holds the arm where it is.

Inputs: ``joint_states`` (sensor_msgs/JointState), ``obstacles``
(sitebot_interfaces/ObstacleArray, base or map frame), ``odometry/filtered`` or ``odom``
(composed with the initial pose) for the map pose that places the site bundle's static
collision objects around the robot.  Outputs: ``arm/joint_trajectory_in``, ``/diagnostics``.
Bad input (NaN, unknown frames, goals outside limits or in collision, stale joint states)
is refused with a reason; the node never crashes on a message.  What is decided about the
messages is :class:`sitebot.arm.service.ArmService`'s (pose sources, boxes into the base
frame, goal checks, execution watch, diagnostics); this node converts and publishes.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from sitebot.arm.config import SCHEMA
from sitebot.arm.motion import CODE_ABORTED, CODE_CANCELED, CODE_SUCCEEDED, MotionPlan
from sitebot.arm.service import ArmRequest, ArmService, Refusal, planar_pose
from sitebot.nodes import convert
from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR, QOS_STATE, declare_schema, run_node
from sitebot.site.bundle import load_bundle
from sitebot_interfaces.action import MoveArm
from sitebot_interfaces.msg import ObstacleArray

__all__ = ["ArmPlannerNode", "SCHEMA", "main"]


def arm_request(goal: MoveArm.Goal) -> ArmRequest:
    """A MoveArm goal in core types."""
    ee = goal.ee_pose
    p, o = ee.pose.position, ee.pose.orientation
    return ArmRequest(goal.named_pose, tuple(goal.joint_positions), ee.header.frame_id,
                      (p.x, p.y, p.z), (o.x, o.y, o.z, o.w), float(goal.max_velocity_scale))


class ArmPlannerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("arm_planner", **kwargs)
        self.p = declare_schema(self, SCHEMA, on_change=self._on_params)
        p = self.p
        site = load_bundle(p["site"])
        self.svc = ArmService(p, site)
        self.motion = self.svc.motion
        self.joint_names = self.svc.joint_names
        self.active_goal: Any = None
        cb = ReentrantCallbackGroup()
        self.cb = cb
        self.traj_pub = self.create_publisher(JointTrajectory, "arm/joint_trajectory_in",
                                              QOS_COMMAND)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        self.create_subscription(JointState, "joint_states", self.on_joint_states, QOS_STATE)
        self.create_subscription(ObstacleArray, "obstacles", self.on_obstacles, QOS_SENSOR)
        self.create_subscription(Odometry, "odometry/filtered", self.on_filtered, QOS_STATE)
        self.create_subscription(Odometry, "odom", self.on_odom, QOS_STATE)
        self.server = ActionServer(self, MoveArm, "move_arm", execute_callback=self.execute,
                                   goal_callback=self.on_goal, cancel_callback=self.on_cancel,
                                   callback_group=cb)
        self.create_timer(p["diagnostics_period_s"], self.on_diagnostics)
        self.get_logger().info(
            f"arm planner ready: site '{site.site}' ({len(site.scene)} collision objects), planner {p['planner']} + "
            f"{p['simplifier']}, named poses {sorted(self.motion.named)}")

    def _on_params(self, changed: dict) -> None:
        self.get_logger().warning(f"parameters {sorted(changed)} take effect at the next start")

    @property
    def q(self) -> np.ndarray | None:
        """The arm's latest measured joint positions."""
        return self.svc.q

    @property
    def obstacle_count(self) -> int:
        return self.svc.obstacle_count

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _warn(self, what: str, why: str) -> None:
        self.get_logger().warning(self.svc.bad_message(what, why), throttle_duration_sec=2.0)

    # ------------------------------------------------------------------ inputs
    def on_joint_states(self, msg: JointState) -> None:
        try:
            why = self.svc.joint_states(msg.name, msg.position, self.now())
        except Exception as e:  # noqa: BLE001 - a message never takes the node down
            why = f"{type(e).__name__}: {e}"
        if why:
            self._warn("joint_states", why)

    def _odometry(self, which: str, topic: str, msg: Odometry) -> None:
        pp = msg.pose.pose
        o = pp.orientation
        pose = planar_pose(pp.position.x, pp.position.y, (o.x, o.y, o.z, o.w))
        if pose is None:
            return self._warn(topic, "non-finite pose")
        self.svc.poses.update(which, pose, self.now())

    def on_filtered(self, msg: Odometry) -> None:
        self._odometry("filter", "odometry/filtered", msg)

    def on_odom(self, msg: Odometry) -> None:
        self._odometry("odom", "odom", msg)

    def on_obstacles(self, msg: ObstacleArray) -> None:
        try:
            problems = self.svc.obstacles(msg.header.frame_id, [
                (o.id, (o.center.x, o.center.y, o.center.z), (o.size.x, o.size.y, o.size.z))
                for o in msg.obstacles], self.now())
        except Exception as e:  # noqa: BLE001
            problems = [f"{type(e).__name__}: {e}"]
        for why in problems:
            self._warn("obstacles", why)

    # ------------------------------------------------------------------ action
    def on_goal(self, goal: MoveArm.Goal) -> GoalResponse:
        return GoalResponse.ACCEPT

    def on_cancel(self, handle) -> CancelResponse:
        return CancelResponse.ACCEPT

    def _result(self, code: int, reason: str, planning_s: float = 0.0,
                duration_s: float = 0.0) -> MoveArm.Result:
        r = MoveArm.Result()
        r.code, r.reason = int(code), reason
        r.planning_time_s, r.duration_s = float(planning_s), float(duration_s)
        return r

    def _trajectory_msg(self, plan: MotionPlan) -> JointTrajectory:
        tr = plan.trajectory
        m = JointTrajectory()
        m.header.stamp.sec, m.header.stamp.nanosec = 0, 0        # start now
        m.header.frame_id = self.p["base_frame"]
        m.joint_names = list(self.joint_names)
        for t, q, v, a in zip(tr.times, tr.positions, tr.velocities, tr.accelerations):
            pt = JointTrajectoryPoint()
            pt.positions = [float(x) for x in q]
            pt.velocities = [float(x) for x in v]
            pt.accelerations = [float(x) for x in a]
            pt.time_from_start = convert.to_duration(float(t))
            m.points.append(pt)
        return m

    async def execute(self, handle) -> MoveArm.Result:
        self.active_goal = handle
        fb = MoveArm.Feedback()
        fb.state, fb.progress = "planning", 0.0
        handle.publish_feedback(fb)
        plan = self.svc.plan(arm_request(handle.request), self.now())
        if isinstance(plan, Refusal):
            log = self.get_logger().error if plan.error else self.get_logger().warning
            log(plan.log)
            handle.abort()
            return self._result(plan.code, plan.reason)
        if self.active_goal is not handle:
            handle.abort()
            return self._result(CODE_ABORTED, "preempted by a newer goal",
                                plan.planning_time_s)
        self.traj_pub.publish(self._trajectory_msg(plan))
        self.svc.counts["trajectories"] += 1
        dur = float(plan.trajectory.duration)
        self.get_logger().info(f"move_arm: planned in {plan.planning_time_s * 1000:.0f} ms, "
                               f"{len(plan.path)} waypoints, {dur:.2f} s trajectory")
        if not self.p["wait_for_execution"]:
            self.svc.ended(CODE_SUCCEEDED)
            handle.succeed()
            return self._result(CODE_SUCCEEDED, "trajectory published", plan.planning_time_s,
                                dur)
        code, reason = await self._wait(handle, plan)
        self.svc.ended(code, reason)
        {CODE_SUCCEEDED: handle.succeed, CODE_CANCELED: handle.canceled}.get(
            code, handle.abort)()
        return self._result(code, reason, plan.planning_time_s, dur)

    def _wait(self, handle, plan: MotionPlan) -> Future:
        """A future done with (code, reason) when the joints reach the plan's goal, the goal
        is canceled or preempted, or the execution times out."""
        done = Future()
        watch = self.svc.watch(plan, self.now())
        fb = MoveArm.Feedback()
        timer = None

        def finish(code: int, reason: str) -> None:
            if timer is not None:
                timer.cancel()
                self.destroy_timer(timer)
            if not done.done():
                done.set_result((code, reason))

        def tick() -> None:
            if done.done():
                return
            now = self.now()
            if handle.is_cancel_requested:
                self._hold()
                return finish(CODE_CANCELED, "canceled: the arm holds where it is")
            if self.active_goal is not handle:
                return finish(CODE_ABORTED, "preempted by a newer goal")
            (fb.state, fb.progress), end = watch.tick(now, self.svc.q, self.svc.q_time)
            handle.publish_feedback(fb)
            if end is not None:
                finish(*end)

        timer = self.create_timer(0.05, tick, callback_group=self.cb)
        return done

    def _hold(self) -> None:
        """Stop the arm where it is: a one-point trajectory at the measured position."""
        q = self.svc.hold_position()
        if q is None:
            return
        m = JointTrajectory()
        m.joint_names = list(self.joint_names)
        pt = JointTrajectoryPoint()
        pt.positions = [float(x) for x in q]
        pt.velocities = [0.0] * len(self.joint_names)
        pt.time_from_start = convert.to_duration(0.3)
        m.points.append(pt)
        self.traj_pub.publish(m)

    # ------------------------------------------------------------------ diagnostics
    def on_diagnostics(self) -> None:
        problems, values = self.svc.diagnostics(self.now())
        d = DiagnosticStatus(name=f"{self.get_name()}: arm planning", hardware_id="arm_planner")
        d.level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
        d.message = "; ".join(problems) if problems else "ready"
        d.values = [KeyValue(key=k, value=v) for k, v in values]
        arr = DiagnosticArray(status=[d])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)


def main(args: list[str] | None = None) -> int:
    return run_node(ArmPlannerNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
