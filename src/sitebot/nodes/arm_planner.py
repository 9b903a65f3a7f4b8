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
(composed with the world's spawn pose) for the map pose that places the world's bodies
around the robot.  Outputs: ``arm/joint_trajectory_in``, ``/diagnostics``.
Bad input (NaN, unknown frames, goals outside limits or in collision, stale joint states)
is refused with a reason; the node never crashes on a message.
"""
from __future__ import annotations

import math
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

from sitebot_interfaces.action import MoveArm
from sitebot_interfaces.msg import ObstacleArray

from sitebot.arm.config import SCHEMA
from sitebot.arm.motion import CODE_ABORTED, CODE_CANCELED, CODE_SUCCEEDED, ArmMotion, GoalRejected
from sitebot.types import quaternion_to_yaw
from sitebot.sim.world import load_world
from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR, QOS_STATE, declare_schema, run_node

__all__ = ["ArmPlannerNode", "SCHEMA", "main"]


def _duration(t_s: float):
    from builtin_interfaces.msg import Duration
    sec = int(math.floor(t_s))
    return Duration(sec=sec, nanosec=int(round((t_s - sec) * 1e9)) % 1_000_000_000)


class ArmPlannerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("arm_planner", **kwargs)
        self.p = declare_schema(self, SCHEMA, on_change=self._on_params)
        p = self.p
        world = load_world(p["world"])
        self.spawn = tuple(world.spawn_poses[p["spawn"]]) if p["spawn"] in world.spawn_poses \
            else (0.0, 0.0, 0.0)
        self.motion = ArmMotion(p, world=world)
        self.joint_names = self.motion.kin.joint_names
        self.q: np.ndarray | None = None
        self.q_time = -math.inf
        self.filtered: tuple[float, float, float] | None = None
        self.filtered_time = -math.inf
        self.odom: tuple[float, float, float] | None = None
        self.odom_time = -math.inf
        self.obstacles_time = -math.inf
        self.obstacle_count = 0
        self.active_goal: Any = None
        self.counts = {"goals": 0, "succeeded": 0, "rejected": 0, "aborted": 0,
                       "canceled": 0, "trajectories": 0, "bad_messages": 0}
        self.last_planning_ms = math.nan
        self.last_reason = ""
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
            f"arm planner ready: world '{world.id}', planner {p['planner']} + "
            f"{p['simplifier']}, named poses {sorted(self.motion.named)}")

    def _on_params(self, changed: dict) -> None:
        self.get_logger().warning(f"parameters {sorted(changed)} take effect at the next start")

    # ------------------------------------------------------------------ helpers
    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _warn(self, what: str, why: str) -> None:
        self.counts["bad_messages"] += 1
        self.get_logger().warning(f"{what}: {why}; ignored", throttle_duration_sec=2.0)

    def map_pose(self, now: float) -> tuple[tuple[float, float, float] | None, str]:
        """(x, y, yaw) of the base in the map, or None and why."""
        src = self.p["pose_source"]
        timeout = self.p["pose_timeout_s"]
        if src == "parameter":
            return tuple(float(v) for v in self.p["robot_pose"]), "parameter"
        if src in ("filter", "auto") and self.filtered is not None and \
                now - self.filtered_time <= timeout:
            return self.filtered, "odometry/filtered"
        if src == "filter":
            return None, "no fresh odometry/filtered"
        if self.odom is not None and now - self.odom_time <= timeout:
            sx, sy, syaw = self.spawn
            ox, oy, oyaw = self.odom
            c, s = math.cos(syaw), math.sin(syaw)
            return (sx + c * ox - s * oy, sy + s * ox + c * oy, syaw + oyaw), "odom+spawn"
        return None, "no fresh odometry (odometry/filtered or odom)"

    # ------------------------------------------------------------------ inputs
    def on_joint_states(self, msg: JointState) -> None:
        try:
            index = {n: i for i, n in enumerate(msg.name)}
            if not all(n in index for n in self.joint_names):
                return                      # another joint group's message
            if len(msg.position) != len(msg.name):
                return self._warn("joint_states", f"{len(msg.position)} positions for "
                                  f"{len(msg.name)} names")
            q = np.array([msg.position[index[n]] for n in self.joint_names], dtype=float)
            if not np.isfinite(q).all():
                return self._warn("joint_states", "non-finite arm position")
            self.q, self.q_time = q, self.now()
        except Exception as e:  # noqa: BLE001 - a message never takes the node down
            self._warn("joint_states", f"{type(e).__name__}: {e}")

    def _odom_pose(self, msg: Odometry) -> tuple[float, float, float] | None:
        pp = msg.pose.pose
        vals = (pp.position.x, pp.position.y, pp.orientation.x, pp.orientation.y,
                pp.orientation.z, pp.orientation.w)
        if not all(math.isfinite(v) for v in vals):
            return None
        yaw = quaternion_to_yaw((pp.orientation.x, pp.orientation.y, pp.orientation.z,
                                 pp.orientation.w))
        return (float(pp.position.x), float(pp.position.y), float(yaw))

    def on_filtered(self, msg: Odometry) -> None:
        pose = self._odom_pose(msg)
        if pose is None:
            return self._warn("odometry/filtered", "non-finite pose")
        self.filtered, self.filtered_time = pose, self.now()

    def on_odom(self, msg: Odometry) -> None:
        pose = self._odom_pose(msg)
        if pose is None:
            return self._warn("odom", "non-finite pose")
        self.odom, self.odom_time = pose, self.now()

    def on_obstacles(self, msg: ObstacleArray) -> None:
        try:
            self._obstacles(msg)
        except Exception as e:  # noqa: BLE001
            self._warn("obstacles", f"{type(e).__name__}: {e}")

    def _obstacles(self, msg: ObstacleArray) -> None:
        frame = msg.header.frame_id
        now = self.now()
        if frame in (self.p["base_frame"], "base_link"):
            dz = 0.0 if frame == self.p["base_frame"] else self.motion.kin.static_frames.get(
                "base_link", np.eye(4))[2, 3]
            pose, dyaw = (0.0, 0.0, 0.0), 0.0
            shift = (0.0, 0.0, dz)
        elif frame == self.p["map_frame"]:
            pose, why = self.map_pose(now)
            if pose is None:
                return self._warn("obstacles", f"in frame '{frame}' but {why}")
            dyaw, shift = pose[2], None
        else:
            return self._warn("obstacles", f"unknown frame '{frame}' (accepted: "
                              f"{self.p['base_frame']}, base_link, {self.p['map_frame']})")
        boxes = []
        for o in msg.obstacles:
            c = np.array([o.center.x, o.center.y, o.center.z], dtype=float)
            s = np.array([o.size.x, o.size.y, o.size.z], dtype=float)
            if not (np.isfinite(c).all() and np.isfinite(s).all()):
                self._warn("obstacles", f"obstacle {o.id} has non-finite values")
                continue
            if shift is None:                         # map -> base
                x, y, yaw = pose
                dx, dy = c[0] - x, c[1] - y
                cy, sy = math.cos(yaw), math.sin(yaw)
                c = np.array([cy * dx + sy * dy, -sy * dx + cy * dy, c[2]])
                boxes.append((c, s, -dyaw))
            else:
                boxes.append((c + np.asarray(shift), s, 0.0))
        self.obstacle_count = self.motion.set_obstacles(boxes, self.q)
        self.obstacles_time = now

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

    def _prepare(self, goal: MoveArm.Goal, now: float) -> tuple[np.ndarray, np.ndarray]:
        """(current q, joint goal) or GoalRejected."""
        if self.q is None or now - self.q_time > self.p["joint_state_timeout_s"]:
            raise GoalRejected(CODE_ABORTED, "no fresh joint_states for the arm joints "
                               f"(last {now - self.q_time:.2f} s ago)" if self.q is not None
                               else "no joint_states received for the arm joints")
        pose, why = self.map_pose(now)
        if pose is None:
            raise GoalRejected(CODE_ABORTED, f"robot map pose unknown: {why}; the world's "
                               "bodies cannot be placed around the arm")
        if self.p["obstacles_required"] and now - self.obstacles_time > \
                self.p["obstacle_timeout_s"]:
            raise GoalRejected(CODE_ABORTED, "no fresh obstacles (obstacles_required)")
        self.motion.set_base_pose(pose)
        q = self.q.copy()
        kwargs: dict[str, Any] = {"named_pose": goal.named_pose,
                                  "joint_positions": list(goal.joint_positions),
                                  "current_q": q}
        ee = goal.ee_pose
        pos = ee.pose.position
        if ee.header.frame_id:
            kwargs.update(self._ee_in_base(ee, pose))
        elif any(v != 0.0 for v in (pos.x, pos.y, pos.z)):
            raise GoalRejected(3, "ee_pose has a position but no header.frame_id")
        return q, self.motion.joint_goal(**kwargs)

    def _ee_in_base(self, ee, pose) -> dict[str, Any]:
        frame = ee.header.frame_id
        pos = np.array([ee.pose.position.x, ee.pose.position.y, ee.pose.position.z])
        o = ee.pose.orientation
        quat = np.array([o.x, o.y, o.z, o.w])
        if not (np.isfinite(pos).all() and np.isfinite(quat).all()):
            raise GoalRejected(3, "ee_pose contains NaN or infinity")
        if frame == self.p["base_frame"]:
            return {"ee_position": pos, "ee_orientation": quat}
        if frame == "base_link":
            dz = self.motion.kin.static_frames["base_link"][2, 3]
            return {"ee_position": pos + np.array([0.0, 0.0, dz]), "ee_orientation": quat}
        if frame == self.p["map_frame"]:
            x, y, yaw = pose
            c, s = math.cos(yaw), math.sin(yaw)
            d = pos - np.array([x, y, 0.0])
            p_b = np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1], d[2]])
            q_b = quat
            if np.linalg.norm(quat) > 1e-9:
                from sitebot.types import quaternion_multiply
                q_b = np.array(quaternion_multiply((0.0, 0.0, math.sin(-yaw / 2),
                                                    math.cos(-yaw / 2)), quat))
            return {"ee_position": p_b, "ee_orientation": q_b}
        raise GoalRejected(3, f"ee_pose in unknown frame '{frame}'; accepted: "
                           f"{self.p['base_frame']}, base_link, {self.p['map_frame']}")

    def _trajectory_msg(self, plan) -> JointTrajectory:
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
            pt.time_from_start = _duration(float(t))
            m.points.append(pt)
        return m

    async def execute(self, handle) -> MoveArm.Result:
        self.counts["goals"] += 1
        self.active_goal = handle
        goal = handle.request
        fb = MoveArm.Feedback()
        fb.state, fb.progress = "planning", 0.0
        handle.publish_feedback(fb)
        try:
            q0, qg = self._prepare(goal, self.now())
            plan = self.motion.plan(q0, qg, float(goal.max_velocity_scale))
        except GoalRejected as e:
            self.counts["rejected"] += 1
            self.last_reason = e.reason
            boxes = "; ".join(
                f"{o.name} at {np.round(o.pose[:3, 3], 2).tolist()} half "
                f"{np.round(o.size, 2).tolist()}" for o in self.motion.obstacle_prims[:12])
            self.get_logger().warning(f"move_arm refused: {e.reason} (perceived boxes, base "
                                      f"frame: {boxes or 'none'})")
            handle.abort()
            return self._result(e.code, e.reason)
        except Exception as e:  # noqa: BLE001 - report, never crash
            self.counts["aborted"] += 1
            self.last_reason = f"{type(e).__name__}: {e}"
            self.get_logger().error(f"move_arm failed: {self.last_reason}")
            handle.abort()
            return self._result(CODE_ABORTED, self.last_reason)
        self.last_planning_ms = plan.planning_time_s * 1000.0
        if self.active_goal is not handle:
            handle.abort()
            return self._result(CODE_ABORTED, "preempted by a newer goal",
                                plan.planning_time_s)
        self.traj_pub.publish(self._trajectory_msg(plan))
        self.counts["trajectories"] += 1
        dur = float(plan.trajectory.duration)
        self.get_logger().info(f"move_arm: planned in {plan.planning_time_s * 1000:.0f} ms, "
                               f"{len(plan.path)} waypoints, {dur:.2f} s trajectory")
        if not self.p["wait_for_execution"]:
            self.counts["succeeded"] += 1
            handle.succeed()
            return self._result(CODE_SUCCEEDED, "trajectory published", plan.planning_time_s,
                                dur)
        code, reason = await self._wait(handle, qg, dur)
        if code == CODE_SUCCEEDED:
            self.counts["succeeded"] += 1
            handle.succeed()
        elif code == CODE_CANCELED:
            self.counts["canceled"] += 1
            handle.canceled()
        else:
            self.counts["aborted"] += 1
            handle.abort()
        self.last_reason = reason
        return self._result(code, reason, plan.planning_time_s, dur)

    def _wait(self, handle, qg: np.ndarray, duration: float) -> Future:
        """A future done with (code, reason) when the joints reach ``qg``, the goal is
        canceled or preempted, or the execution times out."""
        done = Future()
        start = self.now()
        limit = duration * self.p["execution_timeout_factor"] + self.p["settle_timeout_s"]
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
            el = now - start
            if handle.is_cancel_requested:
                self._hold()
                return finish(CODE_CANCELED, "canceled: the arm holds where it is")
            if self.active_goal is not handle:
                return finish(CODE_ABORTED, "preempted by a newer goal")
            fresh = self.q is not None and now - self.q_time <= self.p["joint_state_timeout_s"]
            err = float(np.max(np.abs(self.q - qg))) if self.q is not None else math.inf
            fb.state = "executing" if el < duration else "settling"
            fb.progress = float(min(1.0, el / duration)) if duration > 0 else 1.0
            handle.publish_feedback(fb)
            if fresh and err <= self.p["reached_tolerance_rad"] and el >= 0.0:
                return finish(CODE_SUCCEEDED, f"reached (largest joint error {err:.4f} rad)")
            if el > limit:
                return finish(CODE_ABORTED, f"not reached after {el:.1f} s (largest joint "
                              f"error {err:.3f} rad; joint_states "
                              f"{'fresh' if fresh else 'stale'}): the supervisor may have "
                              "refused or stopped the trajectory")

        timer = self.create_timer(0.05, tick, callback_group=self.cb)
        return done

    def _hold(self) -> None:
        """Stop the arm where it is: a one-point trajectory at the measured position."""
        if self.q is None:
            return
        m = JointTrajectory()
        m.joint_names = list(self.joint_names)
        pt = JointTrajectoryPoint()
        pt.positions = [float(x) for x in np.clip(self.q, self.motion.kin.lower,
                                                   self.motion.kin.upper)]
        pt.velocities = [0.0] * len(self.joint_names)
        pt.time_from_start = _duration(0.3)
        m.points.append(pt)
        self.traj_pub.publish(m)

    # ------------------------------------------------------------------ diagnostics
    def on_diagnostics(self) -> None:
        now = self.now()
        d = DiagnosticStatus(name=f"{self.get_name()}: arm planning", hardware_id="arm_planner")
        pose, why = self.map_pose(now)
        problems = []
        if self.q is None or now - self.q_time > self.p["joint_state_timeout_s"]:
            problems.append("joint_states stale or missing")
        if pose is None:
            problems.append(f"map pose: {why}")
        if self.p["obstacles_required"] and now - self.obstacles_time > \
                self.p["obstacle_timeout_s"]:
            problems.append("obstacles stale or missing")
        d.level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
        d.message = "; ".join(problems) if problems else "ready"
        d.values = [KeyValue(key=k, value=str(v)) for k, v in self.counts.items()]
        d.values += [KeyValue(key="last_planning_ms", value=f"{self.last_planning_ms:.1f}"),
                     KeyValue(key="last_reason", value=self.last_reason),
                     KeyValue(key="collision_checks", value=str(self.motion.checker.checks)),
                     KeyValue(key="obstacles", value=str(self.obstacle_count)),
                     KeyValue(key="scene_primitives", value=str(len(self.motion.checker.scene)))]
        arr = DiagnosticArray(status=[d])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)


def main(args: list[str] | None = None) -> int:
    return run_node(ArmPlannerNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
